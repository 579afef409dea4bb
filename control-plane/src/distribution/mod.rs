//! Config distribution: follows the change log in Postgres (any replica's commits), keeps the current
//! config in memory, and streams snapshots and deltas to data planes with ACK/NACK. Ingest planes
//! receive webhooks; dispatch planes receive actions and active HMAC keys (docs/actions.md,
//! "Distribution").

pub mod messages;
pub mod service;
pub mod sessions;
pub mod state;
pub mod store;
pub mod watcher;

use std::sync::Arc;

use gateway_proto::v1::config_distribution_service_server::ConfigDistributionServiceServer;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use service::{DistributionService, StreamSettings};
pub use sessions::{DistributionMetrics, Sessions};
pub use state::{ConfigState, PlaneRole, Scope};
pub use store::PgConfigStore;
pub use watcher::{ChangeBatch, ConfigStore, WatcherConfig};

/// The running distribution machinery of one replica.
pub struct Distribution {
    state: watch::Receiver<Option<Arc<ConfigState>>>,
    sessions: Arc<Sessions>,
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
            shutdown,
        }
    }

    /// The newest published config (None until the first read finished).
    pub fn current(&self) -> Option<Arc<ConfigState>> {
        self.state.borrow().clone()
    }

    /// The gRPC service.
    pub fn service(
        &self,
        settings: StreamSettings,
        auth: crate::auth::Authenticator,
        failed: Arc<crate::failed_triggers::FailedTriggers>,
    ) -> ConfigDistributionServiceServer<DistributionService> {
        ConfigDistributionServiceServer::new(DistributionService {
            state: self.state.clone(),
            sessions: self.sessions.clone(),
            settings,
            auth,
            failed,
            shutdown: self.shutdown.clone(),
        })
        // Failed-trigger batches carry payloads: allow up to 16 MiB (data planes stay below it).
        .max_decoding_message_size(crate::failed_triggers::report::MAX_REPORT_MESSAGE_BYTES)
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

    /// Milliseconds between catch-up reads of the change log when no notification arrives.
    #[arg(long, env = "CP_CONFIG_POLL_MS", default_value_t = 1000)]
    pub config_poll_ms: u64,

    /// Milliseconds between heartbeats on idle config streams.
    #[arg(long, env = "CP_STREAM_HEARTBEAT_MS", default_value_t = 10_000)]
    pub stream_heartbeat_ms: u64,

    /// Objects (webhooks, or actions and HMAC keys) per snapshot chunk on the config stream.
    #[arg(long, env = "CP_SNAPSHOT_CHUNK", default_value_t = 1000)]
    pub snapshot_chunk: usize,
}

impl Default for DistributionArgs {
    fn default() -> Self {
        Self {
            metrics_listen: None,
            tls_cert_file: None,
            tls_key_file: None,
            config_poll_ms: 1000,
            stream_heartbeat_ms: 10_000,
            snapshot_chunk: 1000,
        }
    }
}
