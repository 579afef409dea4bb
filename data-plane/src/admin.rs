//! The admin listener: liveness, readiness and metrics.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the admin endpoints report.
#[derive(Default)]
pub struct AdminState {
    /// Set once a config snapshot is loaded.
    pub ready: AtomicBool,
}

async fn handle(state: Arc<AdminState>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/healthz" => (StatusCode::OK, "ok"),
        "/readyz" if state.ready.load(Ordering::Acquire) => (StatusCode::OK, "ready"),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "no config snapshot loaded yet"),
        _ => (StatusCode::NOT_FOUND, "not found"),
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    Ok(resp)
}

/// Serves the admin endpoints until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>, shutdown: CancellationToken) -> anyhow::Result<()> {
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
