//! The two helper processes of the dispatcher benchmark: the local action server the calls go to,
//! and the baseline loop the dispatcher is compared with — a minimal rdkafka consumer → HTTP POST →
//! rdkafka producer, with the dispatcher's client and producer settings and none of its checks.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The answer of the action server (docs/actions.md, "Answers"): a result and no error.
pub const ANSWER: &str = r#"{"result":"sent","error":""}"#;

/// Flags of `action-server`.
#[derive(clap::Args)]
pub struct ActionServerArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
}

/// `gateway-bench action-server`: reads each call's body and answers 200 with [`ANSWER`]. It does not
/// verify signatures (the dispatcher still computes them, as in production).
pub async fn action_server(args: ActionServerArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
            let status = match req.into_body().collect().await {
                Ok(_) => http::StatusCode::OK,
                Err(_) => http::StatusCode::BAD_REQUEST,
            };
            let mut r = Response::new(Full::new(Bytes::from_static(ANSWER.as_bytes())));
            *r.status_mut() = status;
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Ok::<_, Infallible>(r)
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

/// Flags of `baseline-dispatch`.
#[derive(clap::Args)]
pub struct BaselineArgs {
    /// Kafka bootstrap servers.
    #[arg(long)]
    pub kafka_bootstrap: String,
    /// Topic invocation records are read from.
    #[arg(long)]
    pub invocation_topic: String,
    /// Topic results go to.
    #[arg(long)]
    pub result_topic: String,
    /// Consumer group.
    #[arg(long)]
    pub consumer_group: String,
    /// Where every call goes.
    #[arg(long)]
    pub action_url: String,
    /// Calls at once (the dispatcher's `--action-concurrency` in the suite).
    #[arg(long)]
    pub concurrency: usize,
    /// Records handled at once, the call's and the produce's waits included (the dispatcher's
    /// `--max-in-flight`).
    #[arg(long, default_value_t = 1000)]
    pub max_in_flight: usize,
    /// Extra properties `key=value` for the consumer and the producer, as the dispatcher's
    /// `--kafka-property`.
    #[arg(long = "kafka-property")]
    pub kafka_properties: Vec<String>,
}

fn properties(cc: &mut ClientConfig, props: &[String]) -> anyhow::Result<()> {
    for kv in props {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("`{kv}` is not key=value"))?;
        cc.set(k, v);
    }
    Ok(())
}

/// `gateway-bench baseline-dispatch`: for every record, POST its value to the action URL and produce
/// the answer (with the record's key and headers) once the call returned. Offsets are committed by
/// librdkafka's periodic auto-commit; nothing is parsed, validated, signed or retried.
pub async fn baseline(args: BaselineArgs) -> anyhow::Result<()> {
    let mut cc = ClientConfig::new();
    cc.set("auto.offset.reset", "earliest");
    properties(&mut cc, &args.kafka_properties)?;
    cc.set("bootstrap.servers", &args.kafka_bootstrap)
        .set("group.id", &args.consumer_group);
    let consumer: StreamConsumer = cc.create()?;
    consumer.subscribe(&[&args.invocation_topic])?;

    // The dispatcher's result producer: acks=all, idempotent, its default produce timeout.
    let mut pc = ClientConfig::new();
    properties(&mut pc, &args.kafka_properties)?;
    pc.set("bootstrap.servers", &args.kafka_bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "10000");
    let producer: Arc<FutureProducer> = Arc::new(pc.create()?);
    // The dispatcher's action client settings (outbound/src/client.rs), without its resolver check.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()?;
    let topic: Arc<str> = args.result_topic.into();
    let url: Arc<str> = args.action_url.into();
    // As in the dispatcher: a global cap on records in hand, and call slots held only for the call.
    let in_flight = Arc::new(Semaphore::new(args.max_in_flight.max(1)));
    let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
    loop {
        let permit = in_flight.clone().acquire_owned().await?;
        let message = match consumer.recv().await {
            Ok(m) => m.detach(),
            Err(e) => {
                eprintln!("consume: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let (http, producer, topic, url, slots) = (
            http.clone(),
            producer.clone(),
            topic.clone(),
            url.clone(),
            slots.clone(),
        );
        tokio::spawn(async move {
            let key = message.key().unwrap_or_default();
            let mut call = http
                .post(&*url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(message.payload().unwrap_or_default().to_vec());
            if let Ok(k) = std::str::from_utf8(key) {
                call = call.header("idempotency-key", k);
            }
            let answer = match slots.acquire().await {
                Ok(_slot) => match call.send().await {
                    Ok(r) if r.status().is_success() => r.bytes().await.ok(),
                    _ => None,
                },
                Err(_) => None,
            };
            let mut value = Vec::with_capacity(64);
            match answer {
                Some(a) => {
                    value.extend_from_slice(br#"{"status":"SUCCEEDED","answer":"#);
                    value.extend_from_slice(&a);
                    value.push(b'}');
                }
                None => value.extend_from_slice(br#"{"status":"FAILED"}"#),
            }
            let mut headers = OwnedHeaders::new();
            if let Some(h) = message.headers() {
                for h in h.iter() {
                    headers = headers.insert(Header {
                        key: h.key,
                        value: h.value,
                    });
                }
            }
            let record = FutureRecord::<[u8], [u8]>::to(&topic)
                .key(key)
                .payload(&value)
                .headers(headers);
            if let Err((e, _)) = producer.send(record, Duration::from_secs(10)).await {
                eprintln!("produce: {e}");
            }
            drop(permit);
        });
    }
}
