//! Prometheus metrics of the data plane. Labels are bounded: provider (7 values + `none`), outcome
//! (the response codes of the error table + `accepted`/`handshake`), never a webhook id.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::rotation::SecretSlot;
use crate::routing::Routes;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Provider of the webhook (`none` when routing failed).
    pub provider: &'static str,
    /// `accepted`, `handshake` or the error code.
    pub outcome: &'static str,
}

/// Labels of the publish histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PublishLabels {
    /// `acked` or `failed`.
    pub outcome: &'static str,
}

/// Labels of the producer replacement counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplacementLabels {
    /// `fatal` (librdkafka raised a fatal error) or `wedged` (every record failing while the
    /// broker answers).
    pub reason: &'static str,
}

/// Labels of the per-webhook request counter (only when an operator turns it on).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// The webhook id.
    pub webhook_id: String,
    /// `accepted`, `handshake` or the error code.
    pub outcome: &'static str,
}

/// Labels of the failed-trigger report counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReportLabels {
    /// `sent`, `dropped`, or `sampled` (an unauthenticated rejection counted on its sample).
    pub result: &'static str,
}

/// Labels of the signature-match counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignatureLabels {
    /// Provider of the webhook.
    pub provider: &'static str,
    /// `current` or `previous`: which signing secret verified the request.
    pub secret: &'static str,
}

/// Labels of the API-key match counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiKeyLabels {
    /// `current` or `previous`: which key was used (previous = inside a reset grace window).
    pub key: &'static str,
}

