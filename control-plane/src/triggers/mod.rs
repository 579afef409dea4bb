//! TriggerService: bindings committed with a process version, the Manage Triggers view, and trigger
//! state (docs/control-plane.md, "Rules"). The trigger type is derived from the node kind, never set
//! separately. Input is checked in [`validate`], rows are in [`store`]; failed triggers are served
//! by [`crate::failed_triggers`].

pub(crate) mod store;
mod validate;

use std::sync::Arc;

use diesel_async::AsyncConnection;
use tonic::{Request, Response, Status};
use tracing::instrument;
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_proto::v1::trigger_service_server::TriggerService;
use gateway_shared::TriggerState;

use self::store::{bindings_of, bindings_of_one, trigger_to_proto, BindingRow};
use crate::api::{serve, AppState, Page};
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::failed_triggers::FailedTriggers;
use crate::reasons;
use crate::revision::{record_change, ChangeKind};
use crate::scope::parse_uuid;
use crate::webhooks::store as webhook_store;

/// Implements TriggerService.
#[derive(Clone)]
pub(crate) struct Triggers {
    state: AppState,
    failed: Arc<FailedTriggers>,
}

impl Triggers {
    /// Over the shared state; failed triggers are served by `failed`.
    pub fn new(state: AppState, failed: Arc<FailedTriggers>) -> Self {
        Self { state, failed }
    }

    async fn commit(
        &self,
        caller: Caller,
        req: pb::CommitTriggerBindingsRequest,
    ) -> ApiResult<pb::CommitTriggerBindingsResponse> {
        let scope = caller.require_app(Permission::Write, req.app.as_ref())?;
        let commit = validate::commit(&req)?;
        let new = req
            .bindings
            .iter()
            .map(validate::binding)
            .collect::<ApiResult<Vec<_>>>()?;
        let mut conn = self.state.conn().await?;
        let stored = conn
            .transaction(async move |conn| -> ApiResult<Vec<BindingRow>> {
                let mut ids: Vec<Uuid> = new.iter().map(|b| b.webhook_id).collect();
                ids.sort_unstable();
                ids.dedup();
                store::check_bound_webhooks(conn, scope, &ids, &new).await?;
                let (old, stored) = store::replace(conn, scope, &commit, &new).await?;
                let touched: Vec<Uuid> = old.into_iter().chain(ids).collect();
                record_change(conn, &touched, ChangeKind::BindingsCommitted).await?;
                Ok(stored)
            })
            .await?;
        tracing::info!(bindings = stored.len(), "trigger bindings committed");
        Ok(pb::CommitTriggerBindingsResponse {
            bindings: stored
                .iter()
                .map(BindingRow::to_proto)
                .collect::<ApiResult<_>>()?,
        })
    }

    async fn list(
        &self,
        caller: Caller,
        req: pb::ListTriggersRequest,
    ) -> ApiResult<pb::ListTriggersResponse> {
        let scope = caller.require_app(Permission::Read, req.app.as_ref())?;
        let page = Page::parse(req.page_size, &req.page_token)?;
        let mut conn = self.state.conn().await?;
        let mut rows =
            store::bound_webhooks(&mut conn, scope, page.after.as_deref(), page.fetch()).await?;
        let next_page_token = page.finish(&mut rows, |r| r.name.clone());
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut bindings = bindings_of(&mut conn, &ids).await?;
        let triggers = rows
            .iter()
            .map(|r| trigger_to_proto(r, &bindings.remove(&r.id).unwrap_or_default()))
            .collect::<ApiResult<_>>()?;
        Ok(pb::ListTriggersResponse {
            triggers,
            next_page_token,
        })
    }

    /// ActivateTrigger and DeactivateTrigger.
    async fn set_state(
        &self,
        caller: Caller,
        webhook_id: &str,
        target: TriggerState,
    ) -> ApiResult<pb::Trigger> {
        caller.require(Permission::Write)?;
        let id = parse_uuid(webhook_id, "webhook_id")?;
        let mut conn = self.state.conn().await?;
        conn.transaction(async move |conn| -> ApiResult<pb::Trigger> {
            let row = webhook_store::load(conn, &caller, id, true).await?;
            let bindings = bindings_of_one(conn, id).await?;
            if target == TriggerState::Active && bindings.is_empty() {
                return Err(ApiError::precondition(
                    reasons::TRIGGER_NOT_BOUND,
                    "the webhook is not bound to any node of a committed process version",
                ));
            }
            if row.state()? == target {
                return trigger_to_proto(&row, &bindings);
            }
            let row = store::set_state(conn, id, target).await?;
            let kind = if target == TriggerState::Active {
                ChangeKind::Activated
            } else {
                ChangeKind::Deactivated
            };
            record_change(conn, &[id], kind).await?;
            tracing::info!(webhook_id = %id, state = target.as_str(), "trigger state changed");
            trigger_to_proto(&row, &bindings)
        })
        .await
    }
}

#[tonic::async_trait]
impl TriggerService for Triggers {
    #[instrument(skip_all)]
    async fn commit_trigger_bindings(
        &self,
        request: Request<pb::CommitTriggerBindingsRequest>,
    ) -> Result<Response<pb::CommitTriggerBindingsResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.commit(c, r)).await
    }

    #[instrument(skip_all)]
    async fn list_triggers(
        &self,
        request: Request<pb::ListTriggersRequest>,
    ) -> Result<Response<pb::ListTriggersResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.list(c, r)).await
    }

    #[instrument(skip_all)]
    async fn activate_trigger(
        &self,
        request: Request<pb::ActivateTriggerRequest>,
    ) -> Result<Response<pb::Trigger>, Status> {
        serve(&self.state.auth, request, |c, r| async move {
            self.set_state(c, &r.webhook_id, TriggerState::Active).await
        })
        .await
    }

    #[instrument(skip_all)]
    async fn deactivate_trigger(
        &self,
        request: Request<pb::DeactivateTriggerRequest>,
    ) -> Result<Response<pb::Trigger>, Status> {
        serve(&self.state.auth, request, |c, r| async move {
            self.set_state(c, &r.webhook_id, TriggerState::Deactivated)
                .await
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_failed_triggers(
        &self,
        request: Request<pb::ListFailedTriggersRequest>,
    ) -> Result<Response<pb::ListFailedTriggersResponse>, Status> {
        serve(&self.state.auth, request, |c, r| async move {
            self.failed.list(&c, r).await
        })
        .await
    }

    #[instrument(skip_all)]
    async fn get_failed_trigger(
        &self,
        request: Request<pb::GetFailedTriggerRequest>,
    ) -> Result<Response<pb::FailedTrigger>, Status> {
        serve(&self.state.auth, request, |c, r| async move {
            self.failed.get(&c, r).await
        })
        .await
    }

    #[instrument(skip_all)]
    async fn replay_failed_trigger(
        &self,
        request: Request<pb::ReplayFailedTriggerRequest>,
    ) -> Result<Response<pb::ReplayFailedTriggerResponse>, Status> {
        serve(&self.state.auth, request, |c, r| async move {
            self.failed.replay(&c, r).await
        })
        .await
    }
}
