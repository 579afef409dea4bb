//! The data plane's side of the config stream: connect, say Hello with the version served, apply
//! snapshots and deltas to the routing table, ACK or NACK each, heartbeat, and reconnect with
//! backoff whenever the stream breaks — serving the last good config all the while.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_proto::v1::config_distribution_service_client::ConfigDistributionServiceClient;
use gateway_proto::v1::{
    control_plane_message, data_plane_message, ActionRoute, DataPlaneMessage, DataPlaneRole,
    Heartbeat, Hello, HmacKeyRoute,
};
use gateway_shared::backoff::Backoff;
use gateway_shared::snapshot::{ConfigDelta, ConfigSnapshot, WebhookConfig};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::apply;
use super::cache::SnapshotCache;

/// Where the stream delivers config: the routing table.
pub trait ConfigSink: Send + Sync + 'static {
    /// The version served now (0 = none).
    fn version(&self) -> u64;
    /// Replaces the whole config; `Err` leaves the current config in place.
    fn apply_snapshot(&self, snapshot: ConfigSnapshot) -> Result<(), String>;
    /// Applies changes; `Err` (including a `from_version` that is not the current one) leaves the
    /// current config in place.
    fn apply_delta(&self, delta: ConfigDelta) -> Result<(), String>;
    /// INGEST planes: starts a snapshot whose webhooks are handed over chunk by chunk as they
    /// arrive, so a large snapshot is compiled while the rest of it is still on the wire; `None`
    /// (the default) collects them for [`ConfigSink::apply_snapshot`].
    fn stage_snapshot(&self) -> Option<Box<dyn SnapshotStage>> {
        None
    }
    /// The config served now, for the disk cache.
    fn snapshot(&self) -> ConfigSnapshot;
    /// What this plane serves, sent in `Hello`: it decides which resources the stream carries.
    fn role(&self) -> DataPlaneRole {
        DataPlaneRole::Ingest
    }
    /// INGEST planes: `planes` planes (this one included) share the webhooks' rate limits.
    fn fleet_share(&self, _planes: u32) {}
    /// DISPATCH planes: replaces the actions and HMAC keys; `Err` keeps the current ones.
    fn apply_dispatch_snapshot(&self, _snapshot: DispatchSnapshot) -> Result<(), String> {
        Err("this plane does not serve actions".into())
    }
    /// DISPATCH planes: applies action and HMAC key changes; `Err` keeps the current ones.
    fn apply_dispatch_delta(&self, _delta: DispatchDelta) -> Result<(), String> {
        Err("this plane does not serve actions".into())
    }
}

/// A snapshot being built as its chunks arrive (see [`ConfigSink::stage_snapshot`]); dropping it
/// leaves the served config as it was.
pub trait SnapshotStage: Send {
    /// Adds the webhooks of one chunk; `Err` rejects the whole snapshot.
    fn add(&mut self, webhooks: Vec<WebhookConfig>) -> Result<(), String>;
    /// Serves the snapshot at `version`.
    fn finish(self: Box<Self>, version: u64) -> Result<(), String>;
}

/// A full snapshot for a DISPATCH plane, as the stream carried it (the sink validates it).
#[derive(Debug, Default)]
pub struct DispatchSnapshot {
    /// The config version.
    pub version: u64,
    /// Every action.
    pub actions: Vec<ActionRoute>,
    /// Every active HMAC key.
    pub hmac_keys: Vec<HmacKeyRoute>,
}

/// The changes for a DISPATCH plane from `from_version` to `to_version`.
#[derive(Debug, Default)]
pub struct DispatchDelta {
    /// The version the receiver must serve.
    pub from_version: u64,
    /// The version after applying.
    pub to_version: u64,
    /// Actions registered or changed (replace whole).
    pub action_upserts: Vec<ActionRoute>,
    /// Ids of deleted actions.
    pub action_removals: Vec<String>,
    /// HMAC keys created.
    pub hmac_key_upserts: Vec<HmacKeyRoute>,
    /// Ids of revoked HMAC keys.
    pub hmac_key_removals: Vec<String>,
}

/// Gets the bearer token for the stream (a JWT exchanged for the data plane's API token).
#[tonic::async_trait]
pub trait Credentials: Send + Sync + 'static {
    /// A token to send as `authorization: Bearer …`.
    async fn bearer(&self, channel: Channel) -> Result<String, tonic::Status>;
}

