//! The fleet count in Postgres: rows of every replica count, per token scope; a replica's rows
//! stop counting when not refreshed within the freshness window, and go when it leaves.

use std::time::Duration;

use control_plane::distribution::presence::{
    FleetKey, PgPresenceStore, PresenceRow, PresenceStore,
};
use diesel_async::RunQueryDsl;
use gateway_shared::{OrganizationId, WorkspaceId};
use uuid::Uuid;

use crate::support::{clients, TestControlPlane, BOOTSTRAP_TOKEN};

fn row(key: FleetKey, id: &str) -> PresenceRow {
    PresenceRow {
        session_id: Uuid::new_v4(),
        key,
        data_plane_id: id.into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_count_together_and_stale_rows_stop_counting() {
    let cp = TestControlPlane::start().await;
    // Answering a call means its migrations ran.
    let _ = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let pool = control_plane::db::pool(&cp.database_url, 2).expect("pool");
    let store = PgPresenceStore::new(pool.clone());
    let org = FleetKey {
        organization_id: OrganizationId::new_random(),
        workspace_id: None,
    };
    let workspace = FleetKey {
        workspace_id: Some(WorkspaceId::new_random()),
        ..org
    };
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let window = Duration::from_secs(30);
    let a = [row(org, "a1"), row(org, "a2"), row(workspace, "a3")];
    let counts = store
        .refresh(first, &a, &[], window)
        .await
        .expect("refresh");
    assert_eq!(counts.get(&org), Some(&2));
    let b = [row(org, "b1")];
    let counts = store
        .refresh(second, &b, &[], window)
        .await
        .expect("refresh");
    assert_eq!(counts.get(&org), Some(&3), "both replicas' planes count");
    assert_eq!(
        counts.get(&workspace),
        Some(&1),
        "a workspace token is a group of its own"
    );

    // An ended stream is deleted at the next refresh of its replica.
    let counts = store
        .refresh(first, &a[1..], &[a[0].session_id], window)
        .await
        .expect("refresh");
    assert_eq!(counts.get(&org), Some(&2));

    // The second replica stops refreshing (it died): once its row is older than the window it no
    // longer counts, though nobody deleted it.
    let mut conn = pool.get().await.expect("conn");
    diesel::sql_query(
        "UPDATE data_plane_presence SET refreshed_at = now() - interval '45 seconds' WHERE replica_id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(second)
    .execute(&mut conn)
    .await
    .expect("age the second replica's rows");
    let counts = store
        .refresh(first, &a[1..], &[], window)
        .await
        .expect("refresh");
    assert_eq!(counts.get(&org), Some(&1), "the stale row does not count");

    // A replica that shuts down removes its rows at once.
    store.leave(first).await.expect("leave");
    let counts = store
        .refresh(second, &[], &[], window)
        .await
        .expect("count");
    assert_eq!(counts.get(&org), None);
    assert_eq!(counts.get(&workspace), None);
}
