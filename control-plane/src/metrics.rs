//! The admin listener: `/metrics` (Prometheus text) and `/healthz`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Prometheus / OpenMetrics text.
pub const METRICS: &str = "/metrics";
/// Liveness: 200 while the process serves (the listener opens after migrations).
pub const HEALTHZ: &str = "/healthz";
/// Every path the admin listener serves.
pub const PATHS: &[&str] = &[METRICS, HEALTHZ];

fn respond(registry: &Registry, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        METRICS => {
            let mut text = String::new();
            match prometheus_client::encoding::text::encode(&mut text, registry) {
                Ok(()) => (
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    text,
                ),
                Err(e) => {
                    tracing::error!(error = %e, "encoding metrics failed");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        "metrics unavailable\n".into(),
                    )
                }
            }
        }
        HEALTHZ => (StatusCode::OK, "text/plain", "ok\n".into()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

/// Serves the admin endpoints until `shutdown`.
pub(crate) async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => { tracing::warn!(error = %e, "admin accept failed"); continue; }
            },
            _ = shutdown.cancelled() => return,
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let resp = respond(&registry, &req);
                async move { Ok::<_, Infallible>(resp) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
