//! Provider secrets: which fields each provider needs, `${configParam.NAME}` placeholders, and the
//! sealed JSON stored in `webhooks.secret_*_ciphertext`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use gateway_proto::v1 as pb;
use gateway_shared::crypto::{Aad, Keyring};
use gateway_shared::{Provider, Secret};

use crate::error::{ApiError, ApiResult};
use crate::reasons;

/// Longest accepted secret field.
const MAX_SECRET_LEN: usize = 4096;

/// A provider secret as stored (sealed as JSON): the signing secret (META: the app secret) and
/// META's verify token. Either may hold placeholders in the template form.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, Zeroize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretValue {
    /// Signing secret (Slack, GitHub, Stripe, Standard Webhooks, Shopify) or Meta app secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    /// Meta verify token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_token: Option<String>,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

/// Associated data of a webhook's sealed column.
pub(crate) fn webhook_aad(webhook_id: uuid::Uuid, column: &str) -> Aad {
    Aad::new("webhooks", &webhook_id.to_string(), column)
}

/// Column names of the sealed values of `webhooks` (also their AAD column part).
pub(crate) mod columns {
    /// The API key.
    pub const API_KEY: &str = "api_key_ciphertext";
    /// The provider secret as entered.
    pub const SECRET_TEMPLATE: &str = "secret_template_ciphertext";
    /// The provider secret resolved.
    pub const SECRET_RESOLVED: &str = "secret_resolved_ciphertext";
    /// The previous resolved secret in a rotation window.
    pub const PREVIOUS_SECRET: &str = "previous_secret_resolved_ciphertext";
}

/// A signing secret sealed as the `secret_resolved_ciphertext` of webhook `id`, exactly as the
/// control plane stores it (for tools that fill the table with SQL, such as the benchmark).
pub fn seal_resolved_signing_secret(
    keyring: &Keyring,
    id: uuid::Uuid,
    signing_secret: &str,
) -> Result<Vec<u8>, ApiError> {
    SecretValue {
        signing_secret: Some(signing_secret.to_owned()),
        verify_token: None,
    }
    .seal(keyring, id, columns::SECRET_RESOLVED)
}

impl SecretValue {
    /// Seals this value for `column` of webhook `id`.
    pub fn seal(&self, keyring: &Keyring, id: uuid::Uuid, column: &str) -> ApiResult<Vec<u8>> {
        let json = Secret::new(
            serde_json::to_string(self).map_err(|e| ApiError::internal("encoding secret", e))?,
        );
        Ok(keyring.seal_str(json.expose(), &webhook_aad(id, column))?)
    }

    /// Opens a value sealed by [`SecretValue::seal`].
    pub fn open(keyring: &Keyring, sealed: &[u8], id: uuid::Uuid, column: &str) -> ApiResult<Self> {
        let json = keyring.open_str(sealed, &webhook_aad(id, column))?;
        serde_json::from_str(json.expose())
            .map_err(|_| ApiError::internal("decoding secret", "stored secret is not valid JSON"))
    }

    /// Validates a request against the provider's needs and returns the template to store.
    pub fn from_request(provider: Provider, req: &pb::SetProviderSecretRequest) -> ApiResult<Self> {
        for (field, value) in [
            ("signing_secret", &req.signing_secret),
            ("verify_token", &req.verify_token),
            ("app_secret", &req.app_secret),
        ] {
            if value.len() > MAX_SECRET_LEN {
                return Err(ApiError::invalid(
                    reasons::WEBHOOK_SECRET_INVALID,
                    "provider_secret",
                    format!("`{field}` must be at most {MAX_SECRET_LEN} bytes"),
                ));
            }
        }
        let signing = req.signing_secret.trim();
        let verify = req.verify_token.trim();
        let app = req.app_secret.trim();
        match provider {
            Provider::Generic => Err(ApiError::invalid(
                reasons::WEBHOOK_PROVIDER_HAS_NO_SECRET,
                "provider_secret",
                "GENERIC webhooks have no provider secret; the API key authenticates them",
            )),
            Provider::Meta => {
                if !signing.is_empty() {
                    return Err(ApiError::invalid(
                        reasons::WEBHOOK_SECRET_INVALID,
                        "signing_secret",
                        "META uses `verify_token` and `app_secret`, not `signing_secret`",
                    ));
                }
                if verify.is_empty() || app.is_empty() {
                    return Err(ApiError::invalid(
                        reasons::WEBHOOK_META_SECRETS_REQUIRED,
                        "provider_secret",
                        "META needs both `verify_token` and `app_secret`",
                    ));
                }
                Ok(Self {
                    signing_secret: Some(app.to_owned()),
                    verify_token: Some(verify.to_owned()),
                })
            }
            Provider::Slack
            | Provider::Github
            | Provider::Stripe
            | Provider::StandardWebhooks
            | Provider::Shopify => {
                if !verify.is_empty() || !app.is_empty() {
                    return Err(ApiError::invalid(
                        reasons::WEBHOOK_SECRET_INVALID,
                        "provider_secret",
                        format!("{provider} uses `signing_secret` only"),
                    ));
                }
                if signing.is_empty() {
                    return Err(ApiError::invalid(
                        reasons::WEBHOOK_SECRET_REQUIRED,
                        "signing_secret",
                        format!("{provider} needs `signing_secret`"),
                    ));
                }
                Ok(Self {
                    signing_secret: Some(signing.to_owned()),
                    verify_token: None,
                })
            }
        }
    }

