//! GITHUB: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`; the delivery id is
//! `X-GitHub-Delivery`. GitHub's scheme has no timestamp, so there is no staleness check.
//! <https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries>

use gateway_shared::snapshot::SigningSecret;
use http::HeaderMap;

use super::SecretSlot;
use crate::error::SignatureFailure;

/// Signature header.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// A GUID per delivery, the same on redeliveries.
pub const DELIVERY_HEADER: &str = "x-github-delivery";

/// Checks a GitHub delivery's signature with the secret(s) valid at `now`.
pub fn verify(
    secrets: &[SigningSecret],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<SecretSlot, SignatureFailure> {
    super::verify_hub_signature_256(secrets, headers, body, now)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::providers::test_secrets as secrets;

    // The test values of GitHub's "Validating webhook deliveries" page.
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn signed(sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(sig).expect("ascii"));
        h
    }

    #[test]
    fn accepts_githubs_documented_example() {
        assert_eq!(
            verify(&secrets(&[(SECRET, None)]), &signed(SIGNATURE), BODY, 0),
            Ok(SecretSlot::Current)
        );
    }

    #[test]
    fn rotation_tells_which_secret_matched_until_the_window_ends() {
        let s = secrets(&[("the-new-secret", None), (SECRET, Some(100))]);
        assert_eq!(
            verify(&s, &signed(SIGNATURE), BODY, 100),
            Ok(SecretSlot::Previous)
        );
        assert_eq!(
            verify(&s, &signed(SIGNATURE), BODY, 101),
            Err(SignatureFailure::Mismatch)
        );
        let s = secrets(&[(SECRET, None), ("the-old-secret", Some(100))]);
        assert_eq!(
            verify(&s, &signed(SIGNATURE), BODY, 0),
            Ok(SecretSlot::Current)
        );
    }

    #[test]
    fn rejects_bad_deliveries() {
        let s = secrets(&[(SECRET, None)]);
        let check = |h: &HeaderMap, body: &[u8]| verify(&s, h, body, 0);
        assert_eq!(
            check(&signed(SIGNATURE), b"Hello, World?"),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            verify(&secrets(&[("wrong", None)]), &signed(SIGNATURE), BODY, 0),
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
            verify(&[], &signed(SIGNATURE), BODY, 0),
            Err(SignatureFailure::NoSecret)
        );
    }
}
