//! The data plane: a stateless hyper gateway that validates incoming webhooks (docs/data-plane.md,
//! "HTTP contract") and publishes them to Kafka only with the broker's acknowledgement.
//!
//! `main` parses [`Config`] and calls [`run`]. Tests and the config-distribution stream use
//! [`DataPlane`]: build it, keep a [`Routes`] handle (`apply_snapshot` / `apply_delta`), then `serve`.

#![forbid(unsafe_code)]

mod admin;
mod body;
mod config;
pub mod dispatch;
mod distribution;
mod envelope;
mod error;
mod failed_triggers;
mod ingest;
mod metrics;
mod producer;
mod providers;
mod publish;
mod rate_limit;
mod record_size;
mod replay;
mod rotation;
mod routing;
mod server;

pub use admin::PATHS as ADMIN_PATHS;
pub use config::{Config, StreamArgs};
pub use distribution::{endpoint, StreamClientConfig, StreamStatus};
pub use envelope::{decode_payload, Accepted};
pub use error::{IngestError, SignatureFailure};
pub use failed_triggers::{NoReporter, Rejection, RejectionReporter};
pub use publish::Publisher;
pub use record_size::max_record_bytes;
pub use rotation::SecretSlot;
pub use routing::{ApplyError, Route, RouteKey, Routes, RoutingTable, TableBuilder};

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gateway_shared::snapshot::{ConfigDelta, ConfigSnapshot};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Installs the data plane's log subscriber (`RUST_LOG`, default `info`), writing to `out`; the
/// guard flushes buffered lines at exit. `ansi` colours the text format (for a terminal only).
pub fn init_logging<W: std::io::Write + Send + 'static>(
    json: bool,
    out: W,
    ansi: bool,
) -> tracing_appender::non_blocking::WorkerGuard {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Log lines are written by a background thread: a request never waits on stdout (a slow log
    // collector must not stall the gateway). If the collector cannot keep up and the buffer of
    // 128k lines fills, lines are dropped, not requests; the guard flushes the rest at exit.
    // Buffered: the writer thread flushes whenever it has drained what is queued, so a burst of
    // lines becomes one write(2) instead of one per line.
    let (writer, guard) =
        tracing_appender::non_blocking(std::io::BufWriter::with_capacity(64 * 1024, out));
    if json {
        tracing_subscriber::fmt()
            .json()
            .with_writer(writer)
            .with_env_filter(filter)
            .init();
    } else {
        // Colour codes only for a terminal: in a log file or a container's captured stdout they are
        // noise, and cost formatting work on every request line.
        tracing_subscriber::fmt()
            .with_ansi(ansi)
            .with_writer(writer)
            .with_env_filter(filter)
            .init();
    }
    guard
}

/// Listeners the data plane serves on.
pub struct Listeners {
    /// Public listener: `/webhooks/incoming/**`.
    pub public: TcpListener,
    /// Admin listener: `/healthz`, `/readyz`, `/metrics`.
    pub admin: TcpListener,
}

/// A configured data plane, not yet serving.
pub struct DataPlane {
    config: Config,
    routes: Routes,
    publisher: Arc<Publisher>,
    metrics: Arc<Metrics>,
    reporter: Option<Arc<dyn RejectionReporter>>,
    stream_status: Arc<distribution::StreamStatus>,
}

impl DataPlane {
    /// Validates the config (every problem at once), creates the Kafka producer and, with
    /// `--snapshot-file`, loads the initial routing table.
    pub fn new(mut config: Config) -> anyhow::Result<DataPlane> {
        for warning in config.apply_renamed() {
            tracing::warn!("{warning}");
        }
        if let Err(problems) = config.validate() {
            anyhow::bail!("invalid configuration:\n  - {}", problems.join("\n  - "));
        }
        if config.stream.plaintext_remote_control_plane() {
            tracing::warn!(
                url = config.stream.control_plane_url.as_deref(),
                "PLAINTEXT CONTROL PLANE: --control-plane-url is http:// to a host that is not loopback; the DATA_PLANE token, its JWT and every webhook secret in the config snapshots cross the network unencrypted. Use https:// (with --control-plane-ca-file) unless this link is protected otherwise"
            );
        }
        let publisher = Arc::new(Publisher::new(&config).context("creating the kafka producer")?);
        let routes = Routes::new();
        if let Some(path) = &config.snapshot_file {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let snapshot: ConfigSnapshot = serde_json::from_slice(&text)
                .with_context(|| format!("parsing {} as a config snapshot", path.display()))?;
            let version = snapshot.version;
            routes
                .apply_snapshot(snapshot)
                .with_context(|| format!("applying {}", path.display()))?;
            tracing::info!(version, file = %path.display(), "config snapshot loaded from file");
        }
        let metrics = Arc::new(if config.metrics_webhook_label {
            Metrics::with_webhook_label()
        } else {
            Metrics::new()
        });
        Ok(DataPlane {
            config,
            routes,
            publisher,
            metrics,
            reporter: None,
            stream_status: Default::default(),
        })
    }

    /// Sends every rejection after routing to `reporter` instead of the control plane (the default
    /// when a control-plane URL is configured; without one rejections are only logged and counted).
    pub fn with_rejection_reporter(mut self, reporter: Arc<dyn RejectionReporter>) -> Self {
        self.reporter = Some(reporter);
        self
    }

    /// The routing-table handle (clone it to keep applying configs while `serve` runs).
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// The publisher (its current producer, for diagnostics and tests).
    pub fn publisher(&self) -> Arc<Publisher> {
        self.publisher.clone()
    }

    /// What the config stream reports (connected, updates applied and rejected).
    pub fn stream_status(&self) -> Arc<distribution::StreamStatus> {
        self.stream_status.clone()
    }

    /// Replaces the routing table with a full snapshot.
    pub fn apply_snapshot(&self, snapshot: ConfigSnapshot) -> Result<(), ApplyError> {
        self.routes.apply_snapshot(snapshot)
    }

    /// Applies a delta to the current routing table.
    pub fn apply_delta(&self, delta: ConfigDelta) -> Result<(), ApplyError> {
        self.routes.apply_delta(delta)
    }

    /// Serves both listeners until `shutdown` is cancelled; then stops accepting, finishes in-flight
    /// requests (up to the grace period) and flushes the producer.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let admin_state = Arc::new(admin::AdminState {
            routes: self.routes.clone(),
            draining: Default::default(),
            metrics: self.metrics.clone(),
            publisher: self.publisher.clone(),
            stream: self.stream_status.clone(),
            topic_limit: Default::default(),
        });
        let topic_check_stop = CancellationToken::new();
        tokio::spawn(admin_state.topic_limit.clone().run(
            self.publisher.client_config(),
            self.config.kafka_topic.clone(),
            self.publisher.max_record_bytes(),
            format!(
                "--max-body-bytes {}, --max-header-bytes {}",
                self.config.max_body_bytes, self.config.max_header_bytes
            ),
            topic_check_stop.clone(),
        ));
        let stream_stop = CancellationToken::new();
        let started = distribution::start(
            &self.config.stream,
            self.routes.clone(),
            self.stream_status.clone(),
            self.metrics.clone(),
            stream_stop.clone(),
        )?;
        let reporter: Arc<dyn RejectionReporter> = match (&self.reporter, &started) {
            (Some(r), _) => r.clone(),
            (None, Some(s)) => s.reports.clone(),
            (None, None) => Arc::new(NoReporter),
        };
        let (stream_task, report_task) = match started {
            Some(s) => {
                s.reports.set_unauthenticated_interval(
                    self.config.stream.failed_trigger_unauthenticated_interval,
                );
                let stop = CancellationToken::new();
                let task = tokio::spawn(
                    s.report_sender
                        .run(stop.clone(), failed_triggers::FINAL_FLUSH),
                );
                (Some(s.stream), Some((task, stop)))
            }
            None => (None, None),
        };
        let samples_stop = CancellationToken::new();
        let samples_task = tokio::spawn(flush_samples_every_second(
            reporter.clone(),
            samples_stop.clone(),
        ));
        let ingest = Arc::new(ingest::Ingest {
            routes: self.routes.clone(),
            publisher: self.publisher.clone(),
            metrics: self.metrics.clone(),
            reporter: reporter.clone(),
            limits: ingest::Limits {
                max_body_bytes: self.config.max_body_bytes,
                body_read_timeout: self.config.body_read_timeout,
                retry_after: self.config.retry_after,
            },
            replay: Default::default(),
        });
        tracing::info!(
            public = %listeners.public.local_addr()?,
            admin = %listeners.admin.local_addr()?,
            topic = %self.config.kafka_topic,
            "data plane listening"
        );
        let supervisor_stop = CancellationToken::new();
        let supervisor = tokio::spawn(
            self.publisher
                .clone()
                .supervise(self.metrics.clone(), supervisor_stop.clone()),
        );
        let admin_stop = CancellationToken::new();
        let admin_task = tokio::spawn(admin::serve(
            listeners.admin,
            admin_state.clone(),
            admin_stop.clone(),
        ));
        let public_stop = CancellationToken::new();
        let public_task = tokio::spawn(server::serve_public(
            listeners.public,
            ingest,
            server::ConnSettings::from(&self.config),
            public_stop.clone(),
        ));

        shutdown.cancelled().await;
        tracing::info!("shutting down");
        stream_stop.cancel();
        topic_check_stop.cancel();
        if let Some(t) = stream_task {
            let _ = t.await;
        }
        admin_state.draining.store(true, Ordering::Release);
        public_stop.cancel();
        if let Err(e) = public_task.await {
            tracing::error!(error = %e, "public listener task failed");
        }
        // Every in-flight request has answered, so every report is queued: send them, with the
        // last counts of the sampled unauthenticated rejections.
        samples_stop.cancel();
        let _ = samples_task.await;
        reporter.flush_samples();
        if let Some((task, stop)) = report_task {
            stop.cancel();
            if let Err(e) = task.await {
                tracing::error!(error = %e, "failed-trigger reporter task failed");
            }
        }
        supervisor_stop.cancel();
        if let Err(e) = supervisor.await {
            tracing::error!(error = %e, "producer supervisor task failed");
        }
        let publisher = self.publisher.clone();
        let flushed =
            tokio::task::spawn_blocking(move || publisher.flush_blocking(Duration::from_secs(10)))
                .await;
        match flushed {
            Ok(Ok(())) => tracing::info!("producer flushed"),
            Ok(Err(e)) => tracing::warn!(error = ?e.to_string(), "producer flush incomplete"),
            Err(e) => tracing::warn!(error = %e, "producer flush task failed"),
        }
        admin_stop.cancel();
        admin_task.await.context("admin listener task")??;
        tracing::info!("data plane stopped");
        Ok(())
    }
}

/// Hands the grown counts of sampled unauthenticated rejections to the reporter every second.
async fn flush_samples_every_second(reporter: Arc<dyn RejectionReporter>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => reporter.flush_samples(),
        }
    }
}

/// Builds a [`DataPlane`] from `config` and serves until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    DataPlane::new(config)?.serve(listeners, shutdown).await
}
