//! One failed-trigger report, built on the request path from a rejection: headers masked, the
//! payload capped, and its weight counted for the queue's byte bound.

use gateway_proto::v1::{FailedTriggerReport, HttpHeader};
use gateway_shared::redact::mask_header_value;

use super::Rejection;
use crate::envelope::canonical_header_name;

/// Fixed weight of a report besides its payload and headers.
pub(super) const REPORT_OVERHEAD: usize = 512;

/// The report for `rejection`, and its weight in bytes.
pub(super) fn build(rejection: &Rejection<'_>, max_payload: usize) -> (FailedTriggerReport, usize) {
    let mut weight = REPORT_OVERHEAD;
    let headers: Vec<HttpHeader> = rejection
        .headers
        .keys()
        .map(|name| {
            let values: Vec<String> = rejection
                .headers
                .get_all(name)
                .iter()
                .map(|v| {
                    mask_header_value(name.as_str(), &String::from_utf8_lossy(v.as_bytes()))
                        .into_owned()
                })
                .collect();
            weight += name.as_str().len() + values.iter().map(String::len).sum::<usize>();
            HttpHeader {
                name: canonical_header_name(name.as_str()).into_owned(),
                values,
            }
        })
        .collect();
    let (payload, payload_size, payload_complete) = match rejection.body {
        Some(body) => {
            let kept = body.len().min(max_payload);
            (body[..kept].to_vec(), body.len(), kept == body.len())
        }
        None => (Vec::new(), 0, false),
    };
    weight += payload.len();
    let route = rejection.route;
    let detail = detail_of(rejection);
    let report = FailedTriggerReport {
        report_id: uuid::Uuid::now_v7().to_string(),
        organization_id: route.key.organization_id.to_string(),
        workspace_id: route.key.workspace_id.to_string(),
        app_id: route.key.app_id.to_string(),
        webhook_id: route.key.webhook_id.to_string(),
        provider: gateway_proto::convert::provider_to_proto(route.provider) as i32,
        received_at: Some(prost_types::Timestamp::from(rejection.received_at)),
        reason_code: rejection.code.to_owned(),
        detail,
        http_status: u32::from(rejection.status.as_u16()),
        request_id: rejection.request_id.to_owned(),
        method: rejection.method.to_string(),
        headers,
        payload,
        payload_size: payload_size as u64,
        payload_complete,
        suppressed_count: 0,
    };
    (report, weight)
}

/// Operator detail of a rejection: the signature failure kind, the JSON position, the broker
/// error. Never a secret (none of these carry one).
fn detail_of(rejection: &Rejection<'_>) -> String {
    use crate::error::IngestError;
    match rejection.error {
        IngestError::SignatureInvalid(kind) => kind.as_str().to_owned(),
        IngestError::InvalidJson(d)
        | IngestError::CorrelationUnresolved(d)
        | IngestError::BrokerUnavailable { reason: d } => d.clone(),
        IngestError::PayloadTooLarge { limit } => format!("limit {limit} bytes"),
        other => other.to_string(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::SystemTime;

    use bytes::Bytes;
    use gateway_shared::snapshot::{ProviderSecrets, TriggerBinding};
    use gateway_shared::{Provider, TriggerType};
    use http::{HeaderMap, HeaderValue, Method, StatusCode};

    use super::*;
    use crate::error::{IngestError, SignatureFailure};
    use crate::failed_triggers::Rejection;
    use crate::routing::{Route, RouteKey};

    pub(crate) fn route() -> Route {
        Route {
            key: RouteKey::random(),
            provider: Provider::Slack,
            api_keys: Vec::new(),
            secrets: ProviderSecrets::default(),
            bindings: vec![TriggerBinding {
                trigger_type: TriggerType::StartProcess,
                process_definition_id: "p".into(),
                node_id: "n".into(),
                process_correlation_key: None,
                process_key: None,
            }],
            correlation: None,
            has_resume: false,
            include_raw_body: false,
            replay_window: None,
            rate_limiter: None,
        }
    }

    pub(crate) fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        h.insert("x-slack-signature", HeaderValue::from_static("v0=deadbeef"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        h.insert(
            "x-original-uri",
            HeaderValue::from_static("/webhooks/incoming/slack/a?flowxApiKey=topsecret"),
        );
        h
    }

    pub(crate) fn rejection<'a>(
        route: &'a Route,
        error: &'a IngestError,
        headers: &'a HeaderMap,
        body: Option<&'a Bytes>,
    ) -> Rejection<'a> {
        let (status, code) = error.status_and_code();
        Rejection {
            route,
            error,
            status,
            code,
            method: &Method::POST,
            headers,
            body,
            request_id: "req-1",
            received_at: SystemTime::now(),
        }
    }

    #[test]
    fn reports_mask_credentials_and_cap_the_payload() {
        let route = route();
        let error = IngestError::SignatureInvalid(SignatureFailure::Mismatch);
        let headers = headers();
        let body = Bytes::from_static(br#"{"event":"0123456789"}"#);
        let (report, weight) = build(&rejection(&route, &error, &headers, Some(&body)), 8);
        assert_eq!(report.reason_code, "SIGNATURE_INVALID");
        assert_eq!(report.detail, "mismatch");
        assert_eq!(
            report.http_status,
            u32::from(StatusCode::UNAUTHORIZED.as_u16())
        );
        assert_eq!(report.webhook_id, route.key.webhook_id.to_string());
        assert_eq!(report.payload, &body[..8]);
        assert_eq!(report.payload_size, body.len() as u64);
        assert!(!report.payload_complete, "a cut payload is not complete");
        assert!(weight >= REPORT_OVERHEAD + 8);
        let text = format!("{:?}", report.headers);
        for secret in ["Bearer abc", "deadbeef", "topsecret"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let forwarded = report
            .headers
            .iter()
            .find(|h| h.name == "X-Forwarded-For")
            .expect("other headers are kept with every value");
        assert_eq!(forwarded.values, ["10.0.0.1", "10.0.0.2"]);

        let (whole, _) = build(&rejection(&route, &error, &headers, Some(&body)), 1024);
        assert!(whole.payload_complete);
        assert_eq!(whole.payload, &body[..]);
        let unread = IngestError::PayloadTooLarge { limit: 10 };
        let (none, _) = build(&rejection(&route, &unread, &headers, None), 1024);
        assert!(none.payload.is_empty() && !none.payload_complete && none.payload_size == 0);
        assert_eq!(none.reason_code, "PAYLOAD_TOO_LARGE");
    }
}
