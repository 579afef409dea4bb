//! The request-path half of failed-trigger reporting: [`ReportQueue`] turns each rejection into a
//! report and hands it to the sender without waiting; the queue is bounded in bytes, and a report
//! that does not fit is dropped and counted. Unauthenticated rejections are sampled
//! ([`super::sampler`]) and may fill only half of the buffer, so a flood of them never takes the
//! room of the other reports.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_proto::v1::FailedTriggerReport;
use tokio::sync::{mpsc, watch};

use super::report::build;
use super::sampler::{is_unauthenticated, Admit, Sampler};
use super::sender::ReportSender;
use super::{Rejection, RejectionReporter};
use crate::distribution::{Credentials, Link};
use crate::metrics::Metrics;

/// Limits of the reporter.
#[derive(Clone, Debug)]
pub struct ReportSettings {
    /// The data plane's name, sent with every batch.
    pub data_plane_id: String,
    /// Most payload bytes kept per report (the rest is cut; the record is then not replayable).
    pub max_payload_bytes: usize,
    /// Most bytes (payloads and headers) waiting to be sent; beyond it reports are dropped.
    pub buffer_bytes: usize,
    /// Most reports per batch.
    pub batch_reports: usize,
    /// Most bytes per batch (kept under the control plane's message limit).
    pub batch_bytes: usize,
    /// How long a batch waits for more reports before it goes.
    pub linger: Duration,
    /// Deadline of one `ReportFailedTriggers` call.
    pub call_timeout: Duration,
}

/// The request-path half: builds reports and hands them to the sender without waiting.
pub struct ReportQueue {
    tx: mpsc::UnboundedSender<(FailedTriggerReport, usize)>,
    queued_bytes: Arc<AtomicUsize>,
    settings: ReportSettings,
    metrics: Arc<Metrics>,
    sampler: Sampler,
}

/// A queue and its sender.
pub fn channel(
    settings: ReportSettings,
    metrics: Arc<Metrics>,
    link: watch::Receiver<Option<Link>>,
    credentials: Arc<dyn Credentials>,
) -> (ReportQueue, ReportSender) {
    // Unbounded in count, bounded in bytes by `queued_bytes` (each report weighs at least its
    // fixed overhead, so the count is bounded too).
    let (tx, rx) = mpsc::unbounded_channel();
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    (
        ReportQueue {
            tx,
            queued_bytes: queued_bytes.clone(),
            settings: settings.clone(),
            metrics: metrics.clone(),
            sampler: Sampler::default(),
        },
        ReportSender {
            rx,
            queued_bytes,
            settings,
            metrics,
            link,
            credentials,
        },
    )
}

impl ReportQueue {
    /// Sets how long one sampled unauthenticated rejection stands for a webhook's others.
    pub fn set_unauthenticated_interval(&self, interval: Duration) {
        self.sampler.set_interval(interval);
    }

    /// Queues one report if it fits: all of the buffer for authenticated reports, half of it for
    /// unauthenticated ones.
    fn enqueue(&self, (report, weight): (FailedTriggerReport, usize), unauthenticated: bool) {
        let budget = if unauthenticated {
            self.settings.buffer_bytes / 2
        } else {
            self.settings.buffer_bytes
        };
        let reserved = self
            .queued_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q + weight <= budget).then_some(q + weight)
            });
        if reserved.is_err() || self.tx.send((report, weight)).is_err() {
            if reserved.is_ok() {
                self.queued_bytes.fetch_sub(weight, Ordering::AcqRel);
            }
            self.metrics.failed_trigger_report("dropped", 1);
            tracing::warn!("failed-trigger report dropped: the report buffer is full or closed");
            return;
        }
        self.metrics
            .failed_trigger_queue(self.queued_bytes.load(Ordering::Acquire));
    }
}

impl RejectionReporter for ReportQueue {
    fn report(&self, rejection: &Rejection<'_>) {
        let max_payload = self.settings.max_payload_bytes;
        if !is_unauthenticated(rejection.code) {
            self.enqueue(build(rejection, max_payload), false);
            return;
        }
        let webhook = rejection.route.key.webhook_id;
        match self
            .sampler
            .admit(webhook, Instant::now(), || build(rejection, max_payload))
        {
            Admit::Queue(reports) => {
                for r in reports {
                    self.enqueue(r, true);
                }
            }
            Admit::Counted(update) => {
                self.metrics.failed_trigger_report("sampled", 1);
                if let Some(u) = update {
                    self.enqueue(*u, true);
                }
            }
            Admit::Full(updates) => {
                for u in updates {
                    self.enqueue(u, true);
                }
                self.metrics.failed_trigger_report("dropped", 1);
                tracing::warn!("unauthenticated failed-trigger report dropped: too many webhooks sampled at once");
            }
        }
    }

    fn flush_samples(&self) {
        for u in self.sampler.flush(Instant::now()) {
            self.enqueue(u, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::HeaderMap;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::error::IngestError;
    use crate::failed_triggers::report::tests::{rejection, route};
    use crate::failed_triggers::report::REPORT_OVERHEAD;

    #[tokio::test]
    async fn a_full_buffer_drops_and_counts_without_waiting() {
        let metrics = Arc::new(Metrics::new());
        let (_link_tx, link_rx) = watch::channel(None);
        struct NoCredentials;
        #[tonic::async_trait]
        impl Credentials for NoCredentials {
            async fn bearer(&self, _: tonic::transport::Channel) -> Result<String, tonic::Status> {
                Err(tonic::Status::unavailable("test"))
            }
        }
        let (queue, sender) = channel(
            ReportSettings {
                data_plane_id: "dp".into(),
                max_payload_bytes: 1024,
                buffer_bytes: 3 * REPORT_OVERHEAD + 2048,
                batch_reports: 10,
                batch_bytes: 1 << 20,
                linger: Duration::from_millis(1),
                call_timeout: Duration::from_secs(1),
            },
            metrics.clone(),
            link_rx,
            Arc::new(NoCredentials),
        );
        let route = route();
        let error = IngestError::InvalidJson("line 1 column 1".into());
        let headers = HeaderMap::new();
        let body = Bytes::from(vec![b'x'; 1000]);
        for _ in 0..5 {
            queue.report(&rejection(&route, &error, &headers, Some(&body)));
        }
        let text = metrics.encode(&crate::routing::Routes::new(), 0, false);
        assert!(
            text.contains(r#"webhook_gateway_failed_trigger_reports_total{result="dropped"} 3"#),
            "two fit in the buffer, three are dropped: {text}"
        );
        // With no control plane to reach, shutdown drops what is queued, and says so.
        let stop = CancellationToken::new();
        stop.cancel();
        sender.run(stop, Duration::from_millis(100)).await;
        let text = metrics.encode(&crate::routing::Routes::new(), 0, false);
        assert!(
            text.contains(r#"webhook_gateway_failed_trigger_reports_total{result="dropped"} 5"#),
            "{text}"
        );
    }
}
