//! Action and HMAC key rows, loaded within the caller's scope.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::schema::{actions, hmac_keys};
use crate::scope::{load_in_scope, AppScope};

/// A stored action.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = actions)]
pub(crate) struct ActionRow {
    pub(crate) id: Uuid,
    pub(crate) organization_id: Uuid,
    pub(crate) workspace_id: Uuid,
    pub(crate) app_id: Uuid,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) webhook_url: String,
    pub(crate) json_schema: serde_json::Value,
    pub(crate) created_at: chrono::DateTime<chrono::Utc>,
    pub(crate) updated_at: chrono::DateTime<chrono::Utc>,
    pub(crate) validated_at: chrono::DateTime<chrono::Utc>,
}

impl ActionRow {
    /// The app it belongs to.
    pub(crate) fn scope(&self) -> AppScope {
        AppScope::from_uuids(self.organization_id, self.workspace_id, self.app_id)
    }
}

/// A stored HMAC key (its value sealed).
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = hmac_keys)]
pub(crate) struct HmacKeyRow {
    pub(crate) id: Uuid,
    pub(crate) organization_id: Uuid,
    pub(crate) workspace_id: Uuid,
    pub(crate) app_id: Uuid,
    pub(crate) label: String,
    pub(crate) value_ciphertext: Vec<u8>,
    pub(crate) created_at: chrono::DateTime<chrono::Utc>,
    pub(crate) revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl std::fmt::Debug for HmacKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacKeyRow")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl HmacKeyRow {
    /// The app it belongs to.
    pub(crate) fn scope(&self) -> AppScope {
        AppScope::from_uuids(self.organization_id, self.workspace_id, self.app_id)
    }
}

/// The not-found error of actions (also for other tenants' ids, which are never revealed).
pub(crate) fn action_not_found() -> ApiError {
    ApiError::NotFound {
        reason: "ACTION_NOT_FOUND",
        what: "action",
    }
}

/// The not-found error of HMAC keys.
pub(crate) fn hmac_key_not_found() -> ApiError {
    ApiError::NotFound {
        reason: "HMAC_KEY_NOT_FOUND",
        what: "HMAC key",
    }
}

/// Loads action `id` if it is in the caller's scope (else NOT_FOUND); `for_update` locks the row
/// for the rest of the transaction.
pub(crate) async fn load_action(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
    for_update: bool,
) -> ApiResult<ActionRow> {
    load_in_scope!(
        conn,
        caller,
        actions,
        ActionRow,
        id,
        for_update,
        action_not_found()
    )
}

/// Loads HMAC key `id` if it is in the caller's scope (else NOT_FOUND), locking it when `for_update`.
pub(crate) async fn load_key(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
    for_update: bool,
) -> ApiResult<HmacKeyRow> {
    load_in_scope!(
        conn,
        caller,
        hmac_keys,
        HmacKeyRow,
        id,
        for_update,
        hmac_key_not_found()
    )
}

/// Whether an action named `name` exists in the app.
pub(crate) async fn name_taken(
    conn: &mut AsyncPgConnection,
    scope: AppScope,
    name: &str,
) -> ApiResult<bool> {
    let n: i64 = actions::table
        .filter(actions::organization_id.eq(scope.organization_id.0))
        .filter(actions::workspace_id.eq(scope.workspace_id.0))
        .filter(actions::app_id.eq(scope.app_id.0))
        .filter(actions::name.eq(name))
        .count()
        .get_result(conn)
        .await?;
    Ok(n > 0)
}
