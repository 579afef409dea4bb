//! The Postgres side of distribution: full reads and catch-up reads of the change log, each in one
//! REPEATABLE READ transaction so the revision and the rows agree.

use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use gateway_shared::crypto::Keyring;
use gateway_shared::WebhookId;
use uuid::Uuid;

use super::state::{Change, Current, FullConfig, ResourceId};
use super::watcher::{ChangeBatch, ConfigStore};
use crate::actions::routes;
use crate::db::DbPool;
use crate::revision::Resource;
use crate::schema::{api_tokens, config_changes};

/// Reads config from the control plane's database.
pub struct PgConfigStore {
    pool: DbPool,
    keyring: Arc<Keyring>,
}

impl PgConfigStore {
    /// A store over `pool`, opening secrets with `keyring`.
    pub fn new(pool: DbPool, keyring: Arc<Keyring>) -> Self {
        Self { pool, keyring }
    }
}

#[tonic::async_trait]
impl ConfigStore for PgConfigStore {
    async fn load_full(&self) -> anyhow::Result<FullConfig> {
        let mut conn = self.pool.get().await?;
        let keyring = self.keyring.clone();
        conn.build_transaction()
            .repeatable_read()
            .read_only()
            .run(async move |conn| -> anyhow::Result<FullConfig> {
                let version = crate::revision::current(conn).await?;
                let err = |what: &str, e: crate::error::ApiError| {
                    anyhow::anyhow!("reading {what}: {e:?}")
                };
                Ok(FullConfig {
                    version: u64::try_from(version)?,
                    committed_at_ms: 0,
                    webhooks: crate::snapshot::all_active_webhooks_unordered(conn, &keyring)
                        .await
                        .map_err(|e| err("webhooks", e))?,
                    actions: routes::all_actions(conn)
                        .await
                        .map_err(|e| err("actions", e))?,
                    hmac_keys: routes::all_active_keys(conn, &keyring)
                        .await
                        .map_err(|e| err("HMAC keys", e))?,
                    revoked_tokens: api_tokens::table
                        .filter(api_tokens::revoked_at.is_not_null())
                        .select(api_tokens::id)
                        .load(conn)
                        .await?,
                })
            })
            .await
    }

    async fn load_changes(&self, after: u64) -> anyhow::Result<ChangeBatch> {
        let mut conn = self.pool.get().await?;
        let keyring = self.keyring.clone();
        let after = i64::try_from(after)?;
        conn.build_transaction()
            .repeatable_read()
            .read_only()
            .run(async move |conn| -> anyhow::Result<ChangeBatch> {
                let version = crate::revision::current(conn).await?;
                if version <= after {
                    return Ok(ChangeBatch {
                        version: u64::try_from(version)?,
                        ..Default::default()
                    });
                }
                let rows: Vec<(i64, String, Uuid, chrono::DateTime<chrono::Utc>)> =
                    config_changes::table
                        .filter(config_changes::revision.gt(after))
                        .filter(config_changes::revision.le(version))
                        .order((config_changes::revision.asc(), config_changes::id.asc()))
                        .select((
                            config_changes::revision,
                            config_changes::resource,
                            config_changes::resource_id,
                            config_changes::committed_at,
                        ))
                        .load(conn)
                        .await?;
                let mut changes: Vec<Change> = Vec::new();
                let mut current = Current::default();
                let mut read = std::collections::HashSet::new();
                for (revision, resource, id, at) in rows {
                    let resource = Resource::from_name(&resource).ok_or_else(|| {
                        anyhow::anyhow!("unknown change-log resource {resource:?}")
                    })?;
                    let touched = match resource {
                        Resource::Webhook => ResourceId::Webhook(WebhookId(id)),
                        Resource::Action => ResourceId::Action(id),
                        Resource::HmacKey => ResourceId::HmacKey(id),
                        Resource::ApiToken => ResourceId::ApiToken(id),
                    };
                    let revision = u64::try_from(revision)?;
                    match changes.last_mut() {
                        Some(c) if c.revision == revision => c.touched.push(touched),
                        _ => changes.push(Change {
                            revision,
                            touched: vec![touched],
                            committed_at_ms: at.timestamp_millis(),
                        }),
                    }
                    if read.insert(touched) {
                        read_current(conn, &keyring, touched, &mut current).await?;
                    }
                }
                Ok(ChangeBatch {
                    version: u64::try_from(version)?,
                    changes,
                    current,
                })
            })
            .await
    }
}

/// Adds the current form of `id` to `current` (nothing when it is gone).
async fn read_current(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    id: ResourceId,
    current: &mut Current,
) -> anyhow::Result<()> {
    match id {
        ResourceId::Webhook(id) => {
            if let Some(w) = crate::snapshot::webhook_config(conn, keyring, id)
                .await
                .map_err(|e| anyhow::anyhow!("reading webhook {id}: {e:?}"))?
            {
                current.webhooks.insert(id, w);
            }
        }
        ResourceId::Action(id) => {
            if let Some(a) = routes::action_config(conn, id)
                .await
                .map_err(|e| anyhow::anyhow!("reading action {id}: {e:?}"))?
            {
                current.actions.insert(id, a);
            }
        }
        ResourceId::HmacKey(id) => {
            if let Some(k) = routes::hmac_key_config(conn, keyring, id)
                .await
                .map_err(|e| anyhow::anyhow!("reading HMAC key {id}: {e:?}"))?
            {
                current.hmac_keys.insert(id, k);
            }
        }
        // A logged token is a revoked one; there is nothing to read.
        ResourceId::ApiToken(_) => {}
    }
    Ok(())
}
