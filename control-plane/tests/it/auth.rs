//! Tokens, roles and tenancy: every RPC checks who calls and in which organization.

use gateway_proto::v1 as pb;
use tonic::Code;
use uuid::Uuid;

use crate::support::{
    self, app, assert_err, clients, create_token, foreign_token, TestControlPlane, BOOTSTRAP_TOKEN,
};

#[tokio::test(flavor = "multi_thread")]
async fn exchange_token_issues_a_24h_bearer_and_refuses_unknown_tokens() {
    let cp = TestControlPlane::start().await;
    let channel = cp.channel().await;
    let mut auth = pb::auth_service_client::AuthServiceClient::new(channel.clone());
    let resp = auth
        .exchange_token(pb::ExchangeTokenRequest {
            api_token: BOOTSTRAP_TOKEN.into(),
        })
        .await
        .expect("bootstrap token exchanges")
        .into_inner();
    assert_eq!(resp.token_type, "Bearer");
    assert_eq!(resp.expires_in, 86_400);
    assert_eq!(resp.jwt_token.split('.').count(), 3);

    assert_err(
        auth.exchange_token(pb::ExchangeTokenRequest {
            api_token: "gwt_nope".into(),
        })
        .await,
        Code::Unauthenticated,
        "API_TOKEN_INVALID",
    );

    // No bearer, a garbage bearer, a JWT signed by someone else: UNAUTHENTICATED.
    let mut anon = pb::webhook_service_client::WebhookServiceClient::new(channel.clone());
    assert_err(
        anon.list_webhooks(pb::ListWebhooksRequest {
            app: Some(app(cp.org)),
            ..Default::default()
        })
        .await,
        Code::Unauthenticated,
        "AUTH_TOKEN_MISSING",
    );
    let forged = support::clients_with_jwt(&channel, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln");
    assert_err(
        forged
            .webhooks
            .clone()
            .list_webhooks(pb::ListWebhooksRequest {
                app: Some(app(cp.org)),
                ..Default::default()
            })
            .await,
        Code::Unauthenticated,
        "AUTH_TOKEN_INVALID",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_creates_lists_and_revokes_tokens_and_revocation_is_immediate() {
    let cp = TestControlPlane::start().await;
    let channel = cp.channel().await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    let created = admin
        .admin
        .clone()
        .create_api_token(pb::CreateApiTokenRequest {
            organization_id: cp.org.to_string(),
            workspace_id: String::new(),
            role: pb::Role::Editor as i32,
            name: "designer".into(),
        })
        .await
        .expect("created")
        .into_inner();
    assert!(created.api_token.starts_with("gwt_"));
    let token = created.token.expect("token described");
    assert_eq!(token.role, pb::Role::Editor as i32);

    let listed = admin
        .admin
        .clone()
        .list_api_tokens(pb::ListApiTokensRequest {
            organization_id: cp.org.to_string(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("lists")
        .into_inner();
    assert_eq!(listed.tokens.len(), 1);
    assert!(!listed.next_page_token.is_empty());
    let page2 = admin
        .admin
        .clone()
        .list_api_tokens(pb::ListApiTokensRequest {
            organization_id: cp.org.to_string(),
            page_size: 1,
            page_token: listed.next_page_token,
        })
        .await
        .expect("lists")
        .into_inner();
    assert_eq!(page2.tokens[0].id, token.id);
    assert!(page2.next_page_token.is_empty());

    let editor = clients(&channel, &created.api_token).await;
    let a = app(cp.org);
    editor
        .webhooks
        .clone()
        .list_webhooks(pb::ListWebhooksRequest {
            app: Some(a.clone()),
            ..Default::default()
        })
        .await
        .expect("editor reads");
    // An EDITOR cannot manage tokens.
    assert_err(
        editor
            .admin
            .clone()
            .list_api_tokens(pb::ListApiTokensRequest {
                organization_id: cp.org.to_string(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        "ROLE_FORBIDDEN",
    );

    let revoked = admin
        .admin
        .clone()
        .revoke_api_token(pb::RevokeApiTokenRequest {
            id: token.id.clone(),
        })
        .await
        .expect("revoked")
        .into_inner();
    assert!(revoked.token.expect("token").revoked_at.is_some());
    // The JWT already issued stops working at once, and the token cannot be exchanged again.
    assert_err(
        editor
            .webhooks
            .clone()
            .list_webhooks(pb::ListWebhooksRequest {
                app: Some(a),
                ..Default::default()
            })
            .await,
        Code::Unauthenticated,
        "AUTH_TOKEN_INVALID",
    );
    assert_err(
        support::exchange(&channel, &created.api_token).await,
        Code::Unauthenticated,
        "API_TOKEN_INVALID",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn viewer_reads_but_cannot_write_or_see_credentials_and_data_plane_sees_nothing() {
    let cp = TestControlPlane::start().await;
    let channel = cp.channel().await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let wh = admin
        .webhooks
        .clone()
        .create_webhook(pb::CreateWebhookRequest {
            app: Some(a.clone()),
            name: "orders".into(),
            provider: pb::Provider::Generic as i32,
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner();

    let viewer = clients(
        &channel,
        &create_token(&admin, cp.org, None, pb::Role::Viewer).await,
    )
    .await;
    viewer
        .webhooks
        .clone()
        .get_webhook(pb::GetWebhookRequest { id: wh.id.clone() })
        .await
        .expect("viewer reads");
    viewer
        .triggers
        .clone()
        .list_triggers(pb::ListTriggersRequest {
            app: Some(a.clone()),
            ..Default::default()
        })
        .await
        .expect("viewer lists triggers");
    let forbidden = |r: Result<_, tonic::Status>| {
        assert_err(r, Code::PermissionDenied, "ROLE_FORBIDDEN");
    };
    forbidden(
        viewer
            .webhooks
            .clone()
            .create_webhook(pb::CreateWebhookRequest {
                app: Some(a.clone()),
                name: "other".into(),
                provider: 1,
                ..Default::default()
            })
            .await
            .map(|_| ()),
    );
    forbidden(
        viewer
            .webhooks
            .clone()
            .update_webhook(pb::UpdateWebhookRequest {
                id: wh.id.clone(),
                description: Some("x".into()),
                ..Default::default()
            })
            .await
            .map(|_| ()),
    );
    forbidden(
        viewer
            .webhooks
            .clone()
            .delete_webhook(pb::DeleteWebhookRequest { id: wh.id.clone() })
            .await
            .map(|_| ()),
    );
    forbidden(
        viewer
            .webhooks
            .clone()
            .get_webhook_url(pb::GetWebhookUrlRequest {
                webhook_id: wh.id.clone(),
            })
            .await
            .map(|_| ()),
    );
    forbidden(
        viewer
            .webhooks
            .clone()
            .reset_api_key(pb::ResetApiKeyRequest {
                webhook_id: wh.id.clone(),
                grace_period_seconds: 0,
            })
            .await
            .map(|_| ()),
    );
    forbidden(
        viewer
            .triggers
            .clone()
            .activate_trigger(pb::ActivateTriggerRequest {
                webhook_id: wh.id.clone(),
            })
            .await
            .map(|_| ()),
    );
    forbidden(
        viewer
            .params
            .clone()
            .set_config_param(pb::SetConfigParamRequest {
                app: Some(a.clone()),
                name: "p".into(),
                kind: 1,
                value: "v".into(),
            })
            .await
            .map(|_| ()),
    );
    forbidden(
        viewer
            .triggers
            .clone()
            .commit_trigger_bindings(pb::CommitTriggerBindingsRequest {
                app: Some(a.clone()),
                process_definition_id: "p".into(),
                project_id: "x".into(),
                branch: "main".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
    );

    let dp = clients(
        &channel,
        &create_token(&admin, cp.org, None, pb::Role::DataPlane).await,
    )
    .await;
    forbidden(
        dp.webhooks
            .clone()
            .get_webhook(pb::GetWebhookRequest { id: wh.id.clone() })
            .await
            .map(|_| ()),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_organization_never_sees_or_changes_another() {
    let cp = TestControlPlane::start().await;
    let channel = cp.channel().await;
    let admin_a = clients(&channel, BOOTSTRAP_TOKEN).await;
    // A second organization's admin, made with the bootstrap-token code path.
    let org_b = Uuid::new_v4();
    let token_b = foreign_token(&cp, org_b, control_plane::auth::Role::Admin).await;
    let admin_b = clients(&channel, &token_b).await;

    let app_a = app(cp.org);
    let wh = admin_a
        .webhooks
        .clone()
        .create_webhook(pb::CreateWebhookRequest {
            app: Some(app_a.clone()),
            name: "orders".into(),
            provider: pb::Provider::Slack as i32,
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner();
    admin_a
        .params
        .clone()
        .set_config_param(pb::SetConfigParamRequest {
            app: Some(app_a.clone()),
            name: "p".into(),
            kind: pb::ConfigParamKind::Value as i32,
            value: "v".into(),
        })
        .await
        .expect("param set");

    let b = admin_b.webhooks.clone();
    let nf = |r: Result<(), tonic::Status>| {
        assert_err(r, Code::NotFound, "WEBHOOK_NOT_FOUND");
    };
    nf(b.clone()
        .get_webhook(pb::GetWebhookRequest { id: wh.id.clone() })
        .await
        .map(|_| ()));
    nf(b.clone()
        .get_webhook_url(pb::GetWebhookUrlRequest {
            webhook_id: wh.id.clone(),
        })
        .await
        .map(|_| ()));
    nf(b.clone()
        .update_webhook(pb::UpdateWebhookRequest {
            id: wh.id.clone(),
            name: Some("stolen".into()),
            ..Default::default()
        })
        .await
        .map(|_| ()));
    nf(b.clone()
        .delete_webhook(pb::DeleteWebhookRequest { id: wh.id.clone() })
        .await
        .map(|_| ()));
    nf(b.clone()
        .set_provider_secret(pb::SetProviderSecretRequest {
            webhook_id: wh.id.clone(),
            signing_secret: "x".into(),
            ..Default::default()
        })
        .await
        .map(|_| ()));
    nf(b.clone()
        .reset_api_key(pb::ResetApiKeyRequest {
            webhook_id: wh.id.clone(),
            grace_period_seconds: 0,
        })
        .await
        .map(|_| ()));
    nf(admin_b
        .triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: wh.id.clone(),
        })
        .await
        .map(|_| ()));
    nf(admin_b
        .triggers
        .clone()
        .deactivate_trigger(pb::DeactivateTriggerRequest {
            webhook_id: wh.id.clone(),
        })
        .await
        .map(|_| ()));
    // Naming org A's app directly is refused by scope.
    let denied = |r: Result<(), tonic::Status>| {
        assert_err(r, Code::PermissionDenied, "SCOPE_FORBIDDEN");
    };
    denied(
        b.clone()
            .list_webhooks(pb::ListWebhooksRequest {
                app: Some(app_a.clone()),
                ..Default::default()
            })
            .await
            .map(|_| ()),
    );
    denied(
        admin_b
            .params
            .clone()
            .list_config_params(pb::ListConfigParamsRequest {
                app: Some(app_a.clone()),
                ..Default::default()
            })
            .await
            .map(|_| ()),
    );
    denied(
        admin_b
            .params
            .clone()
            .get_config_param(pb::GetConfigParamRequest {
                app: Some(app_a.clone()),
                name: "p".into(),
            })
            .await
            .map(|_| ()),
    );
    denied(
        admin_b
            .triggers
            .clone()
            .list_triggers(pb::ListTriggersRequest {
                app: Some(app_a.clone()),
                ..Default::default()
            })
            .await
            .map(|_| ()),
    );
    denied(
        admin_b
            .admin
            .clone()
            .create_api_token(pb::CreateApiTokenRequest {
                organization_id: cp.org.to_string(),
                role: 1,
                name: "x".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
    );
    // Org B cannot bind org A's webhook from its own app either.
    assert_err(
        admin_b
            .triggers
            .clone()
            .commit_trigger_bindings(pb::CommitTriggerBindingsRequest {
                app: Some(app(org_b)),
                process_definition_id: "p".into(),
                project_id: "x".into(),
                branch: "main".into(),
                bindings: vec![pb::BindingInput {
                    node_id: "n".into(),
                    node_kind: 1,
                    webhook_id: wh.id.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await,
        Code::NotFound,
        "WEBHOOK_NOT_FOUND",
    );
    // Org A's webhook is untouched.
    let still = admin_a
        .webhooks
        .clone()
        .get_webhook(pb::GetWebhookRequest { id: wh.id })
        .await
        .expect("still there")
        .into_inner();
    assert_eq!(still.name, "orders");
}

#[tokio::test(flavor = "multi_thread")]
async fn workspace_scoped_token_stays_in_its_workspace() {
    let cp = TestControlPlane::start().await;
    let channel = cp.channel().await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    let mine = app(cp.org);
    let other = app(cp.org);
    let ws: Uuid = mine.workspace_id.parse().expect("uuid");
    let other_wh = admin
        .webhooks
        .clone()
        .create_webhook(pb::CreateWebhookRequest {
            app: Some(other.clone()),
            name: "elsewhere".into(),
            provider: 1,
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner();
    let scoped = clients(
        &channel,
        &create_token(&admin, cp.org, Some(ws), pb::Role::Editor).await,
    )
    .await;
    scoped
        .webhooks
        .clone()
        .create_webhook(pb::CreateWebhookRequest {
            app: Some(mine),
            name: "here".into(),
            provider: 1,
            ..Default::default()
        })
        .await
        .expect("own workspace works");
    assert_err(
        scoped
            .webhooks
            .clone()
            .create_webhook(pb::CreateWebhookRequest {
                app: Some(other),
                name: "there".into(),
                provider: 1,
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        "SCOPE_FORBIDDEN",
    );
    assert_err(
        scoped
            .webhooks
            .clone()
            .get_webhook(pb::GetWebhookRequest { id: other_wh.id })
            .await,
        Code::NotFound,
        "WEBHOOK_NOT_FOUND",
    );
}
