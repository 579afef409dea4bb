//! The admin listener: liveness, readiness and metrics.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::publish::Publisher;
use crate::record_size::TopicCheck;
use crate::routing::Routes;

/// Liveness: 200 unless the Kafka producer failed fatally.
pub const HEALTHZ: &str = "/healthz";
/// Readiness: 200 once a config snapshot is loaded, 503 while shutting down.
pub const READYZ: &str = "/readyz";
/// Prometheus / OpenMetrics text.
pub const METRICS: &str = "/metrics";
/// Every path the admin listener serves.
pub const PATHS: &[&str] = &[HEALTHZ, READYZ, METRICS];

/// What the admin endpoints report.
pub struct AdminState {
    /// The routing table: ready once a snapshot is loaded.
    pub routes: Routes,
    /// Set when shutdown begins, so load balancers stop sending traffic.
    pub draining: AtomicBool,
    /// Metrics to expose.
    pub metrics: Arc<Metrics>,
    /// The producer (liveness fails while a fatally failed producer is not replaced).
    pub publisher: Arc<Publisher>,
    /// The config stream (for the connection gauge).
    pub stream: Arc<crate::distribution::StreamStatus>,
    /// Whether the topic takes the largest record (not ready until the broker answered).
    pub topic_limit: crate::record_size::TopicLimit,
}

async fn handle(
    state: Arc<AdminState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body, content_type) = match req.uri().path() {
        HEALTHZ if state.publisher.is_fatal() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "kafka producer failed fatally and is not replaced yet".to_owned(),
            "text/plain",
        ),
        HEALTHZ => (StatusCode::OK, "ok".to_owned(), "text/plain"),
        READYZ if state.draining.load(Ordering::Acquire) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down".to_owned(),
            "text/plain",
        ),
        READYZ if !state.routes.is_ready() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no config snapshot loaded yet".to_owned(),
            "text/plain",
        ),
        READYZ => match state.topic_limit.get() {
            TopicCheck::Passed => (StatusCode::OK, "ready".to_owned(), "text/plain"),
            TopicCheck::Pending(message) | TopicCheck::TooSmall(message) => {
                (StatusCode::SERVICE_UNAVAILABLE, message, "text/plain")
            }
        },
        METRICS => (
            StatusCode::OK,
            state.metrics.encode(
                &state.routes,
                state.publisher.in_flight(),
                state.stream.connected.load(Ordering::Acquire),
            ),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        _ => (StatusCode::NOT_FOUND, "not found".to_owned(), "text/plain"),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}

/// Serves the admin endpoints until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(state.clone(), req));
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
}
