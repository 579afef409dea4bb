//! The retention sweep: every interval, delete failed triggers older than the maximum age and all
//! but the newest N of each webhook, counted apart for unauthenticated rejections (API_KEY_*). Replicas take a transaction-level advisory lock first, so one
//! sweeps while the others skip that round (deleting is idempotent anyway).

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio_util::sync::CancellationToken;
use tracing::instrument;

use super::{FailedTriggerArgs, FailedTriggerMetrics};
use crate::db::DbPool;
use crate::error::{ApiError, ApiResult};
use crate::schema::failed_triggers;

/// Advisory-lock key of the sweep ("failedtr").
const SWEEP_LOCK: i64 = 0x6661_696c_6564_7472;

/// What the sweep keeps.
#[derive(Clone, Copy, Debug)]
pub struct RetentionPolicy {
    /// Rows received longer ago are deleted.
    pub max_age: Duration,
    /// Rows kept per webhook.
    pub max_per_webhook: u32,
    /// Time between sweeps.
    pub interval: Duration,
}

impl From<&FailedTriggerArgs> for RetentionPolicy {
    fn from(a: &FailedTriggerArgs) -> Self {
        Self {
            max_age: a.failed_trigger_max_age,
            max_per_webhook: a.failed_trigger_max_per_webhook,
            interval: a.failed_trigger_sweep_interval,
        }
    }
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Deletes what `policy` does not keep; returns the number of rows deleted (0 when another
/// replica holds the sweep lock).
#[instrument(skip_all)]
pub async fn sweep(conn: &mut AsyncPgConnection, policy: RetentionPolicy) -> ApiResult<usize> {
    let max_age = chrono::Duration::from_std(policy.max_age)
        .map_err(|e| ApiError::internal("retention max age", e))?;
    let cutoff = chrono::Utc::now() - max_age;
    let keep = i64::from(policy.max_per_webhook);
    conn.transaction(async move |conn| -> ApiResult<usize> {
        let lock: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
            .bind::<BigInt, _>(SWEEP_LOCK)
            .get_result(conn)
            .await?;
        if !lock.locked {
            return Ok(0);
        }
        let aged =
            diesel::delete(failed_triggers::table.filter(failed_triggers::received_at.lt(cutoff)))
                .execute(conn)
                .await?;
        // Only webhooks over the limit are ranked (the webhook index serves both steps).
        // Unauthenticated rejections (API_KEY_*) are ranked apart: however many of them arrive,
        // they only ever push out older unauthenticated rows, never a webhook's other records.
        let surplus = diesel::sql_query(
            "DELETE FROM failed_triggers WHERE id IN (
                SELECT id FROM (
                    SELECT id, row_number() OVER (
                        PARTITION BY webhook_id, reason_code LIKE 'API\\_KEY\\_%'
                        ORDER BY received_at DESC, id DESC) AS rank
                    FROM failed_triggers
                    WHERE webhook_id IN (
                        SELECT webhook_id FROM failed_triggers
                        GROUP BY webhook_id, reason_code LIKE 'API\\_KEY\\_%'
                        HAVING count(*) > $1)
                ) ranked
                WHERE rank > $1)",
        )
        .bind::<BigInt, _>(keep)
        .execute(conn)
        .await?;
        Ok(aged + surplus)
    })
    .await
}

/// Runs [`sweep`] every `policy.interval` until `shutdown`.
pub async fn run(
    pool: DbPool,
    policy: RetentionPolicy,
    metrics: Arc<FailedTriggerMetrics>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(policy.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let result = match pool.get().await {
            Ok(mut conn) => sweep(&mut conn, policy).await,
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(0) => {}
            Ok(n) => {
                metrics.pruned(n as u64);
                tracing::info!(deleted = n, "failed triggers pruned");
            }
            Err(e) => tracing::warn!(error = ?e, "failed-trigger retention sweep failed"),
        }
    }
}
