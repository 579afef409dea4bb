//! Failed triggers: reports from data planes, List/Get with masking and tenancy, retention, replay.

use std::time::Duration;

use control_plane::auth::Role;
use gateway_proto::v1 as pb;
use tonic::Code;
use uuid::Uuid;

use crate::support::{
    app, assert_err, clients, create_token, distribution_client, exchange, foreign_token,
    free_addr, scrape, Clients, TestControlPlane, BOOTSTRAP_TOKEN,
};
use crate::webhooks::create;

fn ts(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn header(name: &str, value: &str) -> pb::HttpHeader {
    pb::HttpHeader {
        name: name.into(),
        values: vec![value.into()],
    }
}

/// A report for `wh` received at `at`, with a whole JSON payload.
fn report(
    wh: &pb::Webhook,
    at: chrono::DateTime<chrono::Utc>,
    reason: &str,
    status: u32,
) -> pb::FailedTriggerReport {
    let a = wh.app.clone().unwrap_or_default();
    let payload = br#"{"order":{"id":"A-17"}}"#.to_vec();
    pb::FailedTriggerReport {
        report_id: Uuid::now_v7().to_string(),
        organization_id: a.organization_id,
        workspace_id: a.workspace_id,
        app_id: a.app_id,
        webhook_id: wh.id.clone(),
        provider: wh.provider,
        received_at: Some(ts(at)),
        reason_code: reason.into(),
        detail: "mismatch".into(),
        http_status: status,
        request_id: format!("req-{reason}"),
        method: "POST".into(),
        headers: vec![header("Content-Type", "application/json")],
        payload_size: payload.len() as u64,
        payload,
        payload_complete: true,
        suppressed_count: 0,
    }
}

/// A data plane's ConfigDistributionService client for `org`.
async fn data_plane(
    cp: &TestControlPlane,
    admin: &Clients,
) -> pb::config_distribution_service_client::ConfigDistributionServiceClient<crate::support::Authed>
{
    let channel = cp.channel().await;
    let token = create_token(admin, cp.org, None, pb::Role::DataPlane).await;
    let jwt = exchange(&channel, &token).await.expect("exchange");
    distribution_client(&channel, &jwt)
}

async fn send(
    dp: &mut pb::config_distribution_service_client::ConfigDistributionServiceClient<
        crate::support::Authed,
    >,
    reports: Vec<pb::FailedTriggerReport>,
) -> pb::ReportFailedTriggersResponse {
    dp.report_failed_triggers(pb::ReportFailedTriggersRequest {
        data_plane_id: "dp-test".into(),
        reports,
    })
    .await
    .expect("report accepted")
    .into_inner()
}

async fn list(c: &Clients, req: pb::ListFailedTriggersRequest) -> pb::ListFailedTriggersResponse {
    c.triggers
        .clone()
        .list_failed_triggers(req)
        .await
        .expect("list")
        .into_inner()
}

fn ids(r: &pb::ListFailedTriggersResponse) -> Vec<String> {
    r.failed_triggers.iter().map(|f| f.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_are_stored_once_listed_newest_first_and_shown_masked() {
    let metrics = free_addr();
    let cp = TestControlPlane::start_with(|c| {
        c.failed_triggers.failed_trigger_max_payload_bytes = 64;
        c.distribution.metrics_listen = Some(metrics);
    })
    .await;
    let channel = cp.channel().await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let slack = create(&admin, &a, "slack-in", pb::Provider::Slack).await;
    let generic = create(&admin, &a, "generic-in", pb::Provider::Generic).await;
    // Another organization's webhook: a data plane of this organization cannot report for it.
    let org_b = Uuid::new_v4();
    let admin_b = clients(&channel, &foreign_token(&cp, org_b, Role::Admin).await).await;
    let foreign = create(&admin_b, &app(org_b), "theirs", pb::Provider::Generic).await;

    let t0 = chrono::Utc::now() - chrono::Duration::minutes(10);
    let mut signed = report(&slack, t0, "SIGNATURE_INVALID", 401);
    signed.headers = vec![
        header("Authorization", "Bearer very-secret"),
        header("Cookie", "session=abc"),
        header("X-Slack-Signature", "v0=deadbeef"),
        header(
            "X-Original-URI",
            "/webhooks/incoming/slack/x?flowxApiKey=the-api-key&a=1",
        ),
        header("Content-Type", "application/json"),
    ];
    let mut big = report(
        &generic,
        t0 + chrono::Duration::seconds(1),
        "INVALID_JSON",
        400,
    );
    big.payload = vec![b'x'; 100];
    big.payload_size = 100;
    let broker = report(
        &slack,
        t0 + chrono::Duration::seconds(2),
        "BROKER_UNAVAILABLE",
        503,
    );
    let theirs = report(&foreign, t0, "API_KEY_INVALID", 401);
    let mut unknown = report(&generic, t0, "API_KEY_INVALID", 401);
    unknown.webhook_id = Uuid::new_v4().to_string();
    let mut mismatched = report(&generic, t0, "API_KEY_INVALID", 401);
    mismatched.app_id = Uuid::new_v4().to_string();
    let batch = vec![
        signed.clone(),
        big.clone(),
        broker.clone(),
        theirs,
        unknown,
        mismatched,
    ];

    let mut dp = data_plane(&cp, &admin).await;
    let r = send(&mut dp, batch.clone()).await;
    assert_eq!((r.accepted, r.rejected), (3, 3));
    // A retried batch is stored once.
    let r = send(&mut dp, batch).await;
    assert_eq!((r.accepted, r.rejected), (3, 3));
    let text = scrape(metrics).await;
    for line in [
        r#"gateway_failed_trigger_reports_total{result="stored"} 3"#,
        r#"gateway_failed_trigger_reports_total{result="duplicate"} 3"#,
        r#"gateway_failed_trigger_reports_total{result="rejected"} 6"#,
    ] {
        assert!(text.contains(line), "{line} missing in\n{text}");
    }

    let all = list(
        &admin,
        pb::ListFailedTriggersRequest {
            app: Some(a.clone()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        ids(&all),
        vec![
            broker.report_id.clone(),
            big.report_id.clone(),
            signed.report_id.clone()
        ]
    );
    let first = &all.failed_triggers[2];
    assert_eq!(first.webhook_name, "slack-in");
    assert_eq!(first.reason_code, "SIGNATURE_INVALID");
    assert_eq!(first.http_status, 401);
    assert_eq!(first.request_id, "req-SIGNATURE_INVALID");
    assert_eq!(first.data_plane_id, "dp-test");
    assert_eq!(first.provider, pb::Provider::Slack as i32);
    assert!(
        first.headers.is_empty() && first.payload.is_none(),
        "{first:?}"
    );

    // Paging.
    let p1 = list(
        &admin,
        pb::ListFailedTriggersRequest {
            app: Some(a.clone()),
            page_size: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&p1), ids(&all)[..2].to_vec());
    assert!(!p1.next_page_token.is_empty());
    let p2 = list(
        &admin,
        pb::ListFailedTriggersRequest {
            app: Some(a.clone()),
            page_size: 2,
            page_token: p1.next_page_token.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&p2), ids(&all)[2..].to_vec());
    assert!(p2.next_page_token.is_empty());

    // Filters.
    let by = |req: pb::ListFailedTriggersRequest| {
        let admin = &admin;
        let a = a.clone();
        async move {
            ids(&list(
                admin,
                pb::ListFailedTriggersRequest {
                    app: Some(a),
                    ..req
                },
            )
            .await)
        }
    };
    assert_eq!(
        by(pb::ListFailedTriggersRequest {
            webhook_id: slack.id.clone(),
            ..Default::default()
        })
        .await,
        vec![broker.report_id.clone(), signed.report_id.clone()]
    );
    assert_eq!(
        by(pb::ListFailedTriggersRequest {
            reason_codes: vec!["INVALID_JSON".into(), "NOPE".into()],
            ..Default::default()
        })
        .await,
        vec![big.report_id.clone()]
    );
    assert_eq!(
        by(pb::ListFailedTriggersRequest {
            received_after: Some(ts(t0 + chrono::Duration::seconds(1))),
            ..Default::default()
        })
        .await,
        vec![broker.report_id.clone(), big.report_id.clone()]
    );
    assert_eq!(
        by(pb::ListFailedTriggersRequest {
            received_before: Some(ts(t0 + chrono::Duration::seconds(1))),
            ..Default::default()
        })
        .await,
        vec![signed.report_id.clone()]
    );

    // Get: masked headers, the payload, truncation.
    let get = |id: &str| {
        let mut t = admin.triggers.clone();
        let id = id.to_owned();
        async move {
            t.get_failed_trigger(pb::GetFailedTriggerRequest { id })
                .await
                .map(|r| r.into_inner())
        }
    };
    let got = get(&signed.report_id).await.expect("get");
    let value = |name: &str| {
        got.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.values.join(","))
            .unwrap_or_default()
    };
    assert_eq!(value("Authorization"), "[masked]");
    assert_eq!(value("Cookie"), "[masked]");
    assert_eq!(value("X-Slack-Signature"), "[masked]");
    assert_eq!(
        value("X-Original-URI"),
        "/webhooks/incoming/slack/x?flowxApiKey=[masked]&a=1"
    );
    assert_eq!(value("Content-Type"), "application/json");
    let text = format!("{got:?}");
    assert!(
        !text.contains("very-secret")
            && !text.contains("the-api-key")
            && !text.contains("deadbeef")
    );
    assert_eq!(
        got.payload,
        Some(pb::failed_trigger::Payload::PayloadText(
            r#"{"order":{"id":"A-17"}}"#.into()
        ))
    );
    // Kept whole, but its signature never verified: not replayable.
    assert!(!got.replayable && !got.payload_truncated);
    assert_eq!(got.webhook_name, "slack-in");

    let got = get(&big.report_id).await.expect("get");
    assert_eq!(
        got.payload,
        Some(pb::failed_trigger::Payload::PayloadText("x".repeat(64)))
    );
    assert_eq!(got.payload_size, 100);
    assert!(got.payload_truncated && !got.replayable);

    assert_err(
        get(&Uuid::new_v4().to_string()).await,
        Code::NotFound,
        "FAILED_TRIGGER_NOT_FOUND",
    );

    // A VIEWER reads; a data-plane token does not.
    let viewer = clients(
        &channel,
        &create_token(&admin, cp.org, None, pb::Role::Viewer).await,
    )
    .await;
    assert_eq!(
        ids(&list(
            &viewer,
            pb::ListFailedTriggersRequest {
                app: Some(a.clone()),
                ..Default::default()
            }
        )
        .await)
        .len(),
        3
    );
    let dp_clients = clients(
        &channel,
        &create_token(&admin, cp.org, None, pb::Role::DataPlane).await,
    )
    .await;
    assert_err(
        dp_clients
            .triggers
            .clone()
            .get_failed_trigger(pb::GetFailedTriggerRequest {
                id: signed.report_id.clone(),
            })
            .await,
        Code::PermissionDenied,
        "ROLE_FORBIDDEN",
    );
    // Only data planes report.
    let admin_jwt = exchange(&channel, BOOTSTRAP_TOKEN).await.expect("exchange");
    assert_err(
        distribution_client(&channel, &admin_jwt)
            .report_failed_triggers(pb::ReportFailedTriggersRequest {
                data_plane_id: "x".into(),
                reports: vec![],
            })
            .await,
        Code::PermissionDenied,
        "ROLE_FORBIDDEN",
    );

    // Another organization's ADMIN and VIEWER see nothing of it.
    let viewer_b = clients(&channel, &foreign_token(&cp, org_b, Role::Viewer).await).await;
    for other in [&admin_b, &viewer_b] {
        assert_err(
            other
                .triggers
                .clone()
                .list_failed_triggers(pb::ListFailedTriggersRequest {
                    app: Some(a.clone()),
                    ..Default::default()
                })
                .await,
            Code::PermissionDenied,
            "SCOPE_FORBIDDEN",
        );
        assert_err(
            other
                .triggers
                .clone()
                .get_failed_trigger(pb::GetFailedTriggerRequest {
                    id: signed.report_id.clone(),
                })
                .await,
            Code::NotFound,
            "FAILED_TRIGGER_NOT_FOUND",
        );
    }
    // Without Kafka configured, replays are refused.
    assert_err(
        admin
            .triggers
            .clone()
            .replay_failed_trigger(pb::ReplayFailedTriggerRequest {
                id: signed.report_id.clone(),
                force: false,
            })
            .await,
        Code::FailedPrecondition,
        "REPLAY_NOT_CONFIGURED",
    );
    // Nothing was stored for the other organization's webhook.
    let theirs = list(
        &admin_b,
        pb::ListFailedTriggersRequest {
            app: foreign.app.clone(),
            ..Default::default()
        },
    )
    .await;
    assert!(theirs.failed_triggers.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_keeps_the_newest_per_webhook_and_drops_old_ones() {
    let cp = TestControlPlane::start_with(|c| {
        c.failed_triggers.failed_trigger_max_per_webhook = 2;
        c.failed_triggers.failed_trigger_max_age = Duration::from_secs(3600);
        c.failed_triggers.failed_trigger_sweep_interval = Duration::from_millis(100);
    })
    .await;
    let admin = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let busy = create(&admin, &a, "busy", pb::Provider::Generic).await;
    let quiet = create(&admin, &a, "quiet", pb::Provider::Generic).await;
    let now = chrono::Utc::now();
    let recent: Vec<_> = (0..4)
        .map(|i| {
            report(
                &busy,
                now - chrono::Duration::seconds(10 - i),
                "INVALID_JSON",
                400,
            )
        })
        .collect();
    let old = report(
        &quiet,
        now - chrono::Duration::hours(2),
        "INVALID_JSON",
        400,
    );
    let fresh = report(&quiet, now, "INVALID_JSON", 400);
    let mut dp = data_plane(&cp, &admin).await;
    let mut batch = recent.clone();
    batch.extend([old, fresh.clone()]);
    assert_eq!(send(&mut dp, batch).await.accepted, 6);

    let expected = vec![
        fresh.report_id.clone(),
        recent[3].report_id.clone(),
        recent[2].report_id.clone(),
    ];
    gateway_testkit::eventually("retention sweep", Duration::from_secs(20), || {
        let admin = &admin;
        let a = a.clone();
        let expected = expected.clone();
        async move {
            let got = ids(&list(
                admin,
                pb::ListFailedTriggersRequest {
                    app: Some(a),
                    ..Default::default()
                },
            )
            .await);
            (got == expected).then_some(())
        }
    })
    .await;
}

fn kafka_header(m: &rdkafka::message::OwnedMessage, name: &str) -> Option<String> {
    use rdkafka::message::{Headers, Message};
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_publishes_with_current_bindings_once_unless_forced() {
    let bootstrap = gateway_testkit::kafka_bootstrap();
    let topic = gateway_testkit::unique_topic("replay").await;
    let metrics = free_addr();
    let cp = TestControlPlane::start_with(|c| {
        c.distribution.metrics_listen = Some(metrics);
        c.failed_triggers.failed_trigger_max_payload_bytes = 64;
        c.failed_triggers.kafka_bootstrap = Some(bootstrap.to_owned());
        c.failed_triggers.kafka_topic = topic.clone();
    })
    .await;
    let channel = cp.channel().await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let wh = create(&admin, &a, "replay-me", pb::Provider::Generic).await;
    crate::triggers::bind_start(&admin, &a, "orders-process", &wh.id).await;

    let now = chrono::Utc::now();
    let mut whole = report(&wh, now, "BROKER_UNAVAILABLE", 503);
    whole.headers.push(header("Authorization", "Bearer s3cr3t"));
    let mut truncated = report(&wh, now, "INVALID_JSON", 400);
    truncated.payload = vec![b'y'; 100];
    truncated.payload_size = 100;
    let mut bad_json = report(&wh, now, "INVALID_JSON", 400);
    bad_json.payload = b"{nope".to_vec();
    bad_json.payload_size = 5;
    let mut dp = data_plane(&cp, &admin).await;
    send(
        &mut dp,
        vec![whole.clone(), truncated.clone(), bad_json.clone()],
    )
    .await;

    let replay = |id: &str, force: bool, c: &Clients| {
        let mut t = c.triggers.clone();
        let id = id.to_owned();
        async move {
            t.replay_failed_trigger(pb::ReplayFailedTriggerRequest { id, force })
                .await
                .map(|r| r.into_inner())
        }
    };
    // A deactivated webhook is not replayed into.
    assert_err(
        replay(&whole.report_id, false, &admin).await,
        Code::FailedPrecondition,
        "TRIGGER_NOT_ACTIVE",
    );
    admin
        .triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: wh.id.clone(),
        })
        .await
        .expect("activated");

    let viewer = clients(
        &channel,
        &create_token(&admin, cp.org, None, pb::Role::Viewer).await,
    )
    .await;
    assert_err(
        replay(&whole.report_id, false, &viewer).await,
        Code::PermissionDenied,
        "ROLE_FORBIDDEN",
    );

    let first = replay(&whole.report_id, false, &admin)
        .await
        .expect("replayed");
    assert_ne!(first.event_id, whole.report_id);
    let ft = first.failed_trigger.clone().expect("record");
    assert_eq!(ft.replay_count, 1);
    assert_eq!(ft.replay_event_id, first.event_id);
    assert!(ft.replayed_at.is_some());

    let records = gateway_testkit::consume(bootstrap, &topic, 1, Duration::from_secs(30)).await;
    let v: serde_json::Value =
        serde_json::from_str(&gateway_testkit::payload_text(&records[0])).expect("json envelope");
    assert_eq!(v["eventId"], first.event_id.as_str());
    assert_eq!(v["webhookId"], wh.id.as_str());
    assert_eq!(
        v["triggers"],
        serde_json::json!([{"triggerType":"START_PROCESS","processDefinitionId":"orders-process","nodeId":"start"}])
    );
    assert_eq!(
        v["webhookMessage"]["payload"],
        serde_json::json!({"order":{"id":"A-17"}})
    );
    assert_eq!(
        v["webhookMessage"]["headers"]["Authorization"],
        serde_json::json!(["[masked]"])
    );
    assert_eq!(
        kafka_header(&records[0], "Fx-Replay-Of").as_deref(),
        Some(whole.report_id.as_str())
    );
    assert_eq!(
        kafka_header(&records[0], "Fx-Event-Id").as_deref(),
        Some(first.event_id.as_str())
    );
    assert_eq!(
        kafka_header(&records[0], "Fx-Organization-Id").as_deref(),
        Some(cp.org.to_string().as_str())
    );

    let again = assert_err(
        replay(&whole.report_id, false, &admin).await,
        Code::FailedPrecondition,
        "FAILED_TRIGGER_ALREADY_REPLAYED",
    );
    assert!(!again.message().is_empty());
    let forced = replay(&whole.report_id, true, &admin)
        .await
        .expect("forced");
    assert_ne!(forced.event_id, first.event_id);
    assert_eq!(forced.failed_trigger.expect("record").replay_count, 2);
    let records = gateway_testkit::consume(bootstrap, &topic, 2, Duration::from_secs(30)).await;
    assert_eq!(
        kafka_header(&records[1], "Fx-Event-Id").as_deref(),
        Some(forced.event_id.as_str())
    );

    assert_err(
        replay(&truncated.report_id, false, &admin).await,
        Code::FailedPrecondition,
        "FAILED_TRIGGER_NOT_REPLAYABLE",
    );
    assert_err(
        replay(&bad_json.report_id, false, &admin).await,
        Code::FailedPrecondition,
        "INVALID_JSON",
    );

    // A RESUME binding: step 6 runs again against the webhook's current correlation path.
    let resume = admin
        .webhooks
        .clone()
        .create_webhook(pb::CreateWebhookRequest {
            app: Some(a.clone()),
            name: "resume-me".into(),
            provider: pb::Provider::Generic as i32,
            correlation_key_path: "order.id".into(),
            ..Default::default()
        })
        .await
        .expect("webhook created")
        .into_inner();
    admin
        .triggers
        .clone()
        .commit_trigger_bindings(pb::CommitTriggerBindingsRequest {
            app: Some(a.clone()),
            process_definition_id: "scan".into(),
            project_id: "proj".into(),
            branch: "main".into(),
            bindings: vec![pb::BindingInput {
                node_id: "wait".into(),
                node_kind: pb::NodeKind::MessageCatchIntermediateEvent as i32,
                webhook_id: resume.id.clone(),
                process_correlation_key: "orderId".into(),
                process_key: "scanResult".into(),
            }],
            ..Default::default()
        })
        .await
        .expect("bindings committed");
    admin
        .triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: resume.id.clone(),
        })
        .await
        .expect("activated");
    let resolvable = report(&resume, now, "BROKER_UNAVAILABLE", 503);
    let mut unresolvable = report(&resume, now, "CORRELATION_KEY_UNRESOLVED", 400);
    unresolvable.payload = br#"{"other":1}"#.to_vec();
    unresolvable.payload_size = 11;
    send(&mut dp, vec![resolvable.clone(), unresolvable.clone()]).await;
    assert_err(
        replay(&unresolvable.report_id, false, &admin).await,
        Code::FailedPrecondition,
        "CORRELATION_KEY_UNRESOLVED",
    );
    let resumed = replay(&resolvable.report_id, false, &admin)
        .await
        .expect("replayed");
    let records = gateway_testkit::consume(bootstrap, &topic, 3, Duration::from_secs(30)).await;
    let v: serde_json::Value =
        serde_json::from_str(&gateway_testkit::payload_text(&records[2])).expect("json envelope");
    assert_eq!(v["eventId"], resumed.event_id.as_str());
    assert_eq!(v["triggers"][0]["correlationValue"], "A-17");
    assert_eq!(v["triggers"][0]["processKey"], "scanResult");
    {
        use rdkafka::message::Message;
        assert_eq!(records[2].key(), Some(&b"A-17"[..]));
    }

    let text = scrape(metrics).await;
    for line in [
        r#"gateway_failed_trigger_replays_total{result="published"} 3"#,
        r#"gateway_failed_trigger_replays_total{result="refused"} 5"#,
    ] {
        assert!(text.contains(line), "{line} missing in\n{text}");
    }

    // The row shows the last replay.
    let got = admin
        .triggers
        .clone()
        .get_failed_trigger(pb::GetFailedTriggerRequest {
            id: whole.report_id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.replay_event_id, forced.event_id);
    assert_eq!(got.replay_count, 2);
}

/// Requests refused before their API key and signature were verified are never published, not
/// even with `force`; a verified one in the same webhook still is.
#[tokio::test(flavor = "multi_thread")]
async fn unverified_failed_triggers_are_never_replayed_even_with_force() {
    let bootstrap = gateway_testkit::kafka_bootstrap();
    let topic = gateway_testkit::unique_topic("replay-unverified").await;
    let cp = TestControlPlane::start_with(|c| {
        c.failed_triggers.kafka_bootstrap = Some(bootstrap.to_owned());
        c.failed_triggers.kafka_topic = topic.clone();
    })
    .await;
    let channel = cp.channel().await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let wh = create(&admin, &a, "unverified", pb::Provider::Generic).await;
    crate::triggers::bind_and_activate(&admin, &a, "orders-process", &wh.id).await;
    let now = chrono::Utc::now();
    let unverified: Vec<pb::FailedTriggerReport> = [
        ("SIGNATURE_INVALID", 401),
        ("VERIFICATION_FAILED", 403),
        ("API_KEY_MISSING", 401),
        ("API_KEY_INVALID", 401),
        ("METHOD_NOT_ALLOWED", 405),
        ("PROVIDER_MISMATCH", 400),
    ]
    .into_iter()
    .map(|(reason, status)| report(&wh, now, reason, status))
    .collect();
    let verified = report(&wh, now, "BROKER_UNAVAILABLE", 503);
    let mut dp = data_plane(&cp, &admin).await;
    let mut all = unverified.clone();
    all.push(verified.clone());
    assert_eq!(send(&mut dp, all).await.accepted, 7);

    let listed = list(
        &admin,
        pb::ListFailedTriggersRequest {
            app: Some(a.clone()),
            ..Default::default()
        },
    )
    .await;
    for ft in &listed.failed_triggers {
        assert_eq!(
            ft.replayable,
            ft.id == verified.report_id,
            "{} replayable",
            ft.reason_code
        );
    }
    for r in &unverified {
        for force in [false, true] {
            let refused = assert_err(
                admin
                    .triggers
                    .clone()
                    .replay_failed_trigger(pb::ReplayFailedTriggerRequest {
                        id: r.report_id.clone(),
                        force,
                    })
                    .await,
                Code::FailedPrecondition,
                "FAILED_TRIGGER_UNVERIFIED",
            );
            assert!(
                refused.message().contains(&r.reason_code),
                "{}: {refused:?}",
                r.reason_code
            );
        }
    }
    let published = admin
        .triggers
        .clone()
        .replay_failed_trigger(pb::ReplayFailedTriggerRequest {
            id: verified.report_id.clone(),
            force: false,
        })
        .await
        .expect("the verified one is replayed")
        .into_inner();
    // Exactly one record reached the topic: the verified replay.
    let records = gateway_testkit::consume(bootstrap, &topic, 1, Duration::from_secs(30)).await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        kafka_header(&records[0], "Fx-Event-Id").as_deref(),
        Some(published.event_id.as_str())
    );
}

/// A kept payload over librdkafka's default `message.max.bytes` (1,000,000) is replayed: the replay
/// producer is sized for the longest payload the control plane keeps.
#[tokio::test]
async fn a_payload_over_a_megabyte_is_replayed() {
    let bootstrap = gateway_testkit::kafka_bootstrap();
    let topic = gateway_testkit::unique_topic("replay-big").await;
    let cp = TestControlPlane::start_with(|c| {
        c.failed_triggers.failed_trigger_max_payload_bytes = 2 << 20;
        c.failed_triggers.kafka_bootstrap = Some(bootstrap.to_owned());
        c.failed_triggers.kafka_topic = topic.clone();
    })
    .await;
    let channel = cp.channel().await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let wh = create(&admin, &a, "replay-big", pb::Provider::Generic).await;
    crate::triggers::bind_and_activate(&admin, &a, "orders-process", &wh.id).await;
    let mut big = report(&wh, chrono::Utc::now(), "BROKER_UNAVAILABLE", 503);
    let blob = "x".repeat(1_500_000);
    big.payload = format!(r#"{{"blob":"{blob}"}}"#).into_bytes();
    big.payload_size = big.payload.len() as u64;
    let mut dp = data_plane(&cp, &admin).await;
    send(&mut dp, vec![big.clone()]).await;
    let replayed = admin
        .triggers
        .clone()
        .replay_failed_trigger(pb::ReplayFailedTriggerRequest {
            id: big.report_id.clone(),
            force: false,
        })
        .await
        .expect("a 1.5 MB payload is replayed")
        .into_inner();
    let records = gateway_testkit::consume(bootstrap, &topic, 1, Duration::from_secs(30)).await;
    let v: serde_json::Value =
        serde_json::from_str(&gateway_testkit::payload_text(&records[0])).expect("json envelope");
    assert_eq!(v["eventId"], replayed.event_id.as_str());
    assert_eq!(
        v["webhookMessage"]["payload"]["blob"]
            .as_str()
            .map(str::len),
        Some(blob.len())
    );
}
