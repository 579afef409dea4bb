//! The load of the dispatcher benchmark, the same for the dispatcher and the baseline: invocation
//! records produced to the side's own topic with at most `window` of them unanswered (a closed loop:
//! each result read lets the next invocation go), and the results read back from the result topic.
//! An invocation's latency runs from the moment the bench hands its record to the producer to the
//! moment the bench's consumer reads its result.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// How much load.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Load {
    /// Invocations first, not measured (connections, group join, caches).
    pub warmup: usize,
    /// Invocations measured.
    pub invocations: usize,
    /// Most invocations produced and not yet answered.
    pub window: usize,
}

/// What one side measured in one round.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DriveResult {
    /// Measured invocations whose result said `SUCCEEDED`.
    pub ok: u64,
    /// Measured invocations with another result.
    pub errors: u64,
    /// `ok` per second, from the first measured invocation produced to the last result read.
    pub rate: f64,
    /// Latency percentiles (produce → result read), microseconds.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// Where one side reads and writes.
pub struct Topics {
    /// Invocations.
    pub invocations: String,
    /// Results.
    pub results: String,
}

/// How the dispatcher's and the baseline's result records both say that the call succeeded.
const SUCCEEDED: &[u8] = br#""status":"SUCCEEDED""#;

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

/// Runs `load` against whatever consumes `topics.invocations`; `value(i)` is invocation `i`'s record
/// value, `headers` every record's headers. Record keys are the invocation's number.
pub async fn drive(
    bootstrap: &str,
    topics: &Topics,
    headers: &OwnedHeaders,
    value: impl Fn(usize) -> Vec<u8>,
    load: Load,
    fetch_wait_ms: u64,
) -> anyhow::Result<DriveResult> {
    let total = load.warmup + load.invocations;
    let results: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("bench-results-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topics.results, 0, Offset::Beginning)?;
    results.assign(&tpl)?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "1")
        .create()?;

    let start = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let window = Arc::new(Semaphore::new(load.window.max(1)));
    let reader = tokio::spawn(read_results(
        results,
        sent.clone(),
        window.clone(),
        start,
        load,
    ));
    for i in 0..total {
        window.acquire().await?.forget();
        let key = i.to_string();
        let payload = value(i);
        sent[i].store(start.elapsed().as_nanos() as u64, Ordering::Release);
        loop {
            let record = FutureRecord::<str, [u8]>::to(&topics.invocations)
                .key(&key)
                .payload(&payload)
                .headers(headers.clone());
            match producer.send_result(record) {
                // The delivery report is not awaited: the result is what counts.
                Ok(_) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => anyhow::bail!("producing invocation {i}: {e}"),
            }
        }
        if reader.is_finished() {
            break;
        }
    }
    reader.await?
}

async fn read_results(
    consumer: StreamConsumer,
    sent: Arc<Vec<AtomicU64>>,
    window: Arc<Semaphore>,
    start: Instant,
    load: Load,
) -> anyhow::Result<DriveResult> {
    let total = load.warmup + load.invocations;
    let mut seen = vec![false; total];
    let mut hist = histogram()?;
    let (mut ok, mut errors, mut done) = (0u64, 0u64, 0usize);
    let mut last_ns = 0u64;
    while done < total {
        let message = match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
            Ok(m) => m?,
            Err(_) => anyhow::bail!("no result for 30 s ({done} of {total} read)"),
        };
        let now_ns = start.elapsed().as_nanos() as u64;
        let Some(i) = message
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|k| k.parse::<usize>().ok())
            .filter(|i| *i < total)
        else {
            continue;
        };
        // Delivery is at least once: a duplicate result counts once.
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        done += 1;
        window.add_permits(1);
        if i < load.warmup {
            continue;
        }
        let succeeded = message
            .payload()
            .is_some_and(|p| p.windows(SUCCEEDED.len()).any(|w| w == SUCCEEDED));
        if succeeded {
            ok += 1;
            let us = now_ns.saturating_sub(sent[i].load(Ordering::Acquire)) / 1000;
            let _ = hist.record(us.max(1));
        } else {
            errors += 1;
        }
        last_ns = now_ns;
    }
    let first_ns = sent
        .get(load.warmup)
        .map_or(0, |s| s.load(Ordering::Acquire));
    let seconds = last_ns.saturating_sub(first_ns) as f64 / 1e9;
    Ok(DriveResult {
        ok,
        errors,
        rate: if seconds > 0.0 {
            ok as f64 / seconds
        } else {
            0.0
        },
        p50_us: hist.value_at_quantile(0.50),
        p99_us: hist.value_at_quantile(0.99),
        p999_us: hist.value_at_quantile(0.999),
        max_us: hist.max(),
    })
}
