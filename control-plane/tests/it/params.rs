//! ConfigParamService: SECRET params are write-only, placeholders resolve, changes re-resolve.

use gateway_proto::v1 as pb;
use gateway_shared::WebhookId;
use tonic::Code;

use crate::support::{app, assert_err, clients, test_keyring, TestControlPlane, BOOTSTRAP_TOKEN};
use crate::webhooks::create;

#[tokio::test(flavor = "multi_thread")]
async fn params_crud_and_secret_values_never_returned() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let set = |name: &str, kind: pb::ConfigParamKind, value: &str| pb::SetConfigParamRequest {
        app: Some(a.clone()),
        name: name.into(),
        kind: kind as i32,
        value: value.into(),
    };
    let v = c
        .params
        .clone()
        .set_config_param(set("region", pb::ConfigParamKind::Value, "eu"))
        .await
        .expect("set")
        .into_inner();
    assert_eq!(v.value, "eu");
    let s = c
        .params
        .clone()
        .set_config_param(set(
            "api.secret",
            pb::ConfigParamKind::Secret,
            "hunter2-secret",
        ))
        .await
        .expect("set")
        .into_inner();
    assert_eq!(
        (s.kind, s.value.as_str()),
        (pb::ConfigParamKind::Secret as i32, "")
    );
    let got = c
        .params
        .clone()
        .get_config_param(pb::GetConfigParamRequest {
            app: Some(a.clone()),
            name: "api.secret".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.value, "");
    let listed = c
        .params
        .clone()
        .list_config_params(pb::ListConfigParamsRequest {
            app: Some(a.clone()),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        listed
            .params
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect::<Vec<_>>(),
        vec![("api.secret", ""), ("region", "eu")]
    );
    assert!(!format!("{listed:?}").contains("hunter2"));

    assert_err(
        c.params
            .clone()
            .set_config_param(set("1bad", pb::ConfigParamKind::Value, "x"))
            .await,
        Code::InvalidArgument,
        "CONFIG_PARAM_NAME_INVALID",
    );
    assert_err(
        c.params
            .clone()
            .set_config_param(set("ok", pb::ConfigParamKind::Unspecified, "x"))
            .await,
        Code::InvalidArgument,
        "CONFIG_PARAM_KIND_REQUIRED",
    );
    assert_err(
        c.params
            .clone()
            .get_config_param(pb::GetConfigParamRequest {
                app: Some(a.clone()),
                name: "nope".into(),
            })
            .await,
        Code::NotFound,
        "CONFIG_PARAM_NOT_FOUND",
    );
    c.params
        .clone()
        .delete_config_param(pb::DeleteConfigParamRequest {
            app: Some(a.clone()),
            name: "region".into(),
        })
        .await
        .expect("deleted");
    assert_err(
        c.params
            .clone()
            .delete_config_param(pb::DeleteConfigParamRequest {
                app: Some(a.clone()),
                name: "region".into(),
            })
            .await,
        Code::NotFound,
        "CONFIG_PARAM_NOT_FOUND",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn placeholders_resolve_at_registration_and_again_when_the_param_changes() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let slack = create(&c, &a, "slack", pb::Provider::Slack).await;
    let err = assert_err(
        c.webhooks
            .clone()
            .set_provider_secret(pb::SetProviderSecretRequest {
                webhook_id: slack.id.clone(),
                signing_secret: "${configParam.slackSecret}".into(),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "CONFIG_PARAM_NOT_FOUND",
    );
    assert!(
        err.message().contains("slackSecret"),
        "the error names the param: {}",
        err.message()
    );
    assert_err(
        c.webhooks
            .clone()
            .set_provider_secret(pb::SetProviderSecretRequest {
                webhook_id: slack.id.clone(),
                signing_secret: "${configParam.open".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "PLACEHOLDER_INVALID",
    );

    c.params
        .clone()
        .set_config_param(pb::SetConfigParamRequest {
            app: Some(a.clone()),
            name: "slackSecret".into(),
            kind: pb::ConfigParamKind::Secret as i32,
            value: "first".into(),
        })
        .await
        .expect("param");
    let wh = c
        .webhooks
        .clone()
        .set_provider_secret(pb::SetProviderSecretRequest {
            webhook_id: slack.id.clone(),
            signing_secret: "${configParam.slackSecret}".into(),
            ..Default::default()
        })
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(wh.secret_param_refs, vec!["slackSecret".to_owned()]);
    crate::triggers::bind_start(&c, &a, "p", &slack.id).await;
    c.triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: slack.id.clone(),
        })
        .await
        .expect("on");

    let keyring = test_keyring();
    let id = WebhookId(slack.id.parse().expect("uuid"));
    let signing = || async {
        use diesel_async::AsyncConnection;
        let mut conn = diesel_async::AsyncPgConnection::establish(&cp.database_url)
            .await
            .expect("connect");
        let cfg = control_plane::snapshot::webhook_config(&mut conn, &keyring, id)
            .await
            .expect("builds")
            .expect("active");
        cfg.secrets
            .signing
            .iter()
            .map(|s| s.value.expose().clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(signing().await, vec!["first".to_owned()]);

    // Changing the param re-resolves the webhook in the same transaction.
    c.params
        .clone()
        .set_config_param(pb::SetConfigParamRequest {
            app: Some(a.clone()),
            name: "slackSecret".into(),
            kind: pb::ConfigParamKind::Secret as i32,
            value: "second".into(),
        })
        .await
        .expect("param changed");
    assert_eq!(signing().await, vec!["second".to_owned()]);

    // A param in use cannot be deleted.
    assert_err(
        c.params
            .clone()
            .delete_config_param(pb::DeleteConfigParamRequest {
                app: Some(a.clone()),
                name: "slackSecret".into(),
            })
            .await,
        Code::FailedPrecondition,
        "CONFIG_PARAM_IN_USE",
    );
    // A same-named param in another app does not resolve here.
    let other = app(cp.org);
    let other_hook = create(&c, &other, "slack", pb::Provider::Slack).await;
    assert_err(
        c.webhooks
            .clone()
            .set_provider_secret(pb::SetProviderSecretRequest {
                webhook_id: other_hook.id,
                signing_secret: "${configParam.slackSecret}".into(),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "CONFIG_PARAM_NOT_FOUND",
    );
}

/// A provider secret may only reference SECRET params: a VALUE param is readable by VIEWERs, so a
/// signing secret built from it would leak. Refused when the secret is saved, and when a referenced
/// param would become a VALUE.
#[tokio::test(flavor = "multi_thread")]
async fn provider_secrets_reference_only_secret_params() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let set = |name: &str, kind: pb::ConfigParamKind, value: &str| pb::SetConfigParamRequest {
        app: Some(a.clone()),
        name: name.into(),
        kind: kind as i32,
        value: value.into(),
    };
    c.params
        .clone()
        .set_config_param(set("plainSigning", pb::ConfigParamKind::Value, "visible"))
        .await
        .expect("value param");
    let slack = create(&c, &a, "slack", pb::Provider::Slack).await;
    let refused = assert_err(
        c.webhooks
            .clone()
            .set_provider_secret(pb::SetProviderSecretRequest {
                webhook_id: slack.id.clone(),
                signing_secret: "${configParam.plainSigning}".into(),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "CONFIG_PARAM_NOT_SECRET",
    );
    assert!(refused.message().contains("plainSigning"), "{refused:?}");
    let got = c
        .webhooks
        .clone()
        .get_webhook(pb::GetWebhookRequest {
            id: slack.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert!(!got.has_provider_secret, "nothing was saved");

    // At registration too.
    assert_err(
        c.webhooks
            .clone()
            .create_webhook(pb::CreateWebhookRequest {
                app: Some(a.clone()),
                name: "github".into(),
                provider: pb::Provider::Github as i32,
                provider_secret: Some(pb::SetProviderSecretRequest {
                    signing_secret: "gh-${configParam.plainSigning}".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "CONFIG_PARAM_NOT_SECRET",
    );

    // A SECRET param in use cannot be turned into a VALUE: the change is refused and nothing moves.
    c.params
        .clone()
        .set_config_param(set("slackSigning", pb::ConfigParamKind::Secret, "s3cret"))
        .await
        .expect("secret param");
    c.webhooks
        .clone()
        .set_provider_secret(pb::SetProviderSecretRequest {
            webhook_id: slack.id.clone(),
            signing_secret: "${configParam.slackSigning}".into(),
            ..Default::default()
        })
        .await
        .expect("a SECRET param resolves");
    let refused = assert_err(
        c.params
            .clone()
            .set_config_param(set(
                "slackSigning",
                pb::ConfigParamKind::Value,
                "now-visible",
            ))
            .await,
        Code::FailedPrecondition,
        "CONFIG_PARAM_NOT_SECRET",
    );
    assert!(
        refused.message().contains("webhook `slack`"),
        "names the webhook: {refused:?}"
    );
    let param = c
        .params
        .clone()
        .get_config_param(pb::GetConfigParamRequest {
            app: Some(a.clone()),
            name: "slackSigning".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        param.kind,
        pb::ConfigParamKind::Secret as i32,
        "still SECRET"
    );
    assert_eq!(param.value, "");
}
