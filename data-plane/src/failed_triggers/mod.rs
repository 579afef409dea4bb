//! Failed-trigger reporting (docs/data-plane.md, "Failed-trigger reports"), the data plane's side of
//! the control plane's `failed_triggers`: every rejection of a request that reached a known webhook
//! passes through [`RejectionReporter::report`] exactly once, from one place in the ingest path.
//! [`ReportQueue`] builds the report (`report`) and queues it without waiting; [`ReportSender`]
//! sends the queued reports in batches over the config stream's connection.

mod queue;
mod report;
mod sampler;
mod sender;

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

pub use queue::{channel, ReportQueue, ReportSettings};
pub use sender::{ReportSender, FINAL_FLUSH};

use crate::error::IngestError;
use crate::routing::Route;

/// A rejected request to a known webhook.
pub struct Rejection<'a> {
    /// The webhook (ids, provider).
    pub route: &'a Route,
    /// What went wrong (the detail for logs; never shown to the client beyond the code).
    pub error: &'a IngestError,
    /// Status answered.
    pub status: StatusCode,
    /// Stable reason code answered.
    pub code: &'static str,
    /// Request method.
    pub method: &'a Method,
    /// Request headers (the reporter must redact signatures and credentials before storing).
    pub headers: &'a HeaderMap,
    /// The body, when it was read (not for 413, 408 or failures before step 4).
    pub body: Option<&'a Bytes>,
    /// The request id logged for the request.
    pub request_id: &'a str,
    /// When the request arrived.
    pub received_at: SystemTime,
}

/// Receives rejections. Called on the request path: implementations must not block (hand off to a
/// bounded channel and drop when full).
pub trait RejectionReporter: Send + Sync + 'static {
    /// Records one rejection.
    fn report(&self, rejection: &Rejection<'_>);

    /// Hands over the counts of sampled unauthenticated rejections not reported yet (called every
    /// second and at shutdown).
    fn flush_samples(&self) {}
}

/// The default: nothing beyond the request log line and metrics.
pub struct NoReporter;

impl RejectionReporter for NoReporter {
    fn report(&self, _: &Rejection<'_>) {}
}
