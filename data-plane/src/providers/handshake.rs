//! Provider handshakes, all answered here: a request that proves an endpoint exists instead of
//! delivering an event. It gets `200` with the provider's expected answer and publishes nothing
//! (docs/data-plane.md, "HTTP contract", step 5).
//!
//! - META: a `GET` with `hub.mode=subscribe`, the configured verify token and a `hub.challenge`,
//!   answered with the challenge as text (checked after the API key, before any body is read).
//! - SLACK: a signed `{"type":"url_verification","challenge":…}` POST, answered with
//!   `{"challenge":…}` (checked after the signature).

use bytes::Bytes;
use gateway_shared::Secret;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use subtle::ConstantTimeEq;

use crate::error::json_response;
use crate::routing::Route;

/// Longest Meta challenge echoed back (Meta sends a short number).
const MAX_CHALLENGE_LEN: usize = 512;

/// The answer to a provider handshake.
#[derive(Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Echo this challenge as `text/plain` (META).
    Text(String),
    /// Answer this JSON body (SLACK).
    Json(serde_json::Value),
}

impl Handshake {
    /// The `200` response.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        match self {
            Handshake::Json(answer) => json_response(StatusCode::OK, &answer),
            Handshake::Text(challenge) => {
                let mut resp = Response::new(Full::new(Bytes::from(challenge)));
                let h = resp.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                h.insert(
                    "x-content-type-options",
                    HeaderValue::from_static("nosniff"),
                );
                resp
            }
        }
    }
}

/// A META webhook's `GET` (its query without the path): the handshake to answer, or `None` (→ 403).
pub fn subscription(route: &Route, query: &str) -> Option<Handshake> {
    meta_subscription(query, route.secrets.verify_token.as_ref()).map(Handshake::Text)
}

/// A verified SLACK POST's body: the `url_verification` handshake to answer, or `None` for an event.
pub fn slack(body: &[u8]) -> Option<Handshake> {
    slack_url_verification(body).map(Handshake::Json)
}

/// The META GET handshake: with `hub.mode=subscribe`, a `hub.challenge` and a `hub.verify_token` equal
/// (constant time) to the configured token, the challenge to echo; otherwise `None` (→ 403).
fn meta_subscription(query: &str, verify_token: Option<&Secret<String>>) -> Option<String> {
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

/// The answer to a (verified) `url_verification` request: `{"challenge": …}`; `None` for any other body.
fn slack_url_verification(body: &[u8]) -> Option<serde_json::Value> {
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
        challenge: Option<serde_json::Value>,
    }
    // Cheap pre-check: ordinary events skip the extra parse.
    if !body.windows(16).any(|w| w == b"url_verification") {
        return None;
    }
    let probe: Probe<'_> = serde_json::from_slice(body).ok()?;
    match (probe.kind.as_deref(), probe.challenge) {
        (Some("url_verification"), Some(challenge @ serde_json::Value::String(_))) => {
            Some(serde_json::json!({ "challenge": challenge }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_handshake() {
        let token = Secret::new("my-verify-token".to_owned());
        let ok = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my-verify-token&flowxApiKey=k";
        assert_eq!(
            meta_subscription(ok, Some(&token)).as_deref(),
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
            assert_eq!(meta_subscription(bad, Some(&token)), None, "{bad}");
        }
        assert_eq!(
            meta_subscription(ok, None),
            None,
            "no verify token configured"
        );
        let encoded = "hub.mode=subscribe&hub.challenge=a%20b&hub.verify_token=my%2Dverify%2Dtoken";
        assert_eq!(
            meta_subscription(encoded, Some(&token)).as_deref(),
            Some("a b")
        );
    }

    #[test]
    fn url_verification_is_recognised_only_in_its_exact_shape() {
        let body = br#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        assert_eq!(
            slack_url_verification(body),
            Some(
                serde_json::json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
            )
        );
        assert_eq!(
            slack_url_verification(
                br#"{"type":"event_callback","event":{"text":"url_verification"}}"#
            ),
            None
        );
        assert_eq!(
            slack_url_verification(br#"{"type":"url_verification"}"#),
            None
        );
        assert_eq!(slack_url_verification(b"type=url_verification"), None);
    }
}
