//! The config as this replica knows it: every active webhook, every action and every active HMAC
//! key at one global revision, plus which objects each recent revision touched. Immutable once
//! published (persistent maps make each new version cheap); every stream session plans what to send
//! from it, filtered by the data plane's scope and role (docs/actions.md, "Distribution").

use std::sync::Arc;

use gateway_shared::snapshot::WebhookConfig;
use gateway_shared::{OrganizationId, WebhookId, WorkspaceId};
use imbl::{HashMap, OrdMap};
use uuid::Uuid;

use crate::actions::routes::{ActionConfig, HmacKeyConfig, Owned};

/// How many recent revisions are remembered for deltas; a data plane further behind gets a snapshot.
pub const DEFAULT_HISTORY: usize = 100_000;

/// An object a revision touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceId {
    /// A webhook.
    Webhook(WebhookId),
    /// An action.
    Action(Uuid),
    /// An HMAC key.
    HmacKey(Uuid),
    /// A revoked API token.
    ApiToken(Uuid),
}

/// One published version of the config.
#[derive(Clone, Debug, Default)]
pub struct ConfigState {
    /// The global revision.
    pub version: u64,
    /// When that revision committed, unix milliseconds (0 when unknown).
    pub committed_at_ms: i64,
    /// Every active webhook.
    pub webhooks: HashMap<WebhookId, Arc<WebhookConfig>>,
    /// Every action.
    pub actions: HashMap<Uuid, Arc<ActionConfig>>,
    /// Every active (not revoked) HMAC key.
    pub hmac_keys: HashMap<Uuid, Arc<HmacKeyConfig>>,
    /// Every revoked API token: a stream opened with one of them ends (a token is never
    /// un-revoked, so this only grows; tokens are few).
    pub revoked_tokens: imbl::HashSet<Uuid>,
    /// Revision → (objects it touched, commit time), for revisions after `floor`.
    history: OrdMap<u64, (Arc<[ResourceId]>, i64)>,
    /// Deltas can be planned from any version >= floor.
    floor: u64,
}

/// Everything active at one revision, as a full read returns it.
#[derive(Debug, Default)]
pub struct FullConfig {
    /// The global revision.
    pub version: u64,
    /// When it committed, unix milliseconds (0 when unknown).
    pub committed_at_ms: i64,
    /// Active webhooks.
    pub webhooks: Vec<WebhookConfig>,
    /// Actions.
    pub actions: Vec<ActionConfig>,
    /// Active HMAC keys.
    pub hmac_keys: Vec<HmacKeyConfig>,
    /// Revoked API tokens.
    pub revoked_tokens: Vec<Uuid>,
}

/// What one revision changed, as read from the change log.
#[derive(Clone, Debug)]
pub struct Change {
    /// The revision.
    pub revision: u64,
    /// The objects it touched.
    pub touched: Vec<ResourceId>,
    /// Commit time, unix milliseconds.
    pub committed_at_ms: i64,
}

/// The current form of the objects a batch of changes touched; an object absent here is gone
/// (deleted, a webhook deactivated, a key revoked).
#[derive(Debug, Default)]
pub struct Current {
    /// Active webhooks.
    pub webhooks: std::collections::HashMap<WebhookId, WebhookConfig>,
    /// Existing actions.
    pub actions: std::collections::HashMap<Uuid, ActionConfig>,
    /// Active HMAC keys.
    pub hmac_keys: std::collections::HashMap<Uuid, HmacKeyConfig>,
}

/// What a data plane serves, and so which resources it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaneRole {
    /// Incoming webhooks: receives webhooks (with their provider secrets and API key hashes) only.
    Ingest,
    /// Outbound action calls: receives actions and active HMAC keys only.
    Dispatch,
}

impl PlaneRole {
    /// The role a `Hello` names; `None` for a value this build does not know (refused, fail closed).
    pub fn from_proto(value: i32) -> Option<Self> {
        match gateway_proto::v1::DataPlaneRole::try_from(value).ok()? {
            gateway_proto::v1::DataPlaneRole::Ingest => Some(PlaneRole::Ingest),
            gateway_proto::v1::DataPlaneRole::Dispatch => Some(PlaneRole::Dispatch),
        }
    }
}

