//! META (WhatsApp, Messenger, Instagram, Threads): `X-Hub-Signature-256: sha256=<hex
//! HMAC-SHA256(app secret, raw body)>` on every POST. The GET subscription handshake is answered in
//! `handshake.rs`.
//! <https://developers.facebook.com/docs/graph-api/webhooks/getting-started>

/// The check of a POST's signature: the same scheme as GitHub's.
pub use super::github::verify;

#[cfg(test)]
mod tests {

    use gateway_shared::snapshot::SigningSecret;
    use gateway_shared::Secret;
    use http::HeaderMap;

    use super::*;
    use crate::error::SignatureFailure;
    use crate::providers::github::SIGNATURE_HEADER;
    use crate::providers::{one_header, run};
    use crate::rotation::SecretSlot;

    // Computed independently with Python:
    //   hmac.new(b"meta-app-secret-0123", BODY, hashlib.sha256).hexdigest()
    const APP_SECRET: &str = "meta-app-secret-0123";
    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[{"id":"E1"}]}"#;
    const SIGNATURE: &str =
        "sha256=50f698cdf24f761f48b3b09f8d3f6885bfe673056becb9a0c65c8453dff3ffea";

    fn secrets() -> Vec<SigningSecret> {
        vec![SigningSecret {
            value: Secret::new(APP_SECRET.to_owned()),
            not_after: None,
        }]
    }

    fn signed(sig: &str) -> HeaderMap {
        one_header(SIGNATURE_HEADER, sig)
    }

    #[test]
    fn accepts_an_independently_computed_signature() {
        assert_eq!(
            run(verify, &secrets(), &signed(SIGNATURE), BODY, 0),
            Ok(SecretSlot::Current)
        );
        assert_eq!(
            run(
                verify,
                &secrets(),
                &signed(&SIGNATURE.to_uppercase().replace("SHA256=", "sha256=")),
                BODY,
                0
            ),
            Ok(SecretSlot::Current)
        );
    }

    #[test]
    fn rejects_bad_posts() {
        let s = secrets();
        assert_eq!(
            run(verify, &s, &signed(SIGNATURE), b"{}", 0),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            run(verify, &s, &HeaderMap::new(), BODY, 0),
            Err(SignatureFailure::MissingHeader)
        );
        assert_eq!(
            run(verify, &s, &signed("sha1=abcd"), BODY, 0),
            Err(SignatureFailure::Malformed)
        );
        assert_eq!(
            run(verify, &s, &signed("sha256=12"), BODY, 0),
            Err(SignatureFailure::Malformed)
        );
        assert_eq!(
            run(verify, &[], &signed(SIGNATURE), BODY, 0),
            Err(SignatureFailure::NoSecret)
        );
    }
}
