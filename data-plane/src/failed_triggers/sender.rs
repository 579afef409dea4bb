//! The sending half of failed-trigger reporting: batches go to the control plane over the config
//! stream's connection, wait while it is down, are retried with backoff, and what is queued at
//! shutdown is flushed within a budget.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gateway_proto::v1::config_distribution_service_client::ConfigDistributionServiceClient;
use gateway_proto::v1::{FailedTriggerReport, ReportFailedTriggersRequest};
use gateway_shared::backoff::Backoff;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::queue::ReportSettings;
use crate::distribution::{Credentials, Link};
use crate::metrics::Metrics;

/// How long shutdown spends sending the reports still queued.
pub const FINAL_FLUSH: Duration = Duration::from_secs(5);

/// The sending half, run by [`ReportSender::run`].
pub struct ReportSender {
    pub(super) rx: mpsc::UnboundedReceiver<(FailedTriggerReport, usize)>,
    pub(super) queued_bytes: Arc<AtomicUsize>,
    pub(super) settings: ReportSettings,
    pub(super) metrics: Arc<Metrics>,
    pub(super) link: watch::Receiver<Option<Link>>,
    pub(super) credentials: Arc<dyn Credentials>,
}

/// Reports on their way in one call, and their weight (kept as they are added, not summed again).
#[derive(Default)]
struct Batch {
    reports: Vec<FailedTriggerReport>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, (report, weight): (FailedTriggerReport, usize)) {
        self.reports.push(report);
        self.bytes += weight;
    }
}

impl ReportSender {
    /// Sends batches until `stop`; then sends what is queued (each call bounded by the call
    /// timeout, all of it by `final_flush`) and counts the rest as dropped.
    pub async fn run(mut self, stop: CancellationToken, final_flush: Duration) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut batch = Batch::default();
        loop {
            if batch.reports.is_empty() {
                tokio::select! {
                    first = self.rx.recv() => match first {
                        Some(r) => batch.push(r),
                        None => break,
                    },
                    _ = stop.cancelled() => break,
                }
                self.fill(&mut batch, &stop).await;
            }
            let link = tokio::select! {
                l = self.link.wait_for(Option::is_some) => match l {
                    Ok(l) => l.clone(),
                    Err(_) => break,
                },
                _ = stop.cancelled() => break,
            };
            let Some(link) = link else { continue };
            match self.send(&link, &batch).await {
                Ok(()) => {
                    self.sent(&mut batch);
                    backoff.reset();
                }
                Err(e) => {
                    tracing::warn!(error = ?e.to_string(), reports = batch.reports.len(), "failed-trigger reports not delivered; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = stop.cancelled() => break,
                    }
                }
            }
        }
        self.flush(batch, final_flush).await;
    }

    /// Adds queued reports to `batch` until it is full or the linger time passed.
    async fn fill(&mut self, batch: &mut Batch, stop: &CancellationToken) {
        let linger = tokio::time::sleep(self.settings.linger);
        tokio::pin!(linger);
        while !self.full(batch) {
            tokio::select! {
                next = self.rx.recv() => match next {
                    Some(r) => batch.push(r),
                    None => return,
                },
                _ = &mut linger => return,
                _ = stop.cancelled() => return,
            }
        }
    }

    fn full(&self, batch: &Batch) -> bool {
        batch.reports.len() >= self.settings.batch_reports
            || batch.bytes >= self.settings.batch_bytes
    }

    /// One `ReportFailedTriggers` call; a rejected token is exchanged again once.
    async fn send(&self, link: &Link, batch: &Batch) -> Result<(), tonic::Status> {
        let call = |bearer: String| {
            let mut client = ConfigDistributionServiceClient::new(link.channel.clone());
            let mut request = tonic::Request::new(ReportFailedTriggersRequest {
                data_plane_id: self.settings.data_plane_id.clone(),
                reports: batch.reports.clone(),
            });
            request.set_timeout(self.settings.call_timeout);
            let header = bearer.parse();
            async move {
                let header = header.map_err(|_| {
                    tonic::Status::unauthenticated("the token cannot be sent as a header")
                })?;
                request.metadata_mut().insert("authorization", header);
                let answer = tokio::time::timeout(
                    self.settings.call_timeout,
                    client.report_failed_triggers(request),
                )
                .await
                .map_err(|_| tonic::Status::deadline_exceeded("report call timed out"))??;
                let answer = answer.into_inner();
                if answer.rejected > 0 {
                    tracing::warn!(
                        rejected = answer.rejected,
                        "the control plane rejected failed-trigger reports (webhook unknown or out of scope)"
                    );
                }
                Ok::<(), tonic::Status>(())
            }
        };
        match call(link.bearer.clone()).await {
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                let fresh = self.credentials.bearer(link.channel.clone()).await?;
                call(format!("Bearer {fresh}")).await
            }
            other => other,
        }
    }

    fn sent(&self, batch: &mut Batch) {
        self.queued_bytes.fetch_sub(batch.bytes, Ordering::AcqRel);
        self.metrics
            .failed_trigger_report("sent", batch.reports.len() as u64);
        self.metrics
            .failed_trigger_queue(self.queued_bytes.load(Ordering::Acquire));
        *batch = Batch::default();
    }

    /// At shutdown: what is queued goes out over the last link within `budget`; the rest is counted
    /// as dropped.
    async fn flush(mut self, mut batch: Batch, budget: Duration) {
        self.rx.close();
        let deadline = tokio::time::Instant::now() + budget;
        let link = self.link.borrow().clone();
        loop {
            while !self.full(&batch) {
                match self.rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            if batch.reports.is_empty() {
                return;
            }
            let delivered = match &link {
                Some(link) => tokio::time::timeout_at(deadline, self.send(link, &batch))
                    .await
                    .is_ok_and(|r| r.is_ok()),
                None => false,
            };
            if delivered {
                self.sent(&mut batch);
                continue;
            }
            let mut dropped = batch.reports.len() as u64;
            while self.rx.try_recv().is_ok() {
                dropped += 1;
            }
            self.metrics.failed_trigger_report("dropped", dropped);
            tracing::warn!(
                dropped,
                "failed-trigger reports dropped at shutdown: the control plane could not be reached in time"
            );
            return;
        }
    }
}