/// What one data plane may receive: objects of its token's organization and, when set, workspace,
/// of the kinds its role needs (least privilege: HMAC keys never reach ingest planes, provider
/// secrets never reach dispatchers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope {
    /// Organization of the data plane's token.
    pub organization_id: OrganizationId,
    /// Workspace of the token, if it is scoped to one.
    pub workspace_id: Option<WorkspaceId>,
    /// The role the data plane declared.
    pub role: PlaneRole,
}

impl Scope {
    /// Whether `o` belongs to this scope's organization and workspace.
    pub fn contains(&self, o: &impl Owned) -> bool {
        let (org, ws) = o.owner();
        org == self.organization_id && self.workspace_id.is_none_or(|mine| mine == ws)
    }

    /// Whether this data plane receives webhooks.
    pub fn gets_webhooks(&self) -> bool {
        self.role == PlaneRole::Ingest
    }

    /// Whether this data plane receives actions and HMAC keys.
    pub fn gets_actions(&self) -> bool {
        self.role == PlaneRole::Dispatch
    }
}

/// The changes of one delta, already filtered for one data plane.
#[derive(Debug, Default)]
pub struct DeltaPlan {
    /// Webhooks to add or replace.
    pub upserts: Vec<Arc<WebhookConfig>>,
    /// Webhooks to drop.
    pub removals: Vec<WebhookId>,
    /// Actions to add or replace.
    pub action_upserts: Vec<Arc<ActionConfig>>,
    /// Actions to drop.
    pub action_removals: Vec<Uuid>,
    /// HMAC keys to add.
    pub hmac_key_upserts: Vec<Arc<HmacKeyConfig>>,
    /// HMAC keys to drop (revoked or gone).
    pub hmac_key_removals: Vec<Uuid>,
}

/// What a session should send to bring a data plane from its version to the current one.
#[derive(Debug)]
pub enum Plan {
    /// It already serves this version.
    UpToDate,
    /// Send the whole config.
    Snapshot,
    /// Send these changes.
    Delta(DeltaPlan),
}

/// The part of a state one data plane receives in a snapshot.
#[derive(Debug, Default)]
pub struct SnapshotPlan {
    /// Webhooks, by id.
    pub webhooks: Vec<Arc<WebhookConfig>>,
    /// Actions, by id.
    pub actions: Vec<Arc<ActionConfig>>,
    /// Active HMAC keys, by id.
    pub hmac_keys: Vec<Arc<HmacKeyConfig>>,
}

impl ConfigState {
    /// A state from a full read; deltas can be planned from its version on.
    pub fn from_full(full: FullConfig) -> Self {
        Self {
            version: full.version,
            committed_at_ms: full.committed_at_ms,
            webhooks: full
                .webhooks
                .into_iter()
                .map(|w| (w.webhook_id, Arc::new(w)))
                .collect(),
            actions: full
                .actions
                .into_iter()
                .map(|a| (a.action_id, Arc::new(a)))
                .collect(),
            hmac_keys: full
                .hmac_keys
                .into_iter()
                .map(|k| (k.key_id, Arc::new(k)))
                .collect(),
            revoked_tokens: full.revoked_tokens.into_iter().collect(),
            history: OrdMap::new(),
            floor: full.version,
        }
    }

