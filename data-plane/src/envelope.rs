//! The Kafka record of an accepted request (SPEC §4): the JSON envelope, the record key and the
//! `Fx-*` headers; and step 5, turning the body into the envelope's `payload`.

use base64::Engine;
use bytes::Bytes;
use gateway_shared::TriggerType;
use http::header::CONTENT_TYPE;
use http::HeaderMap;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

use crate::error::IngestError;
use crate::routing::Route;

/// Step 5: the body as the envelope's `payload`. Declared JSON (`application/json`, `*/*+json`)
/// must parse (else 400); form-encoded bodies become an object; no content type means JSON when it
/// parses; anything else is carried as a string.
pub fn decode_payload(headers: &HeaderMap, body: &[u8]) -> Result<Value, IngestError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase());
    let essence = content_type
        .as_deref()
        .map(|ct| ct.split(';').next().unwrap_or_default().trim().to_owned());
    match essence.as_deref() {
        Some(e) if e == "application/json" || (e.ends_with("+json") && e.contains('/')) => {
            serde_json::from_slice(body).map_err(|err| {
                IngestError::InvalidJson(format!("line {} column {}", err.line(), err.column()))
            })
        }
        Some("application/x-www-form-urlencoded") => Ok(form_object(body)),
        None => Ok(serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))),
        Some(_) => Ok(Value::String(String::from_utf8_lossy(body).into_owned())),
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
pub fn canonical_header_name(lower: &str) -> String {
    const SPECIAL: &[(&str, &str)] = &[
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
        return (*name).to_owned();
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
    out
}

/// The request headers as `name → [values…]`, in arrival order, every value kept.
struct HeadersField<'a>(&'a HeaderMap);

impl Serialize for HeadersField<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.keys_len()))?;
        for name in self.0.keys() {
            let values: Vec<String> = self
                .0
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            map.serialize_entry(&canonical_header_name(name.as_str()), &values)?;
        }
        map.end()
    }
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
struct WebhookMessage<'a> {
    date_time: &'a str,
    payload: &'a Value,
    headers: HeadersField<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_body: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    event_id: &'a str,
    webhook_id: String,
    organization_id: String,
    workspace_id: String,
    app_id: String,
    provider: &'static str,
    triggers: Vec<Trigger<'a>>,
    webhook_message: WebhookMessage<'a>,
}

/// Everything the publisher needs: value, key and headers.
#[derive(Debug)]
pub struct Record {
    /// The event id (UUIDv7), also in the envelope and in `Fx-Event-Id`.
    pub event_id: String,
    /// The record key: the correlation value when any binding is RESUME_PROCESS, else the webhook id.
    pub key: String,
    /// The JSON envelope.
    pub value: Vec<u8>,
    /// `Fx-*` headers in order.
    pub headers: Vec<(&'static str, String)>,
}

/// What an accepted request contributes to its record.
pub struct Accepted<'a> {
    /// The webhook.
    pub route: &'a Route,
    /// Fresh event id.
    pub event_id: String,
    /// Ingestion time, RFC 3339 UTC.
    pub date_time: String,
    /// Decoded payload.
    pub payload: &'a Value,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Raw body.
    pub body: &'a Bytes,
    /// The resolved correlation value (present when the route has a RESUME binding).
    pub correlation_value: Option<&'a str>,
}

