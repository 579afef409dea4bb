//! The routing table as the config stream's sink, with a mirror of the served config for the disk
//! cache (routes are compiled and do not keep the original config).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gateway_shared::snapshot::{ConfigDelta, ConfigSnapshot, WebhookConfig};
use gateway_shared::WebhookId;

use super::client::{ConfigSink, SnapshotStage};
use crate::routing::{Routes, TableBuilder};

/// The served config as the disk cache sees it: version and webhooks by id.
type Mirror = Arc<Mutex<(u64, HashMap<WebhookId, WebhookConfig>)>>;

/// The routing table as the stream's sink, with a mirror of the served config when the disk cache
/// needs it (routes are compiled and do not keep the original config).
pub struct RoutesSink {
    routes: Routes,
    mirror: Option<Mirror>,
}

impl RoutesSink {
    /// A sink over `routes`; `mirror` keeps a copy for [`ConfigSink::snapshot`].
    pub fn new(routes: Routes, mirror: bool) -> Self {
        Self {
            routes,
            mirror: mirror.then(|| Arc::new(Mutex::new((0, HashMap::new())))),
        }
    }

    fn lock_mirror(
        &self,
    ) -> Option<std::sync::MutexGuard<'_, (u64, HashMap<WebhookId, WebhookConfig>)>> {
        self.mirror.as_ref().map(|m| lock(m))
    }
}

fn lock(m: &Mirror) -> std::sync::MutexGuard<'_, (u64, HashMap<WebhookId, WebhookConfig>)> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A snapshot compiled into a new table chunk by chunk (and copied for the mirror), served on
/// `finish`.
struct Stage {
    routes: Routes,
    builder: TableBuilder,
    mirror: Option<(Mirror, HashMap<WebhookId, WebhookConfig>)>,
}

impl SnapshotStage for Stage {
    fn add(&mut self, webhooks: Vec<WebhookConfig>) -> Result<(), String> {
        for w in webhooks {
            if let Some((_, copy)) = &mut self.mirror {
                copy.insert(w.webhook_id, w.clone());
            }
            self.builder.add(w).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>, version: u64) -> Result<(), String> {
        let Stage {
            routes,
            builder,
            mirror,
        } = *self;
        routes.install(builder, version);
        if let Some((m, copy)) = mirror {
            *lock(&m) = (version, copy);
        }
        Ok(())
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

    fn stage_snapshot(&self) -> Option<Box<dyn SnapshotStage>> {
        Some(Box::new(Stage {
            routes: self.routes.clone(),
            builder: self.routes.builder(),
            mirror: self.mirror.clone().map(|m| (m, HashMap::new())),
        }))
    }

    fn fleet_share(&self, planes: u32) {
        self.routes.set_fleet_planes(planes);
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
