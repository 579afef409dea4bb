//! AuthService (token exchange) and AdminService (API tokens).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use tonic::{Request, Response, Status};
use tracing::instrument;
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_proto::v1::admin_service_server::AdminService;
use gateway_proto::v1::auth_service_server::AuthService;
use gateway_shared::{OrganizationId, WorkspaceId};

use super::jwt::{Claims, ISSUER};
use super::tokens::{self, TokenRow};
use super::{Caller, Permission, Role};
use crate::api::{serve, timestamp, AppState, Page};
use crate::error::{ApiError, ApiResult};
use crate::reasons;
use crate::revision::{record_change, ChangeKind};
use crate::schema::api_tokens;
use crate::scope::parse_uuid;

/// Implements AuthService and AdminService.
#[derive(Clone)]
pub(crate) struct TokenService {
    state: AppState,
}

impl TokenService {
    /// Over the shared state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    async fn create_token(
        &self,
        caller: Caller,
        req: pb::CreateApiTokenRequest,
    ) -> ApiResult<pb::CreateApiTokenResponse> {
        let org = OrganizationId(parse_uuid(&req.organization_id, "organization_id")?);
        let ws = if req.workspace_id.is_empty() {
            None
        } else {
            Some(WorkspaceId(parse_uuid(&req.workspace_id, "workspace_id")?))
        };
        caller.require_in(Permission::ManageTokens, org, ws)?;
        let role = Role::from_proto(req.role)
            .ok_or_else(|| ApiError::invalid(reasons::ROLE_REQUIRED, "role", "role is required"))?;
        validate_token_name(&req.name)?;
        let token = tokens::generate();
        let mut conn = self.state.conn().await?;
        let row = tokens::insert(&mut conn, &token, org, ws, role, &req.name)
            .await
            .map_err(ApiError::from)?;
        tracing::info!(token_id = %row.id, created_by = %caller.token_id, role = role.as_str(), "api token created");
        Ok(pb::CreateApiTokenResponse {
            token: Some(token_to_proto(row)?),
            api_token: token.expose().clone(),
        })
    }

    async fn list_tokens(
        &self,
        caller: Caller,
        req: pb::ListApiTokensRequest,
    ) -> ApiResult<pb::ListApiTokensResponse> {
        let org = OrganizationId(parse_uuid(&req.organization_id, "organization_id")?);
        caller.require_in(Permission::ManageTokens, org, caller.workspace_id)?;
        let page = Page::parse(req.page_size, &req.page_token)?;
        let mut query = api_tokens::table
            .filter(api_tokens::organization_id.eq(org.0))
            .select(TokenRow::as_select())
            .order(api_tokens::id)
            .limit(page.fetch())
            .into_boxed();
        if let Some(ws) = caller.workspace_id {
            query = query.filter(api_tokens::workspace_id.eq(ws.0));
        }
        if let Some(after) = page.after_as::<Uuid>()? {
            query = query.filter(api_tokens::id.gt(after));
        }
        let mut conn = self.state.conn().await?;
        let mut rows: Vec<TokenRow> = query.load(&mut conn).await.map_err(ApiError::from)?;
        let next_page_token = page.finish(&mut rows, |r| r.id.to_string());
        let tokens = rows
            .into_iter()
            .map(token_to_proto)
            .collect::<ApiResult<_>>()?;
        Ok(pb::ListApiTokensResponse {
            tokens,
            next_page_token,
        })
    }

    async fn revoke_token(
        &self,
        caller: Caller,
        req: pb::RevokeApiTokenRequest,
    ) -> ApiResult<pb::RevokeApiTokenResponse> {
        caller.require(Permission::ManageTokens)?;
        let id = parse_uuid(&req.id, "id")?;
        let mut query = diesel::update(api_tokens::table)
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::organization_id.eq(caller.organization_id.0))
            .into_boxed();
        if let Some(ws) = caller.workspace_id {
            query = query.filter(api_tokens::workspace_id.eq(ws.0));
        }
        let mut conn = self.state.conn().await?;
        // COALESCE keeps the first revocation time when a token is revoked twice. The change log
        // entry makes every replica end the config streams opened with the token.
        let row: Option<TokenRow> = conn
            .transaction(async move |conn| -> ApiResult<Option<TokenRow>> {
                let row: Option<TokenRow> = query
                    .set(api_tokens::revoked_at.eq(diesel::dsl::sql::<
                        diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
                    >(
                        "COALESCE(revoked_at, now())"
                    )))
                    .returning(TokenRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                if let Some(row) = &row {
                    record_change(conn, &[row.id], ChangeKind::ApiTokenRevoked).await?;
                }
                Ok(row)
            })
            .await?;
        let row = row.ok_or(ApiError::NotFound {
            reason: reasons::API_TOKEN_NOT_FOUND,
            what: "API token",
        })?;
        tracing::info!(token_id = %row.id, revoked_by = %caller.token_id, "api token revoked");
        Ok(pb::RevokeApiTokenResponse {
            token: Some(token_to_proto(row)?),
        })
    }
}

