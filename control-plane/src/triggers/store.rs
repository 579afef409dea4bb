//! Binding rows: reading a webhook's bindings, replacing a process definition's bindings in an app,
//! and the Manage Triggers view of a webhook with its bindings.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use gateway_proto::convert::{provider_to_proto, trigger_state_to_proto, trigger_type_to_proto};
use gateway_proto::v1 as pb;
use gateway_shared::{TriggerState, TriggerType};

use crate::api::timestamp;
use crate::error::{constraints, is_unique_violation, ApiError, ApiResult};
use crate::reasons;
use crate::schema::{trigger_bindings, webhooks};
use crate::scope::{in_app, AppScope};
use crate::webhooks::store::WebhookRow;

/// Stored `node_kind` of a message start event.
pub(crate) const START_NODE: &str = "MESSAGE_START_EVENT";
/// Stored `node_kind` of a message catch intermediate event.
pub(crate) const CATCH_NODE: &str = "MESSAGE_CATCH_INTERMEDIATE_EVENT";

/// What a commit stores besides its bindings.
#[derive(Debug)]
pub(crate) struct Commit {
    pub process_definition_id: String,
    pub project_id: String,
    pub branch: String,
    pub process_version: String,
}

/// One binding checked and ready to store.
#[derive(Debug)]
pub(crate) struct NewBinding {
    pub webhook_id: Uuid,
    pub node_id: String,
    pub node_kind: &'static str,
    pub trigger_type: TriggerType,
    pub correlation_key: Option<String>,
    pub process_key: Option<String>,
}

/// A stored binding.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = trigger_bindings)]
pub(crate) struct BindingRow {
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

    /// The API view.
    pub fn to_proto(&self) -> ApiResult<pb::TriggerBinding> {
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

/// Bindings of the given webhooks, grouped by webhook.
pub(crate) async fn bindings_of(
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

/// The bindings of one webhook.
pub(crate) async fn bindings_of_one(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> ApiResult<Vec<BindingRow>> {
    Ok(bindings_of(conn, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default())
}

/// The Manage Triggers view of a webhook with its bindings.
pub(crate) fn trigger_to_proto(
    row: &WebhookRow,
    bindings: &[BindingRow],
) -> ApiResult<pb::Trigger> {
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
        state: trigger_state_to_proto(row.state()?) as i32,
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

/// Checks that every bound webhook is in the app (and so in the caller's scope), share-locking
/// them, and that RESUME bindings' webhooks have a correlation key path.
pub(crate) async fn check_bound_webhooks(
    conn: &mut AsyncPgConnection,
    scope: AppScope,
    ids: &[Uuid],
    new: &[NewBinding],
) -> ApiResult<()> {
    let found: Vec<WebhookRow> = webhooks::table
        .filter(webhooks::id.eq_any(ids))
        .filter(in_app!(webhooks, scope))
        .select(WebhookRow::as_select())
        .for_share()
        .load(conn)
        .await?;
    for b in new {
        let Some(w) = found.iter().find(|w| w.id == b.webhook_id) else {
            return Err(ApiError::NotFound {
                reason: reasons::WEBHOOK_NOT_FOUND,
                what: "bound webhook",
            });
        };
        if b.trigger_type == TriggerType::ResumeProcess && w.correlation_key_path.is_none() {
            return Err(ApiError::Precondition {
                reason: reasons::WEBHOOK_CORRELATION_PATH_REQUIRED,
                message: format!(
                    "webhook `{}` has no correlation key path, which RESUME_PROCESS bindings need",
                    w.name
                ),
                metadata: vec![("webhook_id", w.id.to_string())],
            });
        }
    }
    Ok(())
}

/// Replaces the bindings of `commit`'s process definition in the app with `new`; returns the ids
/// of the webhooks that lost bindings and the stored rows.
pub(crate) async fn replace(
    conn: &mut AsyncPgConnection,
    scope: AppScope,
    commit: &Commit,
    new: &[NewBinding],
) -> ApiResult<(Vec<Uuid>, Vec<BindingRow>)> {
    let process = &commit.process_definition_id;
    let old: Vec<Uuid> = diesel::delete(
        trigger_bindings::table
            .filter(in_app!(trigger_bindings, scope))
            .filter(trigger_bindings::process_definition_id.eq(process)),
    )
    .returning(trigger_bindings::webhook_id)
    .get_results(conn)
    .await?;
    if new.is_empty() {
        return Ok((old, Vec::new()));
    }
    let rows: Vec<_> = new
        .iter()
        .map(|b| {
            (
                trigger_bindings::webhook_id.eq(b.webhook_id),
                trigger_bindings::organization_id.eq(scope.organization_id.0),
                trigger_bindings::workspace_id.eq(scope.workspace_id.0),
                trigger_bindings::app_id.eq(scope.app_id.0),
                trigger_bindings::process_definition_id.eq(process),
                trigger_bindings::node_id.eq(&b.node_id),
                trigger_bindings::node_kind.eq(b.node_kind),
                trigger_bindings::trigger_type.eq(b.trigger_type.as_str()),
                trigger_bindings::process_correlation_key.eq(&b.correlation_key),
                trigger_bindings::process_key.eq(&b.process_key),
                trigger_bindings::project_id.eq(&commit.project_id),
                trigger_bindings::branch.eq(&commit.branch),
                trigger_bindings::process_version.eq(&commit.process_version),
            )
        })
        .collect();
    let stored = diesel::insert_into(trigger_bindings::table)
        .values(rows)
        .returning(BindingRow::as_returning())
        .get_results(conn)
        .await
        .map_err(|e| {
            if is_unique_violation(&e, constraints::BINDING_NODE) {
                ApiError::invalid(
                    reasons::BINDING_INVALID,
                    "bindings",
                    "the same node is bound to the same webhook twice",
                )
            } else {
                e.into()
            }
        })?;
    Ok((old, stored))
}

/// Sets webhook `id`'s trigger state; returns the updated row.
pub(crate) async fn set_state(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    state: TriggerState,
) -> ApiResult<WebhookRow> {
    Ok(diesel::update(webhooks::table.find(id))
        .set((
            webhooks::state.eq(state.as_str()),
            webhooks::updated_at.eq(diesel::dsl::now),
        ))
        .returning(WebhookRow::as_returning())
        .get_result(conn)
        .await?)
}

/// One page of the app's webhooks that have bindings, by name.
pub(crate) async fn bound_webhooks(
    conn: &mut AsyncPgConnection,
    scope: AppScope,
    after: Option<&str>,
    limit: i64,
) -> ApiResult<Vec<WebhookRow>> {
    let bound = trigger_bindings::table.select(trigger_bindings::webhook_id);
    let mut query = webhooks::table
        .filter(in_app!(webhooks, scope))
        .filter(webhooks::id.eq_any(bound))
        .select(WebhookRow::as_select())
        .order(webhooks::name)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(webhooks::name.gt(after.to_owned()));
    }
    Ok(query.load(conn).await?)
}
