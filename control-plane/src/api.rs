//! Helpers every service shares: the state they hold, id parsing, tenancy references, paging, times.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_shared::crypto::Keyring;
use gateway_shared::{AppId, OrganizationId, WorkspaceId};

use crate::auth::Authenticator;
use crate::db::DbPool;
use crate::error::{ApiError, ApiResult};

/// What the services share.
#[derive(Clone)]
pub struct AppState {
    /// Postgres.
    pub pool: DbPool,
    /// Master keys for encryption at rest.
    pub keyring: Arc<Keyring>,
    /// Verifies callers and issues JWTs.
    pub auth: Authenticator,
    /// Public base URL of the data planes, without a trailing slash.
    pub public_base_url: String,
}

impl AppState {
    /// A pooled connection, or UNAVAILABLE.
    pub async fn conn(&self) -> ApiResult<Object<AsyncPgConnection>> {
        Ok(self.pool.get().await?)
    }
}

/// An app reference parsed and validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppScope {
    /// Organization.
    pub organization_id: OrganizationId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// App.
    pub app_id: AppId,
}

impl AppScope {
    /// Parses a required `AppRef` field.
    pub fn parse(app: Option<&pb::AppRef>) -> ApiResult<Self> {
        let app =
            app.ok_or_else(|| ApiError::invalid("APP_REQUIRED", "app", "`app` is required"))?;
        Ok(Self {
            organization_id: OrganizationId(parse_uuid(
                &app.organization_id,
                "app.organization_id",
            )?),
            workspace_id: WorkspaceId(parse_uuid(&app.workspace_id, "app.workspace_id")?),
            app_id: AppId(parse_uuid(&app.app_id, "app.app_id")?),
        })
    }

    /// From stored columns.
    pub fn from_uuids(organization_id: Uuid, workspace_id: Uuid, app_id: Uuid) -> Self {
        Self {
            organization_id: OrganizationId(organization_id),
            workspace_id: WorkspaceId(workspace_id),
            app_id: AppId(app_id),
        }
    }

    /// To the proto message.
    pub fn to_proto(self) -> pb::AppRef {
        pb::AppRef {
            organization_id: self.organization_id.to_string(),
            workspace_id: self.workspace_id.to_string(),
            app_id: self.app_id.to_string(),
        }
    }
}

/// Parses a UUID request field (INVALID_ARGUMENT, reason ID_INVALID).
pub fn parse_uuid(text: &str, field: &'static str) -> ApiResult<Uuid> {
    Uuid::parse_str(text.trim())
        .map_err(|_| ApiError::invalid("ID_INVALID", field, format!("`{field}` must be a UUID")))
}

/// Default and maximum page sizes.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// A page request: how many rows and the key after which to start.
#[derive(Clone, Debug)]
pub struct Page {
    /// Rows to return.
    pub size: i64,
    /// Exclusive start key (the last key of the previous page).
    pub after: Option<String>,
}

impl Page {
    /// Parses `page_size` and `page_token`.
    pub fn parse(page_size: u32, page_token: &str) -> ApiResult<Self> {
        if page_size > MAX_PAGE {
            return Err(ApiError::invalid(
                "PAGE_SIZE_INVALID",
                "page_size",
                format!("page_size must be at most {MAX_PAGE}"),
            ));
        }
        let size = if page_size == 0 {
            DEFAULT_PAGE
        } else {
            page_size
        };
        let after = if page_token.is_empty() {
            None
        } else {
            let bytes = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| {
                ApiError::invalid(
                    "PAGE_TOKEN_INVALID",
                    "page_token",
                    "page_token is not one this server issued",
                )
            })?;
            Some(String::from_utf8(bytes).map_err(|_| {
                ApiError::invalid(
                    "PAGE_TOKEN_INVALID",
                    "page_token",
                    "page_token is not one this server issued",
                )
            })?)
        };
        Ok(Self {
            size: i64::from(size),
            after,
        })
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.size + 1
    }

    /// Trims `rows` to the page and returns the next page token (empty on the last page).
    pub fn finish<T>(&self, rows: &mut Vec<T>, key: impl Fn(&T) -> String) -> String {
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        if rows.len() > size {
            rows.truncate(size);
            rows.last()
                .map(|r| URL_SAFE_NO_PAD.encode(key(r)))
                .unwrap_or_default()
        } else {
            String::new()
        }
    }
}

/// A protobuf timestamp.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Validates a grace period in seconds (at most 7 days).
pub fn grace(seconds: u32, field: &'static str) -> ApiResult<Option<chrono::Duration>> {
    const MAX: u32 = 7 * 86_400;
    if seconds > MAX {
        return Err(ApiError::invalid(
            "GRACE_PERIOD_INVALID",
            field,
            format!("`{field}` must be at most {MAX} seconds"),
        ));
    }
    Ok((seconds > 0).then(|| chrono::Duration::seconds(i64::from(seconds))))
}
