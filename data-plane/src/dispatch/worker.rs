//! One invocation record from read to acknowledged result (docs/dispatcher.md, "Invocations").

use std::sync::Arc;
use std::time::Instant;

use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::Message;
use tokio_util::sync::CancellationToken;

use super::call::Caller;
use super::invocation::{self, Malformed};
use super::metrics::DispatchMetrics;
use super::outcome::{Outcome, ResultRecord, Status};
use super::reply::Replies;

/// Runs invocation records and publishes their results.
pub struct Worker {
    /// Runs the invocation.
    pub caller: Caller,
    /// Publishes results.
    pub replies: Replies,
    /// Metrics.
    pub metrics: Arc<DispatchMetrics>,
}

impl Worker {
    /// Handles one record; `true` when its offset may be committed (its result was acknowledged,
    /// or it carried no `requestId` and was skipped), `false` when `abandon` stopped it first.
    pub async fn process(&self, message: OwnedMessage, abandon: &CancellationToken) -> bool {
        let started = Instant::now();
        self.metrics.in_flight().inc();
        let done = self.handle(&message, started, abandon).await;
        self.metrics.in_flight().dec();
        done
    }

    async fn handle(
        &self,
        message: &OwnedMessage,
        started: Instant,
        abandon: &CancellationToken,
    ) -> bool {
        let headers = message.headers();
        let parsed = invocation::parse(message.payload(), |name| {
            headers?
                .iter()
                .find(|h| h.key.eq_ignore_ascii_case(name))
                .and_then(|h| h.value)
        });
        let (request_id, action_name, label, outcome) = match parsed {
            Ok(invocation) => {
                let outcome = self.caller.run(&invocation).await;
                // Names that match no action come from the record: not a metric label.
                let label = if outcome.status == Status::UnknownAction {
                    "unknown".to_owned()
                } else {
                    invocation.action_name.clone()
                };
                (
                    invocation.request_id,
                    invocation.action_name,
                    label,
                    outcome,
                )
            }
            Err(Malformed::Invalid {
                request_id,
                action_name,
                error,
            }) => (
                request_id,
                action_name,
                "unknown".to_owned(),
                Outcome::without_call(Status::Failed, format!("invalid invocation: {error}")),
            ),
            Err(skip @ Malformed::Unanswerable(_)) => {
                self.metrics.skipped(skip.skip_reason());
                tracing::warn!(
                    partition = message.partition(),
                    offset = message.offset(),
                    reason = %skip,
                    "invocation record without a usable requestId skipped"
                );
                return true;
            }
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let record = ResultRecord::new(&request_id, &action_name, &outcome, duration_ms).to_bytes();
        let acked = self
            .replies
            .publish(message.key(), &copy_headers(message), &record, abandon)
            .await;
        if acked {
            self.metrics.invocation(&label, outcome.status);
            tracing::info!(
                request_id = %request_id,
                action = %action_name,
                status = outcome.status.as_str(),
                attempts = outcome.attempts,
                http_status = outcome.http_status,
                duration_ms,
                "invocation finished"
            );
        }
        acked
    }
}

/// Every header of the invocation record, in order, for its result.
fn copy_headers(message: &OwnedMessage) -> OwnedHeaders {
    let mut out = OwnedHeaders::new();
    if let Some(headers) = message.headers() {
        for h in headers.iter() {
            out = out.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    out
}
