//! Prices step 5 + the envelope in process, single-threaded: the data plane's own functions
//! (`decode_payload`, `Accepted::into_record`) next to a parse into a `serde_json::Value` tree (what
//! step 5 did before it carried JSON bodies verbatim) and a hand-rolled reference that validates
//! (`IgnoredAny`) and embeds the body (`RawValue`) with nothing else; validation alone with serde_json
//! and with sonic-rs (a SIMD parser, measured before any switch); and step 7's correlation lookup on
//! a RESUME body, through a tree and on the text. Evidence for docs/benchmarks.md.

use std::time::Instant;

use bytes::Bytes;
use data_plane::{decode_payload, Accepted};
use data_plane::{Route, RouteKey};
use gateway_shared::snapshot::{ApiKeyHash, ProviderSecrets, TriggerBinding};
use gateway_shared::{AppId, OrganizationId, Provider, TriggerType, WebhookId, WorkspaceId};
use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use gateway_shared::CorrelationPath;

use crate::load::{json_body, resume_body};

/// µs per request of each way, for one body size.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Cost {
    /// Body bytes.
    pub body_bytes: usize,
    /// Today: parse into `Value`, serialize the envelope, drop (µs).
    pub dom_us: f64,
    /// Of which the parse into `Value` alone (µs).
    pub parse_us: f64,
    /// Validate with `IgnoredAny`, serialize an envelope that embeds the `RawValue` (µs).
    pub raw_us: f64,
    /// Validation alone, serde_json (`&RawValue`, what step 6 does) (µs).
    #[serde(default)]
    pub validate_serde_us: f64,
    /// Validation alone, sonic-rs (SIMD; `from_slice` into `IgnoredAny`) (µs).
    #[serde(default)]
    pub validate_sonic_us: f64,
    /// Step 7 on a RESUME body of this size (path 4 deep, after the large array): a `Value` tree
    /// and `resolve` (what step 7 did before) (µs).
    #[serde(default)]
    pub resume_tree_us: f64,
    /// The same lookup on the text (`resolve_json`, what step 7 does now) (µs).
    #[serde(default)]
    pub resume_text_us: f64,
}

fn route() -> Route {
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
        bindings: vec![TriggerBinding {
            trigger_type: TriggerType::StartProcess,
            process_definition_id: "order-intake".into(),
            node_id: "start".into(),
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope<'a> {
    event_id: &'a str,
    webhook_id: String,
    date_time: &'a str,
    payload: &'a RawValue,
}

fn per_iter(iters: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
}

/// Measures 1 KiB and 16 KiB bodies.
pub fn measure() -> anyhow::Result<Vec<Cost>> {
    let route = route();
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("user-agent", HeaderValue::from_static("bench/1"));
    let mut out = Vec::new();
    for size in [1024, 16 * 1024] {
        let body: Bytes = json_body(size);
        let iters = if size > 2048 { 2_000 } else { 20_000 };
        let mut failed = None;
        let dom_us = per_iter(iters, || {
            let r = decode_payload(&headers, &body).map(|payload| {
                Accepted {
                    route: &route,
                    event_id: "0190a5e4-0000-7000-8000-000000000000".into(),
                    date_time: "2026-11-22T07:00:00.000Z".into(),
                    payload: &payload,
                    headers: &headers,
                    body: &body,
                    correlation_value: None,
                }
                .into_record()
                .map(|rec| rec.value.len())
            });
            if let Err(e) | Ok(Err(e)) = r {
                failed = Some(e.to_string());
            }
        });
        let parse_us = per_iter(iters, || {
            let v: Result<serde_json::Value, _> = serde_json::from_slice(&body);
            std::hint::black_box(&v);
        });
        let raw_us = per_iter(iters, || {
            let ok = serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
            let text = std::str::from_utf8(&body).unwrap_or("null");
            if let (true, Ok(raw)) = (ok, serde_json::from_str::<&RawValue>(text)) {
                let env = RawEnvelope {
                    event_id: "0190a5e4-0000-7000-8000-000000000000",
                    webhook_id: route.key.webhook_id.to_string(),
                    date_time: "2026-11-22T07:00:00.000Z",
                    payload: raw,
                };
                std::hint::black_box(serde_json::to_vec(&env).map(|v| v.len()).ok());
            }
        });
        let validate_serde_us = per_iter(iters, || {
            std::hint::black_box(serde_json::from_slice::<&RawValue>(&body).is_ok());
        });
        let validate_sonic_us = per_iter(iters, || {
            std::hint::black_box(sonic_rs::from_slice::<serde::de::IgnoredAny>(&body).is_ok());
        });
        let resume = resume_body(size);
        let resume_text = std::str::from_utf8(&resume)?;
        let path = CorrelationPath::parse(crate::http_suite::RESUME_PATH)?;
        let want = Ok("ACC-0042".to_owned());
        anyhow::ensure!(
            path.resolve_json(resume_text) == want,
            "the RESUME body does not hold its path"
        );
        let resume_tree_us = per_iter(iters, || {
            let v: serde_json::Value = serde_json::from_str(resume_text).unwrap_or_default();
            std::hint::black_box(path.resolve(&v).ok());
        });
        let resume_text_us = per_iter(iters, || {
            std::hint::black_box(path.resolve_json(resume_text).ok());
        });
        if let Some(e) = failed {
            anyhow::bail!("the data plane's envelope failed: {e}");
        }
        out.push(Cost {
            body_bytes: body.len(),
            dom_us,
            parse_us,
            raw_us,
            validate_serde_us,
            validate_sonic_us,
            resume_tree_us,
            resume_text_us,
        });
    }
    Ok(out)
}