    /// Names of the config params the placeholders reference.
    pub fn param_refs(&self) -> ApiResult<BTreeSet<String>> {
        let mut refs = BTreeSet::new();
        for text in [&self.signing_secret, &self.verify_token]
            .into_iter()
            .flatten()
        {
            for part in parse_template(text)? {
                if let Part::Param(name) = part {
                    refs.insert(name.to_owned());
                }
            }
        }
        Ok(refs)
    }

    /// Substitutes every placeholder from `params`; an unknown name is FAILED_PRECONDITION
    /// CONFIG_PARAM_NOT_FOUND naming it. Checks provider-specific formats on the result.
    pub fn resolve(
        &self,
        provider: Provider,
        params: &BTreeMap<String, Secret<String>>,
    ) -> ApiResult<Self> {
        let resolve_one = |text: &Option<String>| -> ApiResult<Option<String>> {
            let Some(text) = text else { return Ok(None) };
            let mut out = String::with_capacity(text.len());
            for part in parse_template(text)? {
                match part {
                    Part::Text(t) => out.push_str(t),
                    Part::Param(name) => match params.get(name) {
                        Some(v) => out.push_str(v.expose()),
                        None => {
                            out.zeroize();
                            return Err(ApiError::Precondition {
                                reason: reasons::CONFIG_PARAM_NOT_FOUND,
                                message: format!("config param `{name}` referenced by the provider secret does not exist in this app"),
                                metadata: vec![("param", name.to_owned())],
                            });
                        }
                    },
                }
            }
            Ok(Some(out))
        };
        let resolved = Self {
            signing_secret: resolve_one(&self.signing_secret)?,
            verify_token: resolve_one(&self.verify_token)?,
        };
        for v in [&resolved.signing_secret, &resolved.verify_token]
            .into_iter()
            .flatten()
        {
            if v.trim().is_empty() {
                return Err(ApiError::precondition(
                    reasons::WEBHOOK_SECRET_INVALID,
                    "the provider secret resolves to an empty value",
                ));
            }
        }
        if provider == Provider::StandardWebhooks
            && !resolved
                .signing_secret
                .as_deref()
                .is_some_and(|s| s.starts_with("whsec_") && s.len() > 6)
        {
            return Err(ApiError::invalid(
                reasons::WEBHOOK_SECRET_INVALID,
                "signing_secret",
                "STANDARD_WEBHOOKS secrets start with `whsec_`",
            ));
        }
        Ok(resolved)
    }
}

