//! Tenancy: an app reference parsed and validated, id parsing, and the one filter that keeps a query
//! inside an app (docs/control-plane.md, "Security model").

use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_shared::{AppId, OrganizationId, WorkspaceId};

use crate::error::{ApiError, ApiResult};
use crate::reasons;

/// An app reference parsed and validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AppScope {
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
        let app = app
            .ok_or_else(|| ApiError::invalid(reasons::APP_REQUIRED, "app", "`app` is required"))?;
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
pub(crate) fn parse_uuid(text: &str, field: &'static str) -> ApiResult<Uuid> {
    Uuid::parse_str(text.trim()).map_err(|_| {
        ApiError::invalid(
            reasons::ID_INVALID,
            field,
            format!("`{field}` must be a UUID"),
        )
    })
}

/// An optional UUID request field: empty is `None`.
pub(crate) fn parse_optional_uuid(text: &str, field: &'static str) -> ApiResult<Option<Uuid>> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        parse_uuid(text, field).map(Some)
    }
}

/// The filter that keeps a query on `$table` (any table with `organization_id`, `workspace_id` and
/// `app_id` columns) inside one app: `.filter(in_app!(webhooks, scope))`.
macro_rules! in_app {
    ($table:ident, $scope:expr) => {{
        let scope: $crate::scope::AppScope = $scope;
        $table::organization_id
            .eq(scope.organization_id.0)
            .and($table::workspace_id.eq(scope.workspace_id.0))
            .and($table::app_id.eq(scope.app_id.0))
    }};
}
pub(crate) use in_app;

/// Loads row `$id` of `$table` (any table with `id`, `organization_id` and `workspace_id` columns)
/// as `$row` when it is in the caller's scope, else returns `$not_found` — the same answer for an
/// id that does not exist and one of another tenant, so existence is never revealed. `$for_update`
/// locks the row for the rest of the transaction. Evaluates to `ApiResult<$row>`.
macro_rules! load_in_scope {
    ($conn:expr, $caller:expr, $table:ident, $row:ty, $id:expr, $for_update:expr, $not_found:expr) => {{
        let caller: &$crate::auth::Caller = $caller;
        let query = $table::table
            .filter($table::id.eq($id))
            .filter($table::organization_id.eq(caller.organization_id.0))
            .select(<$row>::as_select());
        let row: Option<$row> = if $for_update {
            query.for_update().first($conn).await
        } else {
            query.first($conn).await
        }
        .optional()?;
        match row {
            Some(row) if caller.sees_workspace(row.workspace_id) => Ok(row),
            _ => Err($not_found),
        }
    }};
}
pub(crate) use load_in_scope;
