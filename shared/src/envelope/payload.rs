//! Step 6 of docs/data-plane.md ("HTTP contract"): turning a request body into the envelope's
//! `payload` by its content type, without building a JSON tree unless one is needed.

use serde::Serialize;
use serde_json::Value;

/// A declared-JSON body that does not parse; the text says where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON: {0}")]
pub struct InvalidJson(pub String);

/// The envelope's `payload`: what step 6 (payload) made of the body.
#[derive(Debug)]
pub enum Payload<'a> {
    /// Valid JSON, carried exactly as it was sent: key order, number formatting and all. It is
    /// parsed into a tree only when something must look inside ([`Payload::to_value`]).
    Json(&'a serde_json::value::RawValue),
    /// A body decoded into a tree (a form-encoded body becomes an object).
    Tree(Value),
    /// Anything else, as a string.
    Text(std::borrow::Cow<'a, str>),
}

impl Serialize for Payload<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Json(raw) => raw.serialize(s),
            Payload::Tree(value) => value.serialize(s),
            Payload::Text(text) => text.serialize(s),
        }
    }
}

impl Payload<'_> {
    /// The payload as a JSON tree (parsed now for a JSON body), for correlation paths and ids
    /// inside the payload.
    pub fn to_value(&self) -> std::borrow::Cow<'_, Value> {
        use std::borrow::Cow;
        match self {
            Payload::Json(raw) => {
                Cow::Owned(serde_json::from_str(raw.get()).unwrap_or(Value::Null))
            }
            Payload::Tree(value) => Cow::Borrowed(value),
            Payload::Text(text) => Cow::Owned(Value::String(text.to_string())),
        }
    }

    /// The scalar at a correlation path (step 7); a JSON body is searched as text, without building a
    /// tree of it ([`CorrelationPath::resolve_json`]).
    pub fn resolve(
        &self,
        path: &crate::correlation::CorrelationPath,
    ) -> Result<String, crate::correlation::ResolveError> {
        match self {
            Payload::Json(raw) => path.resolve_json(raw.get()),
            other => path.resolve(&other.to_value()),
        }
    }

    /// The top-level string member `key` of a JSON object payload, read without building a tree.
    pub fn top_level_str(&self, key: &str) -> Option<String> {
        match self {
            Payload::Json(raw) => {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                serde::de::DeserializeSeed::deserialize(TopLevel(key), &mut de)
                    .ok()
                    .flatten()
            }
            Payload::Tree(value) => value.get(key).and_then(Value::as_str).map(str::to_owned),
            Payload::Text(_) => None,
        }
    }
}

/// Finds one top-level string member of a JSON object, skipping everything else unparsed.
struct TopLevel<'k>(&'k str);

impl<'de> serde::de::DeserializeSeed<'de> for TopLevel<'_> {
    type Value = Option<String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TopLevel<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if found.is_none() && k == self.0 {
                // A member that is not a string is "no id", not an error.
                found = match map.next_value::<Value>()? {
                    Value::String(s) => Some(s),
                    _ => None,
                };
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Step 5: the body as the envelope's `payload`, given the raw `Content-Type` value. Declared JSON
/// (`application/json`, `*/*+json`) must parse (else 400) and is carried verbatim; form-encoded
/// bodies become an object; no content type means JSON when it parses; anything else is carried as
/// a string.
pub fn decode_payload<'a>(
    content_type: Option<&[u8]>,
    body: &'a [u8],
) -> Result<Payload<'a>, InvalidJson> {
    let content_type = content_type.map(|v| String::from_utf8_lossy(v).to_ascii_lowercase());
    let essence = content_type
        .as_deref()
        .map(|ct| ct.split(';').next().unwrap_or_default().trim());
    let text = || String::from_utf8_lossy(body);
    match essence {
        Some(e) if e == "application/json" || (e.ends_with("+json") && e.contains('/')) => {
            serde_json::from_slice(body)
                .map(Payload::Json)
                .map_err(|err| InvalidJson(format!("line {} column {}", err.line(), err.column())))
        }
        Some("application/x-www-form-urlencoded") => Ok(Payload::Tree(form_object(body))),
        None => Ok(serde_json::from_slice(body)
            .map(Payload::Json)
            .unwrap_or_else(|_| Payload::Text(text()))),
        Some(_) => Ok(Payload::Text(text())),
    }
}

/// `a=1&b=2&b=3` → `{"a":"1","b":["2","3"]}`.
fn form_object(body: &[u8]) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in form_urlencoded::parse(body) {
        let v = Value::String(v.into_owned());
        match map.get_mut(k.as_ref()) {
            None => {
                map.insert(k.into_owned(), v);
            }
            Some(Value::Array(items)) => items.push(v),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, v]);
            }
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload as the envelope will carry it.
    fn json_of(p: Result<Payload<'_>, InvalidJson>) -> Option<String> {
        p.ok()
            .map(|p| serde_json::to_string(&p).expect("serializes"))
    }

    #[test]
    fn payloads_follow_the_content_type() {
        let ct = |v: &'static str| Some(v.as_bytes());
        assert_eq!(
            json_of(decode_payload(ct("application/json"), br#"{"a":1}"#)).as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert_eq!(
            json_of(decode_payload(
                ct("application/vnd.api+json; charset=utf-8"),
                b"[1]"
            ))
            .as_deref(),
            Some("[1]")
        );
        assert!(decode_payload(ct("application/json"), b"{nope").is_err());
        assert!(decode_payload(ct("Application/JSON"), b"").is_err());
        assert_eq!(
            json_of(decode_payload(ct("text/plain"), b"{\"a\":1}")).as_deref(),
            Some(r#""{\"a\":1}""#)
        );
        assert_eq!(
            json_of(decode_payload(
                ct("application/x-www-form-urlencoded"),
                b"a=1&b=x%20y&b=3"
            ))
            .as_deref(),
            Some(r#"{"a":"1","b":["x y","3"]}"#)
        );
        assert_eq!(
            json_of(decode_payload(None, br#"{"a":1}"#)).as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert_eq!(
            json_of(decode_payload(None, b"plain")).as_deref(),
            Some(r#""plain""#)
        );
    }

    #[test]
    fn json_payloads_are_carried_exactly_as_sent() {
        // Key order, big integers and number spelling survive: consumers get what the provider sent.
        let body =
            br#"{"zeta":1,"alpha":{"b":2,"a":1},"big":123456789012345678901234567890,"f":1.50}"#;
        let p = decode_payload(Some(b"application/json"), body).expect("valid");
        assert_eq!(serde_json::to_vec(&p).expect("serializes"), body);
        assert_eq!(p.to_value()["alpha"]["a"], 1);
    }

    #[test]
    fn top_level_strings_are_found_without_a_tree() {
        let p = decode_payload(
            Some(b"application/json"),
            br#"{"data":{"id":"inner"},"id":"evt_1","n":[1,{"id":"x"}]}"#,
        )
        .expect("valid");
        assert_eq!(p.top_level_str("id").as_deref(), Some("evt_1"));
        assert_eq!(p.top_level_str("data"), None, "not a string");
        assert_eq!(p.top_level_str("missing"), None);
        let array = decode_payload(Some(b"application/json"), br#"[{"id":"x"}]"#).expect("valid");
        assert_eq!(array.top_level_str("id"), None);
        let form =
            decode_payload(Some(b"application/x-www-form-urlencoded"), b"id=f1").expect("ok");
        assert_eq!(form.top_level_str("id").as_deref(), Some("f1"));
    }
}
