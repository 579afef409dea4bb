//! `ConfigDistributionService`: one long-lived stream per data plane (the protocol is in
//! `proto/webhook/gateway/v1/config_distribution.proto` and the README, "Config distribution
//! protocol").

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use gateway_proto::v1::config_distribution_service_server::ConfigDistributionService;
use gateway_proto::v1::{
    control_plane_message, data_plane_message, ControlPlaneMessage, DataPlaneMessage, Delta,
    FleetShare, Heartbeat, Hello, ListDataPlanesRequest, ListDataPlanesResponse, SnapshotChunk,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use super::messages;
use super::presence::{FleetKey, FleetView, Presence, PresenceGuard};
use super::sessions::{SessionGuard, Sessions};
use super::state::{ConfigState, Plan, PlaneRole, Scope};
use crate::api::serve;
use crate::auth::{Authenticator, Caller, Permission};
use crate::error::ApiError;
use crate::reasons;

/// Tuning of the stream.
#[derive(Clone, Debug)]
pub struct StreamSettings {
    /// Heartbeat interval while idle; a peer silent for three intervals is considered dead.
    pub heartbeat: Duration,
    /// Webhooks per snapshot chunk.
    pub chunk_size: usize,
    /// How answers are compressed for data planes that accept it.
    pub compression: super::StreamCompression,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(10),
            chunk_size: 1000,
            compression: super::StreamCompression::Zstd,
        }
    }
}

/// The gRPC service.
pub struct DistributionService {
    pub(super) state: watch::Receiver<Option<Arc<ConfigState>>>,
    pub(super) sessions: Arc<Sessions>,
    pub(super) presence: Arc<Presence>,
    pub(super) settings: StreamSettings,
    pub(super) auth: Authenticator,
    pub(super) failed: Arc<crate::failed_triggers::FailedTriggers>,
    pub(super) shutdown: CancellationToken,
}

type Outbound = Pin<Box<dyn Stream<Item = Result<ControlPlaneMessage, Status>> + Send>>;

impl DistributionService {
    /// Opens a config stream: waits for the data plane's Hello, then serves it in a session task.
    async fn open(
        &self,
        caller: Caller,
        peer: String,
        compression: &'static str,
        mut inbound: Streaming<DataPlaneMessage>,
    ) -> Result<Outbound, Status> {
        caller.require(Permission::ReceiveConfig)?;
        let hello = match tokio::time::timeout(Duration::from_secs(10), inbound.message()).await {
            Ok(Ok(Some(DataPlaneMessage {
                kind: Some(data_plane_message::Kind::Hello(h)),
            }))) => h,
            Ok(Ok(_)) => {
                return Err(Status::invalid_argument(
                    "the first message on the config stream must be Hello",
                ))
            }
            Ok(Err(status)) => return Err(status),
            Err(_) => return Err(Status::deadline_exceeded("no Hello within 10 s")),
        };
        if hello.data_plane_id.is_empty() || hello.data_plane_id.len() > 253 {
            return Err(Status::invalid_argument(
                "Hello.data_plane_id must be 1 to 253 characters",
            ));
        }
        let role = PlaneRole::from_proto(hello.role).ok_or_else(|| {
            Status::invalid_argument(format!(
                "Hello.role {} is not a role this control plane knows",
                hello.role
            ))
        })?;
        // A data-plane token receives the config of its own organization (and workspace) only, and
        // only the kinds of objects its role serves.
        let scope = Scope {
            organization_id: caller.organization_id,
            workspace_id: caller.workspace_id,
            role,
        };
        // INGEST planes count towards their scope's fleet and are told its size (rate-limit shares).
        let fleet = (role == PlaneRole::Ingest).then(|| Fleet {
            view: self.presence.view(),
            guard: self.presence.join(
                FleetKey {
                    organization_id: caller.organization_id,
                    workspace_id: caller.workspace_id,
                },
                &hello.data_plane_id,
            ),
            sent: None,
        });
        let (tx, rx) = mpsc::channel(4);
        let session = Session {
            fleet,
            guard: self
                .sessions
                .open(&hello.data_plane_id, peer, compression, &scope),
            out: tx,
            state: self.state.clone(),
            settings: self.settings.clone(),
            outstanding: HashMap::new(),
            base: hello.known_version,
            binary_ids: hello.binary_ids,
            scope,
            token_id: caller.token_id,
            expires_at_ms: caller.expires_at.saturating_mul(1000),
        };
        let shutdown = self.shutdown.clone();
        tokio::spawn(session.run(hello, inbound, shutdown));
        Ok(Box::pin(ReceiverStream::new(rx)))
    }
}

