//! Failed-trigger reporting (SPEC §2): every rejection after routing and every publish failure is
//! turned into a `FailedTriggerReport` on the request path (headers masked, payload capped), queued
//! in a bounded buffer, and sent to the control plane in batches over the config stream's
//! connection. The request path never waits: a full buffer drops the report and counts it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gateway_proto::v1::config_distribution_service_client::ConfigDistributionServiceClient;
use gateway_proto::v1::{FailedTriggerReport, HttpHeader, ReportFailedTriggersRequest};
use gateway_shared::redact::mask_header_value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::client::{Credentials, Link};
use crate::envelope::canonical_header_name;
use crate::metrics::Metrics;
use crate::reporter::{Rejection, RejectionReporter};

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
}

/// The sending half, run by [`ReportSender::run`].
pub struct ReportSender {
    rx: mpsc::UnboundedReceiver<(FailedTriggerReport, usize)>,
    queued_bytes: Arc<AtomicUsize>,
    settings: ReportSettings,
    metrics: Arc<Metrics>,
    link: watch::Receiver<Option<Link>>,
    credentials: Arc<dyn Credentials>,
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

/// How long shutdown spends sending the reports still queued.
pub const FINAL_FLUSH: Duration = Duration::from_secs(5);

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

/// Fixed weight of a report besides its payload and headers.
const REPORT_OVERHEAD: usize = 512;

/// The report for `rejection`, and its weight in bytes.
fn build(rejection: &Rejection<'_>, max_payload: usize) -> (FailedTriggerReport, usize) {
    let mut weight = REPORT_OVERHEAD;
    let headers: Vec<HttpHeader> = rejection
        .headers
        .keys()
        .map(|name| {
            let values: Vec<String> = rejection
                .headers
                .get_all(name)
                .iter()
                .map(|v| {
                    mask_header_value(name.as_str(), &String::from_utf8_lossy(v.as_bytes()))
                        .into_owned()
                })
                .collect();
            weight += name.as_str().len() + values.iter().map(String::len).sum::<usize>();
            HttpHeader {
                name: canonical_header_name(name.as_str()).into_owned(),
                values,
            }
        })
        .collect();
    let (payload, payload_size, payload_complete) = match rejection.body {
        Some(body) => {
            let kept = body.len().min(max_payload);
            (body[..kept].to_vec(), body.len(), kept == body.len())
        }
        None => (Vec::new(), 0, false),
    };
    weight += payload.len();
    let route = rejection.route;
    let detail = detail_of(rejection);
    let report = FailedTriggerReport {
        report_id: uuid::Uuid::now_v7().to_string(),
        organization_id: route.key.organization_id.to_string(),
        workspace_id: route.key.workspace_id.to_string(),
        app_id: route.key.app_id.to_string(),
        webhook_id: route.key.webhook_id.to_string(),
        provider: gateway_proto::convert::provider_to_proto(route.provider) as i32,
        received_at: Some(prost_types::Timestamp::from(rejection.received_at)),
        reason_code: rejection.code.to_owned(),
        detail,
        http_status: u32::from(rejection.status.as_u16()),
        request_id: rejection.request_id.to_owned(),
        method: rejection.method.to_string(),
        headers,
        payload,
        payload_size: payload_size as u64,
        payload_complete,
    };
    (report, weight)
}

/// Operator detail of a rejection: the signature failure kind, the JSON position, the broker
/// error. Never a secret (none of these carry one).
fn detail_of(rejection: &Rejection<'_>) -> String {
    use crate::error::IngestError;
    match rejection.error {
        IngestError::SignatureInvalid(kind) => kind.as_str().to_owned(),
        IngestError::InvalidJson(d)
        | IngestError::CorrelationUnresolved(d)
        | IngestError::BrokerUnavailable { reason: d } => d.clone(),
        IngestError::PayloadTooLarge { limit } => format!("limit {limit} bytes"),
        other => other.to_string(),
    }
}

impl RejectionReporter for ReportQueue {
    fn report(&self, rejection: &Rejection<'_>) {
        let (report, weight) = build(rejection, self.settings.max_payload_bytes);
        let reserved = self
            .queued_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q + weight <= self.settings.buffer_bytes).then_some(q + weight)
            });
        if reserved.is_err() || self.tx.send((report, weight)).is_err() {
            if reserved.is_ok() {
                self.queued_bytes.fetch_sub(weight, Ordering::AcqRel);
            }
            self.metrics.failed_trigger_report("dropped", 1);
            tracing::warn!(
                request_id = rejection.request_id,
                "failed-trigger report dropped: the report buffer is full or closed"
            );
            return;
        }
        self.metrics
            .failed_trigger_queue(self.queued_bytes.load(Ordering::Acquire));
    }
}

