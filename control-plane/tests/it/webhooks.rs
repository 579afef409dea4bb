//! WebhookService rules: names, provider immutability, META secrets, delete of active webhooks,
//! API keys and URLs, and no plaintext at rest.

use diesel::sql_types::{Binary, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use gateway_proto::v1 as pb;
use tonic::Code;

use crate::support::{
    app, assert_err, clients, Clients, TestControlPlane, BOOTSTRAP_TOKEN, TEST_BASE_URL,
};

pub async fn create(
    c: &Clients,
    a: &pb::AppRef,
    name: &str,
    provider: pb::Provider,
) -> pb::Webhook {
    c.webhooks
        .clone()
        .create_webhook(pb::CreateWebhookRequest {
            app: Some(a.clone()),
            name: name.into(),
            provider: provider as i32,
            ..Default::default()
        })
        .await
        .expect("webhook created")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn create_get_list_update_and_name_rules() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let wh = c
        .webhooks
        .clone()
        .create_webhook(pb::CreateWebhookRequest {
            app: Some(a.clone()),
            name: "Orders[EU](v2).in_bound-1".into(),
            description: "payments".into(),
            provider: pb::Provider::Generic as i32,
            correlation_key_path: "entry[0].changes[0].value".into(),
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner();
    assert_eq!(
        wh.state,
        pb::TriggerState::Deactivated as i32,
        "a webhook starts DEACTIVATED"
    );
    assert_eq!(wh.correlation_key_path, "entry[0].changes[0].value");
    let got = c
        .webhooks
        .clone()
        .get_webhook(pb::GetWebhookRequest { id: wh.id.clone() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, wh);

    // Name rules.
    for bad in ["ab", &"x".repeat(51), "has space", "slash/", "brace{}"] {
        assert_err(
            c.webhooks
                .clone()
                .create_webhook(pb::CreateWebhookRequest {
                    app: Some(a.clone()),
                    name: bad.into(),
                    provider: 1,
                    ..Default::default()
                })
                .await,
            Code::InvalidArgument,
            "WEBHOOK_NAME_INVALID",
        );
    }
    // Unique per app, but the same name is fine in another app.
    assert_err(
        c.webhooks
            .clone()
            .create_webhook(pb::CreateWebhookRequest {
                app: Some(a.clone()),
                name: wh.name.clone(),
                provider: 1,
                ..Default::default()
            })
            .await,
        Code::AlreadyExists,
        "WEBHOOK_NAME_TAKEN",
    );
    create(&c, &app(cp.org), &wh.name, pb::Provider::Generic).await;
    // Provider required; path syntax checked.
    assert_err(
        c.webhooks
            .clone()
            .create_webhook(pb::CreateWebhookRequest {
                app: Some(a.clone()),
                name: "noprov".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "PROVIDER_REQUIRED",
    );
    assert_err(
        c.webhooks
            .clone()
            .create_webhook(pb::CreateWebhookRequest {
                app: Some(a.clone()),
                name: "badpath".into(),
                provider: 1,
                correlation_key_path: "a..b".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "CORRELATION_PATH_INVALID",
    );

    // Paged list by name.
    let second = create(&c, &a, "zeta", pb::Provider::Slack).await;
    let p1 = c
        .webhooks
        .clone()
        .list_webhooks(pb::ListWebhooksRequest {
            app: Some(a.clone()),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        p1.webhooks.iter().map(|w| w.id.clone()).collect::<Vec<_>>(),
        vec![wh.id.clone()]
    );
    let p2 = c
        .webhooks
        .clone()
        .list_webhooks(pb::ListWebhooksRequest {
            app: Some(a.clone()),
            page_size: 1,
            page_token: p1.next_page_token,
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(p2.webhooks[0].id, second.id);
    assert!(p2.next_page_token.is_empty());

    // Update: fields change; renaming onto a taken name is ALREADY_EXISTS; provider is immutable.
    let updated = c
        .webhooks
        .clone()
        .update_webhook(pb::UpdateWebhookRequest {
            id: wh.id.clone(),
            description: Some("new".into()),
            correlation_key_path: Some(String::new()),
            provider: Some(pb::Provider::Generic as i32),
            include_raw_body: Some(true),
            ..Default::default()
        })
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(
        (
            updated.description.as_str(),
            updated.correlation_key_path.as_str(),
            updated.include_raw_body
        ),
        ("new", "", true)
    );
    assert_err(
        c.webhooks
            .clone()
            .update_webhook(pb::UpdateWebhookRequest {
                id: wh.id.clone(),
                name: Some("zeta".into()),
                ..Default::default()
            })
            .await,
        Code::AlreadyExists,
        "WEBHOOK_NAME_TAKEN",
    );
    assert_err(
        c.webhooks
            .clone()
            .update_webhook(pb::UpdateWebhookRequest {
                id: wh.id.clone(),
                provider: Some(pb::Provider::Slack as i32),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "WEBHOOK_PROVIDER_IMMUTABLE",
    );
    assert_err(
        c.webhooks
            .clone()
            .update_webhook(pb::UpdateWebhookRequest {
                id: wh.id.clone(),
                correlation_key_path: Some("a[".into()),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "CORRELATION_PATH_INVALID",
    );
    assert_err(
        c.webhooks
            .clone()
            .get_webhook(pb::GetWebhookRequest { id: "nope".into() })
            .await,
        Code::InvalidArgument,
        "ID_INVALID",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_secrets_per_provider_and_meta_needs_both() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let meta = create(&c, &a, "meta-hook", pb::Provider::Meta).await;
    for (verify, app_secret) in [("vt", ""), ("", "as"), ("", "")] {
        assert_err(
            c.webhooks
                .clone()
                .set_provider_secret(pb::SetProviderSecretRequest {
                    webhook_id: meta.id.clone(),
                    verify_token: verify.into(),
                    app_secret: app_secret.into(),
                    ..Default::default()
                })
                .await,
            Code::InvalidArgument,
            "WEBHOOK_META_SECRETS_REQUIRED",
        );
    }
    // Also on create.
    assert_err(
        c.webhooks
            .clone()
            .create_webhook(pb::CreateWebhookRequest {
                app: Some(a.clone()),
                name: "meta-two".into(),
                provider: pb::Provider::Meta as i32,
                provider_secret: Some(pb::SetProviderSecretRequest {
                    verify_token: "vt".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "WEBHOOK_META_SECRETS_REQUIRED",
    );
    let set = c
        .webhooks
        .clone()
        .set_provider_secret(pb::SetProviderSecretRequest {
            webhook_id: meta.id.clone(),
            verify_token: "vt".into(),
            app_secret: "as".into(),
            ..Default::default()
        })
        .await
        .expect("both set")
        .into_inner();
    assert!(set.has_provider_secret);

    let generic = create(&c, &a, "generic", pb::Provider::Generic).await;
    assert_err(
        c.webhooks
            .clone()
            .set_provider_secret(pb::SetProviderSecretRequest {
                webhook_id: generic.id,
                signing_secret: "s".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "WEBHOOK_PROVIDER_HAS_NO_SECRET",
    );
    let slack = create(&c, &a, "slack", pb::Provider::Slack).await;
    assert_err(
        c.webhooks
            .clone()
            .set_provider_secret(pb::SetProviderSecretRequest {
                webhook_id: slack.id.clone(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "WEBHOOK_SECRET_REQUIRED",
    );
    let sw = create(&c, &a, "svix", pb::Provider::StandardWebhooks).await;
    assert_err(
        c.webhooks
            .clone()
            .set_provider_secret(pb::SetProviderSecretRequest {
                webhook_id: sw.id.clone(),
                signing_secret: "plain".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "WEBHOOK_SECRET_INVALID",
    );
    c.webhooks
        .clone()
        .set_provider_secret(pb::SetProviderSecretRequest {
            webhook_id: sw.id,
            signing_secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            ..Default::default()
        })
        .await
        .expect("whsec accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn urls_keys_reset_and_delete_rules() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let generic = create(&c, &a, "generic", pb::Provider::Generic).await;
    let url = c
        .webhooks
        .clone()
        .get_webhook_url(pb::GetWebhookUrlRequest {
            webhook_id: generic.id.clone(),
        })
        .await
        .expect("url")
        .into_inner();
    assert_eq!(
        url.url,
        format!(
            "{TEST_BASE_URL}/webhooks/incoming/{}/{}/{}/{}?flowxApiKey={}",
            a.organization_id, a.workspace_id, a.app_id, generic.id, url.api_key
        )
    );
    assert_eq!(url.api_key.len(), 43, "32 bytes, base64url, no padding");
    assert!(url
        .api_key
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
    let sw = create(&c, &a, "standard", pb::Provider::StandardWebhooks).await;
    let sw_url = c
        .webhooks
        .clone()
        .get_webhook_url(pb::GetWebhookUrlRequest {
            webhook_id: sw.id.clone(),
        })
        .await
        .expect("url")
        .into_inner();
    assert!(
        sw_url.url.starts_with(&format!(
            "{TEST_BASE_URL}/webhooks/incoming/standard-webhooks/{}/",
            a.organization_id
        )),
        "{}",
        sw_url.url
    );

    let reset = c
        .webhooks
        .clone()
        .reset_api_key(pb::ResetApiKeyRequest {
            webhook_id: generic.id.clone(),
            grace_period_seconds: 0,
        })
        .await
        .expect("reset")
        .into_inner();
    assert_ne!(reset.api_key, url.api_key);
    assert!(reset.previous_key_not_after.is_none());
    let again = c
        .webhooks
        .clone()
        .get_webhook_url(pb::GetWebhookUrlRequest {
            webhook_id: generic.id.clone(),
        })
        .await
        .expect("url")
        .into_inner();
    assert_eq!(again.api_key, reset.api_key);
    let graced = c
        .webhooks
        .clone()
        .reset_api_key(pb::ResetApiKeyRequest {
            webhook_id: generic.id.clone(),
            grace_period_seconds: 3600,
        })
        .await
        .expect("reset")
        .into_inner();
    assert!(graced.previous_key_not_after.is_some());
    assert_err(
        c.webhooks
            .clone()
            .reset_api_key(pb::ResetApiKeyRequest {
                webhook_id: generic.id.clone(),
                grace_period_seconds: 8 * 86_400,
            })
            .await,
        Code::InvalidArgument,
        "GRACE_PERIOD_INVALID",
    );

    // An ACTIVE webhook cannot be deleted; a deactivated one can.
    crate::triggers::bind_start(&c, &a, "proc", &generic.id).await;
    c.triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: generic.id.clone(),
        })
        .await
        .expect("activated");
    assert_err(
        c.webhooks
            .clone()
            .delete_webhook(pb::DeleteWebhookRequest {
                id: generic.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "TRIGGER_ACTIVE",
    );
    c.triggers
        .clone()
        .deactivate_trigger(pb::DeactivateTriggerRequest {
            webhook_id: generic.id.clone(),
        })
        .await
        .expect("deactivated");
    c.webhooks
        .clone()
        .delete_webhook(pb::DeleteWebhookRequest {
            id: generic.id.clone(),
        })
        .await
        .expect("deleted");
    assert_err(
        c.webhooks
            .clone()
            .get_webhook(pb::GetWebhookRequest { id: generic.id })
            .await,
        Code::NotFound,
        "WEBHOOK_NOT_FOUND",
    );
}

#[derive(QueryableByName)]
struct RawRow {
    #[diesel(sql_type = Text)]
    row: String,
}

#[derive(QueryableByName)]
struct RawBytes {
    #[diesel(sql_type = Nullable<Binary>)]
    bytes: Option<Vec<u8>>,
}

#[tokio::test(flavor = "multi_thread")]
async fn database_holds_no_plaintext_secret_or_api_key() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let secret_param = "param-secret-value-7c1e0b";
    c.params
        .clone()
        .set_config_param(pb::SetConfigParamRequest {
            app: Some(a.clone()),
            name: "slack_secret".into(),
            kind: pb::ConfigParamKind::Secret as i32,
            value: secret_param.into(),
        })
        .await
        .expect("param");
    let slack = create(&c, &a, "slack", pb::Provider::Slack).await;
    let literal = "literal-signing-secret-55aa";
    c.webhooks
        .clone()
        .set_provider_secret(pb::SetProviderSecretRequest {
            webhook_id: slack.id.clone(),
            signing_secret: literal.into(),
            ..Default::default()
        })
        .await
        .expect("secret");
    let meta = create(&c, &a, "meta", pb::Provider::Meta).await;
    c.webhooks
        .clone()
        .set_provider_secret(pb::SetProviderSecretRequest {
            webhook_id: meta.id.clone(),
            verify_token: "verify-token-91d2".into(),
            app_secret: "${configParam.slack_secret}".into(),
            ..Default::default()
        })
        .await
        .expect("secret");
    let key = c
        .webhooks
        .clone()
        .get_webhook_url(pb::GetWebhookUrlRequest {
            webhook_id: slack.id.clone(),
        })
        .await
        .expect("url")
        .into_inner()
        .api_key;

    let mut conn = AsyncPgConnection::establish(&cp.database_url)
        .await
        .expect("connect");
    // Every row of every table as text (bytea as hex) and every bytea column as raw bytes.
    let mut text = String::new();
    for table in [
        "webhooks",
        "config_params",
        "api_tokens",
        "trigger_bindings",
        "config_changes",
    ] {
        let rows: Vec<RawRow> = diesel::sql_query(format!("SELECT t::text AS row FROM {table} t"))
            .load(&mut conn)
            .await
            .expect("dump");
        for r in rows {
            text.push_str(&r.row);
        }
    }
    let mut bytes: Vec<Vec<u8>> = Vec::new();
    for (table, column) in [
        ("webhooks", "api_key_ciphertext"),
        ("webhooks", "secret_template_ciphertext"),
        ("webhooks", "secret_resolved_ciphertext"),
        ("config_params", "value_ciphertext"),
    ] {
        let rows: Vec<RawBytes> =
            diesel::sql_query(format!("SELECT {column} AS bytes FROM {table}"))
                .load(&mut conn)
                .await
                .expect("bytes");
        bytes.extend(rows.into_iter().filter_map(|r| r.bytes));
    }
    assert!(bytes.len() >= 6, "ciphertexts were written");
    for plain in [
        secret_param,
        literal,
        "verify-token-91d2",
        key.as_str(),
        BOOTSTRAP_TOKEN,
    ] {
        assert!(
            !text.contains(plain),
            "`{plain}` found in clear in the database"
        );
        assert!(
            !text.contains(&hex::encode(plain)),
            "`{plain}` found hex-encoded in the database"
        );
        assert!(
            !bytes
                .iter()
                .any(|b| b.windows(plain.len()).any(|w| w == plain.as_bytes())),
            "`{plain}` inside a bytea"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_replay_window_is_set_on_create_changed_on_update_and_capped_at_a_day() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let request = |seconds: u32| pb::CreateWebhookRequest {
        app: Some(a.clone()),
        name: format!("replay-{seconds}"),
        provider: pb::Provider::Github as i32,
        replay_window_seconds: seconds,
        ..Default::default()
    };
    assert_err(
        c.webhooks.clone().create_webhook(request(86_401)).await,
        Code::InvalidArgument,
        "WEBHOOK_REPLAY_WINDOW_INVALID",
    );
    let wh = c
        .webhooks
        .clone()
        .create_webhook(request(600))
        .await
        .expect("created")
        .into_inner();
    assert_eq!(wh.replay_window_seconds, 600);
    let got = c
        .webhooks
        .clone()
        .get_webhook(pb::GetWebhookRequest { id: wh.id.clone() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.replay_window_seconds, 600);
    let update = |seconds: Option<u32>| pb::UpdateWebhookRequest {
        id: wh.id.clone(),
        replay_window_seconds: seconds,
        description: Some("changed".into()),
        ..Default::default()
    };
    let kept = c
        .webhooks
        .clone()
        .update_webhook(update(None))
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(kept.replay_window_seconds, 600, "absent leaves it");
    let off = c
        .webhooks
        .clone()
        .update_webhook(update(Some(0)))
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(off.replay_window_seconds, 0, "0 turns it off");
    assert_err(
        c.webhooks
            .clone()
            .update_webhook(update(Some(90_000)))
            .await,
        Code::InvalidArgument,
        "WEBHOOK_REPLAY_WINDOW_INVALID",
    );
}
