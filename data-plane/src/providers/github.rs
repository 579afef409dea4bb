//! GITHUB: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`; the delivery id is
//! `X-GitHub-Delivery`. GitHub's scheme has no timestamp, so there is no staleness check.
//! <https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries>

use super::{hex_sha256, verify_body_hmac, SecretSlot, Signed};
use crate::error::SignatureFailure;

/// Signature header.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// A GUID per delivery, the same on redeliveries.
pub const DELIVERY_HEADER: &str = "x-github-delivery";

/// Checks a delivery's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>` with the
/// secret(s) valid at `now`: GitHub's scheme, which Meta uses too.
pub fn verify(req: &Signed<'_>) -> Result<SecretSlot, SignatureFailure> {
    verify_body_hmac(req, SIGNATURE_HEADER, |header| {
        hex_sha256(
            header
                .strip_prefix("sha256=")
                .ok_or(SignatureFailure::Malformed)?,
        )
    })
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;
    use crate::providers::test_secrets as secrets;
    use crate::providers::{one_header, run};

    // The test values of GitHub's "Validating webhook deliveries" page.
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn signed(sig: &str) -> HeaderMap {
        one_header(SIGNATURE_HEADER, sig)
    }

    #[test]
    fn accepts_githubs_documented_example() {
        let one = secrets(&[(SECRET, None)]);
        assert_eq!(
            run(verify, &one, &signed(SIGNATURE), BODY, 0),
            Ok(SecretSlot::Current)
        );
    }

    #[test]
    fn rotation_tells_which_secret_matched_until_the_window_ends() {
        let s = secrets(&[("the-new-secret", None), (SECRET, Some(100))]);
        assert_eq!(
            run(verify, &s, &signed(SIGNATURE), BODY, 100),
            Ok(SecretSlot::Previous)
        );
        assert_eq!(
            run(verify, &s, &signed(SIGNATURE), BODY, 101),
            Err(SignatureFailure::Mismatch)
        );
        let s = secrets(&[(SECRET, None), ("the-old-secret", Some(100))]);
        assert_eq!(
            run(verify, &s, &signed(SIGNATURE), BODY, 0),
            Ok(SecretSlot::Current)
        );
    }

    #[test]
    fn rejects_bad_deliveries() {
        let wrong = secrets(&[("wrong", None)]);
        let s = secrets(&[(SECRET, None)]);
        let check = |h: &HeaderMap, body: &[u8]| run(verify, &s, h, body, 0);
        assert_eq!(
            check(&signed(SIGNATURE), b"Hello, World?"),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            run(verify, &wrong, &signed(SIGNATURE), BODY, 0),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            check(&HeaderMap::new(), BODY),
            Err(SignatureFailure::MissingHeader)
        );
        for bad in [
            "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6",
            "sha256=",
            "sha256=xyz",
            "757107ea",
        ] {
            assert_eq!(
                check(&signed(bad), BODY),
                Err(SignatureFailure::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            run(verify, &[], &signed(SIGNATURE), BODY, 0),
            Err(SignatureFailure::NoSecret)
        );
    }
}
