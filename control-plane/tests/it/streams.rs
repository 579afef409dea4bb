//! The config stream after it opened: a revoked or expired token ends it, and each tenant sees and
//! reports for its own data planes only (docs/control-plane.md, "Security model").

use std::time::Duration;

use control_plane::auth::Role;
use gateway_proto::v1 as pb;
use tonic::Code;
use uuid::Uuid;

use crate::support::{
    app, clients, create_token, distribution_client, exchange, foreign_token, reason, Clients,
    TestControlPlane, BOOTSTRAP_TOKEN,
};
use crate::webhooks::create;

/// How long a stream may take to end after its token stops being valid.
const WITHIN: Duration = Duration::from_secs(20);

/// An open config stream and the sender that keeps its inbound half open.
struct OpenStream {
    inbound: tonic::Streaming<pb::ControlPlaneMessage>,
    _tx: tokio::sync::mpsc::Sender<pb::DataPlaneMessage>,
}

/// Opens a config stream with `jwt` as data plane `id` and reads its first snapshot.
async fn open_stream(channel: &tonic::transport::Channel, jwt: &str, id: &str) -> OpenStream {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::DataPlaneMessage {
        kind: Some(pb::data_plane_message::Kind::Hello(pb::Hello {
            data_plane_id: id.into(),
            software_version: "test".into(),
            ..Default::default()
        })),
    })
    .await
    .expect("queue hello");
    let mut inbound = distribution_client(channel, jwt)
        .stream_config(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("stream opens")
        .into_inner();
    let first = tokio::time::timeout(WITHIN, inbound.message())
        .await
        .expect("a first message in time")
        .expect("stream healthy")
        .and_then(|m| m.kind);
    assert!(
        matches!(first, Some(pb::control_plane_message::Kind::Snapshot(_))),
        "the stream starts with a snapshot: {first:?}"
    );
    OpenStream { inbound, _tx: tx }
}

