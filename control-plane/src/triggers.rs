//! TriggerService: bindings committed with a process version, the Manage Triggers view, and trigger
//! state. The trigger type is derived from the node kind, never set separately.

use std::collections::BTreeMap;
use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tonic::{Request, Response, Status};
use tracing::instrument;
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_proto::v1::trigger_service_server::TriggerService;
use gateway_shared::{TriggerState, TriggerType};

use crate::api::{parse_uuid, timestamp, AppState, Page};
use crate::auth::{Caller, Permission};
use crate::error::{constraints, is_unique_violation, ApiError, ApiResult};
use crate::failed_triggers::FailedTriggers;
use crate::revision::{record_change, ChangeKind};
use crate::schema::{trigger_bindings, webhooks};
use crate::webhooks::store::{self, provider_to_proto, state_to_proto, WebhookRow};

const MAX_TEXT: usize = 200;
const START_NODE: &str = "MESSAGE_START_EVENT";
const CATCH_NODE: &str = "MESSAGE_CATCH_INTERMEDIATE_EVENT";

/// A stored binding.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = trigger_bindings)]
pub struct BindingRow {
    pub webhook_id: Uuid,
    pub process_definition_id: String,
    pub node_id: String,
    pub node_kind: String,
    pub trigger_type: String,
    pub process_correlation_key: Option<String>,
    pub process_key: Option<String>,
    pub project_id: String,
    pub branch: String,
    pub process_version: String,
    pub committed_at: chrono::DateTime<chrono::Utc>,
}

impl BindingRow {
    /// The trigger type.
    pub fn trigger_type(&self) -> ApiResult<TriggerType> {
        TriggerType::from_name(&self.trigger_type)
            .ok_or_else(|| ApiError::internal("stored trigger type", &self.trigger_type))
    }

    fn to_proto(&self) -> ApiResult<pb::TriggerBinding> {
        Ok(pb::TriggerBinding {
            webhook_id: self.webhook_id.to_string(),
            process_definition_id: self.process_definition_id.clone(),
            node_id: self.node_id.clone(),
            node_kind: if self.node_kind == START_NODE {
                pb::NodeKind::MessageStartEvent
            } else {
                pb::NodeKind::MessageCatchIntermediateEvent
            } as i32,
            trigger_type: trigger_type_to_proto(self.trigger_type()?) as i32,
            process_correlation_key: self.process_correlation_key.clone().unwrap_or_default(),
            process_key: self.process_key.clone().unwrap_or_default(),
            project_id: self.project_id.clone(),
            branch: self.branch.clone(),
            process_version: self.process_version.clone(),
            committed_at: Some(timestamp(self.committed_at)),
        })
    }
}

fn trigger_type_to_proto(t: TriggerType) -> pb::TriggerType {
    match t {
        TriggerType::StartProcess => pb::TriggerType::StartProcess,
        TriggerType::ResumeProcess => pb::TriggerType::ResumeProcess,
    }
}

/// The node kind's stored name and the trigger type it implies.
fn derive_trigger(kind: i32) -> ApiResult<(&'static str, TriggerType)> {
    match pb::NodeKind::try_from(kind) {
        Ok(pb::NodeKind::MessageStartEvent) => Ok((START_NODE, TriggerType::StartProcess)),
        Ok(pb::NodeKind::MessageCatchIntermediateEvent) => {
            Ok((CATCH_NODE, TriggerType::ResumeProcess))
        }
        _ => Err(ApiError::invalid(
            "BINDING_INVALID",
            "bindings.node_kind",
            "node_kind must be MESSAGE_START_EVENT or MESSAGE_CATCH_INTERMEDIATE_EVENT",
        )),
    }
}

fn text(value: &str, field: &'static str, required: bool) -> ApiResult<Option<String>> {
    let v = value.trim();
    if v.is_empty() {
        return if required {
            Err(ApiError::invalid(
                "BINDING_INVALID",
                field,
                format!("`{field}` is required"),
            ))
        } else {
            Ok(None)
        };
    }
    if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "BINDING_INVALID",
            field,
            format!("`{field}` must be at most {MAX_TEXT} characters"),
        ));
    }
    Ok(Some(v.to_owned()))
}

