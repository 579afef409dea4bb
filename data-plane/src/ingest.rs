//! The ingest path: the steps 1–8 of docs/data-plane.md ("HTTP contract") in order, each failure
//! short-circuiting into the one error table ([`IngestError`]). One log line and one metric per
//! request; rejections after routing go to the [`RejectionReporter`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use gateway_shared::{AppId, OrganizationId, Provider, WebhookId, WorkspaceId};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;

use crate::body::read_limited;
use crate::envelope::{decode_payload, Accepted};
use crate::error::{json_response, IngestError};
use crate::failed_triggers::{Rejection, RejectionReporter};
use crate::metrics::{unix_now, Metrics};
use crate::providers::{self, handshake, Verified};
use crate::publish::Publisher;
use crate::replay::{Check, Wait};
use crate::routing::{Route, RouteKey, Routes};

/// Request limits of the ingest path.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest body.
    pub max_body_bytes: usize,
    /// Time for the whole body, from the moment the headers were read.
    pub body_read_timeout: Duration,
    /// `Retry-After` on 503.
    pub retry_after: Duration,
}

/// Everything a request needs; shared by all connections.
pub struct Ingest {
    /// The routing table handle.
    pub routes: Routes,
    /// The Kafka producer.
    pub publisher: Arc<Publisher>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Failed-trigger hook.
    pub reporter: Arc<dyn RejectionReporter>,
    /// Limits.
    pub limits: Limits,
    /// Deliveries remembered for webhooks with a replay window.
    pub replay: crate::replay::ReplayGuard,
}

/// What a request came to, for the log line and the metric.
struct Outcome {
    provider: &'static str,
    webhook_id: Option<WebhookId>,
    event_id: Option<String>,
    detail: Option<String>,
}

const PREFIX: &str = "/webhooks/incoming/";

/// The URL: optional provider segment and the four ids. `None` for anything else.
fn parse_path(path: &str) -> Option<(Option<&str>, RouteKey)> {
    let rest = path.strip_prefix(PREFIX)?;
    // Up to six segments, without collecting them: a sixth means the path is too long.
    let mut it = rest.split('/');
    let parts = [
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
    ];
    let (segment, ids) = match parts {
        [Some(o), Some(w), Some(a), Some(h), None, _] => (None, [o, w, a, h]),
        [Some(p), Some(o), Some(w), Some(a), Some(h), None] => (Some(p), [o, w, a, h]),
        _ => return None,
    };
    Some((
        segment,
        RouteKey {
            organization_id: ids[0].parse::<OrganizationId>().ok()?,
            workspace_id: ids[1].parse::<WorkspaceId>().ok()?,
            app_id: ids[2].parse::<AppId>().ok()?,
            webhook_id: ids[3].parse::<WebhookId>().ok()?,
        },
    ))
}

/// A caller-supplied request id if it is short and plain, else a fresh one.
fn request_id(headers: &HeaderMap) -> String {
    gateway_shared::request_id::from_header(
        headers.get("x-request-id").and_then(|v| v.to_str().ok()),
    )
}

/// The value of the query parameter spelt exactly `name` (not percent-encoded, same case), decoded.
fn query_param<'q>(query: &'q str, name: &str) -> Option<std::borrow::Cow<'q, str>> {
    query
        .split('&')
        .find(|pair| pair.split_once('=').map_or(*pair, |(n, _)| n) == name)
        .and_then(|pair| form_urlencoded::parse(pair.as_bytes()).next())
        .map(|(_, v)| v)
}

fn provider_label(p: Provider) -> &'static str {
    match p {
        Provider::Generic => "generic",
        Provider::Slack => "slack",
        Provider::Meta => "meta",
        Provider::Github => "github",
        Provider::Stripe => "stripe",
        Provider::StandardWebhooks => "standard_webhooks",
        Provider::Shopify => "shopify",
    }
}

