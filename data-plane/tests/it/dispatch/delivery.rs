//! At least once: offsets committed only after the result is acknowledged.

use serde_json::json;

use super::support::{email_routes, ActionServer, App, Reply, TestDispatcher, Topics};

#[tokio::test]
async fn a_dispatcher_that_dies_mid_call_loses_no_invocation() {
    let topics = Topics::new(1).await;
    let server = ActionServer::start(vec![Reply::ok("first").held(), Reply::ok("rerun")]).await;
    let app = App::new();
    let routes = email_routes(&app, &server.url());
    // The first dispatcher runs on a runtime of its own, dropped whole mid-call: nothing of it
    // finishes, nothing is committed (as when the process is killed).
    let doomed = tokio::runtime::Runtime::new().expect("runtime");
    let admin = format!("127.0.0.1:{}", gateway_testkit::free_port());
    let config = super::support::config(&topics, &["--admin-listen", &admin]);
    let dispatcher = data_plane::dispatch::Dispatcher::new(config.clone()).expect("builds");
    dispatcher
        .actions()
        .apply_snapshot(data_plane::dispatch::DispatchSnapshot {
            version: 1,
            actions: routes.0.clone(),
            hmac_keys: routes.1.clone(),
        })
        .expect("applies");
    let listener = std::net::TcpListener::bind(config.admin_listen).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    doomed.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        dispatcher
            .serve(listener, tokio_util::sync::CancellationToken::new())
            .await
    });
    topics.send_email(&app, "survivor", json!({"to":"a"})).await;
    server.wait_seen(1).await;
    doomed.shutdown_background();

    let d = TestDispatcher::start(&topics, &[]).await;
    d.load(routes.0, routes.1).await;
    let result = topics.result_of("survivor", 1).await;
    assert_eq!(result.value["status"], "SUCCEEDED");
    assert_eq!(
        result.value["result"], "rerun",
        "the invocation ran again after the crash"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].header("idempotency-key"),
        Some("survivor"),
        "the receiver can de-duplicate"
    );
    server.release(1);
    d.stop().await;
    // Committed after its result: a third dispatcher in the group has nothing to run again.
    let again = TestDispatcher::serving_email(&topics, &app, &server.url(), &[]).await;
    topics.send_email(&app, "after", json!({"to":"a"})).await;
    topics.result_of("after", 2).await;
    assert_eq!(
        server.seen().len(),
        3,
        "only the new invocation ran: the survivor was committed"
    );
    again.stop().await;
}

#[tokio::test]
async fn shutdown_lets_a_running_call_finish_and_commits_it() {
    let topics = Topics::new(1).await;
    let server = ActionServer::start(vec![Reply::ok("finished").held(), Reply::ok("again")]).await;
    let app = App::new();
    let d =
        TestDispatcher::serving_email(&topics, &app, &server.url(), &["--shutdown-grace", "30s"])
            .await;
    topics.send_email(&app, "draining", json!({"to":"a"})).await;
    server.wait_seen(1).await;
    d.shutdown.cancel();
    // Draining: not ready any more, but the running call may still finish.
    let readyz = format!("http://{}/readyz", d.admin);
    gateway_testkit::eventually(
        "readiness to turn 503",
        std::time::Duration::from_secs(10),
        || async {
            let r = reqwest::get(&readyz).await.ok()?;
            (r.status() == 503).then_some(())
        },
    )
    .await;
    server.release(1);
    d.stop().await;
    let result = topics.result_of("draining", 1).await;
    assert_eq!(
        result.value["result"], "finished",
        "the running call finished during the grace period"
    );

    // Its offset was committed on the way out: the next dispatcher does not run it again.
    let next = TestDispatcher::serving_email(&topics, &app, &server.url(), &[]).await;
    topics.send_email(&app, "next", json!({"to":"a"})).await;
    topics.result_of("next", 2).await;
    assert_eq!(server.seen().len(), 2, "only the new invocation was called");
    next.stop().await;
}

#[tokio::test]
async fn a_call_still_running_after_the_grace_period_is_abandoned_uncommitted_and_runs_again() {
    let topics = Topics::new(1).await;
    let server =
        ActionServer::start(vec![Reply::ok("never answered").held(), Reply::ok("rerun")]).await;
    let app = App::new();
    let d =
        TestDispatcher::serving_email(&topics, &app, &server.url(), &["--shutdown-grace", "200ms"])
            .await;
    topics.send_email(&app, "cut-off", json!({"to":"a"})).await;
    server.wait_seen(1).await;
    d.stop().await;

    let next = TestDispatcher::serving_email(&topics, &app, &server.url(), &[]).await;
    let result = topics.result_of("cut-off", 1).await;
    assert_eq!(
        result.value["result"], "rerun",
        "abandoned, not committed: it ran again"
    );
    assert_eq!(server.seen().len(), 2);
    server.release(1);
    next.stop().await;
}
