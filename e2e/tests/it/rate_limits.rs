//! Per-webhook rate limits end to end: the control plane counts the INGEST planes of a token scope
//! (across replicas, through Postgres) and each plane enforces its share, so the fleet accepts the
//! configured rate (within 10 %) whether one or three planes serve the webhook, and the remaining
//! planes take over the share of one that leaves.

use std::time::{Duration, Instant};

use gateway_proto::v1 as pb;
use uuid::Uuid;

use crate::support::{app, sample, Api, ControlPlane, DataPlane, BOOTSTRAP_TOKEN, WAIT};

const RATE: f64 = 50.0;
const BURST: u32 = 50;
/// The measuring window of each load.
const WINDOW: Duration = Duration::from_secs(3);
/// Closed-loop clients per data plane.
const CLIENTS: usize = 4;

/// A GENERIC webhook limited to `RATE`/s with `BURST`, bound and activated; returns (id, url).
async fn limited_webhook(api: &Api, app: &pb::AppRef) -> (String, String) {
    let wh = api
        .webhooks()
        .create_webhook(api.req(pb::CreateWebhookRequest {
            app: Some(app.clone()),
            name: "limited".into(),
            provider: pb::Provider::Generic as i32,
            rate_limit_per_second: RATE,
            rate_limit_burst: BURST,
            ..Default::default()
        }))
        .await
        .expect("create limited webhook")
        .into_inner();
    assert_eq!(
        (wh.rate_limit_per_second, wh.rate_limit_burst),
        (RATE, BURST)
    );
    api.triggers()
        .commit_trigger_bindings(api.req(pb::CommitTriggerBindingsRequest {
            app: Some(app.clone()),
            process_definition_id: "process-limited".into(),
            project_id: "project".into(),
            branch: "main".into(),
            process_version: "1".into(),
            bindings: vec![pb::BindingInput {
                node_id: "start".into(),
                node_kind: pb::NodeKind::MessageStartEvent as i32,
                webhook_id: wh.id.clone(),
                ..Default::default()
            }],
        }))
        .await
        .expect("commit bindings");
    api.triggers()
        .activate_trigger(api.req(pb::ActivateTriggerRequest {
            webhook_id: wh.id.clone(),
        }))
        .await
        .expect("activate");
    let url = api.url_of(&wh.id).await;
    (wh.id, url)
}

/// Polls until `dp` says `planes` planes share its limits.
async fn wait_for_fleet(dp: &DataPlane, planes: u32) {
    gateway_testkit::eventually(
        &format!("data plane told its fleet has {planes} planes"),
        WAIT,
        || async move {
            let text = dp.metrics_text().await;
            (sample(&text, "webhook_gateway_rate_limit_fleet_planes") == Some(f64::from(planes)))
                .then_some(())
        },
    )
    .await
}

/// Polls until `dp` accepts a POST to `url`.
async fn wait_until_served(dp: &DataPlane, url: &str) {
    gateway_testkit::eventually("limited webhook served", WAIT, || async move {
        (dp.post_signed(url, &[], r#"{"probe":true}"#).await == 200).then_some(())
    })
    .await
}

#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    limited: u64,
    /// Answers that were neither a 200 nor a 429 with a `Retry-After` of at least one second.
    other: Vec<String>,
}

/// `CLIENTS` closed-loop clients per plane post to `url` for `WINDOW`; every answer is counted.
async fn load(planes: &[&DataPlane], url: &str) -> Tally {
    let client = reqwest::Client::new();
    let end = Instant::now() + WINDOW;
    let mut tasks = Vec::new();
    for dp in planes {
        for _ in 0..CLIENTS {
            let (client, target) = (client.clone(), dp.local(url));
            tasks.push(tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < end {
                    let answer = client
                        .post(&target)
                        .header("content-type", "application/json")
                        .body(r#"{"load":true}"#)
                        .send()
                        .await;
                    let resp = match answer {
                        Ok(r) => r,
                        Err(e) => {
                            tally.other.push(format!("no answer: {e}"));
                            continue;
                        }
                    };
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let body = resp.text().await.unwrap_or_default();
                    match (status, retry_after) {
                        (200, _) => tally.ok += 1,
                        (429, Some(secs)) if secs >= 1 && body.contains("\"RATE_LIMITED\"") => {
                            tally.limited += 1
                        }
                        _ => tally
                            .other
                            .push(format!("{status} retry-after {retry_after:?}: {body}")),
                    }
                }
                tally
            }));
        }
    }
    let mut total = Tally::default();
    for t in tasks {
        let t = t.await.expect("client task");
        total.ok += t.ok;
        total.limited += t.limited;
        total.other.extend(t.other);
    }
    total
}

/// The fleet accepted the configured rate over the window (within 10 %), and refused the rest
/// with 429 and Retry-After.
fn assert_within_limit(what: &str, tally: &Tally) {
    let expected = RATE * WINDOW.as_secs_f64() + f64::from(BURST);
    let ok = tally.ok as f64;
    println!(
        "rate limit, {what}: {} × 200 (expected {expected} ± 10 %), {} × 429, {} other",
        tally.ok,
        tally.limited,
        tally.other.len()
    );
    assert!(
        tally.other.is_empty(),
        "{what}: every answer is a 200 or a 429 with Retry-After: {:?}",
        &tally.other[..tally.other.len().min(5)]
    );
    assert!(
        (ok - expected).abs() <= expected * 0.1,
        "{what}: {ok} requests accepted, expected {expected} ± 10 %"
    );
    assert!(tally.limited > 0, "{what}: the load went over the limit");
}

