//! Wiring of the config stream into the data plane: settings, the routing-table sink, the cold start
//! from the disk cache, and the token exchange.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway_proto::v1::auth_service_client::AuthServiceClient;
use gateway_proto::v1::ExchangeTokenRequest;
use gateway_shared::snapshot::{ConfigDelta, ConfigSnapshot, WebhookConfig};
use gateway_shared::{Secret, WebhookId};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::cache::SnapshotCache;
use super::client::{self, ConfigSink, Credentials, StreamClientConfig, StreamStatus};
use super::report::{self, ReportQueue, ReportSender, ReportSettings};
use crate::metrics::Metrics;
use crate::routing::Routes;

/// Settings of the config stream (all optional: without a control-plane URL the data plane serves
/// only what `--snapshot-file` loaded).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct StreamArgs {
    /// Control plane gRPC URL (`http://…` on loopback, `https://…` with TLS).
    #[arg(long, env = "DP_CONTROL_PLANE_URL")]
    pub control_plane_url: Option<String>,

    /// API token with role DATA_PLANE (exchanged for a JWT on every connect).
    #[arg(
        long,
        env = "DP_CONTROL_PLANE_TOKEN",
        hide_env_values = true,
        conflicts_with = "control_plane_token_file"
    )]
    pub control_plane_token: Option<Secret<String>>,

    /// File holding the DATA_PLANE API token.
    #[arg(long, env = "DP_CONTROL_PLANE_TOKEN_FILE")]
    pub control_plane_token_file: Option<PathBuf>,

    /// PEM CA certificate that signs the control plane's TLS certificate.
    #[arg(long, env = "DP_CONTROL_PLANE_CA_FILE")]
    pub control_plane_ca_file: Option<PathBuf>,

    /// TLS server name to verify when it differs from the URL's host.
    #[arg(long, env = "DP_CONTROL_PLANE_TLS_DOMAIN")]
    pub control_plane_tls_domain: Option<String>,

    /// This data plane's name in the control plane's view (default: $HOSTNAME).
    #[arg(long, env = "DP_ID")]
    pub data_plane_id: Option<String>,

    /// Keep the last good config here (encrypted with a key derived from the token) and cold-start
    /// from it when the control plane is unreachable.
    #[arg(long, env = "DP_SNAPSHOT_CACHE")]
    pub snapshot_cache: Option<PathBuf>,

    /// Milliseconds between heartbeats on the config stream.
    #[arg(long, env = "DP_STREAM_HEARTBEAT_MS", default_value_t = 10_000)]
    pub stream_heartbeat_ms: u64,

    /// Most payload bytes a failed-trigger report keeps (longer bodies are cut and cannot be
    /// replayed).
    #[arg(long, env = "DP_FAILED_TRIGGER_PAYLOAD_BYTES", default_value_t = 64 * 1024)]
    pub failed_trigger_payload_bytes: usize,

    /// Most bytes of failed-trigger reports held while the control plane is slow or away; beyond
    /// it reports are dropped (and counted).
    #[arg(long, env = "DP_FAILED_TRIGGER_BUFFER_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub failed_trigger_buffer_bytes: usize,

    /// Milliseconds a failed-trigger batch waits for more reports before it is sent.
    #[arg(long, env = "DP_FAILED_TRIGGER_LINGER_MS", default_value_t = 200)]
    pub failed_trigger_linger_ms: u64,
}

impl StreamArgs {
    /// Problems with these settings (reported with the rest of the config).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(url) = &self.control_plane_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push("--control-plane-url must start with http:// or https://".into());
            }
            if self.control_plane_token.is_none() && self.control_plane_token_file.is_none() {
                problems.push(
                    "--control-plane-url needs --control-plane-token or --control-plane-token-file"
                        .into(),
                );
            }
            if self.failed_trigger_payload_bytes > 4 * 1024 * 1024 {
                problems.push("--failed-trigger-payload-bytes must be at most 4194304".into());
            }
        } else if self.snapshot_cache.is_some() {
            problems.push("--snapshot-cache needs --control-plane-url".into());
        }
        if let Some(f) = &self.control_plane_ca_file {
            if !f.is_file() {
                problems.push(format!(
                    "--control-plane-ca-file {} is not a readable file",
                    f.display()
                ));
            }
        }
        problems
    }

    fn token(&self) -> anyhow::Result<Secret<String>> {
        match (&self.control_plane_token, &self.control_plane_token_file) {
            (Some(t), _) => Ok(t.clone()),
            (None, Some(f)) => Ok(Secret::new(
                std::fs::read_to_string(f)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?
                    .trim()
                    .to_owned(),
            )),
            (None, None) => anyhow::bail!("no control-plane token configured"),
        }
    }
}

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

