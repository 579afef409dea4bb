//! ReportFailedTriggers: what a data plane reports is checked against the webhook it names (which
//! must exist inside the token's scope), masked again, capped in size, and stored idempotently.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tracing::instrument;
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_shared::redact::mask_header_value;

use super::store::{self, NewFailedTrigger, StoredHeader};
use super::FailedTriggers;
use crate::auth::{Caller, Permission};
use crate::error::ApiResult;
use crate::schema::webhooks;

/// Largest ReportFailedTriggers message the server decodes; data planes keep batches below it.
pub const MAX_REPORT_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

// Caps on what one report may store, so a report cannot blow up storage.
const MAX_DETAIL: usize = 1024;
const MAX_REQUEST_ID: usize = 256;
const MAX_METHOD: usize = 16;
const MAX_REASON: usize = 64;
const MAX_DATA_PLANE_ID: usize = 253;
const MAX_HEADERS: usize = 100;
const MAX_VALUES_PER_HEADER: usize = 16;
const MAX_HEADER_NAME: usize = 256;
const MAX_HEADER_VALUE: usize = 4096;
/// The most header bytes a stored failed trigger holds (names and values).
pub(super) const MAX_STORED_HEADER_BYTES: usize =
    MAX_HEADERS * (MAX_HEADER_NAME + MAX_HEADER_VALUE);

/// At most `max` bytes of `text` (cut on a character boundary), without NUL characters, which
/// Postgres text and jsonb columns refuse.
fn clean(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].replace('\0', "")
}

fn valid_reason(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_REASON
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Masks (again: the data plane masks too) and caps the headers.
fn headers(input: &[pb::HttpHeader]) -> Vec<StoredHeader> {
    input
        .iter()
        .take(MAX_HEADERS)
        .map(|h| {
            let name = clean(&h.name, MAX_HEADER_NAME);
            let values = h
                .values
                .iter()
                .take(MAX_VALUES_PER_HEADER)
                .map(|v| clean(&mask_header_value(&name, v), MAX_HEADER_VALUE))
                .collect();
            StoredHeader { name, values }
        })
        .collect()
}

/// The webhook columns a report is checked against.
#[derive(Queryable)]
struct Owner {
    organization_id: Uuid,
    workspace_id: Uuid,
    app_id: Uuid,
    provider: String,
}

fn parse(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text.trim()).ok()
}

impl FailedTriggers {
    /// Stores the reports of a batch that name webhooks in the caller's scope.
    #[instrument(skip_all, fields(reports = req.reports.len()))]
    pub async fn report(
        &self,
        caller: &Caller,
        req: pb::ReportFailedTriggersRequest,
    ) -> ApiResult<pb::ReportFailedTriggersResponse> {
        caller.require(Permission::ReceiveConfig)?;
        let ids: Vec<Uuid> = req
            .reports
            .iter()
            .filter_map(|r| parse(&r.webhook_id))
            .collect();
        let mut conn = self.conn().await?;
        let owners: HashMap<Uuid, Owner> = if ids.is_empty() {
            HashMap::new()
        } else {
            webhooks::table
                .filter(webhooks::id.eq_any(&ids))
                .filter(webhooks::organization_id.eq(caller.organization_id.0))
                .select((
                    webhooks::id,
                    (
                        webhooks::organization_id,
                        webhooks::workspace_id,
                        webhooks::app_id,
                        webhooks::provider,
                    ),
                ))
                .load::<(Uuid, Owner)>(&mut conn)
                .await?
                .into_iter()
                .collect()
        };
        let data_plane_id = clean(&req.data_plane_id, MAX_DATA_PLANE_ID);
        let mut rows = Vec::with_capacity(req.reports.len());
        for r in &req.reports {
            match self.row(caller, &owners, &data_plane_id, r) {
                Some(row) => rows.push(row),
                None => tracing::debug!(
                    webhook_id = %clean(&r.webhook_id, 64),
                    "failed-trigger report rejected"
                ),
            }
        }
        let valid = rows.len();
        let stored = store::insert(&mut conn, &rows).await?;
        let rejected = req.reports.len() - valid;
        self.metrics.reports("stored", stored as u64);
        self.metrics.reports("duplicate", (valid - stored) as u64);
        self.metrics.reports("rejected", rejected as u64);
        if rejected > 0 {
            tracing::warn!(rejected, stored, "failed-trigger reports rejected");
        }
        Ok(pb::ReportFailedTriggersResponse {
            accepted: u32::try_from(valid).unwrap_or(u32::MAX),
            rejected: u32::try_from(rejected).unwrap_or(u32::MAX),
        })
    }

