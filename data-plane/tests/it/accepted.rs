//! Valid GENERIC, SLACK and META requests are answered 200 only after the broker took the record,
//! and the record is the envelope of docs/data-plane.md ("Kafka record"), field by field.

use std::time::Duration;

use gateway_shared::Provider;
use rdkafka::Message;
use serde_json::json;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(30);

async fn accepted_event_id(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["status"], "accepted");
    let id = body["eventId"].as_str().expect("eventId").to_owned();
    let uuid = uuid::Uuid::parse_str(&id).expect("eventId is a UUID");
    assert_eq!(uuid.get_version_num(), 7, "eventId is a UUIDv7");
    id
}

fn assert_common(env: &serde_json::Value, hook: &Hook, event_id: &str, provider: &str) {
    let c = &hook.config;
    assert_eq!(env["eventId"], event_id);
    assert_eq!(env["webhookId"], c.webhook_id.to_string());
    assert_eq!(env["organizationId"], c.organization_id.to_string());
    assert_eq!(env["workspaceId"], c.workspace_id.to_string());
    assert_eq!(env["appId"], c.app_id.to_string());
    assert_eq!(env["provider"], provider);
    let dt = env["webhookMessage"]["dateTime"]
        .as_str()
        .expect("dateTime");
    assert!(dt.ends_with('Z'), "UTC: {dt}");
    let parsed = chrono::DateTime::parse_from_rfc3339(dt).expect("RFC 3339");
    let age = chrono::Utc::now().signed_duration_since(parsed);
    assert!(
        age >= chrono::Duration::zero() && age < chrono::Duration::seconds(60),
        "ingestion time: {dt}"
    );
}