/// Bindings of the given webhooks, grouped by webhook.
pub async fn bindings_of(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> ApiResult<BTreeMap<Uuid, Vec<BindingRow>>> {
    let rows: Vec<BindingRow> = trigger_bindings::table
        .filter(trigger_bindings::webhook_id.eq_any(ids))
        .order((
            trigger_bindings::process_definition_id,
            trigger_bindings::node_id,
        ))
        .select(BindingRow::as_select())
        .load(conn)
        .await?;
    let mut map: BTreeMap<Uuid, Vec<BindingRow>> = BTreeMap::new();
    for r in rows {
        map.entry(r.webhook_id).or_default().push(r);
    }
    Ok(map)
}

fn trigger_to_proto(row: &WebhookRow, bindings: &[BindingRow]) -> ApiResult<pb::Trigger> {
    let mut types: Vec<TriggerType> = bindings
        .iter()
        .map(BindingRow::trigger_type)
        .collect::<ApiResult<_>>()?;
    types.sort_by_key(|t| t.as_str());
    types.dedup();
    Ok(pb::Trigger {
        webhook_id: row.id.to_string(),
        event_name: row.name.clone(),
        provider: provider_to_proto(row.provider()?) as i32,
        state: state_to_proto(row.state()?) as i32,
        trigger_types: types
            .into_iter()
            .map(|t| trigger_type_to_proto(t) as i32)
            .collect(),
        bindings: bindings
            .iter()
            .map(BindingRow::to_proto)
            .collect::<ApiResult<_>>()?,
    })
}

/// Implements TriggerService.
#[derive(Clone)]
pub struct Triggers {
    state: AppState,
    failed: Arc<FailedTriggers>,
}

impl Triggers {
    /// Over the shared state; failed triggers are served by `failed`.
    pub fn new(state: AppState, failed: Arc<FailedTriggers>) -> Self {
        Self { state, failed }
    }

    async fn set_state(
        &self,
        caller: Caller,
        id: Uuid,
        target: TriggerState,
    ) -> ApiResult<pb::Trigger> {
        let mut conn = self.state.conn().await?;
        conn.transaction(async move |conn| -> ApiResult<pb::Trigger> {
            let row = store::load(conn, &caller, id, true).await?;
            let bindings = bindings_of(conn, &[id])
                .await?
                .remove(&id)
                .unwrap_or_default();
            if target == TriggerState::Active && bindings.is_empty() {
                return Err(ApiError::precondition(
                    "TRIGGER_NOT_BOUND",
                    "the webhook is not bound to any node of a committed process version",
                ));
            }
            if row.state()? == target {
                return trigger_to_proto(&row, &bindings);
            }
            let row: WebhookRow = diesel::update(webhooks::table.find(id))
                .set((
                    webhooks::state.eq(target.as_str()),
                    webhooks::updated_at.eq(diesel::dsl::now),
                ))
                .returning(WebhookRow::as_returning())
                .get_result(conn)
                .await?;
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
        let caller = self.state.auth.authenticate(&request).await?;
        let req = request.into_inner();
        let scope = caller.require_app(Permission::Write, req.app.as_ref())?;
        let process =
            text(&req.process_definition_id, "process_definition_id", true)?.unwrap_or_default();
        let project = text(&req.project_id, "project_id", true)?.unwrap_or_default();
        let branch = text(&req.branch, "branch", true)?.unwrap_or_default();
        let version = text(&req.process_version, "process_version", false)?.unwrap_or_default();
        struct NewBinding {
            webhook_id: Uuid,
            node_id: String,
            node_kind: &'static str,
            trigger_type: TriggerType,
            correlation_key: Option<String>,
            process_key: Option<String>,
        }
        let mut new = Vec::with_capacity(req.bindings.len());
        for b in &req.bindings {
            let (node_kind, trigger_type) = derive_trigger(b.node_kind)?;
            let node_id = text(&b.node_id, "bindings.node_id", true)?.unwrap_or_default();
            let webhook_id = parse_uuid(&b.webhook_id, "bindings.webhook_id")?;
            let (correlation_key, process_key) = match trigger_type {
                TriggerType::StartProcess => (None, None),
                TriggerType::ResumeProcess => {
                    let ck = text(
                        &b.process_correlation_key,
                        "bindings.process_correlation_key",
                        false,
                    )?;
                    let pk = text(&b.process_key, "bindings.process_key", false)?;
                    if ck.is_none() || pk.is_none() {
                        return Err(ApiError::invalid(
                            "BINDING_RESUME_FIELDS_REQUIRED",
                            "bindings",
                            format!("node `{node_id}` is a message catch intermediate event: it needs process_correlation_key and process_key"),
                        )
                        .into());
                    }
                    (ck, pk)
                }
            };
            new.push(NewBinding {
                webhook_id,
                node_id,
                node_kind,
                trigger_type,
                correlation_key,
                process_key,
            });
        }

        let mut conn = self.state.conn().await?;
        let stored = conn
            .transaction(async move |conn| -> ApiResult<Vec<BindingRow>> {
                // Every bound webhook must be in the same app (and so in the caller's scope).
                let mut ids: Vec<Uuid> = new.iter().map(|b| b.webhook_id).collect();
                ids.sort_unstable();
                ids.dedup();
                let found: Vec<WebhookRow> = webhooks::table
                    .filter(webhooks::id.eq_any(&ids))
                    .filter(webhooks::organization_id.eq(scope.organization_id.0))
                    .filter(webhooks::workspace_id.eq(scope.workspace_id.0))
                    .filter(webhooks::app_id.eq(scope.app_id.0))
                    .select(WebhookRow::as_select())
                    .for_share()
                    .load(conn)
                    .await?;
                for b in &new {
                    let Some(w) = found.iter().find(|w| w.id == b.webhook_id) else {
                        return Err(ApiError::NotFound { reason: "WEBHOOK_NOT_FOUND", what: "bound webhook" });
                    };
                    if b.trigger_type == TriggerType::ResumeProcess && w.correlation_key_path.is_none() {
                        return Err(ApiError::Precondition {
                            reason: "WEBHOOK_CORRELATION_PATH_REQUIRED",
                            message: format!("webhook `{}` has no correlation key path, which RESUME_PROCESS bindings need", w.name),
                            metadata: vec![("webhook_id", w.id.to_string())],
                        });
                    }
                }
                let old: Vec<Uuid> = diesel::delete(
                    trigger_bindings::table
                        .filter(trigger_bindings::organization_id.eq(scope.organization_id.0))
                        .filter(trigger_bindings::workspace_id.eq(scope.workspace_id.0))
                        .filter(trigger_bindings::app_id.eq(scope.app_id.0))
                        .filter(trigger_bindings::process_definition_id.eq(&process)),
                )
                .returning(trigger_bindings::webhook_id)
                .get_results(conn)
                .await?;
                let rows: Vec<_> = new
                    .iter()
                    .map(|b| {
                        (
                            trigger_bindings::webhook_id.eq(b.webhook_id),
                            trigger_bindings::organization_id.eq(scope.organization_id.0),
                            trigger_bindings::workspace_id.eq(scope.workspace_id.0),
                            trigger_bindings::app_id.eq(scope.app_id.0),
                            trigger_bindings::process_definition_id.eq(&process),
                            trigger_bindings::node_id.eq(&b.node_id),
                            trigger_bindings::node_kind.eq(b.node_kind),
                            trigger_bindings::trigger_type.eq(b.trigger_type.as_str()),
                            trigger_bindings::process_correlation_key.eq(&b.correlation_key),
                            trigger_bindings::process_key.eq(&b.process_key),
                            trigger_bindings::project_id.eq(&project),
                            trigger_bindings::branch.eq(&branch),
                            trigger_bindings::process_version.eq(&version),
                        )
                    })
                    .collect();
                let stored: Vec<BindingRow> = if rows.is_empty() {
                    Vec::new()
                } else {
                    diesel::insert_into(trigger_bindings::table)
                        .values(rows)
                        .returning(BindingRow::as_returning())
                        .get_results(conn)
                        .await
                        .map_err(|e| {
                            if is_unique_violation(&e, constraints::BINDING_NODE) {
                                ApiError::invalid("BINDING_INVALID", "bindings", "the same node is bound to the same webhook twice")
                            } else {
                                e.into()
                            }
                        })?
                };
                let touched: Vec<Uuid> = old.into_iter().chain(ids).collect();
                record_change(conn, &touched, ChangeKind::BindingsCommitted).await?;
                Ok(stored)
            })
            .await?;
        tracing::info!(bindings = stored.len(), "trigger bindings committed");
        Ok(Response::new(pb::CommitTriggerBindingsResponse {
            bindings: stored
                .iter()
                .map(BindingRow::to_proto)
                .collect::<ApiResult<_>>()?,
        }))
    }

    #[instrument(skip_all)]
    async fn list_triggers(
        &self,
        request: Request<pb::ListTriggersRequest>,
    ) -> Result<Response<pb::ListTriggersResponse>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        let req = request.into_inner();
        let scope = caller.require_app(Permission::Read, req.app.as_ref())?;
        let page = Page::parse(req.page_size, &req.page_token)?;
        let bound = trigger_bindings::table.select(trigger_bindings::webhook_id);
        let mut query = webhooks::table
            .filter(webhooks::organization_id.eq(scope.organization_id.0))
            .filter(webhooks::workspace_id.eq(scope.workspace_id.0))
            .filter(webhooks::app_id.eq(scope.app_id.0))
            .filter(webhooks::id.eq_any(bound))
            .select(WebhookRow::as_select())
            .order(webhooks::name)
            .limit(page.fetch())
            .into_boxed();
        if let Some(after) = &page.after {
            query = query.filter(webhooks::name.gt(after.clone()));
        }
        let mut conn = self.state.conn().await?;
        let mut rows: Vec<WebhookRow> = query.load(&mut conn).await.map_err(ApiError::from)?;
        let next_page_token = page.finish(&mut rows, |r| r.name.clone());
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut bindings = bindings_of(&mut conn, &ids).await?;
        let triggers = rows
            .iter()
            .map(|r| trigger_to_proto(r, &bindings.remove(&r.id).unwrap_or_default()))
            .collect::<ApiResult<_>>()?;
        Ok(Response::new(pb::ListTriggersResponse {
            triggers,
            next_page_token,
        }))
    }

    #[instrument(skip_all)]
    async fn activate_trigger(
        &self,
        request: Request<pb::ActivateTriggerRequest>,
    ) -> Result<Response<pb::Trigger>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        caller.require(Permission::Write)?;
        let id = parse_uuid(&request.get_ref().webhook_id, "webhook_id")?;
        Ok(Response::new(
            self.set_state(caller, id, TriggerState::Active).await?,
        ))
    }

    #[instrument(skip_all)]
    async fn deactivate_trigger(
        &self,
        request: Request<pb::DeactivateTriggerRequest>,
    ) -> Result<Response<pb::Trigger>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        caller.require(Permission::Write)?;
        let id = parse_uuid(&request.get_ref().webhook_id, "webhook_id")?;
        Ok(Response::new(
            self.set_state(caller, id, TriggerState::Deactivated)
                .await?,
        ))
    }

    #[instrument(skip_all)]
    async fn list_failed_triggers(
        &self,
        request: Request<pb::ListFailedTriggersRequest>,
    ) -> Result<Response<pb::ListFailedTriggersResponse>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        let req = request.into_inner();
        Ok(Response::new(self.failed.list(&caller, req).await?))
    }

    #[instrument(skip_all)]
    async fn get_failed_trigger(
        &self,
        request: Request<pb::GetFailedTriggerRequest>,
    ) -> Result<Response<pb::FailedTrigger>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        let req = request.into_inner();
        Ok(Response::new(self.failed.get(&caller, req).await?))
    }

    #[instrument(skip_all)]
    async fn replay_failed_trigger(
        &self,
        request: Request<pb::ReplayFailedTriggerRequest>,
    ) -> Result<Response<pb::ReplayFailedTriggerResponse>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        let req = request.into_inner();
        Ok(Response::new(self.failed.replay(&caller, req).await?))
    }
}
