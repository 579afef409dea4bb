//! WebhookService: registrations ([`registrations`]), provider secrets, API keys and URLs
//! ([`credentials`]). The handlers only authenticate; validation is in [`validate`] and
//! [`secrets`], rows in [`store`], and param resolution in [`resolve`].

mod credentials;
pub(crate) mod rate_limit;
mod registrations;
pub(crate) mod resolve;
pub(crate) mod secrets;
pub(crate) mod store;
mod validate;

use tonic::{Request, Response, Status};
use tracing::instrument;

use gateway_proto::v1 as pb;
use gateway_proto::v1::webhook_service_server::WebhookService;

use crate::api::{serve, AppState};
use crate::error::{constraints, is_unique_violation, ApiError};

/// Implements WebhookService.
#[derive(Clone)]
pub(crate) struct Webhooks {
    state: AppState,
}

impl Webhooks {
    /// Over the shared state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A unique violation of the app's webhook names is ALREADY_EXISTS, reason WEBHOOK_NAME_TAKEN.
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
        serve(&self.state.auth, request, |c, r| self.create(c, r)).await
    }

    #[instrument(skip_all)]
    async fn get_webhook(
        &self,
        request: Request<pb::GetWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        serve(&self.state.auth, request, |c, r| self.get(c, r)).await
    }

    #[instrument(skip_all)]
    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.list(c, r)).await
    }

    #[instrument(skip_all, fields(webhook_id))]
    async fn update_webhook(
        &self,
        request: Request<pb::UpdateWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        serve(&self.state.auth, request, |c, r| self.update(c, r)).await
    }

    #[instrument(skip_all, fields(webhook_id))]
    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.delete(c, r)).await
    }

    #[instrument(skip_all, fields(webhook_id))]
    async fn set_provider_secret(
        &self,
        request: Request<pb::SetProviderSecretRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        serve(&self.state.auth, request, |c, r| self.set_secret(c, r)).await
    }

    #[instrument(skip_all, fields(webhook_id))]
    async fn reset_api_key(
        &self,
        request: Request<pb::ResetApiKeyRequest>,
    ) -> Result<Response<pb::GetWebhookUrlResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.reset_key(c, r)).await
    }

    #[instrument(skip_all)]
    async fn get_webhook_url(
        &self,
        request: Request<pb::GetWebhookUrlRequest>,
    ) -> Result<Response<pb::GetWebhookUrlResponse>, Status> {
        serve(&self.state.auth, request, |c, r| self.url(c, r)).await
    }
}
