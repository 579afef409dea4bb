//! Fleet presence: how many INGEST data planes of each token scope are connected to the whole
//! control plane (every replica), so each plane can be told its share of the webhooks' rate limits
//! (docs/control-plane.md, "Rate limits and the fleet count").
//!
//! Each replica keeps its own streams in memory and, every heartbeat interval (and at once when a
//! stream opens or ends), writes them to `data_plane_presence` (refreshing its rows, deleting the
//! rows of streams that ended), then counts the rows of every replica refreshed within three
//! intervals, per scope. A replica that dies leaves rows that stop counting after three intervals.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable};
use diesel_async::RunQueryDsl;
use gateway_shared::{OrganizationId, WorkspaceId};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::DbPool;
use crate::schema::data_plane_presence;

/// The group planes share limits in: the scope of their DATA_PLANE token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FleetKey {
    /// Organization of the token.
    pub organization_id: OrganizationId,
    /// Workspace of the token; `None` for an organization-wide token (a group of its own).
    pub workspace_id: Option<WorkspaceId>,
}

/// One connected INGEST stream of this replica.
#[derive(Clone, Debug, PartialEq)]
pub struct PresenceRow {
    /// Random per stream.
    pub session_id: Uuid,
    /// Its group.
    pub key: FleetKey,
    /// The id the plane sent in Hello (for operators reading the table).
    pub data_plane_id: String,
}

/// The fleet as last counted.
#[derive(Clone, Debug, Default)]
pub struct FleetView {
    /// The local change (stream opened or ended) this count includes.
    pub generation: u64,
    /// Connected planes per group, across replicas.
    pub counts: HashMap<FleetKey, u32>,
}

impl FleetView {
    /// How many planes share the limits of `key`: at least 1 (the asking plane itself).
    pub fn planes(&self, key: &FleetKey) -> u32 {
        self.counts.get(key).copied().unwrap_or(0).max(1)
    }
}

/// Where presence is stored and counted.
#[tonic::async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Writes this replica's rows (`live` refreshed now, `ended` deleted) and returns the count per
    /// group of every replica's rows refreshed within `fresh_for`.
    async fn refresh(
        &self,
        replica_id: Uuid,
        live: &[PresenceRow],
        ended: &[Uuid],
        fresh_for: Duration,
    ) -> anyhow::Result<HashMap<FleetKey, u32>>;

    /// Deletes every row of this replica (at shutdown).
    async fn leave(&self, replica_id: Uuid) -> anyhow::Result<()>;
}

struct Local {
    generation: u64,
    live: HashMap<Uuid, PresenceRow>,
    ended: Vec<Uuid>,
}

/// This replica's streams and the last fleet count.
pub struct Presence {
    replica_id: Uuid,
    local: Mutex<Local>,
    wake: Notify,
    view: watch::Sender<Arc<FleetView>>,
}

