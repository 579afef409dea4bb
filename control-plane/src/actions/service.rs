//! ActionService (docs/actions.md, "Registering actions"): actions here, HMAC keys in
//! [`super::hmac`]. Reads need VIEWER, writes EDITOR; other tenants' objects are NOT_FOUND.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tonic::{Request, Response, Status};
use tracing::instrument;
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_proto::v1::action_service_server::ActionService;

use super::store::{self, ActionRow};
use super::{keys, validate};
use crate::api::{serve, timestamp, AppState, Page};
use crate::auth::{Caller, Permission};
use crate::error::{constraints, is_unique_violation, ApiError, ApiResult};
use crate::reasons;
use crate::revision::{record_change, ChangeKind};
use crate::schema::actions;
use crate::scope::{in_app, parse_uuid, AppScope};

/// Implements ActionService.
#[derive(Clone)]
pub(crate) struct Actions {
    pub(super) state: AppState,
}

impl Actions {
    /// Over the shared state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Sends the signed test request to `url` with the app's newest active key.
    async fn validate_url(
        &self,
        conn: &mut AsyncPgConnection,
        scope: AppScope,
        url: &str,
        name: &str,
    ) -> ApiResult<()> {
        let key = keys::newest_active(conn, scope).await?.ok_or_else(|| {
            ApiError::precondition(
                reasons::HMAC_KEY_MISSING,
                "the app has no active HMAC key to sign the test request: create one with CreateHmacKey",
            )
        })?;
        let value = key.value(&self.state.keyring)?;
        validate::test_request(&self.state.actions, url, name, key.id, &value).await
    }

    async fn register(
        &self,
        caller: Caller,
        req: pb::RegisterActionRequest,
    ) -> ApiResult<pb::Action> {
        let scope = caller.require_app(Permission::Write, req.app.as_ref())?;
        validate::name(&req.name)?;
        validate::description(&req.description)?;
        validate::url(self.state.actions.policy(), &req.webhook_url)?;
        let schema = validate::schema(req.json_schema.as_ref())?;
        let mut conn = self.state.conn().await?;
        if store::name_taken(&mut conn, scope, &req.name).await? {
            return Err(ApiError::ActionNameTaken(req.name));
        }
        self.validate_url(&mut conn, scope, &req.webhook_url, &req.name)
            .await?;
        let id = Uuid::new_v4();
        tracing::Span::current().record("action_id", tracing::field::display(id));
        let row = conn
            .transaction(async move |conn| -> ApiResult<ActionRow> {
                let row: ActionRow = diesel::insert_into(actions::table)
                    .values((
                        actions::id.eq(id),
                        actions::organization_id.eq(scope.organization_id.0),
                        actions::workspace_id.eq(scope.workspace_id.0),
                        actions::app_id.eq(scope.app_id.0),
                        actions::name.eq(&req.name),
                        actions::description.eq(&req.description),
                        actions::webhook_url.eq(&req.webhook_url),
                        actions::json_schema.eq(&schema),
                        actions::validated_at.eq(diesel::dsl::now),
                    ))
                    .returning(ActionRow::as_returning())
                    .get_result(conn)
                    .await
                    .map_err(|e| name_taken(e, &req.name))?;
                record_change(conn, &[id], ChangeKind::ActionRegistered).await?;
                Ok(row)
            })
            .await?;
        tracing::info!(created_by = %caller.token_id, "action registered");
        Ok(to_proto(&row))
    }

    async fn get(&self, caller: Caller, req: pb::GetActionRequest) -> ApiResult<pb::Action> {
        caller.require(Permission::Read)?;
        let id = parse_uuid(&req.id, "id")?;
        let mut conn = self.state.conn().await?;
        Ok(to_proto(
            &store::load_action(&mut conn, &caller, id, false).await?,
        ))
    }

    async fn list(
        &self,
        caller: Caller,
        req: pb::ListActionsRequest,
    ) -> ApiResult<pb::ListActionsResponse> {
        let scope = caller.require_app(Permission::Read, req.app.as_ref())?;
        let page = Page::parse(req.page_size, &req.page_token)?;
        let mut query = actions::table
            .filter(in_app!(actions, scope))
            .select(ActionRow::as_select())
            .order(actions::name)
            .limit(page.fetch())
            .into_boxed();
        if let Some(after) = &page.after {
            query = query.filter(actions::name.gt(after.clone()));
        }
        let mut conn = self.state.conn().await?;
        let mut rows: Vec<ActionRow> = query.load(&mut conn).await?;
        let next_page_token = page.finish(&mut rows, |r| r.name.clone());
        Ok(pb::ListActionsResponse {
            actions: rows.iter().map(to_proto).collect(),
            next_page_token,
        })
    }

