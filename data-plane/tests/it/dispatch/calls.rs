//! Signed calls, results with the request headers, checks before any call, key rotation.

use serde_json::json;

use super::support::{
    email_routes, python_verifies, ActionServer, App, Reply, TestDispatcher, Topics,
};
use super::{email_schema, KEY};

#[tokio::test]
async fn a_valid_invocation_is_signed_called_and_its_result_carries_the_request_headers() {
    let topics = Topics::new(1).await;
    let server = ActionServer::start(vec![Reply::ok("sent")]).await;
    let app = App::new();
    let d = TestDispatcher::start(&topics, &[]).await;
    let readyz = format!("http://{}/readyz", d.admin);
    let before = reqwest::get(&readyz).await.expect("readyz answers");
    assert_eq!(before.status(), 503, "not ready before a config is loaded");
    let (actions, keys) = email_routes(&app, &server.url());
    d.load(actions, keys).await;

    topics
        .invoke(
            &app,
            json!({"requestId":"req-1","actionName":"send_email","parameters":{"to":"zoë@example.com","amount":299.99}}),
            &[("X-Trace", "trace-7")],
        )
        .await;
    let result = topics.result_of("req-1", 1).await;
    assert_eq!(result.value["status"], "SUCCEEDED", "{:?}", result.value);
    assert_eq!(result.value["result"], "sent");
    assert_eq!(result.value["actionName"], "send_email");
    assert_eq!(result.value["httpStatus"], 200);
    assert_eq!(result.value["attempts"], 1);
    assert_eq!(result.value["error"], serde_json::Value::Null);
    assert!(result.value["durationMs"].is_u64());
    for (name, value) in app.headers() {
        assert_eq!(result.header(name), Some(value.as_str()), "{name} carried");
    }
    assert_eq!(
        result.header("X-Trace"),
        Some("trace-7"),
        "every header is carried"
    );

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let call = &seen[0];
    assert_eq!(call.header("x-signature-key-id"), Some("key-1"));
    assert_eq!(call.header("idempotency-key"), Some("req-1"));
    assert!(call
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json")));
    let body = call.json();
    assert_eq!(body["action_name"], "send_email");
    assert_eq!(
        body["parameters"],
        json!({"to":"zoë@example.com","amount":299.99})
    );
    assert!(body["timestamp"].is_i64());
    assert!(
        body.get("test").is_none(),
        "only registration requests are test requests"
    );
    assert!(
        python_verifies(KEY, &call.body),
        "Flowent's Python check accepts the signature"
    );
    assert!(
        !python_verifies("another key", &call.body),
        "and refuses another key"
    );

    let metrics = d.metrics().await;
    assert!(
        metrics.contains(r#"webhook_gateway_dispatch_invocations_total{action="send_email",status="SUCCEEDED"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("webhook_gateway_dispatch_call_duration_seconds_count{action=\"send_email\",answer=\"2xx\"} 1"), "{metrics}");
    d.stop().await;
}

#[tokio::test]
async fn invalid_parameters_unknown_actions_and_malformed_records_never_call_or_stick() {
    let topics = Topics::new(1).await;
    let server = ActionServer::start(vec![Reply::ok("sent")]).await;
    let app = App::new();
    let d = TestDispatcher::serving_email(&topics, &app, &server.url(), &[]).await;

    topics.send_email(&app, "bad-params", json!({"to":5})).await;
    topics.send_email(&app, "missing", json!({})).await;
    topics
        .invoke(
            &app,
            json!({"requestId":"unknown","actionName":"no_such_action","parameters":{}}),
            &[],
        )
        .await;
    // No requestId: nobody could match a result, so it is skipped (and counted).
    topics
        .invoke(&app, json!({"actionName":"send_email"}), &[])
        .await;
    topics.produce(Some(b"not json".to_vec()), &app, &[]).await;
    topics.produce(None, &app, &[]).await;
    topics
        .invoke(
            &app,
            json!({"requestId":"array-params","actionName":"send_email","parameters":[1]}),
            &[],
        )
        .await;
    // Another app's action name is not visible to this app.
    let other = App::new();
    topics
        .send_email(&other, "other-app", json!({"to":"a"}))
        .await;
    // After all of that, the partition still moves.
    topics.send_email(&app, "good", json!({"to":"a@b.c"})).await;

    let results = topics.results(6).await;
    let by_id = |id: &str| {
        results
            .iter()
            .find(|r| r.value["requestId"] == id)
            .unwrap_or_else(|| panic!("no result for {id}: {results:?}"))
            .value
            .clone()
    };
    let bad = by_id("bad-params");
    assert_eq!(bad["status"], "INVALID_PARAMETERS");
    assert!(
        bad["error"].as_str().is_some_and(|e| e.contains("/to")),
        "{bad}"
    );
    assert_eq!(bad["attempts"], 0);
    assert_eq!(by_id("missing")["status"], "INVALID_PARAMETERS");
    let unknown = by_id("unknown");
    assert_eq!(unknown["status"], "UNKNOWN_ACTION");
    assert!(unknown["error"]
        .as_str()
        .is_some_and(|e| e.contains("no_such_action")));
    let array = by_id("array-params");
    assert_eq!(array["status"], "FAILED");
    assert!(
        array["error"]
            .as_str()
            .is_some_and(|e| e.contains("parameters")),
        "{array}"
    );
    assert_eq!(by_id("other-app")["status"], "UNKNOWN_ACTION");
    assert_eq!(by_id("good")["status"], "SUCCEEDED");
    assert_eq!(
        server.seen().len(),
        1,
        "only the valid invocation reached the action server"
    );

    let metrics = d.metrics().await;
    for reason in ["no_request_id", "not_json_object", "no_value"] {
        assert!(
            metrics.contains(&format!(
                "webhook_gateway_dispatch_skipped_records_total{{reason=\"{reason}\"}} 1"
            )),
            "{reason}: {metrics}"
        );
    }
    d.stop().await;
}

#[tokio::test]
async fn a_revoked_hmac_key_is_never_used_again() {
    let topics = Topics::new(1).await;
    let server = ActionServer::start(vec![Reply::ok("ok")]).await;
    let app = App::new();
    let d = TestDispatcher::start(&topics, &[]).await;
    d.load(
        vec![app.action("send_email", &server.url(), email_schema())],
        vec![
            app.key("old", "old-key-value", 1_000),
            app.key("new", "new-key-value", 2_000),
        ],
    )
    .await;
    let invoke = |id: &'static str| {
        let topics = topics.clone();
        async move {
            topics
                .invoke(
                    &app,
                    json!({"requestId": id,"actionName":"send_email","parameters":{"to":"a"}}),
                    &[],
                )
                .await
        }
    };
    invoke("k-1").await;
    topics.result_of("k-1", 1).await;
    let call = &server.seen()[0];
    assert_eq!(
        call.header("x-signature-key-id"),
        Some("new"),
        "the newest key signs"
    );
    assert!(python_verifies("new-key-value", &call.body));

    d.delta(|delta| delta.hmac_key_removals.push("new".into()));
    invoke("k-2").await;
    topics.result_of("k-2", 2).await;
    let call = &server.seen()[1];
    assert_eq!(
        call.header("x-signature-key-id"),
        Some("old"),
        "a revoked key is not used again"
    );
    assert!(python_verifies("old-key-value", &call.body));

    d.delta(|delta| delta.hmac_key_removals.push("old".into()));
    invoke("k-3").await;
    let missing = topics.result_of("k-3", 3).await;
    assert_eq!(missing.value["status"], "FAILED");
    assert!(
        missing.value["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("HMAC_KEY_MISSING")),
        "{:?}",
        missing.value
    );
    assert_eq!(server.seen().len(), 2, "no call without a key");
    d.stop().await;
}

#[tokio::test]
async fn the_local_stacks_demo_action_server_accepts_the_dispatchers_calls() {
    let topics = Topics::new(1).await;
    let dir = std::env::temp_dir().join(format!("demo-action-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let keys = dir.join("keys");
    std::fs::write(&keys, format!("key-1 {KEY}\n")).expect("key file");
    let port = gateway_testkit::free_port();
    let script = gateway_testkit::repo_root().join("deploy/demo-action-server.py");
    let _server = gateway_testkit::Process::spawn(
        std::path::Path::new("python3"),
        &[
            script.to_str().expect("utf-8 path"),
            &port.to_string(),
            keys.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    let url = format!("http://127.0.0.1:{port}/send_email");
    gateway_testkit::eventually(
        "the demo action server to listen",
        std::time::Duration::from_secs(20),
        || async {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        },
    )
    .await;
    let app = App::new();
    let d = TestDispatcher::serving_email(&topics, &app, &url, &[]).await;
    topics
        .send_email(
            &app,
            "demo-1",
            json!({"to":"ops@example.com","amount":299.99,"note":"größer <&>"}),
        )
        .await;
    let result = topics.result_of("demo-1", 1).await;
    assert_eq!(result.value["status"], "SUCCEEDED", "{:?}", result.value);
    assert_eq!(result.value["result"], "sent to ops@example.com");

    // A key the server does not hold: it refuses (401), which the dispatcher never retries.
    d.delta(|delta| {
        delta.hmac_key_removals.push("key-1".into());
        delta
            .hmac_key_upserts
            .push(app.key("key-2", "a key the server does not hold", 2));
    });
    topics.send_email(&app, "demo-2", json!({"to":"a"})).await;
    let refused = topics.result_of("demo-2", 2).await;
    assert_eq!(refused.value["status"], "FAILED");
    assert_eq!(refused.value["httpStatus"], 401);
    assert_eq!(refused.value["attempts"], 1);
    d.stop().await;
}