/// All metrics of the process.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    signature_matches: Family<SignatureLabels, Counter>,
    api_key_matches: Family<ApiKeyLabels, Counter>,
    publish_seconds: Family<PublishLabels, Histogram>,
    config_version: Gauge,
    webhooks: Gauge,
    snapshot_age_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    producer_in_flight: Gauge,
    producer_replacements: Family<ReplacementLabels, Counter>,
    requests_in_flight: Gauge,
    failed_trigger_reports: Family<ReportLabels, Counter>,
    failed_trigger_queue_bytes: Gauge,
    control_plane_connected: Gauge,
    connections_refused: Counter,
    rate_limit_fleet_planes: Gauge,
    per_webhook: Option<Family<WebhookLabels, Counter>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Like [`Metrics::new`], plus a request counter labelled by webhook id. Its cardinality grows
    /// with the number of webhooks: meant for small fleets or debugging.
    pub fn with_webhook_label() -> Self {
        let mut m = Self::new();
        let family = Family::<WebhookLabels, Counter>::default();
        m.registry.register(
            "webhook_requests",
            "Webhook requests by webhook id and outcome (enabled by DP_METRICS_WEBHOOK_LABEL)",
            family.clone(),
        );
        m.per_webhook = Some(family);
        m
    }

    /// Counts one answered request of a known webhook, when per-webhook counting is on.
    pub fn webhook_request(&self, webhook_id: impl FnOnce() -> String, outcome: &'static str) {
        if let Some(family) = &self.per_webhook {
            family
                .get_or_create(&WebhookLabels {
                    webhook_id: webhook_id(),
                    outcome,
                })
                .inc();
        }
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("webhook_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Webhook requests by provider and outcome",
            requests.clone(),
        );
        let signature_matches = Family::<SignatureLabels, Counter>::default();
        registry.register(
            "signature_matches",
            "Verified provider signatures by provider and the secret that matched (current or previous, during a rotation)",
            signature_matches.clone(),
        );
        let api_key_matches = Family::<ApiKeyLabels, Counter>::default();
        registry.register(
            "api_key_matches",
            "Accepted API keys by slot (current, or previous inside a ResetApiKey grace window)",
            api_key_matches.clone(),
        );
        let publish_seconds = Family::<PublishLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "publish_duration_seconds",
            "Time from produce to the broker's acknowledgement (or failure)",
            publish_seconds.clone(),
        );
        let config_version = Gauge::default();
        registry.register(
            "config_version",
            "Applied config snapshot version (-1 before the first)",
            config_version.clone(),
        );
        let webhooks = Gauge::default();
        registry.register(
            "routing_webhooks",
            "Active webhooks in the routing table",
            webhooks.clone(),
        );
        let snapshot_age_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "config_age_seconds",
            "Seconds since the routing table was last replaced",
            snapshot_age_seconds.clone(),
        );
        let producer_in_flight = Gauge::default();
        registry.register(
            "producer_in_flight",
            "Records waiting in the producer for the broker",
            producer_in_flight.clone(),
        );
        let producer_replacements = Family::<ReplacementLabels, Counter>::default();
        registry.register(
            "kafka_producer_replacements",
            "Kafka producers replaced by a new one, by reason (fatal, wedged)",
            producer_replacements.clone(),
        );
        let requests_in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "Webhook requests being handled now",
            requests_in_flight.clone(),
        );
        let failed_trigger_reports = Family::<ReportLabels, Counter>::default();
        registry.register(
            "failed_trigger_reports",
            "Failed-trigger reports sent to the control plane, or dropped (buffer full, shutdown)",
            failed_trigger_reports.clone(),
        );
        let failed_trigger_queue_bytes = Gauge::default();
        registry.register(
            "failed_trigger_queue_bytes",
            "Bytes of failed-trigger reports waiting to be sent",
            failed_trigger_queue_bytes.clone(),
        );
        let control_plane_connected = Gauge::default();
        registry.register(
            "control_plane_connected",
            "1 while the config stream to the control plane is open",
            control_plane_connected.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Public connections closed at once because --max-connections were open",
            connections_refused.clone(),
        );
        let rate_limit_fleet_planes = Gauge::default();
        registry.register(
            "rate_limit_fleet_planes",
            "Data planes sharing this plane's rate limits, as the control plane counted them (each enforces limit / planes)",
            rate_limit_fleet_planes.clone(),
        );
        Metrics {
            connections_refused,
            rate_limit_fleet_planes,
            api_key_matches,
            per_webhook: None,
            failed_trigger_reports,
            failed_trigger_queue_bytes,
            control_plane_connected,
            requests_in_flight,
            registry,
            requests,
            signature_matches,
            publish_seconds,
            config_version,
            webhooks,
            snapshot_age_seconds,
            producer_in_flight,
            producer_replacements,
        }
    }

    /// Counts one answered request.
    pub fn request(&self, provider: &'static str, outcome: &'static str) {
        self.requests
            .get_or_create(&RequestLabels { provider, outcome })
            .inc();
    }

    /// Counts a verified signature by the secret that matched; GENERIC (no secret) is not counted.
    /// Counts an accepted API key by slot.
    pub fn api_key_match(&self, slot: SecretSlot) {
        self.api_key_matches
            .get_or_create(&ApiKeyLabels { key: slot.as_str() })
            .inc();
    }

    /// Counts a verified signature by the secret that matched.
    pub fn signature_match(&self, provider: &'static str, slot: Option<SecretSlot>) {
        if let Some(slot) = slot {
            self.signature_matches
                .get_or_create(&SignatureLabels {
                    provider,
                    secret: slot.as_str(),
                })
                .inc();
        }
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.requests_in_flight.inc();
        InFlight(self.requests_in_flight.clone())
    }

    /// Observes one publish.
    pub fn publish(&self, acked: bool, took: Duration) {
        let outcome = if acked { "acked" } else { "failed" };
        self.publish_seconds
            .get_or_create(&PublishLabels { outcome })
            .observe(took.as_secs_f64());
    }

    /// Counts one public connection closed at once: too many open.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// Counts one producer replacement.
    pub fn producer_replaced(&self, reason: &'static str) {
        self.producer_replacements
            .get_or_create(&ReplacementLabels { reason })
            .inc();
    }

    /// Counts failed-trigger reports by result.
    pub fn failed_trigger_report(&self, result: &'static str, count: u64) {
        self.failed_trigger_reports
            .get_or_create(&ReportLabels { result })
            .inc_by(count);
    }

    /// Sets the bytes of reports waiting to be sent.
    pub fn failed_trigger_queue(&self, bytes: usize) {
        self.failed_trigger_queue_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// The text exposition, with the config gauges read from `routes` now.
    pub fn encode(
        &self,
        routes: &Routes,
        producer_in_flight: i32,
        control_plane_connected: bool,
    ) -> String {
        self.control_plane_connected
            .set(i64::from(control_plane_connected));
        match routes.load() {
            Some(t) => {
                self.config_version
                    .set(i64::try_from(t.version()).unwrap_or(i64::MAX));
                self.webhooks
                    .set(i64::try_from(t.len()).unwrap_or(i64::MAX));
                let age = SystemTime::now()
                    .duration_since(t.applied_at())
                    .unwrap_or_default();
                self.snapshot_age_seconds.set(age.as_secs_f64());
            }
            None => {
                self.config_version.set(-1);
                self.webhooks.set(0);
            }
        }
        self.producer_in_flight.set(i64::from(producer_in_flight));
        self.rate_limit_fleet_planes
            .set(i64::from(routes.fleet_planes()));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("metrics encoding failed");
        }
        out
    }
}

/// Seconds since the epoch, for the `not_after` checks.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Decrements the in-flight gauge when dropped.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