struct Stack {
    api: Api,
    token: String,
    topic: String,
}

async fn stack(cp: &ControlPlane, org: Uuid, topic: &str) -> Stack {
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let token = api.data_plane_token(org).await;
    Stack {
        api,
        token,
        topic: topic.to_owned(),
    }
}

async fn plane(cp: &ControlPlane, s: &Stack, id: &str) -> DataPlane {
    let dp = DataPlane::start(&cp.url(), &s.token, &s.topic, &["--data-plane-id", id]).await;
    gateway_testkit::eventually("data plane ready", WAIT, || async {
        dp.ready().await.then_some(())
    })
    .await;
    dp
}

#[tokio::test(flavor = "multi_thread")]
async fn one_data_plane_accepts_the_configured_rate_and_answers_429_beyond_it() {
    let db = gateway_testkit::fresh_database().await;
    let topic = gateway_testkit::unique_topic("e2e-rate-1").await;
    let org = Uuid::new_v4();
    let cp = ControlPlane::start(&db.url, org).await;
    let s = stack(&cp, org, &topic).await;
    let dp = plane(&cp, &s, "rate-dp-1").await;
    wait_for_fleet(&dp, 1).await;
    let app = app(org);
    let (id, url) = limited_webhook(&s.api, &app).await;
    wait_until_served(&dp, &url).await;

    assert_within_limit("1 data plane", &load(&[&dp], &url).await);

    // A 429 is not a failed trigger: once the bucket has refilled, an authenticated request
    // with a broken JSON body is reported, and it is the only failed trigger of the webhook
    // (reports leave in order, so the 429s before it would have arrived first).
    gateway_testkit::eventually("the bucket refills", WAIT, || {
        let (dp, url) = (&dp, &url);
        async move { (dp.post_signed(url, &[], "{not json").await == 400).then_some(()) }
    })
    .await;
    let listed = gateway_testkit::eventually("the INVALID_JSON report arrives", WAIT, || {
        let (api, app) = (&s.api, &app);
        async move {
            let page = api
                .triggers()
                .list_failed_triggers(api.req(pb::ListFailedTriggersRequest {
                    app: Some(app.clone()),
                    ..Default::default()
                }))
                .await
                .ok()?
                .into_inner();
            page.failed_triggers
                .iter()
                .any(|f| f.reason_code == "INVALID_JSON")
                .then_some(page.failed_triggers)
        }
    })
    .await;
    assert!(
        listed
            .iter()
            .all(|f| f.webhook_id == id && f.reason_code == "INVALID_JSON"),
        "only the bad body is a failed trigger: {:?}",
        listed.iter().map(|f| &f.reason_code).collect::<Vec<_>>()
    );
    let text = dp.metrics_text().await;
    assert!(
        sample(
            &text,
            "webhook_gateway_requests_total{provider=\"generic\",outcome=\"RATE_LIMITED\"}"
        )
        .is_some_and(|n| n > 0.0),
        "429s are counted by outcome"
    );
    dp.stop().await;
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_data_planes_share_the_rate_and_the_rest_take_over_when_one_leaves() {
    let db = gateway_testkit::fresh_database().await;
    let topic = gateway_testkit::unique_topic("e2e-rate-3").await;
    let org = Uuid::new_v4();
    let cp = ControlPlane::start(&db.url, org).await;
    let s = stack(&cp, org, &topic).await;
    let a = plane(&cp, &s, "rate-dp-a").await;
    let b = plane(&cp, &s, "rate-dp-b").await;
    let c = plane(&cp, &s, "rate-dp-c").await;
    for dp in [&a, &b, &c] {
        wait_for_fleet(dp, 3).await;
    }
    let (_, url) = limited_webhook(&s.api, &app(org)).await;
    for dp in [&a, &b, &c] {
        wait_until_served(dp, &url).await;
    }
    assert_within_limit("3 data planes", &load(&[&a, &b, &c], &url).await);

    // One plane leaves: the other two are told, and together they serve the whole rate again.
    c.stop().await;
    for dp in [&a, &b] {
        wait_for_fleet(dp, 2).await;
    }
    assert_within_limit("2 data planes after one left", &load(&[&a, &b], &url).await);
    a.stop().await;
    b.stop().await;
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn planes_on_two_control_plane_replicas_are_counted_together() {
    let db = gateway_testkit::fresh_database().await;
    let topic = gateway_testkit::unique_topic("e2e-rate-replicas").await;
    let org = Uuid::new_v4();
    let first = ControlPlane::start(&db.url, org).await;
    let s = stack(&first, org, &topic).await;
    let second = ControlPlane::start(&db.url, org).await;
    let a = plane(&first, &s, "replica-dp-a").await;
    let b = plane(&first, &s, "replica-dp-b").await;
    let c = plane(&second, &s, "replica-dp-c").await;
    for dp in [&a, &b, &c] {
        wait_for_fleet(dp, 3).await;
    }
    let (_, url) = limited_webhook(&s.api, &app(org)).await;
    for dp in [&a, &b, &c] {
        wait_until_served(dp, &url).await;
    }
    assert_within_limit(
        "3 data planes on two replicas",
        &load(&[&a, &b, &c], &url).await,
    );

    // The plane of the second replica leaves: the first replica's planes see it in the count.
    c.stop().await;
    for dp in [&a, &b] {
        wait_for_fleet(dp, 2).await;
    }
    a.stop().await;
    b.stop().await;
    second.stop().await;
    first.stop().await;
}
