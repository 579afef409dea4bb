//! AppService: the apps in a caller's scope. Apps are not registered objects (the designer owns
//! them); an app is listed once it holds at least one webhook or config param.

use diesel::sql_types::{BigInt, Nullable, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use tonic::{Request, Response, Status};
use tracing::instrument;
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_proto::v1::app_service_server::AppService;
use gateway_shared::{OrganizationId, WorkspaceId};

use crate::api::page::Page;
use crate::api::{serve, AppState};
use crate::auth::{Caller, Permission};
use crate::scope::{parse_uuid, AppScope};
use crate::error::{ApiError, ApiResult};

/// One app and its counts, keyset-ordered by `(workspace_id, app_id)`.
const LIST_APPS: &str = "\
SELECT workspace_id, app_id,
       count(*) FILTER (WHERE kind = 'w') AS webhooks,
       count(*) FILTER (WHERE kind = 'w' AND active) AS active_webhooks,
       count(*) FILTER (WHERE kind = 'p') AS params
FROM (
  SELECT workspace_id, app_id, 'w' AS kind, state = 'ACTIVE' AS active
    FROM webhooks WHERE organization_id = $1
  UNION ALL
  SELECT workspace_id, app_id, 'p', false
    FROM config_params WHERE organization_id = $1
) AS held
WHERE ($2::uuid IS NULL OR workspace_id = $2)
  AND ($3::uuid IS NULL OR (workspace_id, app_id) > ($3, $4))
GROUP BY workspace_id, app_id
ORDER BY workspace_id, app_id
LIMIT $5";

#[derive(QueryableByName)]
struct AppRow {
    #[diesel(sql_type = SqlUuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    app_id: Uuid,
    #[diesel(sql_type = BigInt)]
    webhooks: i64,
    #[diesel(sql_type = BigInt)]
    active_webhooks: i64,
    #[diesel(sql_type = BigInt)]
    params: i64,
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn bad_page_token() -> ApiError {
    ApiError::invalid(
        "PAGE_TOKEN_INVALID",
        "page_token",
        "page_token is not one this server issued",
    )
}

/// Parses the keyset position `workspace/app` of a page token.
fn parse_after(after: &str) -> ApiResult<(Uuid, Uuid)> {
    let (ws, app) = after.split_once('/').ok_or_else(bad_page_token)?;
    match (Uuid::parse_str(ws), Uuid::parse_str(app)) {
        (Ok(ws), Ok(app)) => Ok((ws, app)),
        _ => Err(bad_page_token()),
    }
}

/// Implements AppService.
#[derive(Clone)]
pub struct Apps {
    state: AppState,
}

impl Apps {
    /// Over the shared state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl AppService for Apps {
    #[instrument(skip_all)]
    async fn list_apps(
        &self,
        request: Request<pb::ListAppsRequest>,
    ) -> Result<Response<pb::ListAppsResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.list(c, r)).await
    }
}

impl Apps {
    async fn list(&self, caller: Caller, req: pb::ListAppsRequest) -> ApiResult<pb::ListAppsResponse> {
        let organization_id = if req.organization_id.is_empty() {
            caller.organization_id
        } else {
            OrganizationId(parse_uuid(&req.organization_id, "organization_id")?)
        };
        let asked = if req.workspace_id.is_empty() {
            None
        } else {
            Some(WorkspaceId(parse_uuid(&req.workspace_id, "workspace_id")?))
        };
        let workspace = asked.or(caller.workspace_id);
        caller.require_in(Permission::Read, organization_id, workspace)?;
        let page = Page::parse(req.page_size, &req.page_token)?;
        let after = page.after.as_deref().map(parse_after).transpose()?;
        let mut conn = self.state.conn().await?;
        let mut rows: Vec<AppRow> = diesel::sql_query(LIST_APPS)
            .bind::<SqlUuid, _>(organization_id.0)
            .bind::<Nullable<SqlUuid>, _>(workspace.map(|w| w.0))
            .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.0))
            .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.1))
            .bind::<BigInt, _>(page.fetch())
            .load(&mut conn)
            .await
            .map_err(ApiError::from)?;
        let next_page_token =
            page.finish(&mut rows, |r| format!("{}/{}", r.workspace_id, r.app_id));
        let apps = rows
            .iter()
            .map(|r| pb::AppSummary {
                app: Some(
                    AppScope::from_uuids(organization_id.0, r.workspace_id, r.app_id).to_proto(),
                ),
                webhook_count: count(r.webhooks),
                config_param_count: count(r.params),
                active_webhook_count: count(r.active_webhooks),
            })
            .collect();
        Ok(pb::ListAppsResponse {
            apps,
            next_page_token,
        })
    }
}
