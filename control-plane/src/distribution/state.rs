//! The config as this replica knows it: every active webhook at one global revision, plus which
//! webhooks each recent revision touched. Immutable once published (persistent maps make each new
//! version cheap); every stream session plans what to send from it.

use std::sync::Arc;

use gateway_shared::snapshot::WebhookConfig;
use gateway_shared::{OrganizationId, WebhookId, WorkspaceId};
use imbl::{HashMap, OrdMap};

/// How many recent revisions are remembered for deltas; a data plane further behind gets a snapshot.
pub const DEFAULT_HISTORY: usize = 100_000;

/// One published version of the config.
#[derive(Clone, Debug, Default)]
pub struct ConfigState {
    /// The global revision.
    pub version: u64,
    /// When that revision committed, unix milliseconds (0 when unknown).
    pub committed_at_ms: i64,
    /// Every active webhook.
    pub webhooks: HashMap<WebhookId, Arc<WebhookConfig>>,
    /// Revision → (webhooks it touched, commit time), for revisions after `floor`.
    history: OrdMap<u64, (Arc<[WebhookId]>, i64)>,
    /// Deltas can be planned from any version >= floor.
    floor: u64,
}

/// What one revision changed, as read from the change log.
#[derive(Clone, Debug)]
pub struct Change {
    /// The revision.
    pub revision: u64,
    /// The webhooks it touched.
    pub webhook_ids: Vec<WebhookId>,
    /// Commit time, unix milliseconds.
    pub committed_at_ms: i64,
}

/// The webhooks one data plane may receive: its token's organization and, when set, workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope {
    /// Organization of the data plane's token.
    pub organization_id: OrganizationId,
    /// Workspace of the token, if it is scoped to one.
    pub workspace_id: Option<WorkspaceId>,
}

impl Scope {
    /// Whether `w` belongs to this scope.
    pub fn contains(&self, w: &WebhookConfig) -> bool {
        w.organization_id == self.organization_id
            && self.workspace_id.is_none_or(|ws| ws == w.workspace_id)
    }
}

/// What a session should send to bring a data plane from its version to the current one.
#[derive(Debug)]
pub enum Plan {
    /// It already serves this version.
    UpToDate,
    /// Send the whole config.
    Snapshot,
    /// Send these changes.
    Delta {
        /// Webhooks to add or replace.
        upserts: Vec<Arc<WebhookConfig>>,
        /// Webhooks to drop.
        removals: Vec<WebhookId>,
    },
}

impl ConfigState {
    /// A state from a full read at `version`; deltas can be planned from `version` on.
    pub fn from_full(version: u64, committed_at_ms: i64, webhooks: Vec<WebhookConfig>) -> Self {
        Self {
            version,
            committed_at_ms,
            webhooks: webhooks
                .into_iter()
                .map(|w| (w.webhook_id, Arc::new(w)))
                .collect(),
            history: OrdMap::new(),
            floor: version,
        }
    }

