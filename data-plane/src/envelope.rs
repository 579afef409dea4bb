//! The data plane's side of the Kafka record (docs/data-plane.md, "Kafka record"): the record format
//! and step 6 (payload) live in `gateway_shared::envelope` (the control plane's replays write the
//! same format); this adapter feeds them a route and the request's `HeaderMap` without copying the
//! headers.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::HeaderMap;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

pub use gateway_shared::envelope::{canonical_header_name, Payload, Record};
use gateway_shared::envelope::{Event, EventSource};

use crate::error::IngestError;
use crate::routing::Route;

/// Step 5: the body as the envelope's `payload` (see [`gateway_shared::envelope::decode_payload`]).
pub fn decode_payload<'b>(headers: &HeaderMap, body: &'b [u8]) -> Result<Payload<'b>, IngestError> {
    gateway_shared::envelope::decode_payload(headers.get(CONTENT_TYPE).map(|v| v.as_bytes()), body)
        .map_err(|e| IngestError::InvalidJson(e.0))
}

/// The request headers as `name → [values…]`, in arrival order, every value kept; written straight
/// from the `HeaderMap` (no copy of names or values unless one is not valid UTF-8).
struct HeadersField<'a>(&'a HeaderMap);

impl Serialize for HeadersField<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.keys_len()))?;
        for name in self.0.keys() {
            map.serialize_entry(
                &canonical_header_name(name.as_str()),
                &HeaderValues(self.0.get_all(name)),
            )?;
        }
        map.end()
    }
}

/// All values of one header, as a JSON array of strings, each without the API key
/// ([`gateway_shared::redact::mask_api_key`]: a proxy may have copied the URL into it).
struct HeaderValues<'a>(http::header::GetAll<'a, http::HeaderValue>);

impl Serialize for HeaderValues<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|v| {
            let text = String::from_utf8_lossy(v.as_bytes());
            let masked = gateway_shared::redact::mask_api_key(&text);
            // Unchanged (the common case): no copy.
            if matches!(masked, Cow::Borrowed(m) if std::ptr::eq(m, &*text)) {
                drop(masked);
                text
            } else {
                Cow::Owned(masked.into_owned())
            }
        }))
    }
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
    pub payload: &'a Payload<'a>,
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
        Event {
            source: EventSource {
                webhook_id: route.key.webhook_id,
                organization_id: route.key.organization_id,
                workspace_id: route.key.workspace_id,
                app_id: route.key.app_id,
                provider: route.provider,
                bindings: &route.bindings,
                has_resume: route.has_resume,
                include_raw_body: route.include_raw_body,
            },
            event_id: self.event_id,
            date_time: &self.date_time,
            payload: self.payload,
            headers: HeadersField(self.headers),
            body: self.body,
            correlation_value: self.correlation_value,
        }
        .into_record()
        .map_err(|e| IngestError::Internal(format!("envelope: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use gateway_shared::snapshot::{ApiKeyHash, ProviderSecrets, TriggerBinding};
    use gateway_shared::{CorrelationPath, Provider, TriggerType};
    use http::HeaderValue;

    use super::*;
    use crate::routing::RouteKey;

    fn route(bindings: Vec<TriggerBinding>, path: Option<&str>) -> Route {
        Route {
            key: RouteKey::random(),
            provider: Provider::Generic,
            api_keys: vec![ApiKeyHash::of("k")],
            secrets: ProviderSecrets::default(),
            has_resume: bindings
                .iter()
                .any(|b| b.trigger_type == TriggerType::ResumeProcess),
            bindings,
            correlation: path.map(|p| CorrelationPath::parse(p).expect("valid")),
            include_raw_body: true,
            replay_window: None,
            rate_limiter: None,
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
        let payload_json = serde_json::json!({"application":{"applicationId":"A-17"}});
        let payload = Payload::Tree(payload_json.clone());
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
        let v: serde_json::Value = serde_json::from_slice(&rec.value).expect("json");
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
        assert_eq!(v["webhookMessage"]["payload"], payload_json);
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
