//! The dispatcher's config: actions (URL, compiled parameter schema, breaker, concurrency slots)
//! and HMAC keys per app, fed by the config stream (docs/dispatcher.md, "Configuration from the
//! control plane"). The table swaps whole; a lookup never waits for an update.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use gateway_proto::v1::{ActionRoute, DataPlaneRole, HmacKeyRoute};
use gateway_shared::snapshot::{ConfigDelta, ConfigSnapshot};
use gateway_shared::{AppId, Secret};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::breaker::{Breaker, BreakerSettings};
use super::invocation::Tenancy;
use crate::distribution::{ConfigSink, DispatchDelta, DispatchSnapshot};

/// One registered action.
pub struct Action {
    /// The action's id.
    pub id: String,
    /// Whose it is.
    pub tenancy: Tenancy,
    /// Its name (unique per app).
    pub name: String,
    /// Where calls go.
    pub url: String,
    /// The compiled parameter schema, or why it does not compile.
    pub schema: Result<jsonschema::Validator, String>,
    /// Its circuit breaker (kept across updates that leave the URL as it is).
    pub breaker: Arc<Breaker>,
    /// Its concurrency slots (kept across updates).
    pub slots: Arc<Semaphore>,
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Action")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// An active HMAC key of an app.
#[derive(Debug)]
pub struct HmacKey {
    /// Sent as `X-Signature-Key-Id`.
    pub key_id: String,
    /// Whose it is.
    pub tenancy: Tenancy,
    /// The key text (its UTF-8 bytes are the HMAC key).
    pub value: Secret<String>,
    /// Creation time; the newest key of an app signs.
    pub created_at_unix_ms: i64,
}

/// Settings for the per-action state created with each new action.
#[derive(Debug, Clone, Copy)]
pub struct ActionSettings {
    /// Calls of one action at a time.
    pub concurrency: usize,
    /// Its breaker.
    pub breaker: BreakerSettings,
}

#[derive(Default)]
struct Table {
    version: u64,
    actions: HashMap<String, Arc<Action>>,
    by_name: HashMap<(AppId, String), Arc<Action>>,
    keys: HashMap<String, Arc<HmacKey>>,
    newest_key: HashMap<AppId, Arc<HmacKey>>,
}

impl Table {
    fn reindex(&mut self) {
        self.by_name = self
            .actions
            .values()
            .map(|a| ((a.tenancy.app_id, a.name.clone()), a.clone()))
            .collect();
        let mut newest: HashMap<AppId, Arc<HmacKey>> = HashMap::new();
        for key in self.keys.values() {
            let slot = newest
                .entry(key.tenancy.app_id)
                .or_insert_with(|| key.clone());
            if (key.created_at_unix_ms, &key.key_id) > (slot.created_at_unix_ms, &slot.key_id) {
                *slot = key.clone();
            }
        }
        self.newest_key = newest;
    }
}

/// The actions and keys served now; cheap to clone.
#[derive(Clone)]
pub struct Actions {
    table: Arc<ArcSwap<Table>>,
    write: Arc<Mutex<()>>,
    settings: ActionSettings,
}

impl Actions {
    /// An empty table (not ready until a snapshot is applied).
    pub fn new(settings: ActionSettings) -> Self {
        Self {
            table: Arc::new(ArcSwap::from_pointee(Table::default())),
            write: Arc::new(Mutex::new(())),
            settings,
        }
    }

    /// The config version served (0 = none yet).
    pub fn version(&self) -> u64 {
        self.table.load().version
    }

    /// Whether a snapshot has been applied.
    pub fn is_ready(&self) -> bool {
        self.version() > 0
    }

    /// Number of actions served.
    pub fn len(&self) -> usize {
        self.table.load().actions.len()
    }

    /// Whether no action is served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every action served (for the breaker gauges).
    pub fn all(&self) -> Vec<Arc<Action>> {
        self.table.load().actions.values().cloned().collect()
    }

    /// The action an invocation names, if it belongs to the invocation's app.
    pub fn find(&self, tenancy: &Tenancy, name: &str) -> Option<Arc<Action>> {
        self.table
            .load()
            .by_name
            .get(&(tenancy.app_id, name.to_owned()))
            .filter(|a| a.tenancy == *tenancy)
            .cloned()
    }

