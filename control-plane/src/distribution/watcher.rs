//! Follows the change log in Postgres and publishes each new config version.
//!
//! Changes can commit through any control-plane replica. Each committing transaction bumps the global
//! revision, inserts `config_changes` rows and sends `NOTIFY config_revision` (see `revision.rs`).
//! This watcher LISTENs for it and then reads every change after the version it has (a catch-up
//! read), so a notification that is lost (a dropped LISTEN connection, a restart) is never a lost
//! change: a periodic poll and every reconnect run the same catch-up. Bursts coalesce,
//! because notifications that arrive while a read runs collapse into one more read.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use gateway_shared::backoff::Backoff;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::state::{Change, ConfigState, Current, FullConfig};

use crate::revision::NOTIFY_CHANNEL;

/// What one catch-up read returns, all from one consistent database snapshot.
#[derive(Debug, Default)]
pub struct ChangeBatch {
    /// The global revision at the time of the read.
    pub version: u64,
    /// Changes after the requested version, ascending.
    pub changes: Vec<Change>,
    /// The current form of every touched object; absent = gone (deleted, deactivated, revoked).
    pub current: Current,
}

/// Where the watcher reads config from.
#[tonic::async_trait]
pub trait ConfigStore: Send + Sync + 'static {
    /// The current revision, its commit time (unix ms), every active webhook, every action and every
    /// active HMAC key, read consistently.
    async fn load_full(&self) -> anyhow::Result<FullConfig>;
    /// Everything that changed after `after`, read consistently.
    async fn load_changes(&self, after: u64) -> anyhow::Result<ChangeBatch>;
}

/// Settings of the watcher.
#[derive(Clone, Debug)]
pub struct WatcherConfig {
    /// Postgres URL for the LISTEN connection.
    pub database_url: String,
    /// Catch-up read interval when no notification arrives.
    pub poll_interval: Duration,
    /// Revisions remembered for deltas.
    pub max_history: usize,
}

/// Loads the config, then follows changes until `shutdown`; publishes every new version on `tx`.
pub async fn run(
    store: Arc<dyn ConfigStore>,
    config: WatcherConfig,
    tx: watch::Sender<Option<Arc<ConfigState>>>,
    shutdown: CancellationToken,
) {
    let wake = Arc::new(Notify::new());
    tokio::spawn(listen(
        config.database_url.clone(),
        wake.clone(),
        shutdown.clone(),
    ));

    let mut backoff = retry_delays();
    let mut state = loop {
        let started = std::time::Instant::now();
        match store.load_full().await {
            Ok(full) => {
                let read = started.elapsed();
                let (version, webhooks) = (full.version, full.webhooks.len());
                let (actions, hmac_keys) = (full.actions.len(), full.hmac_keys.len());
                let state = Arc::new(ConfigState::from_full(full));
                tracing::info!(
                    version,
                    webhooks,
                    actions,
                    hmac_keys,
                    read_ms = read.as_millis() as u64,
                    state_ms = (started.elapsed() - read).as_millis() as u64,
                    "config loaded"
                );
                break state;
            }
            Err(e) => {
                tracing::error!(error = %e, "loading config failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    };
    tx.send_replace(Some(state.clone()));

    let mut poll = tokio::time::interval(config.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = poll.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match store.load_changes(state.version).await {
            Ok(batch) if batch.version > state.version => {
                let next = state.advance(
                    batch.version,
                    &batch.changes,
                    &batch.current,
                    config.max_history,
                );
                tracing::debug!(
                    from = state.version,
                    to = next.version,
                    changes = batch.changes.len(),
                    "config advanced"
                );
                state = Arc::new(next);
                tx.send_replace(Some(state.clone()));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading config changes failed; will retry"),
        }
    }
}

/// Keeps a LISTEN connection open and wakes the watcher on each notification and on each (re)connect.
async fn listen(database_url: String, wake: Arc<Notify>, shutdown: CancellationToken) {
    // The pool was built from the same URL at start-up, so it parses; TLS follows its sslmode.
    let connector = match crate::db::PgConnector::new(&database_url) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "config LISTEN connection cannot be configured");
            return;
        }
    };
    let mut backoff = retry_delays();
    loop {
        match connector.connect().await {
            Ok((client, mut connection)) => {
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                let statement = format!("LISTEN {NOTIFY_CHANNEL}");
                let listen = client.batch_execute(&statement);
                // The connection must be polled for LISTEN to complete.
                let listening = tokio::select! {
                    r = listen => r.map_err(|e| e.to_string()),
                    m = messages.next() => Err(format!("connection ended early: {m:?}")),
                };
                match listening {
                    Ok(()) => {
                        backoff.reset();
                        wake.notify_one();
                        loop {
                            tokio::select! {
                                m = messages.next() => match m {
                                    Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => wake.notify_one(),
                                    Some(Ok(_)) => {}
                                    Some(Err(e)) => { tracing::warn!(error = %e, "config LISTEN connection failed"); break; }
                                    None => { tracing::warn!("config LISTEN connection closed"); break; }
                                },
                                _ = shutdown.cancelled() => return,
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN failed"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %crate::db::error_chain(&e), "cannot open the config LISTEN connection")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Retries of the full read and of the LISTEN connection: from 100ms up to 5s.
fn retry_delays() -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
}
