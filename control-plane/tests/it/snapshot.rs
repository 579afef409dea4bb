//! The data-plane view built from the database, and key rotation.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use gateway_proto::v1 as pb;
use gateway_shared::crypto::Keyring;
use gateway_shared::snapshot::ApiKeyHash;
use gateway_shared::{TriggerType, WebhookId};

use crate::support::{
    app, clients, test_keyring, TestControlPlane, BOOTSTRAP_TOKEN, TEST_MASTER_KEYS,
};
use crate::webhooks::create;

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_holds_active_webhooks_with_hashes_secrets_and_bindings() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let meta = create(&c, &a, "meta", pb::Provider::Meta).await;
    c.webhooks
        .clone()
        .update_webhook(pb::UpdateWebhookRequest {
            id: meta.id.clone(),
            correlation_key_path: Some("entry[0].id".into()),
            include_raw_body: Some(true),
            replay_window_seconds: Some(300),
            ..Default::default()
        })
        .await
        .expect("path");
    c.webhooks
        .clone()
        .set_provider_secret(pb::SetProviderSecretRequest {
            webhook_id: meta.id.clone(),
            verify_token: "vt".into(),
            app_secret: "old-secret".into(),
            ..Default::default()
        })
        .await
        .expect("secret");
    c.webhooks
        .clone()
        .set_provider_secret(pb::SetProviderSecretRequest {
            webhook_id: meta.id.clone(),
            verify_token: "vt".into(),
            app_secret: "new-secret".into(),
            previous_secret_grace_seconds: 600,
            ..Default::default()
        })
        .await
        .expect("rotated with grace");
    c.triggers
        .clone()
        .commit_trigger_bindings(pb::CommitTriggerBindingsRequest {
            app: Some(a.clone()),
            process_definition_id: "proc".into(),
            project_id: "proj".into(),
            branch: "main".into(),
            process_version: "1".into(),
            bindings: vec![
                pb::BindingInput {
                    node_id: "s".into(),
                    node_kind: pb::NodeKind::MessageStartEvent as i32,
                    webhook_id: meta.id.clone(),
                    ..Default::default()
                },
                pb::BindingInput {
                    node_id: "c".into(),
                    node_kind: pb::NodeKind::MessageCatchIntermediateEvent as i32,
                    webhook_id: meta.id.clone(),
                    process_correlation_key: "applicationId".into(),
                    process_key: "scan".into(),
                },
            ],
        })
        .await
        .expect("bound");
    let inactive = create(&c, &a, "inactive", pb::Provider::Generic).await;

    let keyring = test_keyring();
    let mut conn = AsyncPgConnection::establish(&cp.database_url)
        .await
        .expect("connect");
    let empty = control_plane::snapshot::config_snapshot(&mut conn, &keyring, None)
        .await
        .expect("snapshot");
    assert!(empty.webhooks.is_empty(), "deactivated webhooks are absent");

    c.triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: meta.id.clone(),
        })
        .await
        .expect("on");
    let key = c
        .webhooks
        .clone()
        .get_webhook_url(pb::GetWebhookUrlRequest {
            webhook_id: meta.id.clone(),
        })
        .await
        .expect("url")
        .into_inner()
        .api_key;
    let snap = control_plane::snapshot::config_snapshot(&mut conn, &keyring, None)
        .await
        .expect("snapshot");
    let revision = control_plane::revision::current(&mut conn)
        .await
        .expect("revision");
    assert_eq!(snap.version, revision as u64);
    assert_eq!(snap.webhooks.len(), 1);
    let w = &snap.webhooks[0];
    assert_eq!(w.webhook_id.to_string(), meta.id);
    assert_eq!(w.organization_id.to_string(), a.organization_id);
    assert_eq!(w.provider, gateway_shared::Provider::Meta);
    assert_eq!(w.api_keys, vec![ApiKeyHash::of(&key)]);
    let signing: Vec<&str> = w
        .secrets
        .signing
        .iter()
        .map(|s| s.value.expose().as_str())
        .collect();
    assert_eq!(
        signing,
        vec!["new-secret", "old-secret"],
        "current first, then the previous one in its window"
    );
    assert!(w.secrets.signing[0].not_after.is_none() && w.secrets.signing[1].not_after.is_some());
    assert_eq!(
        w.secrets.verify_token.as_ref().map(|v| v.expose().as_str()),
        Some("vt")
    );
    assert_eq!(w.correlation_key_path.as_deref(), Some("entry[0].id"));
    assert!(w.options.include_raw_body);
    let mut types: Vec<TriggerType> = w.bindings.iter().map(|b| b.trigger_type).collect();
    types.sort_by_key(|t| t.as_str());
    assert_eq!(
        types,
        vec![TriggerType::ResumeProcess, TriggerType::StartProcess]
    );
    let resume = w
        .bindings
        .iter()
        .find(|b| b.trigger_type == TriggerType::ResumeProcess)
        .expect("resume");
    assert_eq!(
        (
            resume.process_correlation_key.as_deref(),
            resume.process_key.as_deref()
        ),
        (Some("applicationId"), Some("scan"))
    );

    // After a reset with grace, both key hashes are served, the old one with an end.
    let new_key = c
        .webhooks
        .clone()
        .reset_api_key(pb::ResetApiKeyRequest {
            webhook_id: meta.id.clone(),
            grace_period_seconds: 60,
        })
        .await
        .expect("reset")
        .into_inner()
        .api_key;
    let one = control_plane::snapshot::webhook_config(
        &mut conn,
        &keyring,
        WebhookId(meta.id.parse().expect("uuid")),
    )
    .await
    .expect("builds")
    .expect("active");
    assert_eq!(one.api_keys[0], ApiKeyHash::of(&new_key));
    assert_eq!(
        one.options.replay_window_seconds, 300,
        "the replay window reaches the data planes"
    );
    assert_eq!(one.api_keys[1].sha256, ApiKeyHash::of(&key).sha256);
    assert!(one.api_keys[1].not_after.is_some());
    let none = control_plane::snapshot::webhook_config(
        &mut conn,
        &keyring,
        WebhookId(inactive.id.parse().expect("uuid")),
    )
    .await
    .expect("builds");
    assert!(none.is_none());
    // Scoped to another organization: nothing.
    let other = control_plane::snapshot::config_snapshot(
        &mut conn,
        &keyring,
        Some(gateway_shared::OrganizationId::new_random()),
    )
    .await
    .expect("snapshot");
    assert!(other.webhooks.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_keys_reseals_everything_under_the_new_primary() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    c.params
        .clone()
        .set_config_param(pb::SetConfigParamRequest {
            app: Some(a.clone()),
            name: "s".into(),
            kind: pb::ConfigParamKind::Secret as i32,
            value: "param-value".into(),
        })
        .await
        .expect("param");
    let gh = create(&c, &a, "github", pb::Provider::Github).await;
    c.webhooks
        .clone()
        .set_provider_secret(pb::SetProviderSecretRequest {
            webhook_id: gh.id.clone(),
            signing_secret: "x-${configParam.s}".into(),
            ..Default::default()
        })
        .await
        .expect("secret");
    crate::triggers::bind_start(&c, &a, "p", &gh.id).await;
    c.triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: gh.id.clone(),
        })
        .await
        .expect("on");

    let rotated = Keyring::parse(
        &format!(
            "{TEST_MASTER_KEYS}\nk2={}",
            gateway_shared::crypto::generate_key_base64()
        ),
        None,
    )
    .expect("ring");
    assert_eq!(rotated.primary_id(), "k2");
    let mut conn = AsyncPgConnection::establish(&cp.database_url)
        .await
        .expect("connect");
    let report = control_plane::keys::rotate(&mut conn, &rotated)
        .await
        .expect("rotates");
    assert_eq!(
        report.resealed, 4,
        "api key, secret template, resolved secret, secret param"
    );
    let again = control_plane::keys::rotate(&mut conn, &rotated)
        .await
        .expect("rotates");
    assert_eq!((again.resealed, again.unchanged), (0, 4));

    // The old key alone can no longer read; the new ring reads everything.
    let id = WebhookId(gh.id.parse().expect("uuid"));
    assert!(
        control_plane::snapshot::webhook_config(&mut conn, &test_keyring(), id)
            .await
            .is_err()
    );
    let cfg = control_plane::snapshot::webhook_config(&mut conn, &rotated, id)
        .await
        .expect("reads")
        .expect("active");
    assert_eq!(cfg.secrets.signing[0].value.expose(), "x-param-value");
}

