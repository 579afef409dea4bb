//! Unit tests of planning snapshots and deltas.

use gateway_shared::snapshot::{ApiKeyHash, ProviderSecrets, WebhookOptions};
use gateway_shared::{AppId, Provider, Secret};

use super::*;
use crate::scope::AppScope;

const ORG: uuid::Uuid = uuid::Uuid::from_u128(7);

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

fn app() -> AppScope {
    AppScope::from_uuids(ORG, Uuid::new_v4(), Uuid::new_v4())
}

fn action(id: Uuid, url: &str) -> ActionConfig {
    ActionConfig {
        action_id: id,
        scope: app(),
        name: "send_email".into(),
        webhook_url: url.into(),
        json_schema: "{}".into(),
    }
}

fn key(id: Uuid) -> HmacKeyConfig {
    HmacKeyConfig {
        key_id: id,
        scope: app(),
        value: Secret::new("k".into()),
        created_at_ms: 1,
    }
}

fn scope_of(role: PlaneRole) -> Scope {
    Scope {
        organization_id: OrganizationId(ORG),
        workspace_id: None,
        role,
    }
}

fn scope() -> Scope {
    scope_of(PlaneRole::Ingest)
}

fn full(version: u64, committed_at_ms: i64, webhooks: Vec<WebhookConfig>) -> ConfigState {
    ConfigState::from_full(FullConfig {
        version,
        committed_at_ms,
        webhooks,
        ..Default::default()
    })
}

fn current(list: &[(WebhookId, &str)]) -> Current {
    Current {
        webhooks: list
            .iter()
            .map(|(id, key)| (*id, webhook(*id, key)))
            .collect(),
        ..Default::default()
    }
}

fn change(revision: u64, ids: &[WebhookId]) -> Change {
    Change {
        revision,
        touched: ids.iter().map(|id| ResourceId::Webhook(*id)).collect(),
        committed_at_ms: revision as i64 * 1000,
    }
}

fn delta(plan: Plan) -> DeltaPlan {
    match plan {
        Plan::Delta(d) => d,
        other => panic!("expected a delta, got {other:?}"),
    }
}

#[test]
fn plans_deltas_from_any_remembered_version_and_snapshots_otherwise() {
    let (a, b, c) = (
        WebhookId::new_random(),
        WebhookId::new_random(),
        WebhookId::new_random(),
    );
    let s5 = full(5, 5000, vec![webhook(a, "a"), webhook(b, "b")]);
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
    let s6 = s5.advance(
        6,
        &[change(6, &[c])],
        &current(&[(c, "c")]),
        DEFAULT_HISTORY,
    );
    let s7 = s6.advance(7, &[change(7, &[b])], &current(&[]), DEFAULT_HISTORY);
    let s8 = s7.advance(
        8,
        &[change(8, &[a])],
        &current(&[(a, "a2")]),
        DEFAULT_HISTORY,
    );

    assert_eq!(s8.webhooks.len(), 2);
    assert_eq!(s8.webhooks[&a].api_keys[0], ApiKeyHash::of("a2"));
    assert!(
        s5.webhooks.contains_key(&b),
        "published states are immutable"
    );

    let d = delta(s8.plan(5, &scope()));
    let mut ids: Vec<_> = d.upserts.iter().map(|w| w.webhook_id).collect();
    ids.sort();
    let mut want = vec![a, c];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(d.removals, vec![b]);

    let d = delta(s8.plan(7, &scope()));
    assert_eq!(d.upserts.len(), 1);
    assert_eq!(d.upserts[0].webhook_id, a);
    assert!(d.removals.is_empty());
    assert_eq!(s8.committed_at(7), Some(7000));

    let other = Scope {
        organization_id: OrganizationId::new_random(),
        ..scope()
    };
    let d = delta(s8.plan(5, &other));
    assert!(
        d.upserts.is_empty(),
        "another organization's webhooks are never sent"
    );
    assert_eq!(d.removals, vec![b]);
    assert_eq!(s8.committed_at(8), Some(8000));
}

#[test]
fn history_is_bounded_and_older_versions_get_snapshots() {
    let a = WebhookId::new_random();
    let mut s = full(1, 0, vec![]);
    let cur = current(&[(a, "a")]);
    for rev in 2..=10 {
        s = s.advance(rev, &[change(rev, &[a])], &cur, 3);
    }
    assert!(matches!(s.plan(8, &scope()), Plan::Delta(_)));
    assert!(matches!(s.plan(7, &scope()), Plan::Delta(_)));
    assert!(
        matches!(s.plan(6, &scope()), Plan::Snapshot),
        "revision 7 was forgotten, so 6 cannot be caught up"
    );
}

