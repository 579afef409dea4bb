//! The signed body of an outbound action call (docs/actions.md, "Signature"): one implementation for the
//! control plane's registration test request and the dispatcher's calls.
//!
//! `signature` = lowercase hex HMAC-SHA256(key, canonical JSON of the request object without
//! `signature`). The body is the canonical JSON of the whole object, `signature` included, so its
//! other keys arrive in sorted order and a receiver that re-serializes the parsed object after
//! removing `signature` recomputes exactly the signed bytes.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::canonical_json;

/// The header naming the HMAC key a call was signed with.
pub const KEY_ID_HEADER: &str = "X-Signature-Key-Id";

/// A call body ready to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCall {
    /// `application/json` body, canonical, `signature` included.
    pub body: String,
    /// The lowercase hex signature that is also inside `body`.
    pub signature: String,
}

/// Signs the call `{"action_name","parameters","timestamp"}` (plus `"test":true` for the
/// registration test request) with `key` (the key text's UTF-8 bytes).
pub fn sign_call(
    key: &[u8],
    action_name: &str,
    parameters: &Value,
    timestamp_unix: i64,
    test: bool,
) -> SignedCall {
    let mut object = Map::new();
    object.insert("action_name".into(), Value::String(action_name.into()));
    object.insert("parameters".into(), parameters.clone());
    object.insert("timestamp".into(), Value::from(timestamp_unix));
    if test {
        object.insert("test".into(), Value::Bool(true));
    }
    sign_object(key, object)
}

/// Signs any request object (its `signature` member, if present, is replaced).
pub fn sign_object(key: &[u8], mut object: Map<String, Value>) -> SignedCall {
    object.remove("signature");
    let unsigned = canonical_json::to_string(&Value::Object(object.clone()));
    let signature = hex::encode(hmac_sha256(key, unsigned.as_bytes()));
    object.insert("signature".into(), Value::String(signature.clone()));
    SignedCall {
        body: canonical_json::to_string(&Value::Object(object)),
        signature,
    }
}

/// Checks a received body the way a receiver does: parse, remove `signature`, canonicalize, compare
/// in constant time. Used by the local demo action server's tests and by tests of the dispatcher.
pub fn verify_body(key: &[u8], body: &[u8]) -> bool {
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let Some(Value::String(given)) = object.remove("signature") else {
        return false;
    };
    let Ok(given) = hex::decode(given) else {
        return false;
    };
    let unsigned = canonical_json::to_string(&Value::Object(object));
    let mut mac = new_mac(key);
    mac.update(unsigned.as_bytes());
    mac.verify_slice(&given).is_ok()
}

