//! One log line and one metric per gRPC call: method, status code, duration and request id. The
//! request id is the caller's `x-request-id` when it is short and plain, else a new UUIDv7; it is a
//! field of the call's span, so every line the call logs carries it. The status is read from the
//! response head (errors, trailers-only answers) or, for streamed answers, from the trailers.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tracing::{Instrument, Span};

/// Labels of the call counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CallLabels {
    /// `/package.Service/Method`; `unknown` for paths no service serves (UNIMPLEMENTED), so the
    /// label set stays bounded whatever clients send.
    pub method: String,
    /// The gRPC status code name (`OK`, `NOT_FOUND`, …).
    pub code: &'static str,
}

/// The access log: a tower layer around every service of the server.
#[derive(Clone)]
pub(crate) struct AccessLog {
    calls: Family<CallLabels, Counter>,
}

impl AccessLog {
    /// Registers `gateway_grpc_calls_total{method, code}`.
    pub fn register(registry: &mut Registry) -> Self {
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "gateway_grpc_calls",
            "gRPC calls by method and status code",
            calls.clone(),
        );
        Self { calls }
    }

    fn record(&self, call: &Call, code: i32) {
        let name = code_name(code);
        let method = if code == 12 { "unknown" } else { &call.method };
        self.calls
            .get_or_create(&CallLabels {
                method: method.to_owned(),
                code: name,
            })
            .inc();
        let elapsed_ms = call.started.elapsed().as_secs_f64() * 1000.0;
        call.span.in_scope(|| {
            // Server-side trouble is a warning; a caller's mistake is ordinary.
            if matches!(code, 2 | 4 | 13 | 14 | 15) {
                tracing::warn!(code = name, elapsed_ms, "grpc call");
            } else {
                tracing::info!(code = name, elapsed_ms, "grpc call");
            }
        });
    }
}

impl<S> tower::Layer<S> for AccessLog {
    type Service = AccessLogService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLogService {
            inner,
            log: self.clone(),
        }
    }
}

/// [`AccessLog`] around one service.
#[derive(Clone)]
pub(crate) struct AccessLogService<S> {
    inner: S,
    log: AccessLog,
}

/// What is known of a call until its status arrives.
struct Call {
    method: String,
    started: Instant,
    span: Span,
}

fn status_of(headers: &HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for AccessLogService<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>> + Send,
    S::Future: Send + 'static,
    ResBody: Body + Unpin,
{
    type Response = Response<LoggedBody<ResBody>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let span = tracing::info_span!("grpc", method = %method, request_id = %gateway_shared::request_id::from_header(request.headers().get("x-request-id").and_then(|v| v.to_str().ok())));
        let call = Call {
            method,
            started: Instant::now(),
            span: span.clone(),
        };
        let log = self.log.clone();
        let future = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let response = future.await?;
            let pending = match status_of(response.headers()) {
                Some(code) => {
                    log.record(&call, code);
                    None
                }
                None => Some((log, call)),
            };
            Ok(response.map(|inner| LoggedBody { inner, pending }))
        })
    }
}

/// A response body that writes the call's line when its trailers (or its end) arrive, or when it
/// is dropped unfinished (the caller went away: CANCELLED).
pub(crate) struct LoggedBody<B> {
    inner: B,
    pending: Option<(AccessLog, Call)>,
}

impl<B> LoggedBody<B> {
    fn finish(&mut self, code: i32) {
        if let Some((log, call)) = self.pending.take() {
            log.record(&call, code);
        }
    }
}

impl<B> Drop for LoggedBody<B> {
    fn drop(&mut self) {
        self.finish(1);
    }
}

impl<B: Body + Unpin> Body for LoggedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    // A trailer block without a status is a broken answer: UNKNOWN.
                    let code = status_of(trailers).unwrap_or(2);
                    self.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(13),
            Poll::Ready(None) => self.finish(2),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The canonical name of a gRPC status code.
fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_canonical_names() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(99), "UNKNOWN");
    }
}
