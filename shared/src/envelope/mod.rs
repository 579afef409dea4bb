//! The Kafka record of an accepted request (docs/data-plane.md, "Kafka record"): the JSON envelope,
//! the record key and the `Fx-*` headers; and step 6, turning the body into the envelope's
//! `payload`. The data plane builds every event with it and the control plane builds replays with
//! it, so both write the same format.

mod payload;

use base64::Engine;
use serde::Serialize;

pub use payload::{decode_payload, InvalidJson, Payload};

use crate::snapshot::TriggerBinding;
use crate::{AppId, OrganizationId, Provider, TriggerType, WebhookId, WorkspaceId};

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

/// Room for everything in a record's value besides the payload and the raw body: ids, triggers,
/// time and the request headers of a typical request (a larger one grows the buffer once).
const ENVELOPE_OVERHEAD: usize = 2048;

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
        // Sized once for the body (and its base64 copy) plus the envelope's own fields, so the record
        // is not grown by doubling — at 16 KiB that was most of the bytes a request allocated.
        let raw_body_len = envelope
            .webhook_message
            .raw_body
            .as_ref()
            .map_or(0, String::len);
        let mut value = Vec::with_capacity(self.body.len() + raw_body_len + ENVELOPE_OVERHEAD);
        serde_json::to_writer(&mut value, &envelope)?;
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
        let v: serde_json::Value = serde_json::from_slice(&rec.value).expect("json");
        assert_eq!(
            v["webhookMessage"]["headers"]["Content-Type"],
            serde_json::json!(["text/plain"])
        );
        assert!(v["webhookMessage"].get("rawBody").is_none());
        assert_eq!(rec.key, source.webhook_id.to_string());
        assert_eq!(rec.headers.len(), 6);
    }
}
