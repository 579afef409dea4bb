//! The Postgres side of distribution: full reads and catch-up reads of the change log, each in one
//! REPEATABLE READ transaction so the revision and the rows agree.

use std::collections::HashMap;
use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use gateway_shared::crypto::Keyring;
use gateway_shared::snapshot::WebhookConfig;
use gateway_shared::WebhookId;

use super::state::Change;
use super::watcher::{ChangeBatch, ConfigStore};
use crate::db::DbPool;
use crate::schema::config_changes;

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
    async fn load_full(&self) -> anyhow::Result<(u64, i64, Vec<WebhookConfig>)> {
        let mut conn = self.pool.get().await?;
        let snapshot = crate::snapshot::config_snapshot(&mut conn, &self.keyring, None)
            .await
            .map_err(|e| anyhow::anyhow!("reading the config snapshot: {e}"))?;
        Ok((snapshot.version, 0, snapshot.webhooks))
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
                let rows: Vec<(i64, uuid::Uuid, chrono::DateTime<chrono::Utc>)> =
                    config_changes::table
                        .filter(config_changes::revision.gt(after))
                        .filter(config_changes::revision.le(version))
                        .order((config_changes::revision.asc(), config_changes::id.asc()))
                        .select((
                            config_changes::revision,
                            config_changes::webhook_id,
                            config_changes::committed_at,
                        ))
                        .load(conn)
                        .await?;
                let mut changes: Vec<Change> = Vec::new();
                let mut current = HashMap::new();
                for (revision, id, at) in rows {
                    let id = WebhookId(id);
                    let revision = u64::try_from(revision)?;
                    match changes.last_mut() {
                        Some(c) if c.revision == revision => c.webhook_ids.push(id),
                        _ => changes.push(Change {
                            revision,
                            webhook_ids: vec![id],
                            committed_at_ms: at.timestamp_millis(),
                        }),
                    }
                    if let std::collections::hash_map::Entry::Vacant(slot) = current.entry(id) {
                        let config = crate::snapshot::webhook_config(conn, &keyring, id)
                            .await
                            .map_err(|e| anyhow::anyhow!("reading webhook {id}: {e}"))?;
                        slot.insert(config);
                    }
                }
                Ok(ChangeBatch {
                    version: u64::try_from(version)?,
                    changes,
                    current: current
                        .into_iter()
                        .filter_map(|(id, c)| c.map(|c| (id, c)))
                        .collect(),
                })
            })
            .await
    }
}
