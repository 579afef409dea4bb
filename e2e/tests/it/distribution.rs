//! Config distribution end to end: changes made through the gRPC API reach data planes over
//! the stream, across replicas, and data planes keep serving without the control plane.

use gateway_proto::v1 as pb;
use rdkafka::Message;
use uuid::Uuid;

use crate::support::{
    app, sample, with_key, Api, ControlPlane, DataPlane, TestTls, BOOTSTRAP_TOKEN, WAIT,
};

#[tokio::test(flavor = "multi_thread")]
async fn api_changes_reach_the_data_plane_over_the_stream() {
    let db = gateway_testkit::fresh_database().await;
    let topic = gateway_testkit::unique_topic("e2e-stream").await;
    let org = Uuid::new_v4();
    let cp = ControlPlane::start(&db.url, org).await;
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let dp_token = api.data_plane_token(org).await;
    let dp = DataPlane::start(&cp.url(), &dp_token, &topic, &["--data-plane-id", "e2e-dp"]).await;
    gateway_testkit::eventually("data plane ready from its first snapshot", WAIT, || async {
        dp.ready().await.then_some(())
    })
    .await;

    // create + secret + bind + activate → a Slack-signed POST is accepted and lands in Kafka
    let app = app(org);
    let (id, url) = api
        .slack_webhook(&app, "orders-e2e", "slack-secret-one")
        .await;
    dp.eventually_slack("activated webhook accepted", &url, "slack-secret-one", 200)
        .await;
    let records =
        gateway_testkit::consume(gateway_testkit::kafka_bootstrap(), &topic, 1, WAIT).await;
    let envelope: serde_json::Value =
        serde_json::from_slice(records[0].payload().expect("payload")).expect("json envelope");
    assert_eq!(envelope["webhookId"], id.as_str());
    assert_eq!(envelope["provider"], "SLACK");
    assert_eq!(envelope["organizationId"], org.to_string());

    // deactivate → 404
    api.triggers()
        .deactivate_trigger(api.req(pb::DeactivateTriggerRequest {
            webhook_id: id.clone(),
        }))
        .await
        .expect("deactivate");
    dp.eventually_slack("deactivated webhook gone", &url, "slack-secret-one", 404)
        .await;
    api.triggers()
        .activate_trigger(api.req(pb::ActivateTriggerRequest {
            webhook_id: id.clone(),
        }))
        .await
        .expect("re-activate");
    dp.eventually_slack("re-activated webhook back", &url, "slack-secret-one", 200)
        .await;

    // reset key → old key 401, new key 200
    let reset = api
        .webhooks()
        .reset_api_key(api.req(pb::ResetApiKeyRequest {
            webhook_id: id.clone(),
            grace_period_seconds: 0,
        }))
        .await
        .expect("reset key")
        .into_inner();
    dp.eventually_slack("old key refused", &url, "slack-secret-one", 401)
        .await;
    let new_url = with_key(&url, &reset.api_key);
    assert_eq!(
        dp.post_slack(&new_url, "slack-secret-one", "{}").await,
        200,
        "the new key works"
    );

    // secret changed through a config param → the new signature is accepted, the old one is not
    api.params()
        .set_config_param(api.req(pb::SetConfigParamRequest {
            app: Some(app.clone()),
            name: "slackSigning".into(),
            kind: pb::ConfigParamKind::Secret as i32,
            value: "slack-secret-two".into(),
        }))
        .await
        .expect("set param");
    api.webhooks()
        .set_provider_secret(api.req(pb::SetProviderSecretRequest {
            webhook_id: id.clone(),
            signing_secret: "${configParam.slackSigning}".into(),
            ..Default::default()
        }))
        .await
        .expect("secret from placeholder");
    dp.eventually_slack(
        "placeholder secret served",
        &new_url,
        "slack-secret-two",
        200,
    )
    .await;
    api.params()
        .set_config_param(api.req(pb::SetConfigParamRequest {
            app: Some(app.clone()),
            name: "slackSigning".into(),
            kind: pb::ConfigParamKind::Secret as i32,
            value: "slack-secret-three".into(),
        }))
        .await
        .expect("change param");
    dp.eventually_slack(
        "changed param re-resolved and streamed",
        &new_url,
        "slack-secret-three",
        200,
    )
    .await;
    assert_eq!(
        dp.post_slack(&new_url, "slack-secret-two", "{}").await,
        401,
        "the old secret is gone"
    );

    // the control plane sees the data plane and its acknowledged version
    let planes = api
        .distribution()
        .list_data_planes(api.req(pb::ListDataPlanesRequest {}))
        .await
        .expect("list data planes")
        .into_inner();
    assert_eq!(planes.data_planes.len(), 1);
    assert_eq!(planes.data_planes[0].data_plane_id, "e2e-dp");
    assert_eq!(planes.data_planes[0].acked_version, planes.current_version);

    // ... and exports it: versions, connections and convergence figures
    let metrics = cp.metrics_text().await;
    let current = planes.current_version as f64;
    assert_eq!(
        sample(&metrics, "gateway_config_version"),
        Some(current),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "gateway_config_stream_connections"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "gateway_config_acked_version{data_plane=\"e2e-dp\"}"
        ),
        Some(current)
    );
    let converged = sample(&metrics, "gateway_config_all_acked_seconds_count").unwrap_or(0.0);
    assert!(
        converged >= 1.0,
        "every change was acknowledged by the one data plane: {metrics}"
    );
    let per_plane = sample(
        &metrics,
        "gateway_config_convergence_seconds_count{data_plane=\"e2e-dp\"}",
    );
    assert!(per_plane.unwrap_or(0.0) >= 1.0, "{metrics}");

    dp.stop().await;
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_changes_through_postgres() {
    let db = gateway_testkit::fresh_database().await;
    let topic = gateway_testkit::unique_topic("e2e-replicas").await;
    let org = Uuid::new_v4();
    let a = ControlPlane::start(&db.url, org).await;
    let b = ControlPlane::start(&db.url, org).await;
    let api_a = Api::login(a.channel().await, BOOTSTRAP_TOKEN).await;
    let api_b = Api::login(b.channel().await, BOOTSTRAP_TOKEN).await;
    let token = api_a.data_plane_token(org).await;
    let dp_a = DataPlane::start(&a.url(), &token, &topic, &[]).await;
    let dp_b = DataPlane::start(&b.url(), &token, &topic, &[]).await;

    let app = app(org);
    let (_, url_1) = api_a.slack_webhook(&app, "made-on-a", "secret-a").await;
    let (_, url_2) = api_b.slack_webhook(&app, "made-on-b", "secret-b").await;
    dp_b.eventually_slack(
        "change made through replica A reaches B's data plane",
        &url_1,
        "secret-a",
        200,
    )
    .await;
    dp_a.eventually_slack(
        "change made through replica B reaches A's data plane",
        &url_2,
        "secret-b",
        200,
    )
    .await;

    dp_a.stop().await;
    dp_b.stop().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn data_plane_keeps_serving_and_cold_starts_from_its_cache_without_the_control_plane() {
    let db = gateway_testkit::fresh_database().await;
    let topic = gateway_testkit::unique_topic("e2e-cache").await;
    let org = Uuid::new_v4();
    let cache_dir = std::env::temp_dir().join(format!("e2e-cache-{}", Uuid::new_v4().simple()));
    let cache = cache_dir.join("snapshot.bin");
    let cache_arg = cache.to_string_lossy().into_owned();

    let cp = ControlPlane::start(&db.url, org).await;
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let token = api.data_plane_token(org).await;
    let app = app(org);
    let (_, url) = api.slack_webhook(&app, "cached", "cache-secret").await;
    let (_, second) = api.slack_webhook(&app, "cached-too", "second-secret").await;
    // the data plane's first snapshot holds both webhooks, in two chunks
    let dp = DataPlane::start(&cp.url(), &token, &topic, &["--snapshot-cache", &cache_arg]).await;
    dp.eventually_slack("served from the stream", &url, "cache-secret", 200)
        .await;
    assert_eq!(dp.post_slack(&second, "second-secret", "{}").await, 200);
    gateway_testkit::eventually("snapshot cache written", WAIT, || async {
        cache.exists().then_some(())
    })
    .await;

    // control plane gone → the data plane keeps serving its last config
    let cp_url = cp.url();
    cp.stop().await;
    for _ in 0..3 {
        assert_eq!(
            dp.post_slack(&url, "cache-secret", "{}").await,
            200,
            "still serving without the control plane"
        );
    }
    dp.stop().await;

    // a data plane started while the control plane is down serves from the disk cache
    let cold = DataPlane::start(&cp_url, &token, &topic, &["--snapshot-cache", &cache_arg]).await;
    gateway_testkit::eventually("cold start from cache", WAIT, || async {
        cold.ready().await.then_some(())
    })
    .await;
    assert_eq!(cold.post_slack(&url, "cache-secret", "{}").await, 200);
    cold.stop().await;

    // a corrupt cache is ignored: not ready, no crash, nothing served
    let mut bytes = std::fs::read(&cache).expect("cache file");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&cache, &bytes).expect("corrupt it");
    let corrupt =
        DataPlane::start(&cp_url, &token, &topic, &["--snapshot-cache", &cache_arg]).await;
    gateway_testkit::eventually("admin listener up", WAIT, || async {
        reqwest::get(format!("http://{}/healthz", corrupt.admin))
            .await
            .ok()
            .filter(|r| r.status() == 200)
    })
    .await;
    // The cache is read before the listeners start, so by now it has been judged.
    assert!(
        !corrupt.ready().await,
        "a corrupt cache must not make the data plane ready"
    );
    assert!(
        !corrupt.task.is_finished(),
        "a corrupt cache must not crash the data plane"
    );
    assert_ne!(
        corrupt.post_slack(&url, "cache-secret", "{}").await,
        200,
        "nothing is served from a corrupt cache"
    );
    corrupt.stop().await;
    let _ = std::fs::remove_dir_all(cache_dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_stream_runs_over_tls_and_needs_a_trusted_certificate() {
    let db = gateway_testkit::fresh_database().await;
    let topic = gateway_testkit::unique_topic("e2e-tls").await;
    let org = Uuid::new_v4();
    let tls = TestTls::generate();
    let cp = ControlPlane::start_with(&db.url, org, Some(&tls)).await;
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let token = api.data_plane_token(org).await;
    let (_, url) = api.slack_webhook(&app(org), "over-tls", "tls-secret").await;

    let ca_file = tls.cert_file.to_string_lossy().into_owned();
    let trusting = DataPlane::start(
        &cp.url(),
        &token,
        &topic,
        &[
            "--control-plane-ca-file",
            &ca_file,
            "--control-plane-tls-domain",
            "localhost",
        ],
    )
    .await;
    trusting
        .eventually_slack("config received over TLS", &url, "tls-secret", 200)
        .await;

    // The data plane's own endpoint builder refuses a control plane whose certificate it does not
    // trust, and a plaintext client cannot talk to the TLS listener at all.
    let stream_config = |ca: &str| data_plane::StreamClientConfig {
        endpoint: cp.url(),
        data_plane_id: "probe".into(),
        tls_ca_pem: Some(ca.as_bytes().to_vec()),
        tls_domain: Some("localhost".into()),
        heartbeat: std::time::Duration::from_secs(1),
        max_backoff: std::time::Duration::from_secs(1),
    };
    let trusted = data_plane::endpoint(&stream_config(&tls.cert_pem)).expect("endpoint");
    assert!(
        trusted.connect().await.is_ok(),
        "the configured CA is trusted"
    );
    let other = TestTls::generate();
    let untrusted = data_plane::endpoint(&stream_config(&other.cert_pem)).expect("endpoint");
    assert!(
        untrusted.connect().await.is_err(),
        "a certificate from another CA is refused"
    );
    let plaintext = tonic::transport::Endpoint::from_shared(format!("http://{}", cp.addr))
        .expect("endpoint")
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let answer = pb::auth_service_client::AuthServiceClient::new(channel)
            .exchange_token(pb::ExchangeTokenRequest {
                api_token: BOOTSTRAP_TOKEN.into(),
            })
            .await;
        assert!(
            answer.is_err(),
            "a plaintext call to the TLS listener must fail"
        );
    }

    trusting.stop().await;
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_data_plane_is_dropped_after_three_missed_heartbeats() {
    let db = gateway_testkit::fresh_database().await;
    let org = Uuid::new_v4();
    let cp = ControlPlane::start(&db.url, org).await;
    let channel = cp.channel().await;
    let api = Api::login(channel.clone(), BOOTSTRAP_TOKEN).await;
    let token = api.data_plane_token(org).await;
    let dp_api = Api::login(channel, &token).await;

    // Say Hello, then nothing: keep the sender open so the stream stays half-open.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(pb::DataPlaneMessage {
        kind: Some(pb::data_plane_message::Kind::Hello(pb::Hello {
            data_plane_id: "silent".into(),
            known_version: 0,
            software_version: "test".into(),
            ..Default::default()
        })),
    })
    .await
    .expect("hello queued");
    let mut inbound = dp_api
        .distribution()
        .stream_config(dp_api.req(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .await
        .expect("stream opens")
        .into_inner();
    let started = std::time::Instant::now();
    let mut heartbeats = 0;
    let mut snapshot = false;
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match inbound.message().await {
                Ok(Some(m)) => match m.kind {
                    Some(pb::control_plane_message::Kind::Heartbeat(_)) => heartbeats += 1,
                    Some(pb::control_plane_message::Kind::Snapshot(_)) => snapshot = true,
                    _ => {}
                },
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the control plane must close a stream whose peer went silent"
    );
    assert!(snapshot, "the first answer is a snapshot");
    assert!(
        heartbeats >= 2,
        "heartbeats were sent while idle ({heartbeats})"
    );
    // heartbeat is 500 ms in these tests: closed after three silent intervals, not at once
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    drop(tx);
    cp.stop().await;
}

/// The data plane's connections as the control plane behind `api` lists them: (id, connected at).
async fn connections(api: &Api) -> Vec<(String, i64)> {
    api.distribution()
        .list_data_planes(api.req(pb::ListDataPlanesRequest {}))
        .await
        .expect("list data planes")
        .into_inner()
        .data_planes
        .into_iter()
        .map(|p| (p.data_plane_id, p.connected_at_unix_ms))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_jwt_ends_the_stream_and_the_data_plane_exchanges_again_and_keeps_up() {
    let db = gateway_testkit::fresh_database().await;
    let topic = gateway_testkit::unique_topic("e2e-jwt-expiry").await;
    let org = Uuid::new_v4();
    let cp = ControlPlane::start_configured(&db.url, org, None, |c| {
        c.jwt_ttl = std::time::Duration::from_secs(2);
    })
    .await;
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let dp_token = api.data_plane_token(org).await;
    let dp = DataPlane::start(&cp.url(), &dp_token, &topic, &["--data-plane-id", "dp-ttl"]).await;
    let first = gateway_testkit::eventually("the data plane connected", WAIT, || async {
        connections(&api).await.first().map(|(_, at)| *at)
    })
    .await;
    // Its JWT expires after 2 s: the control plane ends the stream and the plane comes back with a
    // fresh exchange of the same API token.
    gateway_testkit::eventually("the data plane reconnected after expiry", WAIT, || async {
        let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
        connections(&api)
            .await
            .iter()
            .any(|(id, at)| id == "dp-ttl" && *at > first)
            .then_some(())
    })
    .await;
    // ... and keeps receiving config.
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let (_, url) = api
        .slack_webhook(&app(org), "after-expiry", "slack-secret")
        .await;
    dp.eventually_slack(
        "a change after the expiry arrives",
        &url,
        "slack-secret",
        200,
    )
    .await;
    dp.stop().await;
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_the_data_plane_token_through_one_replica_ends_its_stream_on_another() {
    let db = gateway_testkit::fresh_database().await;
    let topic = gateway_testkit::unique_topic("e2e-revoke").await;
    let org = Uuid::new_v4();
    let a = ControlPlane::start(&db.url, org).await;
    let b = ControlPlane::start(&db.url, org).await;
    let api_a = Api::login(a.channel().await, BOOTSTRAP_TOKEN).await;
    let api_b = Api::login(b.channel().await, BOOTSTRAP_TOKEN).await;
    let created = api_a
        .admin()
        .create_api_token(api_a.req(pb::CreateApiTokenRequest {
            organization_id: org.to_string(),
            role: pb::Role::DataPlane as i32,
            name: "to revoke".into(),
            ..Default::default()
        }))
        .await
        .expect("token")
        .into_inner();
    let dp = DataPlane::start(
        &b.url(),
        &created.api_token,
        &topic,
        &["--data-plane-id", "dp-revoked"],
    )
    .await;
    let (_, url) = api_a
        .slack_webhook(&app(org), "served", "slack-secret")
        .await;
    dp.eventually_slack("served before the revocation", &url, "slack-secret", 200)
        .await;
    assert_eq!(connections(&api_b).await.len(), 1);

    api_a
        .admin()
        .revoke_api_token(api_a.req(pb::RevokeApiTokenRequest {
            id: created.token.expect("token row").id,
        }))
        .await
        .expect("revoked through replica A");
    gateway_testkit::eventually("replica B ends the revoked stream", WAIT, || async {
        connections(&api_b).await.is_empty().then_some(())
    })
    .await;
    // The plane cannot come back with the revoked token, and keeps serving its last good config.
    assert_eq!(
        dp.post_slack(&url, "slack-secret", "{}").await,
        200,
        "the last good config is still served"
    );
    dp.stop().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_is_compressed_and_a_data_plane_still_works_with_a_control_plane_that_does_not_compress(
) {
    use control_plane::distribution::StreamCompression;
    for (compression, expected) in [
        (StreamCompression::Zstd, "zstd"),
        (StreamCompression::None, "identity"),
    ] {
        let db = gateway_testkit::fresh_database().await;
        let topic = gateway_testkit::unique_topic("e2e-compression").await;
        let org = Uuid::new_v4();
        let cp = ControlPlane::start_configured(&db.url, org, None, |c| {
            c.distribution.stream_compression = compression;
        })
        .await;
        let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
        let app = app(org);
        // Two webhooks: the first snapshot comes in two chunks (one webhook per chunk here).
        let (_, first) = api.slack_webhook(&app, "packed-one", "secret-one").await;
        let (_, second) = api.slack_webhook(&app, "packed-two", "secret-two").await;
        let token = api.data_plane_token(org).await;
        let dp = DataPlane::start(
            &cp.url(),
            &token,
            &topic,
            &["--data-plane-id", "e2e-compressed"],
        )
        .await;
        dp.eventually_slack("served from the snapshot", &first, "secret-one", 200)
            .await;
        assert_eq!(dp.post_slack(&second, "secret-two", "{}").await, 200);
        // A delta crosses the same stream.
        let (_, third) = api
            .slack_webhook(&app, "packed-three", "secret-three")
            .await;
        dp.eventually_slack("served from a delta", &third, "secret-three", 200)
            .await;
        let planes = api
            .distribution()
            .list_data_planes(api.req(pb::ListDataPlanesRequest {}))
            .await
            .expect("list data planes")
            .into_inner()
            .data_planes;
        let encodings: Vec<(String, String)> = planes
            .into_iter()
            .map(|p| (p.data_plane_id, p.compression))
            .collect();
        assert_eq!(
            encodings,
            [("e2e-compressed".to_owned(), expected.to_owned())],
            "{compression:?}"
        );
        dp.stop().await;
        cp.stop().await;
    }
}
