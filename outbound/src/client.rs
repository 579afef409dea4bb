//! The HTTP client for action calls: every address checked by [`DestinationPolicy`] after DNS
//! resolution and connected to as checked, no redirects, no proxy from the environment, a deadline per
//! call and a cap on the answer it reads.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::destination::{DestinationError, DestinationPolicy};

/// Why a call produced no HTTP answer (or one too large to read). Messages are safe to show.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The destination is refused by policy.
    #[error(transparent)]
    Destination(#[from] DestinationError),
    /// TCP or TLS connection failed.
    #[error("{0}")]
    Connect(String),
    /// No complete answer within the deadline.
    #[error("timed out after {} s", .0.as_secs_f64())]
    Timeout(Duration),
    /// The answer body is larger than the cap.
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    /// Anything else on the wire (reset mid-answer, HTTP protocol error).
    #[error("{0}")]
    Transport(String),
}

impl CallError {
    /// Whether a later attempt may succeed (connection problems and timeouts).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Connect(_) | Self::Timeout(_) | Self::Transport(_)
        )
    }
}

/// An HTTP answer, body read up to the cap.
#[derive(Debug, Clone)]
pub struct CallResponse {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body (never more than the client's cap).
    pub body: Bytes,
}

impl CallResponse {
    /// `Retry-After` as a delay: delta-seconds or an HTTP date (in the past = zero).
    pub fn retry_after(&self) -> Option<Duration> {
        let value = self
            .headers
            .get(http::header::RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim();
        if let Ok(secs) = value.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        let at = httpdate::parse_http_date(value).ok()?;
        Some(
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }
}

/// Resolver handed to reqwest: resolves, then refuses the name unless every address is callable.
#[derive(Clone)]
struct CheckedResolver(DestinationPolicy);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = policy.resolve(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Posts JSON bodies to action servers under a [`DestinationPolicy`].
#[derive(Clone)]
pub struct ActionClient {
    http: reqwest::Client,
    policy: DestinationPolicy,
    max_answer_bytes: usize,
}

impl ActionClient {
    /// A client that reads at most `max_answer_bytes` of any answer.
    pub fn new(policy: DestinationPolicy, max_answer_bytes: usize) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(CheckedResolver(policy.clone())))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("webhook-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            policy,
            max_answer_bytes,
        })
    }

    /// The policy calls are checked against.
    pub fn policy(&self) -> &DestinationPolicy {
        &self.policy
    }

    /// POSTs `body` as `application/json` with `headers`, waiting at most `timeout` for the whole
    /// answer. A 3xx answer is returned as it is (never followed).
    pub async fn post_json(
        &self,
        url: &str,
        body: String,
        headers: &[(HeaderName, HeaderValue)],
        timeout: Duration,
    ) -> Result<CallResponse, CallError> {
        let url = self.policy.check_url(url)?;
        let call = async {
            let mut request = self
                .http
                .post(url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = request.send().await.map_err(classify)?;
            let status = response.status();
            let headers = response.headers().clone();
            if response
                .content_length()
                .is_some_and(|n| n > self.max_answer_bytes as u64)
            {
                return Err(CallError::TooLarge(self.max_answer_bytes));
            }
            let mut stream = response.bytes_stream();
            let mut buf = BytesMut::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(classify)?;
                if buf.len() + chunk.len() > self.max_answer_bytes {
                    return Err(CallError::TooLarge(self.max_answer_bytes));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(CallResponse {
                status,
                headers,
                body: buf.freeze(),
            })
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout(timeout)),
        }
    }
}

/// Turns a reqwest error into the words an operator needs ("connection refused", a refused address).
fn classify(err: reqwest::Error) -> CallError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(d) = e.downcast_ref::<DestinationError>() {
            return CallError::Destination(d.clone());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return CallError::Connect("connection refused".into())
                }
                std::io::ErrorKind::ConnectionReset => {
                    return CallError::Transport("connection reset".into())
                }
                _ => {}
            }
        }
        source = e.source();
    }
    if err.is_timeout() {
        return CallError::Connect("connect timed out".into());
    }
    let root = root_cause(&err);
    if err.is_connect() {
        CallError::Connect(format!("connection failed: {root}"))
    } else {
        CallError::Transport(root)
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}
