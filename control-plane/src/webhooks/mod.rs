//! WebhookService: registrations, provider secrets, API keys and URLs.

pub mod secrets;
pub mod store;
pub mod validate;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use tonic::{Request, Response, Status};
use tracing::instrument;
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_proto::v1::webhook_service_server::WebhookService;
use gateway_shared::{Provider, TriggerState};

use self::secrets::{columns, SecretValue};
use self::store::WebhookRow;
use crate::api::{grace, parse_uuid, timestamp, AppScope, AppState, Page};
use crate::auth::Permission;
use crate::error::{constraints, is_unique_violation, ApiError, ApiResult};
use crate::revision::{record_change, ChangeKind};
use crate::schema::{trigger_bindings, webhooks};

/// Implements WebhookService.
#[derive(Clone)]
pub struct Webhooks {
    state: AppState,
}

impl Webhooks {
    /// Over the shared state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    fn url_response(&self, row: &WebhookRow) -> ApiResult<pb::GetWebhookUrlResponse> {
        let key = row.api_key(&self.state.keyring)?;
        let provider = row.provider()?;
        let url = webhook_url(
            &self.state.public_base_url,
            provider,
            row.scope(),
            row.id,
            key.expose(),
        );
        let previous_key_not_after =
            match (&row.previous_api_key_sha256, row.previous_api_key_not_after) {
                (Some(_), Some(t)) if t > chrono::Utc::now() => Some(timestamp(t)),
                _ => None,
            };
        Ok(pb::GetWebhookUrlResponse {
            url,
            api_key: key.expose().clone(),
            previous_key_not_after,
        })
    }
}

/// The URL a sender calls: `{base}/webhooks/incoming/[{provider}/]{org}/{ws}/{app}/{id}?flowxApiKey={key}`.
pub fn webhook_url(
    base: &str,
    provider: Provider,
    scope: AppScope,
    id: Uuid,
    api_key: &str,
) -> String {
    let segment = provider
        .url_segment()
        .map(|s| format!("{s}/"))
        .unwrap_or_default();
    // base64url keys need no percent-encoding.
    format!(
        "{}/webhooks/incoming/{segment}{}/{}/{}/{}?flowxApiKey={api_key}",
        base.trim_end_matches('/'),
        scope.organization_id,
        scope.workspace_id,
        scope.app_id,
        id
    )
}

fn name_taken(err: diesel::result::Error, name: &str) -> ApiError {
    if is_unique_violation(&err, constraints::WEBHOOK_APP_NAME) {
        ApiError::WebhookNameTaken(name.to_owned())
    } else {
        err.into()
    }
}

#[tonic::async_trait]
impl WebhookService for Webhooks {
    #[instrument(skip_all, fields(webhook_id))]
    async fn create_webhook(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        let req = request.into_inner();
        let scope = caller.require_app(Permission::Write, req.app.as_ref())?;
        validate::name(&req.name)?;
        validate::description(&req.description)?;
        let provider = store::provider_from_proto(req.provider).ok_or_else(|| {
            ApiError::invalid("PROVIDER_REQUIRED", "provider", "provider is required")
        })?;
        let path = validate::correlation_path(&req.correlation_key_path)?;
        let template = req
            .provider_secret
            .as_ref()
            .map(|s| SecretValue::from_request(provider, s))
            .transpose()?;

        let id = Uuid::new_v4();
        tracing::Span::current().record("webhook_id", tracing::field::display(id));
        let key = store::generate_api_key();
        let (key_sealed, key_hash) = store::seal_api_key(&self.state.keyring, id, &key)?;
        let keyring = self.state.keyring.clone();
        let mut conn = self.state.conn().await?;
        let row = conn
            .transaction(async move |conn| -> ApiResult<WebhookRow> {
                let sealed = match &template {
                    Some(t) => {
                        Some(store::seal_secret(conn, &keyring, scope, id, provider, t).await?)
                    }
                    None => None,
                };
                let row: WebhookRow = diesel::insert_into(webhooks::table)
                    .values((
                        webhooks::id.eq(id),
                        webhooks::organization_id.eq(scope.organization_id.0),
                        webhooks::workspace_id.eq(scope.workspace_id.0),
                        webhooks::app_id.eq(scope.app_id.0),
                        webhooks::name.eq(&req.name),
                        webhooks::description.eq(&req.description),
                        webhooks::provider.eq(provider.as_str()),
                        webhooks::state.eq(TriggerState::Deactivated.as_str()),
                        webhooks::correlation_key_path.eq(&path),
                        webhooks::include_raw_body.eq(req.include_raw_body),
                        webhooks::api_key_ciphertext.eq(&key_sealed),
                        webhooks::api_key_sha256.eq(&key_hash),
                        webhooks::secret_template_ciphertext
                            .eq(sealed.as_ref().map(|s| &s.template)),
                        webhooks::secret_resolved_ciphertext
                            .eq(sealed.as_ref().map(|s| &s.resolved)),
                        webhooks::secret_param_refs
                            .eq(sealed.as_ref().map(|s| s.refs.clone()).unwrap_or_default()),
                    ))
                    .returning(WebhookRow::as_returning())
                    .get_result(conn)
                    .await
                    .map_err(|e| name_taken(e, &req.name))?;
                record_change(conn, &[id], ChangeKind::Created).await?;
                Ok(row)
            })
            .await?;
        tracing::info!(provider = provider.as_str(), created_by = %caller.token_id, "webhook created");
        Ok(Response::new(row.to_proto(0)?))
    }

