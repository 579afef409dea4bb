//! The one error table of the public HTTP contract: every way a request can fail, mapped to a status
//! and a stable code in [`IngestError::status_and_code`]. Bodies are `{"error":{"code","message"}}`.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// Why a provider check failed. Never shown to the client (all of them get one identical 401);
/// kept for logs, metrics and failed-trigger reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureFailure {
    /// No signing secret is configured (or none is still valid).
    NoSecret,
    /// A required signature or timestamp header is absent.
    MissingHeader,
    /// A header is present but not in the expected form.
    Malformed,
    /// The timestamp is outside the tolerance window.
    Stale,
    /// The signature does not match.
    Mismatch,
}

impl SignatureFailure {
    /// A short, stable name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureFailure::NoSecret => "no_secret",
            SignatureFailure::MissingHeader => "missing_header",
            SignatureFailure::Malformed => "malformed",
            SignatureFailure::Stale => "stale_timestamp",
            SignatureFailure::Mismatch => "mismatch",
        }
    }
}

/// Every rejection of the ingest path.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Not a webhook URL, an unknown webhook, or a deactivated one.
    #[error("no active webhook at this URL")]
    NotFound,
    /// No config snapshot is loaded yet (readiness is off; a load balancer should not send traffic).
    #[error("the gateway has no configuration yet; retry later")]
    NotReady,
    /// The URL's provider segment is not the webhook's provider.
    #[error("the URL's provider segment does not match the webhook's provider")]
    ProviderMismatch,
    /// Only POST (and GET for Meta verification) are served.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// Value of the `Allow` header.
        allow: &'static str,
    },
    /// No `flowxApiKey` query parameter.
    #[error("the flowxApiKey query parameter is missing")]
    ApiKeyMissing,
    /// `flowxApiKey` does not match.
    #[error("the flowxApiKey query parameter is not valid for this webhook")]
    ApiKeyInvalid,
    /// The webhook's rate limit is reached (docs/data-plane.md, "Rate limits"). Not a failed
    /// trigger: the sender is asked to come back later.
    #[error("too many requests for this webhook; retry after {retry_after_secs} s")]
    RateLimited {
        /// `Retry-After`, whole seconds, at least 1.
        retry_after_secs: u64,
    },
    /// The body is over the limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The body fits the limit, but its record would not (JSON escaping of a text body inflates it).
    #[error("the event's record would be {size} bytes once the body is escaped into it, more than the {limit} bytes this gateway publishes")]
    RecordTooLarge {
        /// Bytes of the record.
        size: usize,
        /// The largest record.
        limit: usize,
    },
    /// The body did not arrive in time.
    #[error("the request body was not received in time")]
    BodyTimeout,
    /// The body stream broke (client went away, framing error).
    #[error("the request body could not be read")]
    BodyRead,
    /// A provider signature check failed (one body for every cause: no oracle).
    #[error("the request signature could not be verified")]
    SignatureInvalid(SignatureFailure),
    /// Meta's GET subscription handshake failed.
    #[error("verification failed")]
    VerificationFailed,
    /// The body is declared JSON and does not parse.
    #[error("the body is declared as JSON but is not valid JSON: {0}")]
    InvalidJson(String),
    /// A RESUME binding needs the correlation value and it is not in the payload.
    #[error("the correlation key could not be resolved in the payload: {0}")]
    CorrelationUnresolved(String),
    /// The broker did not acknowledge the event (down, queue full, deadline passed).
    #[error("the event could not be handed to the broker; retry later")]
    BrokerUnavailable {
        /// Why, for the log.
        reason: String,
    },
    /// A bug: details go to the log only.
    #[error("internal error")]
    Internal(String),
}

