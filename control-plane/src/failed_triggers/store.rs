//! Failed-trigger rows: inserting reports, listing an app's rows newest first with keyset paging,
//! and loading one row within the caller's scope.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_shared::Provider;

use gateway_proto::convert::provider_to_proto;

use crate::api::{invalid_token, timestamp};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::reasons;
use crate::schema::{failed_triggers, webhooks};
use crate::scope::{in_app, AppScope};

/// One stored header: the JSON shape of the `headers` column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredHeader {
    /// Canonical name.
    pub name: String,
    /// Values (masked).
    pub values: Vec<String>,
}

/// A row to insert.
#[derive(Insertable)]
#[diesel(table_name = failed_triggers)]
pub struct NewFailedTrigger {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub workspace_id: Uuid,
    pub app_id: Uuid,
    pub webhook_id: Uuid,
    pub provider: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub reason_code: String,
    pub detail: String,
    pub http_status: i32,
    pub request_id: String,
    pub data_plane_id: String,
    pub method: String,
    pub headers: serde_json::Value,
    pub payload: Vec<u8>,
    pub payload_size: i64,
    pub payload_truncated: bool,
    pub replayable: bool,
}

/// A stored row without its headers and payload (what List shows).
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = failed_triggers)]
pub struct FailedTriggerMeta {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub workspace_id: Uuid,
    pub app_id: Uuid,
    pub webhook_id: Uuid,
    pub provider: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub reason_code: String,
    pub detail: String,
    pub http_status: i32,
    pub request_id: String,
    pub data_plane_id: String,
    pub method: String,
    pub payload_size: i64,
    pub payload_truncated: bool,
    pub replayable: bool,
    pub replayed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub replay_event_id: Option<Uuid>,
    pub replay_count: i32,
}

/// Headers and payload of a row (what Get adds).
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = failed_triggers)]
pub struct FailedTriggerBody {
    pub headers: serde_json::Value,
    pub payload: Vec<u8>,
}

impl FailedTriggerBody {
    /// The stored headers (a malformed column is an internal error).
    pub fn headers(&self) -> ApiResult<Vec<StoredHeader>> {
        serde_json::from_value(self.headers.clone())
            .map_err(|e| ApiError::internal("stored failed-trigger headers", e))
    }
}

/// Inserts `rows`; returns how many were new (a known id is skipped: retried batches).
pub async fn insert(conn: &mut AsyncPgConnection, rows: &[NewFailedTrigger]) -> ApiResult<usize> {
    // Postgres takes at most 65535 bind parameters per statement (18 a row).
    let mut inserted = 0;
    for chunk in rows.chunks(1000) {
        inserted += diesel::insert_into(failed_triggers::table)
            .values(chunk)
            .on_conflict(failed_triggers::id)
            .do_nothing()
            .execute(conn)
            .await?;
    }
    Ok(inserted)
}

/// Filters of a list.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Only this webhook.
    pub webhook_id: Option<Uuid>,
    /// Only these reason codes (any of them); empty = all.
    pub reason_codes: Vec<String>,
    /// Received at or after.
    pub received_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Received before.
    pub received_before: Option<chrono::DateTime<chrono::Utc>>,
}

/// The keyset position of a row in newest-first order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// `received_at` in microseconds (Postgres' precision, so the comparison is exact).
    pub received_micros: i64,
    /// Tie-breaker.
    pub id: Uuid,
}

impl Cursor {
    /// The position of `row`.
    pub fn of(row: &FailedTriggerMeta) -> Self {
        Self {
            received_micros: row.received_at.timestamp_micros(),
            id: row.id,
        }
    }

    /// The token text (base64-wrapped by [`crate::api::Page`]).
    pub fn encode(&self) -> String {
        format!("{}/{}", self.received_micros, self.id)
    }
}

/// A token text that [`Cursor::encode`] did not make.
#[derive(Debug)]
pub struct NotACursor;

impl std::str::FromStr for Cursor {
    type Err = NotACursor;

    /// Parses a token text made by [`Cursor::encode`].
    fn from_str(text: &str) -> Result<Self, NotACursor> {
        let (micros, id) = text.split_once('/').ok_or(NotACursor)?;
        Ok(Self {
            received_micros: micros.parse().map_err(|_| NotACursor)?,
            id: Uuid::parse_str(id).map_err(|_| NotACursor)?,
        })
    }
}

