//! Records as large as the body limit allows: the producer is sized for them, and a topic whose
//! `max.message.bytes` is too small keeps the data plane unready (docs/data-plane.md, "Record size").

use std::time::Duration;

use base64::Engine as _;
use gateway_shared::Provider;

use gateway_testkit::eventually;

use crate::support::*;

const MIB: usize = 1024 * 1024;

/// A JSON body of exactly `len` bytes, with white space and key order a re-serialisation would
/// change.
fn json_body(len: usize) -> Vec<u8> {
    let head = b"{ \"b\" : 1,\n  \"a\": \"";
    let tail = b"\" }";
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(head);
    body.resize(len - tail.len(), b'x');
    body.extend_from_slice(tail);
    assert_eq!(body.len(), len);
    body
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    event_id: String,
    #[serde(borrow)]
    webhook_message: Message<'a>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
    raw_body: Option<String>,
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_up_to_the_limit_are_published_byte_for_byte_with_and_without_the_raw_body() {
    // The default settings: 1 MiB body limit, the producer as the binary configures it.
    let gw = Gateway::on_shared_broker(&[]).await;
    let plain = Hook::new(Provider::Generic);
    let mut raw = Hook::new(Provider::Generic);
    raw.config.options.include_raw_body = true;
    gw.load(&[&plain, &raw]);

    let client = reqwest::Client::new();
    let mut sent = Vec::new();
    for hook in [&plain, &raw] {
        for len in [MIB, MIB - 64] {
            let body = json_body(len);
            let resp = client
                .post(gw.url(hook))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("request");
            let status = resp.status().as_u16();
            let answer: serde_json::Value = resp.json().await.expect("json answer");
            assert_eq!(
                status, 200,
                "a {len}-byte body (raw body: {}): {answer}",
                hook.config.options.include_raw_body
            );
            let event_id = answer["eventId"].as_str().expect("event id").to_owned();
            sent.push((event_id, body, hook.config.options.include_raw_body));
        }
    }

    let records = gateway_testkit::consume(
        &gw.bootstrap,
        &gw.topic,
        sent.len(),
        Duration::from_secs(30),
    )
    .await;
    for (event_id, body, with_raw) in &sent {
        let found = records.iter().find_map(|m| {
            use rdkafka::Message as _;
            let value = m.payload()?;
            let env: Envelope<'_> = serde_json::from_slice(value).expect("envelope parses");
            (env.event_id == *event_id).then(|| {
                let payload = env.webhook_message.payload.get().as_bytes().to_vec();
                let raw = env.webhook_message.raw_body.clone();
                (payload, raw)
            })
        });
        let (payload, raw_body) = found.unwrap_or_else(|| panic!("record of {event_id} in Kafka"));
        assert!(
            payload == *body,
            "the payload of {event_id} is the body byte for byte"
        );
        if *with_raw {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(raw_body.expect("rawBody present"))
                .expect("rawBody is base64");
            assert!(
                decoded == *body,
                "the rawBody of {event_id} decodes to the body"
            );
        } else {
            assert!(raw_body.is_none(), "no rawBody without include_raw_body");
        }
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_whose_record_limit_is_too_small_keeps_the_plane_unready_with_the_reason() {
    let topic = format!("dp-small-{}", uuid::Uuid::new_v4().simple());
    gateway_testkit::create_topic_with(
        gateway_testkit::kafka_bootstrap(),
        &topic,
        1,
        &[("max.message.bytes", "1000000")],
    )
    .await;
    let gw = Gateway::start(gateway_testkit::kafka_bootstrap(), &topic, &[]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);

    let readyz = format!("http://{}/readyz", gw.admin);
    let reason = eventually(
        "/readyz names the topic's too small limit",
        Duration::from_secs(30),
        || async {
            let resp = reqwest::get(&readyz).await.ok()?;
            let status = resp.status().as_u16();
            let text = resp.text().await.ok()?;
            (status == 503 && text.contains("max.message.bytes")).then_some(text)
        },
    )
    .await;
    assert!(reason.contains(&topic), "{reason}");
    assert!(reason.contains("1000000"), "{reason}");
    let needed = data_plane::max_record_bytes(MIB, 64 * 1024).to_string();
    assert!(
        reason.contains(&needed),
        "names the needed {needed}: {reason}"
    );
    gw.stop().await;

    // A topic with enough room: the same data plane becomes ready.
    let roomy = format!("dp-roomy-{}", uuid::Uuid::new_v4().simple());
    let enough = data_plane::max_record_bytes(MIB, 64 * 1024).to_string();
    gateway_testkit::create_topic_with(
        gateway_testkit::kafka_bootstrap(),
        &roomy,
        1,
        &[("max.message.bytes", &enough)],
    )
    .await;
    let gw = Gateway::start(gateway_testkit::kafka_bootstrap(), &roomy, &[]).await;
    gw.load(&[&hook]);
    let readyz = format!("http://{}/readyz", gw.admin);
    eventually(
        "/readyz 200 with a topic that has room",
        Duration::from_secs(30),
        || async {
            let resp = reqwest::get(&readyz).await.ok()?;
            (resp.status().as_u16() == 200).then_some(())
        },
    )
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_text_body_that_escaping_inflates_past_the_record_limit_is_413_not_503() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let mut hook = Hook::new(Provider::Generic);
    hook.config.options.include_raw_body = true;
    gw.load(&[&hook]);
    // Within the body limit, but every control byte becomes six in the JSON string.
    let resp = reqwest::Client::new()
        .post(gw.url(&hook))
        .header("content-type", "text/plain")
        .body(vec![1u8; MIB])
        .send()
        .await
        .expect("request");
    let body = assert_error(resp, 413, "PAYLOAD_TOO_LARGE").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("record")),
        "{body}"
    );
    gw.stop().await;
}
