//! Builds what data planes serve from the database: one webhook's [`WebhookConfig`], or a full
//! [`ConfigSnapshot`] of every ACTIVE webhook at one revision. Config distribution (`distribution`) streams
//! these; this module only reads.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use gateway_shared::crypto::Keyring;
use gateway_shared::snapshot::{
    ApiKeyHash, ConfigSnapshot, ProviderSecrets, SigningSecret, TriggerBinding, WebhookConfig,
    WebhookOptions,
};
use gateway_shared::{AppId, OrganizationId, Secret, TriggerState, WebhookId, WorkspaceId};

use crate::error::{ApiError, ApiResult};
use crate::schema::webhooks;
use crate::triggers::store::{bindings_of, BindingRow};
use crate::webhooks::secrets::{columns, SecretValue};
use crate::webhooks::store::WebhookRow;

fn hash32(bytes: &[u8]) -> ApiResult<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| ApiError::internal("stored api key hash", "not 32 bytes"))
}

/// The data-plane view of one stored webhook, whatever its state.
fn build(
    keyring: &Keyring,
    row: &WebhookRow,
    bindings: &[BindingRow],
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<WebhookConfig> {
    let mut api_keys = vec![ApiKeyHash {
        sha256: hash32(&row.api_key_sha256)?,
        not_after: None,
    }];
    if let (Some(prev), Some(until)) =
        (&row.previous_api_key_sha256, row.previous_api_key_not_after)
    {
        if until > now {
            api_keys.push(ApiKeyHash {
                sha256: hash32(prev)?,
                not_after: Some(until.timestamp()),
            });
        }
    }
    let mut secrets = ProviderSecrets::default();
    if let Some(sealed) = &row.secret_resolved_ciphertext {
        let current = SecretValue::open(keyring, sealed, row.id, columns::SECRET_RESOLVED)?;
        if let Some(s) = &current.signing_secret {
            secrets.signing.push(SigningSecret {
                value: Secret::new(s.clone()),
                not_after: None,
            });
        }
        secrets.verify_token = current.verify_token.clone().map(Secret::new);
    }
    if let (Some(sealed), Some(until)) = (
        &row.previous_secret_resolved_ciphertext,
        row.previous_secret_not_after,
    ) {
        if until > now {
            let previous = SecretValue::open(keyring, sealed, row.id, columns::PREVIOUS_SECRET)?;
            if let Some(s) = &previous.signing_secret {
                secrets.signing.push(SigningSecret {
                    value: Secret::new(s.clone()),
                    not_after: Some(until.timestamp()),
                });
            }
        }
    }
    Ok(WebhookConfig {
        webhook_id: WebhookId(row.id),
        organization_id: OrganizationId(row.organization_id),
        workspace_id: WorkspaceId(row.workspace_id),
        app_id: AppId(row.app_id),
        provider: row.provider()?,
        api_keys,
        secrets,
        bindings: bindings
            .iter()
            .map(|b| {
                Ok(TriggerBinding {
                    trigger_type: b.trigger_type()?,
                    process_definition_id: b.process_definition_id.clone(),
                    node_id: b.node_id.clone(),
                    process_correlation_key: b.process_correlation_key.clone(),
                    process_key: b.process_key.clone(),
                })
            })
            .collect::<ApiResult<_>>()?,
        correlation_key_path: row.correlation_key_path.clone(),
        options: WebhookOptions {
            include_raw_body: row.include_raw_body,
            replay_window_seconds: u32::try_from(row.replay_window_seconds).unwrap_or(0),
            rate_limit: row.rate_limit().effective(),
        },
    })
}

/// The config data planes should serve for webhook `id`: `None` when it does not exist or is not
/// ACTIVE (a delta then carries a removal). Secrets are resolved and opened; API keys are hashes.
/// Grace-window entries already past their end are left out.
pub async fn webhook_config(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    id: WebhookId,
) -> ApiResult<Option<WebhookConfig>> {
    let row: Option<WebhookRow> = webhooks::table
        .find(id.0)
        .filter(webhooks::state.eq(TriggerState::Active.as_str()))
        .select(WebhookRow::as_select())
        .first(conn)
        .await
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let bindings = bindings_of(conn, &[row.id])
        .await?
        .remove(&row.id)
        .unwrap_or_default();
    build(keyring, &row, &bindings, chrono::Utc::now()).map(Some)
}

/// Every ACTIVE webhook (of one organization, or all) at one consistent revision: read in a
/// REPEATABLE READ, read-only transaction so the revision and the rows agree.
pub async fn config_snapshot(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    organization: Option<OrganizationId>,
) -> ApiResult<ConfigSnapshot> {
    let keyring = keyring.clone();
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(async move |conn| -> ApiResult<ConfigSnapshot> {
            let version = crate::revision::current(conn).await?;
            let webhooks = active_webhooks(conn, &keyring, organization).await?;
            Ok(ConfigSnapshot {
                version: u64::try_from(version).unwrap_or(0),
                webhooks,
            })
        })
        .await
}

/// Every ACTIVE webhook (of one organization, or all), by id. Run it inside a consistent-read
/// transaction that also reads the revision.
pub async fn active_webhooks(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    organization: Option<OrganizationId>,
) -> ApiResult<Vec<WebhookConfig>> {
    let mut query = webhooks::table
        .filter(webhooks::state.eq(TriggerState::Active.as_str()))
        .select(WebhookRow::as_select())
        .order(webhooks::id)
        .into_boxed();
    if let Some(org) = organization {
        query = query.filter(webhooks::organization_id.eq(org.0));
    }
    let rows: Vec<WebhookRow> = query.load(conn).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut bindings = bindings_of(conn, &ids).await?;
    let now = chrono::Utc::now();
    rows.iter()
        .map(|r| build(keyring, r, &bindings.remove(&r.id).unwrap_or_default(), now))
        .collect()
}
