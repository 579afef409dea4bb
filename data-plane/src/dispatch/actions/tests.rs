use std::time::{Duration, Instant};

use super::*;

fn action(t: &Tenancy, id: &str, name: &str, url: &str) -> ActionRoute {
    ActionRoute {
        action_id: id.into(),
        organization_id: t.organization_id.to_string(),
        workspace_id: t.workspace_id.to_string(),
        app_id: t.app_id.to_string(),
        name: name.into(),
        webhook_url: url.into(),
        json_schema: r#"{"type":"object"}"#.into(),
    }
}

fn key(t: &Tenancy, id: &str, created: i64) -> HmacKeyRoute {
    HmacKeyRoute {
        key_id: id.into(),
        organization_id: t.organization_id.to_string(),
        workspace_id: t.workspace_id.to_string(),
        app_id: t.app_id.to_string(),
        value: format!("value-of-{id}"),
        created_at_unix_ms: created,
    }
}

/// A table (breakers open after one failure) loaded at version 1 with the actions and keys
/// `routes` makes for a fresh app; returns it and that app.
fn loaded(
    routes: impl FnOnce(&Tenancy) -> (Vec<ActionRoute>, Vec<HmacKeyRoute>),
) -> (Actions, Tenancy) {
    let actions = Actions::new(ActionSettings {
        concurrency: 4,
        breaker: BreakerSettings {
            failures: 1,
            cool_down: Duration::from_secs(60),
        },
    });
    let t = Tenancy {
        organization_id: gateway_shared::OrganizationId::new_random(),
        workspace_id: gateway_shared::WorkspaceId::new_random(),
        app_id: AppId::new_random(),
    };
    let (action_routes, hmac_keys) = routes(&t);
    actions
        .apply_snapshot(DispatchSnapshot {
            version: 1,
            actions: action_routes,
            hmac_keys,
        })
        .expect("applies");
    (actions, t)
}

/// The delta from the table's version to the next, as `change` fills it.
fn next_delta(actions: &Actions, change: impl FnOnce(&mut DispatchDelta)) -> DispatchDelta {
    let mut delta = DispatchDelta {
        from_version: actions.version(),
        to_version: actions.version() + 1,
        ..Default::default()
    };
    change(&mut delta);
    delta
}

#[test]
fn lookups_are_scoped_to_the_app_and_the_newest_key_signs() {
    let (actions, t) = loaded(|t| {
        (
            vec![action(t, "a1", "send_email", "https://a.example")],
            vec![key(t, "k-old", 1), key(t, "k-new", 2)],
        )
    });
    assert!(actions.is_ready());
    assert_eq!(
        actions
            .find(&t, "send_email")
            .map(|a| a.id.clone())
            .as_deref(),
        Some("a1")
    );
    assert!(actions.find(&t, "other").is_none());
    let mut elsewhere = t;
    elsewhere.organization_id = gateway_shared::OrganizationId::new_random();
    assert!(
        actions.find(&elsewhere, "send_email").is_none(),
        "headers naming another org see nothing"
    );
    assert!(actions.signing_key(&elsewhere).is_none());
    assert_eq!(
        actions.signing_key(&t).map(|k| k.key_id.clone()).as_deref(),
        Some("k-new")
    );
}

#[test]
fn bad_updates_leave_the_table_as_it_was() {
    let (actions, t) = loaded(|t| {
        (
            vec![action(t, "a1", "x", "https://a.example")],
            vec![key(t, "k1", 1)],
        )
    });
    let gap = DispatchDelta {
        from_version: 7,
        to_version: 8,
        ..Default::default()
    };
    assert!(actions.apply_delta(gap).is_err());
    let mut not_json = action(&t, "a2", "y", "https://b.example");
    not_json.json_schema = "{".into();
    let bad = next_delta(&actions, |d| {
        d.action_upserts.push(not_json);
        d.action_removals.push("a1".into());
    });
    assert!(actions.apply_delta(bad).is_err());
    let mut bad_ids = key(&t, "k2", 2);
    bad_ids.app_id = "not-a-uuid".into();
    assert!(actions
        .apply_snapshot(DispatchSnapshot {
            version: 5,
            actions: vec![],
            hmac_keys: vec![bad_ids]
        })
        .is_err());
    assert_eq!(actions.version(), 1);
    assert!(
        actions.find(&t, "x").is_some(),
        "the last good config stays"
    );
}

#[test]
fn a_schema_that_does_not_compile_is_kept_and_reported_per_action() {
    let (actions, t) = loaded(|t| {
        let mut remote = action(t, "a1", "x", "https://a.example");
        remote.json_schema = r#"{"$ref":"https://schemas.example.com/never-fetched.json"}"#.into();
        (vec![remote], vec![])
    });
    let a = actions.find(&t, "x").expect("served");
    assert!(a.schema.is_err(), "remote references are not fetched");
}

#[test]
fn breakers_survive_updates_and_reset_when_the_url_changes() {
    let (actions, t) = loaded(|t| (vec![action(t, "a1", "x", "https://a.example")], vec![]));
    let breaker_open = |now| actions.find(&t, "x").expect("served").breaker.refuses(now);
    let now = Instant::now();
    actions
        .find(&t, "x")
        .expect("served")
        .breaker
        .record(false, now);
    assert!(breaker_open(now));
    let same_url = next_delta(&actions, |d| {
        d.action_upserts
            .push(action(&t, "a1", "x", "https://a.example"))
    });
    actions.apply_delta(same_url).expect("applies");
    assert!(breaker_open(now), "the open breaker stays");
    let new_url = next_delta(&actions, |d| {
        d.action_upserts
            .push(action(&t, "a1", "x", "https://b.example"))
    });
    actions.apply_delta(new_url).expect("applies");
    assert!(!breaker_open(now), "a new URL starts closed");
    let removed = next_delta(&actions, |d| d.action_removals.push("a1".into()));
    actions.apply_delta(removed).expect("applies");
    assert!(actions.find(&t, "x").is_none());
}
