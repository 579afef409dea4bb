//! STRIPE: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]` where each `v1` is a
//! hex HMAC-SHA256(endpoint secret, "{t}.{raw body}"). Any matching `v1` verifies; `v0` and unknown
//! schemes are ignored; `t` must be within 300 s of now. The secret (`whsec_…`) is used as its text,
//! prefix included, as Stripe's libraries do. The delivery id is the event's `id` (`evt_…`).
//! <https://docs.stripe.com/webhooks#verify-manually>

use super::{
    any_hmac_sha256_matches, check_timestamp, header_text, hex_sha256, require_live_secret,
    text_key, SecretSlot, Signed, MAX_SIGNATURES,
};
use crate::error::SignatureFailure;

/// Signature header.
pub const SIGNATURE_HEADER: &str = "stripe-signature";
/// Largest accepted clock difference, in seconds (Stripe's default tolerance).
pub const TOLERANCE_SECS: i64 = 300;

/// Checks a Stripe event's signature at `now` (unix seconds).
pub fn verify(req: &Signed<'_>) -> Result<SecretSlot, SignatureFailure> {
    let (secrets, headers, body, now) = req.parts();
    require_live_secret(secrets, now)?;
    let header = header_text(headers, SIGNATURE_HEADER)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in header.split(',') {
        let (scheme, value) = item.split_once('=').ok_or(SignatureFailure::Malformed)?;
        match scheme.trim() {
            // Two timestamps would leave it open which one was signed.
            "t" if timestamp.replace(value.trim()).is_some() => {
                return Err(SignatureFailure::Malformed)
            }
            "t" => {}
            "v1" if candidates.len() == MAX_SIGNATURES => return Err(SignatureFailure::Malformed),
            "v1" => candidates.push(hex_sha256(value.trim())?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureFailure::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureFailure::Malformed);
    }
    check_timestamp(timestamp, now, TOLERANCE_SECS)?;
    any_hmac_sha256_matches(
        secrets,
        now,
        text_key,
        &[timestamp.as_bytes(), b".", body],
        &candidates,
    )
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use http::HeaderValue;

    use super::*;
    use crate::providers::run;
    use crate::providers::test_secrets as secrets;

    // The timestamp of the example header on Stripe's "verify manually" page; the signatures were
    // computed independently with Python:
    //   hmac.new(SECRET, b"1492774577." + BODY, hashlib.sha256).hexdigest()
    const SECRET: &str = "whsec_test_secret";
    const OLD_SECRET: &str = "whsec_old_secret";
    const T: i64 = 1_492_774_577;
    const BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
    const V1: &str = "88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a";
    const V1_OLD: &str = "aed64a3c4c277a17c2a83b486f08da11442d772bc6e44361371cabce6d56f8af";
    // Stripe's documented example `v0` value: a legacy scheme that must be ignored.
    const V0: &str = "6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39";

    fn signed(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(value).expect("ascii"),
        );
        h
    }

    #[test]
    fn accepts_any_matching_v1_and_ignores_v0() {
        let s = secrets(&[(SECRET, None)]);
        for header in [
            format!("t={T},v1={V1}"),
            format!("t={T},v1={V1},v0={V0}"),
            format!("t={T},v1={V1_OLD},v1={V1}"),
            format!("v1={V1}, t={T}, v2=anything"),
        ] {
            assert_eq!(
                run(verify, &s, &signed(&header), BODY, T),
                Ok(SecretSlot::Current),
                "{header}"
            );
        }
        assert_eq!(
            run(
                verify,
                &s,
                &signed(&format!("t={T},v1={V1}")),
                BODY,
                T - 300
            ),
            Ok(SecretSlot::Current)
        );
    }

    #[test]
    fn a_rolled_secret_verifies_as_previous_until_its_window_ends() {
        let s = secrets(&[(SECRET, None), (OLD_SECRET, Some(T))]);
        let header = signed(&format!("t={T},v1={V1_OLD}"));
        assert_eq!(run(verify, &s, &header, BODY, T), Ok(SecretSlot::Previous));
        assert_eq!(
            run(verify, &s, &header, BODY, T + 1),
            Err(SignatureFailure::Mismatch)
        );
        // Stripe signs with both secrets while it rolls: the current one is what matched.
        let both = signed(&format!("t={T},v1={V1},v1={V1_OLD}"));
        assert_eq!(run(verify, &s, &both, BODY, T), Ok(SecretSlot::Current));
    }

    #[test]
    fn rejects_bad_events() {
        let s = secrets(&[(SECRET, None)]);
        let ok = format!("t={T},v1={V1}");
        let check = |h: &str, body: &[u8], now| run(verify, &s, &signed(h), body, now);
        assert_eq!(check(&ok, BODY, T + 301), Err(SignatureFailure::Stale));
        assert_eq!(check(&ok, BODY, T - 301), Err(SignatureFailure::Stale));
        assert_eq!(
            check(&ok, br#"{"id":"evt_test_webhook","object":"evenT"}"#, T),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            check(&format!("t={},v1={V1}", T + 1), BODY, T),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            run(
                verify,
                &secrets(&[("whsec_wrong", None)]),
                &signed(&ok),
                BODY,
                T
            ),
            Err(SignatureFailure::Mismatch)
        );
        for bad in [
            format!("t={T}"),
            format!("t={T},v0={V0}"),
            format!("v1={V1}"),
            format!("t={T},t={T},v1={V1}"),
            format!("t=,v1={V1}"),
            format!("t=-1,v1={V1}"),
            format!("t={T},v1=zz"),
            format!("t={T};v1={V1}"),
            format!("t={T},v1={V1},junk"),
            String::new(),
        ] {
            assert_eq!(
                check(&bad, BODY, T),
                Err(SignatureFailure::Malformed),
                "{bad}"
            );
        }
        let many = format!("t={T}{}", format!(",v1={V1}").repeat(MAX_SIGNATURES + 1));
        assert_eq!(check(&many, BODY, T), Err(SignatureFailure::Malformed));
        assert_eq!(
            run(verify, &s, &HeaderMap::new(), BODY, T),
            Err(SignatureFailure::MissingHeader)
        );
        assert_eq!(
            run(verify, &[], &signed(&ok), BODY, T),
            Err(SignatureFailure::NoSecret)
        );
    }
}