fn assert_fx_headers(
    m: &rdkafka::message::OwnedMessage,
    hook: &Hook,
    event_id: &str,
    trigger_type: &str,
) {
    let hs = record_headers(m);
    let c = &hook.config;
    assert_eq!(
        header(&hs, "Fx-Organization-Id"),
        Some(c.organization_id.to_string().as_str())
    );
    assert_eq!(
        header(&hs, "Fx-Workspace-Id"),
        Some(c.workspace_id.to_string().as_str())
    );
    assert_eq!(
        header(&hs, "Fx-App-Id"),
        Some(c.app_id.to_string().as_str())
    );
    assert_eq!(
        header(&hs, "Fx-Webhook-Id"),
        Some(c.webhook_id.to_string().as_str())
    );
    assert_eq!(header(&hs, "Fx-Event-Id"), Some(event_id));
    assert_eq!(header(&hs, "Fx-Trigger-Type"), Some(trigger_type));
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_json_is_published_with_every_header_value() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);

    let payload = json!({"orderId": "ORD-12345", "status": "completed", "amount": 299.99});
    let resp = reqwest::Client::new()
        .post(gw.url(&hook))
        .header("Content-Type", "application/json")
        .header("X-Custom-Header", "one")
        .header("X-Custom-Header", "two")
        .header("X-Forwarded-For", "203.0.113.7")
        .body(payload.to_string())
        .send()
        .await
        .expect("answers");
    let request_id = resp.headers().get("x-request-id").cloned();
    assert!(request_id.is_some(), "every response carries a request id");
    let event_id = accepted_event_id(resp).await;

    let got = gateway_testkit::consume(&gw.bootstrap, &gw.topic, 1, WITHIN).await;
    let m = &got[0];
    assert_eq!(
        m.key(),
        Some(hook.config.webhook_id.to_string().as_bytes()),
        "START key is the webhook id"
    );
    let env = envelope(m);
    assert_common(&env, &hook, &event_id, "GENERIC");
    assert_eq!(
        env["triggers"],
        json!([{"triggerType": "START_PROCESS", "processDefinitionId": "proc-start", "nodeId": "start-1"}])
    );
    let msg = &env["webhookMessage"];
    assert_eq!(msg["payload"], payload);
    assert_eq!(msg["headers"]["Content-Type"], json!(["application/json"]));
    assert_eq!(msg["headers"]["X-Custom-Header"], json!(["one", "two"]));
    assert_eq!(msg["headers"]["X-Forwarded-For"], json!(["203.0.113.7"]));
    assert!(
        msg.get("rawBody").is_none(),
        "raw body only when the webhook asks for it"
    );
    assert!(
        !m.payload()
            .is_some_and(|p| String::from_utf8_lossy(p).contains(&hook.api_key)),
        "API key never published"
    );
    assert_fx_headers(m, &hook, &event_id, "START_PROCESS");

    let metrics = gw.metrics().await;
    assert!(
        metrics
            .contains(r#"webhook_gateway_requests_total{provider="generic",outcome="accepted"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("webhook_gateway_publish_duration_seconds_count{outcome=\"acked\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains(&hook.config.webhook_id.to_string()),
        "no webhook id label unless the operator turns it on: {metrics}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_payloads_reach_kafka_exactly_as_sent() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);
    // Not in key order, a number beyond 64 bits, a spelled-out decimal, inner white space.
    let body =
        r#"{"zeta":1,"alpha":{"b":2, "a":1},"id":123456789012345678901234567890,"amount":299.90}"#;
    let resp = reqwest::Client::new()
        .post(gw.url(&hook))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("answers");
    accepted_event_id(resp).await;
    let got = gateway_testkit::consume(&gw.bootstrap, &gw.topic, 1, WITHIN).await;
    let value = String::from_utf8_lossy(got[0].payload().expect("value")).into_owned();
    assert!(
        value.contains(&format!(r#""payload":{body}"#)),
        "the payload is the body, byte for byte: {value}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn per_webhook_counts_appear_only_when_turned_on() {
    let gw = Gateway::on_shared_broker(&["--metrics-webhook-label"]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);
    let client = reqwest::Client::new();
    let ok = client
        .post(gw.url(&hook))
        .header("content-type", "application/json")
        .body(r#"{"a":1}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 200);
    let bad = client
        .post(gw.url_without_key(&hook))
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 401);
    let metrics = gw.metrics().await;
    let id = hook.config.webhook_id;
    for outcome in ["accepted", "API_KEY_MISSING"] {
        let line = format!(
            r#"webhook_gateway_webhook_requests_total{{webhook_id="{id}",outcome="{outcome}"}} 1"#
        );
        assert!(metrics.contains(&line), "{line} missing: {metrics}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_non_json_bodies_are_carried_as_strings_and_raw_body_on_request() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let mut hook = Hook::new(Provider::Generic);
    hook.config.options.include_raw_body = true;
    gw.load(&[&hook]);
    let resp = reqwest::Client::new()
        .post(gw.url(&hook))
        .header("Content-Type", "text/plain")
        .body("just text")
        .send()
        .await
        .expect("answers");
    let event_id = accepted_event_id(resp).await;
    let got = gateway_testkit::consume(&gw.bootstrap, &gw.topic, 1, WITHIN).await;
    let env = envelope(&got[0]);
    assert_eq!(env["eventId"], event_id);
    assert_eq!(env["webhookMessage"]["payload"], "just text");
    assert_eq!(env["webhookMessage"]["rawBody"], "anVzdCB0ZXh0");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_signed_event_is_published_and_url_verification_is_answered_not_published() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let secret = "slack-signing-secret-1";
    let hook = Hook::new(Provider::Slack)
        .with_signing_secret(secret)
        .with_resume("event.client_msg_id");
    gw.load(&[&hook]);
    let client = reqwest::Client::new();

    // The handshake: answered with the challenge, published nowhere.
    let challenge = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let mut req = client
        .post(gw.url(&hook))
        .header("Content-Type", "application/json")
        .body(&challenge[..]);
    for (k, v) in slack_headers(secret, unix_now(), challenge) {
        req = req.header(k, v);
    }
    let resp = req.send().await.expect("answers");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );

    let event = json!({"type": "event_callback", "team_id": "T1", "event": {"type": "message", "text": "hi", "client_msg_id": "A-17"}});
    let raw = event.to_string();
    let mut req = client
        .post(gw.url(&hook))
        .header("Content-Type", "application/json")
        .body(raw.clone());
    let signed = slack_headers(secret, unix_now(), raw.as_bytes());
    for (k, v) in &signed {
        req = req.header(*k, v);
    }
    let event_id = accepted_event_id(req.send().await.expect("answers")).await;

    // Only the event is in the topic: the first (and only) record is it.
    let got = gateway_testkit::consume(&gw.bootstrap, &gw.topic, 1, WITHIN).await;
    let m = &got[0];
    assert_eq!(
        m.key(),
        Some(&b"A-17"[..]),
        "with a RESUME binding the key is the correlation value"
    );
    let env = envelope(m);
    assert_common(&env, &hook, &event_id, "SLACK");
    assert_eq!(env["webhookMessage"]["payload"], event);
    assert_eq!(
        env["webhookMessage"]["headers"]["X-Slack-Signature"],
        json!([signed[1].1])
    );
    assert_eq!(
        env["triggers"],
        json!([
            {"triggerType": "START_PROCESS", "processDefinitionId": "proc-start", "nodeId": "start-1"},
            {"triggerType": "RESUME_PROCESS", "processDefinitionId": "proc-resume", "nodeId": "catch-1",
             "processCorrelationKey": "applicationId", "correlationValue": "A-17", "processKey": "scan"}
        ])
    );
    assert_fx_headers(m, &hook, &event_id, "START_PROCESS,RESUME_PROCESS");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_form_encoded_slash_command_is_published_as_an_object() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let secret = "slack-signing-secret-2";
    let hook = Hook::new(Provider::Slack).with_signing_secret(secret);
    gw.load(&[&hook]);
    let body = "command=%2Fdeploy&text=prod&user_name=roadrunner";
    let mut req = reqwest::Client::new()
        .post(gw.url(&hook))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    for (k, v) in slack_headers(secret, unix_now(), body.as_bytes()) {
        req = req.header(k, v);
    }
    let event_id = accepted_event_id(req.send().await.expect("answers")).await;
    let got = gateway_testkit::consume(&gw.bootstrap, &gw.topic, 1, WITHIN).await;
    let env = envelope(&got[0]);
    assert_eq!(env["eventId"], event_id);
    assert_eq!(
        env["webhookMessage"]["payload"],
        json!({"command": "/deploy", "text": "prod", "user_name": "roadrunner"})
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_handshake_then_signed_whatsapp_message_resumes_by_correlation() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let app_secret = "meta-app-secret-xyz";
    let hook = Hook::new(Provider::Meta)
        .with_signing_secret(app_secret)
        .with_verify_token("verify-me")
        .with_resume("entry[0].changes[0].value.messages[0].text.body");
    gw.load(&[&hook]);
    let client = reqwest::Client::new();

    let resp = client
        .get(format!(
            "{}&hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=verify-me",
            gw.url(&hook)
        ))
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), 200);
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain")));
    assert_eq!(resp.text().await.expect("body"), "1158201444");

    let payload = json!({"object": "whatsapp_business_account", "entry": [{"id": "E1", "changes": [{"field": "messages",
        "value": {"messages": [{"from": "40712345678", "text": {"body": "A-42"}}]}}]}]});
    let raw = payload.to_string();
    let sig = format!("sha256={}", hmac_hex(app_secret, &[raw.as_bytes()]));
    let resp = client
        .post(gw.url(&hook))
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", &sig)
        .body(raw)
        .send()
        .await
        .expect("answers");
    let event_id = accepted_event_id(resp).await;

    let got = gateway_testkit::consume(&gw.bootstrap, &gw.topic, 1, WITHIN).await;
    let m = &got[0];
    assert_eq!(m.key(), Some(&b"A-42"[..]));
    let env = envelope(m);
    assert_common(&env, &hook, &event_id, "META");
    assert_eq!(env["webhookMessage"]["payload"], payload);
    assert_eq!(
        env["webhookMessage"]["headers"]["X-Hub-Signature-256"],
        json!([sig])
    );
    assert_eq!(env["triggers"][1]["correlationValue"], "A-42");
    assert_fx_headers(m, &hook, &event_id, "START_PROCESS,RESUME_PROCESS");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_prior_knowledge_is_served() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let resp = client
        .post(gw.url(&hook))
        .header("content-type", "application/json")
        .body(r#"{"via":"h2"}"#)
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let event_id = accepted_event_id(resp).await;
    let got = gateway_testkit::consume(&gw.bootstrap, &gw.topic, 1, WITHIN).await;
    let env = envelope(&got[0]);
    assert_eq!(env["eventId"], event_id);
    assert_eq!(
        env["webhookMessage"]["headers"]["Content-Type"],
        json!(["application/json"])
    );
    gw.stop().await;
}
