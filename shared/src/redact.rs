//! Masking of request headers before they leave the data plane (failed-trigger reports) and again
//! before the control plane stores them: credentials, provider signatures and the webhook API key
//! never reach storage or an API response.

use std::borrow::Cow;

/// What a masked value is replaced with.
pub const MASK: &str = "[masked]";

/// Headers whose whole value is a credential or a signature (lower case).
const SENSITIVE: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-slack-signature",
    "x-hub-signature",
    "x-hub-signature-256",
    "stripe-signature",
    "webhook-signature",
    "svix-signature",
    "x-shopify-hmac-sha256",
];

/// The query parameter that carries a webhook's API key.
const API_KEY_PARAM: &str = "flowxapikey=";

/// Whether a header's whole value must be masked. `name` in any case.
fn is_sensitive_header(name: &str) -> bool {
    SENSITIVE.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// The value to store for header `name`: [`MASK`] for credentials and signatures; otherwise the
/// value with any `flowxApiKey=…` parameter value masked (ingress proxies copy the request URL
/// into headers such as `X-Original-URI` or `Referer`).
pub fn mask_header_value<'v>(name: &str, value: &'v str) -> Cow<'v, str> {
    if is_sensitive_header(name) {
        return Cow::Borrowed(MASK);
    }
    let lower = value.to_ascii_lowercase();
    if !lower.contains(API_KEY_PARAM) {
        return Cow::Borrowed(value);
    }
    // ASCII lower-casing keeps byte offsets, so positions found in `lower` index `value`.
    let mut out = String::with_capacity(value.len());
    let mut rest = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(API_KEY_PARAM) {
        let start = search + found + API_KEY_PARAM.len();
        let end = lower[start..]
            .find(['&', '#', ' ', ';'])
            .map_or(lower.len(), |e| start + e);
        out.push_str(&value[rest..start]);
        out.push_str(MASK);
        rest = end;
        search = end;
    }
    out.push_str(&value[rest..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_signatures_are_masked_whatever_the_case() {
        for name in [
            "Authorization",
            "COOKIE",
            "X-Slack-Signature",
            "stripe-signature",
            "Webhook-Signature",
            "X-Shopify-Hmac-Sha256",
        ] {
            assert_eq!(mask_header_value(name, "secret-value"), MASK, "{name}");
        }
        assert_eq!(
            mask_header_value("Content-Type", "application/json"),
            "application/json"
        );
    }

    #[test]
    fn api_keys_inside_other_headers_are_masked() {
        let v = "/webhooks/incoming/a/b?x=1&flowxApiKey=s3cr3t&y=2";
        assert_eq!(
            mask_header_value("X-Original-URI", v),
            format!("/webhooks/incoming/a/b?x=1&flowxApiKey={MASK}&y=2")
        );
        let twice = "https://h/p?FLOWXAPIKEY=one#frag flowxApiKey=two";
        let masked = mask_header_value("Referer", twice);
        assert!(
            !masked.contains("one") && !masked.contains("two"),
            "{masked}"
        );
        assert_eq!(
            mask_header_value("Referer", "flowxApiKey="),
            format!("flowxApiKey={MASK}")
        );
    }
}