impl ReportSender {
    /// Sends batches until `stop`; then sends what is queued (each call bounded by the call
    /// timeout, all of it by `final_flush`) and counts the rest as dropped.
    pub async fn run(mut self, stop: CancellationToken, final_flush: Duration) {
        let mut backoff = Duration::from_millis(200);
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
                    backoff = Duration::from_millis(200);
                }
                Err(e) => {
                    tracing::warn!(error = %e, reports = batch.reports.len(), "failed-trigger reports not delivered; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use bytes::Bytes;
    use gateway_shared::snapshot::{ProviderSecrets, TriggerBinding};
    use gateway_shared::{AppId, OrganizationId, Provider, TriggerType, WebhookId, WorkspaceId};
    use http::{HeaderMap, HeaderValue, Method, StatusCode};

    use super::*;
    use crate::error::{IngestError, SignatureFailure};
    use crate::routing::{Route, RouteKey};

    fn route() -> Route {
        Route {
            key: RouteKey {
                organization_id: OrganizationId::new_random(),
                workspace_id: WorkspaceId::new_random(),
                app_id: AppId::new_random(),
                webhook_id: WebhookId::new_random(),
            },
            provider: Provider::Slack,
            api_keys: Vec::new(),
            secrets: ProviderSecrets::default(),
            bindings: vec![TriggerBinding {
                trigger_type: TriggerType::StartProcess,
                process_definition_id: "p".into(),
                node_id: "n".into(),
                process_correlation_key: None,
                process_key: None,
            }],
            correlation: None,
            has_resume: false,
            include_raw_body: false,
        }
    }

    fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        h.insert("x-slack-signature", HeaderValue::from_static("v0=deadbeef"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        h.insert(
            "x-original-uri",
            HeaderValue::from_static("/webhooks/incoming/slack/a?flowxApiKey=topsecret"),
        );
        h
    }

    fn rejection<'a>(
        route: &'a Route,
        error: &'a IngestError,
        headers: &'a HeaderMap,
        body: Option<&'a Bytes>,
    ) -> Rejection<'a> {
        let (status, code) = error.status_and_code();
        Rejection {
            route,
            error,
            status,
            code,
            method: &Method::POST,
            headers,
            body,
            request_id: "req-1",
            received_at: SystemTime::now(),
        }
    }

    #[test]
    fn reports_mask_credentials_and_cap_the_payload() {
        let route = route();
        let error = IngestError::SignatureInvalid(SignatureFailure::Mismatch);
        let headers = headers();
        let body = Bytes::from_static(br#"{"event":"0123456789"}"#);
        let (report, weight) = build(&rejection(&route, &error, &headers, Some(&body)), 8);
        assert_eq!(report.reason_code, "SIGNATURE_INVALID");
        assert_eq!(report.detail, "mismatch");
        assert_eq!(
            report.http_status,
            u32::from(StatusCode::UNAUTHORIZED.as_u16())
        );
        assert_eq!(report.webhook_id, route.key.webhook_id.to_string());
        assert_eq!(report.payload, &body[..8]);
        assert_eq!(report.payload_size, body.len() as u64);
        assert!(!report.payload_complete, "a cut payload is not complete");
        assert!(weight >= REPORT_OVERHEAD + 8);
        let text = format!("{:?}", report.headers);
        for secret in ["Bearer abc", "deadbeef", "topsecret"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let forwarded = report
            .headers
            .iter()
            .find(|h| h.name == "X-Forwarded-For")
            .expect("other headers are kept with every value");
        assert_eq!(forwarded.values, ["10.0.0.1", "10.0.0.2"]);

        let (whole, _) = build(&rejection(&route, &error, &headers, Some(&body)), 1024);
        assert!(whole.payload_complete);
        assert_eq!(whole.payload, &body[..]);
        let unread = IngestError::PayloadTooLarge { limit: 10 };
        let (none, _) = build(&rejection(&route, &unread, &headers, None), 1024);
        assert!(none.payload.is_empty() && !none.payload_complete && none.payload_size == 0);
        assert_eq!(none.reason_code, "PAYLOAD_TOO_LARGE");
    }

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
