//! HMAC keys: generation, sealing at rest and the key that signs an app's calls (docs/actions.md,
//! "HMAC keys").

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use uuid::Uuid;

use gateway_shared::crypto::{Aad, Keyring};
use gateway_shared::Secret;

use super::store::HmacKeyRow;
use crate::scope::AppScope;
use crate::error::ApiResult;
use crate::schema::hmac_keys;

/// The sealed column of `hmac_keys` (also the column part of its associated data).
pub(crate) const VALUE_COLUMN: &str = "value_ciphertext";

/// Associated data binding a sealed key value to its row and column.
pub(crate) fn hmac_key_aad(id: Uuid) -> Aad {
    Aad::new("hmac_keys", &id.to_string(), VALUE_COLUMN)
}

/// A fresh key text: 32 CSPRNG bytes, base64url without padding. Receivers use the text's UTF-8
/// bytes as the HMAC key.
pub(crate) fn generate_value() -> Secret<String> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(&mut *bytes);
    Secret::new(URL_SAFE_NO_PAD.encode(*bytes))
}

/// Seals `value` for key `id`.
pub(crate) fn seal(keyring: &Keyring, id: Uuid, value: &Secret<String>) -> ApiResult<Vec<u8>> {
    Ok(keyring.seal_str(value.expose(), &hmac_key_aad(id))?)
}

impl HmacKeyRow {
    /// The key text in clear.
    pub(crate) fn value(&self, keyring: &Keyring) -> ApiResult<Secret<String>> {
        Ok(keyring.open_str(&self.value_ciphertext, &hmac_key_aad(self.id))?)
    }
}

/// The app's newest active key (the one that signs its calls), if it has one.
pub(crate) async fn newest_active(
    conn: &mut AsyncPgConnection,
    scope: AppScope,
) -> ApiResult<Option<HmacKeyRow>> {
    Ok(hmac_keys::table
        .filter(hmac_keys::organization_id.eq(scope.organization_id.0))
        .filter(hmac_keys::workspace_id.eq(scope.workspace_id.0))
        .filter(hmac_keys::app_id.eq(scope.app_id.0))
        .filter(hmac_keys::revoked_at.is_null())
        .order((hmac_keys::created_at.desc(), hmac_keys::id.desc()))
        .select(HmacKeyRow::as_select())
        .first(conn)
        .await
        .optional()?)
}
