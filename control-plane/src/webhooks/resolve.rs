//! Provider secrets against config params: resolving a template when it is saved, and re-resolving
//! every webhook of an app that references a param when the param changes (docs/control-plane.md,
//! "Rules").

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use gateway_shared::crypto::Keyring;
use gateway_shared::Provider;

use super::secrets::{columns, SecretValue};
use super::store::WebhookRow;
use crate::config_params::store::resolve_values;
use crate::error::{ApiError, ApiResult};
use crate::schema::webhooks;
use crate::scope::{in_app, AppScope};

/// Sealed secret columns for a template and its resolution.
pub(crate) struct SealedSecret {
    /// Template, sealed.
    pub template: Vec<u8>,
    /// Resolved, sealed.
    pub resolved: Vec<u8>,
    /// Param names referenced.
    pub refs: Vec<String>,
}

/// Resolves `template` against the app's params and seals both forms for webhook `id`.
pub(crate) async fn seal_secret(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    scope: AppScope,
    id: Uuid,
    provider: Provider,
    template: &SecretValue,
) -> ApiResult<SealedSecret> {
    let refs = template.param_refs()?;
    let params = resolve_values(conn, keyring, scope, &refs).await?;
    let resolved = template.resolve(provider, &params)?;
    Ok(SealedSecret {
        template: template.seal(keyring, id, columns::SECRET_TEMPLATE)?,
        resolved: resolved.seal(keyring, id, columns::SECRET_RESOLVED)?,
        refs: refs.into_iter().collect(),
    })
}

/// Names of the app's webhooks whose provider secret references param `name`; their rows stay
/// share-locked for the rest of the transaction.
pub(crate) async fn referencing(
    conn: &mut AsyncPgConnection,
    scope: AppScope,
    name: &str,
) -> ApiResult<Vec<String>> {
    Ok(webhooks::table
        .filter(in_app!(webhooks, scope))
        .filter(webhooks::secret_param_refs.contains(vec![name.to_owned()]))
        .select(webhooks::name)
        .for_share()
        .load(conn)
        .await?)
}

/// Re-resolves the secrets of every webhook of the app that references param `name`; returns their
/// ids.
pub(crate) async fn re_resolve(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    scope: AppScope,
    name: &str,
) -> ApiResult<Vec<Uuid>> {
    let rows: Vec<WebhookRow> = webhooks::table
        .filter(in_app!(webhooks, scope))
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
        let params = resolve_values(conn, keyring, scope, &refs)
            .await
            .map_err(|e| naming(e, &row))?;
        let resolved = template
            .resolve(row.provider()?, &params)
            .map_err(|e| naming(e, &row))?;
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

/// A failed resolution, saying which webhook it was.
fn naming(err: ApiError, row: &WebhookRow) -> ApiError {
    match err {
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
    }
}
