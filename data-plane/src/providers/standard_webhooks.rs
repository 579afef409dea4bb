//! STANDARD_WEBHOOKS (and Svix senders): `webhook-id`, `webhook-timestamp` and `webhook-signature`
//! (or the same three as `svix-*`). The signature header is a space-separated list of
//! `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{raw body}")>`; any matching `v1` verifies and other
//! versions (`v1a` is asymmetric) are ignored. The timestamp must be within 300 s of now. The key
//! is the base64 decoding of the secret after its `whsec_` prefix; a secret without the prefix is
//! decoded the same way (as the reference libraries do), and one that is not base64 is unusable.
//! <https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::Mac;
use http::HeaderMap;
use zeroize::Zeroizing;

use super::{
    any_hmac_sha256_matches, base64_sha256, check_timestamp, header_text, require_live_secret,
    HmacSha256, SecretSlot, Signed, MAX_SIGNATURES,
};
use crate::error::SignatureFailure;

/// Largest accepted clock difference either way, in seconds.
pub const TOLERANCE_SECS: i64 = 300;
/// Prefix of Standard Webhooks secrets.
pub const SECRET_PREFIX: &str = "whsec_";

/// The id, timestamp and signature header names of one header family.
struct Family {
    id: &'static str,
    timestamp: &'static str,
    signature: &'static str,
}

const STANDARD: Family = Family {
    id: "webhook-id",
    timestamp: "webhook-timestamp",
    signature: "webhook-signature",
};
const SVIX: Family = Family {
    id: "svix-id",
    timestamp: "svix-timestamp",
    signature: "svix-signature",
};

/// The `webhook-*` headers when any of them is present, else the `svix-*` ones: never a mix.
fn family(headers: &HeaderMap) -> &'static Family {
    let standard = [STANDARD.id, STANDARD.timestamp, STANDARD.signature];
    if standard.iter().any(|h| headers.contains_key(*h)) {
        &STANDARD
    } else {
        &SVIX
    }
}

/// The message id (`webhook-id`, else `svix-id`): the delivery id, the same on every retry.
pub fn message_id(headers: &HeaderMap) -> Option<&str> {
    headers.get(family(headers).id)?.to_str().ok()
}

/// The HMAC key of a `whsec_<base64>` secret (padding optional); `None` if it is not base64.
fn whsec_key(secret: &str) -> Option<HmacSha256> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = Zeroizing::new(LENIENT.decode(encoded).ok()?);
    if key.is_empty() {
        return None;
    }
    HmacSha256::new_from_slice(&key).ok()
}

