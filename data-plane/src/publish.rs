//! The Kafka producer (docs/data-plane.md, "HTTP contract" step 8): created at start-up,
//! `acks=all`, idempotent, a bounded local queue and a delivery deadline. A request is answered 200
//! only after the broker acknowledged its record; a full queue, a broker error or the deadline
//! passing is a [`PublishError`] (→ 503). A producer that fails fatally or stays wedged is replaced
//! ([`Publisher::supervise`], docs/data-plane.md "Producer replacement").

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::envelope::Record;
use crate::metrics::Metrics;
pub use crate::producer::GatewayProducerContext;
use crate::producer::Generation;

/// Why an event was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The local queue is full (the broker is slow or away): answered at once.
    #[error("producer queue is full")]
    QueueFull,
    /// No acknowledgement within the deadline.
    #[error("no broker acknowledgement within {0:?}")]
    Deadline(Duration),
    /// The broker or client reported a failure for this record.
    #[error("broker rejected or lost the record: {0}")]
    Kafka(#[from] KafkaError),
}

/// The producer of the process (replaced by a fresh one when it fails for good).
pub struct Publisher {
    current: ArcSwap<Generation>,
    client_config: ClientConfig,
    topic: String,
    deadline: Duration,
    outer_deadline: Duration,
    wedged_after: Duration,
    max_record: usize,
}

impl Publisher {
    /// Creates the producer (no network I/O yet; librdkafka connects in the background).
    pub fn new(config: &Config) -> anyhow::Result<Publisher> {
        let mut cc = ClientConfig::new();
        for (k, v) in &config.kafka_properties {
            cc.set(k, v);
        }
        // Sized for the largest record the body and header limits produce (docs/data-plane.md,
        // "Record size"); a larger value given with --kafka-property is kept.
        let max_record =
            crate::record_size::max_record_bytes(config.max_body_bytes, config.max_header_bytes);
        let message_max = crate::record_size::producer_message_max_bytes(max_record).max(
            config
                .kafka_properties
                .iter()
                .filter(|(k, _)| k == "message.max.bytes")
                .find_map(|(_, v)| v.parse().ok())
                .unwrap_or(0),
        );
        cc.set("message.max.bytes", message_max.to_string());
        let message_timeout = config
            .kafka_message_timeout
            .unwrap_or(config.produce_timeout);
        cc.set("bootstrap.servers", &config.kafka_bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            // librdkafka gives up on the record at the same deadline the request waits, so an event
            // answered 503 is not written later behind the caller's back (barring a race at the edge).
            .set(
                "message.timeout.ms",
                message_timeout.as_millis().to_string(),
            )
            .set(
                "queue.buffering.max.messages",
                config.producer_queue_messages.to_string(),
            )
            .set(
                "queue.buffering.max.kbytes",
                config.producer_queue_kbytes.to_string(),
            )
            .set("linger.ms", config.kafka_linger.as_millis().to_string())
            .set("compression.type", &config.kafka_compression)
            // Come back quickly after a broker restart.
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "1000");
        if !config
            .kafka_properties
            .iter()
            .any(|(k, _)| k == "client.id")
        {
            cc.set("client.id", "webhook-gateway-data-plane");
        }
        let current = ArcSwap::from_pointee(Generation::create(&cc)?);
        Ok(Publisher {
            current,
            client_config: cc,
            topic: config.kafka_topic.clone(),
            deadline: config.produce_timeout,
            // With the defaults librdkafka fails the record at the deadline itself; this outer bound
            // only guards against a report that never comes. With a longer message timeout the
            // request stops waiting at the deadline and librdkafka keeps trying in the background.
            outer_deadline: if message_timeout > config.produce_timeout {
                config.produce_timeout
            } else {
                config.produce_timeout + Duration::from_millis(500)
            },
            wedged_after: config.kafka_producer_wedged_after,
            max_record,
        })
    }

    /// Publishes one record and waits for the broker's acknowledgement (or the deadline).
    pub async fn publish(&self, record: &Record) -> Result<(i32, i64), PublishError> {
        // This request keeps its producer alive until it has its answer, even if it is replaced.
        let generation = self.current.load_full();
        let result = self.publish_on(&generation.producer, record).await;
        generation.outcome(result.is_ok());
        result
    }

