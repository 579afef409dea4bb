//! Postgres access: a diesel-async connection pool and the embedded diesel migrations, every connection
//! opened through [`tls::PgConnector`] so `sslmode` in `DATABASE_URL` holds everywhere.

pub mod tls;

pub use tls::PgConnector;

use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The migrations in `migrations/` at the repository root, compiled into the binary.
pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Advisory-lock key that serializes migrations across replicas ("webhook-gateway migrate").
const MIGRATION_LOCK: i64 = 0x7765_6268_6f6f_6b31;

/// A pool of async Postgres connections.
pub type DbPool = Pool<AsyncPgConnection>;

/// Builds a connection pool (connections are opened lazily).
pub fn pool(database_url: &str, max_size: usize) -> anyhow::Result<DbPool> {
    let connector = PgConnector::new(database_url)?;
    let mut config = ManagerConfig::default();
    config.custom_setup = Box::new(move |_url| {
        let connector = connector.clone();
        Box::pin(async move { establish(&connector).await })
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    Ok(Pool::builder(manager).max_size(max_size).build()?)
}

/// Opens one diesel connection through `connector`.
pub async fn establish(connector: &PgConnector) -> diesel::ConnectionResult<AsyncPgConnection> {
    let (client, connection) = connector
        .connect()
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(error_chain(&e)))?;
    AsyncPgConnection::try_from_client_and_connection(client, connection).await
}

/// `e` and its causes ("error performing TLS handshake: invalid peer certificate: UnknownIssuer"):
/// the top-level message alone does not say what to fix.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// Applies every pending migration; returns the versions applied. Runs diesel's synchronous
/// migration harness on a blocking thread over an async connection, so the runtime never blocks.
pub async fn migrate(database_url: &str) -> anyhow::Result<Vec<String>> {
    let connection = establish(&PgConnector::new(database_url)?).await?;
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(connection);
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
