//! Failed triggers (docs/control-plane.md, "Failed triggers"): requests that reached a known
//! webhook and were not published. Data
//! planes report them (`ConfigDistributionService.ReportFailedTriggers`, see [`report`]); they are
//! stored per app with a retention policy ([`retention`]), listed and shown with masked headers
//! (`TriggerService.ListFailedTriggers`/`GetFailedTrigger`, see [`store`]) and can be published
//! again ([`replay`]).

pub(crate) mod metrics;
mod query;
pub(crate) mod replay;
pub(crate) mod report;
pub(crate) mod retention;
pub(crate) mod store;

use std::sync::Arc;
use std::time::Duration;

use gateway_shared::crypto::Keyring;

use crate::db::DbPool;
use gateway_shared::settings::{parse_duration, parse_property};
pub(crate) use metrics::FailedTriggerMetrics;
pub(crate) use replay::Replayer;

/// The data plane's default topic, so a replay lands where the original would have.
pub const DEFAULT_TOPIC: &str = "webhook-gateway.events";

/// Settings of failed-trigger storage, retention and replay.
#[derive(Clone, Debug, clap::Args)]
pub struct FailedTriggerArgs {
    /// Largest payload stored per failed trigger, in bytes; a longer one is truncated and cannot be
    /// replayed.
    #[arg(
        long,
        env = "CP_FAILED_TRIGGER_MAX_PAYLOAD_BYTES",
        default_value_t = 65_536
    )]
    pub failed_trigger_max_payload_bytes: usize,

    /// Failed triggers older than this are deleted (e.g. `7d`, `12h`).
    #[arg(long, env = "CP_FAILED_TRIGGER_MAX_AGE", default_value = "7d", value_parser = parse_duration)]
    pub failed_trigger_max_age: Duration,

    /// Failed triggers kept per webhook (the newest); older ones are deleted.
    #[arg(
        long,
        env = "CP_FAILED_TRIGGER_MAX_PER_WEBHOOK",
        default_value_t = 1000
    )]
    pub failed_trigger_max_per_webhook: u32,

    /// How often the retention sweep runs (e.g. `60s`).
    #[arg(long, env = "CP_FAILED_TRIGGER_SWEEP_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub failed_trigger_sweep_interval: Duration,

    /// Kafka bootstrap servers for ReplayFailedTrigger; without it replays are refused
    /// (REPLAY_NOT_CONFIGURED).
    #[arg(long, env = "CP_KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: Option<String>,

    /// Topic replayed events are published to (the data plane's default).
    #[arg(long, env = "CP_KAFKA_TOPIC", default_value = DEFAULT_TOPIC)]
    pub kafka_topic: String,

    /// Extra librdkafka properties for the replay producer (`key=value`, repeatable or
    /// comma-separated), e.g. TLS/SASL settings. They cannot override `acks` or `enable.idempotence`.
    #[arg(long = "kafka-property", env = "CP_KAFKA_PROPERTIES", value_delimiter = ',', value_parser = parse_property)]
    pub kafka_properties: Vec<(String, String)>,

    /// How long a replay waits for the broker's acknowledgement (e.g. `10s`).
    #[arg(long, env = "CP_KAFKA_PRODUCE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub kafka_produce_timeout: Duration,
}

impl Default for FailedTriggerArgs {
    fn default() -> Self {
        Self {
            failed_trigger_max_payload_bytes: 65_536,
            failed_trigger_max_age: Duration::from_secs(7 * 86_400),
            failed_trigger_max_per_webhook: 1000,
            failed_trigger_sweep_interval: Duration::from_secs(60),
            kafka_bootstrap: None,
            kafka_topic: DEFAULT_TOPIC.to_owned(),
            kafka_properties: Vec::new(),
            kafka_produce_timeout: Duration::from_secs(10),
        }
    }
}

