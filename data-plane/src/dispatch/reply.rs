//! Publishing results (docs/dispatcher.md, "Results"): the result record goes to the result topic
//! with every header of the invocation record, and counts as delivered only once the broker
//! acknowledged it. A result the broker did not take is published again until it is, or until
//! shutdown abandons it (then its invocation is not committed and runs again).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;

use super::config::DispatchConfig;
use super::metrics::DispatchMetrics;

/// The producer of result records.
pub struct Replies {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
    metrics: Arc<DispatchMetrics>,
}

impl Replies {
    /// Creates the producer (no network I/O yet).
    pub fn new(config: &DispatchConfig, metrics: Arc<DispatchMetrics>) -> anyhow::Result<Self> {
        let mut cc = ClientConfig::new();
        for (k, v) in &config.kafka_properties {
            cc.set(k, v);
        }
        cc.set("bootstrap.servers", &config.kafka_bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set(
                "message.timeout.ms",
                config.produce_timeout.as_millis().to_string(),
            );
        Ok(Self {
            producer: cc.create()?,
            topic: config.result_topic.clone(),
            timeout: config.produce_timeout,
            metrics,
        })
    }

    /// Publishes one result; `true` once the broker acknowledged it, `false` when `stop` came
    /// first.
    pub async fn publish(
        &self,
        key: Option<&[u8]>,
        headers: &OwnedHeaders,
        payload: &[u8],
        stop: &CancellationToken,
    ) -> bool {
        let mut delay = Duration::from_millis(100);
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic)
                .payload(payload)
                .headers(headers.clone());
            if let Some(key) = key {
                record = record.key(key);
            }
            let sent = tokio::select! {
                r = self.producer.send(record, Timeout::After(self.timeout)) => r,
                _ = stop.cancelled() => return false,
            };
            match sent {
                Ok(_) => return true,
                Err((e, _)) => {
                    self.metrics.result_publish_retry();
                    tracing::warn!(error = %e, topic = %self.topic, "result not acknowledged; publishing it again");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay.mul_f64(rand::random_range(0.5..=1.0))) => {}
                _ = stop.cancelled() => return false,
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Waits (blocking) for what the producer still holds.
    pub fn flush_blocking(&self, within: Duration) {
        if let Err(e) = self.producer.flush(Timeout::After(within)) {
            tracing::warn!(error = %e, "result producer flush incomplete");
        }
    }
}
