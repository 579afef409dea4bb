//! AppService.ListApps: the distinct apps of the caller's scope that hold webhooks, params or actions, paged.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use gateway_proto::v1 as pb;
use gateway_proto::v1::app_service_client::AppServiceClient;
use tonic::transport::Channel;
use tonic::Code;
use uuid::Uuid;

use crate::support::{
    app, assert_err, clients, create_token, exchange, foreign_token, Authed, Bearer,
    TestControlPlane, BOOTSTRAP_TOKEN,
};
use crate::webhooks::create;

fn apps_client(channel: &Channel, jwt: &str) -> AppServiceClient<Authed> {
    let bearer = Bearer(format!("Bearer {jwt}").parse().expect("ascii header"));
    AppServiceClient::with_interceptor(channel.clone(), bearer)
}

async fn list(
    client: &AppServiceClient<Authed>,
    req: pb::ListAppsRequest,
) -> Result<pb::ListAppsResponse, tonic::Status> {
    client.clone().list_apps(req).await.map(|r| r.into_inner())
}

fn key(a: &pb::AppSummary) -> (String, String) {
    let r = a.app.as_ref().expect("app ref");
    (r.workspace_id.clone(), r.app_id.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_apps_with_webhooks_params_or_actions_once_each_with_counts() {
    let cp = TestControlPlane::start().await;
    let channel = cp.channel().await;
    let c = clients(&channel, BOOTSTRAP_TOKEN).await;
    let apps = apps_client(
        &channel,
        &exchange(&channel, BOOTSTRAP_TOKEN).await.expect("jwt"),
    );

    let empty = list(&apps, pb::ListAppsRequest::default())
        .await
        .expect("list");
    assert!(empty.apps.is_empty());

    // Two webhooks (one active) and a param in one app, only a param in another.
    let both = app(cp.org);
    let w1 = create(&c, &both, "first", pb::Provider::Generic).await;
    create(&c, &both, "second", pb::Provider::Generic).await;
    c.triggers
        .clone()
        .commit_trigger_bindings(pb::CommitTriggerBindingsRequest {
            app: Some(both.clone()),
            process_definition_id: "p".into(),
            project_id: "proj".into(),
            branch: "main".into(),
            bindings: vec![pb::BindingInput {
                node_id: "start".into(),
                node_kind: pb::NodeKind::MessageStartEvent as i32,
                webhook_id: w1.id.clone(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("bind");
    c.triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest { webhook_id: w1.id })
        .await
        .expect("activate");
    let params_only = app(cp.org);
    for a in [&both, &params_only] {
        c.params
            .clone()
            .set_config_param(pb::SetConfigParamRequest {
                app: Some(a.clone()),
                name: "region".into(),
                kind: pb::ConfigParamKind::Value as i32,
                value: "eu".into(),
            })
            .await
            .expect("param");
    }

    // An app with only an action (stored directly: the ActionService that registers them is not
    // served by this control plane yet).
    let actions_only = app(cp.org);
    let mut conn = AsyncPgConnection::establish(&cp.database_url)
        .await
        .expect("connect");
    diesel::sql_query(
        "INSERT INTO actions (id, organization_id, workspace_id, app_id, name, description, \
         webhook_url, validated_at) VALUES (gen_random_uuid(), $1::uuid, $2::uuid, $3::uuid, \
         'notify', 'sends a note', 'https://a.example/x', now())",
    )
    .bind::<diesel::sql_types::Text, _>(&actions_only.organization_id)
    .bind::<diesel::sql_types::Text, _>(&actions_only.workspace_id)
    .bind::<diesel::sql_types::Text, _>(&actions_only.app_id)
    .execute(&mut conn)
    .await
    .expect("insert an action");

    let listed = list(&apps, pb::ListAppsRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.next_page_token, "");
    let mut expected = vec![
        (both.workspace_id.clone(), both.app_id.clone()),
        (params_only.workspace_id.clone(), params_only.app_id.clone()),
        (
            actions_only.workspace_id.clone(),
            actions_only.app_id.clone(),
        ),
    ];
    expected.sort();
    assert_eq!(listed.apps.iter().map(key).collect::<Vec<_>>(), expected);
    let summary = |a: &pb::AppRef| {
        listed
            .apps
            .iter()
            .find(|s| key(s) == (a.workspace_id.clone(), a.app_id.clone()))
            .map(|s| {
                (
                    s.webhook_count,
                    s.active_webhook_count,
                    s.config_param_count,
                    s.action_count,
                )
            })
    };
    assert_eq!(summary(&both), Some((2, 1, 1, 0)));
    assert_eq!(summary(&params_only), Some((0, 0, 1, 0)));
    assert_eq!(summary(&actions_only), Some((0, 0, 0, 1)));
    for s in &listed.apps {
        assert_eq!(
            s.app.as_ref().map(|a| a.organization_id.clone()),
            Some(cp.org.to_string())
        );
    }

    // Filtered to one workspace.
    let one = list(
        &apps,
        pb::ListAppsRequest {
            workspace_id: params_only.workspace_id.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("list");
    assert_eq!(
        one.apps.iter().map(key).collect::<Vec<_>>(),
        vec![(params_only.workspace_id.clone(), params_only.app_id.clone())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_in_workspace_then_app_order() {
    let cp = TestControlPlane::start().await;
    let channel = cp.channel().await;
    let c = clients(&channel, BOOTSTRAP_TOKEN).await;
    let apps = apps_client(
        &channel,
        &exchange(&channel, BOOTSTRAP_TOKEN).await.expect("jwt"),
    );
    // Five apps, two of them in one workspace.
    let shared_ws = Uuid::new_v4().to_string();
    let mut made = Vec::new();
    for i in 0..5 {
        let mut a = app(cp.org);
        if i < 2 {
            a.workspace_id = shared_ws.clone();
        }
        create(&c, &a, "hook", pb::Provider::Generic).await;
        made.push((a.workspace_id.clone(), a.app_id.clone()));
    }
    made.sort();
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = list(
            &apps,
            pb::ListAppsRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("page");
        assert!(page.apps.len() <= 2);
        seen.extend(page.apps.iter().map(key));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, made);

    assert_err(
        list(
            &apps,
            pb::ListAppsRequest {
                page_token: "bm90LWEta2V5".into(), // "not-a-key"
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
        "PAGE_TOKEN_INVALID",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_sees_only_its_scope() {
    let cp = TestControlPlane::start().await;
    let channel = cp.channel().await;
    let c = clients(&channel, BOOTSTRAP_TOKEN).await;
    let mine = app(cp.org);
    let other = app(cp.org);
    create(&c, &mine, "mine", pb::Provider::Generic).await;
    create(&c, &other, "other", pb::Provider::Generic).await;
    let ws: Uuid = mine.workspace_id.parse().expect("uuid");

    // A workspace-scoped VIEWER lists its workspace only, and may not ask for another one.
    let viewer = create_token(&c, cp.org, Some(ws), pb::Role::Viewer).await;
    let scoped = apps_client(&channel, &exchange(&channel, &viewer).await.expect("jwt"));
    let listed = list(&scoped, pb::ListAppsRequest::default())
        .await
        .expect("list");
    assert_eq!(
        listed.apps.iter().map(key).collect::<Vec<_>>(),
        vec![(mine.workspace_id.clone(), mine.app_id.clone())]
    );
    assert_err(
        list(
            &scoped,
            pb::ListAppsRequest {
                workspace_id: other.workspace_id.clone(),
                ..Default::default()
            },
        )
        .await,
        Code::PermissionDenied,
        "SCOPE_FORBIDDEN",
    );

    // Another organization's ADMIN sees nothing of this one, and may not ask for it.
    let foreign_org = Uuid::new_v4();
    let foreign = foreign_token(&cp, foreign_org, control_plane::auth::Role::Admin).await;
    let outsider = apps_client(&channel, &exchange(&channel, &foreign).await.expect("jwt"));
    let theirs = list(&outsider, pb::ListAppsRequest::default())
        .await
        .expect("list");
    assert!(theirs.apps.is_empty());
    assert_err(
        list(
            &outsider,
            pb::ListAppsRequest {
                organization_id: cp.org.to_string(),
                ..Default::default()
            },
        )
        .await,
        Code::PermissionDenied,
        "SCOPE_FORBIDDEN",
    );

    // A DATA_PLANE token has no management access.
    let dp = create_token(&c, cp.org, None, pb::Role::DataPlane).await;
    let plane = apps_client(&channel, &exchange(&channel, &dp).await.expect("jwt"));
    assert_err(
        list(&plane, pb::ListAppsRequest::default()).await,
        Code::PermissionDenied,
        "ROLE_FORBIDDEN",
    );
    // No token at all.
    assert_err(
        AppServiceClient::new(channel.clone())
            .list_apps(pb::ListAppsRequest::default())
            .await,
        Code::Unauthenticated,
        "AUTH_TOKEN_MISSING",
    );
}