/// Settings of the stream client.
#[derive(Clone, Debug)]
pub struct StreamClientConfig {
    /// `http://host:port` or `https://host:port` of the control plane.
    pub endpoint: String,
    /// This data plane's name in the control plane's view.
    pub data_plane_id: String,
    /// PEM CA certificate to verify the control plane's TLS certificate (enables TLS).
    pub tls_ca_pem: Option<Vec<u8>>,
    /// Server name to verify when it differs from the endpoint's host.
    pub tls_domain: Option<String>,
    /// Heartbeat interval; the control plane silent for three of them means a dead stream.
    pub heartbeat: Duration,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
}

/// The open connection to the control plane and the bearer token it was opened with. The
/// failed-trigger reporter sends its batches over it, so a data plane keeps one connection.
#[derive(Clone)]
pub struct Link {
    /// The HTTP/2 connection (cheap to clone; it stays open while any clone lives).
    pub channel: Channel,
    /// `authorization` value for calls on it.
    pub bearer: String,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").finish_non_exhaustive()
    }
}

/// What the stream client reports about itself (for readiness and metrics).
#[derive(Debug, Default)]
pub struct StreamStatus {
    /// The connection of the open stream; `None` while disconnected.
    pub link: watch::Sender<Option<Link>>,
    /// A stream is open now.
    pub connected: AtomicBool,
    /// Unix milliseconds of the last applied update (0 = none yet).
    pub last_applied_ms: AtomicI64,
    /// Updates applied.
    pub applied: AtomicU64,
    /// Updates rejected.
    pub rejected: AtomicU64,
}

