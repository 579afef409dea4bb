//! Typed configuration, parsed once at start-up from flags and environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use gateway_shared::secret::value_or_file;
use gateway_shared::settings::{
    parse_duration, parse_legacy_millis, parse_legacy_secs, parse_property, Renamed,
};
use gateway_shared::Secret;

/// Settings of the data plane. Every flag has an environment variable; see docs/data-plane.md.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// The config stream from the control plane.
    #[command(flatten)]
    pub stream: StreamArgs,

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

    /// Time announced in `Retry-After` (whole seconds) when the broker cannot take an event.
    #[arg(long, env = "DP_RETRY_AFTER", default_value = "5s", value_parser = parse_duration)]
    pub retry_after: Duration,

    /// Deprecated: `--retry-after` in seconds.
    #[arg(long, env = "DP_RETRY_AFTER_SECS", hide = true, value_parser = parse_legacy_secs, conflicts_with = "retry_after")]
    pub retry_after_secs: Option<Duration>,

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

    /// A public connection with no request in flight for this long is closed (HTTP/2: GOAWAY).
    #[arg(long, env = "DP_CONNECTION_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub connection_idle_timeout: Duration,

    /// Most open connections on the public listener; beyond it new ones are closed at once.
    #[arg(long, env = "DP_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

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

/// Settings of the config stream (all optional: without a control-plane URL the data plane serves
/// only what `--snapshot-file` loaded).
#[derive(Clone, Debug, clap::Args)]
pub struct StreamArgs {
    /// Control plane gRPC URL (`http://…` on loopback, `https://…` with TLS).
    #[arg(long, env = "DP_CONTROL_PLANE_URL")]
    pub control_plane_url: Option<String>,

    /// API token with role DATA_PLANE (exchanged for a JWT on every connect).
    #[arg(
        long,
        env = "DP_CONTROL_PLANE_TOKEN",
        hide_env_values = true,
        conflicts_with = "control_plane_token_file"
    )]
    pub control_plane_token: Option<Secret<String>>,

    /// File holding the DATA_PLANE API token.
    #[arg(long, env = "DP_CONTROL_PLANE_TOKEN_FILE")]
    pub control_plane_token_file: Option<PathBuf>,

    /// PEM CA certificate that signs the control plane's TLS certificate.
    #[arg(long, env = "DP_CONTROL_PLANE_CA_FILE")]
    pub control_plane_ca_file: Option<PathBuf>,

    /// TLS server name to verify when it differs from the URL's host.
    #[arg(long, env = "DP_CONTROL_PLANE_TLS_DOMAIN")]
    pub control_plane_tls_domain: Option<String>,

    /// This data plane's name in the control plane's view (default: $HOSTNAME).
    #[arg(long, env = "DP_ID")]
    pub data_plane_id: Option<String>,

    /// Keep the last good config here (encrypted with a key derived from the token) and cold-start
    /// from it when the control plane is unreachable.
    #[arg(long, env = "DP_SNAPSHOT_CACHE")]
    pub snapshot_cache: Option<PathBuf>,

    /// Time between heartbeats on the config stream (at least 100ms); the control plane silent for
    /// three of them means a dead stream.
    #[arg(long, env = "DP_STREAM_HEARTBEAT", default_value = "10s", value_parser = parse_duration)]
    pub stream_heartbeat: Duration,

    /// Deprecated: `--stream-heartbeat` in milliseconds.
    #[arg(long, env = "DP_STREAM_HEARTBEAT_MS", hide = true, value_parser = parse_legacy_millis, conflicts_with = "stream_heartbeat")]
    pub stream_heartbeat_ms: Option<Duration>,

    /// Most payload bytes a failed-trigger report keeps (longer bodies are cut and cannot be
    /// replayed).
    #[arg(long, env = "DP_FAILED_TRIGGER_PAYLOAD_BYTES", default_value_t = 64 * 1024)]
    pub failed_trigger_payload_bytes: usize,

    /// Most bytes of failed-trigger reports held while the control plane is slow or away; beyond
    /// it reports are dropped (and counted).
    #[arg(long, env = "DP_FAILED_TRIGGER_BUFFER_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub failed_trigger_buffer_bytes: usize,

    /// How long a failed-trigger batch waits for more reports before it is sent.
    #[arg(long, env = "DP_FAILED_TRIGGER_LINGER", default_value = "200ms", value_parser = parse_duration)]
    pub failed_trigger_linger: Duration,

    /// Unauthenticated rejections (API_KEY_*) are sampled: one report per webhook and interval,
    /// the rest counted on it.
    #[arg(long, env = "DP_FAILED_TRIGGER_UNAUTHENTICATED_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub failed_trigger_unauthenticated_interval: Duration,

    /// Deprecated: `--failed-trigger-linger` in milliseconds.
    #[arg(long, env = "DP_FAILED_TRIGGER_LINGER_MS", hide = true, value_parser = parse_legacy_millis, conflicts_with = "failed_trigger_linger")]
    pub failed_trigger_linger_ms: Option<Duration>,
}

