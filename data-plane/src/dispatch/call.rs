//! One invocation from lookup to outcome (docs/dispatcher.md, "Invocation" and "Retries"): find
//! the action, check the parameters against its schema, respect the action's breaker, the app's
//! rate limit and the action's concurrency slots, then call with the signed body and retry what
//! may succeed later.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_outbound::{ActionClient, Answer, CallError, CallResponse};
use gateway_shared::action_signing::{self, KEY_ID_HEADER};
use gateway_shared::AppId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderName, HeaderValue};

use super::actions::{Action, Actions};
use super::breaker::Admission;
use super::invocation::Invocation;
use super::metrics::DispatchMetrics;
use super::outcome::{Outcome, Status};

/// The reason code in `error` when an app has no active HMAC key.
pub const HMAC_KEY_MISSING: &str = "HMAC_KEY_MISSING";

/// Retry settings.
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    /// Attempts per invocation, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry (doubles each time).
    pub initial_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured.
    pub retry_after_max: Duration,
    /// Deadline of one call.
    pub call_timeout: Duration,
}

impl RetrySettings {
    /// The delay before retry number `retry` (1-based): exponential, capped, with jitter in
    /// [50 %, 100 %] so that invocations failing together do not retry together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .initial_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
        exp.min(self.max_delay)
            .mul_f64(rand::random_range(0.5..=1.0))
    }
}

/// The per-app token bucket.
pub struct AppRateLimit {
    limiter: Option<DefaultKeyedRateLimiter<AppId>>,
    max_wait: Duration,
    per_hour: u32,
}

impl AppRateLimit {
    /// `per_hour` invocations per app (0 = unlimited), `burst` at once, waiting at most `max_wait`.
    pub fn new(per_hour: u32, burst: Option<u32>, max_wait: Duration) -> Self {
        let limiter = NonZeroU32::new(per_hour).map(|rate| {
            let burst = burst.and_then(NonZeroU32::new).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_hour(rate).allow_burst(burst))
        });
        Self {
            limiter,
            max_wait,
            per_hour,
        }
    }

    /// Takes a token for `app`, waiting for one when the bucket is empty; `Err` when the wait
    /// would be longer than allowed.
    async fn take(&self, app: AppId, metrics: &DispatchMetrics) -> Result<(), String> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let refused = || {
            format!(
                "rate limit of {} calls per hour for this app reached (an invocation waits at most {} s)",
                self.per_hour,
                self.max_wait.as_secs()
            )
        };
        match limiter.check_key(&app) {
            Ok(()) => return Ok(()),
            Err(not_until) => {
                if not_until.wait_time_from(DefaultClock::default().now()) > self.max_wait {
                    metrics.rate_limited("refused");
                    return Err(refused());
                }
            }
        }
        match tokio::time::timeout(self.max_wait, limiter.until_key_ready(&app)).await {
            Ok(()) => {
                metrics.rate_limited("waited");
                Ok(())
            }
            Err(_) => {
                metrics.rate_limited("refused");
                Err(refused())
            }
        }
    }
}

/// Runs invocations.
pub struct Caller {
    /// The HTTP client (destination policy, no redirects, answer cap).
    pub client: ActionClient,
    /// The config.
    pub actions: Actions,
    /// Per-app rate limit.
    pub rate: AppRateLimit,
    /// Retry settings.
    pub retry: RetrySettings,
    /// Metrics.
    pub metrics: Arc<DispatchMetrics>,
}

enum Attempt {
    Done(Outcome),
    Retry {
        error: String,
        http_status: Option<u16>,
        after: Option<Duration>,
    },
}

