//! The data planes connected to this replica: what each was sent and has acknowledged, and the
//! convergence metrics (commit → ACK per data plane, and commit → every connected data plane ACKed).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use gateway_proto::v1::DataPlaneStatus;
use gateway_shared::{OrganizationId, WorkspaceId};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::state::Scope;

/// Label naming one data plane (bounded by the number of data planes an operator runs).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DataPlaneLabel {
    /// The id the data plane sent in its Hello.
    pub data_plane: String,
}

/// Prometheus metrics of config distribution.
pub struct DistributionMetrics {
    config_version: Gauge,
    connected: Gauge,
    acked_version: Family<DataPlaneLabel, Gauge>,
    convergence: Family<DataPlaneLabel, Histogram, fn() -> Histogram>,
    all_acked: Histogram,
    apply: Histogram,
    nacks: Counter,
}

fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl DistributionMetrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let m = Self {
            config_version: Gauge::default(),
            connected: Gauge::default(),
            acked_version: Family::default(),
            convergence: Family::new_with_constructor(latency_buckets),
            all_acked: latency_buckets(),
            apply: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            nacks: Counter::default(),
        };
        registry.register(
            "gateway_config_version",
            "Newest config version this replica knows",
            m.config_version.clone(),
        );
        registry.register(
            "gateway_config_stream_connections",
            "Data planes connected to this replica",
            m.connected.clone(),
        );
        registry.register(
            "gateway_config_acked_version",
            "Config version each connected data plane has acknowledged",
            m.acked_version.clone(),
        );
        registry.register(
            "gateway_config_convergence_seconds",
            "Time from a change's commit to a data plane's ACK of it",
            m.convergence.clone(),
        );
        registry.register(
            "gateway_config_all_acked_seconds",
            "Time from a change's commit until every connected data plane ACKed it",
            m.all_acked.clone(),
        );
        registry.register(
            "gateway_config_apply_seconds",
            "Time data planes report for applying an update",
            m.apply.clone(),
        );
        registry.register(
            "gateway_config_nacks",
            "Updates data planes rejected",
            m.nacks.clone(),
        );
        Arc::new(m)
    }
}

struct Inner {
    next_id: u64,
    sessions: HashMap<u64, DataPlaneStatus>,
    /// The organization and workspace of each session's token.
    owners: HashMap<u64, (OrganizationId, Option<WorkspaceId>)>,
    /// Versions not yet ACKed by every connected data plane, with their commit time.
    pending: BTreeMap<u64, i64>,
}

