//! `Debug` for the generated messages that carry secrets (provider secrets, API keys and the URL
//! that holds one, API tokens, JWTs, HMAC key values, SECRET config param values): the secret
//! fields print as `[redacted]` (or `""` when empty), every other field as usual, so a message can
//! be logged or shown in a test failure without leaking. `build.rs` skips the derived `Debug` of
//! exactly these messages.

use std::fmt;

use crate::v1 as pb;

/// A secret field's stand-in in `Debug` output.
struct Redacted(bool);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "[redacted]" } else { "\"\"" })
    }
}

/// What a secret field shows: whether it holds anything, never its text.
trait Secretish {
    fn redacted(&self) -> Redacted;
}

impl Secretish for String {
    fn redacted(&self) -> Redacted {
        Redacted(!self.is_empty())
    }
}

impl Secretish for Option<String> {
    fn redacted(&self) -> Redacted {
        Redacted(self.as_ref().is_some_and(|s| !s.is_empty()))
    }
}

/// `impl Debug for pb::$ty`, printing `$plain` fields as they are and `$secret` fields redacted.
macro_rules! redacted_debug {
    ($ty:ident { $($plain:ident),* $(,)? } secret { $($secret:ident),* $(,)? }) => {
        impl fmt::Debug for pb::$ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($plain), &self.$plain))*
                    $(.field(stringify!($secret), &self.$secret.redacted()))*
                    .finish()
            }
        }
    };
}

redacted_debug!(SetProviderSecretRequest { webhook_id, previous_secret_grace_seconds }
    secret { signing_secret, verify_token, app_secret });
redacted_debug!(GetWebhookUrlResponse { previous_key_not_after } secret { url, api_key });
redacted_debug!(ExchangeTokenRequest {} secret { api_token });
redacted_debug!(ExchangeTokenResponse { token_type, expires_in } secret { jwt_token });
redacted_debug!(CreateApiTokenResponse { token } secret { api_token });
redacted_debug!(CreateHmacKeyResponse { key } secret { value });
redacted_debug!(HmacKeyRoute { key_id, organization_id, workspace_id, app_id, created_at_unix_ms }
    secret { value });
redacted_debug!(SigningSecret { not_after_unix } secret { value });
redacted_debug!(WebhookRoute {
    webhook_id, organization_id, workspace_id, app_id, webhook_uuid, organization_uuid,
    workspace_uuid, app_uuid, provider, api_keys, signing_secrets, bindings, correlation_key_path,
    include_raw_body,
} secret { verify_token });

impl fmt::Debug for pb::SetConfigParamRequest {
    /// A VALUE param's value is readable by every VIEWER, so it is shown; any other kind's is not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SetConfigParamRequest");
        d.field("app", &self.app)
            .field("name", &self.name)
            .field("kind", &self.kind);
        if self.kind == pb::ConfigParamKind::Value as i32 {
            d.field("value", &self.value);
        } else {
            d.field("value", &self.value.redacted());
        }
        d.finish()
    }
}
