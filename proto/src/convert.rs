//! The one home of conversions between wire enums and messages and the shared model: provider,
//! trigger type and trigger state enums for every service, and the config-stream messages. The
//! control plane turns `WebhookConfig`s into `WebhookRoute`s; the data plane turns them back and
//! rejects (NACKs) anything malformed instead of serving it.

use gateway_shared::snapshot::{
    ApiKeyHash, ProviderSecrets, RateLimit, SigningSecret, TriggerBinding, WebhookConfig,
    WebhookOptions,
};
use gateway_shared::{Provider, Secret, TriggerState, TriggerType};

use crate::v1;

/// Why a `WebhookRoute` from the stream cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// An id is not a UUID.
    #[error("webhook route has an invalid {field}")]
    BadId {
        /// Which id.
        field: &'static str,
    },
    /// The provider is unknown to this data plane (fail closed).
    #[error("webhook {webhook_id} names provider {value}, which this data plane does not know")]
    UnknownProvider {
        /// The webhook.
        webhook_id: String,
        /// The raw enum value.
        value: i32,
    },
    /// A binding's trigger type is unknown.
    #[error("webhook {webhook_id} has a binding with unknown trigger type {value}")]
    UnknownTriggerType {
        /// The webhook.
        webhook_id: String,
        /// The raw enum value.
        value: i32,
    },
    /// A rate limit that is not a positive, finite number of requests per second.
    #[error("webhook {webhook_id}: {reason}")]
    BadRateLimit {
        /// The webhook.
        webhook_id: String,
        /// What is wrong.
        reason: String,
    },
    /// An API key hash is not 32 bytes.
    #[error("webhook {webhook_id} has an API key hash of {len} bytes, not 32")]
    BadKeyHash {
        /// The webhook.
        webhook_id: String,
        /// Its length.
        len: usize,
    },
}

/// The wire enum of a provider.
pub fn provider_to_proto(p: Provider) -> v1::Provider {
    match p {
        Provider::Generic => v1::Provider::Generic,
        Provider::Slack => v1::Provider::Slack,
        Provider::Meta => v1::Provider::Meta,
        Provider::Github => v1::Provider::Github,
        Provider::Stripe => v1::Provider::Stripe,
        Provider::StandardWebhooks => v1::Provider::StandardWebhooks,
        Provider::Shopify => v1::Provider::Shopify,
    }
}

/// The provider of a wire enum value; `None` for UNSPECIFIED and values this build does not know.
pub fn provider_from_proto(value: i32) -> Option<Provider> {
    match v1::Provider::try_from(value).ok()? {
        v1::Provider::Unspecified => None,
        v1::Provider::Generic => Some(Provider::Generic),
        v1::Provider::Slack => Some(Provider::Slack),
        v1::Provider::Meta => Some(Provider::Meta),
        v1::Provider::Github => Some(Provider::Github),
        v1::Provider::Stripe => Some(Provider::Stripe),
        v1::Provider::StandardWebhooks => Some(Provider::StandardWebhooks),
        v1::Provider::Shopify => Some(Provider::Shopify),
    }
}

/// The wire enum of a trigger type.
pub fn trigger_type_to_proto(t: TriggerType) -> v1::TriggerType {
    match t {
        TriggerType::StartProcess => v1::TriggerType::StartProcess,
        TriggerType::ResumeProcess => v1::TriggerType::ResumeProcess,
    }
}

/// The trigger type of a wire enum value.
pub fn trigger_type_from_proto(value: i32) -> Option<TriggerType> {
    match v1::TriggerType::try_from(value).ok()? {
        v1::TriggerType::Unspecified => None,
        v1::TriggerType::StartProcess => Some(TriggerType::StartProcess),
        v1::TriggerType::ResumeProcess => Some(TriggerType::ResumeProcess),
    }
}

/// The wire enum of a trigger state.
pub fn trigger_state_to_proto(s: TriggerState) -> v1::TriggerState {
    match s {
        TriggerState::Active => v1::TriggerState::Active,
        TriggerState::Deactivated => v1::TriggerState::Deactivated,
    }
}

impl From<&WebhookConfig> for v1::WebhookRoute {
    fn from(w: &WebhookConfig) -> Self {
        v1::WebhookRoute {
            webhook_id: w.webhook_id.to_string(),
            organization_id: w.organization_id.to_string(),
            workspace_id: w.workspace_id.to_string(),
            app_id: w.app_id.to_string(),
            ..route_without_ids(w)
        }
    }
}

/// The route of `w` with its ids as 16-byte UUIDs instead of text, for a data plane whose Hello
/// set `binary_ids`.
pub fn binary_id_route(w: &WebhookConfig) -> v1::WebhookRoute {
    v1::WebhookRoute {
        webhook_uuid: w.webhook_id.0.as_bytes().to_vec(),
        organization_uuid: w.organization_id.0.as_bytes().to_vec(),
        workspace_uuid: w.workspace_id.0.as_bytes().to_vec(),
        app_uuid: w.app_id.0.as_bytes().to_vec(),
        ..route_without_ids(w)
    }
}

