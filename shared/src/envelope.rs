//! The Kafka record of an accepted request (SPEC §4): the JSON envelope, the record key and the
//! `Fx-*` headers; and step 5, turning the body into the envelope's `payload`. The data plane builds
//! every event with it and the control plane builds replays with it, so both write the same format.

use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use crate::snapshot::TriggerBinding;
use crate::{AppId, OrganizationId, Provider, TriggerType, WebhookId, WorkspaceId};

/// A declared-JSON body that does not parse; the text says where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON: {0}")]
pub struct InvalidJson(pub String);

/// The envelope's `payload`: what step 5 made of the body.
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

/// Header names as they are conventionally written. hyper does not expose the bytes a client sent and
/// HTTP/2 sends names in lower case, so names are given in canonical form: each dash-separated word
/// capitalised (`Content-Type`, `X-Forwarded-For`), with the usual exceptions below.
pub fn canonical_header_name(lower: &str) -> std::borrow::Cow<'static, str> {
    use std::borrow::Cow;
    // The exceptions, and the names nearly every request carries (no allocation for those).
    const SPECIAL: &[(&str, &str)] = &[
        ("host", "Host"),
        ("content-type", "Content-Type"),
        ("content-length", "Content-Length"),
        ("user-agent", "User-Agent"),
        ("accept", "Accept"),
        ("accept-encoding", "Accept-Encoding"),
        ("x-forwarded-for", "X-Forwarded-For"),
        ("x-forwarded-proto", "X-Forwarded-Proto"),
        ("etag", "ETag"),
        ("te", "TE"),
        ("dnt", "DNT"),
        ("www-authenticate", "WWW-Authenticate"),
        ("x-request-id", "X-Request-ID"),
        ("x-real-ip", "X-Real-IP"),
        ("x-github-delivery", "X-GitHub-Delivery"),
        ("x-github-event", "X-GitHub-Event"),
        ("x-github-hook-id", "X-GitHub-Hook-ID"),
        (
            "x-github-hook-installation-target-id",
            "X-GitHub-Hook-Installation-Target-ID",
        ),
        (
            "x-github-hook-installation-target-type",
            "X-GitHub-Hook-Installation-Target-Type",
        ),
    ];
    if let Some((_, name)) = SPECIAL.iter().find(|(l, _)| *l == lower) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(lower.len());
    let mut upper_next = true;
    for c in lower.chars() {
        out.push(if upper_next {
            c.to_ascii_uppercase()
        } else {
            c
        });
        upper_next = c == '-';
    }
    Cow::Owned(out)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Trigger<'a> {
    trigger_type: TriggerType,
    process_definition_id: &'a str,
    node_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    process_correlation_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    process_key: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookMessage<'a, H> {
    date_time: &'a str,
    payload: &'a Payload<'a>,
    headers: H,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_body: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, H> {
    event_id: &'a str,
    webhook_id: String,
    organization_id: String,
    workspace_id: String,
    app_id: String,
    provider: &'static str,
    triggers: Vec<Trigger<'a>>,
    webhook_message: WebhookMessage<'a, H>,
}

/// Everything a publisher needs: value, key and headers.
#[derive(Debug)]
pub struct Record {
    /// The event id (derived from the provider's delivery id, else a UUIDv7), also in the envelope and
    /// in `Fx-Event-Id`.
    pub event_id: String,
    /// The record key: the correlation value when any binding is RESUME_PROCESS, else the webhook id.
    pub key: String,
    /// The JSON envelope.
    pub value: Vec<u8>,
    /// `Fx-*` headers in order.
    pub headers: Vec<(&'static str, String)>,
}

/// The webhook an event belongs to, as the record needs it.
#[derive(Clone, Copy, Debug)]
pub struct EventSource<'a> {
    /// Webhook.
    pub webhook_id: WebhookId,
    /// Organization.
    pub organization_id: OrganizationId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// App.
    pub app_id: AppId,
    /// Provider.
    pub provider: Provider,
    /// The bindings every event carries.
    pub bindings: &'a [TriggerBinding],
    /// Whether any binding is RESUME_PROCESS.
    pub has_resume: bool,
    /// Carry the raw body (base64) in the envelope.
    pub include_raw_body: bool,
}

/// One event to publish. `headers` serializes as a map `name → [values…]` (the data plane passes
/// its request headers as they are, the control plane the stored list), so no copy is made.
pub struct Event<'a, H> {
    /// The webhook.
    pub source: EventSource<'a>,
    /// Fresh event id.
    pub event_id: String,
    /// Ingestion time, RFC 3339 UTC.
    pub date_time: &'a str,
    /// Decoded payload.
    pub payload: &'a Payload<'a>,
    /// Request headers.
    pub headers: H,
    /// Raw body.
    pub body: &'a [u8],
    /// The resolved correlation value (present when the webhook has a RESUME binding).
    pub correlation_value: Option<&'a str>,
}

