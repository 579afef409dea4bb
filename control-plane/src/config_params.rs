//! ConfigParamService: per-app params that provider secrets reference as `${configParam.NAME}`.
//! SECRET params are sealed and write-only. Changing a param re-resolves every webhook secret that
//! references it, in the same transaction, and bumps the config revision.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tonic::{Request, Response, Status};
use tracing::instrument;
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_proto::v1::config_param_service_server::ConfigParamService;
use gateway_shared::crypto::{Aad, Keyring};
use gateway_shared::Secret;

use crate::api::{timestamp, AppScope, AppState, Page};
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult};
use crate::revision::{record_change, ChangeKind};
use crate::schema::{config_params, webhooks};
use crate::webhooks::secrets::{columns, SecretValue};
use crate::webhooks::store::WebhookRow;

const MAX_VALUE_LEN: usize = 65_536;
const VALUE: &str = "VALUE";
const SECRET: &str = "SECRET";

/// Whether `name` is a valid param name: 1-100 of ASCII letters, digits, `_`, `-`, `.`, starting
/// with a letter or `_`.
pub fn valid_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 100
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Associated data of a param's sealed value.
pub fn param_aad(scope: AppScope, name: &str) -> Aad {
    Aad::new(
        "config_params",
        &format!(
            "{}/{}/{}/{name}",
            scope.organization_id, scope.workspace_id, scope.app_id
        ),
        "value_ciphertext",
    )
}

/// A stored param.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = config_params)]
pub struct ParamRow {
    pub organization_id: Uuid,
    pub workspace_id: Uuid,
    pub app_id: Uuid,
    pub name: String,
    pub kind: String,
    pub value_text: Option<String>,
    pub value_ciphertext: Option<Vec<u8>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl ParamRow {
    fn scope(&self) -> AppScope {
        AppScope::from_uuids(self.organization_id, self.workspace_id, self.app_id)
    }

    /// The API view; SECRET values are never included.
    fn to_proto(&self) -> pb::ConfigParam {
        let secret = self.kind == SECRET;
        pb::ConfigParam {
            app: Some(self.scope().to_proto()),
            name: self.name.clone(),
            kind: if secret {
                pb::ConfigParamKind::Secret
            } else {
                pb::ConfigParamKind::Value
            } as i32,
            value: if secret {
                String::new()
            } else {
                self.value_text.clone().unwrap_or_default()
            },
            created_at: Some(timestamp(self.created_at)),
            updated_at: Some(timestamp(self.updated_at)),
        }
    }

    /// The value in clear (SECRET values opened).
    fn value(&self, keyring: &Keyring) -> ApiResult<Secret<String>> {
        match (&self.value_text, &self.value_ciphertext) {
            (Some(v), _) => Ok(Secret::new(v.clone())),
            (None, Some(sealed)) => {
                Ok(keyring.open_str(sealed, &param_aad(self.scope(), &self.name))?)
            }
            (None, None) => Err(ApiError::internal("config param", "row has no value")),
        }
    }
}

fn app_filter(scope: AppScope) -> config_params::BoxedQuery<'static, diesel::pg::Pg> {
    config_params::table
        .filter(config_params::organization_id.eq(scope.organization_id.0))
        .filter(config_params::workspace_id.eq(scope.workspace_id.0))
        .filter(config_params::app_id.eq(scope.app_id.0))
        .into_boxed()
}

/// The values of the named params of an app (those that exist).
pub async fn resolve_values(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    scope: AppScope,
    names: &BTreeSet<String>,
) -> ApiResult<BTreeMap<String, Secret<String>>> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<ParamRow> = app_filter(scope)
        .filter(config_params::name.eq_any(names.iter().cloned().collect::<Vec<_>>()))
        .select(ParamRow::as_select())
        .load(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.name.clone(), r.value(keyring)?)))
        .collect()
}

