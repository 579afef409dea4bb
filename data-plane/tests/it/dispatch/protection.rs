//! Per-action concurrency and per-app rate limit.

use serde_json::json;

use super::support::{ActionServer, App, Reply, TestDispatcher, Topics};
use super::KEY;

#[tokio::test]
async fn a_slow_action_never_blocks_another_and_keeps_to_its_concurrency_limit() {
    let topics = Topics::new(1).await;
    let slow = ActionServer::start(vec![Reply::ok("slow").held()]).await;
    let fast = ActionServer::start(vec![Reply::ok("fast")]).await;
    let app = App::new();
    let d = TestDispatcher::start(&topics, &["--action-concurrency", "2"]).await;
    d.load(
        vec![
            app.action("slow_action", &slow.url(), json!({})),
            app.action("fast_action", &fast.url(), json!({})),
        ],
        vec![app.key("key-1", KEY, 1)],
    )
    .await;
    for i in 0..4 {
        topics
            .invoke(
                &app,
                json!({"requestId": format!("slow-{i}"),"actionName":"slow_action"}),
                &[],
            )
            .await;
    }
    topics
        .invoke(
            &app,
            json!({"requestId":"fast-1","actionName":"fast_action"}),
            &[],
        )
        .await;
    // The fast action's result lands while every slow call is still held.
    let fast_result = topics.result_of("fast-1", 1).await;
    assert_eq!(fast_result.value["status"], "SUCCEEDED");
    slow.wait_seen(2).await;
    assert_eq!(slow.running(), 2);
    assert_eq!(
        slow.seen().len(),
        2,
        "the slow action gets at most its 2 slots"
    );
    slow.release(4);
    let results = topics.results(5).await;
    assert_eq!(
        results
            .iter()
            .filter(|r| r.value["status"] == "SUCCEEDED")
            .count(),
        5
    );
    assert_eq!(slow.max_running(), 2);
    d.stop().await;
}

#[tokio::test]
async fn the_app_rate_limit_refuses_what_would_wait_too_long() {
    let topics = Topics::new(1).await;
    let server = ActionServer::start(vec![Reply::ok("ok")]).await;
    let app = App::new();
    let d = TestDispatcher::serving_email(
        &topics,
        &app,
        &server.url(),
        &["--app-rate-per-hour", "1", "--rate-limit-max-wait", "1s"],
    )
    .await;
    for id in ["r-1", "r-2"] {
        topics.send_email(&app, id, json!({"to":"a"})).await;
    }
    let results = topics.results(2).await;
    let second = results
        .iter()
        .find(|r| r.value["requestId"] == "r-2")
        .expect("r-2");
    assert_eq!(second.value["status"], "FAILED");
    assert!(
        second.value["error"]
            .as_str()
            .is_some_and(|e| e.contains("rate limit of 1 calls per hour")),
        "{:?}",
        second.value
    );
    assert_eq!(server.seen().len(), 1);
    assert!(d
        .metrics()
        .await
        .contains(r#"webhook_gateway_dispatch_rate_limited_total{result="refused"} 1"#));
    d.stop().await;
}
