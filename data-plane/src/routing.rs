//! The routing table: an immutable map built from a [`ConfigSnapshot`] and swapped atomically, so a
//! request sees one consistent version and lookups never take a lock. The config-distribution stream
//! calls [`Routes::apply_snapshot`] / [`Routes::apply_delta`] and ACKs on `Ok`, NACKs on `Err` (the
//! old table stays in place).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use gateway_shared::snapshot::{
    ApiKeyHash, ConfigDelta, ConfigSnapshot, ProviderSecrets, TriggerBinding, WebhookConfig,
};
use gateway_shared::{
    AppId, CorrelationPath, OrganizationId, Provider, TriggerType, WebhookId, WorkspaceId,
};
use subtle::ConstantTimeEq;

use crate::rate_limit::WebhookLimiter;
use crate::rotation::{is_live, MatchedSlot, SecretSlot};

/// The four ids of a webhook URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteKey {
    /// Organization segment.
    pub organization_id: OrganizationId,
    /// Workspace segment.
    pub workspace_id: WorkspaceId,
    /// App segment.
    pub app_id: AppId,
    /// Webhook segment.
    pub webhook_id: WebhookId,
}

#[cfg(test)]
impl RouteKey {
    /// Fresh random ids, for unit tests.
    pub(crate) fn random() -> Self {
        Self {
            organization_id: OrganizationId::new_random(),
            workspace_id: WorkspaceId::new_random(),
            app_id: AppId::new_random(),
            webhook_id: WebhookId::new_random(),
        }
    }
}

/// One active webhook, compiled for serving (paths parsed, derived facts precomputed).
#[derive(Debug)]
pub struct Route {
    /// Where the webhook lives.
    pub key: RouteKey,
    /// How its requests are verified.
    pub provider: Provider,
    /// Accepted API key hashes.
    pub api_keys: Vec<ApiKeyHash>,
    /// Provider secrets (redacted in `Debug`).
    pub secrets: ProviderSecrets,
    /// Bound triggers, carried by every accepted event.
    pub bindings: Vec<TriggerBinding>,
    /// Parsed correlation key path.
    pub correlation: Option<CorrelationPath>,
    /// Whether any binding resumes an instance (so the correlation value is needed and is the key).
    pub has_resume: bool,
    /// Carry the raw body in the envelope.
    pub include_raw_body: bool,
    /// How long an accepted delivery is remembered to answer its replays (docs/data-plane.md,
    /// "Replay window"); `None` = off.
    pub replay_window: Option<std::time::Duration>,
    /// This plane's share of the webhook's rate limit, if it has one.
    pub rate_limiter: Option<Arc<WebhookLimiter>>,
}

impl Route {
    /// Which accepted key valid at `now` (unix seconds) `api_key` matches: the current one, or a
    /// previous one inside its reset grace window. Every configured hash is compared in constant
    /// time, so timing reveals neither the key nor which slot matched.
    pub fn matching_api_key(&self, api_key: &str, now: i64) -> Option<SecretSlot> {
        let hash = gateway_shared::snapshot::sha256(api_key.as_bytes());
        let mut matched = MatchedSlot::new();
        for (i, k) in self.api_keys.iter().enumerate() {
            let live = subtle::Choice::from(u8::from(is_live(k.not_after, now)));
            matched.record(i, k.sha256.ct_eq(&hash) & live);
        }
        matched.slot()
    }

    /// Compiles `w` for a fleet of `planes`; the bucket of `previous` (the same webhook in the
    /// table being replaced) is kept when the limit did not change.
    fn compile(
        w: WebhookConfig,
        planes: u32,
        previous: Option<&Arc<Route>>,
    ) -> Result<Route, ApplyError> {
        let invalid = |reason: String| ApplyError::InvalidWebhook {
            webhook_id: w.webhook_id,
            reason,
        };
        let correlation = match &w.correlation_key_path {
            Some(text) => Some(CorrelationPath::parse(text).map_err(|e| invalid(e.to_string()))?),
            None => None,
        };
        let has_resume = w
            .bindings
            .iter()
            .any(|b| b.trigger_type == TriggerType::ResumeProcess);
        if has_resume && correlation.is_none() {
            return Err(invalid(
                "a RESUME_PROCESS binding needs a correlation key path".to_owned(),
            ));
        }
        Ok(Route {
            key: RouteKey {
                organization_id: w.organization_id,
                workspace_id: w.workspace_id,
                app_id: w.app_id,
                webhook_id: w.webhook_id,
            },
            provider: w.provider,
            api_keys: w.api_keys,
            secrets: w.secrets,
            bindings: w.bindings,
            correlation,
            has_resume,
            include_raw_body: w.options.include_raw_body,
            replay_window: (w.options.replay_window_seconds > 0).then(|| {
                std::time::Duration::from_secs(u64::from(w.options.replay_window_seconds))
            }),
            rate_limiter: w.options.rate_limit.map(|limit| {
                previous
                    .and_then(|p| p.rate_limiter.as_ref())
                    .filter(|l| l.limit() == limit)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(WebhookLimiter::new(limit, planes)))
            }),
        })
    }
}

