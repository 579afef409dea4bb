//! The real binary and a real SIGTERM: open config streams end, the process exits 0 well within
//! the grace period, and the port is released.

use std::time::Duration;

use gateway_proto::v1 as pb;
use gateway_testkit::{free_port, Process};
use uuid::Uuid;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_config_streams_and_exits_cleanly() {
    let db = gateway_testkit::fresh_database().await;
    let org = Uuid::new_v4();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let org_text = org.to_string();
    let mut cp = Process::spawn(
        std::path::Path::new(env!("CARGO_BIN_EXE_control-plane")),
        &["serve", "--log-json"],
        &[
            ("CP_LISTEN", &listen),
            ("DATABASE_URL", &db.url),
            ("CP_MIGRATE_ON_START", "true"),
            ("CP_MASTER_KEYS", TEST_MASTER_KEYS),
            (
                "CP_JWT_SIGNING_KEY",
                "test-jwt-signing-key-of-at-least-32-bytes",
            ),
            ("CP_PUBLIC_BASE_URL", TEST_BASE_URL),
            ("CP_BOOTSTRAP_TOKEN", BOOTSTRAP_TOKEN),
            ("CP_BOOTSTRAP_ORGANIZATION_ID", &org_text),
            ("CP_SHUTDOWN_GRACE", "20s"),
            ("CP_STREAM_HEARTBEAT", "60s"),
        ],
    );
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("http://{listen}")).expect("endpoint");
    let channel = gateway_testkit::eventually(
        "the control plane to accept connections",
        Duration::from_secs(30),
        || {
            let endpoint = endpoint.clone();
            async move { endpoint.connect().await.ok() }
        },
    )
    .await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    let dp_token = create_token(&admin, org, None, pb::Role::DataPlane).await;
    let jwt = exchange(&channel, &dp_token).await.expect("exchange");

    // A data plane's config stream, open and idle (heartbeats are a minute apart).
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::DataPlaneMessage {
        kind: Some(pb::data_plane_message::Kind::Hello(pb::Hello {
            data_plane_id: "sigterm-test".into(),
            known_version: 0,
            software_version: "test".into(),
            ..Default::default()
        })),
    })
    .await
    .expect("queue hello");
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {jwt}").parse().expect("header"),
    );
    let mut inbound = pb::config_distribution_service_client::ConfigDistributionServiceClient::new(
        channel.clone(),
    )
    .stream_config(request)
    .await
    .expect("stream opens")
    .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), inbound.message())
        .await
        .expect("a snapshot within 10 s")
        .expect("stream healthy");
    assert!(
        matches!(
            first.and_then(|m| m.kind),
            Some(pb::control_plane_message::Kind::Snapshot(_))
        ),
        "the stream starts with a snapshot"
    );

    cp.terminate();
    // The stream ends (cleanly or with a status), long before the grace period.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match inbound.message().await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the config stream ends promptly on SIGTERM");
    let exit = cp.wait(Duration::from_secs(15)).await;
    assert!(exit.success(), "clean exit after SIGTERM, got {exit}");
    drop(tx);
    assert!(
        std::net::TcpListener::bind(&listen).is_ok(),
        "the port is released"
    );
}

/// The settings renamed in this release still work under their old variable names for one release,
/// and each old name logs a deprecation warning at start-up naming its replacement.
#[tokio::test(flavor = "multi_thread")]
async fn old_setting_names_still_work_and_log_a_deprecation_warning() {
    let db = gateway_testkit::fresh_database().await;
    let org = Uuid::new_v4();
    let listen = format!("127.0.0.1:{}", free_port());
    let org_text = org.to_string();
    let mut cp = Process::spawn_captured(
        std::path::Path::new(env!("CARGO_BIN_EXE_control-plane")),
        &["serve"],
        &[
            ("CP_LISTEN", &listen),
            ("DATABASE_URL", &db.url),
            ("CP_MIGRATE_ON_START", "true"),
            ("CP_MASTER_KEYS", TEST_MASTER_KEYS),
            (
                "CP_JWT_SIGNING_KEY",
                "test-jwt-signing-key-of-at-least-32-bytes",
            ),
            ("CP_PUBLIC_BASE_URL", TEST_BASE_URL),
            ("CP_BOOTSTRAP_TOKEN", BOOTSTRAP_TOKEN),
            ("CP_BOOTSTRAP_ORGANIZATION_ID", &org_text),
            ("CP_SHUTDOWN_GRACE_SECS", "20"),
            ("CP_CONFIG_POLL_MS", "500"),
            ("CP_STREAM_HEARTBEAT_MS", "60000"),
        ],
    );
    for (old, new) in [
        (
            "CP_SHUTDOWN_GRACE_SECS",
            "--shutdown-grace / CP_SHUTDOWN_GRACE,",
        ),
        (
            "CP_CONFIG_POLL_MS",
            "--config-poll-interval / CP_CONFIG_POLL_INTERVAL,",
        ),
        (
            "CP_STREAM_HEARTBEAT_MS",
            "--stream-heartbeat / CP_STREAM_HEARTBEAT,",
        ),
    ] {
        let output = cp
            .wait_for_output(&format!("{old} is deprecated"), Duration::from_secs(30))
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
    // The old names configure a control plane that serves.
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("http://{listen}")).expect("endpoint");
    gateway_testkit::eventually(
        "the control plane to accept connections",
        Duration::from_secs(30),
        || {
            let endpoint = endpoint.clone();
            async move { endpoint.connect().await.ok() }
        },
    )
    .await;
    cp.terminate();
    let exit = cp.wait(Duration::from_secs(15)).await;
    assert!(exit.success(), "clean exit after SIGTERM, got {exit}");
}