/// Most payload bytes a stored record may keep: reports arrive in one gRPC message of at most
/// [`report::MAX_REPORT_MESSAGE_BYTES`].
const MAX_STORED_PAYLOAD: usize = 8 * 1024 * 1024;

impl FailedTriggerArgs {
    /// Adds every problem of these settings to `problems`.
    pub fn check(&self, problems: &mut Vec<String>) {
        if self.failed_trigger_max_payload_bytes > MAX_STORED_PAYLOAD {
            problems.push(format!(
                "CP_FAILED_TRIGGER_MAX_PAYLOAD_BYTES must be at most {MAX_STORED_PAYLOAD}"
            ));
        }
        if self.failed_trigger_max_age.is_zero() {
            problems.push("CP_FAILED_TRIGGER_MAX_AGE must be positive".into());
        }
        if self.failed_trigger_max_per_webhook == 0 {
            problems.push("CP_FAILED_TRIGGER_MAX_PER_WEBHOOK must be at least 1".into());
        }
        if self.failed_trigger_sweep_interval.is_zero() {
            problems.push("CP_FAILED_TRIGGER_SWEEP_INTERVAL must be positive".into());
        }
        if self.kafka_topic.trim().is_empty() || self.kafka_topic.len() > 249 {
            problems.push("CP_KAFKA_TOPIC must be 1 to 249 characters".into());
        }
        if self.kafka_produce_timeout.is_zero() {
            problems.push("CP_KAFKA_PRODUCE_TIMEOUT must be positive".into());
        }
        if matches!(&self.kafka_bootstrap, Some(b) if b.trim().is_empty()) {
            problems.push("CP_KAFKA_BOOTSTRAP must not be empty when set".into());
        }
        for (key, _) in &self.kafka_properties {
            if matches!(
                key.as_str(),
                "acks" | "request.required.acks" | "enable.idempotence" | "bootstrap.servers"
            ) {
                problems.push(format!(
                    "--kafka-property {key} is set by the control plane and cannot be overridden"
                ));
            }
        }
    }
}

/// What both services share to handle failed triggers.
pub(crate) struct FailedTriggers {
    pub(crate) pool: DbPool,
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) max_payload_bytes: usize,
    pub(crate) metrics: Arc<FailedTriggerMetrics>,
    /// `None` when no Kafka is configured: replays are refused.
    pub(crate) replayer: Option<Replayer>,
}

impl FailedTriggers {
    /// Over `pool`, with `replayer` when Kafka is configured.
    pub fn new(
        pool: DbPool,
        keyring: Arc<Keyring>,
        args: &FailedTriggerArgs,
        metrics: Arc<FailedTriggerMetrics>,
        replayer: Option<Replayer>,
    ) -> Self {
        Self {
            pool,
            keyring,
            max_payload_bytes: args.failed_trigger_max_payload_bytes,
            metrics,
            replayer,
        }
    }
}

impl FailedTriggers {
    /// A pooled connection, or UNAVAILABLE.
    pub async fn conn(
        &self,
    ) -> crate::error::ApiResult<
        diesel_async::pooled_connection::deadpool::Object<diesel_async::AsyncPgConnection>,
    > {
        Ok(self.pool.get().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_every_problem_is_reported() {
        let mut problems = Vec::new();
        FailedTriggerArgs::default().check(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let bad = FailedTriggerArgs {
            failed_trigger_max_payload_bytes: MAX_STORED_PAYLOAD + 1,
            failed_trigger_max_age: Duration::ZERO,
            failed_trigger_max_per_webhook: 0,
            failed_trigger_sweep_interval: Duration::ZERO,
            kafka_bootstrap: Some(" ".into()),
            kafka_topic: String::new(),
            kafka_properties: vec![("acks".into(), "1".into())],
            kafka_produce_timeout: Duration::ZERO,
        };
        bad.check(&mut problems);
        assert_eq!(problems.len(), 8, "{problems:?}");
    }
}
