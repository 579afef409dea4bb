//! Provider checks (SPEC §4 step 4): one module per provider. Every failure is a
//! [`SignatureFailure`], which the ingest path turns into the same 401 for all of them.
//! Signatures are always computed over the raw body as received.

pub mod delivery;
pub mod generic;
pub mod github;
pub mod meta;
pub mod shopify;
pub mod slack;
pub mod standard_webhooks;
pub mod stripe;

use gateway_shared::snapshot::SigningSecret;
use gateway_shared::Provider;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use subtle::{Choice, ConstantTimeEq};

pub use delivery::event_id;

use crate::error::SignatureFailure;
use crate::routing::Route;

/// HMAC-SHA256, the MAC of every provider scheme here.
type HmacSha256 = Hmac<sha2::Sha256>;

/// Most signatures one header may carry (Stripe `v1=` entries, Standard Webhooks list); senders put
/// one per live secret, so a longer list is malformed rather than work to do.
const MAX_SIGNATURES: usize = 16;

/// Which configured secret verified a request, so operators see when senders switched after a rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretSlot {
    /// The current secret (the first in the snapshot's list).
    Current,
    /// A previous secret still inside its grace window.
    Previous,
}

impl SecretSlot {
    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretSlot::Current => "current",
            SecretSlot::Previous => "previous",
        }
    }
}

/// What a verified POST leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// Publish the event; names the secret that verified it (`None` for GENERIC, which has none).
    Publish(Option<SecretSlot>),
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
    let secrets = &route.secrets.signing;
    let slot = match route.provider {
        Provider::Generic => return generic::verify(),
        Provider::Slack => {
            let slot = slack::verify(secrets, headers, body, now)?;
            if let Some(answer) = slack::url_verification(body) {
                return Ok(Verified::Handshake(answer));
            }
            slot
        }
        Provider::Meta => meta::verify_post(secrets, headers, body, now)?,
        Provider::Github => github::verify(secrets, headers, body, now)?,
        Provider::Stripe => stripe::verify(secrets, headers, body, now)?,
        Provider::StandardWebhooks => standard_webhooks::verify(secrets, headers, body, now)?,
        Provider::Shopify => shopify::verify(secrets, headers, body, now)?,
    };
    Ok(Verified::Publish(Some(slot)))
}

/// Whether `secret` is still valid at `now`.
fn is_live(secret: &SigningSecret, now: i64) -> bool {
    secret.not_after.is_none_or(|end| now <= end)
}

/// "No configured secret" is a 401 of its own, checked before any header is looked at.
fn require_live_secret(secrets: &[SigningSecret], now: i64) -> Result<(), SignatureFailure> {
    if secrets.iter().any(|s| is_live(s, now)) {
        Ok(())
    } else {
        Err(SignatureFailure::NoSecret)
    }
}

/// The first value of a header as text; absent → `MissingHeader`, not visible ASCII → `Malformed`.
fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, SignatureFailure> {
    let value = headers.get(name).ok_or(SignatureFailure::MissingHeader)?;
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| SignatureFailure::Malformed)
}

/// Checks a unix-seconds timestamp header value: digits only, at most `tolerance` seconds from `now`
/// either way.
fn check_timestamp(text: &str, now: i64, tolerance: i64) -> Result<(), SignatureFailure> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureFailure::Malformed);
    }
    let ts: i64 = text.parse().map_err(|_| SignatureFailure::Malformed)?;
    if now.abs_diff(ts) > tolerance.unsigned_abs() {
        return Err(SignatureFailure::Stale);
    }
    Ok(())
}

/// Decodes a 64-digit hex HMAC-SHA256 value.
fn hex_sha256(text: &str) -> Result<[u8; 32], SignatureFailure> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|_| SignatureFailure::Malformed)?;
    Ok(out)
}

/// Decodes a base64 (standard alphabet, padded: 44 characters) HMAC-SHA256 value.
fn base64_sha256(text: &str) -> Result<[u8; 32], SignatureFailure> {
    use base64::Engine as _;
    if text.len() != 44 {
        return Err(SignatureFailure::Malformed);
    }
    // Room for the decoder's worst-case estimate; exactly 32 bytes must come out.
    let mut buf = [0u8; 36];
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(text, &mut buf)
        .map_err(|_| SignatureFailure::Malformed)?;
    buf[..n].try_into().map_err(|_| SignatureFailure::Malformed)
}

/// The HMAC key of a secret used as its UTF-8 text (every scheme but Standard Webhooks).
fn text_key(secret: &str) -> Option<HmacSha256> {
    HmacSha256::new_from_slice(secret.as_bytes()).ok()
}

/// Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`, the scheme GitHub and
/// Meta share.
fn verify_hub_signature_256(
    secrets: &[SigningSecret],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<SecretSlot, SignatureFailure> {
    require_live_secret(secrets, now)?;
    let header = header_text(headers, "x-hub-signature-256")?;
    let hex = header
        .strip_prefix("sha256=")
        .ok_or(SignatureFailure::Malformed)?;
    let expected = hex_sha256(hex)?;
    any_hmac_sha256_matches(secrets, now, text_key, &[body], &[expected])
}

/// Which live secret's HMAC-SHA256 over `parts` equals one of `candidates`. `key` turns a secret's
/// text into a MAC (secrets it cannot use are skipped). Every secret and every candidate is
/// compared in constant time with no early exit, so the time taken reveals neither whether nor which
/// secret matched.
fn any_hmac_sha256_matches(
    secrets: &[SigningSecret],
    now: i64,
    key: fn(&str) -> Option<HmacSha256>,
    parts: &[&[u8]],
    candidates: &[[u8; 32]],
) -> Result<SecretSlot, SignatureFailure> {
    let mut usable = false;
    let mut any = Choice::from(0);
    let mut current = Choice::from(0);
    for (index, secret) in secrets.iter().enumerate() {
        if !is_live(secret, now) {
            continue;
        }
        let Some(mut mac) = key(secret.value.expose()) else {
            continue;
        };
        usable = true;
        for p in parts {
            mac.update(p);
        }
        let tag = mac.finalize().into_bytes();
        let mut hit = Choice::from(0);
        for c in candidates {
            hit |= tag.as_slice().ct_eq(c);
        }
        any |= hit;
        current |= hit & Choice::from(u8::from(index == 0));
    }
    match (usable, bool::from(any), bool::from(current)) {
        (false, _, _) => Err(SignatureFailure::NoSecret),
        (true, false, _) => Err(SignatureFailure::Mismatch),
        (true, true, true) => Ok(SecretSlot::Current),
        (true, true, false) => Ok(SecretSlot::Previous),
    }
}

#[cfg(test)]
mod tests;

/// Signing secrets `(value, not_after)` for the providers' unit tests, current first.
#[cfg(test)]
fn test_secrets(values: &[(&str, Option<i64>)]) -> Vec<SigningSecret> {
    values
        .iter()
        .map(|(v, not_after)| SigningSecret {
            value: gateway_shared::Secret::new((*v).to_owned()),
            not_after: *not_after,
        })
        .collect()
}
