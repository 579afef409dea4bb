//! Prometheus metrics of the dispatcher (docs/dispatcher.md, "Metrics"). The `action` label is
//! the action's name: its values are bounded by the registered actions (names repeat across apps
//! and are then counted together; a name that matches no action is counted as `unknown`). The
//! breaker gauge also carries the app id: one series per registered action.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::actions::Actions;
use super::outcome::Status;

/// Labels of the invocation counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InvocationLabels {
    /// The action's name (`unknown` when the app has no such action or the record is invalid).
    pub action: String,
    /// The result status.
    pub status: &'static str,
}

/// Labels of the call histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The action's name.
    pub action: String,
    /// `2xx`, `3xx`, `4xx`, `5xx` or `error` (no answer).
    pub answer: &'static str,
}

/// Labels naming an action.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// The action's name.
    pub action: String,
}

/// Labels of the breaker gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BreakerLabels {
    /// The owning app.
    pub app_id: String,
    /// The action's name.
    pub action: String,
}

/// Labels of the skipped-record counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabels {
    /// Why no result could be published.
    pub reason: &'static str,
}

/// Labels of the rate-limit counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RateLabels {
    /// `waited` (the invocation went on) or `refused` (it failed).
    pub result: &'static str,
}

/// All metrics of a dispatcher process.
pub struct DispatchMetrics {
    registry: Registry,
    invocations: Family<InvocationLabels, Counter>,
    calls: Family<CallLabels, Histogram>,
    retries: Family<ActionLabels, Counter>,
    breaker: Family<BreakerLabels, Gauge>,
    skipped: Family<SkipLabels, Counter>,
    rate_limited: Family<RateLabels, Counter>,
    result_publish_retries: Counter,
    in_flight: Gauge,
    config_version: Gauge,
    actions: Gauge,
    control_plane_connected: Gauge,
    consumer_joined: Gauge,
}

impl Default for DispatchMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl DispatchMetrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("webhook_gateway_dispatch");
        let invocations = Family::<InvocationLabels, Counter>::default();
        registry.register(
            "invocations",
            "Finished invocations by action name and result status",
            invocations.clone(),
        );
        let calls = Family::<CallLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ])
        });
        registry.register(
            "call_duration_seconds",
            "Duration of each call to an action server, by action name and answer class",
            calls.clone(),
        );
        let retries = Family::<ActionLabels, Counter>::default();
        registry.register(
            "retries",
            "Calls made again after a connection failure, 429 or 5xx, by action name",
            retries.clone(),
        );
        let breaker = Family::<BreakerLabels, Gauge>::default();
        registry.register(
            "breaker_state",
            "Circuit breaker per action: 0 closed, 1 open, 2 half-open",
            breaker.clone(),
        );
        let skipped = Family::<SkipLabels, Counter>::default();
        registry.register(
            "skipped_records",
            "Invocation records without a usable requestId, committed without a result",
            skipped.clone(),
        );
        let rate_limited = Family::<RateLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Invocations that met their app's rate limit: waited, or refused (the wait was too long)",
            rate_limited.clone(),
        );
        let result_publish_retries = Counter::default();
        registry.register(
            "result_publish_retries",
            "Result records published again because the broker did not acknowledge them",
            result_publish_retries.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight",
            "Invocations read and not yet finished",
            in_flight.clone(),
        );
        let config_version = Gauge::default();
        registry.register(
            "config_version",
            "Applied config version (0 before the first snapshot)",
            config_version.clone(),
        );
        let actions = Gauge::default();
        registry.register("actions", "Actions served", actions.clone());
        let control_plane_connected = Gauge::default();
        registry.register(
            "control_plane_connected",
            "1 while the config stream to the control plane is open",
            control_plane_connected.clone(),
        );
        let consumer_joined = Gauge::default();
        registry.register(
            "consumer_joined",
            "1 once the invocation consumer joined its group and got its partitions",
            consumer_joined.clone(),
        );
        Self {
            registry,
            invocations,
            calls,
            retries,
            breaker,
            skipped,
            rate_limited,
            result_publish_retries,
            in_flight,
            config_version,
            actions,
            control_plane_connected,
            consumer_joined,
        }
    }

    /// Counts a finished invocation.
    pub fn invocation(&self, action: &str, status: Status) {
        self.invocations
            .get_or_create(&InvocationLabels {
                action: action.to_owned(),
                status: status.as_str(),
            })
            .inc();
    }

    /// Records one call's duration.
    pub fn call(&self, action: &str, answer: &'static str, took: Duration) {
        self.calls
            .get_or_create(&CallLabels {
                action: action.to_owned(),
                answer,
            })
            .observe(took.as_secs_f64());
    }

    /// Counts a retry.
    pub fn retry(&self, action: &str) {
        self.retries
            .get_or_create(&ActionLabels {
                action: action.to_owned(),
            })
            .inc();
    }

    /// Counts a record committed without a result.
    pub fn skipped(&self, reason: &'static str) {
        self.skipped.get_or_create(&SkipLabels { reason }).inc();
    }

    /// Counts an invocation that met its rate limit.
    pub fn rate_limited(&self, result: &'static str) {
        self.rate_limited
            .get_or_create(&RateLabels { result })
            .inc();
    }

    /// Counts a result published again.
    pub fn result_publish_retry(&self) {
        self.result_publish_retries.inc();
    }

    /// The in-flight gauge.
    pub fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    /// The text exposition, with the gauges that are read from state brought up to date.
    pub fn encode(&self, actions: &Actions, connected: bool, joined: bool) -> String {
        self.config_version.set(actions.version() as i64);
        self.actions.set(actions.len() as i64);
        self.control_plane_connected.set(i64::from(connected));
        self.consumer_joined.set(i64::from(joined));
        // Rebuilt on every scrape, so a deleted action's series disappears.
        self.breaker.clear();
        for action in actions.all() {
            self.breaker
                .get_or_create(&BreakerLabels {
                    app_id: action.tenancy.app_id.to_string(),
                    action: action.name.clone(),
                })
                .set(action.breaker.state().gauge());
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("encoding the dispatcher metrics failed");
        }
        out
    }
}