/// An id from its 16-byte form when the route carries one, else from its text.
fn route_id<T: From<uuid::Uuid>>(
    text: &str,
    binary: &[u8],
    field: &'static str,
) -> Result<T, RouteError> {
    let id = if binary.is_empty() {
        uuid::Uuid::parse_str(text)
    } else {
        uuid::Uuid::from_slice(binary)
    };
    id.map(T::from).map_err(|_| RouteError::BadId { field })
}

fn route_without_ids(w: &WebhookConfig) -> v1::WebhookRoute {
    v1::WebhookRoute {
        provider: provider_to_proto(w.provider) as i32,
        api_keys: w
            .api_keys
            .iter()
            .map(|k| v1::ApiKeyHash {
                sha256: k.sha256.to_vec(),
                not_after_unix: k.not_after,
            })
            .collect(),
        signing_secrets: w
            .secrets
            .signing
            .iter()
            .map(|s| v1::SigningSecret {
                value: s.value.expose().clone(),
                not_after_unix: s.not_after,
            })
            .collect(),
        verify_token: w.secrets.verify_token.as_ref().map(|t| t.expose().clone()),
        bindings: w
            .bindings
            .iter()
            .map(|b| v1::Binding {
                trigger_type: trigger_type_to_proto(b.trigger_type) as i32,
                process_definition_id: b.process_definition_id.clone(),
                node_id: b.node_id.clone(),
                process_correlation_key: b.process_correlation_key.clone(),
                process_key: b.process_key.clone(),
            })
            .collect(),
        correlation_key_path: w.correlation_key_path.clone(),
        include_raw_body: w.options.include_raw_body,
        replay_window_seconds: w.options.replay_window_seconds,
        rate_limit_per_second: w.options.rate_limit.map_or(0.0, |l| l.per_second),
        rate_limit_burst: w.options.rate_limit.map_or(0, |l| l.burst),
        ..Default::default()
    }
}

impl TryFrom<v1::WebhookRoute> for WebhookConfig {
    type Error = RouteError;