    /// The key calls of `tenancy`'s app are signed with now: its newest active key.
    pub fn signing_key(&self, tenancy: &Tenancy) -> Option<Arc<HmacKey>> {
        self.table
            .load()
            .newest_key
            .get(&tenancy.app_id)
            .filter(|k| k.tenancy == *tenancy)
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces everything with a snapshot; `Err` (a malformed entry) leaves the table as it was.
    pub fn apply_snapshot(&self, snapshot: DispatchSnapshot) -> Result<(), String> {
        let _guard = self.lock();
        let old = self.table.load_full();
        let mut table = Table {
            version: snapshot.version,
            ..Table::default()
        };
        for route in snapshot.actions {
            let action = self.build_action(route, &old.actions)?;
            table.actions.insert(action.id.clone(), Arc::new(action));
        }
        for route in snapshot.hmac_keys {
            let key = hmac_key(route)?;
            table.keys.insert(key.key_id.clone(), Arc::new(key));
        }
        table.reindex();
        self.table.store(Arc::new(table));
        Ok(())
    }

    /// Applies a delta; `Err` (a version gap or a malformed entry) leaves the table as it was.
    pub fn apply_delta(&self, delta: DispatchDelta) -> Result<(), String> {
        let _guard = self.lock();
        let old = self.table.load_full();
        if old.version != delta.from_version {
            return Err(format!(
                "delta from version {} does not apply to version {}",
                delta.from_version, old.version
            ));
        }
        let mut table = Table {
            version: delta.to_version,
            actions: old.actions.clone(),
            keys: old.keys.clone(),
            ..Table::default()
        };
        for id in &delta.action_removals {
            table.actions.remove(id);
        }
        for route in delta.action_upserts {
            let action = self.build_action(route, &old.actions)?;
            table.actions.insert(action.id.clone(), Arc::new(action));
        }
        for id in &delta.hmac_key_removals {
            table.keys.remove(id);
        }
        for route in delta.hmac_key_upserts {
            let key = hmac_key(route)?;
            table.keys.insert(key.key_id.clone(), Arc::new(key));
        }
        table.reindex();
        self.table.store(Arc::new(table));
        Ok(())
    }

    fn build_action(
        &self,
        route: ActionRoute,
        previous: &HashMap<String, Arc<Action>>,
    ) -> Result<Action, String> {
        let tenancy = tenancy(
            &route.organization_id,
            &route.workspace_id,
            &route.app_id,
            "action",
        )?;
        if route.action_id.is_empty() || route.name.is_empty() {
            return Err("action route without an id or a name".into());
        }
        let schema: Value = serde_json::from_str(&route.json_schema).map_err(|e| {
            format!(
                "action {} has a json_schema that is not JSON: {e}",
                route.action_id
            )
        })?;
        // Compiled once per action version, here, off the invocation path.
        let compiled = compile_schema(&schema);
        if let Err(e) = &compiled {
            tracing::warn!(action_id = %route.action_id, error = %e, "action schema does not compile; its invocations fail");
        }
        let old = previous.get(&route.action_id);
        let breaker = match old {
            Some(a) if a.url == route.webhook_url => a.breaker.clone(),
            _ => Arc::new(Breaker::new(self.settings.breaker)),
        };
        let slots = match old {
            Some(a) => a.slots.clone(),
            None => Arc::new(Semaphore::new(self.settings.concurrency)),
        };
        Ok(Action {
            id: route.action_id,
            tenancy,
            name: route.name,
            url: route.webhook_url,
            schema: compiled,
            breaker,
            slots,
        })
    }
}

/// Compiles a parameter schema: the draft named by `$schema` (2020-12 when absent); references
/// outside the schema are never fetched (they make the schema fail to compile).
pub fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .build(schema)
        .map_err(|e| format!("the action's json_schema does not compile: {e}"))
}

fn tenancy(org: &str, ws: &str, app: &str, what: &str) -> Result<Tenancy, String> {
    let parse = |s: &str, field: &str| {
        uuid::Uuid::parse_str(s).map_err(|_| format!("{what} route has an invalid {field}"))
    };
    Ok(Tenancy {
        organization_id: parse(org, "organization_id")?.into(),
        workspace_id: parse(ws, "workspace_id")?.into(),
        app_id: parse(app, "app_id")?.into(),
    })
}

fn hmac_key(route: HmacKeyRoute) -> Result<HmacKey, String> {
    let tenancy = tenancy(
        &route.organization_id,
        &route.workspace_id,
        &route.app_id,
        "HMAC key",
    )?;
    if route.key_id.is_empty() || route.value.is_empty() {
        return Err("HMAC key route without an id or a value".into());
    }
    Ok(HmacKey {
        key_id: route.key_id,
        tenancy,
        value: Secret::new(route.value),
        created_at_unix_ms: route.created_at_unix_ms,
    })
}

/// The table as the config stream's sink (role DISPATCH).
pub struct ActionsSink(pub Actions);

impl ConfigSink for ActionsSink {
    fn version(&self) -> u64 {
        self.0.version()
    }

    fn role(&self) -> DataPlaneRole {
        DataPlaneRole::Dispatch
    }

    fn apply_snapshot(&self, _snapshot: ConfigSnapshot) -> Result<(), String> {
        Err("a dispatcher serves no webhooks".into())
    }

    fn apply_delta(&self, _delta: ConfigDelta) -> Result<(), String> {
        Err("a dispatcher serves no webhooks".into())
    }

    fn snapshot(&self) -> ConfigSnapshot {
        ConfigSnapshot::default()
    }

    fn apply_dispatch_snapshot(&self, snapshot: DispatchSnapshot) -> Result<(), String> {
        self.0.apply_snapshot(snapshot)
    }

    fn apply_dispatch_delta(&self, delta: DispatchDelta) -> Result<(), String> {
        self.0.apply_delta(delta)
    }
}

#[cfg(test)]
mod tests;
