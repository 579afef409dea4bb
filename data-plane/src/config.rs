//! Typed configuration, parsed once at start-up from flags and environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use gateway_shared::settings::{parse_duration, parse_property};

/// Settings of the data plane. Every flag has an environment variable; see docs/data-plane.md.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// The config stream from the control plane.
    #[command(flatten)]
    pub stream: crate::distribution::StreamArgs,

    /// Public listener (`/webhooks/incoming/**`).
    #[arg(long, env = "DP_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Admin listener (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "DP_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    pub admin_listen: SocketAddr,

    /// Kafka bootstrap servers (`host:port[,host:port…]`).
    #[arg(long, env = "DP_KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub kafka_bootstrap: String,

    /// Topic accepted webhook events are published to.
    #[arg(long, env = "DP_KAFKA_TOPIC", default_value = "webhook-gateway.events")]
    pub kafka_topic: String,

    /// How long a request waits for the broker's acknowledgement before it is answered 503
    /// (e.g. `5s`, `2500ms`). Also the producer's `message.timeout.ms`.
    #[arg(long, env = "DP_PRODUCE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub produce_timeout: Duration,

    /// How long librdkafka keeps trying to deliver a record (`message.timeout.ms`); default: the
    /// produce timeout, so a record answered 503 is not written later. Longer values keep retrying
    /// after the 503 (at-least-once: the sender's retry may then be a duplicate).
    #[arg(long, env = "DP_KAFKA_MESSAGE_TIMEOUT", value_parser = parse_duration)]
    pub kafka_message_timeout: Option<Duration>,

    /// How long every record may fail, while the broker answers metadata requests, before the
    /// producer is replaced by a new one (a fatal producer error replaces it at once).
    #[arg(long, env = "DP_KAFKA_PRODUCER_WEDGED_AFTER", default_value = "30s", value_parser = parse_duration)]
    pub kafka_producer_wedged_after: Duration,

    /// Most records the producer holds in its local queue; beyond it requests get 503 at once.
    #[arg(long, env = "DP_PRODUCER_QUEUE_MESSAGES", default_value_t = 100_000)]
    pub producer_queue_messages: u32,

    /// Most kibibytes the producer holds in its local queue.
    #[arg(long, env = "DP_PRODUCER_QUEUE_KBYTES", default_value_t = 262_144)]
    pub producer_queue_kbytes: u32,

    /// How long the producer waits to batch records (`linger.ms`). Every request waits for its
    /// record's acknowledgement, so this is added latency traded for fewer, larger produce requests.
    #[arg(long, env = "DP_KAFKA_LINGER", default_value = "1ms", value_parser = parse_duration)]
    pub kafka_linger: Duration,

    /// Record batch compression (`compression.type`): none, lz4, zstd, snappy or gzip.
    #[arg(long, env = "DP_KAFKA_COMPRESSION", default_value = "none")]
    pub kafka_compression: String,

    /// Extra librdkafka properties (`key=value`, repeatable or comma-separated), e.g. TLS/SASL
    /// settings. They cannot override `acks` or `enable.idempotence`.
    #[arg(long = "kafka-property", env = "DP_KAFKA_PROPERTIES", value_delimiter = ',', value_parser = parse_property)]
    pub kafka_properties: Vec<(String, String)>,

    /// Seconds announced in `Retry-After` when the broker cannot take an event.
    #[arg(long, env = "DP_RETRY_AFTER_SECS", default_value_t = 5)]
    pub retry_after_secs: u32,

    /// Largest accepted request body in bytes (default 1 MiB).
    #[arg(long, env = "DP_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Time a client has to send a request's headers (slowloris guard).
    #[arg(long, env = "DP_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Time a client has to send a request's whole body.
    #[arg(long, env = "DP_BODY_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,

    /// Most header fields in one HTTP/1.1 request.
    #[arg(long, env = "DP_MAX_HEADERS", default_value_t = 100)]
    pub max_headers: usize,

    /// Most bytes of request line and headers (HTTP/1.1 read buffer; HTTP/2 header list size).
    #[arg(long, env = "DP_MAX_HEADER_BYTES", default_value_t = 64 * 1024)]
    pub max_header_bytes: usize,

    /// Most concurrent HTTP/2 streams per connection.
    #[arg(long, env = "DP_H2_MAX_CONCURRENT_STREAMS", default_value_t = 256)]
    pub h2_max_concurrent_streams: u32,

    /// How long shutdown waits for in-flight requests before closing connections.
    #[arg(long, env = "DP_SHUTDOWN_GRACE", default_value = "25s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// A JSON `ConfigSnapshot` loaded at start-up (until the control-plane stream feeds the table).
    #[arg(long, env = "DP_SNAPSHOT_FILE")]
    pub snapshot_file: Option<PathBuf>,

    /// Also count requests per webhook id in `/metrics` (unbounded labels: one series per webhook
    /// and outcome; for small fleets or debugging).
    #[arg(long, env = "DP_METRICS_WEBHOOK_LABEL", default_value_t = false)]
    pub metrics_webhook_label: bool,

    /// Log as JSON lines instead of text.
    #[arg(long, env = "DP_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

