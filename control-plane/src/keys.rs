//! `control-plane rotate-keys`: re-seals every encrypted value under the keyring's primary key, so
//! an old master key can then be removed from the ring. Plaintext does not change, so the config
//! revision does not move.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use gateway_shared::crypto::{Aad, Keyring};

use crate::actions::keys::hmac_key_aad;
use crate::config_params::store::param_aad;
use crate::schema::{config_params, hmac_keys, webhooks};
use crate::scope::AppScope;
use crate::webhooks::secrets::{columns, webhook_aad};

/// What a rotation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Values re-sealed under the primary key.
    pub resealed: u64,
    /// Values already under the primary key.
    pub unchanged: u64,
}

fn reseal(
    keyring: &Keyring,
    sealed: Option<Vec<u8>>,
    aad: &Aad,
    report: &mut RotationReport,
) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    if !keyring.needs_reseal(&sealed)? {
        report.unchanged += 1;
        return Ok(None);
    }
    let plain = keyring.open(&sealed, aad)?;
    report.resealed += 1;
    Ok(Some(keyring.seal(plain.expose(), aad)?))
}

type SealedColumns = (
    Uuid,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// Re-seals every webhook secret, API key, SECRET config param and HMAC key not under the primary
/// key, one row per short transaction (rows are locked while re-sealed, so concurrent writes are safe).
pub async fn rotate(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
) -> anyhow::Result<RotationReport> {
    let mut report = RotationReport::default();
    let ids: Vec<Uuid> = webhooks::table
        .select(webhooks::id)
        .order(webhooks::id)
        .load(conn)
        .await?;
    for id in ids {
        let keyring = keyring.clone();
        report = conn
            .transaction(async move |conn| -> anyhow::Result<RotationReport> {
                let row: Option<SealedColumns> = webhooks::table
                    .find(id)
                    .select((
                        webhooks::id,
                        webhooks::api_key_ciphertext,
                        webhooks::secret_template_ciphertext,
                        webhooks::secret_resolved_ciphertext,
                        webhooks::previous_secret_resolved_ciphertext,
                    ))
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?;
                let Some((id, api_key, template, resolved, previous)) = row else {
                    return Ok(report);
                };
                let aad = |column| webhook_aad(id, column);
                let api_key = reseal(&keyring, Some(api_key), &aad(columns::API_KEY), &mut report)?;
                let template = reseal(
                    &keyring,
                    template,
                    &aad(columns::SECRET_TEMPLATE),
                    &mut report,
                )?;
                let resolved = reseal(
                    &keyring,
                    resolved,
                    &aad(columns::SECRET_RESOLVED),
                    &mut report,
                )?;
                let previous = reseal(
                    &keyring,
                    previous,
                    &aad(columns::PREVIOUS_SECRET),
                    &mut report,
                )?;
                if api_key.is_some()
                    || template.is_some()
                    || resolved.is_some()
                    || previous.is_some()
                {
                    // `None` leaves a column as it is.
                    diesel::update(webhooks::table.find(id))
                        .set((
                            api_key.map(|v| webhooks::api_key_ciphertext.eq(v)),
                            template.map(|v| webhooks::secret_template_ciphertext.eq(Some(v))),
                            resolved.map(|v| webhooks::secret_resolved_ciphertext.eq(Some(v))),
                            previous
                                .map(|v| webhooks::previous_secret_resolved_ciphertext.eq(Some(v))),
                        ))
                        .execute(conn)
                        .await?;
                }
                Ok(report)
            })
            .await?;
    }
    let params: Vec<(Uuid, Uuid, Uuid, String)> = config_params::table
        .filter(config_params::value_ciphertext.is_not_null())
        .select((
            config_params::organization_id,
            config_params::workspace_id,
            config_params::app_id,
            config_params::name,
        ))
        .load(conn)
        .await?;
    for (org, ws, app, name) in params {
        let keyring = keyring.clone();
        report = conn
            .transaction(async move |conn| -> anyhow::Result<RotationReport> {
                let key = (org, ws, app, name.clone());
                let sealed: Option<Option<Vec<u8>>> = config_params::table
                    .find(key.clone())
                    .select(config_params::value_ciphertext)
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?;
                let aad = param_aad(AppScope::from_uuids(org, ws, app), &name);
                if let Some(v) = reseal(&keyring, sealed.flatten(), &aad, &mut report)? {
                    diesel::update(config_params::table.find(key))
                        .set(config_params::value_ciphertext.eq(v))
                        .execute(conn)
                        .await?;
                }
                Ok(report)
            })
            .await?;
    }
    let key_ids: Vec<Uuid> = hmac_keys::table
        .select(hmac_keys::id)
        .order(hmac_keys::id)
        .load(conn)
        .await?;
    for id in key_ids {
        let keyring = keyring.clone();
        report = conn
            .transaction(async move |conn| -> anyhow::Result<RotationReport> {
                let sealed: Option<Vec<u8>> = hmac_keys::table
                    .find(id)
                    .select(hmac_keys::value_ciphertext)
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?;
                if let Some(v) = reseal(&keyring, sealed, &hmac_key_aad(id), &mut report)? {
                    diesel::update(hmac_keys::table.find(id))
                        .set(hmac_keys::value_ciphertext.eq(v))
                        .execute(conn)
                        .await?;
                }
                Ok(report)
            })
            .await?;
    }
    Ok(report)
}
