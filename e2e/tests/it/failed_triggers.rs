//! Failed triggers end to end: rejections and a broker outage on a real data plane are
//! reported over the config stream's connection, listed and shown (masked) by the control plane, a
//! publish failure is replayed once the broker is back, and another organization sees none of it.

use gateway_proto::v1 as pb;
use rdkafka::message::Headers;
use rdkafka::Message;
use uuid::Uuid;

use crate::support::{app, hmac_hex, sample, Api, ControlPlane, DataPlane, BOOTSTRAP_TOKEN, WAIT};

const SECRET: &str = "slack-secret-failed";

/// Slack signature headers for `body` with `secret`, plus extra headers.
fn slack_headers(secret: &str, body: &str) -> Vec<(&'static str, String)> {
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = format!(
        "v0={}",
        hmac_hex(secret, format!("v0:{ts}:{body}").as_bytes())
    );
    vec![
        ("x-slack-request-timestamp", ts),
        ("x-slack-signature", sig),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn rejections_and_outages_are_listed_masked_and_replayable() {
    let db = gateway_testkit::fresh_database().await;
    let org = Uuid::new_v4();
    // A broker of this test's own, so it can be taken away and brought back with its data (sqlite).
    let mut broker = gateway_testkit::Broker::start("sqlite");
    let topic = format!("e2e-failed-{}", Uuid::new_v4().simple());
    gateway_testkit::create_topic_on(&broker.bootstrap, &topic, 1).await;
    let cp = ControlPlane::start_full(
        &db.url,
        org,
        None,
        control_plane::failed_triggers::FailedTriggerArgs {
            kafka_bootstrap: Some(broker.bootstrap.clone()),
            kafka_topic: topic.clone(),
            ..Default::default()
        },
    )
    .await;
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let app = app(org);
    let (id, url) = api.slack_webhook(&app, "failing-e2e", SECRET).await;
    let dp_token = api.data_plane_token(org).await;
    let dp = DataPlane::start_on(
        &broker.bootstrap,
        &cp.url(),
        &dp_token,
        &topic,
        &[
            "--max-body-bytes",
            "4096",
            "--produce-timeout",
            "2s",
            // librdkafka keeps the record answered 503 and delivers it once the broker is back
            // (tansu 0.6 crashes when an idempotent producer gives a record up; docs/data-plane.md).
            "--kafka-message-timeout",
            "120s",
            "--failed-trigger-linger-ms",
            "20",
        ],
    )
    .await;
    dp.eventually_slack("the webhook is served", &url, SECRET, 200)
        .await;

    // 1. A bad signature, with credentials in headers that must never be stored.
    let body = r#"{"type":"event_callback","event":{"text":"hello"}}"#;
    let mut headers = slack_headers("not-the-secret", body);
    headers.push(("authorization", "Bearer very-secret-token".into()));
    headers.push(("cookie", "session=very-secret-cookie".into()));
    headers.push((
        "x-original-uri",
        format!("/hook?{}", url.split_once('?').expect("query").1),
    ));
    headers.push(("x-request-id", "e2e-bad-signature".into()));
    assert_eq!(dp.post_signed(&url, &headers, body).await, 401);
    // 2. Too large (the body is cut off at the limit and never kept).
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(8192));
    assert_eq!(dp.post_slack(&url, SECRET, &big).await, 413);
    // 3. Signed, declared JSON, not JSON.
    assert_eq!(dp.post_slack(&url, SECRET, "{not json").await, 400);
    // 4. The broker goes away: a valid request gets 503.
    broker.stop();
    let outage_body = r#"{"type":"event_callback","event":{"text":"during the outage"}}"#;
    assert_eq!(dp.post_slack(&url, SECRET, outage_body).await, 503);

    let expected = [
        ("SIGNATURE_INVALID", 401),
        ("PAYLOAD_TOO_LARGE", 413),
        ("INVALID_JSON", 400),
        ("BROKER_UNAVAILABLE", 503),
    ];
    let listed = gateway_testkit::eventually("all four failed triggers listed", WAIT, || {
        let api = api.clone();
        let app = app.clone();
        async move {
            let page = api
                .triggers()
                .list_failed_triggers(api.req(pb::ListFailedTriggersRequest {
                    app: Some(app),
                    ..Default::default()
                }))
                .await
                .ok()?
                .into_inner();
            (page.failed_triggers.len() >= expected.len()).then_some(page.failed_triggers)
        }
    })
    .await;
    assert_eq!(listed.len(), expected.len(), "{listed:?}");
    // Newest first: the reverse of the order sent.
    for (ft, (code, status)) in listed.iter().zip(expected.iter().rev()) {
        assert_eq!(ft.reason_code, *code, "{ft:?}");
        assert_eq!(ft.http_status, *status as u32, "{ft:?}");
        assert_eq!(ft.webhook_id, id);
        assert!(
            ft.headers.is_empty() && ft.payload.is_none(),
            "List leaves headers and payload out"
        );
    }
    let by_code = |code: &str| {
        listed
            .iter()
            .find(|f| f.reason_code == code)
            .expect("listed")
            .clone()
    };
    assert!(
        !by_code("PAYLOAD_TOO_LARGE").replayable,
        "a body never read cannot be replayed"
    );
    assert!(by_code("BROKER_UNAVAILABLE").replayable);

    // Get: the masked headers and the payload.
    let bad_sig = api
        .triggers()
        .get_failed_trigger(api.req(pb::GetFailedTriggerRequest {
            id: by_code("SIGNATURE_INVALID").id,
        }))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(bad_sig.request_id, "e2e-bad-signature");
    assert_eq!(bad_sig.detail, "mismatch");
    assert_eq!(
        bad_sig.payload,
        Some(pb::failed_trigger::Payload::PayloadText(body.into()))
    );
    let shown = format!("{:?}", bad_sig.headers);
    let api_key = url.split_once("flowxApiKey=").expect("key").1;
    for secret in ["very-secret-token", "very-secret-cookie", api_key] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    let header = |name: &str| {
        bad_sig
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .unwrap_or_else(|| panic!("{name} kept (masked) in {shown}"))
            .values
            .clone()
    };
    assert_eq!(header("Authorization"), ["[masked]"]);
    assert_eq!(header("Cookie"), ["[masked]"]);
    assert_eq!(header("X-Slack-Signature"), ["[masked]"]);
    assert_eq!(header("Content-Type"), ["application/json"]);

    // Another organization's ADMIN sees none of it.
    let other = Api::login(
        cp.channel().await,
        &foreign_admin_token(&db.url, Uuid::new_v4()).await,
    )
    .await;
    let denied = other
        .triggers()
        .list_failed_triggers(other.req(pb::ListFailedTriggersRequest {
            app: Some(app.clone()),
            ..Default::default()
        }))
        .await;
    assert!(
        matches!(&denied, Err(s) if matches!(s.code(), tonic::Code::PermissionDenied | tonic::Code::NotFound)),
        "{denied:?}"
    );
    let hidden = other
        .triggers()
        .get_failed_trigger(other.req(pb::GetFailedTriggerRequest {
            id: by_code("BROKER_UNAVAILABLE").id,
        }))
        .await;
    assert!(
        matches!(&hidden, Err(s) if matches!(s.code(), tonic::Code::PermissionDenied | tonic::Code::NotFound)),
        "{hidden:?}"
    );

    // The broker comes back and the publish failure is replayed.
    broker.restart_on_same_port();
    let failed = by_code("BROKER_UNAVAILABLE");
    let replayed = gateway_testkit::eventually("the replay is published", WAIT, || {
        let api = api.clone();
        let id = failed.id.clone();
        async move {
            api.triggers()
                .replay_failed_trigger(api.req(pb::ReplayFailedTriggerRequest { id, force: false }))
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    })
    .await;
    let record = replayed.failed_trigger.expect("record");
    assert_eq!(record.replay_count, 1);
    assert_eq!(record.replay_event_id, replayed.event_id);
    assert!(record.replayed_at.is_some());
    // The topic holds the event accepted before the outage, the replay, and the record answered 503
    // that librdkafka delivered late (at-least-once; the sender's retry would be a duplicate too).
    let records = gateway_testkit::consume(&broker.bootstrap, &topic, 3, WAIT).await;
    let envelope_of = |m: &rdkafka::message::OwnedMessage| -> serde_json::Value {
        serde_json::from_slice(m.payload().expect("value")).expect("json")
    };
    let replay = records
        .iter()
        .find(|m| envelope_of(m)["eventId"] == replayed.event_id.as_str())
        .expect("the replayed event is in the topic");
    let envelope = envelope_of(replay);
    let ids: Vec<String> = records
        .iter()
        .map(|m| {
            envelope_of(m)["eventId"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        ids.iter().filter(|i| **i == replayed.event_id).count(),
        1,
        "the replay has an event id of its own: {ids:?}"
    );
    assert_eq!(envelope["webhookId"], id.as_str());
    assert_eq!(
        envelope["webhookMessage"]["payload"]["event"]["text"],
        "during the outage"
    );
    let replay_of = replay
        .headers()
        .expect("headers")
        .iter()
        .find(|h| h.key == "Fx-Replay-Of")
        .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()));
    assert_eq!(replay_of.as_deref(), Some(failed.id.as_str()));
    let again = api
        .triggers()
        .replay_failed_trigger(api.req(pb::ReplayFailedTriggerRequest {
            id: failed.id.clone(),
            force: false,
        }))
        .await;
    assert!(
        matches!(&again, Err(s) if s.code() == tonic::Code::FailedPrecondition),
        "a second replay needs force: {again:?}"
    );

    // Both planes' metrics moved.
    let dp_metrics = dp.metrics_text().await;
    let sent = sample(
        &dp_metrics,
        r#"webhook_gateway_failed_trigger_reports_total{result="sent"}"#,
    );
    assert!(sent.is_some_and(|n| n >= 4.0), "{dp_metrics}");
    let cp_metrics = cp.metrics_text().await;
    let stored = sample(
        &cp_metrics,
        r#"gateway_failed_trigger_reports_total{result="stored"}"#,
    );
    assert!(stored.is_some_and(|n| n >= 4.0), "{cp_metrics}");
    let published = sample(
        &cp_metrics,
        r#"gateway_failed_trigger_replays_total{result="published"}"#,
    );
    assert_eq!(published, Some(1.0), "{cp_metrics}");

    dp.stop().await;
    cp.stop().await;
    drop(broker);
}

/// An ADMIN token of organization `org`, written straight into the database (the bootstrap token
/// of these tests administers one organization only).
async fn foreign_admin_token(database_url: &str, org: Uuid) -> String {
    control_plane::auth::tokens::issue(
        database_url,
        org.into(),
        None,
        control_plane::auth::Role::Admin,
        "other organization",
    )
    .await
    .expect("insert token")
    .0
    .expose()
    .clone()
}
