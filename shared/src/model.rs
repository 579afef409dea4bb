//! Enums for the modes of the product. Matched exhaustively, so a new provider is a compile error
//! until every place handles it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who signs a webhook's requests and how they are verified.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Provider {
    /// API key only.
    Generic,
    /// Slack `v0` signatures.
    Slack,
    /// Meta verify-token handshake and `X-Hub-Signature-256`.
    Meta,
    /// GitHub `X-Hub-Signature-256`.
    Github,
    /// Stripe `Stripe-Signature`.
    Stripe,
    /// Standard Webhooks / Svix.
    StandardWebhooks,
    /// Shopify `X-Shopify-Hmac-Sha256`.
    Shopify,
}

impl Provider {
    /// Every provider, in a stable order.
    pub const ALL: [Provider; 7] = [
        Provider::Generic,
        Provider::Slack,
        Provider::Meta,
        Provider::Github,
        Provider::Stripe,
        Provider::StandardWebhooks,
        Provider::Shopify,
    ];

    /// The upper-case name used in the API and the Kafka envelope (`SLACK`).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Generic => "GENERIC",
            Provider::Slack => "SLACK",
            Provider::Meta => "META",
            Provider::Github => "GITHUB",
            Provider::Stripe => "STRIPE",
            Provider::StandardWebhooks => "STANDARD_WEBHOOKS",
            Provider::Shopify => "SHOPIFY",
        }
    }

    /// The URL path segment, or `None` for GENERIC whose URL has no provider segment.
    pub fn url_segment(self) -> Option<&'static str> {
        match self {
            Provider::Generic => None,
            Provider::Slack => Some("slack"),
            Provider::Meta => Some("meta"),
            Provider::Github => Some("github"),
            Provider::Stripe => Some("stripe"),
            Provider::StandardWebhooks => Some("standard-webhooks"),
            Provider::Shopify => Some("shopify"),
        }
    }

    /// The provider with this upper-case name.
    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an accepted request does in the process engine.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TriggerType {
    /// Start a new instance (Message Start Event).
    StartProcess,
    /// Resume the instance waiting with a matching correlation key (Message Catch Intermediate Event).
    ResumeProcess,
}

impl TriggerType {
    /// The upper-case name (`START_PROCESS`).
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::StartProcess => "START_PROCESS",
            TriggerType::ResumeProcess => "RESUME_PROCESS",
        }
    }

    /// The trigger type with this upper-case name.
    pub fn from_name(name: &str) -> Option<TriggerType> {
        match name {
            "START_PROCESS" => Some(TriggerType::StartProcess),
            "RESUME_PROCESS" => Some(TriggerType::ResumeProcess),
            _ => None,
        }
    }
}

/// Whether data planes accept requests for a webhook.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TriggerState {
    /// Requests are accepted.
    Active,
    /// Requests get 404.
    Deactivated,
}

impl TriggerState {
    /// The upper-case name (`ACTIVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerState::Active => "ACTIVE",
            TriggerState::Deactivated => "DEACTIVATED",
        }
    }

    /// The state with this upper-case name.
    pub fn from_name(name: &str) -> Option<TriggerState> {
        match name {
            "ACTIVE" => Some(TriggerState::Active),
            "DEACTIVATED" => Some(TriggerState::Deactivated),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The provider named by a URL path segment (the data plane compares the segment with the
    /// route's instead of looking one up).
    fn from_url_segment(segment: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.url_segment() == Some(segment))
    }

    #[test]
    fn url_segments_round_trip_and_generic_has_none() {
        for p in Provider::ALL {
            assert_eq!(Provider::from_name(p.as_str()), Some(p));
            match p.url_segment() {
                Some(seg) => assert_eq!(from_url_segment(seg), Some(p)),
                None => assert_eq!(p, Provider::Generic),
            }
        }
        assert_eq!(from_url_segment("SLACK"), None);
        assert_eq!(
            Provider::StandardWebhooks.url_segment(),
            Some("standard-webhooks")
        );
    }
}
