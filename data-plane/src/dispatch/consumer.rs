//! Reading invocations (docs/dispatcher.md, "Delivery"): a consumer group with automatic commits
//! off. Invocations run concurrently up to the global in-flight cap; each partition's offset is
//! committed only up to the invocations whose results the broker acknowledged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::config::DispatchConfig;
use super::offsets::{OffsetTracker, Ticket};
use super::worker::Worker;

/// The consumer's view of its group: which invocations run, whether it was assigned partitions.
pub struct GroupContext {
    tracker: Mutex<OffsetTracker>,
    joined: Arc<AtomicBool>,
}

impl GroupContext {
    fn tracker(&self) -> std::sync::MutexGuard<'_, OffsetTracker> {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut tracker = self.tracker();
            for e in tpl.elements() {
                tracker.revoke(&(e.topic().to_owned(), e.partition()));
            }
            tracing::info!(
                partitions = tpl.count(),
                "partitions revoked; what still runs for them is not committed here"
            );
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.joined.store(true, Ordering::Release);
                tracing::info!(partitions = tpl.count(), "partitions assigned");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "consumer group rebalance failed"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::warn!(error = %e, "offset commit failed; a later commit covers it");
        }
    }
}

/// The invocation consumer.
pub type InvocationConsumer = StreamConsumer<GroupContext>;

/// Creates the consumer and subscribes it to the invocation topic. `joined` is set once it joined
/// its group and received its assignment (possibly empty, when there are more dispatchers than
/// partitions).
pub fn create(
    config: &DispatchConfig,
    joined: Arc<AtomicBool>,
) -> anyhow::Result<InvocationConsumer> {
    let mut cc = ClientConfig::new();
    cc.set("auto.offset.reset", "earliest");
    for (k, v) in &config.kafka_properties {
        cc.set(k, v);
    }
    cc.set("bootstrap.servers", &config.kafka_bootstrap)
        .set("group.id", &config.consumer_group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    let consumer: InvocationConsumer = cc.create_with_context(GroupContext {
        tracker: Mutex::default(),
        joined,
    })?;
    consumer.subscribe(&[&config.invocation_topic])?;
    Ok(consumer)
}

/// Settings of the loop.
#[derive(Debug, Clone, Copy)]
pub struct LoopSettings {
    /// Invocations at once.
    pub max_in_flight: usize,
    /// How long shutdown waits for running invocations.
    pub grace: Duration,
}

/// Reads and runs invocations until `shutdown`; then waits up to the grace period for what runs,
/// abandons the rest uncommitted, and commits what finished.
pub async fn run(
    consumer: Arc<InvocationConsumer>,
    worker: Arc<Worker>,
    settings: LoopSettings,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(settings.max_in_flight));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Ticket>();
    let mut tasks = JoinSet::new();
    // Stops result publishing that is still retrying when the grace period ends.
    let abandon = CancellationToken::new();
    let mut permit = None;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(ticket) = done_rx.recv() => finished(&consumer, ticket),
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            p = permits.clone().acquire_owned(), if permit.is_none() => permit = p.ok(),
            message = consumer.recv(), if permit.is_some() => {
                let message = match message {
                    Ok(m) => m.detach(),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading invocations failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let ticket = consumer
                    .context()
                    .tracker()
                    .start((message.topic().to_owned(), message.partition()), message.offset());
                let permit = permit.take();
                let worker = worker.clone();
                let done = done_tx.clone();
                let abandon = abandon.clone();
                tasks.spawn(async move {
                    if worker.process(message, &abandon).await {
                        let _ = done.send(ticket);
                    }
                    drop(permit);
                });
            }
        }
    }
    let running = tasks.len();
    if running > 0 {
        tracing::info!(
            running,
            grace_s = settings.grace.as_secs(),
            "waiting for running invocations"
        );
    }
    let deadline = tokio::time::sleep(settings.grace);
    tokio::pin!(deadline);
    while !tasks.is_empty() {
        tokio::select! {
            Some(_) = tasks.join_next() => {}
            Some(ticket) = done_rx.recv() => finished(&consumer, ticket),
            _ = &mut deadline => {
                tracing::warn!(abandoned = tasks.len(), "grace period over; abandoning running invocations uncommitted (they run again after a restart)");
                abandon.cancel();
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
            }
        }
    }
    drop(done_tx);
    while let Some(ticket) = done_rx.recv().await {
        finished(&consumer, ticket);
    }
    let positions = consumer.context().tracker().positions();
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), next) in positions {
        let _ = tpl.add_partition_offset(&topic, partition, Offset::Offset(next));
    }
    if tpl.count() > 0 {
        let c = consumer.clone();
        let committed = tokio::task::spawn_blocking(move || c.commit(&tpl, CommitMode::Sync)).await;
        match committed {
            Ok(Ok(())) => tracing::info!("offsets committed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "final offset commit failed"),
            Err(e) => tracing::warn!(error = %e, "final offset commit task failed"),
        }
    }
}

/// An invocation's result was acknowledged (or it was skipped): commit its partition as far as
/// the invocations before it allow.
fn finished(consumer: &InvocationConsumer, ticket: Ticket) {
    let Some(next) = consumer.context().tracker().finish(&ticket) else {
        return;
    };
    let mut tpl = TopicPartitionList::new();
    if tpl
        .add_partition_offset(
            &ticket.partition.0,
            ticket.partition.1,
            Offset::Offset(next),
        )
        .is_err()
    {
        return;
    }
    if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
        tracing::warn!(error = %e, "offset commit failed; a later commit covers it");
    }
}
