//! Provider checks (docs/data-plane.md, "HTTP contract" step 5, and "Provider signatures"): one
//! module per provider, handshakes in `handshake.rs`. Every failure is a [`SignatureFailure`], which
//! the ingest path turns into the same 401 for all of them. Signatures are always computed over the
//! raw body as received.

pub mod delivery;
pub mod generic;
pub mod github;
pub mod handshake;
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

use crate::rotation::SecretSlot;

pub use delivery::event_id;
pub use handshake::Handshake;

use crate::error::SignatureFailure;
use crate::rotation::MatchedSlot;
use crate::routing::Route;

/// HMAC-SHA256, the MAC of every provider scheme here.
type HmacSha256 = Hmac<sha2::Sha256>;

/// Most signatures one header may carry (Stripe `v1=` entries, Standard Webhooks list); senders put
/// one per live secret, so a longer list is malformed rather than work to do.
const MAX_SIGNATURES: usize = 16;

/// A POST to verify: its webhook's signing secrets, its headers and raw body, and the time (unix
/// seconds). Every provider's check takes one.
#[derive(Clone, Copy)]
pub struct Signed<'a> {
    /// The webhook's signing secrets, current first.
    pub secrets: &'a [SigningSecret],
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The raw body as received.
    pub body: &'a [u8],
    /// Now, in unix seconds.
    pub now: i64,
}

impl<'a> Signed<'a> {
    /// Secrets, headers, body and time, for a check to take apart.
    fn parts(&self) -> (&'a [SigningSecret], &'a HeaderMap, &'a [u8], i64) {
        (self.secrets, self.headers, self.body, self.now)
    }
}

/// What a verified POST leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// Publish the event; names the secret that verified it (`None` for GENERIC, which has none).
    Publish(Option<SecretSlot>),
    /// Answer a provider handshake; publish nothing.
    Handshake(Handshake),
}

/// Verifies a POST's provider signature over the raw body, at `now` (unix seconds).
pub fn verify_post(
    route: &Route,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Verified, SignatureFailure> {
    let req = Signed {
        secrets: &route.secrets.signing,
        headers,
        body,
        now,
    };
    let slot = match route.provider {
        Provider::Generic => return generic::verify(),
        Provider::Slack => {
            let slot = slack::verify(&req)?;
            if let Some(answer) = handshake::slack(body) {
                return Ok(Verified::Handshake(answer));
            }
            slot
        }
        Provider::Meta => meta::verify(&req)?,
        Provider::Github => github::verify(&req)?,
        Provider::Stripe => stripe::verify(&req)?,
        Provider::StandardWebhooks => standard_webhooks::verify(&req)?,
        Provider::Shopify => shopify::verify(&req)?,
    };
    Ok(Verified::Publish(Some(slot)))
}

/// Whether `secret` is still valid at `now`.
fn is_live(secret: &SigningSecret, now: i64) -> bool {
    crate::rotation::is_live(secret.not_after, now)
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

/// The schemes that sign the raw body alone, without a timestamp (GitHub and Meta, Shopify): the
/// one signature `decode` reads from `header` against every live secret's HMAC-SHA256 of the body.
fn verify_body_hmac(
    req: &Signed<'_>,
    header: &str,
    decode: fn(&str) -> Result<[u8; 32], SignatureFailure>,
) -> Result<SecretSlot, SignatureFailure> {
    let (secrets, headers, body, now) = req.parts();
    require_live_secret(secrets, now)?;
    let expected = decode(header_text(headers, header)?)?;
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
    let mut matched = MatchedSlot::new();
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
        matched.record(index, hit);
    }
    if !usable {
        return Err(SignatureFailure::NoSecret);
    }
    matched.slot().ok_or(SignatureFailure::Mismatch)
}

#[cfg(test)]
mod tests;

/// Runs `check` on a request made of these parts (for the providers' unit tests).
#[cfg(test)]
fn run(
    check: fn(&Signed<'_>) -> Result<SecretSlot, SignatureFailure>,
    secrets: &[SigningSecret],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<SecretSlot, SignatureFailure> {
    check(&Signed {
        secrets,
        headers,
        body,
        now,
    })
}

/// A header map with one header, for the providers' unit tests.
#[cfg(test)]
fn one_header(name: &'static str, value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        name,
        http::HeaderValue::from_str(value).expect("visible ASCII"),
    );
    h
}

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