    fn try_from(r: v1::WebhookRoute) -> Result<Self, Self::Error> {
        // For error messages: the text id, or the 16-byte one printed (binary-id streams).
        let shown_id = || match uuid::Uuid::from_slice(&r.webhook_uuid) {
            Ok(id) if r.webhook_id.is_empty() => id.to_string(),
            _ => r.webhook_id.clone(),
        };
        let provider =
            provider_from_proto(r.provider).ok_or_else(|| RouteError::UnknownProvider {
                webhook_id: shown_id(),
                value: r.provider,
            })?;
        let mut api_keys = Vec::with_capacity(r.api_keys.len());
        for k in r.api_keys {
            let sha256: [u8; 32] =
                k.sha256
                    .as_slice()
                    .try_into()
                    .map_err(|_| RouteError::BadKeyHash {
                        webhook_id: shown_id(),
                        len: k.sha256.len(),
                    })?;
            api_keys.push(ApiKeyHash {
                sha256,
                not_after: k.not_after_unix,
            });
        }
        let rate_limit = RateLimit::from_parts(r.rate_limit_per_second, r.rate_limit_burst)
            .map_err(|reason| RouteError::BadRateLimit {
                webhook_id: shown_id(),
                reason,
            })?;
        let mut bindings = Vec::with_capacity(r.bindings.len());
        for b in r.bindings {
            let trigger_type = trigger_type_from_proto(b.trigger_type).ok_or_else(|| {
                RouteError::UnknownTriggerType {
                    webhook_id: shown_id(),
                    value: b.trigger_type,
                }
            })?;
            bindings.push(TriggerBinding {
                trigger_type,
                process_definition_id: b.process_definition_id,
                node_id: b.node_id,
                process_correlation_key: b.process_correlation_key,
                process_key: b.process_key,
            });
        }
        Ok(WebhookConfig {
            webhook_id: route_id(&r.webhook_id, &r.webhook_uuid, "webhook_id")?,
            organization_id: route_id(&r.organization_id, &r.organization_uuid, "organization_id")?,
            workspace_id: route_id(&r.workspace_id, &r.workspace_uuid, "workspace_id")?,
            app_id: route_id(&r.app_id, &r.app_uuid, "app_id")?,
            provider,
            api_keys,
            secrets: ProviderSecrets {
                signing: r
                    .signing_secrets
                    .into_iter()
                    .map(|s| SigningSecret {
                        value: Secret::new(s.value),
                        not_after: s.not_after_unix,
                    })
                    .collect(),
                verify_token: r.verify_token.map(Secret::new),
            },
            bindings,
            correlation_key_path: r.correlation_key_path,
            options: WebhookOptions {
                include_raw_body: r.include_raw_body,
                replay_window_seconds: r.replay_window_seconds,
                rate_limit,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use gateway_shared::{AppId, OrganizationId, WebhookId, WorkspaceId};

    use super::*;

    fn sample() -> WebhookConfig {
        WebhookConfig {
            webhook_id: WebhookId::new_random(),
            organization_id: OrganizationId::new_random(),
            workspace_id: WorkspaceId::new_random(),
            app_id: AppId::new_random(),
            provider: Provider::Meta,
            api_keys: vec![
                ApiKeyHash::of("k"),
                ApiKeyHash {
                    sha256: [7; 32],
                    not_after: Some(99),
                },
            ],
            secrets: ProviderSecrets {
                signing: vec![SigningSecret {
                    value: Secret::new("app-secret".into()),
                    not_after: None,
                }],
                verify_token: Some(Secret::new("vt".into())),
            },
            bindings: vec![TriggerBinding {
                trigger_type: TriggerType::ResumeProcess,
                process_definition_id: "p".into(),
                node_id: "n".into(),
                process_correlation_key: Some("applicationId".into()),
                process_key: Some("scan".into()),
            }],
            correlation_key_path: Some("entry[0].id".into()),
            options: WebhookOptions {
                include_raw_body: true,
                replay_window_seconds: 300,
                rate_limit: Some(RateLimit {
                    per_second: 2.5,
                    burst: 7,
                }),
            },
        }
    }

    #[test]
    fn route_round_trips() {
        let w = sample();
        let back = WebhookConfig::try_from(v1::WebhookRoute::from(&w)).expect("valid route");
        assert_eq!(back.webhook_id, w.webhook_id);
        assert_eq!(back.provider, Provider::Meta);
        assert_eq!(back.api_keys, w.api_keys);
        assert_eq!(back.secrets.signing[0].value.expose(), "app-secret");
        assert_eq!(
            back.secrets
                .verify_token
                .as_ref()
                .map(|t| t.expose().as_str()),
            Some("vt")
        );
        assert_eq!(back.bindings, w.bindings);
        assert_eq!(back.correlation_key_path, w.correlation_key_path);
        assert!(back.options.include_raw_body);
        assert_eq!(back.options.replay_window_seconds, 300);
        assert_eq!(back.options, w.options);
    }

    #[test]
    fn binary_ids_round_trip_and_bad_ones_are_refused() {
        let w = sample();
        let r = binary_id_route(&w);
        assert!(
            r.webhook_id.is_empty() && r.app_id.is_empty(),
            "no text ids"
        );
        assert_eq!(r.webhook_uuid.len(), 16);
        let back = WebhookConfig::try_from(r.clone()).expect("valid route");
        assert_eq!(
            (
                back.webhook_id,
                back.organization_id,
                back.workspace_id,
                back.app_id
            ),
            (w.webhook_id, w.organization_id, w.workspace_id, w.app_id)
        );
        assert_eq!(back.api_keys, w.api_keys);
        assert_eq!(back.bindings, w.bindings);
        // A refusal names the webhook by its 16-byte id, printed.
        let mut bad_key = r.clone();
        bad_key.api_keys[0].sha256.pop();
        let e = WebhookConfig::try_from(bad_key).expect_err("31-byte hash");
        assert!(e.to_string().contains(&w.webhook_id.to_string()), "{e}");
        let mut short = r;
        short.workspace_uuid.pop();
        assert!(matches!(
            WebhookConfig::try_from(short),
            Err(RouteError::BadId {
                field: "workspace_id"
            })
        ));
    }

    #[test]
    fn rate_limits_cross_the_wire_and_bad_ones_are_refused() {
        let mut r = v1::WebhookRoute::from(&sample());
        assert_eq!((r.rate_limit_per_second, r.rate_limit_burst), (2.5, 7));
        r.rate_limit_per_second = 0.0;
        let none = WebhookConfig::try_from(r.clone()).expect("no limit");
        assert_eq!(none.options.rate_limit, None);
        r.rate_limit_per_second = 2.5;
        r.rate_limit_burst = 0;
        let defaulted = WebhookConfig::try_from(r.clone()).expect("default burst");
        assert_eq!(defaulted.options.rate_limit.map(|l| l.burst), Some(3));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 2e6] {
            r.rate_limit_per_second = bad;
            assert!(
                matches!(
                    WebhookConfig::try_from(r.clone()),
                    Err(RouteError::BadRateLimit { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_provider_and_bad_hash_are_rejected() {
        let mut r = v1::WebhookRoute::from(&sample());
        r.provider = 99;
        assert!(matches!(
            WebhookConfig::try_from(r),
            Err(RouteError::UnknownProvider { value: 99, .. })
        ));
        let mut r = v1::WebhookRoute::from(&sample());
        r.provider = 0;
        assert!(matches!(
            WebhookConfig::try_from(r),
            Err(RouteError::UnknownProvider { .. })
        ));
        let mut r = v1::WebhookRoute::from(&sample());
        r.api_keys[0].sha256.pop();
        assert!(matches!(
            WebhookConfig::try_from(r),
            Err(RouteError::BadKeyHash { len: 31, .. })
        ));
        let mut r = v1::WebhookRoute::from(&sample());
        r.app_id = "nope".into();
        assert!(matches!(
            WebhookConfig::try_from(r),
            Err(RouteError::BadId { field: "app_id" })
        ));
    }
}