impl<H: Serialize> Event<'_, H> {
    /// Builds the record.
    pub fn into_record(self) -> Result<Record, serde_json::Error> {
        let source = self.source;
        let triggers = source
            .bindings
            .iter()
            .map(|b| {
                let resume = b.trigger_type == TriggerType::ResumeProcess;
                Trigger {
                    trigger_type: b.trigger_type,
                    process_definition_id: &b.process_definition_id,
                    node_id: &b.node_id,
                    process_correlation_key: b
                        .process_correlation_key
                        .as_deref()
                        .filter(|_| resume),
                    correlation_value: self.correlation_value.filter(|_| resume),
                    process_key: b.process_key.as_deref().filter(|_| resume),
                }
            })
            .collect();
        let envelope = Envelope {
            event_id: &self.event_id,
            webhook_id: source.webhook_id.to_string(),
            organization_id: source.organization_id.to_string(),
            workspace_id: source.workspace_id.to_string(),
            app_id: source.app_id.to_string(),
            provider: source.provider.as_str(),
            triggers,
            webhook_message: WebhookMessage {
                date_time: self.date_time,
                payload: self.payload,
                headers: self.headers,
                raw_body: source
                    .include_raw_body
                    .then(|| base64::engine::general_purpose::STANDARD.encode(self.body)),
            },
        };
        let value = serde_json::to_vec(&envelope)?;
        let key = match (source.has_resume, self.correlation_value) {
            (true, Some(v)) => v.to_owned(),
            _ => envelope.webhook_id.clone(),
        };
        let headers = vec![
            ("Fx-Organization-Id", envelope.organization_id.clone()),
            ("Fx-Workspace-Id", envelope.workspace_id.clone()),
            ("Fx-App-Id", envelope.app_id.clone()),
            ("Fx-Webhook-Id", envelope.webhook_id.clone()),
            ("Fx-Event-Id", self.event_id.clone()),
            ("Fx-Trigger-Type", trigger_type_header(&source)),
        ];
        Ok(Record {
            event_id: self.event_id,
            key,
            value,
            headers,
        })
    }
}

/// `START_PROCESS`, `RESUME_PROCESS`, or both comma-separated (in that order) when the webhook has both.
fn trigger_type_header(source: &EventSource<'_>) -> String {
    let start = source
        .bindings
        .iter()
        .any(|b| b.trigger_type == TriggerType::StartProcess);
    match (start, source.has_resume) {
        (true, true) => "START_PROCESS,RESUME_PROCESS".to_owned(),
        (false, true) => "RESUME_PROCESS".to_owned(),
        _ => "START_PROCESS".to_owned(),
    }
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

    #[test]
    fn header_names_are_canonical() {
        assert_eq!(canonical_header_name("content-type"), "Content-Type");
        assert_eq!(canonical_header_name("x-forwarded-for"), "X-Forwarded-For");
        assert_eq!(
            canonical_header_name("x-hub-signature-256"),
            "X-Hub-Signature-256"
        );
        assert_eq!(canonical_header_name("x-request-id"), "X-Request-ID");
        assert_eq!(
            canonical_header_name("x-github-delivery"),
            "X-GitHub-Delivery"
        );
    }

    #[test]
    fn any_serializable_header_map_is_carried() {
        let bindings = [TriggerBinding {
            trigger_type: TriggerType::StartProcess,
            process_definition_id: "proc".into(),
            node_id: "node".into(),
            process_correlation_key: None,
            process_key: None,
        }];
        let source = EventSource {
            webhook_id: WebhookId::new_random(),
            organization_id: OrganizationId::new_random(),
            workspace_id: WorkspaceId::new_random(),
            app_id: AppId::new_random(),
            provider: Provider::Generic,
            bindings: &bindings,
            has_resume: false,
            include_raw_body: false,
        };
        let headers: std::collections::BTreeMap<&str, Vec<&str>> =
            [("Content-Type", vec!["text/plain"])].into();
        let rec = Event {
            source,
            event_id: "e".into(),
            date_time: "2026-03-23T15:30:00Z",
            payload: &Payload::Text("hi".into()),
            headers: &headers,
            body: b"hi",
            correlation_value: None,
        }
        .into_record()
        .expect("builds");
        let v: Value = serde_json::from_slice(&rec.value).expect("json");
        assert_eq!(
            v["webhookMessage"]["headers"]["Content-Type"],
            serde_json::json!(["text/plain"])
        );
        assert!(v["webhookMessage"].get("rawBody").is_none());
        assert_eq!(rec.key, source.webhook_id.to_string());
        assert_eq!(rec.headers.len(), 6);
    }
}