impl IngestError {
    /// The one mapping from error to HTTP status and stable code string.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            IngestError::NotFound => (StatusCode::NOT_FOUND, "WEBHOOK_NOT_FOUND"),
            IngestError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "NOT_READY"),
            IngestError::ProviderMismatch => (StatusCode::BAD_REQUEST, "PROVIDER_MISMATCH"),
            IngestError::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED")
            }
            IngestError::ApiKeyMissing => (StatusCode::UNAUTHORIZED, "API_KEY_MISSING"),
            IngestError::ApiKeyInvalid => (StatusCode::UNAUTHORIZED, "API_KEY_INVALID"),
            IngestError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
            IngestError::PayloadTooLarge { .. } | IngestError::RecordTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
            }
            IngestError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "BODY_TIMEOUT"),
            IngestError::BodyRead => (StatusCode::BAD_REQUEST, "BODY_READ_FAILED"),
            IngestError::SignatureInvalid(_) => (StatusCode::UNAUTHORIZED, "SIGNATURE_INVALID"),
            IngestError::VerificationFailed => (StatusCode::FORBIDDEN, "VERIFICATION_FAILED"),
            IngestError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "INVALID_JSON"),
            IngestError::CorrelationUnresolved(_) => {
                (StatusCode::BAD_REQUEST, "CORRELATION_KEY_UNRESOLVED")
            }
            IngestError::BrokerUnavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "BROKER_UNAVAILABLE")
            }
            IngestError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        }
    }

    /// The client-facing message: the `Display` text, except where it would carry internal detail.
    fn public_message(&self) -> String {
        match self {
            IngestError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    /// The JSON error response, with `Allow` / `Retry-After` where they belong.
    pub fn to_response(&self, retry_after: Duration) -> Response<Full<Bytes>> {
        let (status, code) = self.status_and_code();
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: Detail<'a>,
        }
        #[derive(serde::Serialize)]
        struct Detail<'a> {
            code: &'a str,
            message: &'a str,
        }
        // Serialized from borrowed fields: no JSON tree per rejection.
        let message = self.public_message();
        let mut resp = json_response(
            status,
            &Body {
                error: Detail {
                    code,
                    message: &message,
                },
            },
        );
        match self {
            IngestError::MethodNotAllowed { allow } => {
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            IngestError::BrokerUnavailable { .. } | IngestError::NotReady => {
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs()),
                );
            }
            IngestError::RateLimited { retry_after_secs } => {
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from((*retry_after_secs).max(1)),
                );
            }
            IngestError::BodyTimeout
            | IngestError::BodyRead
            | IngestError::PayloadTooLarge { .. } => {
                // The rest of the body is not read: the connection cannot be reused.
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        resp
    }
}

/// A JSON response with `Content-Type: application/json`.
pub fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn body_of(e: IngestError) -> (StatusCode, serde_json::Value, http::HeaderMap) {
        let resp = e.to_response(Duration::from_secs(7));
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .expect("full body")
            .to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).expect("json"),
            headers,
        )
    }

    #[tokio::test]
    async fn every_signature_failure_has_one_identical_body() {
        let mut bodies = Vec::new();
        for f in [
            SignatureFailure::NoSecret,
            SignatureFailure::MissingHeader,
            SignatureFailure::Malformed,
            SignatureFailure::Stale,
            SignatureFailure::Mismatch,
        ] {
            bodies.push(body_of(IngestError::SignatureInvalid(f)).await.1);
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(bodies[0]["error"]["code"], "SIGNATURE_INVALID");
    }

    #[tokio::test]
    async fn broker_errors_say_when_to_retry_and_internal_detail_stays_inside() {
        let (status, _, headers) =
            body_of(IngestError::BrokerUnavailable { reason: "x".into() }).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            headers.get(header::RETRY_AFTER).map(|v| v.as_bytes()),
            Some(&b"7"[..])
        );
        let (status, body, _) = body_of(IngestError::Internal("secret detail".into())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("secret detail"));
    }

    #[tokio::test]
    async fn rate_limited_is_429_with_its_own_retry_after() {
        let (status, body, headers) = body_of(IngestError::RateLimited {
            retry_after_secs: 3,
        })
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"]["code"], "RATE_LIMITED");
        assert_eq!(
            headers.get(header::RETRY_AFTER).map(|v| v.as_bytes()),
            Some(&b"3"[..]),
            "the bucket's wait, not the broker's"
        );
        let (_, _, headers) = body_of(IngestError::RateLimited {
            retry_after_secs: 0,
        })
        .await;
        assert_eq!(
            headers.get(header::RETRY_AFTER).map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
    }
}
