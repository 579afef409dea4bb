//! The `gateway-actions` tool the local stack prints (docs/dispatcher.md, "Trying it"), run as a
//! real process against a real dispatcher: `invoke` produces an invocation the dispatcher runs,
//! `results --request-id` prints that request's result and no other.

use std::process::Command;

use serde_json::{json, Value};

use super::support::{ActionServer, App, Reply, TestDispatcher, Topics};

fn tool(topics: &Topics, app: &App, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gateway-actions"))
        .args(args)
        .env("KAFKA_BOOTSTRAP", &topics.bootstrap)
        .env("ACTION_INVOCATIONS_TOPIC", &topics.invocations)
        .env("ACTION_RESULTS_TOPIC", &topics.results)
        .env("ORGANIZATION_ID", app.org.to_string())
        .env("WORKSPACE_ID", app.ws.to_string())
        .env("APP_ID", app.app.to_string())
        .output()
        .expect("gateway-actions runs");
    assert!(out.status.success(), "gateway-actions {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tool_invokes_an_action_and_prints_only_the_requested_result() {
    let topics = Topics::new(1).await;
    let server = ActionServer::start(vec![Reply::ok("sent")]).await;
    let app = App::new();
    let d = TestDispatcher::serving_email(&topics, &app, &server.url(), &[]).await;
    // An earlier result on the topic, which `results --request-id` of another request skips.
    topics.send_email(&app, "earlier", json!({"to": "a"})).await;
    topics.result_of("earlier", 1).await;

    let invoke = ["invoke", "--action", "send_email", "--parameters"];
    let rid = tool(
        &topics,
        &app,
        &[&invoke[..], &[r#"{"to":"ops@example.com"}"#]].concat(),
    );
    let rid = rid.trim();
    assert!(
        uuid::Uuid::parse_str(rid).is_ok(),
        "prints the requestId: {rid:?}"
    );
    let printed = tool(&topics, &app, &["results", "--request-id", rid]);
    let lines: Vec<Value> = printed
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "only the requested result: {printed}");
    assert_eq!(lines[0]["value"]["requestId"], rid);
    assert_eq!(lines[0]["value"]["status"], "SUCCEEDED", "{printed}");
    assert_eq!(lines[0]["headers"]["Fx-App-Id"], app.app.to_string());
    assert_eq!(
        server.seen()[1].json()["parameters"],
        json!({"to": "ops@example.com"})
    );
    d.stop().await;
}