#[test]
fn each_role_receives_only_its_resources() {
    let w = WebhookId::new_random();
    let (a, k) = (Uuid::new_v4(), Uuid::new_v4());
    let s1 = ConfigState::from_full(FullConfig {
        version: 1,
        webhooks: vec![webhook(w, "w")],
        actions: vec![action(a, "https://a.example/1")],
        hmac_keys: vec![key(k)],
        ..Default::default()
    });
    let ingest = s1.snapshot_for(&scope_of(PlaneRole::Ingest));
    assert_eq!(ingest.webhooks.len(), 1);
    assert!(ingest.actions.is_empty() && ingest.hmac_keys.is_empty());
    let dispatch = s1.snapshot_for(&scope_of(PlaneRole::Dispatch));
    assert!(
        dispatch.webhooks.is_empty(),
        "no provider secrets for dispatchers"
    );
    assert_eq!(dispatch.actions[0].action_id, a);
    assert_eq!(dispatch.hmac_keys[0].key_id, k);

    // rev 2: the action's URL changed, a second key was created and the first revoked, the webhook
    // changed.
    let k2 = Uuid::new_v4();
    let mut cur = current(&[(w, "w2")]);
    cur.actions.insert(a, action(a, "https://a.example/2"));
    cur.hmac_keys.insert(k2, key(k2));
    let s2 = s1.advance(
        2,
        &[Change {
            revision: 2,
            touched: vec![
                ResourceId::Webhook(w),
                ResourceId::Action(a),
                ResourceId::HmacKey(k),
                ResourceId::HmacKey(k2),
            ],
            committed_at_ms: 2000,
        }],
        &cur,
        DEFAULT_HISTORY,
    );
    let d = delta(s2.plan(1, &scope_of(PlaneRole::Ingest)));
    assert_eq!(d.upserts.len(), 1);
    assert!(d.action_upserts.is_empty() && d.action_removals.is_empty());
    assert!(
        d.hmac_key_upserts.is_empty() && d.hmac_key_removals.is_empty(),
        "HMAC keys never reach ingest planes, not even their ids"
    );
    let d = delta(s2.plan(1, &scope_of(PlaneRole::Dispatch)));
    assert!(d.upserts.is_empty() && d.removals.is_empty());
    assert_eq!(d.action_upserts[0].webhook_url, "https://a.example/2");
    assert_eq!(d.hmac_key_upserts.len(), 1);
    assert_eq!(d.hmac_key_upserts[0].key_id, k2);
    assert_eq!(d.hmac_key_removals, vec![k]);

    // rev 3: the action deleted.
    let s3 = s2.advance(
        3,
        &[Change {
            revision: 3,
            touched: vec![ResourceId::Action(a)],
            committed_at_ms: 3000,
        }],
        &Current::default(),
        DEFAULT_HISTORY,
    );
    let d = delta(s3.plan(2, &scope_of(PlaneRole::Dispatch)));
    assert_eq!(d.action_removals, vec![a]);
    assert!(s3.actions.is_empty());

    let stranger = Scope {
        organization_id: OrganizationId::new_random(),
        ..scope_of(PlaneRole::Dispatch)
    };
    assert!(s2.snapshot_for(&stranger).actions.is_empty());
    assert!(s2.snapshot_for(&stranger).hmac_keys.is_empty());
    assert!(delta(s2.plan(1, &stranger)).hmac_key_upserts.is_empty());
}

#[test]
fn revoked_tokens_are_remembered_and_send_nothing() {
    let (old, new) = (Uuid::new_v4(), Uuid::new_v4());
    let s1 = ConfigState::from_full(FullConfig {
        version: 1,
        revoked_tokens: vec![old],
        ..Default::default()
    });
    assert!(s1.revoked_tokens.contains(&old) && !s1.revoked_tokens.contains(&new));
    let s2 = s1.advance(
        2,
        &[Change {
            revision: 2,
            touched: vec![ResourceId::ApiToken(new)],
            committed_at_ms: 2000,
        }],
        &Current::default(),
        DEFAULT_HISTORY,
    );
    assert!(s2.revoked_tokens.contains(&old) && s2.revoked_tokens.contains(&new));
    for role in [PlaneRole::Ingest, PlaneRole::Dispatch] {
        let d = delta(s2.plan(1, &scope_of(role)));
        assert!(
            d.upserts.is_empty()
                && d.removals.is_empty()
                && d.action_upserts.is_empty()
                && d.action_removals.is_empty()
                && d.hmac_key_upserts.is_empty()
                && d.hmac_key_removals.is_empty(),
            "a revocation carries no config: {d:?}"
        );
    }
}