    /// The next state: `changes` (revisions after `self.version`, up to `version`) applied, where
    /// `current` holds the current form of every touched object (absent = gone).
    pub fn advance(
        &self,
        version: u64,
        changes: &[Change],
        current: &Current,
        max_history: usize,
    ) -> Self {
        let mut next = self.clone();
        next.version = version.max(self.version);
        for change in changes {
            for id in &change.touched {
                match *id {
                    ResourceId::Webhook(id) => match current.webhooks.get(&id) {
                        Some(w) => {
                            next.webhooks.insert(id, Arc::new(w.clone()));
                        }
                        None => {
                            next.webhooks.remove(&id);
                        }
                    },
                    ResourceId::Action(id) => match current.actions.get(&id) {
                        Some(a) => {
                            next.actions.insert(id, Arc::new(a.clone()));
                        }
                        None => {
                            next.actions.remove(&id);
                        }
                    },
                    ResourceId::HmacKey(id) => match current.hmac_keys.get(&id) {
                        Some(k) => {
                            next.hmac_keys.insert(id, Arc::new(k.clone()));
                        }
                        None => {
                            next.hmac_keys.remove(&id);
                        }
                    },
                    // Only a revocation logs a token.
                    ResourceId::ApiToken(id) => {
                        next.revoked_tokens.insert(id);
                    }
                }
            }
            next.history.insert(
                change.revision,
                (change.touched.clone().into(), change.committed_at_ms),
            );
            next.committed_at_ms = next.committed_at_ms.max(change.committed_at_ms);
        }
        while next.history.len() > max_history {
            match next.history.get_min().map(|(rev, _)| *rev) {
                Some(oldest) => {
                    next.history.remove(&oldest);
                    next.floor = oldest;
                }
                None => break,
            }
        }
        next
    }

    /// What to send to a data plane that serves `from` and may receive `scope`. Removals are not
    /// filtered by tenant (a removed object's owner is no longer known; a data plane ignores unknown
    /// ids), only by role.
    pub fn plan(&self, from: u64, scope: &Scope) -> Plan {
        if from == self.version && from != 0 {
            return Plan::UpToDate;
        }
        if from == 0 || from < self.floor || from > self.version {
            return Plan::Snapshot;
        }
        let mut touched: Vec<ResourceId> = self
            .history
            .range(from + 1..=self.version)
            .flat_map(|(_, (ids, _))| ids.iter().copied())
            .collect();
        touched.sort_unstable();
        touched.dedup();
        let mut plan = DeltaPlan::default();
        for id in touched {
            match id {
                ResourceId::Webhook(id) if scope.gets_webhooks() => match self.webhooks.get(&id) {
                    Some(w) if scope.contains(w.as_ref()) => plan.upserts.push(w.clone()),
                    Some(_) => {}
                    None => plan.removals.push(id),
                },
                ResourceId::Action(id) if scope.gets_actions() => match self.actions.get(&id) {
                    Some(a) if scope.contains(a.as_ref()) => plan.action_upserts.push(a.clone()),
                    Some(_) => {}
                    None => plan.action_removals.push(id),
                },
                ResourceId::HmacKey(id) if scope.gets_actions() => match self.hmac_keys.get(&id) {
                    Some(k) if scope.contains(k.as_ref()) => plan.hmac_key_upserts.push(k.clone()),
                    Some(_) => {}
                    None => plan.hmac_key_removals.push(id),
                },
                ResourceId::Webhook(_)
                | ResourceId::Action(_)
                | ResourceId::HmacKey(_)
                | ResourceId::ApiToken(_) => {}
            }
        }
        Plan::Delta(plan)
    }

    /// Everything `scope` receives in a full snapshot, each kind ordered by id.
    pub fn snapshot_for(&self, scope: &Scope) -> SnapshotPlan {
        let mut plan = SnapshotPlan::default();
        if scope.gets_webhooks() {
            plan.webhooks = self
                .webhooks
                .values()
                .filter(|w| scope.contains(w.as_ref()))
                .cloned()
                .collect();
            plan.webhooks.sort_by_key(|w| w.webhook_id);
        }
        if scope.gets_actions() {
            plan.actions = self
                .actions
                .values()
                .filter(|a| scope.contains(a.as_ref()))
                .cloned()
                .collect();
            plan.actions.sort_by_key(|a| a.action_id);
            plan.hmac_keys = self
                .hmac_keys
                .values()
                .filter(|k| scope.contains(k.as_ref()))
                .cloned()
                .collect();
            plan.hmac_keys.sort_by_key(|k| k.key_id);
        }
        plan
    }

    /// Commit time of `version` if it is a remembered revision (what the tests check `advance`
    /// kept).
    #[cfg(test)]
    pub fn committed_at(&self, version: u64) -> Option<i64> {
        if version == self.version {
            return Some(self.committed_at_ms);
        }
        self.history.get(&version).map(|(_, at)| *at)
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