/// The registry of connected data planes.
pub struct Sessions {
    inner: Mutex<Inner>,
    metrics: Arc<DistributionMetrics>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Sessions {
    /// An empty registry reporting to `metrics`.
    pub fn new(metrics: Arc<DistributionMetrics>) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                next_id: 0,
                sessions: HashMap::new(),
                owners: HashMap::new(),
                pending: BTreeMap::new(),
            }),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps inconsistent in a harmful way.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connected data plane whose token has `scope`; it is removed when the guard drops.
    pub fn open(
        self: &Arc<Self>,
        data_plane_id: &str,
        peer: String,
        compression: &str,
        scope: &Scope,
    ) -> SessionGuard {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.sessions.insert(
            id,
            DataPlaneStatus {
                data_plane_id: data_plane_id.to_owned(),
                connected_at_unix_ms: now_ms(),
                peer,
                compression: compression.to_owned(),
                organization_id: scope.organization_id.to_string(),
                workspace_id: scope
                    .workspace_id
                    .map(|w| w.to_string())
                    .unwrap_or_default(),
                ..Default::default()
            },
        );
        inner
            .owners
            .insert(id, (scope.organization_id, scope.workspace_id));
        self.metrics.connected.set(inner.sessions.len() as i64);
        SessionGuard {
            sessions: self.clone(),
            id,
            label: DataPlaneLabel {
                data_plane: data_plane_id.to_owned(),
            },
        }
    }

    /// A new config version exists.
    pub fn new_version(&self, version: u64, committed_at_ms: i64) {
        self.metrics.config_version.set(version as i64);
        let mut inner = self.lock();
        if inner.sessions.is_empty() {
            inner.pending.clear();
            return;
        }
        inner.pending.insert(version, committed_at_ms);
        while inner.pending.len() > 1024 {
            inner.pending.pop_first();
        }
    }

    /// The connected data planes whose token belongs to `organization_id` and, when the caller is
    /// scoped to a workspace, to that same workspace (an organization-wide plane serves other
    /// workspaces too, so a workspace-scoped caller does not see it).
    pub fn list(
        &self,
        organization_id: OrganizationId,
        workspace_id: Option<WorkspaceId>,
    ) -> Vec<DataPlaneStatus> {
        let inner = self.lock();
        let mut all: Vec<_> = inner
            .sessions
            .iter()
            .filter(|(id, _)| {
                inner.owners.get(id).is_some_and(|(org, ws)| {
                    *org == organization_id && (workspace_id.is_none() || *ws == workspace_id)
                })
            })
            .map(|(_, s)| s.clone())
            .collect();
        all.sort_by(|a, b| a.data_plane_id.cmp(&b.data_plane_id));
        all
    }

    fn settle(&self, inner: &mut Inner) {
        let now = now_ms();
        while let Some((&version, &at)) = inner.pending.first_key_value() {
            if inner.sessions.values().all(|s| s.acked_version >= version) {
                if at > 0 {
                    self.metrics
                        .all_acked
                        .observe((now - at).max(0) as f64 / 1000.0);
                }
                inner.pending.pop_first();
            } else {
                break;
            }
        }
    }
}

/// One connected data plane; dropping it unregisters it.
pub struct SessionGuard {
    sessions: Arc<Sessions>,
    id: u64,
    label: DataPlaneLabel,
}

impl SessionGuard {
    /// An update with `version` was sent.
    pub fn sent(&self, version: u64) {
        if let Some(s) = self.sessions.lock().sessions.get_mut(&self.id) {
            s.sent_version = version;
        }
    }

    /// The data plane applied `version` (committed at `committed_at_ms`, 0 if unknown).
    pub fn acked(&self, version: u64, committed_at_ms: i64, apply_micros: u64) {
        let m = &self.sessions.metrics;
        m.acked_version
            .get_or_create(&self.label)
            .set(version as i64);
        m.apply.observe(apply_micros as f64 / 1e6);
        let mut inner = self.sessions.lock();
        if let Some(s) = inner.sessions.get_mut(&self.id) {
            s.acked_version = version;
            s.last_nack_reason.clear();
            if committed_at_ms > 0 {
                let ms = (now_ms() - committed_at_ms).max(0);
                s.last_convergence_ms = ms;
                m.convergence
                    .get_or_create(&self.label)
                    .observe(ms as f64 / 1000.0);
            }
        }
        self.sessions.settle(&mut inner);
    }

    /// The data plane rejected an update and still serves `serving_version`.
    pub fn nacked(&self, serving_version: u64, reason: &str) {
        self.sessions.metrics.nacks.inc();
        if let Some(s) = self.sessions.lock().sessions.get_mut(&self.id) {
            s.acked_version = serving_version;
            s.last_nack_reason = reason.chars().take(500).collect();
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let m = &self.sessions.metrics;
        let mut inner = self.sessions.lock();
        inner.sessions.remove(&self.id);
        inner.owners.remove(&self.id);
        m.connected.set(inner.sessions.len() as i64);
        if !inner
            .sessions
            .values()
            .any(|s| s.data_plane_id == self.label.data_plane)
        {
            m.acked_version.remove(&self.label);
            m.convergence.remove(&self.label);
        }
        self.sessions.settle(&mut inner);
    }
}
