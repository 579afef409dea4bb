//! Every error of the HTTP contract: status and `error.code`, in the order of docs/data-plane.md
//! ("HTTP contract").

use std::sync::{Arc, Mutex};
use std::time::Duration;

use data_plane::{Rejection, RejectionReporter};
use gateway_shared::snapshot::ConfigDelta;
use gateway_shared::Provider;
use tokio::io::AsyncWriteExt;

use crate::support::*;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test(flavor = "multi_thread")]
async fn routing_errors() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let generic = Hook::new(Provider::Generic);
    let slack = Hook::new(Provider::Slack).with_signing_secret("s");
    gw.load(&[&generic, &slack]);

    // 404: unknown webhook, a known id under another app, not a webhook URL at all.
    let unknown = Hook::new(Provider::Generic);
    assert_error(
        client()
            .post(gw.url(&unknown))
            .send()
            .await
            .expect("answers"),
        404,
        "WEBHOOK_NOT_FOUND",
    )
    .await;
    let mut other_app = generic.clone();
    other_app.config.app_id = gateway_shared::AppId::new_random();
    assert_error(
        client()
            .post(gw.url(&other_app))
            .send()
            .await
            .expect("answers"),
        404,
        "WEBHOOK_NOT_FOUND",
    )
    .await;
    let resp = client()
        .post(format!("http://{}/somewhere/else", gw.addr))
        .send()
        .await
        .expect("answers");
    assert_error(resp, 404, "WEBHOOK_NOT_FOUND").await;

    // 404: deactivated (the stream removes it from the table).
    gw.routes
        .apply_delta(ConfigDelta {
            from_version: 1,
            to_version: 2,
            upserts: vec![],
            removals: vec![generic.config.webhook_id],
        })
        .expect("delta applies");
    assert_error(
        client()
            .post(gw.url(&generic))
            .send()
            .await
            .expect("answers"),
        404,
        "WEBHOOK_NOT_FOUND",
    )
    .await;

    // 400: provider segment does not match the registration (both directions, and an unknown segment).
    let mut as_generic = slack.clone();
    as_generic.config.provider = Provider::Generic;
    assert_error(
        client()
            .post(gw.url(&as_generic))
            .send()
            .await
            .expect("answers"),
        400,
        "PROVIDER_MISMATCH",
    )
    .await;
    let mut as_meta = slack.clone();
    as_meta.config.provider = Provider::Meta;
    assert_error(
        client()
            .post(gw.url(&as_meta))
            .send()
            .await
            .expect("answers"),
        400,
        "PROVIDER_MISMATCH",
    )
    .await;
    let bogus = gw
        .url(&slack)
        .replace("/incoming/slack/", "/incoming/bogus/");
    assert_error(
        client().post(bogus).send().await.expect("answers"),
        400,
        "PROVIDER_MISMATCH",
    )
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn method_and_api_key_errors() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);

    let resp = client().get(gw.url(&hook)).send().await.expect("answers");
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    assert_error(resp, 405, "METHOD_NOT_ALLOWED").await;
    let resp = client().put(gw.url(&hook)).send().await.expect("answers");
    assert_error(resp, 405, "METHOD_NOT_ALLOWED").await;

    let resp = client()
        .post(gw.url_without_key(&hook))
        .body("{}")
        .send()
        .await
        .expect("answers");
    assert_error(resp, 401, "API_KEY_MISSING").await;
    let wrong = format!("{}?flowxApiKey=not-the-key", gw.url_without_key(&hook));
    assert_error(
        client()
            .post(wrong)
            .body("{}")
            .send()
            .await
            .expect("answers"),
        401,
        "API_KEY_INVALID",
    )
    .await;
    let empty = format!("{}?flowxApiKey=", gw.url_without_key(&hook));
    assert_error(
        client()
            .post(empty)
            .body("{}")
            .send()
            .await
            .expect("answers"),
        401,
        "API_KEY_INVALID",
    )
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn signature_failures_share_one_401_body() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let secret = "slack-secret";
    let slack = Hook::new(Provider::Slack).with_signing_secret(secret);
    let slack_no_secret = Hook::new(Provider::Slack);
    let meta = Hook::new(Provider::Meta)
        .with_signing_secret("app-secret")
        .with_verify_token("vt");
    gw.load(&[&slack, &slack_no_secret, &meta]);
    let body = br#"{"type":"event_callback"}"#;
    let now = unix_now();

    let post = |url: String, headers: Vec<(&'static str, String)>| {
        let mut req = client()
            .post(url)
            .header("Content-Type", "application/json")
            .body(&body[..]);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let mut bodies = Vec::new();
    let cases: Vec<(String, Vec<(&'static str, String)>)> = vec![
        // Slack: wrong secret, stale, from the future, missing both headers, malformed, no secret configured.
        (gw.url(&slack), slack_headers("other-secret", now, body)),
        (gw.url(&slack), slack_headers(secret, now - 301, body)),
        (gw.url(&slack), slack_headers(secret, now + 330, body)), // margin: the clock moves toward it while the test runs
        (gw.url(&slack), vec![]),
        (
            gw.url(&slack),
            vec![
                ("X-Slack-Request-Timestamp", "yesterday".into()),
                ("X-Slack-Signature", "v0=nothex".into()),
            ],
        ),
        (
            gw.url(&slack),
            vec![
                ("X-Slack-Request-Timestamp", now.to_string()),
                ("X-Slack-Signature", "v1=00".into()),
            ],
        ),
        (gw.url(&slack_no_secret), slack_headers(secret, now, body)),
        // Meta: wrong secret, missing, malformed.
        (
            gw.url(&meta),
            vec![(
                "X-Hub-Signature-256",
                format!("sha256={}", hmac_hex("wrong", &[body])),
            )],
        ),
        (gw.url(&meta), vec![]),
        (
            gw.url(&meta),
            vec![("X-Hub-Signature-256", "sha1=abc".into())],
        ),
    ];
    for (url, headers) in cases {
        let resp = post(url, headers).await.expect("answers");
        bodies.push(assert_error(resp, 401, "SIGNATURE_INVALID").await);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "one identical body for every cause: {bodies:?}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_verification_failure_is_403() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let meta = Hook::new(Provider::Meta)
        .with_signing_secret("app-secret")
        .with_verify_token("vt");
    gw.load(&[&meta]);
    for query in [
        "&hub.mode=subscribe&hub.challenge=123&hub.verify_token=wrong",
        "&hub.mode=subscribe&hub.verify_token=vt",
        "&hub.mode=other&hub.challenge=123&hub.verify_token=vt",
        "",
    ] {
        let resp = client()
            .get(format!("{}{query}", gw.url(&meta)))
            .send()
            .await
            .expect("answers");
        assert_error(resp, 403, "VERIFICATION_FAILED").await;
    }
    // The API key is checked first, for the handshake too.
    let resp = client()
        .get(format!(
            "{}?flowxApiKey=nope&hub.mode=subscribe&hub.challenge=1&hub.verify_token=vt",
            gw.url_without_key(&meta)
        ))
        .send()
        .await
        .expect("answers");
    assert_error(resp, 401, "API_KEY_INVALID").await;
    let resp = client()
        .delete(gw.url(&meta))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, POST")
    );
    assert_error(resp, 405, "METHOD_NOT_ALLOWED").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn payload_and_correlation_errors() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let generic = Hook::new(Provider::Generic);
    let resume = Hook::new(Provider::Generic).with_resume("application.applicationId");
    gw.load(&[&generic, &resume]);
    let post = |url: String, ct: &'static str, body: &'static str| {
        client()
            .post(url)
            .header("Content-Type", ct)
            .body(body)
            .send()
    };

    assert_error(
        post(gw.url(&generic), "application/json", "{not json")
            .await
            .expect("answers"),
        400,
        "INVALID_JSON",
    )
    .await;
    assert_error(
        post(gw.url(&generic), "application/cloudevents+json", "[1,")
            .await
            .expect("answers"),
        400,
        "INVALID_JSON",
    )
    .await;
    for body in [
        r#"{"application":{}}"#,
        r#"{"application":{"applicationId":null}}"#,
        r#"{"application":{"applicationId":{"nested":1}}}"#,
        r#"[1,2]"#,
    ] {
        let resp = post(gw.url(&resume), "application/json", body)
            .await
            .expect("answers");
        assert_error(resp, 400, "CORRELATION_KEY_UNRESOLVED").await;
    }
    // A string payload has no fields to resolve either.
    let resp = post(gw.url(&resume), "text/plain", "applicationId=1")
        .await
        .expect("answers");
    assert_error(resp, 400, "CORRELATION_KEY_UNRESOLVED").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn not_ready_before_a_snapshot_and_ready_after() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let hook = Hook::new(Provider::Generic);
    let ready = reqwest::get(format!("http://{}/readyz", gw.admin))
        .await
        .expect("answers");
    assert_eq!(ready.status(), 503);
    let resp = client()
        .post(gw.url(&hook))
        .body("{}")
        .send()
        .await
        .expect("answers");
    assert!(resp.headers().get("retry-after").is_some());
    assert_error(resp, 503, "NOT_READY").await;
    gw.load(&[&hook]);
    // Ready once the snapshot is loaded and the topic's record limit has been read.
    let readyz = format!("http://{}/readyz", gw.admin);
    gateway_testkit::eventually("/readyz 200", Duration::from_secs(30), || async {
        let ready = reqwest::get(&readyz).await.ok()?;
        (ready.status() == 200).then_some(())
    })
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_that_cannot_take_the_record_is_503_with_retry_after() {
    // A topic that does not exist (the broker does not auto-create): never acknowledged.
    let gw = Gateway::start(
        gateway_testkit::kafka_bootstrap(),
        &format!("missing-{}", uuid::Uuid::new_v4().simple()),
        &["--produce-timeout", "1s", "--retry-after-secs", "3"],
    )
    .await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);
    let resp = client()
        .post(gw.url(&hook))
        .body("{}")
        .send()
        .await
        .expect("answers");
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
    assert_error(resp, 503, "BROKER_UNAVAILABLE").await;
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(r#"outcome="BROKER_UNAVAILABLE""#),
        "{metrics}"
    );
    gw.stop().await;
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(String, u16, bool)>>);

impl RejectionReporter for Recorder {
    fn report(&self, r: &Rejection<'_>) {
        if let Ok(mut v) = self.0.lock() {
            v.push((r.code.to_owned(), r.status.as_u16(), r.body.is_some()));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rejections_after_routing_reach_the_reporter_once() {
    let topic = gateway_testkit::unique_topic("dp").await;
    let public = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = public.local_addr().expect("addr");
    let config = data_plane::Config::from_args([
        "--kafka-bootstrap",
        gateway_testkit::kafka_bootstrap(),
        "--kafka-topic",
        &topic,
    ])
    .expect("flags");
    let recorder = Arc::new(Recorder::default());
    let dp = data_plane::DataPlane::new(config)
        .expect("builds")
        .with_rejection_reporter(recorder.clone());
    let hook = Hook::new(Provider::Slack).with_signing_secret("s");
    dp.apply_snapshot(gateway_shared::snapshot::ConfigSnapshot {
        version: 1,
        webhooks: vec![hook.config.clone()],
    })
    .expect("applies");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(dp.serve(data_plane::Listeners { public, admin }, shutdown.clone()));

    let url = format!("http://{addr}{}?flowxApiKey={}", hook.path(), hook.api_key);
    let resp = client()
        .post(&url)
        .body("{}")
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), 401);
    let resp = client()
        .post(url.replace(&hook.api_key, "bad"))
        .body("{}")
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), 401);
    let unknown = Hook::new(Provider::Slack);
    let resp = client()
        .post(format!("http://{addr}{}", unknown.path()))
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), 404);

    let seen = recorder.0.lock().expect("lock").clone();
    assert_eq!(
        seen,
        vec![
            ("SIGNATURE_INVALID".to_owned(), 401, true),
            ("API_KEY_INVALID".to_owned(), 401, false)
        ],
        "404s are before routing and not reported"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("stops")
        .expect("no panic")
        .expect("clean");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_abandons_its_body_gets_400() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);
    let head = format!(
        "POST {}?flowxApiKey={} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\":",
        hook.path(),
        hook.api_key
    );
    let mut s = raw(gw.addr, head.as_bytes()).await;
    s.shutdown().await.expect("half-close");
    let (status, _, body) = read_response(&mut s).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("BODY_READ_FAILED"), "{body}");
    gw.stop().await;
}
