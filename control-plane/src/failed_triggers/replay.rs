//! ReplayFailedTrigger: publishes a stored payload again as a new event, with the webhook's current
//! bindings, through the control plane's own producer (acks=all, idempotent, a delivery deadline).

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::ser::{Serialize, SerializeMap, Serializer};
use tracing::instrument;
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_shared::envelope::{decode_payload, Event, EventSource, Record};
use gateway_shared::{CorrelationPath, TriggerType, WebhookId};

use super::store::{self, FailedTriggerMeta, StoredHeader};
use super::{FailedTriggerArgs, FailedTriggers};
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::reasons;
use crate::schema::failed_triggers;
use crate::scope::parse_uuid;

/// The replay producer.
pub struct Replayer {
    producer: FutureProducer,
    topic: String,
    deadline: Duration,
}

/// The producer's `message.max.bytes`: room for the largest record a replay can build — the
/// longest payload kept, its base64 copy (`include_raw_body`), the stored headers as JSON (at most
/// [`super::report::MAX_STORED_HEADER_BYTES`], each byte at most 6 once escaped) and the envelope —
/// and never below librdkafka's default. The topic's own `max.message.bytes` must be as large
/// (docs/control-plane.md, "Failed triggers").
fn replay_message_max_bytes(max_payload_bytes: usize) -> usize {
    let raw_body = max_payload_bytes.div_ceil(3).saturating_mul(4);
    max_payload_bytes
        .saturating_add(raw_body)
        .saturating_add(super::report::MAX_STORED_HEADER_BYTES.saturating_mul(6))
        .saturating_add(16 * 1024)
        .max(1_000_000)
}

impl Replayer {
    /// Creates the producer when Kafka is configured (no network I/O yet: librdkafka connects in
    /// the background). Called at start-up, never on a request.
    pub fn new(args: &FailedTriggerArgs) -> anyhow::Result<Option<Replayer>> {
        let Some(bootstrap) = &args.kafka_bootstrap else {
            return Ok(None);
        };
        let mut cc = ClientConfig::new();
        for (k, v) in &args.kafka_properties {
            cc.set(k, v);
        }
        cc.set("bootstrap.servers", bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set(
                "message.max.bytes",
                replay_message_max_bytes(args.failed_trigger_max_payload_bytes).to_string(),
            )
            // librdkafka gives up at the same deadline the RPC waits, so a replay answered
            // UNAVAILABLE is not written later.
            .set(
                "message.timeout.ms",
                args.kafka_produce_timeout.as_millis().to_string(),
            );
        if !args.kafka_properties.iter().any(|(k, _)| k == "client.id") {
            cc.set("client.id", "webhook-gateway-control-plane");
        }
        Ok(Some(Replayer {
            producer: cc.create()?,
            topic: args.kafka_topic.clone(),
            deadline: args.kafka_produce_timeout,
        }))
    }

    /// Publishes one record and waits for the broker's acknowledgement or the deadline.
    pub async fn publish(&self, record: &Record) -> Result<(), String> {
        let mut h = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in &record.headers {
            h = h.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let record = FutureRecord::to(&self.topic)
            .key(record.key.as_bytes())
            .payload(&record.value)
            .headers(h);
        let outer = self.deadline + Duration::from_millis(500);
        match tokio::time::timeout(outer, self.producer.send(record, self.deadline)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no broker acknowledgement within {:?}",
                self.deadline
            )),
        }
    }
}

/// The stored (masked) headers as the envelope's `name → [values…]` map.
struct StoredHeaders<'a>(&'a [StoredHeader]);

impl Serialize for StoredHeaders<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for h in self.0 {
            map.serialize_entry(&h.name, &h.values)?;
        }
        map.end()
    }
}

/// Kafka header naming the failed trigger a replayed event comes from.
pub const REPLAY_OF_HEADER: &str = "Fx-Replay-Of";

impl FailedTriggers {
    /// Publishes a failed trigger's payload again as a new event with the webhook's current
    /// bindings, and marks it replayed.
    #[instrument(skip_all)]
    pub async fn replay(
        &self,
        caller: &Caller,
        req: pb::ReplayFailedTriggerRequest,
    ) -> ApiResult<pb::ReplayFailedTriggerResponse> {
        caller.require(Permission::Write)?;
        let id = parse_uuid(&req.id, "id")?;
        let result = self.replay_locked(caller, id, req.force).await;
        match &result {
            Ok(r) => {
                self.metrics.replay("published");
                tracing::info!(failed_trigger_id = %id, event_id = %r.event_id, "failed trigger replayed");
            }
            Err(ApiError::BrokerUnavailable(_)) => self.metrics.replay("broker_unavailable"),
            Err(ApiError::Precondition { .. }) => self.metrics.replay("refused"),
            Err(_) => {}
        }
        result
    }