/// An immutable routing table at one config version. The map is persistent (a hash array mapped
/// trie): a delta's table shares every untouched entry with the table before it, so applying a
/// one-webhook change costs what it changes, not the size of the table (docs/benchmarks.md).
#[derive(Debug)]
pub struct RoutingTable {
    version: u64,
    routes: imbl::HashMap<WebhookId, Arc<Route>>,
    applied_at: SystemTime,
}

impl RoutingTable {
    /// The config version this table reflects.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When this table was built.
    pub fn applied_at(&self) -> SystemTime {
        self.applied_at
    }

    /// Number of active webhooks.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether no webhook is active.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The route for a URL's ids, if the webhook is active and the tenancy ids all match.
    pub fn get(&self, key: &RouteKey) -> Option<&Arc<Route>> {
        self.routes.get(&key.webhook_id).filter(|r| r.key == *key)
    }

    fn with_delta(&self, delta: ConfigDelta, planes: u32) -> Result<RoutingTable, ApplyError> {
        if delta.from_version != self.version {
            return Err(ApplyError::VersionMismatch {
                current: self.version,
                from_version: delta.from_version,
            });
        }
        if delta.to_version <= delta.from_version {
            return Err(ApplyError::VersionNotIncreasing {
                from_version: delta.from_version,
                to_version: delta.to_version,
            });
        }
        // Compile first so a bad upsert leaves nothing half-applied.
        let upserts = delta
            .upserts
            .into_iter()
            .map(|w| {
                let before = self.routes.get(&w.webhook_id);
                Route::compile(w, planes, before)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // O(1): the new table shares the old one's entries until they change.
        let mut routes = self.routes.clone();
        for id in &delta.removals {
            routes.remove(id);
        }
        for r in upserts {
            routes.insert(r.key.webhook_id, Arc::new(r));
        }
        Ok(RoutingTable {
            version: delta.to_version,
            routes,
            applied_at: SystemTime::now(),
        })
    }
}

/// A routing table being built from a snapshot's webhooks as they arrive, so a large snapshot is
/// compiled chunk by chunk while the rest of it is still on the wire; [`Routes::install`] serves it
/// (docs/data-plane.md, "Config stream"). Nothing is served until then.
pub struct TableBuilder {
    routes: imbl::HashMap<WebhookId, Arc<Route>>,
    /// The table being replaced: its rate-limit buckets are kept for unchanged limits.
    base: Option<Arc<RoutingTable>>,
    planes: u32,
}

impl TableBuilder {
    /// Compiles and adds one webhook; a webhook that cannot be served, or appears twice, is an error
    /// (the builder is then to be dropped).
    pub fn add(&mut self, w: WebhookConfig) -> Result<(), ApplyError> {
        let id = w.webhook_id;
        let before = self.base.as_ref().and_then(|t| t.routes.get(&id));
        let route = Arc::new(Route::compile(w, self.planes, before)?);
        if self.routes.insert(id, route).is_some() {
            return Err(ApplyError::DuplicateWebhook { webhook_id: id });
        }
        Ok(())
    }

    /// Webhooks added so far.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether none was added.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// Why a snapshot or delta was not applied; the previous table stays in place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// A delta arrived before any snapshot.
    #[error("no snapshot loaded yet; a delta needs a base")]
    NoSnapshot,
    /// A delta does not start at the current version.
    #[error("delta starts at version {from_version} but the table is at version {current}")]
    VersionMismatch {
        /// The applied version.
        current: u64,
        /// The delta's base.
        from_version: u64,
    },
    /// A delta's target version is not after its base.
    #[error("delta goes from version {from_version} to {to_version}")]
    VersionNotIncreasing {
        /// The delta's base.
        from_version: u64,
        /// The delta's target.
        to_version: u64,
    },
    /// A webhook entry cannot be served.
    #[error("webhook {webhook_id}: {reason}")]
    InvalidWebhook {
        /// The webhook.
        webhook_id: WebhookId,
        /// What is wrong with it.
        reason: String,
    },
    /// The same webhook appears twice in a snapshot.
    #[error("webhook {webhook_id} appears more than once")]
    DuplicateWebhook {
        /// The webhook.
        webhook_id: WebhookId,
    },
}

/// The shared handle to the current routing table. Cheap to clone.
#[derive(Clone, Default)]
pub struct Routes {
    current: Arc<ArcSwapOption<RoutingTable>>,
    // Serializes writers so two concurrent deltas cannot both apply against the same base.
    write: Arc<std::sync::Mutex<()>>,
    // The planes sharing this plane's rate limits (0 = never told: counts as 1).
    planes: Arc<AtomicU32>,
}

impl Routes {
    /// An empty handle: not ready until a snapshot is applied.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current table (one consistent version for the caller to hold), or `None` before the first snapshot.
    pub fn load(&self) -> Option<Arc<RoutingTable>> {
        self.current.load_full()
    }

    /// Whether a snapshot has been applied.
    pub fn is_ready(&self) -> bool {
        self.current.load().is_some()
    }

    /// The applied config version, if any.
    pub fn version(&self) -> Option<u64> {
        self.current.load().as_ref().map(|t| t.version)
    }

    /// Replaces the table with one built from a full snapshot (rate-limit buckets of webhooks
    /// whose limit did not change are kept).
    pub fn apply_snapshot(&self, snapshot: ConfigSnapshot) -> Result<(), ApplyError> {
        let mut builder = self.builder();
        for w in snapshot.webhooks {
            builder.add(w)?;
        }
        self.install(builder, snapshot.version);
        Ok(())
    }

    /// Starts building a table to replace the current one (see [`TableBuilder`]).
    pub fn builder(&self) -> TableBuilder {
        TableBuilder {
            routes: imbl::HashMap::new(),
            base: self.current.load_full(),
            planes: self.fleet_planes(),
        }
    }

    /// Serves the table `builder` built, at `version`.
    pub fn install(&self, builder: TableBuilder, version: u64) {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let planes = self.fleet_planes();
        if planes != builder.planes {
            // The fleet's size changed while the table was being built.
            for limiter in builder
                .routes
                .values()
                .filter_map(|r| r.rate_limiter.as_ref())
            {
                limiter.reshare(planes);
            }
        }
        self.current.store(Some(Arc::new(RoutingTable {
            version,
            routes: builder.routes,
            applied_at: SystemTime::now(),
        })));
    }

    /// How many planes share the rate limits this plane enforces (docs/data-plane.md, "Rate
    /// limits"); 1 until the control plane says otherwise.
    pub fn fleet_planes(&self) -> u32 {
        self.planes.load(Ordering::Acquire).max(1)
    }

    /// The control plane counted `planes` planes in this plane's fleet: every bucket is resized
    /// (and refilled) when the number changed.
    pub fn set_fleet_planes(&self, planes: u32) {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let planes = planes.max(1);
        if self.planes.swap(planes, Ordering::AcqRel).max(1) == planes {
            return;
        }
        if let Some(table) = self.current.load_full() {
            for limiter in table
                .routes
                .values()
                .filter_map(|r| r.rate_limiter.as_ref())
            {
                limiter.reshare(planes);
            }
        }
    }

    /// Applies a delta on top of the current table; rejected unless `from_version` is the current version.
    pub fn apply_delta(&self, delta: ConfigDelta) -> Result<(), ApplyError> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let base = self.current.load_full().ok_or(ApplyError::NoSnapshot)?;
        let next = base.with_delta(delta, self.fleet_planes())?;
        self.current.store(Some(Arc::new(next)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use gateway_shared::snapshot::WebhookOptions;

    use super::*;

    fn webhook(provider: Provider) -> WebhookConfig {
        WebhookConfig {
            webhook_id: WebhookId::new_random(),
            organization_id: OrganizationId::new_random(),
            workspace_id: WorkspaceId::new_random(),
            app_id: AppId::new_random(),
            provider,
            api_keys: vec![ApiKeyHash::of("key-1")],
            secrets: ProviderSecrets::default(),
            bindings: vec![],
            correlation_key_path: None,
            options: WebhookOptions::default(),
        }
    }

    impl Route {
        /// Whether `api_key` matches an accepted key valid at `now`.
        fn accepts_api_key(&self, api_key: &str, now: i64) -> bool {
            self.matching_api_key(api_key, now).is_some()
        }
    }

    fn key_of(w: &WebhookConfig) -> RouteKey {
        RouteKey {
            organization_id: w.organization_id,
            workspace_id: w.workspace_id,
            app_id: w.app_id,
            webhook_id: w.webhook_id,
        }
    }

    #[test]
    fn lookups_need_all_four_ids() {
        let w = webhook(Provider::Generic);
        let key = key_of(&w);
        let routes = Routes::new();
        assert!(!routes.is_ready());
        routes
            .apply_snapshot(ConfigSnapshot {
                version: 1,
                webhooks: vec![w],
            })
            .expect("applies");
        let t = routes.load().expect("loaded");
        assert!(t.get(&key).is_some());
        let other_app = RouteKey {
            app_id: AppId::new_random(),
            ..key
        };
        assert!(
            t.get(&other_app).is_none(),
            "a webhook id under another app is not found"
        );
    }

    #[test]
    fn deltas_apply_in_order_only() {
        let a = webhook(Provider::Generic);
        let b = webhook(Provider::Slack);
        let (ka, kb) = (key_of(&a), key_of(&b));
        let routes = Routes::new();
        assert_eq!(
            routes.apply_delta(ConfigDelta::default()),
            Err(ApplyError::NoSnapshot)
        );
        routes
            .apply_snapshot(ConfigSnapshot {
                version: 5,
                webhooks: vec![a.clone()],
            })
            .expect("applies");
        let stale = ConfigDelta {
            from_version: 4,
            to_version: 6,
            upserts: vec![b.clone()],
            removals: vec![],
        };
        assert!(matches!(
            routes.apply_delta(stale),
            Err(ApplyError::VersionMismatch {
                current: 5,
                from_version: 4
            })
        ));
        let ok = ConfigDelta {
            from_version: 5,
            to_version: 6,
            upserts: vec![b],
            removals: vec![a.webhook_id],
        };
        routes.apply_delta(ok).expect("applies");
        let t = routes.load().expect("loaded");
        assert_eq!(t.version(), 6);
        assert!(t.get(&ka).is_none());
        assert!(t.get(&kb).is_some());
    }

    #[test]
    fn invalid_data_is_rejected_and_the_old_table_kept() {
        let good = webhook(Provider::Generic);
        let routes = Routes::new();
        routes
            .apply_snapshot(ConfigSnapshot {
                version: 1,
                webhooks: vec![good.clone()],
            })
            .expect("applies");

        let mut bad_path = webhook(Provider::Generic);
        bad_path.correlation_key_path = Some("a..b".into());
        let err = routes.apply_snapshot(ConfigSnapshot {
            version: 2,
            webhooks: vec![bad_path],
        });
        assert!(matches!(err, Err(ApplyError::InvalidWebhook { .. })));

        let mut resume_without_path = webhook(Provider::Generic);
        resume_without_path.bindings.push(TriggerBinding {
            trigger_type: TriggerType::ResumeProcess,
            process_definition_id: "p".into(),
            node_id: "n".into(),
            process_correlation_key: Some("k".into()),
            process_key: Some("pk".into()),
        });
        let delta = ConfigDelta {
            from_version: 1,
            to_version: 2,
            upserts: vec![resume_without_path],
            removals: vec![],
        };
        assert!(matches!(
            routes.apply_delta(delta),
            Err(ApplyError::InvalidWebhook { .. })
        ));

        let dup = ConfigSnapshot {
            version: 3,
            webhooks: vec![good.clone(), good.clone()],
        };
        assert!(matches!(
            routes.apply_snapshot(dup),
            Err(ApplyError::DuplicateWebhook { .. })
        ));

        assert_eq!(routes.version(), Some(1));
        assert!(routes.load().expect("loaded").get(&key_of(&good)).is_some());
    }

    #[test]
    fn api_keys_compare_hashes_and_honour_expiry() {
        let mut w = webhook(Provider::Generic);
        w.api_keys = vec![
            ApiKeyHash::of("current"),
            ApiKeyHash {
                not_after: Some(1_000),
                ..ApiKeyHash::of("previous")
            },
        ];
        let r = Route::compile(w, 1, None).expect("valid");
        assert!(r.accepts_api_key("current", 5_000));
        assert!(r.accepts_api_key("previous", 1_000));
        assert!(
            !r.accepts_api_key("previous", 1_001),
            "expired after its grace window"
        );
        assert!(!r.accepts_api_key("wrong", 0));
        assert!(!r.accepts_api_key("", 0));
        assert_eq!(r.matching_api_key("current", 0), Some(SecretSlot::Current));
        assert_eq!(
            r.matching_api_key("previous", 0),
            Some(SecretSlot::Previous)
        );
    }
}
