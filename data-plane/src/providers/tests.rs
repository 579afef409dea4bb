//! Cross-provider properties: no header value, however malformed, makes a check panic or pass, and
//! the secret matcher reports the slot that matched.

use gateway_shared::snapshot::SigningSecret;
use gateway_shared::{Provider, Secret};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::*;

const HEADERS: &[&str] = &[
    "x-hub-signature-256",
    "stripe-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-shopify-hmac-sha256",
    "x-slack-signature",
    "x-slack-request-timestamp",
];

fn secrets() -> Vec<SigningSecret> {
    [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "plain-text-secret",
    ]
    .into_iter()
    .map(|v| SigningSecret {
        value: Secret::new(v.to_owned()),
        not_after: None,
    })
    .collect()
}

/// Header values: arbitrary bytes a client can send, and near-misses of the real formats.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..120),
        "[tv0-9a-f=, ]{0,90}".prop_map(String::into_bytes),
        "(t=[0-9]{0,12},)?(v[01a]{1,2}[=,][0-9a-zA-Z+/=]{0,70} ?){0,4}"
            .prop_map(String::into_bytes),
        "(sha256=)?[0-9a-f]{60,68}".prop_map(String::into_bytes),
    ]
}

/// The signature check every provider module exports.
type Check = fn(&Signed<'_>) -> Result<SecretSlot, SignatureFailure>;

fn check_all(headers: &HeaderMap, body: &[u8], now: i64) {
    let s = secrets();
    let checks: [Check; 6] = [
        github::verify,
        stripe::verify,
        standard_webhooks::verify,
        shopify::verify,
        slack::verify,
        meta::verify,
    ];
    for check in checks {
        assert!(run(check, &s, headers, body, now).is_err());
    }
    for p in [
        Provider::Github,
        Provider::StandardWebhooks,
        Provider::Shopify,
        Provider::Generic,
    ] {
        let _ = delivery::delivery_id(
            p,
            headers,
            &gateway_shared::envelope::Payload::Tree(serde_json::Value::Null),
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn malformed_headers_never_panic_or_verify(
        values in proptest::collection::vec(value(), HEADERS.len()),
        present in proptest::collection::vec(any::<bool>(), HEADERS.len()),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        now in any::<i64>(),
    ) {
        let mut headers = HeaderMap::new();
        for ((name, v), keep) in HEADERS.iter().zip(&values).zip(&present) {
            if let (true, Ok(v)) = (*keep, HeaderValue::from_bytes(v)) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
        check_all(&headers, &body, now);
    }
}

#[test]
fn the_matcher_names_the_slot_and_tries_every_candidate() {
    let key = |v: &str| SigningSecret {
        value: Secret::new(v.to_owned()),
        not_after: None,
    };
    let tag = |secret: &str| -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any length");
        mac.update(b"body");
        mac.finalize().into_bytes().into()
    };
    let both = [key("new"), key("old")];
    let check = |candidates: &[[u8; 32]]| {
        any_hmac_sha256_matches(&both, 0, text_key, &[b"body"], candidates)
    };
    assert_eq!(check(&[tag("new")]), Ok(SecretSlot::Current));
    assert_eq!(check(&[tag("old")]), Ok(SecretSlot::Previous));
    assert_eq!(check(&[[0; 32], tag("old")]), Ok(SecretSlot::Previous));
    assert_eq!(check(&[tag("old"), tag("new")]), Ok(SecretSlot::Current));
    assert_eq!(check(&[tag("other")]), Err(SignatureFailure::Mismatch));
    assert_eq!(check(&[]), Err(SignatureFailure::Mismatch));
}
