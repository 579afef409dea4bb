//! ListFailedTriggers and GetFailedTrigger: scoped like every read (VIEWER and up, the caller's
//! organization and workspace); a row outside the scope is NOT_FOUND.

use tracing::instrument;

use gateway_proto::v1 as pb;

use super::store::{self, Cursor, ListFilter};
use super::FailedTriggers;
use crate::api::{time_field, Page};
use crate::auth::{Caller, Permission};
use crate::error::ApiResult;
use crate::scope::{parse_optional_uuid, parse_uuid};

impl FailedTriggers {
    /// One page of an app's failed triggers, newest first, without headers and payload.
    #[instrument(skip_all)]
    pub async fn list(
        &self,
        caller: &Caller,
        req: pb::ListFailedTriggersRequest,
    ) -> ApiResult<pb::ListFailedTriggersResponse> {
        let scope = caller.require_app(Permission::Read, req.app.as_ref())?;
        let page = Page::parse(req.page_size, &req.page_token)?;
        let after = page.after_as::<Cursor>()?;
        let webhook_id = parse_optional_uuid(&req.webhook_id, "webhook_id")?;
        let filter = ListFilter {
            webhook_id,
            reason_codes: req
                .reason_codes
                .iter()
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect(),
            received_after: time_field(req.received_after.as_ref(), "received_after")?,
            received_before: time_field(req.received_before.as_ref(), "received_before")?,
        };
        let mut conn = self.conn().await?;
        let mut rows = store::list(&mut conn, scope, &filter, after, page.fetch()).await?;
        let next_page_token = page.finish(&mut rows, |(m, _)| Cursor::of(m).encode());
        Ok(pb::ListFailedTriggersResponse {
            failed_triggers: rows
                .iter()
                .map(|(m, name)| store::to_proto(m, name, None))
                .collect::<ApiResult<_>>()?,
            next_page_token,
        })
    }

    /// One failed trigger with its masked headers and stored payload.
    #[instrument(skip_all)]
    pub async fn get(
        &self,
        caller: &Caller,
        req: pb::GetFailedTriggerRequest,
    ) -> ApiResult<pb::FailedTrigger> {
        caller.require(Permission::Read)?;
        let id = parse_uuid(&req.id, "id")?;
        let mut conn = self.conn().await?;
        let (meta, name, body) = store::load(&mut conn, caller, id, false).await?;
        store::to_proto(&meta, &name, Some(&body))
    }
}
