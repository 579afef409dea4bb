//! Prometheus metrics of failed triggers (labels bounded: a fixed set of results).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// One `result` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// What happened.
    pub result: &'static str,
}

/// Counters of reports, retention and replays.
pub struct FailedTriggerMetrics {
    reports: Family<ResultLabel, Counter>,
    pruned: Counter,
    replays: Family<ResultLabel, Counter>,
}

impl FailedTriggerMetrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let m = Self {
            reports: Family::default(),
            pruned: Counter::default(),
            replays: Family::default(),
        };
        registry.register(
            "gateway_failed_trigger_reports",
            "Failed-trigger reports received from data planes, by result (stored, duplicate, rejected)",
            m.reports.clone(),
        );
        registry.register(
            "gateway_failed_triggers_pruned",
            "Failed triggers deleted by the retention sweep",
            m.pruned.clone(),
        );
        registry.register(
            "gateway_failed_trigger_replays",
            "ReplayFailedTrigger calls by result (published, refused, broker_unavailable)",
            m.replays.clone(),
        );
        Arc::new(m)
    }

    /// Counts reports with `result` (`stored`, `duplicate`, `rejected`).
    pub fn reports(&self, result: &'static str, n: u64) {
        if n > 0 {
            self.reports
                .get_or_create(&ResultLabel { result })
                .inc_by(n);
        }
    }

    /// Counts rows deleted by retention.
    pub fn pruned(&self, n: u64) {
        self.pruned.inc_by(n);
    }

    /// Counts one replay with `result` (`published`, `refused`, `broker_unavailable`).
    pub fn replay(&self, result: &'static str) {
        self.replays.get_or_create(&ResultLabel { result }).inc();
    }
}
