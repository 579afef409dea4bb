//! AppService: the apps in a caller's scope. Apps are not registered objects (the designer owns
//! them); an app is listed once it holds at least one webhook, config param or action.

use diesel::sql_types::{BigInt, Nullable, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use tonic::{Request, Response, Status};
use tracing::instrument;
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_proto::v1::app_service_server::AppService;
use gateway_shared::{OrganizationId, WorkspaceId};

use crate::api::{invalid_token, serve, AppState, Page};
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::scope::{parse_optional_uuid, AppScope};

/// One app and its counts, keyset-ordered by `(workspace_id, app_id)`.
const LIST_APPS: &str = "\
SELECT workspace_id, app_id,
       count(*) FILTER (WHERE kind = 'w') AS webhooks,
       count(*) FILTER (WHERE kind = 'w' AND active) AS active_webhooks,
       count(*) FILTER (WHERE kind = 'p') AS params,
       count(*) FILTER (WHERE kind = 'a') AS actions
FROM (
  SELECT workspace_id, app_id, 'w' AS kind, state = 'ACTIVE' AS active
    FROM webhooks WHERE organization_id = $1
  UNION ALL
  SELECT workspace_id, app_id, 'p', false
    FROM config_params WHERE organization_id = $1
  UNION ALL
  SELECT workspace_id, app_id, 'a', false
    FROM actions WHERE organization_id = $1
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
    #[diesel(sql_type = BigInt)]
    actions: i64,
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Parses the keyset position `workspace/app` of a page token.
fn parse_after(after: &str) -> ApiResult<(Uuid, Uuid)> {
    let (ws, app) = after.split_once('/').ok_or_else(invalid_token)?;
    match (Uuid::parse_str(ws), Uuid::parse_str(app)) {
        (Ok(ws), Ok(app)) => Ok((ws, app)),
        _ => Err(invalid_token()),
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

    async fn list(
        &self,
        caller: Caller,
        req: pb::ListAppsRequest,
    ) -> ApiResult<pb::ListAppsResponse> {
        let organization_id = parse_optional_uuid(&req.organization_id, "organization_id")?
            .map_or(caller.organization_id, OrganizationId);
        let asked = parse_optional_uuid(&req.workspace_id, "workspace_id")?.map(WorkspaceId);
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
                action_count: count(r.actions),
            })
            .collect();
        Ok(pb::ListAppsResponse {
            apps,
            next_page_token,
        })
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