impl Ingest {
    /// Answers one request on the public listener. Never fails: every problem is a response.
    pub async fn handle<B>(self: Arc<Self>, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes> + Unpin,
    {
        let started = Instant::now();
        let _in_flight = self.metrics.in_flight();
        let request_id = request_id(req.headers());
        let method = req.method().clone();
        let mut outcome = Outcome {
            provider: "none",
            webhook_id: None,
            event_id: None,
            detail: None,
        };
        let (mut resp, code) = match self.process(req, &request_id, &mut outcome).await {
            Ok((resp, code)) => (resp, code),
            Err(e) => {
                let (_, code) = e.status_and_code();
                (e.to_response(self.limits.retry_after), code)
            }
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        self.metrics.request(outcome.provider, code);
        if let Some(id) = outcome.webhook_id {
            self.metrics.webhook_request(|| id.to_string(), code);
        }
        let status = resp.status().as_u16();
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let webhook_id = outcome.webhook_id.map(|w| w.to_string());
        // One line per request; never the query (API key), a header value or the payload.
        if resp.status().is_server_error() {
            tracing::warn!(
                request_id,
                method = method.as_str(),
                webhook_id,
                provider = outcome.provider,
                status,
                code,
                event_id = outcome.event_id,
                detail = outcome.detail,
                elapsed_ms,
                "webhook request"
            );
        } else {
            tracing::info!(
                request_id,
                method = method.as_str(),
                webhook_id,
                provider = outcome.provider,
                status,
                code,
                event_id = outcome.event_id,
                detail = outcome.detail,
                elapsed_ms,
                "webhook request"
            );
        }
        resp
    }

    /// Step 1 (route), then the rest with rejection reporting.
    async fn process<B>(
        &self,
        req: Request<B>,
        request_id: &str,
        outcome: &mut Outcome,
    ) -> Result<(Response<Full<Bytes>>, &'static str), IngestError>
    where
        B: Body<Data = Bytes> + Unpin,
    {
        let received_at = SystemTime::now();
        let (segment, key) = parse_path(req.uri().path()).ok_or(IngestError::NotFound)?;
        let table = self.routes.load().ok_or(IngestError::NotReady)?;
        let route = table.get(&key).ok_or(IngestError::NotFound)?.clone();
        drop(table);
        outcome.provider = provider_label(route.provider);
        outcome.webhook_id = Some(route.key.webhook_id);
        if segment != route.provider.url_segment() {
            return Err(IngestError::ProviderMismatch);
        }

        let (parts, body) = req.into_parts();
        let mut read_body = None;
        match self
            .after_routing(&route, &parts, body, &mut read_body, outcome)
            .await
        {
            Ok(ok) => Ok(ok),
            // Over the rate limit is not a failed trigger: the sender retries (docs/data-plane.md,
            // "Rate limits").
            Err(error @ IngestError::RateLimited { .. }) => Err(error),
            Err(error) => {
                let (status, code) = error.status_and_code();
                self.reporter.report(&Rejection {
                    route: &route,
                    error: &error,
                    status,
                    code,
                    method: &parts.method,
                    headers: &parts.headers,
                    body: read_body.as_ref(),
                    request_id,
                    received_at,
                });
                Err(error)
            }
        }
    }

    /// Steps 2–8.
    async fn after_routing<B>(
        &self,
        route: &Route,
        parts: &http::request::Parts,
        body: B,
        read_body: &mut Option<Bytes>,
        outcome: &mut Outcome,
    ) -> Result<(Response<Full<Bytes>>, &'static str), IngestError>
    where
        B: Body<Data = Bytes> + Unpin,
    {
        // 2. Method.
        let is_meta = route.provider == Provider::Meta;
        let allow = if is_meta { "GET, POST" } else { "POST" };
        let meta_get = match parts.method {
            Method::POST => false,
            Method::GET if is_meta => true,
            _ => return Err(IngestError::MethodNotAllowed { allow }),
        };
        let now = unix_now();

        // 3. API key (then META's GET handshake).
        let query = parts.uri.query().unwrap_or_default();
        let api_key = query_param(query, "flowxApiKey").ok_or(IngestError::ApiKeyMissing)?;
        let key_slot = route
            .matching_api_key(&api_key, now)
            .ok_or(IngestError::ApiKeyInvalid)?;
        self.metrics.api_key_match(key_slot);

        // 3b. Rate limit: only callers who know the key count against it.
        if let Some(limiter) = &route.rate_limiter {
            limiter.check().map_err(|wait| IngestError::RateLimited {
                retry_after_secs: crate::rate_limit::retry_after_secs(wait),
            })?;
        }

        if meta_get {
            let answer =
                handshake::subscription(route, query).ok_or(IngestError::VerificationFailed)?;
            return Ok((answer.into_response(), "handshake"));
        }

        // 4. Size, enforced while reading.
        let deadline = tokio::time::Instant::now() + self.limits.body_read_timeout;
        let body = read_limited(body, self.limits.max_body_bytes, deadline).await?;
        let body = &*read_body.insert(body);

        // 5. Provider check (and SLACK's url_verification handshake).
        match providers::verify_post(route, &parts.headers, body, now) {
            Ok(Verified::Publish(slot)) => self.metrics.signature_match(outcome.provider, slot),
            Ok(Verified::Handshake(answer)) => return Ok((answer.into_response(), "handshake")),
            Err(failure) => {
                outcome.detail = Some(failure.as_str().to_owned());
                return Err(IngestError::SignatureInvalid(failure));
            }
        }

        // 6. Payload.
        let payload = decode_payload(&parts.headers, body)?;

        // 7. Correlation (RESUME bindings).
        let correlation_value = match (&route.correlation, route.has_resume) {
            (Some(path), true) => Some(
                payload
                    .resolve(path)
                    .map_err(|e| IngestError::CorrelationUnresolved(e.to_string()))?,
            ),
            _ => None,
        };

        // 8. Publish and wait for the acknowledgement.
        let event_id = providers::event_id(route, &parts.headers, &payload).to_string();
        let record = Accepted {
            route,
            event_id: event_id.clone(),
            date_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            payload: &payload,
            headers: &parts.headers,
            body,
            correlation_value: correlation_value.as_deref(),
        }
        .into_record()?;
        let size = record.value.len()
            + record.key.len()
            + record
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        let limit = self.publisher.max_record_bytes();
        if size > limit {
            return Err(IngestError::RecordTooLarge { size, limit });
        }
        // A replay of a delivery published within the webhook's window: the original's answer.
        let ticket = match route.replay_window {
            Some(window) => {
                let digest = crate::replay::digest(route, &parts.headers, body);
                match self.replay.check(digest, &event_id, window, Instant::now()) {
                    Check::Fresh(ticket) => Some(ticket),
                    Check::Duplicate(original) => return Ok(replayed(outcome, original)),
                    Check::InFlight(mut rx, original) => {
                        match Check::wait(&mut rx, original, self.publisher.deadline()).await {
                            Wait::Acked(original) => return Ok(replayed(outcome, original)),
                            Wait::Unavailable => {
                                return Err(IngestError::BrokerUnavailable {
                                    reason: "the same delivery's publish did not succeed".into(),
                                })
                            }
                        }
                    }
                }
            }
            None => None,
        };
        outcome.event_id = Some(event_id.clone());
        let started = Instant::now();
        let published = self.publisher.publish(&record).await;
        self.metrics.publish(published.is_ok(), started.elapsed());
        if let Some(ticket) = ticket {
            self.replay.finish(ticket, published.is_ok());
        }
        if let Err(e) = published {
            outcome.detail = Some(e.to_string());
            return Err(IngestError::BrokerUnavailable {
                reason: e.to_string(),
            });
        }
        Ok((accepted(&event_id), "accepted"))
    }
}

/// The `200` of an accepted event.
fn accepted(event_id: &str) -> Response<Full<Bytes>> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer<'a> {
        status: &'static str,
        event_id: &'a str,
    }
    json_response(
        StatusCode::OK,
        &Answer {
            status: "accepted",
            event_id,
        },
    )
}

/// The answer to a replay within the window: the original's `200`, nothing published.
fn replayed(outcome: &mut Outcome, original: String) -> (Response<Full<Bytes>>, &'static str) {
    let resp = accepted(&original);
    outcome.event_id = Some(original);
    (resp, "replayed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_with_and_without_provider_segment() {
        let ids = "7f1c2a9e-0000-4000-8000-000000000001/7f1c2a9e-0000-4000-8000-000000000002/7f1c2a9e-0000-4000-8000-000000000003/7f1c2a9e-0000-4000-8000-000000000004";
        let generic = format!("/webhooks/incoming/{ids}");
        let (seg, key) = parse_path(&generic).expect("generic");
        assert_eq!(seg, None);
        assert_eq!(
            key.webhook_id.to_string(),
            "7f1c2a9e-0000-4000-8000-000000000004"
        );
        let slack = format!("/webhooks/incoming/slack/{ids}");
        let (seg, _) = parse_path(&slack).expect("slack");
        assert_eq!(seg, Some("slack"));
        assert!(parse_path(&format!("/webhooks/incoming/{ids}/")).is_none());
        assert!(parse_path(&format!("/webhooks/other/{ids}")).is_none());
        assert!(parse_path("/webhooks/incoming/a/b/c/d").is_none());
        assert!(parse_path("/webhooks/incoming/").is_none());
    }

    #[test]
    fn request_ids_are_taken_only_when_plain() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert("x-request-id", HeaderValue::from_static("evil\tvalue"));
        assert_ne!(request_id(&h), "evil\tvalue");
    }

    mod props {
        use proptest::prelude::*;
        use uuid::Uuid;

        use super::super::{parse_path, PREFIX};

        fn uuid() -> impl Strategy<Value = Uuid> {
            any::<u128>().prop_map(Uuid::from_u128)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            #[test]
            fn any_path_parses_or_is_refused_without_panicking(path in "\\PC{0,200}") {
                let _ = parse_path(&path);
                let _ = parse_path(&format!("{PREFIX}{path}"));
            }

            #[test]
            fn printed_urls_parse_back_to_their_ids(
                ids in proptest::array::uniform4(uuid()),
                segment in proptest::option::of("[a-z_]{1,20}"),
                upper in any::<bool>(),
            ) {
                let text = |u: &Uuid| if upper { u.to_string().to_uppercase() } else { u.to_string() };
                let joined = ids.iter().map(text).collect::<Vec<_>>().join("/");
                let path = match &segment {
                    Some(p) => format!("{PREFIX}{p}/{joined}"),
                    None => format!("{PREFIX}{joined}"),
                };
                let (seg, key) = parse_path(&path).expect("a well-formed URL parses");
                prop_assert_eq!(seg, segment.as_deref());
                prop_assert_eq!(key.organization_id.0, ids[0]);
                prop_assert_eq!(key.workspace_id.0, ids[1]);
                prop_assert_eq!(key.app_id.0, ids[2]);
                prop_assert_eq!(key.webhook_id.0, ids[3]);
                // One segment more, or a trailing slash, is another URL.
                let longer = format!("{path}/x");
                prop_assert!(parse_path(&longer).is_none());
                let trailing = format!("{path}/");
                prop_assert!(parse_path(&trailing).is_none());
            }
        }
    }
}
