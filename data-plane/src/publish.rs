//! The Kafka producer (docs/data-plane.md, "HTTP contract" step 8): created once at start-up,
//! `acks=all`, idempotent, a bounded local queue and a delivery deadline. A request is answered 200
//! only after the broker acknowledged its record; a full queue, a broker error or the deadline
//! passing is a [`PublishError`] (→ 503).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::config::Config;
use crate::envelope::Record;

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

/// Remembers a fatal producer error (an idempotent producer that lost its guarantees stops working
/// for good; the pod should be restarted), reported by `/healthz`.
#[derive(Default)]
pub struct GatewayProducerContext {
    fatal: Arc<AtomicBool>,
}

impl ClientContext for GatewayProducerContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal)) {
            self.fatal.store(true, Ordering::Release);
            tracing::error!(error = %error, reason, "kafka producer hit a fatal error");
        } else {
            tracing::warn!(error = %error, reason, "kafka client error");
        }
    }
}

/// The one producer of the process.
pub struct Publisher {
    producer: FutureProducer<GatewayProducerContext>,
    topic: String,
    deadline: Duration,
    outer_deadline: Duration,
    fatal: Arc<AtomicBool>,
}

impl Publisher {
    /// Creates the producer (no network I/O yet; librdkafka connects in the background).
    pub fn new(config: &Config) -> anyhow::Result<Publisher> {
        let mut cc = ClientConfig::new();
        for (k, v) in &config.kafka_properties {
            cc.set(k, v);
        }
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
        let fatal = Arc::new(AtomicBool::new(false));
        let context = GatewayProducerContext {
            fatal: fatal.clone(),
        };
        let producer: FutureProducer<GatewayProducerContext> = cc.create_with_context(context)?;
        Ok(Publisher {
            producer,
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
            fatal,
        })
    }

    /// Publishes one record and waits for the broker's acknowledgement (or the deadline).
    pub async fn publish(&self, record: &Record) -> Result<(i32, i64), PublishError> {
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
        let delivery = match self.producer.send_result(fr) {
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

    /// Whether the producer hit an unrecoverable error.
    pub fn is_fatal(&self) -> bool {
        self.fatal.load(Ordering::Acquire)
    }

    /// Waits (blocking) until queued records are delivered or `within` passes.
    pub fn flush_blocking(&self, within: Duration) -> Result<(), KafkaError> {
        self.producer.flush(Timeout::After(within))
    }

    /// Records still in the local queue.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }
}