    async fn publish_on(
        &self,
        producer: &FutureProducer<GatewayProducerContext>,
        record: &Record,
    ) -> Result<(i32, i64), PublishError> {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in &record.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let fr = FutureRecord::to(&self.topic)
            .key(record.key.as_bytes())
            .payload(&record.value)
            .headers(headers);
        let delivery = match producer.send_result(fr) {
            Ok(d) => d,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                return Err(PublishError::QueueFull)
            }
            Err((e, _)) => return Err(PublishError::Kafka(e)),
        };
        match tokio::time::timeout(self.outer_deadline, delivery).await {
            Ok(Ok(Ok(d))) => Ok((d.partition, d.offset)),
            Ok(Ok(Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut), _)))) => {
                Err(PublishError::Deadline(self.deadline))
            }
            Ok(Ok(Err((e, _)))) => Err(PublishError::Kafka(e)),
            Ok(Err(_canceled)) => Err(PublishError::Kafka(KafkaError::Canceled)),
            Err(_) => Err(PublishError::Deadline(self.deadline)),
        }
    }

    /// How long a request waits for its acknowledgement (`--produce-timeout`).
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The largest record this publisher takes (bytes of value, key and headers); see
    /// [`crate::record_size::max_record_bytes`].
    pub fn max_record_bytes(&self) -> usize {
        self.max_record
    }

    /// The client settings of the producer (bootstrap, TLS, SASL…), for an admin client.
    pub fn client_config(&self) -> ClientConfig {
        self.client_config.clone()
    }

    /// Whether the current producer hit an unrecoverable error and is not replaced (yet).
    pub fn is_fatal(&self) -> bool {
        self.current.load().fatal_error().is_some()
    }

    /// Waits (blocking) until queued records are delivered or `within` passes.
    pub fn flush_blocking(&self, within: Duration) -> Result<(), KafkaError> {
        self.current.load().producer.flush(Timeout::After(within))
    }

    /// Records still in the local queue.
    pub fn in_flight(&self) -> i32 {
        self.current.load().producer.in_flight_count()
    }

    /// Runs `f` with the current producer (diagnostics and tests).
    pub fn with_producer<R>(
        &self,
        f: impl FnOnce(&FutureProducer<GatewayProducerContext>) -> R,
    ) -> R {
        f(&self.current.load().producer)
    }

    /// Replaces the producer when it failed fatally, or when it has been failing every record for
    /// `--kafka-producer-wedged-after` and records still fail after a metadata request through it
    /// found the broker answering; until `stop`.
    pub async fn supervise(self: Arc<Self>, metrics: Arc<Metrics>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_probe: Option<Instant> = None;
        // When the broker was last seen answering during the current failure streak.
        let mut broker_seen: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let generation = self.current.load_full();
            let reason = if let Some(error) = generation.fatal_error() {
                tracing::error!(error, "kafka producer hit a fatal error");
                Some("fatal")
            } else if generation.failing_for() < self.wedged_after {
                broker_seen = None;
                None
            } else if let Some(seen) = broker_seen {
                // A record sent after the broker was seen answering has failed as well.
                generation
                    .last_failure()
                    .is_some_and(|at| at > seen + self.outer_deadline)
                    .then_some("wedged")
            } else if last_probe.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
                last_probe = Some(Instant::now());
                let (probe, topic) = (generation.clone(), self.topic.clone());
                let answers = tokio::task::spawn_blocking(move || {
                    probe.broker_answers(&topic, Duration::from_secs(5))
                })
                .await
                .unwrap_or(false);
                broker_seen = answers.then(Instant::now);
                None
            } else {
                None
            };
            let Some(reason) = reason else { continue };
            match Generation::create(&self.client_config) {
                Ok(fresh) => {
                    broker_seen = None;
                    let old = self.current.swap(Arc::new(fresh));
                    metrics.producer_replaced(reason);
                    tracing::warn!(
                        reason,
                        failing_for = ?old.failing_for(),
                        "kafka producer replaced by a new one"
                    );
                    Generation::retire(old, self.outer_deadline + Duration::from_secs(1));
                }
                Err(e) => {
                    tracing::error!(error = %e, reason, "cannot create a new kafka producer");
                }
            }
        }
    }
}