impl Accepted<'_> {
    /// Builds the record.
    pub fn into_record(self) -> Result<Record, IngestError> {
        let route = self.route;
        let triggers = route
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
            webhook_id: route.key.webhook_id.to_string(),
            organization_id: route.key.organization_id.to_string(),
            workspace_id: route.key.workspace_id.to_string(),
            app_id: route.key.app_id.to_string(),
            provider: route.provider.as_str(),
            triggers,
            webhook_message: WebhookMessage {
                date_time: &self.date_time,
                payload: self.payload,
                headers: HeadersField(self.headers),
                raw_body: route
                    .include_raw_body
                    .then(|| base64::engine::general_purpose::STANDARD.encode(self.body)),
            },
        };
        let value = serde_json::to_vec(&envelope)
            .map_err(|e| IngestError::Internal(format!("envelope: {e}")))?;
        let key = match (route.has_resume, self.correlation_value) {
            (true, Some(v)) => v.to_owned(),
            _ => envelope.webhook_id.clone(),
        };
        let headers = vec![
            ("Fx-Organization-Id", envelope.organization_id.clone()),
            ("Fx-Workspace-Id", envelope.workspace_id.clone()),
            ("Fx-App-Id", envelope.app_id.clone()),
            ("Fx-Webhook-Id", envelope.webhook_id.clone()),
            ("Fx-Event-Id", self.event_id.clone()),
            ("Fx-Trigger-Type", trigger_type_header(route)),
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
fn trigger_type_header(route: &Route) -> String {
    let start = route
        .bindings
        .iter()
        .any(|b| b.trigger_type == TriggerType::StartProcess);
    match (start, route.has_resume) {
        (true, true) => "START_PROCESS,RESUME_PROCESS".to_owned(),
        (false, true) => "RESUME_PROCESS".to_owned(),
        _ => "START_PROCESS".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use gateway_shared::snapshot::{ApiKeyHash, ProviderSecrets, TriggerBinding};
    use gateway_shared::{
        AppId, CorrelationPath, OrganizationId, Provider, WebhookId, WorkspaceId,
    };
    use http::HeaderValue;

    use super::*;
    use crate::routing::RouteKey;

    fn ct(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn payloads_follow_the_content_type() {
        assert_eq!(
            decode_payload(&ct("application/json"), br#"{"a":1}"#).ok(),
            Some(serde_json::json!({"a":1}))
        );
        assert_eq!(
            decode_payload(&ct("application/vnd.api+json; charset=utf-8"), b"[1]").ok(),
            Some(serde_json::json!([1]))
        );
        assert!(matches!(
            decode_payload(&ct("application/json"), b"{nope"),
            Err(IngestError::InvalidJson(_))
        ));
        assert!(matches!(
            decode_payload(&ct("Application/JSON"), b""),
            Err(IngestError::InvalidJson(_))
        ));
        assert_eq!(
            decode_payload(&ct("text/plain"), b"{\"a\":1}").ok(),
            Some(Value::String("{\"a\":1}".into()))
        );
        assert_eq!(
            decode_payload(&ct("application/x-www-form-urlencoded"), b"a=1&b=x%20y&b=3").ok(),
            Some(serde_json::json!({"a":"1","b":["x y","3"]}))
        );
        assert_eq!(
            decode_payload(&HeaderMap::new(), br#"{"a":1}"#).ok(),
            Some(serde_json::json!({"a":1}))
        );
        assert_eq!(
            decode_payload(&HeaderMap::new(), b"plain").ok(),
            Some(Value::String("plain".into()))
        );
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

    fn route(bindings: Vec<TriggerBinding>, path: Option<&str>) -> Route {
        Route {
            key: RouteKey {
                organization_id: OrganizationId::new_random(),
                workspace_id: WorkspaceId::new_random(),
                app_id: AppId::new_random(),
                webhook_id: WebhookId::new_random(),
            },
            provider: Provider::Generic,
            api_keys: vec![ApiKeyHash::of("k")],
            secrets: ProviderSecrets::default(),
            has_resume: bindings
                .iter()
                .any(|b| b.trigger_type == TriggerType::ResumeProcess),
            bindings,
            correlation: path.map(|p| CorrelationPath::parse(p).expect("valid")),
            include_raw_body: true,
        }
    }

    fn binding(t: TriggerType) -> TriggerBinding {
        let resume = t == TriggerType::ResumeProcess;
        TriggerBinding {
            trigger_type: t,
            process_definition_id: "proc".into(),
            node_id: "node".into(),
            process_correlation_key: resume.then(|| "applicationId".into()),
            process_key: resume.then(|| "scan".into()),
        }
    }

    #[test]
    fn envelope_and_key_for_start_and_resume() {
        let r = route(
            vec![
                binding(TriggerType::StartProcess),
                binding(TriggerType::ResumeProcess),
            ],
            Some("application.applicationId"),
        );
        let mut headers = HeaderMap::new();
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        let payload = serde_json::json!({"application":{"applicationId":"A-17"}});
        let body = Bytes::from_static(b"raw");
        let rec = Accepted {
            route: &r,
            event_id: "evt".into(),
            date_time: "2026-03-23T15:30:00Z".into(),
            payload: &payload,
            headers: &headers,
            body: &body,
            correlation_value: Some("A-17"),
        }
        .into_record()
        .expect("builds");
        assert_eq!(rec.key, "A-17");
        let v: Value = serde_json::from_slice(&rec.value).expect("json");
        assert_eq!(v["eventId"], "evt");
        assert_eq!(v["webhookId"], r.key.webhook_id.to_string());
        assert_eq!(
            v["triggers"][0],
            serde_json::json!({"triggerType":"START_PROCESS","processDefinitionId":"proc","nodeId":"node"})
        );
        assert_eq!(
            v["triggers"][1],
            serde_json::json!({"triggerType":"RESUME_PROCESS","processDefinitionId":"proc","nodeId":"node",
                "processCorrelationKey":"applicationId","correlationValue":"A-17","processKey":"scan"})
        );
        assert_eq!(
            v["webhookMessage"]["headers"]["X-Multi"],
            serde_json::json!(["a", "b"])
        );
        assert_eq!(v["webhookMessage"]["payload"], payload);
        assert_eq!(v["webhookMessage"]["rawBody"], "cmF3");
        assert!(rec
            .headers
            .contains(&("Fx-Trigger-Type", "START_PROCESS,RESUME_PROCESS".to_owned())));

        let start_only = route(vec![binding(TriggerType::StartProcess)], None);
        let rec = Accepted {
            route: &start_only,
            event_id: "e2".into(),
            date_time: "2026-03-23T15:30:00Z".into(),
            payload: &payload,
            headers: &headers,
            body: &body,
            correlation_value: None,
        }
        .into_record()
        .expect("builds");
        assert_eq!(rec.key, start_only.key.webhook_id.to_string());
        assert!(rec
            .headers
            .contains(&("Fx-Trigger-Type", "START_PROCESS".to_owned())));
    }
}
