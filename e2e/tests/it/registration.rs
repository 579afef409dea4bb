//! Registering actions as the README's walk-through does, through the ActionService RPCs, against
//! the local stack's demo action server (a real python3 process that verifies the signed test
//! request as Flowent's docs describe, with paths that stand in for broken servers).

use gateway_proto::v1 as pb;
use gateway_testkit::action_server::dead_url;
use gateway_testkit::{free_port, Process};
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

use crate::support::{self, Api, ControlPlane, BOOTSTRAP_TOKEN, WAIT};

/// The demo action server holding the key `id` = `value`; returns it and its base URL.
async fn demo_action_server(id: &str, value: &str) -> (Process, String) {
    let dir = std::env::temp_dir().join(format!("e2e-demo-action-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let keys = dir.join("keys");
    std::fs::write(&keys, format!("{id} {value}\n")).expect("key file");
    let port = free_port();
    let script = gateway_testkit::repo_root().join("deploy/demo-action-server.py");
    let server = Process::spawn(
        std::path::Path::new("python3"),
        &[
            script.to_str().expect("utf-8 path"),
            &port.to_string(),
            keys.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    gateway_testkit::eventually("the demo action server to listen", WAIT, || async {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    })
    .await;
    (server, format!("http://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verifying_server_is_saved_and_broken_or_private_ones_are_refused_with_the_reason() {
    let db = gateway_testkit::fresh_database().await;
    let org = Uuid::new_v4();
    let cp = ControlPlane::start_for_actions(&db.url, org).await;
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let app = support::app(org);
    let key = api
        .actions()
        .create_hmac_key(api.req(pb::CreateHmacKeyRequest {
            app: Some(app.clone()),
            label: "e2e".into(),
        }))
        .await
        .expect("CreateHmacKey")
        .into_inner();
    let key_id = key.key.as_ref().expect("key metadata").id.clone();
    let (_server, demo) = demo_action_server(&key_id, &key.value).await;
    let register = |name: &str, url: String| {
        let (api, app, name) = (api.clone(), app.clone(), name.to_owned());
        async move {
            api.actions()
                .register_action(api.req(pb::RegisterActionRequest {
                    app: Some(app),
                    name,
                    description: "tried from the README".into(),
                    webhook_url: url,
                    json_schema: None,
                }))
                .await
        }
    };

    let saved = register("notify", format!("{demo}/notify"))
        .await
        .expect("the demo server verifies the test request")
        .into_inner();
    assert!(saved.validated_at.is_some(), "{saved:?}");

    for (url, code, reason, message) in [
        (
            format!("{demo}/status/500"),
            Code::FailedPrecondition,
            "ACTION_VALIDATION_FAILED",
            "webhook endpoint returned status 500",
        ),
        (
            dead_url(),
            Code::FailedPrecondition,
            "ACTION_VALIDATION_FAILED",
            "connection refused",
        ),
        (
            format!("{demo}/error/nope"),
            Code::FailedPrecondition,
            "ACTION_VALIDATION_FAILED",
            "error: nope",
        ),
        (
            "http://10.1.2.3/hook".to_owned(),
            Code::InvalidArgument,
            "ACTION_URL_FORBIDDEN",
            "resolves to 10.1.2.3, a private",
        ),
    ] {
        let status = register("broken", url.clone()).await.expect_err("refused");
        assert_eq!(status.code(), code, "{url}: {status:?}");
        assert_eq!(
            status.get_details_error_info().map(|i| i.reason).as_deref(),
            Some(reason),
            "{url}: {status:?}"
        );
        assert!(
            status.message().contains(message),
            "{url}: {:?} should say {message:?}",
            status.message()
        );
    }

    // Nothing of the refused ones was saved: the name is still free, and only `notify` is listed.
    let listed = api
        .actions()
        .list_actions(api.req(pb::ListActionsRequest {
            app: Some(app.clone()),
            ..Default::default()
        }))
        .await
        .expect("ListActions")
        .into_inner()
        .actions;
    assert_eq!(listed, vec![saved]);
    cp.stop().await;
}
