//! ConfigParamService: per-app params that provider secrets reference as `${configParam.NAME}`.
//! SECRET params are sealed and write-only. Changing a param re-resolves every webhook secret that
//! references it, in the same transaction, and bumps the config revision (docs/control-plane.md,
//! "Rules").

pub(crate) mod store;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use tonic::{Request, Response, Status};
use tracing::instrument;

use gateway_proto::v1 as pb;
use gateway_proto::v1::config_param_service_server::ConfigParamService;
use gateway_shared::Secret;

use self::store::{param_aad, valid_param_name, ParamRow, SECRET, VALUE};
use crate::api::{serve, AppState, Page};
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::reasons;
use crate::revision::{record_change, ChangeKind};
use crate::schema::config_params;
use crate::webhooks::resolve;

const MAX_VALUE_LEN: usize = 65_536;

/// Implements ConfigParamService.
#[derive(Clone)]
pub(crate) struct ConfigParams {
    state: AppState,
}

fn check_name(name: &str) -> ApiResult<()> {
    if valid_param_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            reasons::CONFIG_PARAM_NAME_INVALID,
            "name",
            "name must be 1-100 ASCII letters, digits, `_`, `-` or `.`, starting with a letter or `_`",
        ))
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound {
        reason: reasons::CONFIG_PARAM_NOT_FOUND,
        what: "config param",
    }
}

impl ConfigParams {
    /// Over the shared state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    async fn set(
        &self,
        caller: Caller,
        req: pb::SetConfigParamRequest,
    ) -> ApiResult<pb::ConfigParam> {
        let scope = caller.require_app(Permission::Write, req.app.as_ref())?;
        check_name(&req.name)?;
        let kind = match pb::ConfigParamKind::try_from(req.kind) {
            Ok(pb::ConfigParamKind::Value) => VALUE,
            Ok(pb::ConfigParamKind::Secret) => SECRET,
            _ => {
                return Err(ApiError::invalid(
                    reasons::CONFIG_PARAM_KIND_REQUIRED,
                    "kind",
                    "kind must be VALUE or SECRET",
                ))
            }
        };
        if req.value.len() > MAX_VALUE_LEN {
            return Err(ApiError::invalid(
                reasons::CONFIG_PARAM_VALUE_INVALID,
                "value",
                format!("value must be at most {MAX_VALUE_LEN} bytes"),
            ));
        }
        let value = Secret::new(req.value);
        let (text, sealed) = if kind == SECRET {
            let sealed = self
                .state
                .keyring
                .seal_str(value.expose(), &param_aad(scope, &req.name))?;
            (None, Some(sealed))
        } else {
            (Some(value.expose().clone()), None)
        };
        let name = req.name;
        let keyring = self.state.keyring.clone();
        let mut conn = self.state.conn().await?;
        let row = conn
            .transaction(async move |conn| -> ApiResult<ParamRow> {
                let row =
                    store::upsert(conn, scope, &name, kind, text.as_deref(), sealed.as_deref())
                        .await?;
                let touched = resolve::re_resolve(conn, &keyring, scope, &name).await?;
                record_change(conn, &touched, ChangeKind::SecretResolved).await?;
                Ok(row)
            })
            .await?;
        tracing::info!(kind, "config param set");
        Ok(row.to_proto())
    }

    async fn get(
        &self,
        caller: Caller,
        req: pb::GetConfigParamRequest,
    ) -> ApiResult<pb::ConfigParam> {
        let scope = caller.require_app(Permission::Read, req.app.as_ref())?;
        check_name(&req.name)?;
        let mut conn = self.state.conn().await?;
        let row: Option<ParamRow> = store::of_app(scope)
            .filter(config_params::name.eq(&req.name))
            .select(ParamRow::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        Ok(row.ok_or_else(not_found)?.to_proto())
    }

    async fn list(
        &self,
        caller: Caller,
        req: pb::ListConfigParamsRequest,
    ) -> ApiResult<pb::ListConfigParamsResponse> {
        let scope = caller.require_app(Permission::Read, req.app.as_ref())?;
        let page = Page::parse(req.page_size, &req.page_token)?;
        let mut query = store::of_app(scope)
            .select(ParamRow::as_select())
            .order(config_params::name)
            .limit(page.fetch());
        if let Some(after) = &page.after {
            query = query.filter(config_params::name.gt(after.clone()));
        }
        let mut conn = self.state.conn().await?;
        let mut rows: Vec<ParamRow> = query.load(&mut conn).await?;
        let next_page_token = page.finish(&mut rows, |r| r.name.clone());
        Ok(pb::ListConfigParamsResponse {
            params: rows.iter().map(ParamRow::to_proto).collect(),
            next_page_token,
        })
    }

    async fn delete(
        &self,
        caller: Caller,
        req: pb::DeleteConfigParamRequest,
    ) -> ApiResult<pb::DeleteConfigParamResponse> {
        let scope = caller.require_app(Permission::Write, req.app.as_ref())?;
        check_name(&req.name)?;
        let name = req.name;
        let mut conn = self.state.conn().await?;
        conn.transaction(async move |conn| -> ApiResult<()> {
            let users = resolve::referencing(conn, scope, &name).await?;
            if !users.is_empty() {
                return Err(ApiError::Precondition {
                    reason: reasons::CONFIG_PARAM_IN_USE,
                    message: format!(
                        "config param `{name}` is referenced by the provider secret of: {}",
                        users.join(", ")
                    ),
                    metadata: vec![("param", name.clone())],
                });
            }
            if !store::delete(conn, scope, &name).await? {
                return Err(not_found());
            }
            Ok(())
        })
        .await?;
        Ok(pb::DeleteConfigParamResponse {})
    }
}

#[tonic::async_trait]
impl ConfigParamService for ConfigParams {
    #[instrument(skip_all)]
    async fn set_config_param(
        &self,
        request: Request<pb::SetConfigParamRequest>,
    ) -> Result<Response<pb::ConfigParam>, Status> {
        serve(&self.state.auth, request, |c, r| self.set(c, r)).await
    }

    #[instrument(skip_all)]
    async fn get_config_param(
        &self,
        request: Request<pb::GetConfigParamRequest>,
    ) -> Result<Response<pb::ConfigParam>, Status> {
        serve(&self.state.auth, request, |c, r| self.get(c, r)).await
    }

    #[instrument(skip_all)]
    async fn list_config_params(
        &self,
        request: Request<pb::ListConfigParamsRequest>,
    ) -> Result<Response<pb::ListConfigParamsResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.list(c, r)).await
    }

    #[instrument(skip_all)]
    async fn delete_config_param(
        &self,
        request: Request<pb::DeleteConfigParamRequest>,
    ) -> Result<Response<pb::DeleteConfigParamResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.delete(c, r)).await
    }
}