/// One page of the app's rows, newest first, with each webhook's name; `limit` rows at most.
pub async fn list(
    conn: &mut AsyncPgConnection,
    scope: AppScope,
    filter: &ListFilter,
    after: Option<Cursor>,
    limit: i64,
) -> ApiResult<Vec<(FailedTriggerMeta, String)>> {
    let mut query = failed_triggers::table
        .inner_join(webhooks::table)
        .filter(in_app!(failed_triggers, scope))
        .select((FailedTriggerMeta::as_select(), webhooks::name))
        .order((
            failed_triggers::received_at.desc(),
            failed_triggers::id.desc(),
        ))
        .limit(limit)
        .into_boxed();
    if let Some(w) = filter.webhook_id {
        query = query.filter(failed_triggers::webhook_id.eq(w));
    }
    if !filter.reason_codes.is_empty() {
        query = query.filter(failed_triggers::reason_code.eq_any(filter.reason_codes.clone()));
    }
    if let Some(t) = filter.received_after {
        query = query.filter(failed_triggers::received_at.ge(t));
    }
    if let Some(t) = filter.received_before {
        query = query.filter(failed_triggers::received_at.lt(t));
    }
    if let Some(c) = after {
        let t =
            chrono::DateTime::from_timestamp_micros(c.received_micros).ok_or_else(invalid_token)?;
        query = query.filter(
            failed_triggers::received_at
                .lt(t)
                .or(failed_triggers::received_at
                    .eq(t)
                    .and(failed_triggers::id.lt(c.id))),
        );
    }
    Ok(query.load(conn).await?)
}

/// The failed trigger was not found in the caller's scope.
pub fn not_found() -> ApiError {
    ApiError::NotFound {
        reason: reasons::FAILED_TRIGGER_NOT_FOUND,
        what: "failed trigger",
    }
}

/// Row `id` with its webhook's name and its headers and payload, if it is in the caller's scope
/// (else NOT_FOUND: other tenants' ids are not revealed); `for_update` locks it for the rest of the
/// transaction.
pub async fn load(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
    for_update: bool,
) -> ApiResult<(FailedTriggerMeta, String, FailedTriggerBody)> {
    if for_update {
        // Only the failed trigger is locked (diesel has no FOR UPDATE OF): the webhook row is read
        // as it is, so replays do not hold up changes to the webhook.
        failed_triggers::table
            .find(id)
            .select(failed_triggers::id)
            .for_update()
            .first::<Uuid>(conn)
            .await
            .optional()?;
    }
    let row: Option<(FailedTriggerMeta, String, FailedTriggerBody)> = failed_triggers::table
        .inner_join(webhooks::table)
        .filter(failed_triggers::id.eq(id))
        .filter(failed_triggers::organization_id.eq(caller.organization_id.0))
        .select((
            FailedTriggerMeta::as_select(),
            webhooks::name,
            FailedTriggerBody::as_select(),
        ))
        .first(conn)
        .await
        .optional()?;
    match row {
        Some(row) if caller.sees_workspace(row.0.workspace_id) => Ok(row),
        _ => Err(not_found()),
    }
}

/// The API view; headers and payload only when `body` is given (Get, Replay).
pub fn to_proto(
    meta: &FailedTriggerMeta,
    webhook_name: &str,
    body: Option<&FailedTriggerBody>,
) -> ApiResult<pb::FailedTrigger> {
    let provider = Provider::from_name(&meta.provider)
        .ok_or_else(|| ApiError::internal("stored provider", &meta.provider))?;
    let (headers, payload) = match body {
        Some(b) => {
            let headers = b
                .headers()?
                .into_iter()
                .map(|h| pb::HttpHeader {
                    name: h.name,
                    values: h.values,
                })
                .collect();
            let payload = match std::str::from_utf8(&b.payload) {
                Ok(text) => pb::failed_trigger::Payload::PayloadText(text.to_owned()),
                Err(_) => pb::failed_trigger::Payload::PayloadBytes(b.payload.clone()),
            };
            (headers, Some(payload))
        }
        None => (Vec::new(), None),
    };
    Ok(pb::FailedTrigger {
        id: meta.id.to_string(),
        app: Some(
            AppScope::from_uuids(meta.organization_id, meta.workspace_id, meta.app_id).to_proto(),
        ),
        webhook_id: meta.webhook_id.to_string(),
        webhook_name: webhook_name.to_owned(),
        provider: provider_to_proto(provider) as i32,
        received_at: Some(timestamp(meta.received_at)),
        reason_code: meta.reason_code.clone(),
        detail: meta.detail.clone(),
        http_status: u32::try_from(meta.http_status).unwrap_or(0),
        request_id: meta.request_id.clone(),
        data_plane_id: meta.data_plane_id.clone(),
        method: meta.method.clone(),
        headers,
        payload,
        payload_size: u64::try_from(meta.payload_size).unwrap_or(0),
        payload_truncated: meta.payload_truncated,
        replayable: meta.replayable && super::replay::passed_verification(&meta.reason_code),
        replayed_at: meta.replayed_at.map(timestamp),
        replay_event_id: meta
            .replay_event_id
            .map(|e| e.to_string())
            .unwrap_or_default(),
        replay_count: u32::try_from(meta.replay_count).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_tokens_are_refused() {
        let c = Cursor {
            received_micros: 1_763_800_000_123_456,
            id: Uuid::now_v7(),
        };
        assert_eq!(c.encode().parse::<Cursor>().ok(), Some(c));
        assert!("webhook-name".parse::<Cursor>().is_err());
        assert!("12/not-a-uuid".parse::<Cursor>().is_err());
    }
}
