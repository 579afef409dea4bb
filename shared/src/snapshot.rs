//! The config snapshot: everything a data plane needs to serve, and nothing else. The control plane
//! builds it from Postgres and streams it (full, then deltas); the data plane builds its routing table
//! from it. API keys travel only as SHA-256 hashes; provider secrets travel resolved (placeholders
//! already substituted) and only on the authenticated config stream.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{AppId, OrganizationId, WebhookId, WorkspaceId};
use crate::model::{Provider, TriggerType};
use crate::secret::Secret;

/// A full config at one global revision: every ACTIVE webhook. Deactivated and deleted webhooks are absent.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigSnapshot {
    /// The control plane's global config revision this snapshot reflects.
    pub version: u64,
    /// One entry per active webhook.
    pub webhooks: Vec<WebhookConfig>,
}

/// The changes between two versions: upserts replace a webhook whole, removals drop it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigDelta {
    /// The version the receiver must have applied for this delta to apply.
    pub from_version: u64,
    /// The version after applying it.
    pub to_version: u64,
    /// Webhooks created, changed or activated.
    pub upserts: Vec<WebhookConfig>,
    /// Webhooks deleted or deactivated.
    pub removals: Vec<WebhookId>,
}

/// What a data plane knows about one active webhook.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookConfig {
    /// The webhook id (last URL segment).
    pub webhook_id: WebhookId,
    /// Owning organization.
    pub organization_id: OrganizationId,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Owning app.
    pub app_id: AppId,
    /// How requests are verified.
    pub provider: Provider,
    /// Hashes of the API keys that are accepted: the current one and, during a reset grace window,
    /// the previous one.
    pub api_keys: Vec<ApiKeyHash>,
    /// Provider secret material (resolved; current first, then a previous one still in its window).
    pub secrets: ProviderSecrets,
    /// The committed trigger bindings; one accepted request carries all of them.
    pub bindings: Vec<TriggerBinding>,
    /// Where the correlation value lives in the payload (needed when any binding is RESUME_PROCESS).
    pub correlation_key_path: Option<String>,
    /// Per-webhook options.
    #[serde(default)]
    pub options: WebhookOptions,
}

/// SHA-256 of an API key, with an optional end of validity (unix seconds) for grace windows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyHash {
    /// Lower-case hex SHA-256 of the key's text as it appears in the URL.
    #[serde(with = "hex_32")]
    pub sha256: [u8; 32],
    /// After this instant (unix seconds) the key is no longer accepted; `None` = no end.
    pub not_after: Option<i64>,
}

impl ApiKeyHash {
    /// The hash of an API key's text, valid without end.
    pub fn of(api_key: &str) -> Self {
        Self {
            sha256: sha256(api_key.as_bytes()),
            not_after: None,
        }
    }
}

/// SHA-256 of some bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// One signing secret with an optional end of validity (unix seconds).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningSecret {
    /// The secret as configured (for STANDARD_WEBHOOKS the `whsec_…` text).
    pub value: Secret<String>,
    /// After this instant the secret is no longer accepted; `None` = no end.
    pub not_after: Option<i64>,
}

/// The provider secret material of a webhook.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderSecrets {
    /// Signing secrets tried in order (Slack signing secret, Meta app secret, GitHub/Stripe/… secret).
    #[serde(default)]
    pub signing: Vec<SigningSecret>,
    /// Meta's verify token for the GET subscription handshake.
    #[serde(default)]
    pub verify_token: Option<Secret<String>>,
}

/// A binding of the webhook to a node of a committed process version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerBinding {
    /// START_PROCESS or RESUME_PROCESS (derived from the node kind by the control plane).
    pub trigger_type: TriggerType,
    /// The process definition bound.
    pub process_definition_id: String,
    /// The node inside it.
    pub node_id: String,
    /// RESUME only: the process variable matched against the correlation value.
    pub process_correlation_key: Option<String>,
    /// RESUME only: where the payload is stored in the resumed instance.
    pub process_key: Option<String>,
}

/// Per-webhook options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookOptions {
    /// Carry the raw body (base64) in the envelope too.
    #[serde(default)]
    pub include_raw_body: bool,
    /// Seconds a data plane remembers the deliveries it accepted, to answer a replayed one with
    /// the original event id instead of publishing it again; 0 = off (docs/data-plane.md,
    /// "Replay window").
    #[serde(default)]
    pub replay_window_seconds: u32,
    /// The fleet-wide rate limit, if any (docs/data-plane.md, "Rate limits").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// A fleet-wide rate limit: a token bucket refilled at `per_second` holding at most `burst`