/// Checks a Standard Webhooks message's signature at `now` (unix seconds).
pub fn verify(req: &Signed<'_>) -> Result<SecretSlot, SignatureFailure> {
    let (secrets, headers, body, now) = req.parts();
    require_live_secret(secrets, now)?;
    let names = family(headers);
    let id = header_text(headers, names.id)?;
    let timestamp = header_text(headers, names.timestamp)?;
    let signatures = header_text(headers, names.signature)?;
    if id.is_empty() {
        return Err(SignatureFailure::Malformed);
    }
    check_timestamp(timestamp, now, TOLERANCE_SECS)?;
    let mut candidates = Vec::new();
    for entry in signatures.split_ascii_whitespace() {
        let (version, value) = entry.split_once(',').ok_or(SignatureFailure::Malformed)?;
        if version != "v1" {
            continue;
        }
        if candidates.len() == MAX_SIGNATURES {
            return Err(SignatureFailure::Malformed);
        }
        candidates.push(base64_sha256(value)?);
    }
    if candidates.is_empty() {
        return Err(SignatureFailure::Malformed);
    }
    any_hmac_sha256_matches(
        secrets,
        now,
        whsec_key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
        &candidates,
    )
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::providers::run;
    use crate::providers::test_secrets as secrets;

    // The test vector of the Standard Webhooks specification repository.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(family: &Family, id: &str, ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in [
            (family.id, id),
            (family.timestamp, ts),
            (family.signature, sig),
        ] {
            h.insert(name, HeaderValue::from_str(value).expect("ascii"));
        }
        h
    }

    fn ok(family: &Family) -> HeaderMap {
        headers(family, ID, &TS.to_string(), SIGNATURE)
    }

    #[test]
    fn accepts_the_spec_test_vector_under_both_header_families() {
        let s = secrets(&[(SECRET, None)]);
        assert_eq!(
            run(verify, &s, &ok(&STANDARD), BODY, TS),
            Ok(SecretSlot::Current)
        );
        assert_eq!(
            run(verify, &s, &ok(&SVIX), BODY, TS),
            Ok(SecretSlot::Current)
        );
        assert_eq!(message_id(&ok(&STANDARD)), Some(ID));
        assert_eq!(message_id(&ok(&SVIX)), Some(ID));
        for now in [TS - 300, TS + 300] {
            assert_eq!(
                run(verify, &s, &ok(&STANDARD), BODY, now),
                Ok(SecretSlot::Current)
            );
        }
    }

    #[test]
    fn any_v1_in_the_list_verifies_and_other_versions_are_ignored() {
        let s = secrets(&[(SECRET, None)]);
        let list = format!(
            "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {SIGNATURE}"
        );
        let h = headers(&STANDARD, ID, &TS.to_string(), &list);
        assert_eq!(run(verify, &s, &h, BODY, TS), Ok(SecretSlot::Current));
    }

    #[test]
    fn a_secret_without_its_prefix_is_the_same_key_and_a_non_base64_one_is_unusable() {
        let bare = SECRET.trim_start_matches(SECRET_PREFIX);
        assert_eq!(
            run(verify, &secrets(&[(bare, None)]), &ok(&STANDARD), BODY, TS),
            Ok(SecretSlot::Current)
        );
        assert_eq!(
            run(
                verify,
                &secrets(&[("whsec_not base64!", None)]),
                &ok(&STANDARD),
                BODY,
                TS
            ),
            Err(SignatureFailure::NoSecret)
        );
        assert_eq!(
            run(
                verify,
                &secrets(&[("whsec_", None)]),
                &ok(&STANDARD),
                BODY,
                TS
            ),
            Err(SignatureFailure::NoSecret)
        );
    }

    #[test]
    fn a_previous_secret_verifies_as_previous_in_its_window() {
        let s = secrets(&[
            ("whsec_bmV3IHNlY3JldCBieXRlcyAwMTIzNDU2Nzg5", None),
            (SECRET, Some(TS)),
        ]);
        assert_eq!(
            run(verify, &s, &ok(&STANDARD), BODY, TS),
            Ok(SecretSlot::Previous)
        );
        assert_eq!(
            run(verify, &s, &ok(&STANDARD), BODY, TS + 1),
            Err(SignatureFailure::Mismatch)
        );
    }

    #[test]
    fn rejects_bad_messages() {
        let s = secrets(&[(SECRET, None)]);
        let ts = TS.to_string();
        let check = |h: &HeaderMap, body: &[u8], now| run(verify, &s, h, body, now);
        assert_eq!(
            check(&ok(&STANDARD), BODY, TS + 301),
            Err(SignatureFailure::Stale)
        );
        assert_eq!(
            check(&ok(&STANDARD), BODY, TS - 301),
            Err(SignatureFailure::Stale)
        );
        assert_eq!(
            check(&ok(&STANDARD), br#"{"test": 2432232315}"#, TS),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            check(&headers(&STANDARD, "msg_other", &ts, SIGNATURE), BODY, TS),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            run(
                verify,
                &secrets(&[("whsec_d3Jvbmcgc2VjcmV0", None)]),
                &ok(&STANDARD),
                BODY,
                TS
            ),
            Err(SignatureFailure::Mismatch)
        );
        for bad in [
            "",
            "v1",
            "v1,",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
            "v1,!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=",
            "v1a,abc",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ] {
            assert_eq!(
                check(&headers(&STANDARD, ID, &ts, bad), BODY, TS),
                Err(SignatureFailure::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            check(&headers(&STANDARD, ID, "1614265330.5", SIGNATURE), BODY, TS),
            Err(SignatureFailure::Malformed)
        );
        assert_eq!(
            check(&headers(&STANDARD, "", &ts, SIGNATURE), BODY, TS),
            Err(SignatureFailure::Malformed)
        );
        // A mix of families is not accepted: webhook-id present means webhook-* headers only.
        let mut mixed = ok(&SVIX);
        mixed.insert(STANDARD.id, HeaderValue::from_static(ID));
        assert_eq!(
            check(&mixed, BODY, TS),
            Err(SignatureFailure::MissingHeader)
        );
        assert_eq!(
            check(&HeaderMap::new(), BODY, TS),
            Err(SignatureFailure::MissingHeader)
        );
        assert_eq!(
            run(verify, &[], &ok(&STANDARD), BODY, TS),
            Err(SignatureFailure::NoSecret)
        );
    }
}
