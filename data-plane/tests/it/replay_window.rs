//! The per-webhook replay window: a signed delivery seen again within it is answered with the
//! original event id and not published again (docs/data-plane.md, "Replay window").

use std::time::Duration;

use gateway_shared::Provider;

use crate::support::*;

const SECRET: &str = "github-replay-secret";

async fn post(gw: &Gateway, hook: &Hook, delivery: &str, body: &[u8]) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(gw.url(hook))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in provider_headers(Provider::Github, SECRET, unix_now(), delivery, body) {
        req = req.header(name, value);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let answer: serde_json::Value = resp.json().await.expect("json answer");
    (
        status,
        answer["eventId"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_github_delivery_is_answered_with_the_original_event_id_and_published_once() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let mut hook = Hook::new(Provider::Github).with_signing_secret(SECRET);
    hook.config.options.replay_window_seconds = 2;
    gw.load(&[&hook]);
    let body = br#"{"action":"opened","number":17}"#;

    let (status, first) = post(&gw, &hook, "delivery-1", body).await;
    assert_eq!(status, 200);
    // The same request again, and a copy under another (unsigned) delivery id: the original's id.
    for delivery in ["delivery-1", "delivery-2"] {
        let (status, again) = post(&gw, &hook, delivery, body).await;
        assert_eq!(status, 200, "{delivery}");
        assert_eq!(again, first, "{delivery} answers the original event id");
    }
    // Once the window has passed, the same signed body is a new delivery again.
    let second = gateway_testkit::eventually(
        "the delivery is published again after the window",
        Duration::from_secs(30),
        || async {
            let (status, id) = post(&gw, &hook, "delivery-3", body).await;
            (status == 200 && id != first).then_some(id)
        },
    )
    .await;

    // A different delivery as a marker: everything published before it is in the topic before it.
    let (status, marker) = post(&gw, &hook, "delivery-4", br#"{"action":"closed"}"#).await;
    assert_eq!(status, 200);

    let records =
        gateway_testkit::consume(&gw.bootstrap, &gw.topic, 3, Duration::from_secs(30)).await;
    let ids: Vec<String> = records
        .iter()
        .map(|m| {
            envelope(m)["eventId"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        ids,
        vec![first, second, marker],
        "one record per delivery, none for the replays"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_window_the_same_delivery_is_published_each_time() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let hook = Hook::new(Provider::Github).with_signing_secret(SECRET);
    gw.load(&[&hook]);
    let body = br#"{"action":"closed"}"#;
    for delivery in ["d-1", "d-2"] {
        assert_eq!(post(&gw, &hook, delivery, body).await.0, 200);
    }
    let records =
        gateway_testkit::consume(&gw.bootstrap, &gw.topic, 2, Duration::from_secs(30)).await;
    assert_eq!(records.len(), 2);
    gw.stop().await;
}
