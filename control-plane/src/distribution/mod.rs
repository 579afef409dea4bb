//! Config distribution: follows the change log in Postgres (any replica's commits), keeps the current
//! config in memory, and streams snapshots and deltas to data planes with ACK/NACK (README, "Config
//! distribution protocol"). Ingest planes receive webhooks; dispatch planes receive actions and active
//! HMAC keys (docs/actions.md, "Distribution").

pub(crate) mod messages;
pub mod presence;
pub(crate) mod service;
pub(crate) mod sessions;
pub(crate) mod state;
pub(crate) mod store;
pub(crate) mod watcher;

use std::sync::Arc;
use std::time::Duration;

use gateway_proto::v1::config_distribution_service_server::ConfigDistributionServiceServer;
use gateway_shared::settings::{parse_duration, parse_legacy_millis, Renamed};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;

pub(crate) use presence::{PgPresenceStore, Presence};
pub(crate) use service::{DistributionService, StreamSettings};
pub(crate) use sessions::{DistributionMetrics, Sessions};
pub(crate) use state::ConfigState;
pub(crate) use store::PgConfigStore;
pub(crate) use watcher::{ConfigStore, WatcherConfig};

/// The running distribution machinery of one replica.
pub(crate) struct Distribution {
    state: watch::Receiver<Option<Arc<ConfigState>>>,
    sessions: Arc<Sessions>,
    presence: Arc<Presence>,
    shutdown: CancellationToken,
}

impl Distribution {
    /// Starts following the change log; the stream serves once the first full read finished.
    pub fn start(
        store: Arc<dyn ConfigStore>,
        config: WatcherConfig,
        registry: &mut Registry,
        shutdown: CancellationToken,
    ) -> Self {
        let (tx, state) = watch::channel(None);
        let sessions = Sessions::new(DistributionMetrics::register(registry));
        tokio::spawn(watcher::run(store, config, tx, shutdown.clone()));
        let mut versions = state.clone();
        let tracker = sessions.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = versions.changed() => if r.is_err() { return },
                    _ = stop.cancelled() => return,
                }
                let current = versions.borrow_and_update().clone();
                if let Some(s) = current {
                    tracker.new_version(s.version, s.committed_at_ms);
                }
            }
        });
        Self {
            state,
            sessions,
            presence: Presence::new(),
            shutdown,
        }
    }

    /// The fleet count of this replica's INGEST streams; run it with [`Presence::run`].
    pub fn presence(&self) -> Arc<Presence> {
        self.presence.clone()
    }

    /// The gRPC service.
    pub fn service(
        &self,
        settings: StreamSettings,
        auth: crate::auth::Authenticator,
        failed: Arc<crate::failed_triggers::FailedTriggers>,
    ) -> ConfigDistributionServiceServer<DistributionService> {
        let compression = settings.compression;
        let server = ConfigDistributionServiceServer::new(DistributionService {
            state: self.state.clone(),
            sessions: self.sessions.clone(),
            presence: self.presence.clone(),
            settings,
            auth,
            failed,
            shutdown: self.shutdown.clone(),
        })
        // Failed-trigger batches carry payloads: allow up to 16 MiB (data planes stay below it).
        .max_decoding_message_size(crate::failed_triggers::report::MAX_REPORT_MESSAGE_BYTES)
        .accept_compressed(CompressionEncoding::Zstd)
        .accept_compressed(CompressionEncoding::Gzip);
        // Answers are compressed only for a client that offers an enabled encoding in
        // `grpc-accept-encoding`; any other client (an earlier data plane) gets them uncompressed.
        // `zstd` falls back to gzip for a client that offers only gzip (zstd is still chosen for one
        // offering both first, as data planes do); `gzip` means gzip or nothing.
        match compression {
            StreamCompression::Zstd => server
                .send_compressed(CompressionEncoding::Zstd)
                .send_compressed(CompressionEncoding::Gzip),
            StreamCompression::Gzip => server.send_compressed(CompressionEncoding::Gzip),
            StreamCompression::None => server,
        }
    }
}