/// Re-resolves the secrets of every webhook of the app that references `name`; returns their ids.
async fn re_resolve(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    scope: AppScope,
    name: &str,
) -> ApiResult<Vec<Uuid>> {
    let rows: Vec<WebhookRow> = webhooks::table
        .filter(webhooks::organization_id.eq(scope.organization_id.0))
        .filter(webhooks::workspace_id.eq(scope.workspace_id.0))
        .filter(webhooks::app_id.eq(scope.app_id.0))
        .filter(webhooks::secret_param_refs.contains(vec![name.to_owned()]))
        .select(WebhookRow::as_select())
        .for_update()
        .load(conn)
        .await?;
    let mut touched = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(sealed) = &row.secret_template_ciphertext else {
            continue;
        };
        let template = SecretValue::open(keyring, sealed, row.id, columns::SECRET_TEMPLATE)?;
        let refs = template.param_refs()?;
        let params = resolve_values(conn, keyring, scope, &refs).await?;
        let resolved = template
            .resolve(row.provider()?, &params)
            .map_err(|e| match e {
                ApiError::Precondition {
                    reason,
                    message,
                    mut metadata,
                } => {
                    metadata.push(("webhook_id", row.id.to_string()));
                    ApiError::Precondition {
                        reason,
                        message: format!("webhook `{}`: {message}", row.name),
                        metadata,
                    }
                }
                other => other,
            })?;
        diesel::update(webhooks::table.find(row.id))
            .set((
                webhooks::secret_resolved_ciphertext.eq(Some(resolved.seal(
                    keyring,
                    row.id,
                    columns::SECRET_RESOLVED,
                )?)),
                webhooks::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
        touched.push(row.id);
    }
    Ok(touched)
}

/// Implements ConfigParamService.
#[derive(Clone)]
pub struct ConfigParams {
    state: AppState,
}

impl ConfigParams {
    /// Over the shared state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

fn check_name(name: &str) -> ApiResult<()> {
    if valid_param_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "CONFIG_PARAM_NAME_INVALID",
            "name",
            "name must be 1-100 ASCII letters, digits, `_`, `-` or `.`, starting with a letter or `_`",
        ))
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound {
        reason: "CONFIG_PARAM_NOT_FOUND",
        what: "config param",
    }
}