    async fn update(&self, caller: Caller, req: pb::UpdateActionRequest) -> ApiResult<pb::Action> {
        caller.require(Permission::Write)?;
        let id = parse_uuid(&req.id, "id")?;
        tracing::Span::current().record("action_id", tracing::field::display(id));
        if let Some(d) = &req.description {
            validate::description(d)?;
        }
        if let Some(u) = &req.webhook_url {
            validate::url(self.state.actions.policy(), u)?;
        }
        let schema = req
            .json_schema
            .as_ref()
            .map(|s| validate::schema(Some(s)))
            .transpose()?;
        let mut conn = self.state.conn().await?;
        let current = store::load_action(&mut conn, &caller, id, false).await?;
        let new_url = req
            .webhook_url
            .clone()
            .filter(|u| *u != current.webhook_url);
        if let Some(url) = &new_url {
            self.validate_url(&mut conn, current.scope(), url, &current.name)
                .await?;
        }
        let row = conn
            .transaction(async move |conn| -> ApiResult<ActionRow> {
                let current = store::load_action(conn, &caller, id, true).await?;
                let validated_at = if new_url.is_some() {
                    chrono::Utc::now()
                } else {
                    current.validated_at
                };
                let row: ActionRow = diesel::update(actions::table.find(id))
                    .set((
                        actions::description.eq(req.description.unwrap_or(current.description)),
                        actions::webhook_url.eq(new_url.unwrap_or(current.webhook_url)),
                        actions::json_schema.eq(schema.unwrap_or(current.json_schema)),
                        actions::validated_at.eq(validated_at),
                        actions::updated_at.eq(diesel::dsl::now),
                    ))
                    .returning(ActionRow::as_returning())
                    .get_result(conn)
                    .await?;
                record_change(conn, &[id], ChangeKind::ActionUpdated).await?;
                Ok(row)
            })
            .await?;
        Ok(to_proto(&row))
    }

    async fn delete(
        &self,
        caller: Caller,
        req: pb::DeleteActionRequest,
    ) -> ApiResult<pb::DeleteActionResponse> {
        caller.require(Permission::Write)?;
        let id = parse_uuid(&req.id, "id")?;
        tracing::Span::current().record("action_id", tracing::field::display(id));
        let mut conn = self.state.conn().await?;
        conn.transaction(async move |conn| -> ApiResult<()> {
            store::load_action(conn, &caller, id, true).await?;
            diesel::delete(actions::table.find(id))
                .execute(conn)
                .await?;
            record_change(conn, &[id], ChangeKind::ActionDeleted).await?;
            Ok(())
        })
        .await?;
        tracing::info!("action deleted");
        Ok(pb::DeleteActionResponse {})
    }
}

/// A unique violation of the app's action names is ALREADY_EXISTS, reason ACTION_NAME_TAKEN.
fn name_taken(err: diesel::result::Error, name: &str) -> ApiError {
    if is_unique_violation(&err, constraints::ACTION_APP_NAME) {
        ApiError::ActionNameTaken(name.to_owned())
    } else {
        err.into()
    }
}

fn to_proto(row: &ActionRow) -> pb::Action {
    pb::Action {
        id: row.id.to_string(),
        app: Some(row.scope().to_proto()),
        name: row.name.clone(),
        description: row.description.clone(),
        webhook_url: row.webhook_url.clone(),
        json_schema: Some(validate::json_to_struct(&row.json_schema)),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
        validated_at: Some(timestamp(row.validated_at)),
    }
}

#[tonic::async_trait]
impl ActionService for Actions {
    #[instrument(skip_all, fields(action_id))]
    async fn register_action(
        &self,
        request: Request<pb::RegisterActionRequest>,
    ) -> Result<Response<pb::Action>, Status> {
        serve(&self.state.auth, request, |c, r| self.register(c, r)).await
    }

    #[instrument(skip_all)]
    async fn get_action(
        &self,
        request: Request<pb::GetActionRequest>,
    ) -> Result<Response<pb::Action>, Status> {
        serve(&self.state.auth, request, |c, r| self.get(c, r)).await
    }

    #[instrument(skip_all)]
    async fn list_actions(
        &self,
        request: Request<pb::ListActionsRequest>,
    ) -> Result<Response<pb::ListActionsResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.list(c, r)).await
    }

    #[instrument(skip_all, fields(action_id))]
    async fn update_action(
        &self,
        request: Request<pb::UpdateActionRequest>,
    ) -> Result<Response<pb::Action>, Status> {
        serve(&self.state.auth, request, |c, r| self.update(c, r)).await
    }

    #[instrument(skip_all, fields(action_id))]
    async fn delete_action(
        &self,
        request: Request<pb::DeleteActionRequest>,
    ) -> Result<Response<pb::DeleteActionResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.delete(c, r)).await
    }

    #[instrument(skip_all, fields(key_id))]
    async fn create_hmac_key(
        &self,
        request: Request<pb::CreateHmacKeyRequest>,
    ) -> Result<Response<pb::CreateHmacKeyResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.create_key(c, r)).await
    }

    #[instrument(skip_all)]
    async fn list_hmac_keys(
        &self,
        request: Request<pb::ListHmacKeysRequest>,
    ) -> Result<Response<pb::ListHmacKeysResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.list_keys(c, r)).await
    }

    #[instrument(skip_all, fields(key_id))]
    async fn revoke_hmac_key(
        &self,
        request: Request<pb::RevokeHmacKeyRequest>,
    ) -> Result<Response<pb::HmacKey>, Status> {
        serve(&self.state.auth, request, |c, r| self.revoke_key(c, r)).await
    }
}
