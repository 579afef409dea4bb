//! The load generator every HTTP scenario uses: a fixed number of keep-alive HTTP/1.1 connections,
//! each sending its next request as soon as the previous answer arrived (closed loop), latencies in
//! an HDR histogram (microseconds). Requests are prepared once, so the client does no per-request
//! work beyond hyper's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

/// One request, sent over and over.
#[derive(Clone, Debug)]
pub struct Target {
    /// Server address.
    pub addr: SocketAddr,
    /// Path and query.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Request body.
    pub body: Bytes,
    /// The status every answer must have to count as a success.
    pub expect_status: u16,
}

/// How long and how hard.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Shape {
    /// Concurrent connections (each with one request in flight).
    pub concurrency: usize,
    /// Warm-up, not measured.
    pub warmup: Duration,
    /// Measured window.
    pub duration: Duration,
}

/// What one run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoadResult {
    /// Requests answered with the expected status inside the measured window.
    pub ok: u64,
    /// Answers with another status, or connection errors, inside the window.
    pub errors: u64,
    /// `ok` per second of the window.
    pub rps: f64,
    /// Latency percentiles of successful requests, microseconds.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
    /// The first unexpected status seen, for the log.
    pub first_unexpected: Option<String>,
}

/// Runs `shape` against `target`.
pub async fn run(target: &Target, shape: Shape) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let measure_from = start + shape.warmup;
    let end = measure_from + shape.duration;
    let mut workers = Vec::with_capacity(shape.concurrency);
    for _ in 0..shape.concurrency {
        let target = target.clone();
        workers.push(tokio::spawn(worker(target, measure_from, end)));
    }
    let mut hist = new_histogram()?;
    let mut result = LoadResult::default();
    for w in workers {
        let (h, ok, errors, unexpected) = w.await?;
        hist.add(&h)?;
        result.ok += ok;
        result.errors += errors;
        if result.first_unexpected.is_none() {
            result.first_unexpected = unexpected;
        }
    }
    result.rps = result.ok as f64 / shape.duration.as_secs_f64();
    result.p50_us = hist.value_at_quantile(0.50);
    result.p99_us = hist.value_at_quantile(0.99);
    result.p999_us = hist.value_at_quantile(0.999);
    result.max_us = hist.max();
    Ok(result)
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 120_000_000, 3)?)
}

type WorkerOut = (Histogram<u64>, u64, u64, Option<String>);

async fn worker(target: Target, measure_from: Instant, end: Instant) -> WorkerOut {
    let mut hist = new_histogram().unwrap_or_else(|_| Histogram::new(3).expect("histogram"));
    let (mut ok, mut errors, mut unexpected) = (0u64, 0u64, None);
    let host = HeaderValue::from_str(&target.addr.to_string()).ok();
    'connect: while Instant::now() < end {
        let sender = async {
            let stream = TcpStream::connect(target.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                    .await?;
            tokio::spawn(conn);
            anyhow::Ok(sender)
        }
        .await;
        let mut sender = match sender {
            Ok(s) => s,
            Err(e) => {
                if Instant::now() >= measure_from {
                    errors += 1;
                }
                unexpected.get_or_insert_with(|| format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        loop {
            let mut req = Request::new(Full::new(target.body.clone()));
            *req.method_mut() = Method::POST;
            *req.uri_mut() = match target.path.parse() {
                Ok(u) => u,
                Err(_) => return (hist, ok, errors + 1, Some("bad path".into())),
            };
            if let Some(h) = &host {
                req.headers_mut().insert(http::header::HOST, h.clone());
            }
            for (k, v) in &target.headers {
                req.headers_mut().insert(k.clone(), v.clone());
            }
            if sender.ready().await.is_err() {
                continue 'connect;
            }
            let sent = Instant::now();
            let answer = async {
                let resp = sender.send_request(req).await?;
                let status = resp.status().as_u16();
                resp.into_body().collect().await?;
                anyhow::Ok(status)
            }
            .await;
            let done = Instant::now();
            if done >= end {
                break 'connect;
            }
            let counted = sent >= measure_from;
            match answer {
                Ok(s) if s == target.expect_status => {
                    if counted {
                        ok += 1;
                        let us = u64::try_from((done - sent).as_micros()).unwrap_or(u64::MAX);
                        let _ = hist.record(us.max(1));
                    }
                }
                Ok(s) => {
                    if counted {
                        errors += 1;
                    }
                    unexpected.get_or_insert_with(|| format!("status {s}"));
                }
                Err(e) => {
                    if counted {
                        errors += 1;
                    }
                    unexpected.get_or_insert_with(|| format!("request: {e}"));
                    continue 'connect;
                }
            }
        }
    }
    (hist, ok, errors, unexpected)
}

/// Flags of `load`.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// `http://host:port/path?query`.
    #[arg(long)]
    pub url: String,
    /// Connections.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Warm-up seconds.
    #[arg(long, default_value_t = 3)]
    pub warmup_secs: u64,
    /// JSON body size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub body_bytes: usize,
    /// Expected status.
    #[arg(long, default_value_t = 200)]
    pub expect_status: u16,
}

/// `gateway-bench load`.
pub async fn run_cli(a: LoadArgs) -> anyhow::Result<()> {
    let uri: http::Uri = a.url.parse()?;
    let authority = uri
        .authority()
        .ok_or_else(|| anyhow::anyhow!("the URL needs host:port"))?;
    let addr = tokio::net::lookup_host(authority.as_str())
        .await?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{authority} does not resolve"))?;
    let target = Target {
        addr,
        path: uri
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned()),
        headers: vec![(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body: json_body(a.body_bytes),
        expect_status: a.expect_status,
    };
    let shape = Shape {
        concurrency: a.concurrency,
        warmup: Duration::from_secs(a.warmup_secs),
        duration: Duration::from_secs(a.duration_secs),
    };
    let r = run(&target, shape).await?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}

/// A JSON object of about `bytes` bytes that looks like a webhook event.
pub fn json_body(bytes: usize) -> Bytes {
    let mut items = Vec::new();
    let mut s = String::new();
    let mut i = 0;
    loop {
        items.push(
            serde_json::json!({"sku": format!("SKU-{i:06}"), "qty": i % 7 + 1, "price": 12.5}),
        );
        let v = serde_json::json!({"event":"order.created","orderId":"ORD-12345","customer":{"id":"C-77","email":"a@example.com"},"items":items});
        let next = v.to_string();
        if next.len() > bytes && !s.is_empty() {
            break;
        }
        s = next;
        i += 1;
    }
    Bytes::from(s)
}

/// A body like [`json_body`] of about `bytes` bytes whose last member is
/// `"order":{"customer":{"account":{"id":"ACC-0042"}}}` (the RESUME scenario's correlation path), so a
/// lookup of the path has to get past the whole `items` array first.
pub fn resume_body(bytes: usize) -> Bytes {
    let tail = br#","order":{"customer":{"account":{"id":"ACC-0042"}}}}"#;
    let base = json_body(bytes.saturating_sub(tail.len()));
    let mut out = Vec::with_capacity(base.len() + tail.len());
    out.extend_from_slice(&base[..base.len() - 1]);
    out.extend_from_slice(tail);
    Bytes::from(out)
}
