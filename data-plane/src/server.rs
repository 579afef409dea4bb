//! The public listener: HTTP/1.1 and h2c (prior knowledge) on one port, with header limits and
//! timeouts, and graceful shutdown (stop accepting, let in-flight requests finish, then return).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::ingest::Ingest;

/// Connection settings derived from [`Config`].
#[derive(Clone, Debug)]
pub struct ConnSettings {
    /// Time to send request headers (and, for a new connection, the first request).
    pub header_read_timeout: Duration,
    /// HTTP/1.1 header count limit.
    pub max_headers: usize,
    /// HTTP/1.1 read buffer / HTTP/2 header list size limit.
    pub max_header_bytes: usize,
    /// HTTP/2 streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl From<&Config> for ConnSettings {
    fn from(c: &Config) -> Self {
        ConnSettings {
            header_read_timeout: c.header_read_timeout,
            max_headers: c.max_headers,
            max_header_bytes: c.max_header_bytes,
            h2_max_concurrent_streams: c.h2_max_concurrent_streams,
            shutdown_grace: c.shutdown_grace,
        }
    }
}

fn builder(s: &ConnSettings) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(s.header_read_timeout)
        .max_headers(s.max_headers)
        .max_buf_size(s.max_header_bytes)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(s.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(s.h2_max_concurrent_streams)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    b
}

/// Serves the public listener until `shutdown`, then drains connections for up to the grace period.
pub async fn serve_public(
    listener: TcpListener,
    ingest: Arc<Ingest>,
    settings: ConnSettings,
    shutdown: CancellationToken,
) {
    let builder = builder(&settings);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let seen_request = Arc::new(AtomicBool::new(false));
        let svc = {
            let ingest = ingest.clone();
            let seen_request = seen_request.clone();
            hyper::service::service_fn(move |req: Request<Incoming>| {
                seen_request.store(true, Ordering::Release);
                let ingest = ingest.clone();
                async move { Ok::<_, Infallible>(ingest.handle(req).await) }
            })
        };
        let conn = graceful.watch(
            builder
                .serve_connection(TokioIo::new(stream), svc)
                .into_owned(),
        );
        let header_read_timeout = settings.header_read_timeout;
        tokio::spawn(async move {
            tokio::pin!(conn);
            // hyper's header timeout starts once bytes arrive; a client that connects and sends
            // nothing (or never finishes its first request) is closed here.
            tokio::select! {
                r = &mut conn => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = tokio::time::sleep(header_read_timeout) => {}
            }
            if !seen_request.load(Ordering::Acquire) {
                tracing::debug!(%peer, "closing a connection that sent no request in time");
                return;
            }
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("public listener closed; draining in-flight requests");
    if tokio::time::timeout(settings.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?settings.shutdown_grace, "in-flight requests did not finish within the shutdown grace period");
    }
}
