//! SHOPIFY: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(app client secret, raw body)>`; the delivery
//! id is `X-Shopify-Webhook-Id`. The scheme has no timestamp, so there is no staleness check.
//! <https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook>

use super::{
    any_hmac_sha256_matches, base64_sha256, header_text, require_live_secret, text_key, SecretSlot,
    Signed,
};
use crate::error::SignatureFailure;

/// Signature header.
pub const SIGNATURE_HEADER: &str = "x-shopify-hmac-sha256";
/// One id per webhook delivery, the same on retries.
pub const WEBHOOK_ID_HEADER: &str = "x-shopify-webhook-id";

/// Checks a Shopify webhook's signature with the secret(s) valid at `now`.
pub fn verify(req: &Signed<'_>) -> Result<SecretSlot, SignatureFailure> {
    let (secrets, headers, body, now) = req.parts();
    require_live_secret(secrets, now)?;
    let expected = base64_sha256(header_text(headers, SIGNATURE_HEADER)?)?;
    any_hmac_sha256_matches(secrets, now, text_key, &[body], &[expected])
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use http::HeaderValue;

    use super::*;
    use crate::providers::run;
    use crate::providers::test_secrets as secrets;

    // Shopify publishes no fixed vector; computed independently with Python:
    //   base64.b64encode(hmac.new(SECRET, BODY, hashlib.sha256).digest())
    const SECRET: &str = "shpss_0123456789abcdef";
    const BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@doe.ca"}"#;
    const SIGNATURE: &str = "aBxDl7TIm+jKnZNAFIid6PatdSKxxrLF1u6Ndgukxp8=";

    fn signed(sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(sig).expect("ascii"));
        h
    }

    #[test]
    fn accepts_a_shopify_signature_and_a_previous_secret_in_its_window() {
        assert_eq!(
            run(
                verify,
                &secrets(&[(SECRET, None)]),
                &signed(SIGNATURE),
                BODY,
                0
            ),
            Ok(SecretSlot::Current)
        );
        let rotated = secrets(&[("shpss_new", None), (SECRET, Some(10))]);
        assert_eq!(
            run(verify, &rotated, &signed(SIGNATURE), BODY, 10),
            Ok(SecretSlot::Previous)
        );
        assert_eq!(
            run(verify, &rotated, &signed(SIGNATURE), BODY, 11),
            Err(SignatureFailure::Mismatch)
        );
    }

    #[test]
    fn rejects_bad_webhooks() {
        let s = secrets(&[(SECRET, None)]);
        assert_eq!(
            run(verify, &s, &signed(SIGNATURE), b"{}", 0),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            run(
                verify,
                &secrets(&[("wrong", None)]),
                &signed(SIGNATURE),
                BODY,
                0
            ),
            Err(SignatureFailure::Mismatch)
        );
        for bad in [
            "",
            "aBxDl7TIm+jKnZNAFIid6PatdSKxxrLF1u6Ndgukxp8",
            "aBxDl7TIm-jKnZNAFIid6PatdSKxxrLF1u6Ndgukxp8=",
            "681c4397b4c89be8ca9d93401488",
            "sha256=aBxDl7TIm+jKnZNAFIid6PatdSKxxrLF1u6Ndgukxp8=",
        ] {
            assert_eq!(
                run(verify, &s, &signed(bad), BODY, 0),
                Err(SignatureFailure::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            run(verify, &s, &HeaderMap::new(), BODY, 0),
            Err(SignatureFailure::MissingHeader)
        );
        assert_eq!(
            run(verify, &[], &signed(SIGNATURE), BODY, 0),
            Err(SignatureFailure::NoSecret)
        );
    }
}
