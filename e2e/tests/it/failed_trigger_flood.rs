//! A flood of requests with a wrong or missing API key: one sampled record per webhook and
//! interval carries the count, and the webhook's authenticated failed triggers survive the
//! per-webhook cap (docs/data-plane.md, "Failed-trigger reports"; docs/control-plane.md,
//! "Retention").

use std::time::Duration;

use gateway_proto::v1 as pb;
use uuid::Uuid;

use crate::support::{
    app, hmac_hex, with_key, Api, ControlPlane, DataPlane, BOOTSTRAP_TOKEN, WAIT,
};

const SECRET: &str = "slack-secret-flood";
const FLOOD: u64 = 300;

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_key_flood_is_sampled_and_never_evicts_authenticated_records() {
    let db = gateway_testkit::fresh_database().await;
    let org = Uuid::new_v4();
    let topic = gateway_testkit::unique_topic("e2e-flood").await;
    let cp = ControlPlane::start_full(
        &db.url,
        org,
        None,
        control_plane::failed_triggers::FailedTriggerArgs {
            failed_trigger_max_per_webhook: 3,
            failed_trigger_sweep_interval: Duration::from_millis(200),
            kafka_topic: topic.clone(),
            ..Default::default()
        },
    )
    .await;
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let app = app(org);
    let (id, url) = api.slack_webhook(&app, "flooded", SECRET).await;
    let dp_token = api.data_plane_token(org).await;
    let dp = DataPlane::start(
        &cp.url(),
        &dp_token,
        &topic,
        &[
            "--failed-trigger-linger",
            "20ms",
            "--failed-trigger-unauthenticated-interval",
            "1h",
        ],
    )
    .await;
    dp.eventually_slack("the webhook is served", &url, SECRET, 200)
        .await;

    // Three authenticated rejections fill the webhook's cap of three.
    for _ in 0..3 {
        assert_eq!(dp.post_slack(&url, SECRET, "{not json").await, 400);
    }
    // The flood: wrong keys and no key at all.
    let client = reqwest::Client::new();
    let wrong = dp.local(&with_key(&url, "not-the-key"));
    let missing = wrong.split_once('?').expect("query").0.to_owned();
    for target in [&wrong, &missing] {
        for _ in 0..FLOOD {
            let status = client
                .post(target.as_str())
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("answer")
                .status();
            assert_eq!(status, 401);
        }
    }
    // One more authenticated rejection, after the flood: the sweep must now drop the oldest
    // authenticated record (four over a cap of three), and only that one.
    let body = "{still not json";
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = format!(
        "v0={}",
        hmac_hex(SECRET, format!("v0:{ts}:{body}").as_bytes())
    );
    let headers = [
        ("x-slack-request-timestamp", ts),
        ("x-slack-signature", sig),
        ("x-request-id", "after-the-flood".to_owned()),
    ];
    assert_eq!(dp.post_signed(&url, &headers, body).await, 400);

    let rows = gateway_testkit::eventually(
        "three authenticated records and one sampled unauthenticated record with the count",
        WAIT,
        || {
            let api = api.clone();
            let (app, id) = (app.clone(), id.clone());
            async move {
                let rows = api
                    .triggers()
                    .list_failed_triggers(api.req(pb::ListFailedTriggersRequest {
                        app: Some(app),
                        webhook_id: id,
                        page_size: 100,
                        ..Default::default()
                    }))
                    .await
                    .ok()?
                    .into_inner()
                    .failed_triggers;
                let count = |code: &str| rows.iter().filter(|r| r.reason_code == code).count();
                let suppressed = |code: &str| {
                    rows.iter()
                        .find(|r| r.reason_code == code)
                        .map(|r| r.suppressed_count)
                };
                let last = rows.iter().any(|r| r.request_id == "after-the-flood");
                (last
                    && count("INVALID_JSON") == 3
                    && suppressed("API_KEY_INVALID") == Some(2 * FLOOD - 1))
                .then_some(rows)
            }
        },
    )
    .await;
    // One sample per webhook and interval, whichever of the two codes came first; the other
    // 2 × FLOOD − 1 rejections are counted on it.
    assert_eq!(rows.len(), 4, "nothing else is stored: {rows:?}");
    dp.stop().await;
    cp.stop().await;
}
