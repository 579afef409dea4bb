//! Settings of `data-plane dispatch`, parsed once at start-up (docs/dispatcher.md,
//! "Configuration"). Every flag has a `DISPATCH_` environment variable; the config-stream settings
//! are the data plane's (`DP_CONTROL_PLANE_URL`, …).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use gateway_shared::settings::{parse_duration, parse_property};

/// Settings of the dispatcher.
#[derive(Clone, Debug, clap::Args)]
pub struct DispatchConfig {
    /// The config stream from the control plane (role DISPATCH: actions and HMAC keys).
    #[command(flatten)]
    pub stream: crate::config::StreamArgs,

    /// Admin listener (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "DISPATCH_ADMIN_LISTEN", default_value = "0.0.0.0:9091")]
    pub admin_listen: SocketAddr,

    /// Kafka bootstrap servers (`host:port[,host:port…]`).
    #[arg(
        long,
        env = "DISPATCH_KAFKA_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    pub kafka_bootstrap: String,

    /// Topic invocation requests are read from.
    #[arg(
        long,
        env = "DISPATCH_INVOCATION_TOPIC",
        default_value = "webhook-gateway.action-invocations"
    )]
    pub invocation_topic: String,

    /// Topic results are published to.
    #[arg(
        long,
        env = "DISPATCH_RESULT_TOPIC",
        default_value = "webhook-gateway.action-results"
    )]
    pub result_topic: String,

    /// Consumer group of the dispatchers (they share the invocation topic's partitions).
    #[arg(
        long,
        env = "DISPATCH_CONSUMER_GROUP",
        default_value = "webhook-gateway-dispatcher"
    )]
    pub consumer_group: String,

    /// Extra librdkafka properties for the consumer and the producer (`key=value`, repeatable or
    /// comma-separated), e.g. TLS/SASL settings or `session.timeout.ms`.
    #[arg(long = "kafka-property", env = "DISPATCH_KAFKA_PROPERTIES", value_delimiter = ',', value_parser = parse_property)]
    pub kafka_properties: Vec<(String, String)>,

    /// How long one attempt to publish a result waits for the broker; a result not acknowledged
    /// is published again (its offset is not committed meanwhile).
    #[arg(long, env = "DISPATCH_PRODUCE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub produce_timeout: Duration,

    /// Deadline of one call to an action server (the whole answer included).
    #[arg(long, env = "DISPATCH_CALL_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub call_timeout: Duration,

    /// Most bytes of an action server's answer that are read; a larger answer fails the call.
    #[arg(long, env = "DISPATCH_MAX_ANSWER_BYTES", default_value_t = 1024 * 1024)]
    pub max_answer_bytes: usize,

    /// Attempts per invocation (the first call included) for connection failures, 429 and 5xx.
    #[arg(long, env = "DISPATCH_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: u32,

    /// Delay before the first retry; it doubles with each retry (with jitter).
    #[arg(long, env = "DISPATCH_RETRY_INITIAL_DELAY", default_value = "500ms", value_parser = parse_duration)]
    pub retry_initial_delay: Duration,

    /// Longest delay between two attempts.
    #[arg(long, env = "DISPATCH_RETRY_MAX_DELAY", default_value = "30s", value_parser = parse_duration)]
    pub retry_max_delay: Duration,

    /// Longest `Retry-After` honoured; an action asking for more fails the invocation.
    #[arg(long, env = "DISPATCH_RETRY_AFTER_MAX", default_value = "60s", value_parser = parse_duration)]
    pub retry_after_max: Duration,

    /// Invocations handled at once by this process, over all actions (the global cap; reading
    /// pauses while it is reached).
    #[arg(long, env = "DISPATCH_MAX_IN_FLIGHT", default_value_t = 1000)]
    pub max_in_flight: usize,

    /// Calls to one action at a time.
    #[arg(long, env = "DISPATCH_ACTION_CONCURRENCY", default_value_t = 16)]
    pub action_concurrency: usize,

    /// Invocations of one app per hour (token bucket; Flowent's documented default is 1,000 per
    /// hour per tenant). 0 = no limit.
    #[arg(long, env = "DISPATCH_APP_RATE_PER_HOUR", default_value_t = 1000)]
    pub app_rate_per_hour: u32,

    /// Size of an app's token bucket (invocations it may make at once after a quiet period);
    /// default: the hourly rate.
    #[arg(long, env = "DISPATCH_APP_RATE_BURST")]
    pub app_rate_burst: Option<u32>,

    /// Longest an invocation waits for its app's rate limit; beyond it the invocation fails.
    #[arg(long, env = "DISPATCH_RATE_LIMIT_MAX_WAIT", default_value = "30s", value_parser = parse_duration)]
    pub rate_limit_max_wait: Duration,

    /// Consecutive failed attempts (no answer, timeout or 5xx) that open an action's breaker.
    #[arg(long, env = "DISPATCH_BREAKER_FAILURES", default_value_t = 5)]
    pub breaker_failures: u32,

    /// How long an open breaker refuses calls before a probe.
    #[arg(long, env = "DISPATCH_BREAKER_COOL_DOWN", default_value = "30s", value_parser = parse_duration)]
    pub breaker_cool_down: Duration,

    /// Accept `http://` action URLs (local development only).
    #[arg(long, env = "DISPATCH_ALLOW_HTTP", default_value_t = false)]
    pub allow_http: bool,

    /// CIDRs callable although private, loopback or link-local (comma-separated), e.g.
    /// `127.0.0.1/32` for a local demo action server.
    #[arg(long, env = "DISPATCH_ALLOW_CIDRS", default_value = "")]
    pub allow_cidrs: String,

    /// How long shutdown waits for running invocations; what has not finished is abandoned
    /// uncommitted and runs again after a restart.
    #[arg(long, env = "DISPATCH_SHUTDOWN_GRACE", default_value = "25s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Log as JSON lines instead of text.
    #[arg(long, env = "DISPATCH_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

