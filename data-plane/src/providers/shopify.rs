//! SHOPIFY: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(app client secret, raw body)>`; the delivery
//! id is `X-Shopify-Webhook-Id`. The scheme has no timestamp, so there is no staleness check.
//! <https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook>

use super::{base64_sha256, verify_body_hmac, SecretSlot, Signed};
use crate::error::SignatureFailure;

/// Signature header.
pub const SIGNATURE_HEADER: &str = "x-shopify-hmac-sha256";
/// One id per webhook delivery, the same on retries.
pub const WEBHOOK_ID_HEADER: &str = "x-shopify-webhook-id";

/// Checks a Shopify webhook's signature with the secret(s) valid at `now`.
pub fn verify(req: &Signed<'_>) -> Result<SecretSlot, SignatureFailure> {
    verify_body_hmac(req, SIGNATURE_HEADER, base64_sha256)
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;
    use crate::providers::test_secrets as secrets;
    use crate::providers::{one_header, run};

    // Shopify publishes no fixed vector; computed independently with Python:
    //   base64.b64encode(hmac.new(SECRET, BODY, hashlib.sha256).digest())
    const SECRET: &str = "shpss_0123456789abcdef";
    const BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@doe.ca"}"#;
    const SIGNATURE: &str = "aBxDl7TIm+jKnZNAFIid6PatdSKxxrLF1u6Ndgukxp8=";

    fn signed(sig: &str) -> HeaderMap {
        one_header(SIGNATURE_HEADER, sig)
    }

    #[test]
    fn accepts_a_shopify_signature_and_a_previous_secret_in_its_window() {
        let one = secrets(&[(SECRET, None)]);
        assert_eq!(
            run(verify, &one, &signed(SIGNATURE), BODY, 0),
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
        let wrong = secrets(&[("wrong", None)]);
        let s = secrets(&[(SECRET, None)]);
        assert_eq!(
            run(verify, &s, &signed(SIGNATURE), b"{}", 0),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            run(verify, &wrong, &signed(SIGNATURE), BODY, 0),
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
