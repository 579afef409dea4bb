//! Config from the control plane (docs/data-plane.md, "Config stream"): the stream client, the
//! routing table as its sink, the encrypted disk cache of the last good snapshot, and [`start`],
//! which wires them together with the token exchange and the failed-trigger sender.

mod apply;
mod cache;
pub(crate) mod client;
mod routes_sink;

use std::sync::Arc;
use std::time::Duration;

use gateway_proto::v1::auth_service_client::AuthServiceClient;
use gateway_proto::v1::ExchangeTokenRequest;
use gateway_shared::Secret;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub use cache::SnapshotCache;
pub use client::{endpoint, ConfigSink, Credentials, Link, StreamClientConfig, StreamStatus};
pub use routes_sink::RoutesSink;

use crate::config::StreamArgs;
use crate::failed_triggers::{self, ReportQueue, ReportSender, ReportSettings};
use crate::metrics::Metrics;
use crate::routing::Routes;

/// Exchanges the DATA_PLANE API token for a JWT at `AuthService.ExchangeToken`.
struct TokenExchange(Secret<String>);

#[tonic::async_trait]
impl Credentials for TokenExchange {
    async fn bearer(&self, channel: Channel) -> Result<String, tonic::Status> {
        let response = AuthServiceClient::new(channel)
            .exchange_token(ExchangeTokenRequest {
                api_token: self.0.expose().clone(),
            })
            .await?;
        Ok(response.into_inner().jwt_token)
    }
}

/// What [`start`] started.
pub struct Started {
    /// The stream client task.
    pub stream: tokio::task::JoinHandle<()>,
    /// The failed-trigger queue (the ingest path's reporter).
    pub reports: Arc<ReportQueue>,
    /// Sends the queue's batches; run it with [`ReportSender::run`].
    pub report_sender: ReportSender,
}

/// Starts the config stream when a control-plane URL is configured: first a cold start from the disk
/// cache (if any and not already serving), then the stream client in the background. Failed-trigger
/// reports travel over the stream's connection.
pub fn start(
    args: &StreamArgs,
    routes: Routes,
    status: Arc<StreamStatus>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<Started>> {
    let Some(url) = args.control_plane_url.clone() else {
        return Ok(None);
    };
    let token = args.token()?;
    let cache = args
        .snapshot_cache
        .as_ref()
        .map(|p| SnapshotCache::new(p.clone(), token.expose()));
    let sink = Arc::new(RoutesSink::new(routes.clone(), cache.is_some()));
    if let Some(cache) = &cache {
        if !routes.is_ready() {
            match cache.load() {
                Ok(Some(snapshot)) => {
                    let version = snapshot.version;
                    match sink.apply_snapshot(snapshot) {
                        Ok(()) => {
                            tracing::info!(version, path = %cache.path().display(), "serving the cached config until the control plane answers")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, path = %cache.path().display(), "cached config ignored: it does not apply")
                        }
                    }
                }
                Ok(None) => tracing::info!(path = %cache.path().display(), "no cached config yet"),
                Err(e) => {
                    tracing::warn!(error = %e, path = %cache.path().display(), "cached config ignored")
                }
            }
        }
    }
    let tls_ca_pem = match &args.control_plane_ca_file {
        Some(f) => {
            Some(std::fs::read(f).map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?)
        }
        None => None,
    };
    let data_plane_id = args
        .data_plane_id
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("data-plane-{}", uuid::Uuid::new_v4().simple()));
    let credentials: Arc<dyn Credentials> = Arc::new(TokenExchange(token));
    let (reports, report_sender) = failed_triggers::channel(
        ReportSettings {
            data_plane_id: data_plane_id.clone(),
            max_payload_bytes: args.failed_trigger_payload_bytes,
            buffer_bytes: args.failed_trigger_buffer_bytes,
            batch_reports: 200,
            // The control plane accepts messages up to 16 MiB.
            batch_bytes: 4 * 1024 * 1024,
            linger: args.failed_trigger_linger,
            call_timeout: Duration::from_secs(10),
        },
        metrics,
        status.link.subscribe(),
        credentials.clone(),
    );
    let config = StreamClientConfig {
        endpoint: url,
        data_plane_id,
        tls_ca_pem,
        tls_domain: args.control_plane_tls_domain.clone(),
        heartbeat: args.stream_heartbeat.max(Duration::from_millis(100)),
        max_backoff: Duration::from_secs(10),
    };
    Ok(Some(Started {
        stream: tokio::spawn(client::run(
            config,
            credentials,
            sink,
            cache,
            status,
            shutdown,
        )),
        reports: Arc::new(reports),
        report_sender,
    }))
}
