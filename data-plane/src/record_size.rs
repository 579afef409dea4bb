//! How large a Kafka record the body limit can produce, and the start-up check that the topic takes
//! it (docs/data-plane.md, "Record size"). librdkafka's default `message.max.bytes` (1,000,000) and
//! Apache Kafka's default `max.message.bytes` (1,048,588) are both smaller than a 1 MiB body in its
//! envelope, so the producer is sized from the limits and the topic's limit is read through the
//! admin API before the data plane reports ready.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use tokio_util::sync::CancellationToken;

/// Room for the envelope's own fields (ids, time, trigger bindings), the Kafka record headers and
/// key, and the record batch framing.
const FIXED_OVERHEAD: usize = 16 * 1024;

/// The largest record a request within the limits produces when its body is carried verbatim (a
/// JSON body, the common case): the body, its base64 copy (`include_raw_body`, 4 bytes per 3), and
/// the request headers as JSON (each header byte at most 3 bytes once a non-UTF-8 byte becomes
/// U+FFFD, plus quotes and separators: 4 × `--max-header-bytes`), plus [`FIXED_OVERHEAD`].
///
/// A body that JSON escaping inflates (a text or form body full of control characters or quotes)
/// can exceed it; such a request is answered `413` before anything is produced.
pub fn max_record_bytes(max_body_bytes: usize, max_header_bytes: usize) -> usize {
    let raw_body = max_body_bytes.div_ceil(3).saturating_mul(4);
    max_body_bytes
        .saturating_add(raw_body)
        .saturating_add(max_header_bytes.saturating_mul(4))
        .saturating_add(FIXED_OVERHEAD)
}

/// The producer's `message.max.bytes`: never below librdkafka's own default.
pub fn producer_message_max_bytes(max_record: usize) -> usize {
    max_record.max(1_000_000)
}

/// What the topic check found, for `/readyz`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopicCheck {
    /// Not answered yet: not ready, with what the last attempt found.
    Pending(String),
    /// The topic takes the largest record, or the broker does not report the limit (a warning).
    Passed,
    /// The topic's limit is too small: not ready, with this message.
    TooSmall(String),
}

/// The shared result of the check.
#[derive(Clone)]
pub struct TopicLimit(Arc<Mutex<TopicCheck>>);

const CHECKING: &str = "checking the kafka topic's max.message.bytes";

impl Default for TopicLimit {
    fn default() -> Self {
        TopicLimit(Arc::new(Mutex::new(TopicCheck::Pending(
            CHECKING.to_owned(),
        ))))
    }
}

impl TopicLimit {
    /// The current result.
    pub fn get(&self) -> TopicCheck {
        self.0
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|_| TopicCheck::Pending(CHECKING.to_owned()))
    }

    fn set(&self, check: TopicCheck) {
        if let Ok(mut c) = self.0.lock() {
            *c = check;
        }
    }

    /// Reads the topic's `max.message.bytes` through the admin API (DescribeConfigs), again every
    /// few seconds until the broker answers, then compares it with `needed`.
    pub async fn run(
        self,
        client: ClientConfig,
        topic: String,
        needed: usize,
        hint: String,
        stop: CancellationToken,
    ) {
        let admin: AdminClient<DefaultClientContext> = match client.create() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a Kafka admin client; the topic's max.message.bytes is not checked");
                self.set(TopicCheck::Passed);
                return;
            }
        };
        let mut attempt = 0u32;
        loop {
            let outcome = tokio::select! {
                _ = stop.cancelled() => return,
                o = describe_limit(&admin, &topic) => o,
            };
            match outcome {
                Ok(Some(limit)) if limit >= needed => {
                    tracing::info!(
                        topic,
                        max_message_bytes = limit,
                        needed,
                        "kafka topic takes the largest record"
                    );
                    self.set(TopicCheck::Passed);
                    return;
                }
                Ok(Some(limit)) => {
                    let message = format!(
                        "kafka topic {topic} has max.message.bytes={limit}, but the largest record this data plane produces is {needed} bytes ({hint}); raise the topic's max.message.bytes to at least {needed} or lower --max-body-bytes"
                    );
                    tracing::error!("{message}");
                    self.set(TopicCheck::TooSmall(message));
                    return;
                }
                Ok(None) => {
                    tracing::warn!(topic, needed, "the broker does not report the topic's max.message.bytes; make sure it is at least the needed value");
                    self.set(TopicCheck::Passed);
                    return;
                }
                Err(e) => {
                    self.set(TopicCheck::Pending(format!(
                        "{CHECKING} of {topic}: not read yet ({e}); retrying every 2s"
                    )));
                    attempt += 1;
                    if attempt == 1 || attempt.is_multiple_of(10) {
                        tracing::warn!(topic, error = ?e.to_string(), "cannot read the kafka topic's max.message.bytes yet; retrying");
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }
}

/// The topic's `max.message.bytes` as the broker reports it; `None` when the broker answers
/// without it (or with a value that is not a number).
async fn describe_limit(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<Option<usize>, KafkaError> {
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
    let results = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &opts)
        .await?;
    let Some(result) = results.into_iter().next() else {
        return Ok(None);
    };
    let resource = result.map_err(KafkaError::AdminOp)?;
    Ok(resource
        .get("max.message.bytes")
        .and_then(|e| e.value.as_deref())
        .and_then(|v| v.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limits_need_more_than_the_kafka_defaults() {
        let needed = max_record_bytes(1024 * 1024, 64 * 1024);
        // body + 4/3 body + 4 × headers + overhead
        assert_eq!(
            needed,
            1_048_576 + 1_398_104 + 262_144 + 16_384,
            "the arithmetic"
        );
        assert!(
            needed > 1_048_588,
            "larger than Kafka's default topic limit"
        );
        assert!(
            needed <= 3 * 1024 * 1024,
            "the manifests' 3 MiB topics take it"
        );
        assert_eq!(producer_message_max_bytes(1000), 1_000_000);
        assert_eq!(producer_message_max_bytes(needed), needed);
    }
}