impl StreamArgs {
    /// Problems with these settings (reported with the rest of the config).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(url) = &self.control_plane_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push("--control-plane-url must start with http:// or https://".into());
            }
            if self.control_plane_token.is_none() && self.control_plane_token_file.is_none() {
                problems.push(
                    "--control-plane-url needs --control-plane-token or --control-plane-token-file"
                        .into(),
                );
            }
            if self.failed_trigger_unauthenticated_interval < Duration::from_secs(1) {
                problems
                    .push("--failed-trigger-unauthenticated-interval must be at least 1s".into());
            }
            if self.failed_trigger_payload_bytes > 4 * 1024 * 1024 {
                problems.push("--failed-trigger-payload-bytes must be at most 4194304".into());
            }
        } else if self.snapshot_cache.is_some() {
            problems.push("--snapshot-cache needs --control-plane-url".into());
        }
        if let Some(f) = &self.control_plane_ca_file {
            if !f.is_file() {
                problems.push(format!(
                    "--control-plane-ca-file {} is not a readable file",
                    f.display()
                ));
            }
        }
        problems
    }

    /// Whether `--control-plane-url` is plaintext (`http://`) to a host other than loopback: the
    /// DATA_PLANE token, the JWT and every snapshot's secrets would cross the network unencrypted.
    pub fn plaintext_remote_control_plane(&self) -> bool {
        let Some(rest) = self
            .control_plane_url
            .as_deref()
            .and_then(|u| u.strip_prefix("http://"))
        else {
            return false;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        };
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        !loopback
    }

    /// The DATA_PLANE API token, from `--control-plane-token` or its file.
    pub(crate) fn token(&self) -> anyhow::Result<Secret<String>> {
        value_or_file(
            self.control_plane_token.as_ref(),
            self.control_plane_token_file.as_deref(),
            "control-plane token (DP_CONTROL_PLANE_TOKEN or DP_CONTROL_PLANE_TOKEN_FILE)",
        )
        .map_err(anyhow::Error::msg)
    }
}

#[derive(Parser)]
struct Standalone {
    #[command(flatten)]
    config: Config,
}

const RETRY_AFTER: Renamed = Renamed {
    old_flag: "retry-after-secs",
    old_env: "DP_RETRY_AFTER_SECS",
    new_flag: "retry-after",
    new_env: "DP_RETRY_AFTER",
};
pub(crate) const STREAM_HEARTBEAT: Renamed = Renamed {
    old_flag: "stream-heartbeat-ms",
    old_env: "DP_STREAM_HEARTBEAT_MS",
    new_flag: "stream-heartbeat",
    new_env: "DP_STREAM_HEARTBEAT",
};
const FAILED_TRIGGER_LINGER: Renamed = Renamed {
    old_flag: "failed-trigger-linger-ms",
    old_env: "DP_FAILED_TRIGGER_LINGER_MS",
    new_flag: "failed-trigger-linger",
    new_env: "DP_FAILED_TRIGGER_LINGER",
};

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

    /// Moves values given under the names renamed in this release (`DP_RETRY_AFTER_SECS`,
    /// `DP_STREAM_HEARTBEAT_MS`, `DP_FAILED_TRIGGER_LINGER_MS`) to their new settings, and returns
    /// one deprecation warning for each, to be logged at start-up.
    pub fn apply_renamed(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        RETRY_AFTER.apply(
            &mut self.retry_after_secs,
            &mut self.retry_after,
            &mut warnings,
        );
        let stream = &mut self.stream;
        STREAM_HEARTBEAT.apply(
            &mut stream.stream_heartbeat_ms,
            &mut stream.stream_heartbeat,
            &mut warnings,
        );
        FAILED_TRIGGER_LINGER.apply(
            &mut stream.failed_trigger_linger_ms,
            &mut stream.failed_trigger_linger,
            &mut warnings,
        );
        warnings
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
        let max_record =
            crate::record_size::max_record_bytes(self.max_body_bytes, self.max_header_bytes);
        if (self.producer_queue_kbytes as usize).saturating_mul(1024) < max_record {
            problems.push(format!(
                "--producer-queue-kbytes must hold the largest record ({max_record} bytes for --max-body-bytes {})",
                self.max_body_bytes
            ));
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
        if self.retry_after.subsec_nanos() != 0 {
            problems.push("--retry-after must be whole seconds".to_owned());
        }
        if self.connection_idle_timeout < Duration::from_secs(1) {
            problems.push("--connection-idle-timeout must be at least 1s".to_owned());
        }
        if self.max_connections == 0 || self.max_connections > 1_000_000 {
            problems.push("--max-connections must be between 1 and 1000000".to_owned());
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
mod tests;
