//! Config-param rows: the naming rule, sealing SECRET values, and reading an app's params. Knows
//! nothing of webhooks; `webhooks::resolve` reads values from here.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_shared::crypto::{Aad, Keyring};
use gateway_shared::Secret;

use crate::api::timestamp;
use crate::error::{ApiError, ApiResult};
use crate::reasons;
use crate::schema::config_params;
use crate::scope::{in_app, AppScope};

/// Stored `kind` of a plain param.
pub(crate) const VALUE: &str = "VALUE";
/// Stored `kind` of a sealed, write-only param.
pub(crate) const SECRET: &str = "SECRET";

/// Whether `name` is a valid param name: 1-100 of ASCII letters, digits, `_`, `-`, `.`, starting
/// with a letter or `_`.
pub(crate) fn valid_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 100
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Associated data of a param's sealed value.
pub(crate) fn param_aad(scope: AppScope, name: &str) -> Aad {
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
pub(crate) struct ParamRow {
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
    pub fn to_proto(&self) -> pb::ConfigParam {
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

/// The params of one app.
pub(crate) fn of_app(scope: AppScope) -> config_params::BoxedQuery<'static, diesel::pg::Pg> {
    config_params::table
        .filter(in_app!(config_params, scope))
        .into_boxed()
}

/// The values of the named params of an app (those that exist), for a provider secret: each must
/// be a SECRET param (FAILED_PRECONDITION, `CONFIG_PARAM_NOT_SECRET`, otherwise), since a VALUE
/// param's value is shown to every VIEWER.
pub(crate) async fn resolve_values(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    scope: AppScope,
    names: &BTreeSet<String>,
) -> ApiResult<BTreeMap<String, Secret<String>>> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<ParamRow> = of_app(scope)
        .filter(config_params::name.eq_any(names.iter().cloned().collect::<Vec<_>>()))
        .select(ParamRow::as_select())
        .load(conn)
        .await?;
    if let Some(plain) = rows.iter().find(|r| r.kind != SECRET) {
        return Err(ApiError::Precondition {
            reason: reasons::CONFIG_PARAM_NOT_SECRET,
            message: format!(
                "config param `{}` is a VALUE param: a provider secret may only reference SECRET params",
                plain.name
            ),
            metadata: vec![("param", plain.name.clone())],
        });
    }
    rows.iter()
        .map(|r| Ok((r.name.clone(), r.value(keyring)?)))
        .collect()
}

/// Inserts or replaces a param; returns the stored row.
pub(crate) async fn upsert(
    conn: &mut AsyncPgConnection,
    scope: AppScope,
    name: &str,
    kind: &'static str,
    text: Option<&str>,
    sealed: Option<&[u8]>,
) -> ApiResult<ParamRow> {
    Ok(diesel::insert_into(config_params::table)
        .values((
            config_params::organization_id.eq(scope.organization_id.0),
            config_params::workspace_id.eq(scope.workspace_id.0),
            config_params::app_id.eq(scope.app_id.0),
            config_params::name.eq(name),
            config_params::kind.eq(kind),
            config_params::value_text.eq(text),
            config_params::value_ciphertext.eq(sealed),
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
            config_params::value_text.eq(text),
            config_params::value_ciphertext.eq(sealed),
            config_params::updated_at.eq(diesel::dsl::now),
        ))
        .returning(ParamRow::as_returning())
        .get_result(conn)
        .await?)
}

/// Deletes a param; returns whether it existed.
pub(crate) async fn delete(
    conn: &mut AsyncPgConnection,
    scope: AppScope,
    name: &str,
) -> ApiResult<bool> {
    let deleted = diesel::delete(config_params::table.find((
        scope.organization_id.0,
        scope.workspace_id.0,
        scope.app_id.0,
        name,
    )))
    .execute(conn)
    .await?;
    Ok(deleted > 0)
}
