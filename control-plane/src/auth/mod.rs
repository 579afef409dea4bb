//! Who is calling: API tokens, JWTs, roles and the organization/workspace scope checked on every RPC.

pub mod jwt;
pub mod oidc;
pub(crate) mod service;
pub mod tokens;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_shared::{OrganizationId, WorkspaceId};

use crate::db::DbPool;
use crate::error::{ApiError, ApiResult};
use crate::reasons;
use crate::schema::api_tokens;
use crate::scope::AppScope;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything in scope, including API tokens.
    Admin,
    /// Writes and credentials in scope.
    Editor,
    /// Reads in scope.
    Viewer,
    /// Only the config-distribution stream.
    DataPlane,
}

/// An action checked against a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Permission {
    /// Read registrations, params (never secret values), bindings and triggers.
    Read,
    /// Create, change or delete them.
    Write,
    /// See a webhook's API key (GetWebhookUrl, ResetApiKey).
    RevealCredentials,
    /// Create, list and revoke API tokens.
    ManageTokens,
    /// Open the config-distribution stream and report failed triggers.
    ReceiveConfig,
}

impl Permission {
    fn describe(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::RevealCredentials => "see credentials",
            Permission::ManageTokens => "manage API tokens",
            Permission::ReceiveConfig => "receive data-plane config",
        }
    }
}

impl Role {
    /// The upper-case name stored and put in JWTs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Editor => "EDITOR",
            Role::Viewer => "VIEWER",
            Role::DataPlane => "DATA_PLANE",
        }
    }

    /// The role with this upper-case name.
    pub fn from_name(name: &str) -> Option<Role> {
        match name {
            "ADMIN" => Some(Role::Admin),
            "EDITOR" => Some(Role::Editor),
            "VIEWER" => Some(Role::Viewer),
            "DATA_PLANE" => Some(Role::DataPlane),
            _ => None,
        }
    }

    /// From the proto enum; UNSPECIFIED is `None`.
    pub fn from_proto(value: i32) -> Option<Role> {
        match pb::Role::try_from(value).ok()? {
            pb::Role::Admin => Some(Role::Admin),
            pb::Role::Editor => Some(Role::Editor),
            pb::Role::Viewer => Some(Role::Viewer),
            pb::Role::DataPlane => Some(Role::DataPlane),
            pb::Role::Unspecified => None,
        }
    }

    /// To the proto enum.
    pub fn to_proto(self) -> pb::Role {
        match self {
            Role::Admin => pb::Role::Admin,
            Role::Editor => pb::Role::Editor,
            Role::Viewer => pb::Role::Viewer,
            Role::DataPlane => pb::Role::DataPlane,
        }
    }

    /// Whether this role allows `permission`.
    pub(crate) fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => !matches!(permission, ReceiveConfig),
            Role::Editor => matches!(permission, Read | Write | RevealCredentials),
            Role::Viewer => matches!(permission, Read),
            Role::DataPlane => matches!(permission, ReceiveConfig),
        }
    }
}

/// The authenticated caller of an RPC.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    /// The API token the JWT was exchanged for.
    pub token_id: Uuid,
    /// Organization scope.
    pub organization_id: OrganizationId,
    /// Workspace scope; `None` = the whole organization.
    pub workspace_id: Option<WorkspaceId>,
    /// Role.
    pub role: Role,
    /// When the bearer JWT expires, unix seconds (long-lived calls end then).
    pub expires_at: i64,
}

impl Caller {
    /// Refuses unless the role allows `permission`.
    pub fn require(&self, permission: Permission) -> ApiResult<()> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::RoleForbidden {
                role: self.role.as_str(),
                action: permission.describe(),
            })
        }
    }

    /// Parses a request's required `app` and refuses unless the role allows `permission` there.
    pub fn require_app(
        &self,
        permission: Permission,
        app: Option<&pb::AppRef>,
    ) -> ApiResult<AppScope> {
        let scope = AppScope::parse(app)?;
        self.require_in(permission, scope.organization_id, Some(scope.workspace_id))?;
        Ok(scope)
    }

    /// Whether the caller's workspace scope includes `workspace_id` (the organization is checked
    /// by the query that found the row).
    pub fn sees_workspace(&self, workspace_id: Uuid) -> bool {
        self.workspace_id.is_none_or(|ws| ws.0 == workspace_id)
    }

    /// Refuses unless the role allows `permission` in this organization and workspace.
    pub fn require_in(
        &self,
        permission: Permission,
        organization_id: OrganizationId,
        workspace_id: Option<WorkspaceId>,
    ) -> ApiResult<()> {
        self.require(permission)?;
        if organization_id != self.organization_id {
            return Err(ApiError::ScopeForbidden {
                what: "organization",
            });
        }
        match (self.workspace_id, workspace_id) {
            (None, _) => Ok(()),
            (Some(mine), Some(theirs)) if mine == theirs => Ok(()),
            (Some(_), _) => Err(ApiError::ScopeForbidden { what: "workspace" }),
        }
    }
}

