//! The real binary and a real SIGTERM: readiness drops, the listener closes, the request in flight
//! is answered 200 with its record in Kafka, and the process exits 0 within the grace period.

use std::time::Duration;

use gateway_shared::snapshot::ConfigSnapshot;
use gateway_shared::Provider;
use gateway_testkit::{eventually, free_port, Process};
use tokio::io::AsyncWriteExt;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_the_request_in_flight_and_exits_cleanly() {
    let topic = gateway_testkit::unique_topic("dp-sigterm").await;
    let hook = Hook::new(Provider::Generic);
    let dir = std::env::temp_dir().join(format!("dp-sigterm-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let snapshot = dir.join("snapshot.json");
    let config = ConfigSnapshot {
        version: 1,
        webhooks: vec![hook.config.clone()],
    };
    std::fs::write(&snapshot, serde_json::to_vec(&config).expect("json")).expect("write snapshot");
    let (public, admin) = (free_port(), free_port());
    let listen = format!("127.0.0.1:{public}");
    let admin_listen = format!("127.0.0.1:{admin}");
    let mut dp = Process::spawn(
        std::path::Path::new(env!("CARGO_BIN_EXE_data-plane")),
        &[
            "--listen",
            &listen,
            "--admin-listen",
            &admin_listen,
            "--kafka-bootstrap",
            gateway_testkit::kafka_bootstrap(),
            "--kafka-topic",
            &topic,
            "--snapshot-file",
            snapshot.to_str().expect("utf-8 path"),
            "--shutdown-grace",
            "20s",
        ],
        &[],
    );
    eventually(
        "the data plane to be ready",
        Duration::from_secs(20),
        || {
            let url = format!("http://{admin_listen}/readyz");
            async move {
                let r = reqwest::get(url).await.ok()?;
                (r.status() == 200).then_some(())
            }
        },
    )
    .await;

    // A request whose body is still on its way when SIGTERM arrives.
    let body = br#"{"inflight":"sigterm"}"#;
    let head = format!(
        "POST {}?flowxApiKey={} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        hook.path(),
        hook.api_key,
        body.len()
    );
    let mut s = raw(listen.parse().expect("addr"), head.as_bytes()).await;
    s.write_all(&body[..6]).await.expect("write");
    eventually(
        "the request to be in flight",
        Duration::from_secs(10),
        || {
            let url = format!("http://{admin_listen}/metrics");
            async move {
                let text = reqwest::get(url).await.ok()?.text().await.ok()?;
                text.contains("webhook_gateway_requests_in_flight 1")
                    .then_some(())
            }
        },
    )
    .await;

    dp.terminate();
    eventually("the listener to close", Duration::from_secs(10), || {
        let listen = listen.clone();
        async move {
            tokio::net::TcpStream::connect(listen)
                .await
                .is_err()
                .then_some(())
        }
    })
    .await;
    assert!(
        dp.try_status().is_none(),
        "the process waits for the request in flight"
    );

    s.write_all(&body[6..]).await.expect("write the rest");
    let (status, head_text, resp_body) = read_response(&mut s).await;
    assert_eq!(status, 200, "{head_text}{resp_body}");
    let answer: serde_json::Value = serde_json::from_str(&resp_body).expect("json");
    let event_id = answer["eventId"].as_str().expect("eventId").to_owned();

    let exit = dp.wait(Duration::from_secs(20)).await;
    assert!(exit.success(), "clean exit after SIGTERM, got {exit}");
    let got = gateway_testkit::consume(
        gateway_testkit::kafka_bootstrap(),
        &topic,
        1,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(envelope(&got[0])["eventId"], event_id.as_str());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The settings renamed in this release still work under their old variable names for one release:
/// each old name logs a deprecation warning at start-up naming its replacement, and its value (a bare
/// number in the old unit) is used — here the `Retry-After` of a `503`.
#[tokio::test(flavor = "multi_thread")]
async fn old_setting_names_still_work_and_log_a_deprecation_warning() {
    let (public, admin) = (free_port(), free_port());
    let listen = format!("127.0.0.1:{public}");
    let admin_listen = format!("127.0.0.1:{admin}");
    let dp = Process::spawn_captured(
        std::path::Path::new(env!("CARGO_BIN_EXE_data-plane")),
        &[],
        &[
            ("DP_LISTEN", &listen),
            ("DP_ADMIN_LISTEN", &admin_listen),
            ("DP_KAFKA_BOOTSTRAP", gateway_testkit::kafka_bootstrap()),
            ("DP_RETRY_AFTER_SECS", "3"),
            ("DP_STREAM_HEARTBEAT_MS", "2000"),
            ("DP_FAILED_TRIGGER_LINGER_MS", "100"),
        ],
    );
    for (old, new) in [
        ("DP_RETRY_AFTER_SECS", "--retry-after / DP_RETRY_AFTER,"),
        (
            "DP_STREAM_HEARTBEAT_MS",
            "--stream-heartbeat / DP_STREAM_HEARTBEAT,",
        ),
        (
            "DP_FAILED_TRIGGER_LINGER_MS",
            "--failed-trigger-linger / DP_FAILED_TRIGGER_LINGER,",
        ),
    ] {
        let output = dp
            .wait_for_output(&format!("{old} is deprecated"), Duration::from_secs(20))
            .await;
        let line = output
            .lines()
            .find(|l| l.contains(&format!("{old} is deprecated")))
            .expect("the line just found");
        assert!(line.contains("WARN"), "logged as a warning: {line}");
        assert!(
            line.contains(&format!("use {new}")),
            "names its replacement: {line}"
        );
    }
    // No snapshot is loaded: every webhook URL is `503 NOT_READY` with the old setting's Retry-After.
    let hook = Hook::new(Provider::Generic);
    let url = format!(
        "http://{listen}{}?flowxApiKey={}",
        hook.path(),
        hook.api_key
    );
    let response = eventually(
        "the public listener to answer",
        Duration::from_secs(20),
        || {
            let url = url.clone();
            async move {
                reqwest::Client::new()
                    .post(url)
                    .body("{}")
                    .send()
                    .await
                    .ok()
            }
        },
    )
    .await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
}