    #[instrument(skip_all)]
    async fn get_webhook(
        &self,
        request: Request<pb::GetWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        caller.require(Permission::Read)?;
        let id = parse_uuid(&request.get_ref().id, "id")?;
        let mut conn = self.state.conn().await?;
        let row = store::load(&mut conn, &caller, id, false).await?;
        Ok(Response::new(store::to_proto(&mut conn, &row).await?))
    }

    #[instrument(skip_all)]
    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        let req = request.into_inner();
        let scope = caller.require_app(Permission::Read, req.app.as_ref())?;
        let page = Page::parse(req.page_size, &req.page_token)?;
        let mut query = webhooks::table
            .filter(webhooks::organization_id.eq(scope.organization_id.0))
            .filter(webhooks::workspace_id.eq(scope.workspace_id.0))
            .filter(webhooks::app_id.eq(scope.app_id.0))
            .select(WebhookRow::as_select())
            .order(webhooks::name)
            .limit(page.fetch())
            .into_boxed();
        if let Some(after) = &page.after {
            query = query.filter(webhooks::name.gt(after.clone()));
        }
        let mut conn = self.state.conn().await?;
        let mut rows: Vec<WebhookRow> = query.load(&mut conn).await.map_err(ApiError::from)?;
        let next_page_token = page.finish(&mut rows, |r| r.name.clone());
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let counts = store::binding_counts(&mut conn, &ids).await?;
        let webhooks = rows
            .iter()
            .map(|r| r.to_proto(counts.get(&r.id).copied().unwrap_or(0)))
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(Response::new(pb::ListWebhooksResponse {
            webhooks,
            next_page_token,
        }))
    }

    #[instrument(skip_all, fields(webhook_id))]
    async fn update_webhook(
        &self,
        request: Request<pb::UpdateWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        caller.require(Permission::Write)?;
        let req = request.into_inner();
        let id = parse_uuid(&req.id, "id")?;
        tracing::Span::current().record("webhook_id", tracing::field::display(id));
        if let Some(name) = &req.name {
            validate::name(name)?;
        }
        if let Some(d) = &req.description {
            validate::description(d)?;
        }
        let path = req
            .correlation_key_path
            .as_deref()
            .map(validate::correlation_path)
            .transpose()?;
        let mut conn = self.state.conn().await?;
        let row = conn
            .transaction(async move |conn| -> ApiResult<WebhookRow> {
                let current = store::load(conn, &caller, id, true).await?;
                if let Some(p) = req.provider {
                    if store::provider_from_proto(p) != Some(current.provider()?) {
                        return Err(ApiError::precondition(
                            "WEBHOOK_PROVIDER_IMMUTABLE",
                            "a webhook's provider cannot change; create a new webhook instead",
                        ));
                    }
                }
                if path == Some(None) {
                    let resume: i64 = trigger_bindings::table
                        .filter(trigger_bindings::webhook_id.eq(id))
                        .filter(trigger_bindings::trigger_type.eq("RESUME_PROCESS"))
                        .count()
                        .get_result(conn)
                        .await?;
                    if resume > 0 {
                        return Err(ApiError::precondition(
                            "WEBHOOK_CORRELATION_PATH_REQUIRED",
                            "the webhook has RESUME_PROCESS bindings, which need a correlation key path",
                        ));
                    }
                }
                let row: WebhookRow = diesel::update(webhooks::table.find(id))
                    .set((
                        webhooks::name.eq(req.name.clone().unwrap_or(current.name.clone())),
                        webhooks::description.eq(req.description.clone().unwrap_or(current.description.clone())),
                        webhooks::correlation_key_path.eq(path.clone().unwrap_or(current.correlation_key_path.clone())),
                        webhooks::include_raw_body.eq(req.include_raw_body.unwrap_or(current.include_raw_body)),
                        webhooks::updated_at.eq(diesel::dsl::now),
                    ))
                    .returning(WebhookRow::as_returning())
                    .get_result(conn)
                    .await
                    .map_err(|e| name_taken(e, req.name.as_deref().unwrap_or_default()))?;
                record_change(conn, &[id], ChangeKind::Updated).await?;
                Ok(row)
            })
            .await?;
        Ok(Response::new(store::to_proto(&mut conn, &row).await?))
    }

    #[instrument(skip_all, fields(webhook_id))]
    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        caller.require(Permission::Write)?;
        let id = parse_uuid(&request.get_ref().id, "id")?;
        tracing::Span::current().record("webhook_id", tracing::field::display(id));
        let mut conn = self.state.conn().await?;
        conn.transaction(async move |conn| -> ApiResult<()> {
            let row = store::load(conn, &caller, id, true).await?;
            if row.state()? == TriggerState::Active {
                return Err(ApiError::precondition(
                    "TRIGGER_ACTIVE",
                    "the webhook's trigger is ACTIVE: deactivate it first, and remove its URL from the systems that call it",
                ));
            }
            diesel::delete(webhooks::table.find(id)).execute(conn).await?;
            record_change(conn, &[id], ChangeKind::Deleted).await?;
            Ok(())
        })
        .await?;
        tracing::info!("webhook deleted");
        Ok(Response::new(pb::DeleteWebhookResponse {}))
    }

    #[instrument(skip_all, fields(webhook_id))]
    async fn set_provider_secret(
        &self,
        request: Request<pb::SetProviderSecretRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        caller.require(Permission::Write)?;
        let req = request.into_inner();
        let id = parse_uuid(&req.webhook_id, "webhook_id")?;
        tracing::Span::current().record("webhook_id", tracing::field::display(id));
        let grace = grace(
            req.previous_secret_grace_seconds,
            "previous_secret_grace_seconds",
        )?;
        let keyring = self.state.keyring.clone();
        let mut conn = self.state.conn().await?;
        let row = conn
            .transaction(async move |conn| -> ApiResult<WebhookRow> {
                let current = store::load(conn, &caller, id, true).await?;
                let provider = current.provider()?;
                let template = SecretValue::from_request(provider, &req)?;
                let sealed =
                    store::seal_secret(conn, &keyring, current.scope(), id, provider, &template)
                        .await?;
                // With a grace window the old resolved secret moves to `previous`, re-sealed for its column.
                let (previous, not_after) = match (grace, &current.secret_resolved_ciphertext) {
                    (Some(g), Some(old)) => {
                        let old = SecretValue::open(&keyring, old, id, columns::SECRET_RESOLVED)?;
                        (
                            Some(old.seal(&keyring, id, columns::PREVIOUS_SECRET)?),
                            Some(chrono::Utc::now() + g),
                        )
                    }
                    _ => (None, None),
                };
                let row: WebhookRow = diesel::update(webhooks::table.find(id))
                    .set((
                        webhooks::secret_template_ciphertext.eq(Some(sealed.template)),
                        webhooks::secret_resolved_ciphertext.eq(Some(sealed.resolved)),
                        webhooks::secret_param_refs.eq(sealed.refs),
                        webhooks::previous_secret_resolved_ciphertext.eq(previous),
                        webhooks::previous_secret_not_after.eq(not_after),
                        webhooks::updated_at.eq(diesel::dsl::now),
                    ))
                    .returning(WebhookRow::as_returning())
                    .get_result(conn)
                    .await?;
                record_change(conn, &[id], ChangeKind::SecretSet).await?;
                Ok(row)
            })
            .await?;
        tracing::info!("provider secret set");
        Ok(Response::new(store::to_proto(&mut conn, &row).await?))
    }

    #[instrument(skip_all, fields(webhook_id))]
    async fn reset_api_key(
        &self,
        request: Request<pb::ResetApiKeyRequest>,
    ) -> Result<Response<pb::GetWebhookUrlResponse>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        caller.require(Permission::Write)?;
        caller.require(Permission::RevealCredentials)?;
        let req = request.into_inner();
        let id = parse_uuid(&req.webhook_id, "webhook_id")?;
        tracing::Span::current().record("webhook_id", tracing::field::display(id));
        let grace = grace(req.grace_period_seconds, "grace_period_seconds")?;
        let key = store::generate_api_key();
        let (sealed, hash) = store::seal_api_key(&self.state.keyring, id, &key)?;
        let mut conn = self.state.conn().await?;
        let row = conn
            .transaction(async move |conn| -> ApiResult<WebhookRow> {
                let current = store::load(conn, &caller, id, true).await?;
                let (prev_hash, prev_not_after) = match grace {
                    Some(g) => (
                        Some(current.api_key_sha256.clone()),
                        Some(chrono::Utc::now() + g),
                    ),
                    None => (None, None),
                };
                let row: WebhookRow = diesel::update(webhooks::table.find(id))
                    .set((
                        webhooks::api_key_ciphertext.eq(sealed),
                        webhooks::api_key_sha256.eq(hash),
                        webhooks::previous_api_key_sha256.eq(prev_hash),
                        webhooks::previous_api_key_not_after.eq(prev_not_after),
                        webhooks::updated_at.eq(diesel::dsl::now),
                    ))
                    .returning(WebhookRow::as_returning())
                    .get_result(conn)
                    .await?;
                record_change(conn, &[id], ChangeKind::ApiKeyReset).await?;
                Ok(row)
            })
            .await?;
        tracing::info!(grace = grace.is_some(), "api key reset");
        Ok(Response::new(self.url_response(&row)?))
    }

    #[instrument(skip_all)]
    async fn get_webhook_url(
        &self,
        request: Request<pb::GetWebhookUrlRequest>,
    ) -> Result<Response<pb::GetWebhookUrlResponse>, Status> {
        let caller = self.state.auth.authenticate(&request).await?;
        caller.require(Permission::RevealCredentials)?;
        let id = parse_uuid(&request.get_ref().webhook_id, "webhook_id")?;
        let mut conn = self.state.conn().await?;
        let row = store::load(&mut conn, &caller, id, false).await?;
        Ok(Response::new(self.url_response(&row)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_format_per_provider() {
        let scope = AppScope::from_uuids(Uuid::nil(), Uuid::max(), Uuid::nil());
        let id = Uuid::nil();
        let generic = webhook_url(
            "https://hooks.example.com/",
            Provider::Generic,
            scope,
            id,
            "KEY",
        );
        assert_eq!(
            generic,
            format!(
                "https://hooks.example.com/webhooks/incoming/{}/{}/{}/{}?flowxApiKey=KEY",
                Uuid::nil(),
                Uuid::max(),
                Uuid::nil(),
                id
            )
        );
        let sw = webhook_url("https://h", Provider::StandardWebhooks, scope, id, "K");
        assert!(
            sw.starts_with("https://h/webhooks/incoming/standard-webhooks/"),
            "{sw}"
        );
    }

    #[test]
    fn api_keys_are_32_random_bytes_base64url() {
        use base64::Engine;
        let a = store::generate_api_key();
        let b = store::generate_api_key();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43);
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(a.expose())
            .expect("base64url");
        assert_eq!(raw.len(), 32);
    }
}
