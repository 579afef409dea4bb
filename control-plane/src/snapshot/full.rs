//! The full read of every ACTIVE webhook (docs/benchmarks.md, "Config distribution"): two
//! sequential scans in the caller's transaction, no per-id lookups and no sort in Postgres.
//!
//! Webhook ids are random, so reading in id order walks the heap at random (an index scan per
//! row); reading in table order and sorting in memory is several times faster. The bindings are
//! read first into a map by webhook; the webhooks are then streamed, and each batch of rows is
//! built (secrets opened, bindings attached) on a blocking thread while the stream goes on.

use std::collections::{HashMap, VecDeque};

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures::TryStreamExt;
use tokio::task::JoinHandle;
use uuid::Uuid;

use gateway_shared::crypto::Keyring;
use gateway_shared::snapshot::WebhookConfig;
use gateway_shared::{OrganizationId, TriggerState};

use super::build::{build, SnapshotBinding, SnapshotRow};
use crate::error::{ApiError, ApiResult};
use crate::schema::{trigger_bindings, webhooks};

/// Webhooks built per blocking task: large enough that scheduling is noise, small enough that
/// the stream and the builds overlap.
const BATCH: usize = 2048;

/// Every ACTIVE webhook (of one organization, or all), by id. Run it inside a consistent-read
/// transaction that also reads the revision.
pub(super) async fn active_webhooks(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    organization: Option<OrganizationId>,
) -> ApiResult<Vec<WebhookConfig>> {
    let mut bindings = bindings_by_webhook(conn, organization).await?;
    let mut query = webhooks::table
        .filter(webhooks::state.eq(TriggerState::Active.as_str()))
        .select(SnapshotRow::as_select())
        .into_boxed();
    if let Some(org) = organization {
        query = query.filter(webhooks::organization_id.eq(org.0));
    }
    let mut rows = query.load_stream::<SnapshotRow>(conn).await?;
    let keyring = std::sync::Arc::new(keyring.clone());
    let now = chrono::Utc::now();
    let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut running: VecDeque<JoinHandle<ApiResult<Vec<WebhookConfig>>>> = VecDeque::new();
    let mut built: Vec<WebhookConfig> = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let row = rows.try_next().await?;
        let end = row.is_none();
        if let Some(row) = row {
            let of_row = bindings.remove(&row.id).unwrap_or_default();
            batch.push((row, of_row));
        }
        if batch.len() == BATCH || (end && !batch.is_empty()) {
            if running.len() >= parallel {
                if let Some(first) = running.pop_front() {
                    built.extend(joined(first).await?);
                }
            }
            let work = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            let keyring = keyring.clone();
            running.push_back(tokio::task::spawn_blocking(move || {
                work.into_iter()
                    .map(|(row, of_row)| build(&keyring, row, of_row, now))
                    .collect()
            }));
        }
        if end {
            break;
        }
    }
    for task in running {
        built.extend(joined(task).await?);
    }
    built.sort_unstable_by_key(|w| w.webhook_id);
    Ok(built)
}

async fn joined(task: JoinHandle<ApiResult<Vec<WebhookConfig>>>) -> ApiResult<Vec<WebhookConfig>> {
    task.await
        .map_err(|e| ApiError::internal("building the snapshot", e))?
}

/// The bindings of the webhooks a full read may return, by webhook, in one sequential scan: every
/// binding when all organizations are read (those of inactive webhooks are never looked up),
/// those of the organization's webhooks otherwise.
async fn bindings_by_webhook(
    conn: &mut AsyncPgConnection,
    organization: Option<OrganizationId>,
) -> ApiResult<HashMap<Uuid, Vec<SnapshotBinding>>> {
    let mut query = trigger_bindings::table
        .select(SnapshotBinding::as_select())
        .into_boxed();
    if let Some(org) = organization {
        query = query.filter(
            trigger_bindings::webhook_id.eq_any(
                webhooks::table
                    .filter(webhooks::organization_id.eq(org.0))
                    .filter(webhooks::state.eq(TriggerState::Active.as_str()))
                    .select(webhooks::id),
            ),
        );
    }
    let mut rows = query.load_stream::<SnapshotBinding>(conn).await?;
    let mut map: HashMap<Uuid, Vec<SnapshotBinding>> = HashMap::new();
    while let Some(b) = rows.try_next().await? {
        map.entry(b.webhook_id).or_default().push(b);
    }
    Ok(map)
}
