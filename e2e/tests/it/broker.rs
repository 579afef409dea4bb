//! The local broker (tansu with sqlite or memory storage, built with the project's patch: deploy/tansu/) survives
//! an outage that makes an idempotent producer bump its epoch.
//!
//! Records that time out in an idempotent producer make librdkafka ask for a new epoch of its
//! producer id (InitProducerId with the existing id). The unpatched tansu 0.6.0 panics there and
//! then answers every produce with an error until it is restarted.

use std::collections::HashSet;
use std::time::Duration;

use gateway_testkit::{eventually, Broker};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Message;

fn idempotent_producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "2000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .create()
        .expect("producer")
}

async fn send(producer: &FutureProducer, topic: &str, key: &str) -> Result<(), String> {
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(key),
            Timeout::After(Duration::ZERO),
        )
        .await
        .map(|_| ())
        .map_err(|(e, _)| e.to_string())
}

async fn outage_then_produce(storage: &str, restart: bool) {
    let mut broker = Broker::start(storage);
    let topic = format!("outage-{}", uuid::Uuid::new_v4().simple());
    gateway_testkit::create_topic_on(&broker.bootstrap, &topic, 1).await;
    let producer = idempotent_producer(&broker.bootstrap);
    let mut acked = Vec::new();
    for i in 0..5 {
        let key = format!("before-{i}");
        send(&producer, &topic, &key).await.expect("broker up");
        acked.push(key);
    }

    // The broker goes away long enough for the records sent meanwhile to time out (2 s).
    if restart {
        broker.stop();
    } else {
        broker.pause();
    }
    let during: Vec<_> = (0..10)
        .map(|i| {
            let key = format!("during-{i}");
            producer
                .send_result(FutureRecord::to(&topic).key(&key).payload(&key))
                .expect("queued")
        })
        .collect();
    for delivery in during {
        let outcome = delivery.await.expect("a delivery report");
        assert!(
            outcome.is_err(),
            "a record sent while the broker is away times out: {outcome:?}"
        );
    }
    if restart {
        broker.restart_on_same_port();
    } else {
        broker.resume();
    }

    // The producer bumps its epoch; the broker must take that and go on accepting records.
    let mut tries = 0;
    let first = eventually(
        "a record acknowledged after the outage",
        Duration::from_secs(30),
        || {
            tries += 1;
            let key = format!("after-{tries}");
            let (producer, topic) = (&producer, &topic);
            async move { send(producer, topic, &key).await.ok().map(|()| key) }
        },
    )
    .await;
    acked.push(first);
    for i in 0..20 {
        let key = format!("then-{i}");
        send(&producer, &topic, &key)
            .await
            .unwrap_or_else(|e| panic!("record {i} after the recovery: {e}"));
        acked.push(key);
    }

    // Every acknowledged record is in the topic (records that timed out at the client may be there
    // too: a paused broker still reads what was sent before it froze).
    let wanted: HashSet<String> = acked.into_iter().collect();
    let consumer = gateway_testkit::consumer(&broker.bootstrap, &topic);
    let mut found = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !wanted.is_subset(&found) {
        let m = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| {
                let missing: Vec<_> = wanted.difference(&found).collect();
                panic!("acknowledged records missing from the topic: {missing:?}")
            })
            .expect("consume");
        if let Some(key) = m.key() {
            found.insert(String::from_utf8_lossy(key).into_owned());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_paused_past_the_message_timeout_accepts_records_again() {
    outage_then_produce("sqlite", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_restarted_after_the_message_timeout_accepts_records_again() {
    outage_then_produce("sqlite", true).await;
}

/// The memory engine (the suite's shared broker) takes the bumped epoch too.
#[tokio::test(flavor = "multi_thread")]
async fn broker_on_memory_storage_paused_past_the_message_timeout_accepts_records_again() {
    outage_then_produce("memory", false).await;
}