#[derive(Parser)]
struct Standalone {
    #[command(flatten)]
    config: DispatchConfig,
}

impl DispatchConfig {
    /// Parses flags (without the program name) the way the binary does; used by tests and tools.
    pub fn from_args<I, T>(args: I) -> Result<DispatchConfig, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let argv = std::iter::once(std::ffi::OsString::from("data-plane-dispatch"))
            .chain(args.into_iter().map(Into::into));
        Standalone::try_parse_from(argv).map(|s| s.config)
    }

    /// Every problem with the settings, reported together.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = self.stream.problems();
        if self.stream.snapshot_cache.is_some() {
            problems.push(
                "--snapshot-cache is not supported by the dispatcher (it would write HMAC keys to disk)"
                    .into(),
            );
        }
        if self.kafka_bootstrap.trim().is_empty() {
            problems.push("--kafka-bootstrap must not be empty".into());
        }
        for (flag, topic) in [
            ("--invocation-topic", &self.invocation_topic),
            ("--result-topic", &self.result_topic),
        ] {
            if topic.trim().is_empty() || topic.len() > 249 {
                problems.push(format!("{flag} must be 1 to 249 characters"));
            }
        }
        if self.invocation_topic == self.result_topic {
            problems.push("--result-topic must differ from --invocation-topic".into());
        }
        if self.consumer_group.trim().is_empty() {
            problems.push("--consumer-group must not be empty".into());
        }
        if self.produce_timeout < Duration::from_millis(100) {
            problems.push("--produce-timeout must be at least 100ms".into());
        }
        if self.call_timeout < Duration::from_millis(100)
            || self.call_timeout > Duration::from_secs(300)
        {
            problems.push("--call-timeout must be between 100ms and 5m".into());
        }
        if self.max_answer_bytes == 0 || self.max_answer_bytes > 16 * 1024 * 1024 {
            problems.push("--max-answer-bytes must be between 1 and 16777216".into());
        }
        if self.max_attempts == 0 || self.max_attempts > 20 {
            problems.push("--max-attempts must be between 1 and 20".into());
        }
        if self.retry_initial_delay.is_zero() || self.retry_initial_delay > self.retry_max_delay {
            problems.push(
                "--retry-initial-delay must be positive and at most --retry-max-delay".into(),
            );
        }
        if self.max_in_flight == 0 {
            problems.push("--max-in-flight must be at least 1".into());
        }
        if self.action_concurrency == 0 {
            problems.push("--action-concurrency must be at least 1".into());
        }
        if self.app_rate_burst == Some(0) {
            problems.push("--app-rate-burst must be at least 1".into());
        }
        if self.breaker_failures == 0 {
            problems.push("--breaker-failures must be at least 1".into());
        }
        if self.breaker_cool_down.is_zero() {
            problems.push("--breaker-cool-down must be positive".into());
        }
        if let Err(e) = gateway_outbound::DestinationPolicy::parse_allowlist(&self.allow_cidrs) {
            problems.push(format!("--allow-cidrs: {e}"));
        }
        for (key, _) in &self.kafka_properties {
            if matches!(
                key.as_str(),
                "bootstrap.servers"
                    | "group.id"
                    | "enable.auto.commit"
                    | "enable.auto.offset.store"
                    | "acks"
                    | "request.required.acks"
                    | "enable.idempotence"
            ) {
                problems.push(format!(
                    "--kafka-property {key} is set by the dispatcher and cannot be overridden"
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
    fn defaults_are_valid_and_match_the_docs() {
        let c = DispatchConfig::from_args(Vec::<String>::new()).expect("defaults parse");
        assert_eq!(c.invocation_topic, "webhook-gateway.action-invocations");
        assert_eq!(c.result_topic, "webhook-gateway.action-results");
        assert_eq!(c.call_timeout, Duration::from_secs(30));
        assert_eq!(c.max_answer_bytes, 1_048_576);
        assert_eq!(c.app_rate_per_hour, 1000);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn reports_every_problem_at_once() {
        let c = DispatchConfig::from_args([
            "--max-attempts",
            "0",
            "--allow-cidrs",
            "not-a-cidr",
            "--kafka-property",
            "enable.auto.commit=true",
            "--result-topic",
            "webhook-gateway.action-invocations",
        ])
        .expect("parses");
        let problems = c.validate().expect_err("invalid");
        assert_eq!(problems.len(), 4, "{problems:?}");
    }
}
