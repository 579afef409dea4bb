//! Builds what data planes serve from the database: one webhook's [`WebhookConfig`], or a full
//! [`ConfigSnapshot`] of every ACTIVE webhook at one revision. Config distribution (`distribution`) streams
//! these; this module only reads.

mod build;
mod full;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use gateway_shared::crypto::Keyring;
use gateway_shared::snapshot::{ConfigSnapshot, WebhookConfig};
use gateway_shared::{OrganizationId, TriggerState, WebhookId};

use crate::error::ApiResult;
use crate::schema::{trigger_bindings, webhooks};
use build::{build, SnapshotBinding, SnapshotRow};

/// The config data planes should serve for webhook `id`: `None` when it does not exist or is not
/// ACTIVE (a delta then carries a removal). Secrets are resolved and opened; API keys are hashes.
/// Grace-window entries already past their end are left out.
pub async fn webhook_config(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    id: WebhookId,
) -> ApiResult<Option<WebhookConfig>> {
    let row: Option<SnapshotRow> = webhooks::table
        .find(id.0)
        .filter(webhooks::state.eq(TriggerState::Active.as_str()))
        .select(SnapshotRow::as_select())
        .first(conn)
        .await
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let bindings: Vec<SnapshotBinding> = trigger_bindings::table
        .filter(trigger_bindings::webhook_id.eq(row.id))
        .select(SnapshotBinding::as_select())
        .load(conn)
        .await?;
    build(keyring, row, bindings, chrono::Utc::now()).map(Some)
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
    let mut all = full::active_webhooks(conn, keyring, organization).await?;
    all.sort_unstable_by_key(|w| w.webhook_id);
    Ok(all)
}

/// [`active_webhooks`] of every organization in no particular order: the read a control plane does
/// at start, whose config is a map (the same read, without the sort).
pub(crate) async fn all_active_webhooks_unordered(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
) -> ApiResult<Vec<WebhookConfig>> {
    full::active_webhooks(conn, keyring, None).await
}
