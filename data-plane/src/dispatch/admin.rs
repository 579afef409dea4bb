//! The dispatcher's admin listener: `/healthz`, `/readyz` (config loaded and the consumer in its
//! group) and `/metrics`.

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

use super::actions::Actions;
use super::metrics::DispatchMetrics;
use crate::distribution::StreamStatus;

/// What the admin endpoints report.
pub struct AdminState {
    /// The config.
    pub actions: Actions,
    /// Set once the invocation consumer joined its group.
    pub joined: Arc<AtomicBool>,
    /// Set when shutdown begins.
    pub draining: AtomicBool,
    /// Metrics.
    pub metrics: Arc<DispatchMetrics>,
    /// The config stream.
    pub stream: Arc<StreamStatus>,
}

async fn handle(
    state: Arc<AdminState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let joined = state.joined.load(Ordering::Acquire);
    let (status, body, content_type) = match req.uri().path() {
        "/healthz" => (StatusCode::OK, "ok".to_owned(), "text/plain"),
        "/readyz" if state.draining.load(Ordering::Acquire) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down".to_owned(),
            "text/plain",
        ),
        "/readyz" if !state.actions.is_ready() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no config snapshot loaded yet".to_owned(),
            "text/plain",
        ),
        "/readyz" if !joined => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the invocation consumer has not joined its group yet".to_owned(),
            "text/plain",
        ),
        "/readyz" => (StatusCode::OK, "ready".to_owned(), "text/plain"),
        "/metrics" => (
            StatusCode::OK,
            state.metrics.encode(
                &state.actions,
                state.stream.connected.load(Ordering::Acquire),
                joined,
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