/// A piece of a secret template.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Part<'a> {
    /// Literal text.
    Text(&'a str),
    /// `${configParam.NAME}`.
    Param(&'a str),
}

const OPEN: &str = "${configParam.";

/// Splits `text` into literal text and `${configParam.NAME}` placeholders. An opened placeholder
/// without `}` or with an invalid name is INVALID_ARGUMENT PLACEHOLDER_INVALID.
pub(crate) fn parse_template(text: &str) -> ApiResult<Vec<Part<'_>>> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        if start > 0 {
            parts.push(Part::Text(&rest[..start]));
        }
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find('}') else {
            return Err(ApiError::invalid(
                reasons::PLACEHOLDER_INVALID,
                "provider_secret",
                "a `${configParam.` placeholder is not closed with `}`",
            ));
        };
        let name = &after[..end];
        if !crate::config_params::store::valid_param_name(name) {
            return Err(ApiError::invalid(
                reasons::PLACEHOLDER_INVALID,
                "provider_secret",
                "a placeholder names an invalid config param (letters, digits, `_`, `-`, `.`; 1-100)",
            ));
        }
        parts.push(Part::Param(name));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, Secret<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Secret::new((*v).to_owned())))
            .collect()
    }

    #[test]
    fn placeholders_parse_and_resolve() {
        let t = SecretValue {
            signing_secret: Some("pre-${configParam.slack_secret}-${configParam.x.y}".into()),
            verify_token: None,
        };
        assert_eq!(
            t.param_refs()
                .expect("valid")
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["slack_secret", "x.y"]
        );
        let r = t
            .resolve(
                Provider::Slack,
                &params(&[("slack_secret", "S"), ("x.y", "Y")]),
            )
            .expect("resolves");
        assert_eq!(r.signing_secret.as_deref(), Some("pre-S-Y"));
        let plain = SecretValue {
            signing_secret: Some("literal $ {} text".into()),
            verify_token: None,
        };
        assert!(plain.param_refs().expect("valid").is_empty());
        assert_eq!(
            plain.resolve(Provider::Slack, &params(&[])).expect("ok"),
            plain
        );
    }

    #[test]
    fn unknown_param_names_it_and_malformed_placeholders_are_invalid() {
        let t = SecretValue {
            signing_secret: Some("${configParam.missing}".into()),
            verify_token: None,
        };
        let err = t
            .resolve(Provider::Slack, &params(&[("other", "v")]))
            .expect_err("unknown");
        assert_eq!(
            err.code_and_reason(),
            (tonic::Code::FailedPrecondition, "CONFIG_PARAM_NOT_FOUND")
        );
        assert!(err.to_string().contains("`missing`"));
        for bad in [
            "${configParam.open",
            "${configParam.}",
            "${configParam.sp ace}",
        ] {
            let err = parse_template(bad).expect_err(bad);
            assert_eq!(err.code_and_reason().1, "PLACEHOLDER_INVALID", "{bad}");
        }
    }

    #[test]
    fn provider_rules() {
        let req = |s: &str, v: &str, a: &str| pb::SetProviderSecretRequest {
            signing_secret: s.into(),
            verify_token: v.into(),
            app_secret: a.into(),
            ..Default::default()
        };
        let reason = |p, r: &pb::SetProviderSecretRequest| {
            SecretValue::from_request(p, r)
                .expect_err("invalid")
                .code_and_reason()
                .1
        };
        assert_eq!(
            reason(Provider::Meta, &req("", "v", "")),
            "WEBHOOK_META_SECRETS_REQUIRED"
        );
        assert_eq!(
            reason(Provider::Meta, &req("", "", "a")),
            "WEBHOOK_META_SECRETS_REQUIRED"
        );
        assert_eq!(
            reason(Provider::Generic, &req("x", "", "")),
            "WEBHOOK_PROVIDER_HAS_NO_SECRET"
        );
        assert_eq!(
            reason(Provider::Slack, &req("", "", "")),
            "WEBHOOK_SECRET_REQUIRED"
        );
        assert_eq!(
            reason(Provider::Github, &req("s", "v", "")),
            "WEBHOOK_SECRET_INVALID"
        );
        let meta = SecretValue::from_request(Provider::Meta, &req("", "vt", "as")).expect("valid");
        assert_eq!(meta.signing_secret.as_deref(), Some("as"));
        assert_eq!(meta.verify_token.as_deref(), Some("vt"));
        let sw = SecretValue::from_request(Provider::StandardWebhooks, &req("nope", "", ""))
            .expect("shape ok");
        assert_eq!(
            sw.resolve(Provider::StandardWebhooks, &params(&[]))
                .expect_err("bad")
                .code_and_reason()
                .1,
            "WEBHOOK_SECRET_INVALID"
        );
        assert!(!format!("{meta:?}").contains("vt"));
    }
}