/// Reads `stream` until it ends and returns the status it ended with (panics after [`WITHIN`] or
/// when it ends cleanly).
async fn ended_with(stream: &mut OpenStream) -> tonic::Status {
    tokio::time::timeout(WITHIN, async {
        loop {
            match stream.inbound.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the stream ends in time")
}

async fn token_with_id(
    admin: &Clients,
    org: Uuid,
    workspace: Option<Uuid>,
    role: pb::Role,
) -> (String, String) {
    let created = admin
        .admin
        .clone()
        .create_api_token(pb::CreateApiTokenRequest {
            organization_id: org.to_string(),
            workspace_id: workspace.map(|w| w.to_string()).unwrap_or_default(),
            role: role as i32,
            name: "stream".into(),
        })
        .await
        .expect("token created")
        .into_inner();
    (created.api_token, created.token.expect("token row").id)
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_a_data_plane_token_ends_its_open_stream_and_only_that_one() {
    let cp = TestControlPlane::start().await;
    let channel = cp.channel().await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    let (revoked_token, revoked_id) =
        token_with_id(&admin, cp.org, None, pb::Role::DataPlane).await;
    let kept_token = create_token(&admin, cp.org, None, pb::Role::DataPlane).await;
    let mut doomed = open_stream(
        &channel,
        &exchange(&channel, &revoked_token).await.expect("exchange"),
        "dp-revoked",
    )
    .await;
    let mut kept = open_stream(
        &channel,
        &exchange(&channel, &kept_token).await.expect("exchange"),
        "dp-kept",
    )
    .await;

    admin
        .admin
        .clone()
        .revoke_api_token(pb::RevokeApiTokenRequest { id: revoked_id })
        .await
        .expect("revoked");
    let status = ended_with(&mut doomed).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(reason(&status), "TOKEN_REVOKED", "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");
    // Exchanging the revoked token again is refused: the plane cannot come back with it.
    assert_eq!(
        exchange(&channel, &revoked_token)
            .await
            .expect_err("refused")
            .code(),
        Code::Unauthenticated
    );

    // The other plane's stream carries on: a config change still reaches it.
    let a = app(cp.org);
    let wh = create(&admin, &a, "after-revocation", pb::Provider::Generic).await;
    crate::triggers::bind_and_activate(&admin, &a, "p", &wh.id).await;
    tokio::time::timeout(WITHIN, async {
        loop {
            let m = kept
                .inbound
                .message()
                .await
                .expect("the kept stream stays healthy")
                .expect("the kept stream stays open");
            if let Some(pb::control_plane_message::Kind::Delta(d)) = m.kind {
                if d.upserts.iter().any(|u| u.webhook_id == wh.id) {
                    return;
                }
            }
        }
    })
    .await
    .expect("the activated webhook reaches the kept stream");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ends_when_its_jwt_expires_and_a_fresh_exchange_reopens_it() {
    let cp = TestControlPlane::start_with(|c| c.jwt_ttl = Duration::from_secs(2)).await;
    let channel = cp.channel().await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    let token = create_token(&admin, cp.org, None, pb::Role::DataPlane).await;
    let exchanged = pb::auth_service_client::AuthServiceClient::new(channel.clone())
        .exchange_token(pb::ExchangeTokenRequest {
            api_token: token.clone(),
        })
        .await
        .expect("exchange")
        .into_inner();
    assert_eq!(exchanged.expires_in, 2, "expires_in follows CP_JWT_TTL");
    let mut stream = open_stream(&channel, &exchanged.jwt_token, "dp-expiring").await;
    let status = ended_with(&mut stream).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(reason(&status), "TOKEN_EXPIRED", "{status:?}");

    // The API token is still valid: a new exchange opens a new stream.
    let jwt = exchange(&channel, &token).await.expect("exchange again");
    open_stream(&channel, &jwt, "dp-expiring").await;
}

fn plane_ids(r: &pb::ListDataPlanesResponse) -> Vec<String> {
    r.data_planes
        .iter()
        .map(|p| p.data_plane_id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn list_data_planes_shows_only_the_callers_organization_and_workspace() {
    let cp = TestControlPlane::start().await;
    let channel = cp.channel().await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    let ws = Uuid::new_v4();
    let org_b = Uuid::new_v4();

    let org_wide = create_token(&admin, cp.org, None, pb::Role::DataPlane).await;
    let ws_scoped = create_token(&admin, cp.org, Some(ws), pb::Role::DataPlane).await;
    let foreign = foreign_token(&cp, org_b, Role::DataPlane).await;
    let _a = open_stream(
        &channel,
        &exchange(&channel, &org_wide).await.expect("exchange"),
        "dp-a",
    )
    .await;
    let _w = open_stream(
        &channel,
        &exchange(&channel, &ws_scoped).await.expect("exchange"),
        "dp-a-ws",
    )
    .await;
    let _b = open_stream(
        &channel,
        &exchange(&channel, &foreign).await.expect("exchange"),
        "dp-b",
    )
    .await;

    let list = |jwt: String| {
        let mut client = distribution_client(&channel, &jwt);
        async move {
            client
                .list_data_planes(pb::ListDataPlanesRequest {})
                .await
                .expect("list data planes")
                .into_inner()
        }
    };
    let admin_jwt = exchange(&channel, BOOTSTRAP_TOKEN).await.expect("exchange");
    let mine = list(admin_jwt).await;
    assert_eq!(plane_ids(&mine), ["dp-a", "dp-a-ws"]);
    let a = mine.data_planes.iter().find(|p| p.data_plane_id == "dp-a");
    assert_eq!(
        a.map(|p| (p.organization_id.clone(), p.workspace_id.clone())),
        Some((cp.org.to_string(), String::new()))
    );
    let w = mine
        .data_planes
        .iter()
        .find(|p| p.data_plane_id == "dp-a-ws");
    assert_eq!(w.map(|p| p.workspace_id.clone()), Some(ws.to_string()));

    let admin_b = foreign_token(&cp, org_b, Role::Admin).await;
    let theirs = list(exchange(&channel, &admin_b).await.expect("exchange")).await;
    assert_eq!(plane_ids(&theirs), ["dp-b"]);

    // A workspace-scoped ADMIN sees the planes whose token is scoped to its workspace, not the
    // organization-wide one (which serves other workspaces too).
    let ws_admin = create_token(&admin, cp.org, Some(ws), pb::Role::Admin).await;
    let in_ws = list(exchange(&channel, &ws_admin).await.expect("exchange")).await;
    assert_eq!(plane_ids(&in_ws), ["dp-a-ws"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_scoped_data_plane_cannot_report_for_another_workspace() {
    let cp = TestControlPlane::start().await;
    let channel = cp.channel().await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    let mine = app(cp.org);
    let other = app(cp.org);
    let ws: Uuid = mine.workspace_id.parse().expect("uuid");
    let in_ws = create(&admin, &mine, "in-ws", pb::Provider::Generic).await;
    let outside = create(&admin, &other, "outside-ws", pb::Provider::Generic).await;
    let token = create_token(&admin, cp.org, Some(ws), pb::Role::DataPlane).await;
    let mut dp = distribution_client(&channel, &exchange(&channel, &token).await.expect("jwt"));
    let report = |wh: &pb::Webhook| {
        let a = wh.app.clone().unwrap_or_default();
        pb::FailedTriggerReport {
            report_id: Uuid::now_v7().to_string(),
            organization_id: a.organization_id,
            workspace_id: a.workspace_id,
            app_id: a.app_id,
            webhook_id: wh.id.clone(),
            reason_code: "INVALID_JSON".into(),
            http_status: 400,
            method: "POST".into(),
            payload: b"{".to_vec(),
            payload_size: 1,
            payload_complete: true,
            ..Default::default()
        }
    };
    let answer = dp
        .report_failed_triggers(pb::ReportFailedTriggersRequest {
            data_plane_id: "dp-ws".into(),
            reports: vec![report(&in_ws), report(&outside)],
        })
        .await
        .expect("batch answered")
        .into_inner();
    assert_eq!((answer.accepted, answer.rejected), (1, 1));
    let listed = |a: pb::AppRef| {
        let mut t = admin.triggers.clone();
        async move {
            t.list_failed_triggers(pb::ListFailedTriggersRequest {
                app: Some(a),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner()
            .failed_triggers
            .len()
        }
    };
    assert_eq!(listed(mine).await, 1);
    assert_eq!(
        listed(other).await,
        0,
        "nothing stored outside the workspace"
    );
}