/// Runs until `shutdown`: connects, streams, reconnects with exponential backoff and jitter.
pub async fn run(
    config: StreamClientConfig,
    credentials: Arc<dyn Credentials>,
    sink: Arc<dyn ConfigSink>,
    cache: Option<SnapshotCache>,
    status: Arc<StreamStatus>,
    shutdown: CancellationToken,
) {
    let cache_writer = cache.map(|c| CacheWriter::spawn(c, sink.clone(), shutdown.clone()));
    let mut backoff = Backoff::new(Duration::from_millis(100), config.max_backoff);
    loop {
        let started = Instant::now();
        let result = session(
            &config,
            credentials.as_ref(),
            sink.as_ref(),
            cache_writer.as_ref(),
            &status,
            &shutdown,
        )
        .await;
        let was_open = status.connected.swap(false, Ordering::AcqRel);
        if shutdown.is_cancelled() {
            // The link stays: the failed-trigger reporter flushes over it while the process drains.
            return;
        }
        status.link.send_replace(None);
        match result {
            Ok(()) => tracing::info!("config stream closed by the control plane; reconnecting"),
            // An open stream ended because its JWT expired or its API token was revoked
            // (docs/data-plane.md, "Config stream"): exchange the token again at once; a revoked
            // token is refused by the exchange and backs off from there.
            Err(SessionError::Status(s))
                if was_open && s.code() == tonic::Code::Unauthenticated =>
            {
                tracing::info!(reason = %s.message(), "config stream ended by the control plane's token check; exchanging the API token again");
                backoff.reset();
            }
            Err(e) => {
                tracing::warn!(error = %e, "config stream failed; keeping the current config and reconnecting")
            }
        }
        // A stream that stayed up a while was a success: the next failure retries quickly again.
        if started.elapsed() > Duration::from_secs(30) {
            backoff.reset();
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The endpoint to the control plane, with TLS when configured.
pub fn endpoint(config: &StreamClientConfig) -> Result<Endpoint, tonic::transport::Error> {
    let mut ep = Endpoint::from_shared(config.endpoint.clone())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(config.heartbeat)
        .keep_alive_timeout(config.heartbeat * 2)
        .keep_alive_while_idle(true);
    if let Some(ca) = &config.tls_ca_pem {
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        if let Some(domain) = &config.tls_domain {
            tls = tls.domain_name(domain.clone());
        }
        ep = ep.tls_config(tls)?;
    }
    Ok(ep)
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("control plane answered: {0}")]
    Status(#[from] tonic::Status),
    #[error("control plane silent for {0:?}")]
    Silent(Duration),
    #[error("outbound stream closed")]
    Outbound,
}

async fn session(
    config: &StreamClientConfig,
    credentials: &dyn Credentials,
    sink: &dyn ConfigSink,
    cache: Option<&CacheWriter>,
    status: &StreamStatus,
    shutdown: &CancellationToken,
) -> Result<(), SessionError> {
    let channel = endpoint(config)?.connect().await?;
    let bearer = credentials.bearer(channel.clone()).await?;
    let channel_for_link = channel.clone();
    // Offer zstd, then gzip: a control plane that compresses picks one of them, an earlier one
    // ignores the offer and sends uncompressed messages (docs/data-plane.md, "Config stream").
    let mut client = ConfigDistributionServiceClient::new(channel)
        .max_decoding_message_size(256 * 1024 * 1024)
        .accept_compressed(CompressionEncoding::Zstd)
        .accept_compressed(CompressionEncoding::Gzip);
    let (tx, rx) = mpsc::channel::<DataPlaneMessage>(16);
    let send = |kind| {
        let tx = tx.clone();
        async move {
            tx.send(DataPlaneMessage { kind: Some(kind) })
                .await
                .map_err(|_| SessionError::Outbound)
        }
    };
    send(data_plane_message::Kind::Hello(Hello {
        data_plane_id: config.data_plane_id.clone(),
        known_version: sink.version(),
        software_version: env!("CARGO_PKG_VERSION").to_owned(),
        role: sink.role() as i32,
        binary_ids: true,
    }))
    .await?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    let value = format!("Bearer {bearer}")
        .parse()
        .map_err(|_| tonic::Status::unauthenticated("the token cannot be sent as a header"))?;
    request.metadata_mut().insert("authorization", value);
    let mut inbound = client.stream_config(request).await?.into_inner();
    status.connected.store(true, Ordering::Release);
    status.link.send_replace(Some(Link {
        channel: channel_for_link,
        bearer: format!("Bearer {bearer}"),
    }));
    tracing::info!(endpoint = %config.endpoint, version = sink.version(), "config stream open");

    let idle = config.heartbeat * 3;
    let mut heartbeat = tokio::time::interval(config.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut assembly: Option<apply::Assembly> = None;
    loop {
        let message = tokio::select! {
            m = tokio::time::timeout(idle, inbound.message()) => match m {
                Ok(m) => m?,
                Err(_) => return Err(SessionError::Silent(idle)),
            },
            _ = heartbeat.tick() => {
                send(data_plane_message::Kind::Heartbeat(Heartbeat { sent_at_unix_ms: chrono::Utc::now().timestamp_millis() })).await?;
                continue;
            }
            _ = shutdown.cancelled() => return Ok(()),
        };
        let Some(message) = message else {
            return Ok(());
        };
        let answer = match message.kind {
            Some(control_plane_message::Kind::Snapshot(chunk)) => {
                apply::on_chunk(chunk, &mut assembly, sink)
            }
            Some(control_plane_message::Kind::Delta(delta)) => Some(apply::on_delta(delta, sink)),
            Some(control_plane_message::Kind::FleetShare(share)) => {
                tracing::info!(
                    planes = share.planes,
                    "rate limits shared with this many data planes"
                );
                sink.fleet_share(share.planes);
                None
            }
            Some(control_plane_message::Kind::Heartbeat(_)) | None => None,
        };
        if let Some(answer) = answer {
            match &answer {
                data_plane_message::Kind::Ack(ack) => {
                    status.applied.fetch_add(1, Ordering::Relaxed);
                    status
                        .last_applied_ms
                        .store(chrono::Utc::now().timestamp_millis(), Ordering::Release);
                    tracing::info!(version = ack.version, "config applied");
                    if let Some(c) = cache {
                        c.dirty(ack.version);
                    }
                }
                data_plane_message::Kind::Nack(nack) => {
                    status.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(version = nack.version, serving = nack.serving_version, reason = %nack.reason, "config rejected");
                }
                _ => {}
            }
            send(answer).await?;
        }
    }
}

/// Writes the served config to the disk cache in the background, at most once a second.
pub struct CacheWriter {
    dirty: tokio::sync::watch::Sender<u64>,
}

impl CacheWriter {
    fn spawn(cache: SnapshotCache, sink: Arc<dyn ConfigSink>, shutdown: CancellationToken) -> Self {
        let (dirty, mut rx) = tokio::sync::watch::channel(0u64);
        tokio::spawn(async move {
            loop {
                let stopping = tokio::select! {
                    r = rx.changed() => r.is_err(),
                    _ = shutdown.cancelled() => true,
                };
                if rx.borrow_and_update().to_owned() == 0 && stopping {
                    return;
                }
                let snapshot = sink.snapshot();
                let version = snapshot.version;
                let c = cache.clone();
                match tokio::task::spawn_blocking(move || c.store(&snapshot)).await {
                    Ok(Ok(())) => {
                        tracing::debug!(version, path = %cache.path().display(), "snapshot cached")
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "writing the snapshot cache failed"),
                    Err(e) => tracing::warn!(error = %e, "snapshot cache writer panicked"),
                }
                if stopping {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        });
        Self { dirty }
    }

    fn dirty(&self, version: u64) {
        self.dirty.send_replace(version);
    }
}