impl Presence {
    /// An empty registry for a replica with a fresh random id.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            replica_id: Uuid::new_v4(),
            local: Mutex::new(Local {
                generation: 0,
                live: HashMap::new(),
                ended: Vec::new(),
            }),
            wake: Notify::new(),
            view: watch::channel(Arc::new(FleetView::default())).0,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Local> {
        // The maps stay consistent whatever panicked while holding the lock.
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an INGEST stream until the guard drops; the guard's `generation` is the first
    /// count that includes it.
    pub fn join(self: &Arc<Self>, key: FleetKey, data_plane_id: &str) -> PresenceGuard {
        let session_id = Uuid::new_v4();
        let generation = {
            let mut local = self.lock();
            local.generation += 1;
            local.live.insert(
                session_id,
                PresenceRow {
                    session_id,
                    key,
                    data_plane_id: data_plane_id.to_owned(),
                },
            );
            local.generation
        };
        self.wake.notify_one();
        PresenceGuard {
            presence: self.clone(),
            session_id,
            key,
            generation,
        }
    }

    /// The fleet as last counted; changes whenever a count changes.
    pub fn view(&self) -> watch::Receiver<Arc<FleetView>> {
        self.view.subscribe()
    }

    /// Refreshes and counts every `interval` (and at once after a stream opens or ends) until
    /// `shutdown`, then removes this replica's rows.
    pub async fn run(
        self: Arc<Self>,
        store: Arc<dyn PresenceStore>,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.wake.notified() => {}
                _ = shutdown.cancelled() => break,
            }
            let (generation, live, ended) = {
                let mut local = self.lock();
                let live: Vec<PresenceRow> = local.live.values().cloned().collect();
                (local.generation, live, std::mem::take(&mut local.ended))
            };
            match store
                .refresh(self.replica_id, &live, &ended, interval * 3)
                .await
            {
                Ok(counts) => {
                    self.view.send_if_modified(|view| {
                        let changed = view.counts != counts || view.generation != generation;
                        if changed {
                            *view = Arc::new(FleetView { generation, counts });
                        }
                        changed
                    });
                }
                Err(e) => {
                    // Keep the last counts; the deletions are tried again next time.
                    self.lock().ended.extend(ended);
                    tracing::warn!(error = %e, "refreshing the data-plane presence failed; keeping the last fleet counts");
                }
            }
        }
        if let Err(e) = store.leave(self.replica_id).await {
            tracing::warn!(error = %e, "removing this replica's data-plane presence failed; it stops counting after three heartbeats");
        }
    }
}

/// One registered stream; dropping it unregisters it.
pub struct PresenceGuard {
    presence: Arc<Presence>,
    session_id: Uuid,
    /// Its group.
    pub key: FleetKey,
    /// The first count that includes it.
    pub generation: u64,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        {
            let mut local = self.presence.lock();
            local.generation += 1;
            local.live.remove(&self.session_id);
            local.ended.push(self.session_id);
        }
        self.presence.wake.notify_one();
    }
}

/// Presence in the control plane's Postgres.
pub struct PgPresenceStore {
    pool: DbPool,
}

impl PgPresenceStore {
    /// Over `pool`.
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    organization_id: Uuid,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    workspace_id: Option<Uuid>,
    #[diesel(sql_type = BigInt)]
    planes: i64,
}

const COUNT: &str = "SELECT organization_id, workspace_id, count(*) AS planes \
    FROM data_plane_presence WHERE refreshed_at > now() - make_interval(secs => $1) \
    GROUP BY organization_id, workspace_id";

/// Rows older than this many freshness windows are deleted by whichever replica counts next.
const GARBAGE_AFTER_WINDOWS: f64 = 10.0;

