//! Credentials: SetProviderSecret, ResetApiKey and GetWebhookUrl, with their grace windows
//! (docs/control-plane.md, "Security model").

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use gateway_proto::v1 as pb;
use gateway_shared::Provider;

use super::secrets::{columns, SecretValue};
use super::store::{self, WebhookRow};
use super::{resolve, Webhooks};
use crate::api::{grace, timestamp};
use crate::auth::{Caller, Permission};
use crate::error::ApiResult;
use crate::revision::{record_change, ChangeKind};
use crate::schema::webhooks;
use crate::scope::{parse_uuid, AppScope};

impl Webhooks {
    pub(super) async fn set_secret(
        &self,
        caller: Caller,
        req: pb::SetProviderSecretRequest,
    ) -> ApiResult<pb::Webhook> {
        caller.require(Permission::Write)?;
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
                    resolve::seal_secret(conn, &keyring, current.scope(), id, provider, &template)
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
        store::to_proto(&mut conn, &row).await
    }

    pub(super) async fn reset_key(
        &self,
        caller: Caller,
        req: pb::ResetApiKeyRequest,
    ) -> ApiResult<pb::GetWebhookUrlResponse> {
        caller.require(Permission::Write)?;
        caller.require(Permission::RevealCredentials)?;
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
        self.url_response(&row)
    }

    pub(super) async fn url(
        &self,
        caller: Caller,
        req: pb::GetWebhookUrlRequest,
    ) -> ApiResult<pb::GetWebhookUrlResponse> {
        caller.require(Permission::RevealCredentials)?;
        let id = parse_uuid(&req.webhook_id, "webhook_id")?;
        let mut conn = self.state.conn().await?;
        let row = store::load(&mut conn, &caller, id, false).await?;
        self.url_response(&row)
    }

    pub(super) fn url_response(&self, row: &WebhookRow) -> ApiResult<pb::GetWebhookUrlResponse> {
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
pub(crate) fn webhook_url(
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
