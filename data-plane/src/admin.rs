//! The admin listener of both modes (`serve` and `dispatch`): liveness, readiness and metrics.

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
}

/// What one mode's admin endpoints report: the ingest server ([`AdminState`]) and the dispatcher
/// (`dispatch::admin`) each implement it; [`serve`] is the one listener both run.
pub trait Probe: Send + Sync + 'static {
    /// Liveness: `Err(reason)` answers 503 with the reason.
    fn live(&self) -> Result<(), String>;
    /// Readiness: `Err(reason)` answers 503 with the reason (draining included).
    fn ready(&self) -> Result<(), String>;
    /// The OpenMetrics text.
    fn metrics(&self) -> String;
}

impl Probe for AdminState {
    fn live(&self) -> Result<(), String> {
        if self.publisher.is_fatal() {
            return Err("kafka producer failed fatally and is not replaced yet".to_owned());
        }
        Ok(())
    }

    fn ready(&self) -> Result<(), String> {
        if self.draining.load(Ordering::Acquire) {
            return Err("shutting down".to_owned());
        }
        if !self.routes.is_ready() {
            return Err("no config snapshot loaded yet".to_owned());
        }
        Ok(())
    }

    fn metrics(&self) -> String {
        self.metrics.encode(
            &self.routes,
            self.publisher.in_flight(),
            self.stream.connected.load(Ordering::Acquire),
        )
    }
}

fn text(result: Result<&'static str, String>) -> (StatusCode, String, &'static str) {
    match result {
        Ok(body) => (StatusCode::OK, body.to_owned(), "text/plain"),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason, "text/plain"),
    }
}

async fn handle<P: Probe>(
    probe: Arc<P>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body, content_type) = match req.uri().path() {
        HEALTHZ => text(probe.live().map(|()| "ok")),
        READYZ => text(probe.ready().map(|()| "ready")),
        METRICS => (
            StatusCode::OK,
            probe.metrics(),
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
pub async fn serve<P: Probe>(
    listener: TcpListener,
    state: Arc<P>,
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
