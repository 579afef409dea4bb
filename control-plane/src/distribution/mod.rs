//! Config distribution: follows the change log in Postgres (any replica's commits), keeps the current
//! config in memory, and streams snapshots and deltas to data planes with ACK/NACK (SPEC §5).

pub mod service;
pub mod sessions;
pub mod state;
pub mod watcher;

use std::sync::Arc;

use gateway_proto::v1::config_distribution_service_server::ConfigDistributionServiceServer;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use service::{Authorizer, DistributionService, StreamSettings};
pub use sessions::{DistributionMetrics, Sessions};
pub use state::ConfigState;
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
        authorize_data_plane: Authorizer,
        authorize_admin: Authorizer,
    ) -> ConfigDistributionServiceServer<DistributionService> {
        ConfigDistributionServiceServer::new(DistributionService {
            state: self.state.clone(),
            sessions: self.sessions.clone(),
            settings,
            authorize_data_plane,
            authorize_admin,
            shutdown: self.shutdown.clone(),
        })
    }
}
