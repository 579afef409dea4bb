//! `data-plane dispatch`: the dispatcher of outbound action calls (docs/dispatcher.md). It gets
//! actions and HMAC keys over the config stream (role DISPATCH), reads invocation records from
//! Kafka with a consumer group, calls the action servers with signed requests and publishes each
//! result, committing an invocation's offset only after its result was acknowledged.
//!
//! `main` parses [`DispatchConfig`] and calls [`run`]; tests build a [`Dispatcher`], feed its
//! [`Actions`] directly or through a control plane, then `serve`.

mod actions;
mod admin;
mod breaker;
mod call;
mod config;
mod consumer;
mod invocation;
mod metrics;
mod offsets;
mod outcome;
mod reply;
mod worker;

pub use crate::distribution::{DispatchDelta, DispatchSnapshot};
pub use actions::Actions;
pub use config::DispatchConfig;
pub use invocation::Tenancy;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gateway_outbound::{ActionClient, DestinationPolicy};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::actions::{ActionSettings, ActionsSink};
use self::breaker::BreakerSettings;
use self::call::{AppRateLimit, Caller, RetrySettings};
use self::metrics::DispatchMetrics;
use crate::distribution::{self, StreamStatus};

/// A configured dispatcher, not yet running.
pub struct Dispatcher {
    config: DispatchConfig,
    actions: Actions,
    metrics: Arc<DispatchMetrics>,
    stream_status: Arc<StreamStatus>,
}

impl Dispatcher {
    /// Validates the config, every problem at once.
    pub fn new(mut config: DispatchConfig) -> anyhow::Result<Self> {
        let mut renamed = Vec::new();
        crate::config::STREAM_HEARTBEAT.apply(
            &mut config.stream.stream_heartbeat_ms,
            &mut config.stream.stream_heartbeat,
            &mut renamed,
        );
        for warning in renamed {
            tracing::warn!("{warning}");
        }
        if let Err(problems) = config.validate() {
            anyhow::bail!("invalid configuration:\n  - {}", problems.join("\n  - "));
        }
        let actions = Actions::new(ActionSettings {
            concurrency: config.action_concurrency,
            breaker: BreakerSettings {
                failures: config.breaker_failures,
                cool_down: config.breaker_cool_down,
            },
        });
        Ok(Self {
            config,
            actions,
            metrics: Arc::new(DispatchMetrics::new()),
            stream_status: Default::default(),
        })
    }

    /// The config table (tests apply snapshots and deltas to it directly).
    pub fn actions(&self) -> &Actions {
        &self.actions
    }

    /// What the config stream reports.
    pub fn stream_status(&self) -> Arc<StreamStatus> {
        self.stream_status.clone()
    }

    /// Runs until `shutdown`: then stops reading, lets running invocations finish within the
    /// grace period (abandoning the rest uncommitted), commits, and stops.
    pub async fn serve(
        self,
        admin: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let config = &self.config;
        let allow = DestinationPolicy::parse_allowlist(&config.allow_cidrs)
            .map_err(|e| anyhow::anyhow!("--allow-cidrs: {e}"))?;
        let client = ActionClient::new(
            DestinationPolicy::new(config.allow_http, allow),
            config.max_answer_bytes,
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        let replies = reply::Replies::new(config, self.metrics.clone())
            .context("creating the result producer")?;
        let joined = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let consumer = Arc::new(
            consumer::create(config, joined.clone()).context("creating the invocation consumer")?,
        );
        let worker = Arc::new(worker::Worker {
            caller: Caller {
                client,
                actions: self.actions.clone(),
                rate: AppRateLimit::new(
                    config.app_rate_per_hour,
                    config.app_rate_burst,
                    config.rate_limit_max_wait,
                ),
                retry: RetrySettings {
                    max_attempts: config.max_attempts,
                    initial_delay: config.retry_initial_delay,
                    max_delay: config.retry_max_delay,
                    retry_after_max: config.retry_after_max,
                    call_timeout: config.call_timeout,
                },
                metrics: self.metrics.clone(),
            },
            replies,
            metrics: self.metrics.clone(),
        });

        let stream_stop = CancellationToken::new();
        let stream_task = match distribution::client_settings(&config.stream)? {
            Some((settings, credentials)) => Some(tokio::spawn(distribution::client::run(
                settings,
                credentials,
                Arc::new(ActionsSink(self.actions.clone())),
                None,
                self.stream_status.clone(),
                stream_stop.clone(),
            ))),
            None => {
                tracing::warn!(
                    "no control-plane URL: the dispatcher serves only config applied in-process"
                );
                None
            }
        };
        let admin_state = Arc::new(admin::AdminState {
            actions: self.actions.clone(),
            joined,
            draining: Default::default(),
            metrics: self.metrics.clone(),
            stream: self.stream_status.clone(),
        });
        tracing::info!(
            admin = %admin.local_addr()?,
            invocations = %config.invocation_topic,
            results = %config.result_topic,
            group = %config.consumer_group,
            "dispatcher running"
        );
        let admin_stop = CancellationToken::new();
        let admin_task = tokio::spawn(crate::admin::serve(
            admin,
            admin_state.clone(),
            admin_stop.clone(),
        ));
        let loop_stop = CancellationToken::new();
        let loop_task = tokio::spawn(consumer::run(
            consumer.clone(),
            worker.clone(),
            consumer::LoopSettings {
                max_in_flight: config.max_in_flight,
                grace: config.shutdown_grace,
            },
            loop_stop.clone(),
        ));

        shutdown.cancelled().await;
        tracing::info!("shutting down");
        admin_state.draining.store(true, Ordering::Release);
        loop_stop.cancel();
        if let Err(e) = loop_task.await {
            tracing::error!(error = %e, "invocation loop task failed");
        }
        stream_stop.cancel();
        if let Some(t) = stream_task {
            let _ = t.await;
        }
        // Leaving the group blocks while librdkafka closes the consumer.
        let _ = tokio::task::spawn_blocking(move || {
            drop(consumer);
            worker.replies.flush_blocking(Duration::from_secs(5));
        })
        .await;
        admin_stop.cancel();
        admin_task.await.context("admin listener task")??;
        tracing::info!("dispatcher stopped");
        Ok(())
    }
}

/// Builds a [`Dispatcher`] from `config` and runs it until `shutdown` is cancelled.
pub async fn run(
    config: DispatchConfig,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Dispatcher::new(config)?.serve(admin, shutdown).await
}