#[tonic::async_trait]
impl PresenceStore for PgPresenceStore {
    async fn refresh(
        &self,
        replica_id: Uuid,
        live: &[PresenceRow],
        ended: &[Uuid],
        fresh_for: Duration,
    ) -> anyhow::Result<HashMap<FleetKey, u32>> {
        use data_plane_presence as p;
        let mut conn = self.pool.get().await?;
        if !ended.is_empty() {
            diesel::delete(p::table.filter(p::session_id.eq_any(ended)))
                .execute(&mut conn)
                .await?;
        }
        if !live.is_empty() {
            let rows: Vec<_> = live
                .iter()
                .map(|r| {
                    (
                        p::session_id.eq(r.session_id),
                        p::replica_id.eq(replica_id),
                        p::organization_id.eq(r.key.organization_id.0),
                        p::workspace_id.eq(r.key.workspace_id.map(|w| w.0)),
                        p::data_plane_id.eq(r.data_plane_id.clone()),
                        p::refreshed_at.eq(diesel::dsl::now),
                    )
                })
                .collect();
            diesel::insert_into(p::table)
                .values(rows)
                .on_conflict(p::session_id)
                .do_update()
                .set(p::refreshed_at.eq(diesel::dsl::now))
                .execute(&mut conn)
                .await?;
        }
        let window = fresh_for.as_secs_f64();
        diesel::sql_query(
            "DELETE FROM data_plane_presence WHERE refreshed_at < now() - make_interval(secs => $1)",
        )
        .bind::<Double, _>(window * GARBAGE_AFTER_WINDOWS)
        .execute(&mut conn)
        .await?;
        let rows: Vec<CountRow> = diesel::sql_query(COUNT)
            .bind::<Double, _>(window)
            .load(&mut conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    FleetKey {
                        organization_id: OrganizationId(r.organization_id),
                        workspace_id: r.workspace_id.map(WorkspaceId),
                    },
                    u32::try_from(r.planes).unwrap_or(u32::MAX),
                )
            })
            .collect())
    }

    async fn leave(&self, replica_id: Uuid) -> anyhow::Result<()> {
        use data_plane_presence as p;
        let mut conn = self.pool.get().await?;
        diesel::delete(p::table.filter(p::replica_id.eq(replica_id)))
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FleetKey {
        FleetKey {
            organization_id: OrganizationId::new_random(),
            workspace_id: None,
        }
    }

    #[test]
    fn a_plane_alone_or_unknown_counts_as_one() {
        let view = FleetView::default();
        assert_eq!(view.planes(&key()), 1);
        let k = key();
        let view = FleetView {
            generation: 1,
            counts: HashMap::from([(k, 3)]),
        };
        assert_eq!(view.planes(&k), 3);
        let same_org_workspace = FleetKey {
            workspace_id: Some(WorkspaceId::new_random()),
            ..k
        };
        assert_eq!(
            view.planes(&same_org_workspace),
            1,
            "a workspace-scoped token is another group than the organization-wide one"
        );
    }

    /// A store that remembers what it was told, across "replicas", as Postgres would.
    #[derive(Default)]
    struct MemoryStore {
        rows: Mutex<HashMap<Uuid, (Uuid, FleetKey)>>,
    }

    #[tonic::async_trait]
    impl PresenceStore for MemoryStore {
        async fn refresh(
            &self,
            replica_id: Uuid,
            live: &[PresenceRow],
            ended: &[Uuid],
            _: Duration,
        ) -> anyhow::Result<HashMap<FleetKey, u32>> {
            let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
            for id in ended {
                rows.remove(id);
            }
            for r in live {
                rows.insert(r.session_id, (replica_id, r.key));
            }
            let mut counts = HashMap::new();
            for (_, k) in rows.values() {
                *counts.entry(*k).or_insert(0) += 1;
            }
            Ok(counts)
        }

        async fn leave(&self, replica_id: Uuid) -> anyhow::Result<()> {
            let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
            rows.retain(|_, (r, _)| *r != replica_id);
            Ok(())
        }
    }

    #[tokio::test]
    async fn joins_and_leaves_reach_every_replica_count() {
        let store = Arc::new(MemoryStore::default());
        let shutdown = CancellationToken::new();
        let (a, b) = (Presence::new(), Presence::new());
        for p in [&a, &b] {
            tokio::spawn(
                p.clone()
                    .run(store.clone(), Duration::from_millis(20), shutdown.clone()),
            );
        }
        let k = key();
        let wait = |p: &Arc<Presence>, n: u32| {
            let mut view = p.view();
            async move {
                tokio::time::timeout(
                    Duration::from_secs(10),
                    view.wait_for(|v| v.counts.get(&k).copied().unwrap_or(0) == n),
                )
                .await
                .expect("count within the deadline")
                .expect("presence running");
            }
        };
        let one = a.join(k, "dp-1");
        let two = a.join(k, "dp-2");
        let three = b.join(k, "dp-3");
        wait(&a, 3).await;
        wait(&b, 3).await;
        let view = a.view();
        let v = view.borrow().clone();
        assert!(v.generation >= two.generation);
        drop(three);
        wait(&a, 2).await;
        drop(one);
        wait(&b, 1).await;
        shutdown.cancel();
        drop(two);
    }
}
