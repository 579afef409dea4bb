//! GITHUB, STRIPE, STANDARD_WEBHOOKS and SHOPIFY on a running data plane: a request signed
//! by the provider's scheme is published; a wrong secret, a tampered body, a malformed or missing
//! header and a stale timestamp all get one identical 401; retries of one delivery carry one event
//! id; during a rotation window both secrets verify, and after it only the new one.

use std::time::Duration;

use gateway_shared::Provider;
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(30);

/// Request headers as (name, value) pairs.
type Headers = Vec<(&'static str, String)>;

/// A provider under test: its current secret, another one, and whether its scheme is timestamped.
struct Case {
    provider: Provider,
    secret: &'static str,
    other: &'static str,
    timestamped: bool,
    signature_header: &'static str,
    label: &'static str,
}

const GITHUB: Case = Case {
    provider: Provider::Github,
    secret: "github-secret-current",
    other: "github-secret-previous",
    timestamped: false,
    signature_header: "X-Hub-Signature-256",
    label: "github",
};
const STRIPE: Case = Case {
    provider: Provider::Stripe,
    secret: "whsec_stripe_current_0123456789",
    other: "whsec_stripe_previous_987654321",
    timestamped: true,
    signature_header: "Stripe-Signature",
    label: "stripe",
};
const STANDARD_WEBHOOKS: Case = Case {
    provider: Provider::StandardWebhooks,
    secret: "whsec_Y3VycmVudC1zdGFuZGFyZC13ZWJob29rcy1rZXktMDE=",
    other: "whsec_cHJldmlvdXMtc3RhbmRhcmQtd2ViaG9va3Mta2V5LTI=",
    timestamped: true,
    signature_header: "webhook-signature",
    label: "standard_webhooks",
};
const SHOPIFY: Case = Case {
    provider: Provider::Shopify,
    secret: "shpss_current_0123456789abcdef",
    other: "shpss_previous_fedcba987654321",
    timestamped: false,
    signature_header: "X-Shopify-Hmac-Sha256",
    label: "shopify",
};

/// A fresh delivery id in the provider's style.
fn new_delivery(case: &Case) -> String {
    match case.provider {
        Provider::Stripe => format!("evt_{}", Uuid::new_v4().simple()),
        Provider::StandardWebhooks => format!("msg_{}", Uuid::new_v4().simple()),
        _ => Uuid::new_v4().to_string(),
    }
}

/// A body of that delivery (Stripe's event id travels in the body).
fn body_of(case: &Case, delivery: &str) -> String {
    match case.provider {
        Provider::Stripe => json!({"id": delivery, "object": "event", "type": "charge.succeeded",
            "data": {"object": {"amount": 2000}}}),
        _ => json!({"action": "opened", "number": 1347}),
    }
    .to_string()
}

async fn send(
    gw: &Gateway,
    hook: &Hook,
    headers: &[(&str, String)],
    body: &str,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(gw.url(hook))
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.expect("answers")
}

/// Signs and sends one delivery with `secret`; returns the status.
async fn deliver(gw: &Gateway, hook: &Hook, case: &Case, secret: &str) -> u16 {
    let delivery = new_delivery(case);
    let body = body_of(case, &delivery);
    let headers = provider_headers(
        case.provider,
        secret,
        unix_now(),
        &delivery,
        body.as_bytes(),
    );
    send(gw, hook, &headers, &body).await.status().as_u16()
}

async fn accepted_event_id(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["status"], "accepted");
    body["eventId"].as_str().expect("eventId").to_owned()
}