/// How the control plane compresses what it sends on the config stream (docs/control-plane.md,
/// "Configuration"): a 1,000,000-webhook snapshot is about 218 MB uncompressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StreamCompression {
    /// zstd (level 3) when the data plane accepts it.
    #[default]
    Zstd,
    /// gzip (level 6) when the data plane accepts it.
    Gzip,
    /// Never compress.
    None,
}

impl StreamCompression {
    /// The gRPC encoding, `None` for no compression.
    pub fn encoding(self) -> Option<CompressionEncoding> {
        match self {
            StreamCompression::Zstd => Some(CompressionEncoding::Zstd),
            StreamCompression::Gzip => Some(CompressionEncoding::Gzip),
            StreamCompression::None => None,
        }
    }
}

/// Settings of config distribution and the admin listener.
#[derive(Clone, Debug, clap::Args)]
pub struct DistributionArgs {
    /// Admin HTTP listener serving `/metrics` (Prometheus) and `/healthz`; off when unset.
    #[arg(long, env = "CP_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    /// PEM certificate chain: serve gRPC (and the config stream) over TLS.
    #[arg(long, env = "CP_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<std::path::PathBuf>,

    /// PEM private key for `--tls-cert-file`.
    #[arg(long, env = "CP_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<std::path::PathBuf>,

    /// Time between catch-up reads of the change log when no notification arrives (at least 10ms).
    #[arg(long, env = "CP_CONFIG_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub config_poll_interval: Duration,

    /// Deprecated: `--config-poll-interval` in milliseconds.
    #[arg(long, env = "CP_CONFIG_POLL_MS", hide = true, value_parser = parse_legacy_millis, conflicts_with = "config_poll_interval")]
    pub config_poll_ms: Option<Duration>,

    /// Time between heartbeats on idle config streams (at least 100ms).
    #[arg(long, env = "CP_STREAM_HEARTBEAT", default_value = "10s", value_parser = parse_duration)]
    pub stream_heartbeat: Duration,

    /// Deprecated: `--stream-heartbeat` in milliseconds.
    #[arg(long, env = "CP_STREAM_HEARTBEAT_MS", hide = true, value_parser = parse_legacy_millis, conflicts_with = "stream_heartbeat")]
    pub stream_heartbeat_ms: Option<Duration>,

    /// Objects (webhooks, or actions and HMAC keys) per snapshot chunk on the config stream.
    #[arg(long, env = "CP_SNAPSHOT_CHUNK", default_value_t = 1000)]
    pub snapshot_chunk: usize,

    /// Compression of the config stream for data planes that accept it: `zstd`, `gzip` or `none`.
    #[arg(long, env = "CP_STREAM_COMPRESSION", value_enum, default_value_t = StreamCompression::Zstd)]
    pub stream_compression: StreamCompression,
}

impl Default for DistributionArgs {
    fn default() -> Self {
        Self {
            metrics_listen: None,
            tls_cert_file: None,
            tls_key_file: None,
            config_poll_interval: Duration::from_secs(1),
            config_poll_ms: None,
            stream_heartbeat: Duration::from_secs(10),
            stream_heartbeat_ms: None,
            snapshot_chunk: 1000,
            stream_compression: StreamCompression::Zstd,
        }
    }
}

impl DistributionArgs {
    /// Moves values given under the renamed `CP_CONFIG_POLL_MS` and `CP_STREAM_HEARTBEAT_MS` to their
    /// new settings, with a deprecation warning each.
    pub fn apply_renamed(&mut self, warnings: &mut Vec<String>) {
        Renamed {
            old_flag: "config-poll-ms",
            old_env: "CP_CONFIG_POLL_MS",
            new_flag: "config-poll-interval",
            new_env: "CP_CONFIG_POLL_INTERVAL",
        }
        .apply(
            &mut self.config_poll_ms,
            &mut self.config_poll_interval,
            warnings,
        );
        Renamed {
            old_flag: "stream-heartbeat-ms",
            old_env: "CP_STREAM_HEARTBEAT_MS",
            new_flag: "stream-heartbeat",
            new_env: "CP_STREAM_HEARTBEAT",
        }
        .apply(
            &mut self.stream_heartbeat_ms,
            &mut self.stream_heartbeat,
            warnings,
        );
    }
}