#[derive(Parser)]
struct Standalone {
    #[command(flatten)]
    config: Config,
}

impl Config {
    /// Parses flags (first item is the program name is NOT expected) the way the binary does, with
    /// defaults for everything not given; used by tests and tools.
    pub fn from_args<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let argv = std::iter::once(std::ffi::OsString::from("data-plane"))
            .chain(args.into_iter().map(Into::into));
        Standalone::try_parse_from(argv).map(|s| s.config)
    }

    /// Every problem with the settings, reported together.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = self.stream.problems();
        if self.kafka_bootstrap.trim().is_empty() {
            problems.push("--kafka-bootstrap must not be empty".to_owned());
        }
        if self.kafka_topic.trim().is_empty() || self.kafka_topic.len() > 249 {
            problems.push("--kafka-topic must be 1 to 249 characters".to_owned());
        }
        if self.produce_timeout < Duration::from_millis(100)
            || self.produce_timeout > Duration::from_secs(60)
        {
            problems.push(
                "--produce-timeout must be between 100ms and 60s (providers give up after ~10s)"
                    .to_owned(),
            );
        }
        if self
            .kafka_message_timeout
            .is_some_and(|m| m < self.produce_timeout || m > Duration::from_secs(3600))
        {
            problems.push(
                "--kafka-message-timeout must be between --produce-timeout and 1h".to_owned(),
            );
        }
        if self.kafka_producer_wedged_after < self.produce_timeout
            || self.kafka_producer_wedged_after > Duration::from_secs(3600)
        {
            problems.push(
                "--kafka-producer-wedged-after must be between --produce-timeout and 1h".to_owned(),
            );
        }
        if self.producer_queue_messages == 0 {
            problems.push("--producer-queue-messages must be at least 1".to_owned());
        }
        if self.producer_queue_kbytes == 0 {
            problems.push("--producer-queue-kbytes must be at least 1".to_owned());
        }
        if self.max_body_bytes == 0 {
            problems.push("--max-body-bytes must be at least 1".to_owned());
        }
        if self.max_headers == 0 {
            problems.push("--max-headers must be at least 1".to_owned());
        }
        if self.max_header_bytes < 8192 {
            problems.push("--max-header-bytes must be at least 8192".to_owned());
        }
        if self.header_read_timeout.is_zero() {
            problems.push("--header-read-timeout must be positive".to_owned());
        }
        if self.body_read_timeout.is_zero() {
            problems.push("--body-read-timeout must be positive".to_owned());
        }
        if self.kafka_linger > Duration::from_secs(1) {
            problems.push("--kafka-linger must be at most 1s".to_owned());
        }
        if !matches!(
            self.kafka_compression.as_str(),
            "none" | "lz4" | "zstd" | "snappy" | "gzip"
        ) {
            problems.push("--kafka-compression must be none, lz4, zstd, snappy or gzip".to_owned());
        }
        for (key, _) in &self.kafka_properties {
            if matches!(
                key.as_str(),
                "acks"
                    | "request.required.acks"
                    | "enable.idempotence"
                    | "bootstrap.servers"
                    | "linger.ms"
                    | "compression.type"
            ) {
                problems.push(format!(
                    "--kafka-property {key} is set by the data plane and cannot be overridden"
                ));
            }
        }
        if let Some(path) = &self.snapshot_file {
            if !path.is_file() {
                problems.push(format!(
                    "--snapshot-file {} is not a readable file",
                    path.display()
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = Config::from_args(Vec::<String>::new()).expect("defaults parse");
        assert_eq!(c.produce_timeout, Duration::from_secs(5));
        assert_eq!(c.max_body_bytes, 1_048_576);
        assert_eq!(c.kafka_topic, "webhook-gateway.events");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn reports_every_problem_at_once() {
        let c = Config::from_args([
            "--produce-timeout",
            "0s",
            "--max-body-bytes",
            "0",
            "--kafka-property",
            "acks=1",
        ])
        .expect("parses");
        let problems = c.validate().expect_err("invalid");
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