#[tonic::async_trait]
impl ConfigDistributionService for DistributionService {
    type StreamConfigStream = Outbound;

    async fn stream_config(
        &self,
        request: Request<Streaming<DataPlaneMessage>>,
    ) -> Result<Response<Self::StreamConfigStream>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let compression = negotiated(self.settings.compression, request.metadata());
        serve(&self.auth, request, |caller, inbound| {
            self.open(caller, peer, compression, inbound)
        })
        .await
    }

    async fn list_data_planes(
        &self,
        request: Request<ListDataPlanesRequest>,
    ) -> Result<Response<ListDataPlanesResponse>, Status> {
        serve(&self.auth, request, |caller, _| async move {
            caller.require(Permission::ManageTokens)?;
            let current_version = self.state.borrow().as_ref().map(|s| s.version).unwrap_or(0);
            Ok::<_, ApiError>(ListDataPlanesResponse {
                data_planes: self
                    .sessions
                    .list(caller.organization_id, caller.workspace_id),
                current_version,
            })
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn report_failed_triggers(
        &self,
        request: Request<gateway_proto::v1::ReportFailedTriggersRequest>,
    ) -> Result<Response<gateway_proto::v1::ReportFailedTriggersResponse>, Status> {
        serve(&self.auth, request, |caller, req| async move {
            self.failed.report(&caller, req).await
        })
        .await
    }
}

/// The encoding tonic answers with: the configured one when the client's `grpc-accept-encoding`
/// offers it, else none ("identity").
fn negotiated(configured: super::StreamCompression, metadata: &MetadataMap) -> &'static str {
    let name = match configured {
        super::StreamCompression::Zstd => "zstd",
        super::StreamCompression::Gzip => "gzip",
        super::StreamCompression::None => return "identity",
    };
    let offered = metadata
        .get("grpc-accept-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim() == name));
    if offered {
        name
    } else {
        "identity"
    }
}

/// An update sent and not yet answered.
struct Outstanding {
    version: u64,
    /// `Some(from)` for a delta, `None` for a snapshot.
    from: Option<u64>,
    committed_at_ms: i64,
}

/// An INGEST stream's place in the fleet count, and the size last sent to it.
struct Fleet {
    view: watch::Receiver<Arc<FleetView>>,
    guard: PresenceGuard,
    sent: Option<u32>,
}

struct Session {
    fleet: Option<Fleet>,
    guard: SessionGuard,
    out: mpsc::Sender<Result<ControlPlaneMessage, Status>>,
    state: watch::Receiver<Option<Arc<ConfigState>>>,
    settings: StreamSettings,
    outstanding: HashMap<String, Outstanding>,
    /// The version the next update is planned from: what the data plane serves once it has applied
    /// everything sent so far.
    base: u64,
    /// The data plane reads 16-byte ids (Hello `binary_ids`).
    binary_ids: bool,
    /// What this data plane may receive.
    scope: Scope,
    /// The API token the stream's JWT was exchanged for: its revocation ends the stream.
    token_id: uuid::Uuid,
    /// When the stream's JWT expires, unix milliseconds: the stream ends then.
    expires_at_ms: i64,
}

/// Why a session ended.
enum End {
    Closed,
}

impl Session {
    async fn run(
        mut self,
        hello: Hello,
        mut inbound: Streaming<DataPlaneMessage>,
        shutdown: CancellationToken,
    ) {
        let id = hello.data_plane_id.clone();
        tracing::info!(data_plane = %id, known_version = hello.known_version, "data plane connected");
        let _ = self.serve(hello, &mut inbound, shutdown).await;
        tracing::info!(data_plane = %id, "data plane disconnected");
    }

    async fn serve(
        &mut self,
        hello: Hello,
        inbound: &mut Streaming<DataPlaneMessage>,
        shutdown: CancellationToken,
    ) -> Result<(), End> {
        // Wait for the first loaded config; if the data plane is ahead of this replica (it was served by
        // a replica that has seen newer commits), give this one a moment to catch up before planning.
        let known = hello.known_version;
        let wait_until =
            |s: &Option<Arc<ConfigState>>| s.as_ref().is_some_and(|s| s.version >= known);
        let caught_up =
            tokio::time::timeout(Duration::from_secs(2), self.state.wait_for(wait_until))
                .await
                .map(|r| r.is_ok())
                .unwrap_or(false);
        if !caught_up {
            self.state
                .wait_for(|s| s.is_some())
                .await
                .map_err(|_| End::Closed)?;
        }
        let first = self.current()?;
        self.check_token(&first).await?;
        if known != 0 && first.version == known {
            self.guard.acked(known, 0, 0);
        }
        self.send_update(&first).await?;
        if let Some(fleet) = &mut self.fleet {
            // The first size sent includes this stream unless counting takes longer than a moment.
            let generation = fleet.guard.generation;
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                fleet.view.wait_for(|v| v.generation >= generation),
            )
            .await;
        }
        self.send_fleet_share().await?;

        let idle = self.settings.heartbeat * 3;
        let mut heartbeat = tokio::time::interval(self.settings.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        let mut last_heard = tokio::time::Instant::now();
        let left_ms = self.expires_at_ms - chrono::Utc::now().timestamp_millis();
        let expiry = tokio::time::sleep(Duration::from_millis(u64::try_from(left_ms).unwrap_or(0)));
        tokio::pin!(expiry);
        loop {
            tokio::select! {
                changed = self.state.changed() => {
                    changed.map_err(|_| End::Closed)?;
                    let state = self.current()?;
                    self.check_token(&state).await?;
                    self.send_update(&state).await?;
                }
                _ = &mut expiry => {
                    return Err(self.end_unauthenticated(ApiError::Unauthenticated {
                        reason: reasons::TOKEN_EXPIRED,
                        message: "the stream's JWT expired: exchange the API token again and reconnect",
                    }).await);
                }
                msg = inbound.message() => {
                    last_heard = tokio::time::Instant::now();
                    match msg {
                        Ok(Some(m)) => self.handle(m).await?,
                        Ok(None) => return Err(End::Closed),
                        Err(status) => {
                            tracing::debug!(error = %status, "config stream broke");
                            return Err(End::Closed);
                        }
                    }
                }
                Ok(()) = async {
                    match &mut self.fleet {
                        Some(f) => f.view.changed().await,
                        None => std::future::pending().await,
                    }
                } => self.send_fleet_share().await?,
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > idle {
                        tracing::warn!("data plane silent for three heartbeats; closing its stream");
                        return Err(End::Closed);
                    }
                    self.send(control_plane_message::Kind::Heartbeat(Heartbeat {
                        sent_at_unix_ms: chrono::Utc::now().timestamp_millis(),
                    })).await?;
                }
                _ = shutdown.cancelled() => return Err(End::Closed),
            }
        }
    }

    /// Tells an INGEST plane its fleet's size when it is new to it.
    async fn send_fleet_share(&mut self) -> Result<(), End> {
        let Some(fleet) = &mut self.fleet else {
            return Ok(());
        };
        let planes = fleet.view.borrow_and_update().planes(&fleet.guard.key);
        if fleet.sent == Some(planes) {
            return Ok(());
        }
        fleet.sent = Some(planes);
        self.send(control_plane_message::Kind::FleetShare(FleetShare {
            planes,
        }))
        .await
    }

    /// Ends the stream (UNAUTHENTICATED, TOKEN_REVOKED) when `state` knows the stream's API token
    /// as revoked.
    async fn check_token(&self, state: &ConfigState) -> Result<(), End> {
        if state.revoked_tokens.contains(&self.token_id) {
            return Err(self
                .end_unauthenticated(ApiError::Unauthenticated {
                    reason: reasons::TOKEN_REVOKED,
                    message: "the API token of this stream was revoked",
                })
                .await);
        }
        Ok(())
    }

    /// Sends `error` as the stream's final status.
    async fn end_unauthenticated(&self, error: ApiError) -> End {
        tracing::info!(error = %error, "ending the config stream");
        let _ = self.out.send(Err(error.into())).await;
        End::Closed
    }

    fn current(&self) -> Result<Arc<ConfigState>, End> {
        self.state.borrow().clone().ok_or(End::Closed)
    }

    async fn handle(&mut self, m: DataPlaneMessage) -> Result<(), End> {
        match m.kind {
            Some(data_plane_message::Kind::Ack(ack)) => {
                if let Some(o) = self.outstanding.remove(&ack.nonce) {
                    self.guard
                        .acked(o.version, o.committed_at_ms, ack.apply_micros);
                }
            }
            Some(data_plane_message::Kind::Nack(nack)) => {
                let Some(o) = self.outstanding.remove(&nack.nonce) else {
                    return Ok(());
                };
                tracing::warn!(version = o.version, serving = nack.serving_version, reason = %nack.reason, "data plane rejected config");
                self.guard.nacked(nack.serving_version, &nack.reason);
                // Everything sent after the rejected update was planned from a version the data plane
                // does not serve; plan again from what it does serve.
                self.outstanding.clear();
                self.base = nack.serving_version;
                // A delta that did not fit the data plane's version is resent at once (as a new delta or a
                // snapshot). A rejected config is not resent until the config changes again.
                if o.from.is_some_and(|from| from != nack.serving_version) {
                    let state = self.current()?;
                    self.send_update(&state).await?;
                }
            }
            Some(data_plane_message::Kind::Heartbeat(_)) => {}
            Some(data_plane_message::Kind::Hello(_)) | None => {
                let _ = self
                    .out
                    .send(Err(Status::invalid_argument(
                        "unexpected message on the config stream",
                    )))
                    .await;
                return Err(End::Closed);
            }
        }
        Ok(())
    }

    async fn send(&self, kind: control_plane_message::Kind) -> Result<(), End> {
        self.out
            .send(Ok(ControlPlaneMessage { kind: Some(kind) }))
            .await
            .map_err(|_| End::Closed)
    }

    async fn send_update(&mut self, state: &ConfigState) -> Result<(), End> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let from = self.base;
        match state.plan(from, &self.scope) {
            Plan::UpToDate => return Ok(()),
            Plan::Snapshot => {
                let plan = state.snapshot_for(&self.scope);
                for chunk in
                    messages::snapshot_chunks(&plan, self.settings.chunk_size, self.binary_ids)
                {
                    self.send(control_plane_message::Kind::Snapshot(SnapshotChunk {
                        version: state.version,
                        nonce: nonce.clone(),
                        committed_at_unix_ms: state.committed_at_ms,
                        ..chunk
                    }))
                    .await?;
                }
                self.remember(nonce, state, None);
            }
            Plan::Delta(plan) => {
                self.send(control_plane_message::Kind::Delta(Delta {
                    version: state.version,
                    nonce: nonce.clone(),
                    from_version: from,
                    committed_at_unix_ms: state.committed_at_ms,
                    ..messages::delta(&plan, self.binary_ids)
                }))
                .await?;
                self.remember(nonce, state, Some(from));
            }
        }
        Ok(())
    }

    fn remember(&mut self, nonce: String, state: &ConfigState, from: Option<u64>) {
        self.guard.sent(state.version);
        self.base = state.version;
        // A data plane answers every update; keep a bounded window in case one never does.
        if self.outstanding.len() >= 64 {
            self.outstanding.clear();
        }
        self.outstanding.insert(
            nonce,
            Outstanding {
                version: state.version,
                from,
                committed_at_ms: state.committed_at_ms,
            },
        );
    }
}