    /// The next state: `changes` (revisions after `self.version`, up to `version`) applied, where
    /// `current` holds the active config of every touched webhook (absent = deleted or deactivated).
    pub fn advance(
        &self,
        version: u64,
        changes: &[Change],
        current: &std::collections::HashMap<WebhookId, WebhookConfig>,
        max_history: usize,
    ) -> Self {
        let mut next = self.clone();
        next.version = version.max(self.version);
        for change in changes {
            for id in &change.webhook_ids {
                match current.get(id) {
                    Some(w) => {
                        next.webhooks.insert(*id, Arc::new(w.clone()));
                    }
                    None => {
                        next.webhooks.remove(id);
                    }
                }
            }
            next.history.insert(
                change.revision,
                (change.webhook_ids.clone().into(), change.committed_at_ms),
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
    /// filtered (a removed webhook's owner is no longer known); a data plane ignores unknown ids.
    pub fn plan(&self, from: u64, scope: &Scope) -> Plan {
        if from == self.version && from != 0 {
            return Plan::UpToDate;
        }
        if from == 0 || from < self.floor || from > self.version {
            return Plan::Snapshot;
        }
        let mut touched: Vec<WebhookId> = self
            .history
            .range(from + 1..=self.version)
            .flat_map(|(_, (ids, _))| ids.iter().copied())
            .collect();
        touched.sort_unstable();
        touched.dedup();
        let mut upserts = Vec::new();
        let mut removals = Vec::new();
        for id in touched {
            match self.webhooks.get(&id) {
                Some(w) if scope.contains(w) => upserts.push(w.clone()),
                Some(_) => {}
                None => removals.push(id),
            }
        }
        Plan::Delta { upserts, removals }
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
mod tests {
    use gateway_shared::snapshot::{ApiKeyHash, ProviderSecrets, WebhookOptions};
    use gateway_shared::{AppId, Provider};

    use super::*;

    fn webhook(id: WebhookId, key: &str) -> WebhookConfig {
        WebhookConfig {
            webhook_id: id,
            organization_id: OrganizationId(ORG),
            workspace_id: WorkspaceId::new_random(),
            app_id: AppId::new_random(),
            provider: Provider::Generic,
            api_keys: vec![ApiKeyHash::of(key)],
            secrets: ProviderSecrets::default(),
            bindings: vec![],
            correlation_key_path: None,
            options: WebhookOptions::default(),
        }
    }

    const ORG: uuid::Uuid = uuid::Uuid::from_u128(7);

    fn scope() -> Scope {
        Scope {
            organization_id: OrganizationId(ORG),
            workspace_id: None,
        }
    }

    fn change(revision: u64, ids: &[WebhookId]) -> Change {
        Change {
            revision,
            webhook_ids: ids.to_vec(),
            committed_at_ms: revision as i64 * 1000,
        }
    }

    #[test]
    fn plans_deltas_from_any_remembered_version_and_snapshots_otherwise() {
        let (a, b, c) = (
            WebhookId::new_random(),
            WebhookId::new_random(),
            WebhookId::new_random(),
        );
        let s5 = ConfigState::from_full(5, 5000, vec![webhook(a, "a"), webhook(b, "b")]);
        assert!(matches!(s5.plan(0, &scope()), Plan::Snapshot));
        assert!(matches!(s5.plan(5, &scope()), Plan::UpToDate));
        assert!(
            matches!(s5.plan(4, &scope()), Plan::Snapshot),
            "older than the full read"
        );
        assert!(
            matches!(s5.plan(9, &scope()), Plan::Snapshot),
            "ahead of us (another replica, a reset database)"
        );

        // rev 6: c created; rev 7: b deleted; rev 8: a changed
        let mut cur = std::collections::HashMap::new();
        cur.insert(c, webhook(c, "c"));
        let s6 = s5.advance(6, &[change(6, &[c])], &cur, DEFAULT_HISTORY);
        let s7 = s6.advance(
            7,
            &[change(7, &[b])],
            &std::collections::HashMap::new(),
            DEFAULT_HISTORY,
        );
        let mut cur = std::collections::HashMap::new();
        cur.insert(a, webhook(a, "a2"));
        let s8 = s7.advance(8, &[change(8, &[a])], &cur, DEFAULT_HISTORY);

        assert_eq!(s8.webhooks.len(), 2);
        assert_eq!(s8.webhooks[&a].api_keys[0], ApiKeyHash::of("a2"));
        assert!(
            s5.webhooks.contains_key(&b),
            "published states are immutable"
        );

        match s8.plan(5, &scope()) {
            Plan::Delta { upserts, removals } => {
                let mut ids: Vec<_> = upserts.iter().map(|w| w.webhook_id).collect();
                ids.sort();
                let mut want = vec![a, c];
                want.sort();
                assert_eq!(ids, want);
                assert_eq!(removals, vec![b]);
            }
            other => panic!("expected a delta, got {other:?}"),
        }
        match s8.plan(7, &scope()) {
            Plan::Delta { upserts, removals } => {
                assert_eq!(upserts.len(), 1);
                assert_eq!(upserts[0].webhook_id, a);
                assert!(removals.is_empty());
            }
            other => panic!("expected a delta, got {other:?}"),
        }
        assert_eq!(s8.committed_at(7), Some(7000));

        let other = Scope {
            organization_id: OrganizationId::new_random(),
            workspace_id: None,
        };
        match s8.plan(5, &other) {
            Plan::Delta { upserts, removals } => {
                assert!(
                    upserts.is_empty(),
                    "another organization's webhooks are never sent"
                );
                assert_eq!(removals, vec![b]);
            }
            other => panic!("expected a delta, got {other:?}"),
        }
        assert_eq!(s8.committed_at(8), Some(8000));
    }

    #[test]
    fn history_is_bounded_and_older_versions_get_snapshots() {
        let a = WebhookId::new_random();
        let mut s = ConfigState::from_full(1, 0, vec![]);
        let mut cur = std::collections::HashMap::new();
        cur.insert(a, webhook(a, "a"));
        for rev in 2..=10 {
            s = s.advance(rev, &[change(rev, &[a])], &cur, 3);
        }
        assert!(matches!(s.plan(8, &scope()), Plan::Delta { .. }));
        assert!(matches!(s.plan(7, &scope()), Plan::Delta { .. }));
        assert!(
            matches!(s.plan(6, &scope()), Plan::Snapshot),
            "revision 7 was forgotten, so 6 cannot be caught up"
        );
    }
}
