//! The pieces are real: an idempotent acks=all producer round trip through the broker, and the data
//! plane answering on port 0.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_producer_round_trips_key_value_and_headers() {
    let bootstrap = gateway_testkit::kafka_bootstrap();
    let topic = gateway_testkit::unique_topic("foundation").await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");
    let value = br#"{"hello":"world"}"#;
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "Fx-Organization-Id",
            value: Some("org-1"),
        })
        .insert(Header {
            key: "Fx-Event-Id",
            value: Some("evt-1"),
        });
    let delivery = producer
        .send(
            FutureRecord::to(&topic)
                .key("the-key")
                .payload(&value[..])
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("the broker acknowledged the record");
    assert_eq!(delivery.partition, 0);
    assert!(delivery.offset >= 0);

    let got = gateway_testkit::consume(bootstrap, &topic, 1, Duration::from_secs(30)).await;
    let m = &got[0];
    assert_eq!(m.key(), Some(&b"the-key"[..]));
    assert_eq!(m.payload(), Some(&value[..]));
    let hs = m.headers().expect("headers arrive");
    let pairs: Vec<(String, Vec<u8>)> = hs
        .iter()
        .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("Fx-Organization-Id".to_owned(), b"org-1".to_vec()),
            ("Fx-Event-Id".to_owned(), b"evt-1".to_vec()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn data_plane_on_port_zero_answers_healthz() {
    let public = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let admin_addr = admin.local_addr().expect("addr");
    let config =
        data_plane::Config::from_args(["--kafka-bootstrap", "127.0.0.1:9"]).expect("config");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(data_plane::run(
        config,
        data_plane::Listeners { public, admin },
        shutdown.clone(),
    ));

    let resp = reqwest::get(format!("http://{admin_addr}/healthz"))
        .await
        .expect("healthz answers");
    assert_eq!(resp.status(), 200);
    let resp = reqwest::get(format!("http://{admin_addr}/readyz"))
        .await
        .expect("readyz answers");
    assert_eq!(
        resp.status(),
        503,
        "not ready before a config snapshot is loaded"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops after shutdown")
        .expect("no panic")
        .expect("clean exit");
}
