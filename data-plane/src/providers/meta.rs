//! META (WhatsApp, Messenger, Instagram, Threads): the GET subscription handshake with the verify
//! token, and `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>` on every POST.
//! <https://developers.facebook.com/docs/graph-api/webhooks/getting-started>

use gateway_shared::snapshot::SigningSecret;
use gateway_shared::Secret;
use http::HeaderMap;
use subtle::ConstantTimeEq;

use super::SecretSlot;
use crate::error::SignatureFailure;

/// Signature header of POSTs.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// Longest challenge echoed back (Meta sends a short number).
const MAX_CHALLENGE_LEN: usize = 512;

/// Checks a POST's signature with the app secret(s) valid at `now`.
pub fn verify_post(
    secrets: &[SigningSecret],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<SecretSlot, SignatureFailure> {
    // The same scheme as GitHub's.
    super::verify_hub_signature_256(secrets, headers, body, now)
}

/// The GET handshake: with `hub.mode=subscribe`, a `hub.challenge` and a `hub.verify_token` equal
/// (constant time) to the configured token, the challenge to echo; otherwise `None` (→ 403).
pub fn verify_subscription(query: &str, verify_token: Option<&Secret<String>>) -> Option<String> {
    let expected = verify_token?.expose();
    let (mut mode, mut challenge, mut token) = (None, None, None);
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "hub.mode" => mode = Some(value),
            "hub.challenge" => challenge = Some(value),
            "hub.verify_token" => token = Some(value),
            _ => {}
        }
    }
    let token_ok: bool = token
        .map(|t| t.as_bytes().ct_eq(expected.as_bytes()).into())
        .unwrap_or(false);
    let challenge = challenge.filter(|c| !c.is_empty() && c.len() <= MAX_CHALLENGE_LEN)?;
    (mode.as_deref() == Some("subscribe") && token_ok && !expected.is_empty())
        .then(|| challenge.into_owned())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

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
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(sig).expect("ascii"));
        h
    }

    #[test]
    fn accepts_an_independently_computed_signature() {
        assert_eq!(
            verify_post(&secrets(), &signed(SIGNATURE), BODY, 0),
            Ok(SecretSlot::Current)
        );
        assert_eq!(
            verify_post(
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
            verify_post(&s, &signed(SIGNATURE), b"{}", 0),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            verify_post(&s, &HeaderMap::new(), BODY, 0),
            Err(SignatureFailure::MissingHeader)
        );
        assert_eq!(
            verify_post(&s, &signed("sha1=abcd"), BODY, 0),
            Err(SignatureFailure::Malformed)
        );
        assert_eq!(
            verify_post(&s, &signed("sha256=12"), BODY, 0),
            Err(SignatureFailure::Malformed)
        );
        assert_eq!(
            verify_post(&[], &signed(SIGNATURE), BODY, 0),
            Err(SignatureFailure::NoSecret)
        );
    }

    #[test]
    fn subscription_handshake() {
        let token = Secret::new("my-verify-token".to_owned());
        let ok = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my-verify-token&flowxApiKey=k";
        assert_eq!(
            verify_subscription(ok, Some(&token)).as_deref(),
            Some("1158201444")
        );
        for bad in [
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong",
            "hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=my-verify-token",
            "hub.mode=subscribe&hub.verify_token=my-verify-token",
            "hub.mode=subscribe&hub.challenge=&hub.verify_token=my-verify-token",
            "hub.mode=subscribe&hub.challenge=1",
            "",
        ] {
            assert_eq!(verify_subscription(bad, Some(&token)), None, "{bad}");
        }
        assert_eq!(
            verify_subscription(ok, None),
            None,
            "no verify token configured"
        );
        let encoded = "hub.mode=subscribe&hub.challenge=a%20b&hub.verify_token=my%2Dverify%2Dtoken";
        assert_eq!(
            verify_subscription(encoded, Some(&token)).as_deref(),
            Some("a b")
        );
    }
}
