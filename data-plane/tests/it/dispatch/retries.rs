//! Retries (5xx, 429, connection failures; never other 4xx) and the circuit breaker.

use serde_json::json;

use super::support::{dead_url, python_verifies, ActionServer, App, Reply, TestDispatcher, Topics};
use super::KEY;

#[tokio::test]
async fn a_503_then_200_succeeds_after_a_retry_with_the_same_idempotency_key() {
    let topics = Topics::new(1).await;
    let mut busy = Reply::new(503, r#"{"error":"busy"}"#);
    busy.headers.push(("retry-after", "0".into()));
    let server = ActionServer::start(vec![busy, Reply::ok("second time")]).await;
    let app = App::new();
    let d = TestDispatcher::serving_email(&topics, &app, &server.url(), &[]).await;
    topics.send_email(&app, "retry-1", json!({"to":"a"})).await;
    let result = topics.result_of("retry-1", 1).await;
    assert_eq!(result.value["status"], "SUCCEEDED", "{:?}", result.value);
    assert_eq!(result.value["attempts"], 2);
    assert_eq!(result.value["result"], "second time");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    for call in &seen {
        assert_eq!(
            call.header("idempotency-key"),
            Some("retry-1"),
            "same key on every attempt"
        );
        assert!(python_verifies(KEY, &call.body), "every attempt is signed");
    }
    assert!(d
        .metrics()
        .await
        .contains(r#"webhook_gateway_dispatch_retries_total{action="send_email"} 1"#));
    d.stop().await;
}

#[tokio::test]
async fn a_400_fails_without_a_retry() {
    let topics = Topics::new(1).await;
    let server = ActionServer::start(vec![Reply::new(
        400,
        r#"{"result":null,"error":"to is not an address"}"#,
    )])
    .await;
    let app = App::new();
    let d = TestDispatcher::serving_email(&topics, &app, &server.url(), &[]).await;
    topics
        .send_email(&app, "four-hundred", json!({"to":"a"}))
        .await;
    let result = topics.result_of("four-hundred", 1).await;
    assert_eq!(result.value["status"], "FAILED");
    assert_eq!(result.value["httpStatus"], 400);
    assert_eq!(result.value["attempts"], 1);
    assert_eq!(
        result.value["error"],
        "action server answered 400: to is not an address"
    );
    assert_eq!(server.seen().len(), 1, "a 4xx is never retried");
    d.stop().await;
}

#[tokio::test]
async fn a_dead_server_opens_the_breaker() {
    let topics = Topics::new(1).await;
    let app = App::new();
    let d = TestDispatcher::serving_email(
        &topics,
        &app,
        &dead_url(),
        &[
            "--breaker-failures",
            "2",
            "--max-attempts",
            "2",
            "--breaker-cool-down",
            "1h",
        ],
    )
    .await;
    topics.send_email(&app, "dead-1", json!({"to":"a"})).await;
    let first = topics.result_of("dead-1", 1).await;
    assert_eq!(first.value["status"], "FAILED", "{:?}", first.value);
    assert_eq!(first.value["attempts"], 2);
    assert_eq!(first.value["httpStatus"], serde_json::Value::Null);
    assert!(
        first.value["error"]
            .as_str()
            .is_some_and(|e| e.contains("connection refused")),
        "{:?}",
        first.value
    );

    topics.send_email(&app, "dead-2", json!({"to":"a"})).await;
    let second = topics.result_of("dead-2", 2).await;
    assert_eq!(second.value["status"], "CIRCUIT_OPEN", "{:?}", second.value);
    assert_eq!(
        second.value["attempts"], 0,
        "no call while the breaker is open"
    );
    let metrics = d.metrics().await;
    assert!(
        metrics.contains(&format!(
            "webhook_gateway_dispatch_breaker_state{{app_id=\"{}\",action=\"send_email\"}} 1",
            app.app
        )),
        "{metrics}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_half_open_probe_closes_the_breaker_when_the_server_is_back() {
    let topics = Topics::new(1).await;
    let server = ActionServer::start(vec![Reply::new(500, ""), Reply::ok("back")]).await;
    let app = App::new();
    let d = TestDispatcher::serving_email(
        &topics,
        &app,
        &server.url(),
        &[
            "--breaker-failures",
            "1",
            "--max-attempts",
            "1",
            "--breaker-cool-down",
            "200ms",
        ],
    )
    .await;
    topics.send_email(&app, "p-1", json!({"to":"a"})).await;
    assert_eq!(topics.result_of("p-1", 1).await.value["status"], "FAILED");
    // Past the cool-down, the next invocation is the probe; it succeeds and closes the breaker.
    let mut n = 1;
    let probe = loop {
        n += 1;
        let id = format!("p-{n}");
        topics.send_email(&app, &id, json!({"to":"a"})).await;
        let r = topics.result_of(&id, n).await;
        if r.value["status"] != "CIRCUIT_OPEN" {
            break r;
        }
        assert!(n < 200, "the breaker never let a probe through");
    };
    assert_eq!(probe.value["status"], "SUCCEEDED", "{:?}", probe.value);
    assert_eq!(server.seen().len(), 2, "one failing call, then the probe");
    d.stop().await;
}
