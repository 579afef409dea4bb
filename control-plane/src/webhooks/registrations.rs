//! Registrations: CreateWebhook, GetWebhook, ListWebhooks, UpdateWebhook and DeleteWebhook.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use gateway_proto::convert::provider_from_proto;
use gateway_proto::v1 as pb;
use gateway_shared::{TriggerState, TriggerType};

use super::secrets::SecretValue;
use super::store::{self, WebhookRow};
use super::{name_taken, rate_limit, resolve, validate, Webhooks};
use crate::api::Page;
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::reasons;
use crate::revision::{record_change, ChangeKind};
use crate::schema::{trigger_bindings, webhooks};
use crate::scope::{in_app, parse_uuid};

impl Webhooks {
    pub(super) async fn create(
        &self,
        caller: Caller,
        req: pb::CreateWebhookRequest,
    ) -> ApiResult<pb::Webhook> {
        let scope = caller.require_app(Permission::Write, req.app.as_ref())?;
        validate::name(&req.name)?;
        validate::description(&req.description)?;
        let provider = provider_from_proto(req.provider).ok_or_else(|| {
            ApiError::invalid(
                reasons::PROVIDER_REQUIRED,
                "provider",
                "provider is required",
            )
        })?;
        let path = validate::correlation_path(&req.correlation_key_path)?;
        let replay_window = validate::replay_window(req.replay_window_seconds)?;
        let limit = rate_limit::on_create(req.rate_limit_per_second, req.rate_limit_burst)?;
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
                        Some(resolve::seal_secret(conn, &keyring, scope, id, provider, t).await?)
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
                        webhooks::replay_window_seconds.eq(replay_window),
                        webhooks::api_key_ciphertext.eq(&key_sealed),
                        webhooks::api_key_sha256.eq(&key_hash),
                        webhooks::secret_template_ciphertext
                            .eq(sealed.as_ref().map(|s| &s.template)),
                        webhooks::secret_resolved_ciphertext
                            .eq(sealed.as_ref().map(|s| &s.resolved)),
                        webhooks::secret_param_refs
                            .eq(sealed.as_ref().map(|s| s.refs.clone()).unwrap_or_default()),
                        webhooks::rate_limit_per_second.eq(limit.per_second),
                        webhooks::rate_limit_burst.eq(limit.burst),
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
        row.to_proto(0)
    }

    pub(super) async fn get(
        &self,
        caller: Caller,
        req: pb::GetWebhookRequest,
    ) -> ApiResult<pb::Webhook> {
        caller.require(Permission::Read)?;
        let id = parse_uuid(&req.id, "id")?;
        let mut conn = self.state.conn().await?;
        let row = store::load(&mut conn, &caller, id, false).await?;
        store::to_proto(&mut conn, &row).await
    }

    pub(super) async fn list(
        &self,
        caller: Caller,
        req: pb::ListWebhooksRequest,
    ) -> ApiResult<pb::ListWebhooksResponse> {
        let scope = caller.require_app(Permission::Read, req.app.as_ref())?;
        let page = Page::parse(req.page_size, &req.page_token)?;
        let mut query = webhooks::table
            .filter(in_app!(webhooks, scope))
            .select(WebhookRow::as_select())
            .order(webhooks::name)
            .limit(page.fetch())
            .into_boxed();
        if let Some(after) = &page.after {
            query = query.filter(webhooks::name.gt(after.clone()));
        }
        let mut conn = self.state.conn().await?;
        let mut rows: Vec<WebhookRow> = query.load(&mut conn).await?;
        let next_page_token = page.finish(&mut rows, |r| r.name.clone());
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let counts = store::binding_counts(&mut conn, &ids).await?;
        let webhooks = rows
            .iter()
            .map(|r| r.to_proto(counts.get(&r.id).copied().unwrap_or(0)))
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(pb::ListWebhooksResponse {
            webhooks,
            next_page_token,
        })
    }

    pub(super) async fn update(
        &self,
        caller: Caller,
        req: pb::UpdateWebhookRequest,
    ) -> ApiResult<pb::Webhook> {
        caller.require(Permission::Write)?;
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
        let replay_window = req
            .replay_window_seconds
            .map(validate::replay_window)
            .transpose()?;
        let mut conn = self.state.conn().await?;
        let row = conn
            .transaction(async move |conn| -> ApiResult<WebhookRow> {
                let current = store::load(conn, &caller, id, true).await?;
                if let Some(p) = req.provider {
                    if provider_from_proto(p) != Some(current.provider()?) {
                        return Err(ApiError::precondition(
                            reasons::WEBHOOK_PROVIDER_IMMUTABLE,
                            "a webhook's provider cannot change; create a new webhook instead",
                        ));
                    }
                }
                if path == Some(None) {
                    let resume: i64 = trigger_bindings::table
                        .filter(trigger_bindings::webhook_id.eq(id))
                        .filter(trigger_bindings::trigger_type.eq(TriggerType::ResumeProcess.as_str()))
                        .count()
                        .get_result(conn)
                        .await?;
                    if resume > 0 {
                        return Err(ApiError::precondition(
                            reasons::WEBHOOK_CORRELATION_PATH_REQUIRED,
                            "the webhook has RESUME_PROCESS bindings, which need a correlation key path",
                        ));
                    }
                }
                let limit = rate_limit::on_update(
                    current.rate_limit(),
                    req.rate_limit_per_second,
                    req.rate_limit_burst,
                )?;
                let row: WebhookRow = diesel::update(webhooks::table.find(id))
                    .set((
                        webhooks::rate_limit_per_second.eq(limit.per_second),
                        webhooks::rate_limit_burst.eq(limit.burst),
                        webhooks::name.eq(req.name.clone().unwrap_or(current.name.clone())),
                        webhooks::description.eq(req.description.clone().unwrap_or(current.description.clone())),
                        webhooks::correlation_key_path.eq(path.clone().unwrap_or(current.correlation_key_path.clone())),
                        webhooks::include_raw_body.eq(req.include_raw_body.unwrap_or(current.include_raw_body)),
                        webhooks::replay_window_seconds.eq(replay_window.unwrap_or(current.replay_window_seconds)),
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
        store::to_proto(&mut conn, &row).await
    }

    pub(super) async fn delete(
        &self,
        caller: Caller,
        req: pb::DeleteWebhookRequest,
    ) -> ApiResult<pb::DeleteWebhookResponse> {
        caller.require(Permission::Write)?;
        let id = parse_uuid(&req.id, "id")?;
        tracing::Span::current().record("webhook_id", tracing::field::display(id));
        let mut conn = self.state.conn().await?;
        conn.transaction(async move |conn| -> ApiResult<()> {
            let row = store::load(conn, &caller, id, true).await?;
            if row.state()? == TriggerState::Active {
                return Err(ApiError::precondition(
                    reasons::TRIGGER_ACTIVE,
                    "the webhook's trigger is ACTIVE: deactivate it first, and remove its URL from the systems that call it",
                ));
            }
            diesel::delete(webhooks::table.find(id)).execute(conn).await?;
            record_change(conn, &[id], ChangeKind::Deleted).await?;
            Ok(())
        })
        .await?;
        tracing::info!("webhook deleted");
        Ok(pb::DeleteWebhookResponse {})
    }
}
