//! The two baselines, served with the same hyper connection builder settings as the data plane
//! (HTTP/1.1 keep-alive and h2c on one port, `TCP_NODELAY`), so only the request handling differs.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::net::TcpListener;

/// Flags of `baseline-hyper`.
#[derive(clap::Args)]
pub struct HyperArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
}

/// Flags of `baseline-forwarder`.
#[derive(clap::Args)]
pub struct ForwarderArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Kafka bootstrap servers.
    #[arg(long)]
    pub kafka_bootstrap: String,
    /// Topic to produce to.
    #[arg(long)]
    pub topic: String,
    /// Extra producer properties `key=value` (the suite passes the data plane's producer settings).
    #[arg(long = "kafka-property", value_delimiter = ',')]
    pub kafka_properties: Vec<String>,
}

fn ok(body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = code;
    r
}

/// Accepts connections forever, answering each request with `handle`.
async fn serve<F, Fut>(listener: TcpListener, handle: F) -> anyhow::Result<()>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        let svc = hyper::service::service_fn(move |req| {
            let handle = handle.clone();
            async move { Ok::<_, Infallible>(handle(req).await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

/// Baseline 1: read the whole body, answer `200 {"status":"accepted"}`.
pub async fn hyper_baseline(args: HyperArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    serve(listener, |req: Request<Incoming>| async move {
        match req.into_body().collect().await {
            Ok(_) => ok(r#"{"status":"accepted"}"#),
            Err(_) => status(StatusCode::BAD_REQUEST),
        }
    })
    .await
}

/// Baseline 3: read the body, produce it as the record value (acks=all, idempotent, same producer
/// settings as the data plane), answer 200 once the broker acknowledged it, 503 otherwise.
pub async fn forwarder(args: ForwarderArgs) -> anyhow::Result<()> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &args.kafka_bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "5000")
        .set("linger.ms", "2");
    for kv in &args.kafka_properties {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("`{kv}` is not key=value"))?;
        cc.set(k, v);
    }
    let producer: FutureProducer = cc.create()?;
    let producer = Arc::new(producer);
    let topic: Arc<str> = args.topic.into();
    let listener = TcpListener::bind(args.listen).await?;
    serve(listener, move |req: Request<Incoming>| {
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            let Ok(body) = req.into_body().collect().await else {
                return status(StatusCode::BAD_REQUEST);
            };
            let body = body.to_bytes();
            let record = FutureRecord::<[u8], [u8]>::to(&topic)
                .key(b"bench")
                .payload(&body);
            match producer.send(record, Duration::from_secs(5)).await {
                Ok(_) => ok(r#"{"status":"accepted"}"#),
                Err(_) => status(StatusCode::SERVICE_UNAVAILABLE),
            }
        }
    })
    .await
}