/// Authenticates requests: verifies the bearer JWT and that its API token is not revoked.
#[derive(Clone)]
pub(crate) struct Authenticator {
    key: jwt::JwtKey,
    pool: DbPool,
    oidc: Option<std::sync::Arc<oidc::Oidc>>,
    ttl_seconds: i64,
}

fn missing() -> ApiError {
    ApiError::Unauthenticated {
        reason: reasons::AUTH_TOKEN_MISSING,
        message: "send `authorization: Bearer <jwt>` (from AuthService.ExchangeToken)",
    }
}

fn invalid() -> ApiError {
    ApiError::Unauthenticated {
        reason: reasons::AUTH_TOKEN_INVALID,
        message: "the bearer token is invalid, expired or revoked",
    }
}

impl Authenticator {
    /// An authenticator over `key` and `pool` whose issued JWTs live `ttl`.
    pub fn new(key: jwt::JwtKey, pool: DbPool, ttl: std::time::Duration) -> Self {
        Self {
            key,
            pool,
            oidc: None,
            ttl_seconds: i64::try_from(ttl.as_secs())
                .unwrap_or(jwt::TTL_SECONDS)
                .max(1),
        }
    }

    /// Also accepts tokens of an external OIDC issuer (docs/control-plane.md, "OIDC tokens").
    pub fn with_oidc(mut self, oidc: Option<std::sync::Arc<oidc::Oidc>>) -> Self {
        self.oidc = oidc;
        self
    }

    /// Lifetime of issued JWTs, in seconds.
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    /// The JWT key (for issuing tokens).
    pub fn key(&self) -> &jwt::JwtKey {
        &self.key
    }

    /// The caller whose bearer JWT `metadata` carries, or UNAUTHENTICATED. RPCs reach it through
    /// `api::serve`.
    pub async fn authenticate(&self, metadata: &tonic::metadata::MetadataMap) -> ApiResult<Caller> {
        let header = metadata.get("authorization").ok_or_else(missing)?;
        let text = header.to_str().map_err(|_| invalid())?;
        let (scheme, token) = text.trim().split_once(' ').ok_or_else(invalid)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(invalid());
        }
        if let Some(oidc) = self
            .oidc
            .as_deref()
            .filter(|o| o.claims_issuer(token.trim()))
        {
            let who = oidc.verify(token.trim()).await.map_err(|e| {
                tracing::debug!(error = %e, "OIDC token refused");
                invalid()
            })?;
            return Ok(Caller {
                token_id: who.id,
                organization_id: who.organization_id,
                workspace_id: who.workspace_id,
                role: who.role,
                expires_at: who.expires_at,
            });
        }
        let claims = self
            .key
            .verify(token.trim(), chrono::Utc::now().timestamp())
            .map_err(|e| {
                tracing::debug!(error = %e, "jwt refused");
                invalid()
            })?;
        let token_id: Uuid = claims.sub.parse().map_err(|_| invalid())?;
        let organization_id: OrganizationId = claims.org.parse().map_err(|_| invalid())?;
        let workspace_id = match &claims.ws {
            Some(ws) => Some(ws.parse::<WorkspaceId>().map_err(|_| invalid())?),
            None => None,
        };
        let role = Role::from_name(&claims.role).ok_or_else(invalid)?;
        // Revocation takes effect at once, not when the JWT expires: one primary-key lookup.
        let mut conn = self.pool.get().await?;
        let revoked: Option<Option<chrono::DateTime<chrono::Utc>>> = api_tokens::table
            .find(token_id)
            .select(api_tokens::revoked_at)
            .first(&mut conn)
            .await
            .optional()?;
        match revoked {
            Some(None) => Ok(Caller {
                token_id,
                organization_id,
                workspace_id,
                role,
                expires_at: claims.exp,
            }),
            _ => Err(invalid()),
        }
    }
}
