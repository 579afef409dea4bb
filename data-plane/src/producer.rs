//! The Kafka producer behind [`crate::publish::Publisher`] and its replacement (docs/data-plane.md,
//! "Producer replacement"). librdkafka's documentation asks an application whose idempotent producer
//! raised a fatal error to create a new producer; the data plane does so, and also replaces a
//! producer that stays wedged: every record failing for longer than `--kafka-producer-wedged-after`
//! and still failing after the broker was seen answering a metadata request. Requests in flight on
//! the old producer keep it alive until they have their acknowledgement or their 503; a 200 is only
//! ever sent after an ack.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};

/// Logs the producer's client errors. The callback carries the underlying error code even for a
/// fatal error, so fatality is read from librdkafka itself ([`Generation::fatal_error`]).
#[derive(Default)]
pub struct GatewayProducerContext;

impl ClientContext for GatewayProducerContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = ?error.to_string(), reason, "kafka client error");
    }
}

/// One producer and what the data plane knows about its health.
pub struct Generation {
    /// The librdkafka producer.
    pub producer: FutureProducer<GatewayProducerContext>,
    streak: Mutex<FailureStreak>,
}

impl Generation {
    /// Creates a producer from `config` (no network I/O yet; librdkafka connects in the background).
    pub fn create(config: &ClientConfig) -> Result<Generation, KafkaError> {
        Ok(Generation {
            producer: config.create_with_context(GatewayProducerContext)?,
            streak: Mutex::default(),
        })
    }

    /// The fatal error librdkafka raised for this producer, if any (`rd_kafka_fatal_error`).
    pub fn fatal_error(&self) -> Option<String> {
        self.producer
            .client()
            .fatal_error()
            .map(|(code, reason)| format!("{code:?}: {reason}"))
    }

    /// Records the outcome of one publish.
    pub fn outcome(&self, acked: bool) {
        if let Ok(mut s) = self.streak.lock() {
            s.record(acked, Instant::now());
        }
    }

    /// How long every publish has been failing (zero when the last outcome was an ack).
    pub fn failing_for(&self) -> Duration {
        self.streak.lock().map(|s| s.span()).unwrap_or_default()
    }

    /// When the latest failure of the current streak was reported.
    pub fn last_failure(&self) -> Option<Instant> {
        self.streak.lock().ok().and_then(|s| s.last)
    }

    /// Whether the broker answers this producer's metadata request for `topic` with a leader for
    /// every partition: a producer that cannot publish while this holds is wedged, not cut off.
    /// Blocking: call it from a blocking thread.
    pub fn broker_answers(&self, topic: &str, within: Duration) -> bool {
        match self.producer.client().fetch_metadata(Some(topic), within) {
            Ok(md) => {
                !md.brokers().is_empty()
                    && md.topics().iter().any(|t| {
                        t.name() == topic
                            && t.error().is_none()
                            && !t.partitions().is_empty()
                            && t.partitions().iter().all(|p| p.leader() >= 0)
                    })
            }
            Err(e) => {
                tracing::debug!(error = ?e.to_string(), "metadata request of a failing producer failed");
                false
            }
        }
    }

    /// Drops a replaced producer once no request uses it any more (or `within` passed), on a
    /// blocking thread: dropping purges what is left (answered 503) and waits for librdkafka.
    pub fn retire(old: Arc<Generation>, within: Duration) {
        tokio::spawn(async move {
            let deadline = Instant::now() + within;
            while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let left = old.producer.in_flight_count();
            if let Err(e) = tokio::task::spawn_blocking(move || drop(old)).await {
                tracing::warn!(error = %e, "dropping a replaced producer failed");
            }
            tracing::info!(records_purged = left, "replaced kafka producer closed");
        });
    }
}

/// Publish outcomes since the last acknowledgement: the first and the latest failure.
#[derive(Debug, Default)]
pub struct FailureStreak {
    first: Option<Instant>,
    last: Option<Instant>,
}

impl FailureStreak {
    /// Records an outcome at `at`: an ack ends the streak, a failure extends it.
    pub fn record(&mut self, acked: bool, at: Instant) {
        if acked {
            *self = FailureStreak::default();
        } else {
            self.first.get_or_insert(at);
            self.last = Some(at);
        }
    }

    /// Time from the first to the latest failure with no ack in between: failures spread over this
    /// long, not a single old failure followed by silence.
    pub fn span(&self) -> Duration {
        match (self.first, self.last) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_spans_failures_without_an_ack_between_them() {
        let t0 = Instant::now();
        let mut s = FailureStreak::default();
        assert_eq!(s.span(), Duration::ZERO);
        s.record(false, t0);
        assert_eq!(s.span(), Duration::ZERO, "one failure is no streak yet");
        s.record(false, t0 + Duration::from_secs(20));
        s.record(false, t0 + Duration::from_secs(31));
        assert_eq!(s.span(), Duration::from_secs(31));
        s.record(true, t0 + Duration::from_secs(32));
        assert_eq!(s.span(), Duration::ZERO, "an ack ends the streak");
        s.record(false, t0 + Duration::from_secs(40));
        s.record(false, t0 + Duration::from_secs(41));
        assert_eq!(
            s.span(),
            Duration::from_secs(1),
            "a new streak starts afresh"
        );
    }
}