/// The bindings of every webhook in a full snapshot, read in one scan and attached by webhook: 0,
/// 1 or several, ordered by process definition then node, the same as the one-webhook read; the
/// bindings of an inactive webhook are nowhere.
#[tokio::test(flavor = "multi_thread")]
async fn full_snapshot_attaches_zero_one_or_several_bindings() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let none = create(&c, &a, "none", pb::Provider::Generic).await;
    let one = create(&c, &a, "one", pb::Provider::Generic).await;
    let several = create(&c, &a, "several", pb::Provider::Github).await;
    let inactive = create(&c, &a, "inactive", pb::Provider::Generic).await;
    c.webhooks
        .clone()
        .set_provider_secret(pb::SetProviderSecretRequest {
            webhook_id: several.id.clone(),
            signing_secret: "gh-secret".into(),
            ..Default::default()
        })
        .await
        .expect("secret");
    crate::triggers::bind_and_activate(&c, &a, "p-one", &one.id).await;
    for (process, nodes) in [("p-b", ["z", "a"]), ("p-a", ["m", "c"])] {
        c.triggers
            .clone()
            .commit_trigger_bindings(pb::CommitTriggerBindingsRequest {
                app: Some(a.clone()),
                process_definition_id: process.into(),
                project_id: "proj".into(),
                branch: "main".into(),
                process_version: "1".into(),
                bindings: nodes
                    .iter()
                    .map(|n| pb::BindingInput {
                        node_id: (*n).into(),
                        node_kind: pb::NodeKind::MessageStartEvent as i32,
                        webhook_id: several.id.clone(),
                        ..Default::default()
                    })
                    .chain(std::iter::once(pb::BindingInput {
                        node_id: format!("{process}-inactive"),
                        node_kind: pb::NodeKind::MessageStartEvent as i32,
                        webhook_id: inactive.id.clone(),
                        ..Default::default()
                    }))
                    .collect(),
            })
            .await
            .expect("bound");
    }
    c.triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: several.id.clone(),
        })
        .await
        .expect("on");
    let mut conn = AsyncPgConnection::establish(&cp.database_url)
        .await
        .expect("connect");
    // The API activates only bound webhooks; an active one without bindings still gets served.
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("UPDATE webhooks SET state = 'ACTIVE' WHERE id = $1::text::uuid")
            .bind::<diesel::sql_types::Text, _>(&none.id),
        &mut conn,
    )
    .await
    .expect("activated without bindings");

    let keyring = test_keyring();
    for scope in [None, Some(gateway_shared::OrganizationId(cp.org))] {
        let snap = control_plane::snapshot::config_snapshot(&mut conn, &keyring, scope)
            .await
            .expect("snapshot");
        let mut expected_ids = vec![none.id.clone(), one.id.clone(), several.id.clone()];
        expected_ids.sort_by_key(|id| id.parse::<uuid::Uuid>().expect("uuid"));
        let ids: Vec<String> = snap
            .webhooks
            .iter()
            .map(|w| w.webhook_id.to_string())
            .collect();
        assert_eq!(ids, expected_ids, "active webhooks by id ({scope:?})");
        let nodes = |id: &str| -> Vec<(String, String)> {
            snap.webhooks
                .iter()
                .find(|w| w.webhook_id.to_string() == id)
                .expect("in the snapshot")
                .bindings
                .iter()
                .map(|b| (b.process_definition_id.clone(), b.node_id.clone()))
                .collect()
        };
        let pair = |p: &str, n: &str| (p.to_owned(), n.to_owned());
        assert!(nodes(&none.id).is_empty());
        assert_eq!(nodes(&one.id), vec![pair("p-one", "start")]);
        assert_eq!(
            nodes(&several.id),
            vec![
                pair("p-a", "c"),
                pair("p-a", "m"),
                pair("p-b", "a"),
                pair("p-b", "z")
            ]
        );
        for w in &snap.webhooks {
            let alone = control_plane::snapshot::webhook_config(&mut conn, &keyring, w.webhook_id)
                .await
                .expect("builds")
                .expect("active");
            assert_eq!(alone.bindings, w.bindings, "one-webhook read agrees");
            assert_eq!(alone.secrets.signing.len(), w.secrets.signing.len());
        }
        let gh = snap
            .webhooks
            .iter()
            .find(|w| w.webhook_id.to_string() == several.id)
            .expect("github");
        assert_eq!(gh.secrets.signing[0].value.expose(), "gh-secret");
    }
}

