//! Producer replacement (docs/data-plane.md, "Producer replacement"): a producer that fails fatally
//! is replaced, requests are answered 200 again, and no request answered 200 is lost.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gateway_shared::Provider;
use gateway_testkit::eventually;
use rdkafka::producer::Producer;

use crate::support::*;

/// Posts one event; returns the status and, for a 200, the event id.
async fn post(client: &reqwest::Client, url: &str, n: usize) -> (u16, Option<String>) {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(format!(r#"{{"n":{n}}}"#))
        .send()
        .await
        .expect("the data plane answers");
    let status = resp.status().as_u16();
    let retry_after = resp.headers().contains_key("retry-after");
    let body: serde_json::Value = resp.json().await.expect("a JSON body");
    match status {
        200 => (200, body["eventId"].as_str().map(str::to_owned)),
        503 => {
            assert_eq!(body["error"]["code"], "BROKER_UNAVAILABLE", "{body}");
            assert!(retry_after, "a 503 says when to retry");
            (503, None)
        }
        other => panic!("unexpected status {other}: {body}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fatally_failed_producer_is_replaced_and_no_acknowledged_event_is_lost() {
    let gw = Gateway::on_shared_broker(&["--produce-timeout", "2s"]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);
    let url = gw.url(&hook);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let mut acked = Vec::new();
    for n in 0..3 {
        let (status, id) = post(&client, &url, n).await;
        assert_eq!(status, 200, "producer healthy");
        acked.extend(id);
    }

    // Requests keep arriving while the producer fails: every answer is a 200 or a 503.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|worker| {
            let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut n = 1000 * (worker + 1);
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    answers.push(post(&client, &url, n).await);
                }
                answers
            })
        })
        .collect();

    gw.publisher.with_producer(|p| {
        gateway_testkit::fault::raise_fatal_error(p.client(), "fault injected by the test");
        assert!(
            p.client().fatal_error().is_some(),
            "the producer is in a fatal state"
        );
    });

    eventually(
        "the fatal producer to be replaced",
        Duration::from_secs(20),
        || async {
            gw.metrics()
                .await
                .contains(r#"webhook_gateway_kafka_producer_replacements_total{reason="fatal"} 1"#)
                .then_some(())
        },
    )
    .await;
    let mut n = 0;
    let (client_ref, url_ref) = (&client, &url);
    let first = eventually(
        "a 200 after the replacement",
        Duration::from_secs(20),
        || {
            n += 1;
            let n = n;
            async move {
                let (status, id) = post(client_ref, url_ref, n).await;
                (status == 200).then_some(id).flatten()
            }
        },
    )
    .await;
    acked.push(first);
    for n in 100..110 {
        let (status, id) = post(&client, &url, n).await;
        assert_eq!(status, 200, "the new producer publishes");
        acked.extend(id);
    }
    stop.store(true, Ordering::Release);
    for worker in load {
        for (status, id) in worker.await.expect("load worker") {
            if status == 200 {
                acked.push(id.expect("a 200 carries an event id"));
            }
        }
    }
    let health = reqwest::get(format!("http://{}/healthz", gw.admin))
        .await
        .expect("healthz answers");
    assert_eq!(
        health.status().as_u16(),
        200,
        "live again after the replacement"
    );

    // Every event answered 200, before and after the fatal error, is in the topic.
    let wanted: HashSet<String> = acked.into_iter().collect();
    let consumer = gateway_testkit::consumer(&gw.bootstrap, &gw.topic);
    let mut found = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !wanted.is_subset(&found) {
        let m = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| {
                let missing: Vec<_> = wanted.difference(&found).collect();
                panic!("acknowledged events missing from the topic: {missing:?}")
            })
            .expect("consume");
        if let Some(id) = envelope(&m.detach())["eventId"].as_str() {
            found.insert(id.to_owned());
        }
    }
    gw.stop().await;
}