    async fn replay_locked(
        &self,
        caller: &Caller,
        id: Uuid,
        force: bool,
    ) -> ApiResult<pb::ReplayFailedTriggerResponse> {
        let replayer = self.replayer.as_ref().ok_or_else(|| {
            ApiError::precondition(
                reasons::REPLAY_NOT_CONFIGURED,
                "this control plane has no Kafka configured for replays (CP_KAFKA_BOOTSTRAP)",
            )
        })?;
        let keyring = self.keyring.clone();
        let mut conn = self.conn().await?;
        // The row stays locked until the event is acknowledged and the row marked, so two
        // concurrent replays cannot both publish.
        conn.transaction(
            async move |conn| -> ApiResult<pb::ReplayFailedTriggerResponse> {
                let (meta, name, body) = store::load(conn, caller, id, true).await?;
                caller.require_in(
                    Permission::Write,
                    gateway_shared::OrganizationId(meta.organization_id),
                    Some(gateway_shared::WorkspaceId(meta.workspace_id)),
                )?;
                refuse_unless_replayable(&meta, force)?;
                let config =
                    crate::snapshot::webhook_config(conn, &keyring, WebhookId(meta.webhook_id))
                        .await?
                        .ok_or_else(|| {
                            ApiError::precondition(
                                reasons::TRIGGER_NOT_ACTIVE,
                                "the webhook is not active: activate it before replaying",
                            )
                        })?;
                let headers = body.headers()?;
                // Steps 5 and 6 again, against the webhook's current correlation path.
                let content_type = headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-type"))
                    .and_then(|h| <[String]>::first(&h.values));
                let payload = decode_payload(content_type.map(|c| c.as_bytes()), &body.payload)
                    .map_err(|e| ApiError::precondition(reasons::INVALID_JSON, e.to_string()))?;
                let has_resume = config
                    .bindings
                    .iter()
                    .any(|b| b.trigger_type == TriggerType::ResumeProcess);
                let correlation_value = match (&config.correlation_key_path, has_resume) {
                    (Some(path), true) => Some(
                        CorrelationPath::parse(path)
                            .map_err(|e| e.to_string())
                            .and_then(|p| p.resolve(&payload.to_value()).map_err(|e| e.to_string()))
                            .map_err(|e| {
                                ApiError::precondition(reasons::CORRELATION_KEY_UNRESOLVED, e)
                            })?,
                    ),
                    _ => None,
                };
                let event_id = Uuid::now_v7();
                // dateTime stays the original ingestion time; Fx-Replay-Of marks the replay.
                let date_time = meta
                    .received_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let mut record = Event {
                    source: EventSource {
                        webhook_id: config.webhook_id,
                        organization_id: config.organization_id,
                        workspace_id: config.workspace_id,
                        app_id: config.app_id,
                        provider: config.provider,
                        bindings: &config.bindings,
                        has_resume,
                        include_raw_body: config.options.include_raw_body,
                    },
                    event_id: event_id.to_string(),
                    date_time: &date_time,
                    payload: &payload,
                    headers: StoredHeaders(&headers),
                    body: &body.payload,
                    correlation_value: correlation_value.as_deref(),
                }
                .into_record()
                .map_err(|e| ApiError::internal("replay envelope", e))?;
                record.headers.push((REPLAY_OF_HEADER, id.to_string()));
                replayer.publish(&record).await.map_err(|e| {
                    ApiError::BrokerUnavailable(anyhow::anyhow!("replay of {id}: {e}"))
                })?;
                let meta: FailedTriggerMeta = diesel::update(failed_triggers::table.find(id))
                    .set((
                        failed_triggers::replayed_at.eq(diesel::dsl::now),
                        failed_triggers::replay_event_id.eq(event_id),
                        failed_triggers::replay_count.eq(failed_triggers::replay_count + 1),
                    ))
                    .returning(FailedTriggerMeta::as_returning())
                    .get_result(conn)
                    .await?;
                Ok(pb::ReplayFailedTriggerResponse {
                    event_id: event_id.to_string(),
                    failed_trigger: Some(store::to_proto(&meta, &name, Some(&body))?),
                })
            },
        )
        .await
    }
}

/// The reason codes a data plane reports only after the request passed its API key and provider
/// checks (steps 6 to 8 of docs/data-plane.md, "Request path"). Every other code — a bad API key or
/// signature, a wrong method or provider, a body never read whole, INTERNAL, or a code this build
/// does not know — names a request whose origin was never proven, so it is never replayed.
const VERIFIED_REASONS: &[&str] = &[
    "INVALID_JSON",
    "CORRELATION_KEY_UNRESOLVED",
    "BROKER_UNAVAILABLE",
];

/// Whether a failed trigger with `reason_code` passed verification before it failed.
pub(crate) fn passed_verification(reason_code: &str) -> bool {
    VERIFIED_REASONS.contains(&reason_code)
}

/// Refuses records that never passed verification (even with `force`), records whose payload was
/// not kept whole, and repeats unless forced.
fn refuse_unless_replayable(meta: &FailedTriggerMeta, force: bool) -> ApiResult<()> {
    if !passed_verification(&meta.reason_code) {
        return Err(ApiError::precondition(
            reasons::FAILED_TRIGGER_UNVERIFIED,
            format!(
                "the request failed with {} before its API key and signature were verified, so it is never replayed (not even with force)",
                meta.reason_code
            ),
        ));
    }
    if !meta.replayable {
        return Err(ApiError::precondition(
            reasons::FAILED_TRIGGER_NOT_REPLAYABLE,
            "the payload was not kept whole (truncated or never read), so it cannot be replayed",
        ));
    }
    if meta.replay_count > 0 && !force {
        return Err(ApiError::Precondition {
            reason: reasons::FAILED_TRIGGER_ALREADY_REPLAYED,
            message: "already replayed; pass force to publish it again".into(),
            metadata: meta
                .replay_event_id
                .map(|e| ("replay_event_id", e.to_string()))
                .into_iter()
                .collect(),
        });
    }
    Ok(())
}
