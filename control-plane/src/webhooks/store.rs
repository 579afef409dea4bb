//! Webhook rows: loading within the caller's scope, their API view, binding counts and API keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_shared::crypto::Keyring;
use gateway_shared::snapshot::sha256;
use gateway_shared::{Provider, Secret, TriggerState};

use gateway_proto::convert::{provider_to_proto, trigger_state_to_proto};

use super::secrets::{columns, webhook_aad};
use crate::api::timestamp;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::schema::{trigger_bindings, webhooks};
use crate::scope::{load_in_scope, AppScope};

/// A stored webhook.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = webhooks)]
pub(crate) struct WebhookRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub workspace_id: Uuid,
    pub app_id: Uuid,
    pub name: String,
    pub description: String,
    pub provider: String,
    pub state: String,
    pub correlation_key_path: Option<String>,
    pub include_raw_body: bool,
    pub api_key_ciphertext: Vec<u8>,
    pub api_key_sha256: Vec<u8>,
    pub previous_api_key_sha256: Option<Vec<u8>>,
    pub previous_api_key_not_after: Option<chrono::DateTime<chrono::Utc>>,
    pub secret_template_ciphertext: Option<Vec<u8>>,
    pub secret_resolved_ciphertext: Option<Vec<u8>>,
    pub secret_param_refs: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub replay_window_seconds: i32,
    pub rate_limit_per_second: Option<f64>,
    pub rate_limit_burst: Option<i32>,
}

impl std::fmt::Debug for WebhookRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl WebhookRow {
    /// The provider (an unknown stored name is an internal error).
    pub fn provider(&self) -> ApiResult<Provider> {
        Provider::from_name(&self.provider)
            .ok_or_else(|| ApiError::internal("stored provider", &self.provider))
    }

    /// The trigger state.
    pub fn state(&self) -> ApiResult<TriggerState> {
        TriggerState::from_name(&self.state)
            .ok_or_else(|| ApiError::internal("stored state", &self.state))
    }

    /// The app it belongs to.
    pub fn scope(&self) -> AppScope {
        AppScope::from_uuids(self.organization_id, self.workspace_id, self.app_id)
    }

    /// The API key in clear.
    pub fn api_key(&self, keyring: &Keyring) -> ApiResult<Secret<String>> {
        Ok(keyring.open_str(
            &self.api_key_ciphertext,
            &webhook_aad(self.id, columns::API_KEY),
        )?)
    }

    /// The stored rate limit.
    pub fn rate_limit(&self) -> super::rate_limit::Stored {
        super::rate_limit::Stored {
            per_second: self.rate_limit_per_second,
            burst: self.rate_limit_burst,
        }
    }

    /// The API view.
    pub fn to_proto(&self, binding_count: u32) -> ApiResult<pb::Webhook> {
        let (rate_limit_per_second, rate_limit_burst) = self.rate_limit().to_proto();
        Ok(pb::Webhook {
            id: self.id.to_string(),
            app: Some(self.scope().to_proto()),
            name: self.name.clone(),
            description: self.description.clone(),
            provider: provider_to_proto(self.provider()?) as i32,
            state: trigger_state_to_proto(self.state()?) as i32,
            correlation_key_path: self.correlation_key_path.clone().unwrap_or_default(),
            include_raw_body: self.include_raw_body,
            replay_window_seconds: u32::try_from(self.replay_window_seconds).unwrap_or(0),
            has_provider_secret: self.secret_resolved_ciphertext.is_some(),
            secret_param_refs: self.secret_param_refs.clone(),
            binding_count,
            created_at: Some(timestamp(self.created_at)),
            updated_at: Some(timestamp(self.updated_at)),
            rate_limit_per_second,
            rate_limit_burst,
        })
    }
}

/// A fresh API key: 32 CSPRNG bytes, base64url without padding.
pub(crate) fn generate_api_key() -> Secret<String> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(&mut *bytes);
    Secret::new(URL_SAFE_NO_PAD.encode(*bytes))
}

/// The sealed API key and its hash, for webhook `id`.
pub(crate) fn seal_api_key(
    keyring: &Keyring,
    id: Uuid,
    key: &Secret<String>,
) -> ApiResult<(Vec<u8>, Vec<u8>)> {
    let sealed = keyring.seal_str(key.expose(), &webhook_aad(id, columns::API_KEY))?;
    Ok((sealed, sha256(key.expose().as_bytes()).to_vec()))
}

/// Loads webhook `id` if it is in the caller's scope (else NOT_FOUND: other tenants' ids are not
/// revealed); `for_update` locks the row for the rest of the transaction.
pub(crate) async fn load(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
    for_update: bool,
) -> ApiResult<WebhookRow> {
    load_in_scope!(
        conn,
        caller,
        webhooks,
        WebhookRow,
        id,
        for_update,
        ApiError::webhook_not_found()
    )
}

/// Number of bindings per webhook in `ids`.
pub(crate) async fn binding_counts(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> ApiResult<std::collections::HashMap<Uuid, u32>> {
    let rows: Vec<(Uuid, i64)> = trigger_bindings::table
        .filter(trigger_bindings::webhook_id.eq_any(ids))
        .group_by(trigger_bindings::webhook_id)
        .select((trigger_bindings::webhook_id, diesel::dsl::count_star()))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, n)| (id, u32::try_from(n).unwrap_or(u32::MAX)))
        .collect())
}

/// The API view of one row with its binding count.
pub(crate) async fn to_proto(
    conn: &mut AsyncPgConnection,
    row: &WebhookRow,
) -> ApiResult<pb::Webhook> {
    let counts = binding_counts(conn, &[row.id]).await?;
    row.to_proto(counts.get(&row.id).copied().unwrap_or(0))
}
