//! CreateHmacKey, ListHmacKeys and RevokeHmacKey (docs/actions.md, "HMAC keys").

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use gateway_proto::v1 as pb;

use super::keys;
use super::service::Actions;
use super::store::{self, HmacKeyRow};
use crate::api::{invalid_token, timestamp, Page};
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::reasons;
use crate::revision::{record_change, ChangeKind};
use crate::schema::hmac_keys;
use crate::scope::{in_app, parse_uuid};

impl Actions {
    pub(super) async fn create_key(
        &self,
        caller: Caller,
        req: pb::CreateHmacKeyRequest,
    ) -> ApiResult<pb::CreateHmacKeyResponse> {
        let scope = caller.require_app(Permission::Write, req.app.as_ref())?;
        if req.label.chars().count() > 100 || req.label.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                reasons::ACTION_INVALID,
                "label",
                "`label` must be at most 100 characters without control characters",
            ));
        }
        let id = Uuid::new_v4();
        tracing::Span::current().record("key_id", tracing::field::display(id));
        let value = keys::generate_value();
        let sealed = keys::seal(&self.state.keyring, id, &value)?;
        let mut conn = self.state.conn().await?;
        let row = conn
            .transaction(async move |conn| -> ApiResult<HmacKeyRow> {
                let row: HmacKeyRow = diesel::insert_into(hmac_keys::table)
                    .values((
                        hmac_keys::id.eq(id),
                        hmac_keys::organization_id.eq(scope.organization_id.0),
                        hmac_keys::workspace_id.eq(scope.workspace_id.0),
                        hmac_keys::app_id.eq(scope.app_id.0),
                        hmac_keys::label.eq(&req.label),
                        hmac_keys::value_ciphertext.eq(&sealed),
                    ))
                    .returning(HmacKeyRow::as_returning())
                    .get_result(conn)
                    .await?;
                record_change(conn, &[id], ChangeKind::HmacKeyCreated).await?;
                Ok(row)
            })
            .await?;
        tracing::info!(created_by = %caller.token_id, "HMAC key created");
        Ok(pb::CreateHmacKeyResponse {
            key: Some(to_proto(&row)),
            value: value.expose().clone(),
        })
    }

    pub(super) async fn list_keys(
        &self,
        caller: Caller,
        req: pb::ListHmacKeysRequest,
    ) -> ApiResult<pb::ListHmacKeysResponse> {
        let scope = caller.require_app(Permission::Read, req.app.as_ref())?;
        let page = Page::parse(req.page_size, &req.page_token)?;
        let mut query = hmac_keys::table
            .filter(in_app!(hmac_keys, scope))
            .select(HmacKeyRow::as_select())
            .order((hmac_keys::created_at.desc(), hmac_keys::id.desc()))
            .limit(page.fetch())
            .into_boxed();
        if !req.include_revoked {
            query = query.filter(hmac_keys::revoked_at.is_null());
        }
        if let Some(after) = &page.after {
            let (at, id) = parse_key(after)?;
            query = query.filter(
                hmac_keys::created_at
                    .lt(at)
                    .or(hmac_keys::created_at.eq(at).and(hmac_keys::id.lt(id))),
            );
        }
        let mut conn = self.state.conn().await?;
        let mut rows: Vec<HmacKeyRow> = query.load(&mut conn).await?;
        let next_page_token = page.finish(&mut rows, |r| {
            format!("{}|{}", r.created_at.to_rfc3339(), r.id)
        });
        Ok(pb::ListHmacKeysResponse {
            keys: rows.iter().map(to_proto).collect(),
            next_page_token,
        })
    }

    pub(super) async fn revoke_key(
        &self,
        caller: Caller,
        req: pb::RevokeHmacKeyRequest,
    ) -> ApiResult<pb::HmacKey> {
        caller.require(Permission::Write)?;
        let id = parse_uuid(&req.id, "id")?;
        tracing::Span::current().record("key_id", tracing::field::display(id));
        let mut conn = self.state.conn().await?;
        let row = conn
            .transaction(async move |conn| -> ApiResult<HmacKeyRow> {
                let row = store::load_key(conn, &caller, id, true).await?;
                if row.revoked_at.is_some() {
                    return Ok(row);
                }
                let row: HmacKeyRow = diesel::update(hmac_keys::table.find(id))
                    .set(hmac_keys::revoked_at.eq(diesel::dsl::now))
                    .returning(HmacKeyRow::as_returning())
                    .get_result(conn)
                    .await?;
                record_change(conn, &[id], ChangeKind::HmacKeyRevoked).await?;
                tracing::info!("HMAC key revoked");
                Ok(row)
            })
            .await?;
        Ok(to_proto(&row))
    }
}

/// The keyset position `created_at|id` of a ListHmacKeys page token.
fn parse_key(text: &str) -> ApiResult<(chrono::DateTime<chrono::Utc>, Uuid)> {
    let (at, id) = text.split_once('|').ok_or_else(invalid_token)?;
    let at = chrono::DateTime::parse_from_rfc3339(at).map_err(|_| invalid_token())?;
    let id = Uuid::parse_str(id).map_err(|_| invalid_token())?;
    Ok((at.with_timezone(&chrono::Utc), id))
}

fn to_proto(row: &HmacKeyRow) -> pb::HmacKey {
    pb::HmacKey {
        id: row.id.to_string(),
        app: Some(row.scope().to_proto()),
        label: row.label.clone(),
        created_at: Some(timestamp(row.created_at)),
        revoked_at: row.revoked_at.map(timestamp),
    }
}