fn new_mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 accepts every key length"),
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = new_mac(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;
    use std::process::{Command, Stdio};

    const KEY: &[u8] = b"4f9c1e0d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f";

    /// Flowent's documented receiver check, run by a real python3 process on the bytes produced here.
    const PYTHON_VERIFIER: &str = r#"
import hashlib, hmac, json, sys
key = sys.argv[1].encode()
ok = []
for line in sys.stdin.read().splitlines():
    payload = json.loads(line)
    received = payload.pop("signature")
    expected = hmac.new(key, json.dumps(payload, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()
    ok.append("ok" if hmac.compare_digest(received, expected) else "bad")
print(" ".join(ok))
"#;

    fn python_verifies(bodies: &[String]) -> String {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(PYTHON_VERIFIER)
            .arg(std::str::from_utf8(KEY).expect("ascii key"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed to run this test");
        let mut stdin = child.stdin.take().expect("stdin");
        for body in bodies {
            writeln!(stdin, "{body}").expect("write");
        }
        drop(stdin);
        let out = child.wait_with_output().expect("python3 ran");
        assert!(out.status.success(), "python3 failed");
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    }

    #[test]
    fn flowents_python_verifier_accepts_our_bytes() {
        let bodies = [
            sign_call(KEY, "greet", &json!({"name": "Zoë Ångström 😀"}), 1767225600, false),
            sign_call(
                KEY,
                "crm_update",
                &json!({"contact": {"tags": ["vip", "<b>&co"], "address": {"zip": "0101", "city": "Cluj"}}}),
                1767225600,
                false,
            ),
            sign_call(KEY, "charge", &json!({"amount": 299.99, "qty": 3, "ratio": 1e-7}), 1767225600, false),
            sign_call(KEY, "send_email", &json!({}), 1767225600, true),
        ]
        .map(|c| c.body);
        assert_eq!(python_verifies(&bodies), "ok ok ok ok");

        // And it notices a change: the verifier is not a rubber stamp.
        let tampered = bodies[2].replace("299.99", "299.98");
        assert_eq!(python_verifies(&[tampered]), "bad");
    }

    #[test]
    fn test_request_worked_example() {
        let call = sign_call(KEY, "send_email", &json!({}), 1767225600, true);
        assert_eq!(
            call.body,
            format!(
                r#"{{"action_name":"send_email","parameters":{{}},"signature":"{}","test":true,"timestamp":1767225600}}"#,
                call.signature
            )
        );
        let unsigned =
            r#"{"action_name":"send_email","parameters":{},"test":true,"timestamp":1767225600}"#;
        assert_eq!(
            call.signature,
            hex::encode(hmac_sha256(KEY, unsigned.as_bytes()))
        );
        assert_eq!(call.signature.len(), 64);
        assert!(call
            .signature
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    }

    /// The worked examples of docs/actions.md ("Canonical JSON"): the signed bytes and the
    /// signature with the key `example-key-0123456789abcdef`, so a reader can check a verifier.
    #[test]
    fn the_documented_worked_examples() {
        const DOC_KEY: &[u8] = b"example-key-0123456789abcdef";
        let ts = 1767225600;
        for (name, parameters, test, signed, signature) in [
            (
                "send_email",
                json!({"to": "ops@example.com"}),
                false,
                r#"{"action_name":"send_email","parameters":{"to":"ops@example.com"},"timestamp":1767225600}"#,
                "97a8986ed910dd8b5258317e90aabf6c471b667f043d6e97d0ac8bfaadf99e81",
            ),
            (
                "greet",
                json!({"name": "Zoë 😀"}),
                false,
                r#"{"action_name":"greet","parameters":{"name":"Zo\u00eb \ud83d\ude00"},"timestamp":1767225600}"#,
                "49c1a7f4be7632e2bb90622c2ccf596f0f176c6c3200df6046b79e9eceb44a9d",
            ),
            (
                "crm_update",
                json!({"contact": {"name": "Ana", "tags": ["vip", "<b>&co"], "address": {"zip": "0101", "city": "Cluj"}}}),
                false,
                r#"{"action_name":"crm_update","parameters":{"contact":{"address":{"city":"Cluj","zip":"0101"},"name":"Ana","tags":["vip","<b>&co"]}},"timestamp":1767225600}"#,
                "a831bd51ff8894f03ee098b52185798ec85f35ee7e8e30e45903f5d88a49ae1c",
            ),
            (
                "charge",
                json!({"amount": 299.99, "qty": 3}),
                false,
                r#"{"action_name":"charge","parameters":{"amount":299.99,"qty":3},"timestamp":1767225600}"#,
                "8c66b278fb5b0b74c06d571b2d4c2800dc14df2102745de205da33ed9b9db1ea",
            ),
            (
                "send_email",
                json!({}),
                true,
                r#"{"action_name":"send_email","parameters":{},"test":true,"timestamp":1767225600}"#,
                "2c5fb9393856d94f8b7e26db2cdf5bea1efe236e520d13dbe481f3fbe1357e9f",
            ),
        ] {
            let call = sign_call(DOC_KEY, name, &parameters, ts, test);
            assert_eq!(call.signature, signature, "{name}");
            assert_eq!(
                hex::encode(hmac_sha256(DOC_KEY, signed.as_bytes())),
                signature
            );
            // The body is the signed bytes with `signature` inserted in its sorted place.
            let mut body: Value = serde_json::from_str(signed).expect("json");
            body["signature"] = Value::String(signature.to_owned());
            assert_eq!(call.body, canonical_json::to_string(&body), "{name}");
        }
    }

    #[test]
    fn verify_body_accepts_ours_and_rejects_changes() {
        let call = sign_call(KEY, "greet", &json!({"name": "Ana"}), 1, false);
        assert!(verify_body(KEY, call.body.as_bytes()));
        assert!(!verify_body(b"other key", call.body.as_bytes()));
        assert!(!verify_body(
            KEY,
            call.body.replace("Ana", "Ann").as_bytes()
        ));
        assert!(!verify_body(KEY, b"not json"));
        assert!(!verify_body(KEY, br#"{"action_name":"greet"}"#));
    }
}