#[tonic::async_trait]
impl ConfigParamService for ConfigParams {
    #[instrument(skip_all)]
    async fn set_config_param(
        &self,
        request: Request<pb::SetConfigParamRequest>,
    ) -> Result<Response<pb::ConfigParam>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        let req = request.into_inner();
        let scope = caller.require_app(Permission::Write, req.app.as_ref())?;
        check_name(&req.name)?;
        let kind = match pb::ConfigParamKind::try_from(req.kind) {
            Ok(pb::ConfigParamKind::Value) => VALUE,
            Ok(pb::ConfigParamKind::Secret) => SECRET,
            _ => {
                return Err(ApiError::invalid(
                    "CONFIG_PARAM_KIND_REQUIRED",
                    "kind",
                    "kind must be VALUE or SECRET",
                )
                .into())
            }
        };
        if req.value.len() > MAX_VALUE_LEN {
            return Err(ApiError::invalid(
                "CONFIG_PARAM_VALUE_INVALID",
                "value",
                format!("value must be at most {MAX_VALUE_LEN} bytes"),
            )
            .into());
        }
        let value = Secret::new(req.value);
        let (text, sealed) = if kind == SECRET {
            (
                None,
                Some(
                    self.state
                        .keyring
                        .seal_str(value.expose(), &param_aad(scope, &req.name))
                        .map_err(ApiError::from)?,
                ),
            )
        } else {
            (Some(value.expose().clone()), None)
        };
        let name = req.name;
        let keyring = self.state.keyring.clone();
        let mut conn = self.state.conn().await?;
        let row = conn
            .transaction(async move |conn| -> ApiResult<ParamRow> {
                let row: ParamRow = diesel::insert_into(config_params::table)
                    .values((
                        config_params::organization_id.eq(scope.organization_id.0),
                        config_params::workspace_id.eq(scope.workspace_id.0),
                        config_params::app_id.eq(scope.app_id.0),
                        config_params::name.eq(&name),
                        config_params::kind.eq(kind),
                        config_params::value_text.eq(&text),
                        config_params::value_ciphertext.eq(&sealed),
                    ))
                    .on_conflict((
                        config_params::organization_id,
                        config_params::workspace_id,
                        config_params::app_id,
                        config_params::name,
                    ))
                    .do_update()
                    .set((
                        config_params::kind.eq(kind),
                        config_params::value_text.eq(&text),
                        config_params::value_ciphertext.eq(&sealed),
                        config_params::updated_at.eq(diesel::dsl::now),
                    ))
                    .returning(ParamRow::as_returning())
                    .get_result(conn)
                    .await?;
                let touched = re_resolve(conn, &keyring, scope, &name).await?;
                record_change(conn, &touched, ChangeKind::SecretResolved).await?;
                Ok(row)
            })
            .await?;
        tracing::info!(kind, "config param set");
        Ok(Response::new(row.to_proto()))
    }

    #[instrument(skip_all)]
    async fn get_config_param(
        &self,
        request: Request<pb::GetConfigParamRequest>,
    ) -> Result<Response<pb::ConfigParam>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        let req = request.into_inner();
        let scope = caller.require_app(Permission::Read, req.app.as_ref())?;
        check_name(&req.name)?;
        let mut conn = self.state.conn().await?;
        let row: Option<ParamRow> = app_filter(scope)
            .filter(config_params::name.eq(&req.name))
            .select(ParamRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(ApiError::from)?;
        Ok(Response::new(row.ok_or_else(not_found)?.to_proto()))
    }

    #[instrument(skip_all)]
    async fn list_config_params(
        &self,
        request: Request<pb::ListConfigParamsRequest>,
    ) -> Result<Response<pb::ListConfigParamsResponse>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        let req = request.into_inner();
        let scope = caller.require_app(Permission::Read, req.app.as_ref())?;
        let page = Page::parse(req.page_size, &req.page_token)?;
        let mut query = app_filter(scope)
            .select(ParamRow::as_select())
            .order(config_params::name)
            .limit(page.fetch());
        if let Some(after) = &page.after {
            query = query.filter(config_params::name.gt(after.clone()));
        }
        let mut conn = self.state.conn().await?;
        let mut rows: Vec<ParamRow> = query.load(&mut conn).await.map_err(ApiError::from)?;
        let next_page_token = page.finish(&mut rows, |r| r.name.clone());
        Ok(Response::new(pb::ListConfigParamsResponse {
            params: rows.iter().map(ParamRow::to_proto).collect(),
            next_page_token,
        }))
    }

    #[instrument(skip_all)]
    async fn delete_config_param(
        &self,
        request: Request<pb::DeleteConfigParamRequest>,
    ) -> Result<Response<pb::DeleteConfigParamResponse>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        let req = request.into_inner();
        let scope = caller.require_app(Permission::Write, req.app.as_ref())?;
        check_name(&req.name)?;
        let name = req.name;
        let mut conn = self.state.conn().await?;
        conn.transaction(async move |conn| -> ApiResult<()> {
            let users: Vec<String> = webhooks::table
                .filter(webhooks::organization_id.eq(scope.organization_id.0))
                .filter(webhooks::workspace_id.eq(scope.workspace_id.0))
                .filter(webhooks::app_id.eq(scope.app_id.0))
                .filter(webhooks::secret_param_refs.contains(vec![name.clone()]))
                .select(webhooks::name)
                .for_share()
                .load(conn)
                .await?;
            if !users.is_empty() {
                return Err(ApiError::Precondition {
                    reason: "CONFIG_PARAM_IN_USE",
                    message: format!(
                        "config param `{name}` is referenced by the provider secret of: {}",
                        users.join(", ")
                    ),
                    metadata: vec![("param", name.clone())],
                });
            }
            let deleted = diesel::delete(config_params::table.find((
                scope.organization_id.0,
                scope.workspace_id.0,
                scope.app_id.0,
                &name,
            )))
            .execute(conn)
            .await?;
            if deleted == 0 {
                return Err(not_found());
            }
            Ok(())
        })
        .await?;
        Ok(Response::new(pb::DeleteConfigParamResponse {}))
    }
}
