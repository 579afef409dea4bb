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
/// value with the API key masked ([`mask_api_key`]).
pub fn mask_header_value<'v>(name: &str, value: &'v str) -> Cow<'v, str> {
    if is_sensitive_header(name) {
        return Cow::Borrowed(MASK);
    }
    mask_api_key(value)
}

/// `value` without the webhook API key: ingress proxies copy the request URL into headers such as
/// `X-Original-URI` or `Referer`. Each `flowxApiKey=…` (any case) has its value replaced by
/// [`MASK`]; a value that still names the parameter in another spelling (percent-encoded, once or
/// more, e.g. `flowx%41piKey=` or `flowxApiKey%3D…`) becomes [`MASK`] as a whole.
pub fn mask_api_key(value: &str) -> Cow<'_, str> {
    // The common case, without an allocation: neither the name nor any percent-encoding.
    if !value.contains('%') && find_ignore_case(value.as_bytes(), API_KEY_NAME).is_none() {
        return Cow::Borrowed(value);
    }
    let masked = mask_plain(value);
    if still_names_the_key(&masked) {
        Cow::Borrowed(MASK)
    } else {
        masked
    }
}

/// The parameter name without its `=`, lower case.
const API_KEY_NAME: &[u8] = b"flowxapikey";

/// Whether `value`, percent-decoded up to four times, names the API key parameter anywhere other
/// than in an already masked `flowxApiKey=[masked]`.
fn still_names_the_key(value: &str) -> bool {
    const MASKED_VALUE: &[u8] = b"=[masked]";
    let mut current: Cow<'_, [u8]> = Cow::Borrowed(value.as_bytes());
    for _ in 0..5 {
        let mut from = 0;
        while let Some(at) = find_ignore_case(&current[from..], API_KEY_NAME) {
            let after = from + at + API_KEY_NAME.len();
            if !current[after..].starts_with(MASKED_VALUE) {
                return true;
            }
            from = after;
        }
        let decoded: Cow<'_, [u8]> = percent_encoding::percent_decode(&current).into();
        if decoded == current {
            return false;
        }
        current = Cow::Owned(decoded.into_owned());
    }
    true
}

/// Where `needle` (lower case) first occurs in `hay`, ignoring ASCII case.
fn find_ignore_case(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Masks the value of every plain `flowxApiKey=` (any case).
fn mask_plain(value: &str) -> Cow<'_, str> {
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
    fn api_keys_in_any_percent_encoded_spelling_mask_the_whole_value() {
        for v in [
            "/p?flowx%41piKey=s3cr3t",
            "flowxApiKey%3Ds3cr3t",
            "/p?flowx%2541piKey%253Ds3cr3t",
            "/p?%66%6C%6F%77%78%41%70%69%4B%65%79=s3cr3t",
        ] {
            assert_eq!(mask_api_key(v), MASK, "{v}");
        }
        assert_eq!(
            mask_api_key("/p?flowxApiKey=%73%33&x=1"),
            format!("/p?flowxApiKey={MASK}&x=1"),
            "an encoded value behind the plain name is masked like any value"
        );
        assert_eq!(mask_api_key("/p?x=%41%42"), "/p?x=%41%42");
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