/// The routing table as the stream's sink, with a mirror of the served config when the disk cache
/// needs it (routes are compiled and do not keep the original config).
pub struct RoutesSink {
    routes: Routes,
    mirror: Option<Mutex<(u64, HashMap<WebhookId, WebhookConfig>)>>,
}

impl RoutesSink {
    /// A sink over `routes`; `mirror` keeps a copy for [`ConfigSink::snapshot`].
    pub fn new(routes: Routes, mirror: bool) -> Self {
        Self {
            routes,
            mirror: mirror.then(|| Mutex::new((0, HashMap::new()))),
        }
    }

    fn lock_mirror(
        &self,
    ) -> Option<std::sync::MutexGuard<'_, (u64, HashMap<WebhookId, WebhookConfig>)>> {
        self.mirror
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ConfigSink for RoutesSink {
    fn version(&self) -> u64 {
        self.routes.version().unwrap_or(0)
    }

    fn apply_snapshot(&self, snapshot: ConfigSnapshot) -> Result<(), String> {
        let copy = self.mirror.as_ref().map(|_| snapshot.clone());
        self.routes
            .apply_snapshot(snapshot)
            .map_err(|e| e.to_string())?;
        if let (Some(mut m), Some(s)) = (self.lock_mirror(), copy) {
            *m = (
                s.version,
                s.webhooks.into_iter().map(|w| (w.webhook_id, w)).collect(),
            );
        }
        Ok(())
    }

    fn apply_delta(&self, delta: ConfigDelta) -> Result<(), String> {
        let copy = self.mirror.as_ref().map(|_| delta.clone());
        self.routes.apply_delta(delta).map_err(|e| e.to_string())?;
        if let (Some(mut m), Some(d)) = (self.lock_mirror(), copy) {
            m.0 = d.to_version;
            for id in &d.removals {
                m.1.remove(id);
            }
            for w in d.upserts {
                m.1.insert(w.webhook_id, w);
            }
        }
        Ok(())
    }

    fn snapshot(&self) -> ConfigSnapshot {
        match self.lock_mirror() {
            Some(m) => ConfigSnapshot {
                version: m.0,
                webhooks: m.1.values().cloned().collect(),
            },
            None => ConfigSnapshot::default(),
        }
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
    let (config, credentials) = settings(url, args, token)?;
    let (reports, report_sender) = report::channel(
        ReportSettings {
            data_plane_id: config.data_plane_id.clone(),
            max_payload_bytes: args.failed_trigger_payload_bytes,
            buffer_bytes: args.failed_trigger_buffer_bytes,
            batch_reports: 200,
            // The control plane accepts messages up to 16 MiB.
            batch_bytes: 4 * 1024 * 1024,
            linger: Duration::from_millis(args.failed_trigger_linger_ms),
            call_timeout: Duration::from_secs(10),
        },
        metrics,
        status.link.subscribe(),
        credentials.clone(),
    );
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

/// The stream client's settings and credentials from `args`; `None` without a control-plane URL.
/// The dispatcher (`data-plane dispatch`) runs the same client with its own sink.
pub fn client_settings(
    args: &StreamArgs,
) -> anyhow::Result<Option<(StreamClientConfig, Arc<dyn Credentials>)>> {
    match args.control_plane_url.clone() {
        Some(url) => settings(url, args, args.token()?).map(Some),
        None => Ok(None),
    }
}

fn settings(
    url: String,
    args: &StreamArgs,
    token: Secret<String>,
) -> anyhow::Result<(StreamClientConfig, Arc<dyn Credentials>)> {
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
    let config = StreamClientConfig {
        endpoint: url,
        data_plane_id,
        tls_ca_pem,
        tls_domain: args.control_plane_tls_domain.clone(),
        heartbeat: Duration::from_millis(args.stream_heartbeat_ms.max(100)),
        max_backoff: Duration::from_secs(10),
    };
    Ok((config, Arc::new(TokenExchange(token))))
}
