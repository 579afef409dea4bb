//! The public listener: HTTP/1.1 and h2c (prior knowledge) on one port, with header limits and
//! timeouts, and graceful shutdown (stop accepting, let in-flight requests finish, then return).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
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
    /// A connection with no request in flight for this long is closed (HTTP/2: GOAWAY first).
    pub idle_timeout: Duration,
    /// Most open connections.
    pub max_connections: usize,
}

impl From<&Config> for ConnSettings {
    fn from(c: &Config) -> Self {
        ConnSettings {
            header_read_timeout: c.header_read_timeout,
            max_headers: c.max_headers,
            max_header_bytes: c.max_header_bytes,
            h2_max_concurrent_streams: c.h2_max_concurrent_streams,
            shutdown_grace: c.shutdown_grace,
            idle_timeout: c.connection_idle_timeout,
            max_connections: c.max_connections,
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

/// What one connection's requests tell its watchdog: how many are in flight and when the last
/// one started or ended.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    seen_request: AtomicBool,
    /// Milliseconds since the connection was accepted.
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self, since: Instant) {
        let ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Release);
    }
}

/// Ends a request in [`Activity`] when dropped (the response is sent or the request abandoned).
struct InFlight(Arc<Activity>, Instant);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch(self.1);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves the public listener until `shutdown`, then drains connections for up to the grace period.
/// At most `max_connections` are open at once: one beyond it is closed as soon as it is accepted.
pub async fn serve_public(
    listener: TcpListener,
    ingest: Arc<Ingest>,
    settings: ConnSettings,
    shutdown: CancellationToken,
) {
    let builder = builder(&settings);
    let permits = settings.max_connections.min(Semaphore::MAX_PERMITS);
    let open = Arc::new(Semaphore::new(permits));
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
        let Ok(permit) = open.clone().try_acquire_owned() else {
            ingest.metrics.connection_refused();
            tracing::debug!(%peer, limit = permits, "connection refused: too many open connections");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let accepted = Instant::now();
        let activity = Arc::new(Activity::default());
        let svc = {
            let ingest = ingest.clone();
            let activity = activity.clone();
            hyper::service::service_fn(move |req: Request<Incoming>| {
                activity.seen_request.store(true, Ordering::Release);
                activity.in_flight.fetch_add(1, Ordering::AcqRel);
                activity.touch(accepted);
                let guard = InFlight(activity.clone(), accepted);
                let ingest = ingest.clone();
                async move {
                    let resp = ingest.handle(req).await;
                    drop(guard);
                    Ok::<_, Infallible>(resp)
                }
            })
        };
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .into_owned();
        let (header_read_timeout, idle) = (settings.header_read_timeout, settings.idle_timeout);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(conn);
            let every = (idle.min(header_read_timeout) / 4).max(Duration::from_millis(50));
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut closing = false;
            // An idle connection whose client does not finish the HTTP/2 goodbye (the PING after
            // the first GOAWAY) is dropped after one more idle period.
            let mut force_close: Option<tokio::time::Instant> = None;
            loop {
                let forced = async {
                    match force_close {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = ?e.to_string(), "connection ended with an error");
                        }
                        return;
                    }
                    _ = forced => {
                        tracing::debug!(%peer, "dropping an idle connection that did not close");
                        return;
                    }
                    _ = shutdown.cancelled(), if !closing => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    _ = tick.tick(), if !closing => {
                        // hyper's header timeout starts once bytes arrive; a client that connects
                        // and sends nothing (or never finishes its first request) is closed here.
                        if !activity.seen_request.load(Ordering::Acquire)
                            && accepted.elapsed() >= header_read_timeout
                        {
                            tracing::debug!(%peer, "closing a connection that sent no request in time");
                            return;
                        }
                        let last = Duration::from_millis(activity.last_ms.load(Ordering::Acquire));
                        let quiet = accepted.elapsed().saturating_sub(last);
                        if activity.in_flight.load(Ordering::Acquire) == 0 && quiet >= idle {
                            tracing::debug!(%peer, "closing an idle connection");
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                            force_close = Some(tokio::time::Instant::now() + idle);
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    tracing::info!("public listener closed; draining in-flight requests");
    // Every connection holds a permit until it ends: all of them back means all drained.
    let all = u32::try_from(permits).unwrap_or(u32::MAX);
    if tokio::time::timeout(settings.shutdown_grace, open.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(grace = ?settings.shutdown_grace, "in-flight requests did not finish within the shutdown grace period");
    }
}
