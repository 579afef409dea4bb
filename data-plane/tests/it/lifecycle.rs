//! Graceful shutdown, and a broker outage: never a 200 without the broker's acknowledgement.

use std::collections::HashSet;
use std::time::Duration;

use gateway_shared::Provider;
use gateway_testkit::{eventually, Broker};
use tokio::io::AsyncWriteExt;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_stops_accepting_finishes_in_flight_requests_and_flushes() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);

    // A request whose body is still on its way when shutdown begins.
    let body = br#"{"inflight":true}"#;
    let head = format!(
        "POST {}?flowxApiKey={} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        hook.path(),
        hook.api_key,
        body.len()
    );
    let mut s = raw(gw.addr, head.as_bytes()).await;
    s.write_all(&body[..5]).await.expect("write");
    let admin = gw.admin;
    eventually(
        "the request to be in flight",
        Duration::from_secs(10),
        || async move {
            let text = reqwest::get(format!("http://{admin}/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains("webhook_gateway_requests_in_flight 1")
                .then_some(())
        },
    )
    .await;

    gw.shutdown.cancel();
    let addr = gw.addr;
    eventually(
        "the listener to stop accepting",
        Duration::from_secs(10),
        || async move {
            tokio::net::TcpStream::connect(addr)
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    let ready = reqwest::get(format!("http://{admin}/readyz"))
        .await
        .expect("admin still answers while draining");
    assert_eq!(ready.status(), 503, "not ready while draining");

    s.write_all(&body[5..]).await.expect("write the rest");
    let (status, head_text, resp_body) = read_response(&mut s).await;
    assert_eq!(status, 200, "{head_text}{resp_body}");
    let answer: serde_json::Value = serde_json::from_str(&resp_body).expect("json");
    let event_id = answer["eventId"].as_str().expect("eventId").to_owned();

    let mut gw = gw;
    let (bootstrap, topic) = (gw.bootstrap.clone(), gw.topic.clone());
    let task = gw.task.take().expect("running");
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("serve returns after draining")
        .expect("no panic")
        .expect("clean exit");
    let got = gateway_testkit::consume(&bootstrap, &topic, 1, Duration::from_secs(30)).await;
    assert_eq!(envelope(&got[0])["eventId"], event_id.as_str());
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    n: usize,
) -> Result<(u16, Option<String>, Option<String>), reqwest::Error> {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(format!(r#"{{"n":{n}}}"#))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: serde_json::Value = resp.json().await?;
    let id = body["eventId"].as_str().map(str::to_owned);
    if status == 503 {
        assert_eq!(body["error"]["code"], "BROKER_UNAVAILABLE");
    }
    Ok((status, retry_after, id))
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_outage_turns_200s_into_503s_and_every_200_is_in_the_topic() {
    let mut broker = Broker::start("sqlite");
    let topic = format!("outage-{}", uuid::Uuid::new_v4().simple());
    gateway_testkit::create_topic_on(&broker.bootstrap, &topic, 1).await;
    // Records time out in the producer during the outage, so librdkafka bumps the producer's epoch:
    // the broker (deploy/tansu/) must take the new epoch once it is back.
    let gw = Gateway::start(&broker.bootstrap, &topic, &["--produce-timeout", "2s"]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);
    let url = gw.url(&hook);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let mut acked: Vec<String> = Vec::new();
    let mut n = 0;

    for _ in 0..5 {
        n += 1;
        let (status, _, id) = post(&client, &url, n).await.expect("answers");
        assert_eq!(status, 200, "broker up");
        acked.push(id.expect("eventId"));
    }

    broker.stop();
    let mut saw_503 = 0;
    for _ in 0..3 {
        n += 1;
        let (status, retry_after, id) = post(&client, &url, n).await.expect("answers");
        match status {
            200 => acked.push(id.expect("eventId")),
            503 => {
                assert!(retry_after.is_some(), "503 says when to retry");
                saw_503 += 1;
            }
            other => panic!("unexpected status {other} during the outage"),
        }
    }
    assert!(
        saw_503 >= 2,
        "requests during the outage are refused, not acknowledged ({saw_503} × 503)"
    );

    broker.restart_on_same_port();
    let recovered = {
        let (client, url) = (&client, &url);
        let mut tries = n;
        eventually(
            "200s to come back after the broker restarted",
            Duration::from_secs(60),
            || {
                tries += 1;
                let n = tries;
                async move {
                    match post(client, url, n).await {
                        Ok((200, _, id)) => id,
                        Ok((503, _, _)) => None,
                        Ok((s, _, _)) => panic!("unexpected status {s} while recovering"),
                        Err(_) => None,
                    }
                }
            },
        )
        .await
    };
    acked.push(recovered);
    for _ in 0..5 {
        n += 1000;
        let (status, _, id) = post(&client, &url, n).await.expect("answers");
        assert_eq!(status, 200, "broker back");
        acked.push(id.expect("eventId"));
    }
    gw.stop().await;

    // Every event answered 200 is in the topic (records answered 503 may be there too: at least once).
    let wanted: HashSet<String> = acked.iter().cloned().collect();
    let consumer = gateway_testkit::consumer(&broker.bootstrap, &topic);
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
        let m = m.detach();
        if let Some(id) = envelope(&m)["eventId"].as_str() {
            found.insert(id.to_owned());
        }
    }
}
