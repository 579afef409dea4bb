//! The full read of every ACTIVE webhook (docs/benchmarks.md, "Config distribution"): two
//! sequential scans in the caller's transaction, no per-id lookups and no sort in Postgres.
//!
//! Webhook ids are random, so reading in id order walks the heap at random (an index scan per
//! row): at 1,000,000 rows that alone took longer than this whole read. Rows come in table order;
//! a caller that wants them by id sorts in memory. The bindings are
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

/// The largest binding map reserved up front from the planner's estimate.
const MAX_CAPACITY_HINT: usize = 10_000_000;

/// Every ACTIVE webhook (of one organization, or all), in table order. Run it inside a
/// consistent-read transaction that also reads the revision.
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
    let mut built: Vec<Vec<WebhookConfig>> = Vec::new();
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
                    built.push(joined(first).await?);
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
        built.push(joined(task).await?);
    }
    // One move of every config into a vector of the exact size (growing one would copy them
    // several times over).
    let mut all = Vec::with_capacity(built.iter().map(Vec::len).sum());
    for part in built {
        all.extend(part);
    }
    Ok(all)
}

async fn joined(task: JoinHandle<ApiResult<Vec<WebhookConfig>>>) -> ApiResult<Vec<WebhookConfig>> {
    task.await
        .map_err(|e| ApiError::internal("building the snapshot", e))?
}

/// The planner's row count of a table (-1 when never analyzed).
#[derive(QueryableByName)]
struct Estimate {
    #[diesel(sql_type = diesel::sql_types::Float4)]
    reltuples: f32,
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
    // Sized from the planner's row estimate so that a million entries are not rehashed twenty
    // times over; only a hint (never analyzed: none).
    let mut estimate: Vec<Estimate> = diesel::sql_query(
        "SELECT reltuples FROM pg_class WHERE oid = 'trigger_bindings'::regclass",
    )
    .load(conn)
    .await?;
    let capacity = match (organization, estimate.pop()) {
        (None, Some(e)) if e.reltuples > 0.0 => (e.reltuples as usize).min(MAX_CAPACITY_HINT),
        _ => 0,
    };
    let mut rows = query.load_stream::<SnapshotBinding>(conn).await?;
    let mut map: HashMap<Uuid, Vec<SnapshotBinding>> = HashMap::with_capacity(capacity);
    while let Some(b) = rows.try_next().await? {
        map.entry(b.webhook_id).or_default().push(b);
    }
    Ok(map)
}