fn token_to_proto(row: TokenRow) -> ApiResult<pb::ApiToken> {
    let role =
        Role::from_name(&row.role).ok_or_else(|| ApiError::internal("stored role", &row.role))?;
    Ok(pb::ApiToken {
        id: row.id.to_string(),
        organization_id: row.organization_id.to_string(),
        workspace_id: row.workspace_id.map(|w| w.to_string()).unwrap_or_default(),
        role: role.to_proto() as i32,
        name: row.name,
        created_at: Some(timestamp(row.created_at)),
        revoked_at: row.revoked_at.map(timestamp),
    })
}

#[tonic::async_trait]
impl AuthService for TokenService {
    #[instrument(skip_all)]
    async fn exchange_token(
        &self,
        request: Request<pb::ExchangeTokenRequest>,
    ) -> Result<Response<pb::ExchangeTokenResponse>, Status> {
        let token = request.into_inner().api_token;
        let refused = ApiError::Unauthenticated {
            reason: reasons::API_TOKEN_INVALID,
            message: "the API token is unknown or revoked",
        };
        if token.is_empty() || token.len() > 256 {
            return Err(refused.into());
        }
        let mut conn = self.state.conn().await?;
        let row = tokens::find_valid(&mut conn, &token)
            .await
            .map_err(ApiError::from)?
            .ok_or(refused)?;
        let now = chrono::Utc::now().timestamp();
        let ttl = self.state.auth.ttl_seconds();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: row.id.to_string(),
            org: row.organization_id.to_string(),
            ws: row.workspace_id.map(|w| w.to_string()),
            role: row.role.clone(),
            iat: now,
            nbf: now,
            exp: now + ttl,
        };
        let jwt = self
            .state
            .auth
            .key()
            .sign(&claims)
            .map_err(|e| ApiError::internal("signing jwt", e))?;
        tracing::info!(token_id = %row.id, organization_id = %row.organization_id, role = %row.role, "api token exchanged");
        Ok(Response::new(pb::ExchangeTokenResponse {
            jwt_token: jwt,
            token_type: "Bearer".into(),
            expires_in: ttl,
        }))
    }
}

fn validate_token_name(name: &str) -> ApiResult<()> {
    let len = name.chars().count();
    if !(1..=100).contains(&len) || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            reasons::API_TOKEN_NAME_INVALID,
            "name",
            "name must be 1-100 characters without control characters",
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl AdminService for TokenService {
    #[instrument(skip_all)]
    async fn create_api_token(
        &self,
        request: Request<pb::CreateApiTokenRequest>,
    ) -> Result<Response<pb::CreateApiTokenResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.create_token(c, r)).await
    }

    #[instrument(skip_all)]
    async fn list_api_tokens(
        &self,
        request: Request<pb::ListApiTokensRequest>,
    ) -> Result<Response<pb::ListApiTokensResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.list_tokens(c, r)).await
    }

    #[instrument(skip_all)]
    async fn revoke_api_token(
        &self,
        request: Request<pb::RevokeApiTokenRequest>,
    ) -> Result<Response<pb::RevokeApiTokenResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.revoke_token(c, r)).await
    }
}