async fn signed_deliveries_are_published_and_every_bad_one_gets_one_401(case: &Case) {
    let gw = Gateway::on_shared_broker(&[]).await;
    let hook = Hook::new(case.provider).with_signing_secret(case.secret);
    gw.load(&[&hook]);
    let p = case.provider;

    // A delivery and its retry (signed again, later, as providers do): one event id, the UUIDv5 of
    // the delivery id in the webhook's namespace.
    let delivery = new_delivery(case);
    let body = body_of(case, &delivery);
    let now = unix_now();
    let good = provider_headers(p, case.secret, now, &delivery, body.as_bytes());
    let first = accepted_event_id(send(&gw, &hook, &good, &body).await).await;
    let mut retry = provider_headers(p, case.secret, now + 1, &delivery, body.as_bytes());
    if p == Provider::StandardWebhooks {
        // Svix senders name the same three headers `svix-*`.
        for (name, _) in &mut retry {
            *name = match *name {
                "webhook-id" => "svix-id",
                "webhook-timestamp" => "svix-timestamp",
                _ => "svix-signature",
            };
        }
    }
    let second = accepted_event_id(send(&gw, &hook, &retry, &body).await).await;
    let expected = Uuid::new_v5(
        &hook.config.webhook_id.0,
        format!("{}:{delivery}", p.as_str()).as_bytes(),
    );
    assert_eq!(first, expected.to_string(), "event id from the delivery id");
    assert_eq!(second, first, "a retry keeps the event id");
    let got = gateway_testkit::consume(&gw.bootstrap, &gw.topic, 2, WITHIN).await;
    for m in &got {
        let env = envelope(m);
        assert_eq!(env["eventId"], first.as_str());
        assert_eq!(env["provider"], p.as_str());
        assert_eq!(
            env["webhookMessage"]["payload"],
            serde_json::from_str::<serde_json::Value>(&body).expect("json")
        );
        assert_eq!(
            header(&record_headers(m), "Fx-Event-Id"),
            Some(first.as_str())
        );
    }
    // Another delivery is another event.
    let other = new_delivery(case);
    let other_body = body_of(case, &other);
    let headers = provider_headers(p, case.secret, now, &other, other_body.as_bytes());
    let third = accepted_event_id(send(&gw, &hook, &headers, &other_body).await).await;
    assert_ne!(third, first);

    // Every bad request: the same 401, whatever the cause.
    let mut bad: Vec<(&str, Headers, String)> = vec![
        (
            "wrong secret",
            provider_headers(p, case.other, now, &delivery, body.as_bytes()),
            body.clone(),
        ),
        // The JSON is the same; the raw bytes are not, and the raw bytes are what is signed.
        ("tampered body", good.clone(), format!("{body} ")),
        (
            "malformed header",
            good.iter()
                .map(|(k, v)| {
                    let v = if *k == case.signature_header {
                        "sha256=;v1,=?".to_owned()
                    } else {
                        v.clone()
                    };
                    (*k, v)
                })
                .collect(),
            body.clone(),
        ),
        ("missing headers", vec![], body.clone()),
    ];
    if case.timestamped {
        bad.push((
            "stale timestamp",
            provider_headers(p, case.secret, now - 301, &delivery, body.as_bytes()),
            body.clone(),
        ));
    }
    let mut answers = Vec::new();
    for (what, headers, body) in &bad {
        let resp = send(&gw, &hook, headers, body).await;
        assert_eq!(resp.status(), 401, "{what}");
        answers.push(assert_error(resp, 401, "SIGNATURE_INVALID").await);
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "one body: {answers:?}"
    );

    let metrics = gw.metrics().await;
    let matched = format!(
        r#"webhook_gateway_signature_matches_total{{provider="{}",secret="current"}}"#,
        case.label
    );
    assert_eq!(sample(&metrics, &matched), 3.0, "{metrics}");
    let refused = format!(
        r#"webhook_gateway_requests_total{{provider="{}",outcome="SIGNATURE_INVALID"}}"#,
        case.label
    );
    assert_eq!(sample(&metrics, &refused), bad.len() as f64, "{metrics}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn github() {
    signed_deliveries_are_published_and_every_bad_one_gets_one_401(&GITHUB).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe() {
    signed_deliveries_are_published_and_every_bad_one_gets_one_401(&STRIPE).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn standard_webhooks() {
    signed_deliveries_are_published_and_every_bad_one_gets_one_401(&STANDARD_WEBHOOKS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shopify() {
    signed_deliveries_are_published_and_every_bad_one_gets_one_401(&SHOPIFY).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_window_accepts_both_secrets_until_it_ends() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let cases = [&GITHUB, &STRIPE, &STANDARD_WEBHOOKS, &SHOPIFY];
    // Long enough for the eight requests below on a busy machine, short enough to wait out.
    let window_end = unix_now() + 4;
    let hooks: Vec<Hook> = cases
        .iter()
        .map(|c| Hook::new(c.provider).with_rotated_secrets(c.secret, c.other, window_end))
        .collect();
    gw.load(&hooks.iter().collect::<Vec<_>>());

    for (case, hook) in cases.iter().zip(&hooks) {
        assert_eq!(
            deliver(&gw, hook, case, case.secret).await,
            200,
            "{} new",
            case.label
        );
        assert_eq!(
            deliver(&gw, hook, case, case.other).await,
            200,
            "{} previous",
            case.label
        );
    }
    let metrics = gw.metrics().await;
    for case in cases {
        for slot in ["current", "previous"] {
            let line = format!(
                r#"webhook_gateway_signature_matches_total{{provider="{}",secret="{slot}"}}"#,
                case.label
            );
            assert_eq!(sample(&metrics, &line), 1.0, "{line}\n{metrics}");
        }
    }

    for (case, hook) in cases.iter().zip(&hooks) {
        gateway_testkit::eventually(
            "the previous secret refused after its window",
            WITHIN,
            || async { (deliver(&gw, hook, case, case.other).await == 401).then_some(()) },
        )
        .await;
        assert!(unix_now() > window_end, "refused only after the window");
        assert_eq!(
            deliver(&gw, hook, case, case.secret).await,
            200,
            "{} new",
            case.label
        );
    }
    gw.stop().await;
}
