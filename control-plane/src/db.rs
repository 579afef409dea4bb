//! Postgres access: a diesel-async connection pool and the embedded diesel migrations.

use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The migrations in `migrations/` at the repository root, compiled into the binary.
pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Advisory-lock key that serializes migrations across replicas ("webhook-gateway migrate").
const MIGRATION_LOCK: i64 = 0x7765_6268_6f6f_6b31;

/// A pool of async Postgres connections.
pub(crate) type DbPool = Pool<AsyncPgConnection>;

/// Builds a connection pool (connections are opened lazily).
pub(crate) fn pool(database_url: &str, max_size: usize) -> anyhow::Result<DbPool> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(database_url);
    Ok(Pool::builder(manager).max_size(max_size).build()?)
}

/// Applies every pending migration; returns the versions applied. Runs diesel's synchronous
/// migration harness on a blocking thread over an async connection, so the runtime never blocks.
pub async fn migrate(database_url: &str) -> anyhow::Result<Vec<String>> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        use diesel::Connection;
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)?;
        // Replicas starting together must not run the same migrations at once: a session-level
        // advisory lock serializes them (released when this connection closes).
        diesel::RunQueryDsl::execute(
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")),
            &mut conn,
        )?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("applying migrations: {e}"))?;
        Ok(applied.into_iter().map(|v| v.to_string()).collect())
    })
    .await?
}
