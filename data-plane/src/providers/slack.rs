//! SLACK: `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:{ts}:{raw body}")>` with
//! `X-Slack-Request-Timestamp` within five minutes of now. The `url_verification` handshake is
//! answered in `handshake.rs`.
//! <https://api.slack.com/authentication/verifying-requests-from-slack>

use super::{
    any_hmac_sha256_matches, check_timestamp, header_text, hex_sha256, require_live_secret,
    text_key, SecretSlot, Signed,
};
use crate::error::SignatureFailure;

/// Signature header.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// Timestamp header (unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Largest accepted clock difference either way, in seconds.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// Checks the signature of a Slack request at `now` (unix seconds).
pub fn verify(req: &Signed<'_>) -> Result<SecretSlot, SignatureFailure> {
    let (secrets, headers, body, now) = req.parts();
    // Secret first: "no configured secret" is a 401 even when the headers are absent.
    require_live_secret(secrets, now)?;
    let ts_text = header_text(headers, TIMESTAMP_HEADER)?;
    let signature = header_text(headers, SIGNATURE_HEADER)?;
    check_timestamp(ts_text, now, TOLERANCE_SECS)?;
    let hex = signature
        .strip_prefix("v0=")
        .ok_or(SignatureFailure::Malformed)?;
    let expected = hex_sha256(hex)?;
    any_hmac_sha256_matches(
        secrets,
        now,
        text_key,
        &[b"v0:", ts_text.as_bytes(), b":", body],
        &[expected],
    )
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use http::HeaderValue;

    use super::*;
    use crate::providers::run;
    use crate::providers::test_secrets as secrets;

    // The example of Slack's "Verifying requests from Slack" page.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: i64 = 1_531_420_618;
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn headers(ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(TIMESTAMP_HEADER, HeaderValue::from_str(ts).expect("ascii"));
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(sig).expect("ascii"));
        h
    }

    #[test]
    fn accepts_slacks_documented_example() {
        let one = secrets(&[(SECRET, None)]);
        let h = headers(&TS.to_string(), SIGNATURE);
        assert_eq!(
            run(verify, &one, &h, BODY.as_bytes(), TS),
            Ok(SecretSlot::Current)
        );
        // within the window either way
        assert_eq!(
            run(verify, &one, &h, BODY.as_bytes(), TS + 300),
            Ok(SecretSlot::Current)
        );
        assert_eq!(
            run(verify, &one, &h, BODY.as_bytes(), TS - 300),
            Ok(SecretSlot::Current)
        );
    }

    #[test]
    fn a_previous_secret_in_its_grace_window_still_verifies() {
        let s = secrets(&[("new-secret", None), (SECRET, Some(TS))]);
        let h = headers(&TS.to_string(), SIGNATURE);
        assert_eq!(
            run(verify, &s, &h, BODY.as_bytes(), TS),
            Ok(SecretSlot::Previous)
        );
        let s = secrets(&[("new-secret", None), (SECRET, Some(TS - 1))]);
        assert_eq!(
            run(verify, &s, &h, BODY.as_bytes(), TS),
            Err(SignatureFailure::Mismatch)
        );
    }

    #[test]
    fn rejects_every_kind_of_bad_request() {
        let s = secrets(&[(SECRET, None)]);
        let ts = TS.to_string();
        let body = BODY.as_bytes();
        let check = |h: &HeaderMap, body: &[u8], now| run(verify, &s, h, body, now);
        assert_eq!(
            check(&headers(&ts, SIGNATURE), body, TS + 301),
            Err(SignatureFailure::Stale)
        );
        assert_eq!(
            check(&headers(&ts, SIGNATURE), body, TS - 301),
            Err(SignatureFailure::Stale)
        );
        assert_eq!(
            check(&headers(&ts, SIGNATURE), b"tampered", TS),
            Err(SignatureFailure::Mismatch)
        );
        let other_ts = (TS + 1).to_string();
        assert_eq!(
            check(&headers(&other_ts, SIGNATURE), body, TS),
            Err(SignatureFailure::Mismatch)
        );
        let no_prefix = SIGNATURE.trim_start_matches("v0=");
        assert_eq!(
            check(&headers(&ts, no_prefix), body, TS),
            Err(SignatureFailure::Malformed)
        );
        assert_eq!(
            check(&headers(&ts, "v0=zz"), body, TS),
            Err(SignatureFailure::Malformed)
        );
        assert_eq!(
            check(&headers(&ts, "v0="), body, TS),
            Err(SignatureFailure::Malformed)
        );
        for bad_ts in ["", "-5", "1e9", "99999999999999999999", " "] {
            assert!(
                check(&headers(bad_ts, SIGNATURE), body, TS).is_err(),
                "{bad_ts:?}"
            );
        }
        assert_eq!(
            check(&HeaderMap::new(), body, TS),
            Err(SignatureFailure::MissingHeader)
        );
        let mut only_sig = HeaderMap::new();
        only_sig.insert(SIGNATURE_HEADER, HeaderValue::from_static(SIGNATURE));
        assert_eq!(
            check(&only_sig, body, TS),
            Err(SignatureFailure::MissingHeader)
        );
        let mut non_ascii = headers(&ts, SIGNATURE);
        non_ascii.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_bytes(b"v0=\xff\xfe").expect("opaque bytes"),
        );
        assert_eq!(
            check(&non_ascii, body, TS),
            Err(SignatureFailure::Malformed)
        );
        assert_eq!(
            run(verify, &[], &headers(&ts, SIGNATURE), body, TS),
            Err(SignatureFailure::NoSecret)
        );
    }
}
