//! Provider checks (SPEC §4 step 4): one module per provider. Every failure is a
//! [`SignatureFailure`], which the ingest path turns into the same 401 for all of them.

pub mod generic;
pub mod meta;
pub mod slack;

use gateway_shared::snapshot::SigningSecret;
use gateway_shared::Provider;
use http::HeaderMap;

use crate::error::SignatureFailure;
use crate::routing::Route;

/// What a verified POST leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// Publish the event.
    Publish,
    /// Answer a provider handshake with this JSON body; publish nothing.
    Handshake(serde_json::Value),
}

/// Verifies a POST's provider signature over the raw body, at `now` (unix seconds).
pub fn verify_post(
    route: &Route,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Verified, SignatureFailure> {
    match route.provider {
        Provider::Generic => generic::verify(),
        Provider::Slack => {
            slack::verify(&route.secrets.signing, headers, body, now)?;
            Ok(slack::url_verification(body).map_or(Verified::Publish, Verified::Handshake))
        }
        Provider::Meta => meta::verify_post(&route.secrets.signing, headers, body, now)
            .map(|()| Verified::Publish),
        // Adapters of a later issue; until they exist such webhooks fail closed rather than publish
        // unverified events.
        Provider::Github | Provider::Stripe | Provider::StandardWebhooks | Provider::Shopify => {
            Err(SignatureFailure::Unsupported)
        }
    }
}

/// The secrets still valid at `now`, current first.
fn live_secrets(secrets: &[SigningSecret], now: i64) -> impl Iterator<Item = &[u8]> {
    secrets
        .iter()
        .filter(move |s| s.not_after.is_none_or(|end| now <= end))
        .map(|s| s.value.expose().as_bytes())
}

/// The first value of a header as text; absent → `MissingHeader`, not visible ASCII → `Malformed`.
fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, SignatureFailure> {
    let value = headers.get(name).ok_or(SignatureFailure::MissingHeader)?;
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| SignatureFailure::Malformed)
}

/// Decodes a 64-digit hex HMAC-SHA256 value.
fn hex_sha256(text: &str) -> Result<[u8; 32], SignatureFailure> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|_| SignatureFailure::Malformed)?;
    Ok(out)
}

/// Whether any live secret's HMAC-SHA256 over `parts` equals `expected` (compared in constant time
/// by `verify_slice`).
fn any_hmac_sha256_matches(
    secrets: &[SigningSecret],
    now: i64,
    parts: &[&[u8]],
    expected: &[u8; 32],
) -> Result<(), SignatureFailure> {
    use hmac::{Hmac, Mac};
    let mut any_secret = false;
    let mut matched = false;
    for secret in live_secrets(secrets, now) {
        any_secret = true;
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else {
            continue;
        };
        for p in parts {
            mac.update(p);
        }
        // No early exit: the time taken does not depend on which secret matched.
        matched |= mac.verify_slice(expected).is_ok();
    }
    match (any_secret, matched) {
        (false, _) => Err(SignatureFailure::NoSecret),
        (true, true) => Ok(()),
        (true, false) => Err(SignatureFailure::Mismatch),
    }
}
