//! What dispatch planes receive about actions and HMAC keys (docs/actions.md, "Distribution"): the
//! database view config distribution keeps in memory and turns into `ActionRoute`s and
//! `HmacKeyRoute`s. Only active keys are part of it; a revoked or deleted one is gone.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_shared::crypto::Keyring;
use gateway_shared::{OrganizationId, Secret, WorkspaceId};

use super::store::{ActionRow, HmacKeyRow};
use crate::scope::AppScope;
use crate::error::ApiResult;
use crate::schema::{actions, hmac_keys};

/// Everything a dispatcher needs about one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ActionConfig {
    /// Action id.
    pub(crate) action_id: Uuid,
    /// Its app.
    pub(crate) scope: AppScope,
    /// Unique in the app.
    pub(crate) name: String,
    /// Where calls go.
    pub(crate) webhook_url: String,
    /// The parameter schema as JSON text.
    pub(crate) json_schema: String,
}

impl ActionConfig {
    /// The view of a stored row.
    pub(crate) fn from_row(row: &ActionRow) -> Self {
        Self {
            action_id: row.id,
            scope: row.scope(),
            name: row.name.clone(),
            webhook_url: row.webhook_url.clone(),
            json_schema: row.json_schema.to_string(),
        }
    }
}

/// An active HMAC key (`Debug` never shows the value).
#[derive(Clone, Debug)]
pub(crate) struct HmacKeyConfig {
    /// Key id.
    pub(crate) key_id: Uuid,
    /// Its app.
    pub(crate) scope: AppScope,
    /// The key text.
    pub(crate) value: Secret<String>,
    /// Creation time, unix milliseconds.
    pub(crate) created_at_ms: i64,
}

impl HmacKeyConfig {
    fn from_row(row: &HmacKeyRow, keyring: &Keyring) -> ApiResult<Self> {
        Ok(Self {
            key_id: row.id,
            scope: row.scope(),
            value: row.value(keyring)?,
            created_at_ms: row.created_at.timestamp_millis(),
        })
    }
}

/// Objects that belong to one organization and workspace.
pub trait Owned {
    /// Organization and workspace of the object.
    fn owner(&self) -> (OrganizationId, WorkspaceId);
}

impl Owned for ActionConfig {
    fn owner(&self) -> (OrganizationId, WorkspaceId) {
        (self.scope.organization_id, self.scope.workspace_id)
    }
}

impl Owned for HmacKeyConfig {
    fn owner(&self) -> (OrganizationId, WorkspaceId) {
        (self.scope.organization_id, self.scope.workspace_id)
    }
}

impl Owned for gateway_shared::snapshot::WebhookConfig {
    fn owner(&self) -> (OrganizationId, WorkspaceId) {
        (self.organization_id, self.workspace_id)
    }
}

impl From<&ActionConfig> for pb::ActionRoute {
    fn from(a: &ActionConfig) -> Self {
        pb::ActionRoute {
            action_id: a.action_id.to_string(),
            organization_id: a.scope.organization_id.to_string(),
            workspace_id: a.scope.workspace_id.to_string(),
            app_id: a.scope.app_id.to_string(),
            name: a.name.clone(),
            webhook_url: a.webhook_url.clone(),
            json_schema: a.json_schema.clone(),
        }
    }
}

impl From<&HmacKeyConfig> for pb::HmacKeyRoute {
    fn from(k: &HmacKeyConfig) -> Self {
        pb::HmacKeyRoute {
            key_id: k.key_id.to_string(),
            organization_id: k.scope.organization_id.to_string(),
            workspace_id: k.scope.workspace_id.to_string(),
            app_id: k.scope.app_id.to_string(),
            value: k.value.expose().clone(),
            created_at_unix_ms: k.created_at_ms,
        }
    }
}

/// Action `id` as dispatchers should serve it; `None` when it no longer exists.
pub(crate) async fn action_config(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> ApiResult<Option<ActionConfig>> {
    let row: Option<ActionRow> = actions::table
        .find(id)
        .select(ActionRow::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok(row.as_ref().map(ActionConfig::from_row))
}

/// Key `id`, opened; `None` when it is revoked or gone.
pub(crate) async fn hmac_key_config(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    id: Uuid,
) -> ApiResult<Option<HmacKeyConfig>> {
    let row: Option<HmacKeyRow> = hmac_keys::table
        .find(id)
        .filter(hmac_keys::revoked_at.is_null())
        .select(HmacKeyRow::as_select())
        .first(conn)
        .await
        .optional()?;
    row.map(|r| HmacKeyConfig::from_row(&r, keyring))
        .transpose()
}

/// Every action (run inside the caller's consistent-read transaction).
pub(crate) async fn all_actions(conn: &mut AsyncPgConnection) -> ApiResult<Vec<ActionConfig>> {
    let rows: Vec<ActionRow> = actions::table
        .order(actions::id)
        .select(ActionRow::as_select())
        .load(conn)
        .await?;
    Ok(rows.iter().map(ActionConfig::from_row).collect())
}

/// Every active HMAC key, opened (run inside the caller's consistent-read transaction).
pub(crate) async fn all_active_keys(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
) -> ApiResult<Vec<HmacKeyConfig>> {
    let rows: Vec<HmacKeyRow> = hmac_keys::table
        .filter(hmac_keys::revoked_at.is_null())
        .order(hmac_keys::id)
        .select(HmacKeyRow::as_select())
        .load(conn)
        .await?;
    rows.iter()
        .map(|r| HmacKeyConfig::from_row(r, keyring))
        .collect()
}
