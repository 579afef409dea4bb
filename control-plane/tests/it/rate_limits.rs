//! Webhook rate limits through the API: set on create and update, validated with
//! WEBHOOK_RATE_LIMIT_INVALID, cleared with 0, and carried in what data planes receive.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use gateway_proto::v1 as pb;
use gateway_shared::snapshot::RateLimit;
use gateway_shared::WebhookId;
use tonic::Code;

use crate::support::{app, assert_err, clients, test_keyring, TestControlPlane, BOOTSTRAP_TOKEN};

fn limits(w: &pb::Webhook) -> (f64, u32) {
    (w.rate_limit_per_second, w.rate_limit_burst)
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_validated_updated_cleared_and_streamed() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let create = |name: &str, per_second: f64, burst: u32| {
        let mut webhooks = c.webhooks.clone();
        let req = pb::CreateWebhookRequest {
            app: Some(a.clone()),
            name: name.into(),
            provider: pb::Provider::Generic as i32,
            rate_limit_per_second: per_second,
            rate_limit_burst: burst,
            ..Default::default()
        };
        async move { webhooks.create_webhook(req).await.map(|r| r.into_inner()) }
    };

    // Create: no limit by default; a rate alone gets the rate rounded up as its burst.
    let plain = create("plain", 0.0, 0).await.expect("no limit");
    assert_eq!(limits(&plain), (0.0, 0));
    let wh = create("limited", 12.5, 0).await.expect("rate only");
    assert_eq!(limits(&wh), (12.5, 13));
    let got = c
        .webhooks
        .clone()
        .get_webhook(pb::GetWebhookRequest { id: wh.id.clone() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(limits(&got), (12.5, 13), "stored");

    // Bad input: INVALID_ARGUMENT, a reason and the field, and nothing is created.
    for (name, rate, burst, field) in [
        ("negative", -1.0, 0, "rate_limit_per_second"),
        ("nan", f64::NAN, 0, "rate_limit_per_second"),
        ("infinite", f64::INFINITY, 0, "rate_limit_per_second"),
        ("too-fast", 1_000_001.0, 0, "rate_limit_per_second"),
        ("huge-burst", 5.0, 1_000_001, "rate_limit_burst"),
        ("burst-alone", 0.0, 10, "rate_limit_burst"),
    ] {
        let status = assert_err(
            create(name, rate, burst).await,
            Code::InvalidArgument,
            "WEBHOOK_RATE_LIMIT_INVALID",
        );
        assert!(status.message().contains(field), "{name}: {status:?}");
    }
    let listed = c
        .webhooks
        .clone()
        .list_webhooks(pb::ListWebhooksRequest {
            app: Some(a.clone()),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.webhooks.len(), 2, "no refused webhook was stored");

    let update = |per_second: Option<f64>, burst: Option<u32>| {
        let mut webhooks = c.webhooks.clone();
        let req = pb::UpdateWebhookRequest {
            id: wh.id.clone(),
            rate_limit_per_second: per_second,
            rate_limit_burst: burst,
            ..Default::default()
        };
        async move { webhooks.update_webhook(req).await.map(|r| r.into_inner()) }
    };
    // Update: an explicit burst; a new rate keeps it; another field leaves both alone.
    assert_eq!(
        limits(&update(None, Some(40)).await.expect("burst")),
        (12.5, 40)
    );
    assert_eq!(
        limits(&update(Some(50.0), None).await.expect("rate")),
        (50.0, 40)
    );
    let renamed = c
        .webhooks
        .clone()
        .update_webhook(pb::UpdateWebhookRequest {
            id: wh.id.clone(),
            description: Some("limited".into()),
            ..Default::default()
        })
        .await
        .expect("description")
        .into_inner();
    assert_eq!(limits(&renamed), (50.0, 40));
    assert_err(
        update(Some(-5.0), None).await,
        Code::InvalidArgument,
        "WEBHOOK_RATE_LIMIT_INVALID",
    );
    assert_err(
        update(Some(0.0), Some(3)).await,
        Code::InvalidArgument,
        "WEBHOOK_RATE_LIMIT_INVALID",
    );
    assert_eq!(
        limits(&update(None, None).await.expect("unchanged")),
        (50.0, 40),
        "a refused update changed nothing"
    );

    // What data planes receive: the fleet-wide limit with its burst resolved.
    let keyring = test_keyring();
    let mut conn = AsyncPgConnection::establish(&cp.database_url)
        .await
        .expect("connect");
    let id = WebhookId(wh.id.parse().expect("uuid"));
    c.triggers
        .clone()
        .commit_trigger_bindings(pb::CommitTriggerBindingsRequest {
            app: Some(a.clone()),
            process_definition_id: "proc".into(),
            project_id: "proj".into(),
            branch: "main".into(),
            process_version: "1".into(),
            bindings: vec![pb::BindingInput {
                node_id: "s".into(),
                node_kind: pb::NodeKind::MessageStartEvent as i32,
                webhook_id: wh.id.clone(),
                ..Default::default()
            }],
        })
        .await
        .expect("bound");
    c.triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: wh.id.clone(),
        })
        .await
        .expect("on");
    let served = control_plane::snapshot::webhook_config(&mut conn, &keyring, id)
        .await
        .expect("read")
        .expect("active");
    assert_eq!(
        served.options.rate_limit,
        Some(RateLimit {
            per_second: 50.0,
            burst: 40
        })
    );
    let route = pb::WebhookRoute::from(&served);
    assert_eq!(
        (route.rate_limit_per_second, route.rate_limit_burst),
        (50.0, 40)
    );

    // A burst of 0 goes back to the default; a rate of 0 removes the limit and its burst.
    assert_eq!(
        limits(&update(None, Some(0)).await.expect("default burst")),
        (50.0, 50)
    );
    assert_eq!(
        limits(&update(Some(0.0), None).await.expect("cleared")),
        (0.0, 0)
    );
    let served = control_plane::snapshot::webhook_config(&mut conn, &keyring, id)
        .await
        .expect("read")
        .expect("active");
    assert_eq!(served.options.rate_limit, None);
}