    /// The row to store for report `r`, or `None` when it must be rejected: malformed, an unknown
    /// webhook, one outside the caller's scope, or ids that disagree with the webhook's.
    fn row(
        &self,
        caller: &Caller,
        owners: &HashMap<Uuid, Owner>,
        data_plane_id: &str,
        r: &pb::FailedTriggerReport,
    ) -> Option<NewFailedTrigger> {
        let id = parse(&r.report_id)?;
        let webhook_id = parse(&r.webhook_id)?;
        let owner = owners.get(&webhook_id)?;
        let in_scope = caller.sees_workspace(owner.workspace_id);
        let ids_match = parse(&r.organization_id) == Some(owner.organization_id)
            && parse(&r.workspace_id) == Some(owner.workspace_id)
            && parse(&r.app_id) == Some(owner.app_id);
        if !in_scope || !ids_match || !valid_reason(&r.reason_code) {
            return None;
        }
        if !(100..=599).contains(&r.http_status) {
            return None;
        }
        let received_at = match &r.received_at {
            Some(t) => chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)?,
            None => chrono::Utc::now(),
        };
        let whole = r.payload_complete && r.payload.len() as u64 >= r.payload_size;
        let kept = r.payload.len().min(self.max_payload_bytes);
        let truncated = !whole || kept < r.payload.len();
        let headers = serde_json::to_value(headers(&r.headers)).ok()?;
        Some(NewFailedTrigger {
            id,
            organization_id: owner.organization_id,
            workspace_id: owner.workspace_id,
            app_id: owner.app_id,
            webhook_id,
            // The registration's provider, not the report's: it is the authority.
            provider: owner.provider.clone(),
            received_at,
            reason_code: r.reason_code.clone(),
            detail: clean(&r.detail, MAX_DETAIL),
            http_status: i32::try_from(r.http_status).ok()?,
            request_id: clean(&r.request_id, MAX_REQUEST_ID),
            data_plane_id: data_plane_id.to_owned(),
            method: clean(&r.method, MAX_METHOD),
            headers,
            payload: r.payload[..kept].to_vec(),
            payload_size: i64::try_from(r.payload_size.max(r.payload.len() as u64)).ok()?,
            payload_truncated: truncated,
            replayable: !truncated && super::replay::passed_verification(&r.reason_code),
            suppressed_count: if store::is_unauthenticated(&r.reason_code) {
                i64::try_from(r.suppressed_count).unwrap_or(i64::MAX)
            } else {
                0
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_cuts_on_char_boundaries_and_drops_nul() {
        assert_eq!(clean("héllo", 2), "h");
        assert_eq!(clean("a\0b", 10), "ab");
        assert_eq!(clean("abc", 10), "abc");
    }

    #[test]
    fn reasons_are_upper_snake_case() {
        assert!(valid_reason("SIGNATURE_INVALID"));
        assert!(!valid_reason(""));
        assert!(!valid_reason("drop table"));
        assert!(!valid_reason(&"A".repeat(65)));
    }

    #[test]
    fn headers_are_masked_again_and_capped() {
        let h = headers(&[
            pb::HttpHeader {
                name: "Authorization".into(),
                values: vec!["Bearer x".into()],
            },
            pb::HttpHeader {
                name: "X-Original-URI".into(),
                values: vec!["/p?flowxApiKey=k".into()],
            },
        ]);
        assert_eq!(h[0].values, vec![gateway_shared::redact::MASK.to_owned()]);
        assert!(!h[1].values[0].contains("=k"));
        let many: Vec<_> = (0..500)
            .map(|i| pb::HttpHeader {
                name: format!("X-{i}"),
                values: vec!["v".repeat(10_000)],
            })
            .collect();
        let h = headers(&many);
        assert_eq!(h.len(), MAX_HEADERS);
        assert_eq!(h[0].values[0].len(), MAX_HEADER_VALUE);
    }
}