impl Caller {
    /// Runs one invocation to its outcome. Never panics on what the record or the server says.
    pub async fn run(&self, invocation: &Invocation) -> Outcome {
        let name = invocation.action_name.as_str();
        let Some(action) = self.actions.find(&invocation.tenancy, name) else {
            return Outcome::without_call(
                Status::UnknownAction,
                format!("the app has no action named {name:?}"),
            );
        };
        let validator = match &action.schema {
            Ok(v) => v,
            Err(e) => return Outcome::without_call(Status::Failed, e.clone()),
        };
        let problems: Vec<String> = validator
            .iter_errors(&invocation.parameters)
            .take(5)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if !problems.is_empty() {
            return Outcome::without_call(Status::InvalidParameters, problems.join("; "));
        }
        if action.breaker.refuses(Instant::now()) {
            return Outcome::without_call(Status::CircuitOpen, circuit_open(None));
        }
        if self.actions.signing_key(&invocation.tenancy).is_none() {
            return Outcome::without_call(Status::Failed, key_missing());
        }
        if let Err(e) = self
            .rate
            .take(invocation.tenancy.app_id, &self.metrics)
            .await
        {
            return Outcome::without_call(Status::Failed, e);
        }
        // Held through the retries: an action never gets more calls at once than its limit.
        let Ok(_slot) = action.slots.clone().acquire_owned().await else {
            return Outcome::without_call(Status::Failed, "the action's call slots are closed");
        };
        self.attempts(invocation, &action).await
    }

    async fn attempts(&self, invocation: &Invocation, action: &Action) -> Outcome {
        let mut attempts = 0u32;
        let mut last_error = String::new();
        let mut last_status = None;
        loop {
            if action.breaker.admit(Instant::now()) == Admission::Refuse {
                let error = (attempts > 0).then_some(last_error.as_str());
                return Outcome {
                    status: Status::CircuitOpen,
                    result: None,
                    error: Some(circuit_open(error)),
                    http_status: last_status,
                    attempts,
                };
            }
            attempts += 1;
            let (error, http_status, after) = match self.attempt(invocation, action).await {
                Attempt::Done(mut outcome) => {
                    outcome.attempts = attempts;
                    return outcome;
                }
                Attempt::Retry {
                    error,
                    http_status,
                    after,
                } => (error, http_status, after),
            };
            last_error = error;
            last_status = http_status;
            let failed = |error: String| Outcome {
                status: Status::Failed,
                result: None,
                error: Some(error),
                http_status,
                attempts,
            };
            if attempts >= self.retry.max_attempts {
                return failed(format!("{last_error} (after {attempts} attempts)"));
            }
            let delay = match after {
                Some(after) if after > self.retry.retry_after_max => {
                    return failed(format!(
                        "{last_error}; the action asked to retry after {} s, longer than the {} s the dispatcher waits",
                        after.as_secs(),
                        self.retry.retry_after_max.as_secs()
                    ));
                }
                Some(after) => after,
                None => self.retry.backoff(attempts),
            };
            self.metrics.retry(&action.name);
            tracing::debug!(action = %action.name, request_id = %invocation.request_id, attempts, delay_ms = delay.as_millis() as u64, error = %last_error, "retrying an action call");
            tokio::time::sleep(delay).await;
        }
    }

    /// One signed call. The key is looked up for every attempt, so a revoked key is never used
    /// again, not even by a retry.
    async fn attempt(&self, invocation: &Invocation, action: &Action) -> Attempt {
        let Some(key) = self.actions.signing_key(&invocation.tenancy) else {
            return Attempt::Done(Outcome::without_call(Status::Failed, key_missing()));
        };
        let signed = action_signing::sign_call(
            key.value.expose().as_bytes(),
            &action.name,
            &invocation.parameters,
            chrono::Utc::now().timestamp(),
            false,
        );
        let headers = match (
            HeaderName::from_bytes(KEY_ID_HEADER.as_bytes()),
            HeaderValue::from_str(&key.key_id),
            HeaderValue::from_str(&invocation.request_id),
        ) {
            (Ok(name), Ok(key_id), Ok(request_id)) => [
                (name, key_id),
                (HeaderName::from_static("idempotency-key"), request_id),
            ],
            _ => {
                return Attempt::Done(Outcome::without_call(
                    Status::Failed,
                    "the key id or the requestId cannot be sent as a header",
                ))
            }
        };
        let started = Instant::now();
        let answer = self
            .client
            .post_json(&action.url, signed.body, &headers, self.retry.call_timeout)
            .await;
        let took = started.elapsed();
        let now = Instant::now();
        match answer {
            Ok(response) => {
                let status = response.status.as_u16();
                self.metrics.call(&action.name, answer_class(status), took);
                action.breaker.record(status < 500, now);
                classify_answer(response)
            }
            Err(e) => {
                self.metrics.call(&action.name, "error", took);
                match &e {
                    // Refused before any connection: says nothing about the server's health.
                    CallError::Destination(_) => {}
                    CallError::TooLarge(_) => action.breaker.record(true, now),
                    _ => action.breaker.record(false, now),
                }
                if e.is_transient() {
                    Attempt::Retry {
                        error: e.to_string(),
                        http_status: None,
                        after: None,
                    }
                } else {
                    Attempt::Done(Outcome::without_call(Status::Failed, e.to_string()))
                }
            }
        }
    }
}