/// requests. The control plane validates it (`per_second` finite and > 0, `burst` >= 1).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Requests per second.
    pub per_second: f64,
    /// Requests accepted at once.
    pub burst: u32,
}

impl RateLimit {
    /// The limit a config carries, or `None` when `per_second` is 0 (no limit). Refused: a rate
    /// that is negative, not finite or above [`RateLimit::MAX`].
    pub fn from_parts(per_second: f64, burst: u32) -> Result<Option<RateLimit>, String> {
        if per_second == 0.0 {
            return Ok(None);
        }
        if !(0.0..=Self::MAX).contains(&per_second) {
            return Err(format!(
                "rate limit {per_second} is not a number of requests per second in (0, {}]",
                Self::MAX
            ));
        }
        Ok(Some(RateLimit {
            per_second,
            burst: if burst == 0 {
                Self::default_burst(per_second)
            } else {
                burst
            },
        }))
    }

    /// The largest rate and burst the API accepts.
    pub const MAX: f64 = 1_000_000.0;

    /// What one of `planes` data planes enforces so the fleet's total stays at this limit:
    /// `per_second / planes`, and `max(1, burst / planes)` at once (0 planes counts as 1).
    pub fn share(self, planes: u32) -> RateLimit {
        let planes = planes.max(1);
        RateLimit {
            per_second: self.per_second / f64::from(planes),
            burst: (self.burst / planes).max(1),
        }
    }

    /// The burst when none is configured: the rate rounded up.
    pub fn default_burst(per_second: f64) -> u32 {
        // Within (0, MAX], so the cast neither saturates nor truncates.
        (per_second.ceil() as u32).max(1)
    }
}

// Rates are validated finite, so comparing their bits is a lawful equality.
impl PartialEq for RateLimit {
    fn eq(&self, other: &Self) -> bool {
        self.per_second.to_bits() == other.per_second.to_bits() && self.burst == other.burst
    }
}

impl Eq for RateLimit {}

mod hex_32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_divide_rate_and_burst() {
        let limit = |per_second, burst| RateLimit { per_second, burst };
        assert_eq!(limit(50.0, 50).share(1), limit(50.0, 50));
        let third = limit(50.0, 50).share(3);
        assert!((third.per_second - 50.0 / 3.0).abs() < 1e-9);
        assert_eq!(third.burst, 16);
        assert_eq!(
            limit(10.0, 2).share(5),
            limit(2.0, 1),
            "never less than one at once"
        );
        assert_eq!(
            limit(10.0, 10).share(0),
            limit(10.0, 10),
            "zero planes counts as one"
        );
    }

    #[test]
    fn limits_are_parsed_from_their_wire_parts() {
        assert_eq!(RateLimit::from_parts(0.0, 9), Ok(None));
        assert_eq!(
            RateLimit::from_parts(0.5, 0),
            Ok(Some(RateLimit {
                per_second: 0.5,
                burst: 1
            }))
        );
        assert_eq!(
            RateLimit::from_parts(12.2, 0),
            Ok(Some(RateLimit {
                per_second: 12.2,
                burst: 13
            }))
        );
        for bad in [-0.5, f64::NAN, f64::INFINITY, 1e7] {
            assert!(RateLimit::from_parts(bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn snapshot_json_round_trip_keeps_hashes_and_secrets() {
        let wh = WebhookConfig {
            webhook_id: WebhookId::new_random(),
            organization_id: OrganizationId::new_random(),
            workspace_id: WorkspaceId::new_random(),
            app_id: AppId::new_random(),
            provider: Provider::Slack,
            api_keys: vec![ApiKeyHash::of("k1")],
            secrets: ProviderSecrets {
                signing: vec![SigningSecret {
                    value: Secret::new("s3cr3t".into()),
                    not_after: None,
                }],
                verify_token: None,
            },
            bindings: vec![],
            correlation_key_path: Some("a.b".into()),
            options: WebhookOptions::default(),
        };
        let snap = ConfigSnapshot {
            version: 7,
            webhooks: vec![wh],
        };
        let json = serde_json::to_string(&snap).expect("serializes");
        assert!(json.contains(&hex::encode(sha256(b"k1"))));
        let back: ConfigSnapshot = serde_json::from_str(&json).expect("parses");
        assert_eq!(back.version, 7);
        assert_eq!(back.webhooks[0].api_keys[0], ApiKeyHash::of("k1"));
        assert_eq!(back.webhooks[0].secrets.signing[0].value.expose(), "s3cr3t");
        assert!(!format!("{back:?}").contains("s3cr3t"));
    }
}