/// Thousands of webhooks (several build batches): every ACTIVE one is in the snapshot once, by id,
/// with exactly its own bindings; DEACTIVATED ones and their bindings are not.
#[tokio::test(flavor = "multi_thread")]
async fn full_snapshot_of_thousands_keeps_every_webhooks_own_bindings() {
    let cp = TestControlPlane::start().await;
    // Serving (an RPC answered) means migrated.
    clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let mut conn = AsyncPgConnection::establish(&cp.database_url)
        .await
        .expect("connect");
    // The correlation key path names how many bindings each webhook has (0, 1 or 2); every 7th is
    // deactivated.
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "INSERT INTO webhooks (id, organization_id, workspace_id, app_id, name, provider, state,
                                   correlation_key_path, api_key_ciphertext, api_key_sha256)
               SELECT gen_random_uuid(), '{org}', gen_random_uuid(), gen_random_uuid(), 'w-' || g,
                      'GENERIC', CASE WHEN g % 7 = 0 THEN 'DEACTIVATED' ELSE 'ACTIVE' END,
                      'n' || (g % 3), '\\x00'::bytea, sha256(('k-' || g)::bytea)
               FROM generate_series(1, 5000) g",
            org = cp.org
        )),
        &mut conn,
    )
    .await
    .expect("webhooks");
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(
            "INSERT INTO trigger_bindings (webhook_id, organization_id, workspace_id, app_id,
                                           process_definition_id, node_id, node_kind, trigger_type,
                                           project_id, branch)
               SELECT w.id, w.organization_id, w.workspace_id, w.app_id, 'p', w.id::text || '-' || k,
                      'MESSAGE_START_EVENT', 'START_PROCESS', 'proj', 'main'
               FROM webhooks w, generate_series(1, 2) k
               WHERE k <= substr(w.correlation_key_path, 2)::int",
        ),
        &mut conn,
    )
    .await
    .expect("bindings");

    let snap = control_plane::snapshot::config_snapshot(&mut conn, &test_keyring(), None)
        .await
        .expect("snapshot");
    assert_eq!(snap.webhooks.len(), 5000 - 5000 / 7);
    assert!(
        snap.webhooks
            .windows(2)
            .all(|p| p[0].webhook_id < p[1].webhook_id),
        "by id, each once"
    );
    for w in &snap.webhooks {
        let n: usize = w
            .correlation_key_path
            .as_deref()
            .and_then(|p| p.strip_prefix('n'))
            .and_then(|n| n.parse().ok())
            .expect("count in the path");
        let nodes: Vec<String> = w.bindings.iter().map(|b| b.node_id.clone()).collect();
        let own: Vec<String> = (1..=n).map(|k| format!("{}-{k}", w.webhook_id)).collect();
        assert_eq!(nodes, own, "webhook {} has its own bindings", w.webhook_id);
    }
}