fn classify_answer(response: CallResponse) -> Attempt {
    let status = response.status.as_u16();
    let answer = Answer::parse(&response.body);
    if response.status.is_success() {
        return Attempt::Done(Outcome {
            status: if answer.error.is_some() {
                Status::Failed
            } else {
                Status::Succeeded
            },
            error: answer.error,
            result: answer.result,
            http_status: Some(status),
            attempts: 0,
        });
    }
    let error = match &answer.error {
        Some(e) => format!("action server answered {status}: {e}"),
        None => format!("action server answered {status}"),
    };
    if status == 429 || status >= 500 {
        return Attempt::Retry {
            after: response.retry_after(),
            error,
            http_status: Some(status),
        };
    }
    Attempt::Done(Outcome {
        status: Status::Failed,
        result: None,
        error: Some(error),
        http_status: Some(status),
        attempts: 0,
    })
}

fn answer_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

fn key_missing() -> String {
    format!("{HMAC_KEY_MISSING}: the app has no active HMAC key to sign the call with")
}

fn circuit_open(last: Option<&str>) -> String {
    match last {
        Some(e) => format!("the action's circuit breaker is open (last attempt: {e})"),
        None => "the action's circuit breaker is open after consecutive failures".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let r = RetrySettings {
            max_attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            retry_after_max: Duration::from_secs(60),
            call_timeout: Duration::from_secs(30),
        };
        for _ in 0..50 {
            let first = r.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = r.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = r.backoff(30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1));
        }
    }

    fn response(status: u16, body: &str, retry_after: Option<&str>) -> CallResponse {
        let mut headers = http::HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert(
                http::header::RETRY_AFTER,
                HeaderValue::from_str(v).expect("value"),
            );
        }
        CallResponse {
            status: http::StatusCode::from_u16(status).expect("status"),
            headers,
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn answers_are_classified_by_status_and_error() {
        match classify_answer(response(200, r#"{"result":"ok","error":""}"#, None)) {
            Attempt::Done(o) => {
                assert_eq!(o.status, Status::Succeeded);
                assert_eq!(o.result, Some(serde_json::json!("ok")));
                assert_eq!(o.error, None);
            }
            Attempt::Retry { .. } => panic!("2xx is not retried"),
        }
        match classify_answer(response(200, r#"{"result":null,"error":"nope"}"#, None)) {
            Attempt::Done(o) => {
                assert_eq!(o.status, Status::Failed);
                assert_eq!(o.error.as_deref(), Some("nope"));
            }
            Attempt::Retry { .. } => panic!("an answered error is not retried"),
        }
        match classify_answer(response(400, r#"{"error":"bad"}"#, None)) {
            Attempt::Done(o) => {
                assert_eq!(o.error.as_deref(), Some("action server answered 400: bad"));
                assert_eq!(o.http_status, Some(400));
            }
            Attempt::Retry { .. } => panic!("4xx is never retried"),
        }
        assert!(matches!(
            classify_answer(response(429, "", Some("3"))),
            Attempt::Retry { after: Some(d), http_status: Some(429), .. } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            classify_answer(response(503, "down", None)),
            Attempt::Retry {
                after: None,
                http_status: Some(503),
                ..
            }
        ));
        assert!(matches!(
            classify_answer(response(302, "", None)),
            Attempt::Done(Outcome {
                status: Status::Failed,
                ..
            })
        ));
    }
}
