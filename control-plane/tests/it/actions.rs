//! ActionService against real action servers on 127.0.0.1: the signed test request decides whether an
//! action is saved; HMAC keys, tenancy and roles.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gateway_proto::v1 as pb;
use gateway_shared::action_signing::{verify_body, KEY_ID_HEADER};
use http_body_util::{BodyExt, Full};
use tonic::Code;
use uuid::Uuid;

use crate::support::{
    app, assert_err, clients, create_token, foreign_token, Clients, TestControlPlane,
    BOOTSTRAP_TOKEN,
};

/// What a test action server saw: the key id header and whether the body verified with that key.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, bool)>>>);

/// How the test action server answers.
#[derive(Clone)]
enum Behaviour {
    /// 200 `{"result":"ok"}` after checking the signature with the key the header names.
    Verify(Arc<Mutex<HashMap<String, String>>>),
    /// A fixed status and body.
    Fixed(u16, &'static str),
}

/// Starts an HTTP/1 action server on 127.0.0.1 and returns its URL.
async fn action_server(behaviour: Behaviour, seen: Seen) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind action server");
    let addr: SocketAddr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let behaviour = behaviour.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let behaviour = behaviour.clone();
                        let seen = seen.clone();
                        async move {
                            let key_id = req
                                .headers()
                                .get(KEY_ID_HEADER)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let body = req.into_body().collect().await?.to_bytes();
                            let (status, answer) = match &behaviour {
                                Behaviour::Verify(keys) => {
                                    let key = keys.lock().expect("lock").get(&key_id).cloned();
                                    let ok = key.is_some_and(|k| verify_body(k.as_bytes(), &body));
                                    let json: serde_json::Value =
                                        serde_json::from_slice(&body).unwrap_or_default();
                                    let ok = ok
                                        && json["test"] == true
                                        && json["parameters"] == serde_json::json!({});
                                    seen.0.lock().expect("lock").push((key_id, ok));
                                    if ok {
                                        (200, r#"{"result":"ok"}"#)
                                    } else {
                                        (401, r#"{"error":"bad signature"}"#)
                                    }
                                }
                                Behaviour::Fixed(s, b) => (*s, *b),
                            };
                            let mut response = hyper::Response::new(Full::new(Bytes::from_static(
                                answer.as_bytes(),
                            )));
                            *response.status_mut() = http::StatusCode::from_u16(status)
                                .expect("the test uses valid status codes");
                            Ok::<_, hyper::Error>(response)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/action")
}

/// A control plane that may call 127.0.0.1 over http.
async fn local_cp() -> TestControlPlane {
    TestControlPlane::start_with(|c| {
        c.actions_allow_http = true;
        c.actions_allow_cidrs = "127.0.0.1/32".into();
    })
    .await
}

async fn create_key(c: &Clients, a: &pb::AppRef) -> pb::CreateHmacKeyResponse {
    c.actions
        .clone()
        .create_hmac_key(pb::CreateHmacKeyRequest {
            app: Some(a.clone()),
            label: "test".into(),
        })
        .await
        .expect("key created")
        .into_inner()
}

fn register_req(a: &pb::AppRef, name: &str, url: &str) -> pb::RegisterActionRequest {
    pb::RegisterActionRequest {
        app: Some(a.clone()),
        name: name.into(),
        description: "sends an email".into(),
        webhook_url: url.into(),
        json_schema: None,
    }
}

async fn list_actions(c: &Clients, a: &pb::AppRef) -> Vec<pb::Action> {
    c.actions
        .clone()
        .list_actions(pb::ListActionsRequest {
            app: Some(a.clone()),
            ..Default::default()
        })
        .await
        .expect("list actions")
        .into_inner()
        .actions
}

/// A verifying action server that knows `key`.
async fn verifying_server(
    key: &pb::CreateHmacKeyResponse,
) -> (String, Seen, Arc<Mutex<HashMap<String, String>>>) {
    let keys = Arc::new(Mutex::new(HashMap::new()));
    let id = key.key.as_ref().expect("key metadata").id.clone();
    keys.lock().expect("lock").insert(id, key.value.clone());
    let seen = Seen::default();
    let url = action_server(Behaviour::Verify(keys.clone()), seen.clone()).await;
    (url, seen, keys)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_test_request_that_verifies_saves_the_action() {
    let cp = local_cp().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let key = create_key(&c, &a).await;
    let key_id = key.key.as_ref().expect("key").id.clone();
    let (url, seen, _) = verifying_server(&key).await;
    let mut req = register_req(&a, "send_email", &url);
    req.json_schema = Some(prost_types::Struct {
        fields: [(
            "type".to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue("object".into())),
            },
        )]
        .into(),
    });
    let action = c
        .actions
        .clone()
        .register_action(req)
        .await
        .expect("registered")
        .into_inner();
    assert_eq!(seen.0.lock().expect("lock").clone(), vec![(key_id, true)]);
    assert_eq!(action.name, "send_email");
    assert_eq!(action.webhook_url, url);
    assert_eq!(list_actions(&c, &a).await, vec![action.clone()]);
    let got = c
        .actions
        .clone()
        .get_action(pb::GetActionRequest {
            id: action.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, action);

    // The name is unique in the app, checked before any request is sent.
    assert_err(
        c.actions
            .clone()
            .register_action(register_req(&a, "send_email", &url))
            .await,
        Code::AlreadyExists,
        "ACTION_NAME_TAKEN",
    );
    assert_eq!(seen.0.lock().expect("lock").len(), 1);

    // Update of the description alone sends no request; delete removes it.
    let updated = c
        .actions
        .clone()
        .update_action(pb::UpdateActionRequest {
            id: action.id.clone(),
            description: Some("sends two emails".into()),
            ..Default::default()
        })
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(updated.description, "sends two emails");
    assert_eq!(seen.0.lock().expect("lock").len(), 1);
    c.actions
        .clone()
        .delete_action(pb::DeleteActionRequest {
            id: action.id.clone(),
        })
        .await
        .expect("deleted");
    assert!(list_actions(&c, &a).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_test_requests_save_nothing() {
    let cp = local_cp().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    create_key(&c, &a).await;
    let status_500 = action_server(Behaviour::Fixed(500, "{}"), Seen::default()).await;
    let nope = action_server(
        Behaviour::Fixed(200, r#"{"error":"nope"}"#),
        Seen::default(),
    )
    .await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        format!("http://{addr}/action")
    };
    for (url, message) in [
        (&status_500, "webhook endpoint returned status 500"),
        (&closed, "connection refused"),
        (&nope, "error: nope"),
    ] {
        let status = assert_err(
            c.actions
                .clone()
                .register_action(register_req(&a, "act", url))
                .await,
            Code::FailedPrecondition,
            "ACTION_VALIDATION_FAILED",
        );
        assert_eq!(status.message(), message);
    }
    assert!(list_actions(&c, &a).await.is_empty());

    // A URL change is validated the same way and changes nothing when refused.
    let key = create_key(&c, &a).await;
    let (good, _, _) = verifying_server(&key).await;
    let action = c
        .actions
        .clone()
        .register_action(register_req(&a, "act", &good))
        .await
        .expect("registered")
        .into_inner();
    let status = assert_err(
        c.actions
            .clone()
            .update_action(pb::UpdateActionRequest {
                id: action.id.clone(),
                webhook_url: Some(status_500.clone()),
                description: Some("changed".into()),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "ACTION_VALIDATION_FAILED",
    );
    assert_eq!(status.message(), "webhook endpoint returned status 500");
    assert_eq!(list_actions(&c, &a).await, vec![action]);
}

#[tokio::test(flavor = "multi_thread")]
async fn input_is_checked_before_anything_is_sent() {
    let cp = local_cp().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let seen = Seen::default();
    let url = action_server(Behaviour::Fixed(200, "{}"), seen.clone()).await;

    // No HMAC key in the app.
    assert_err(
        c.actions
            .clone()
            .register_action(register_req(&a, "act", &url))
            .await,
        Code::FailedPrecondition,
        "HMAC_KEY_MISSING",
    );
    create_key(&c, &a).await;
    for (name, description, u) in [
        ("Bad-Name", "d", url.as_str()),
        ("ok", "", url.as_str()),
        ("ok", "d", "not a url"),
    ] {
        let mut req = register_req(&a, name, u);
        req.description = description.into();
        assert_err(
            c.actions.clone().register_action(req).await,
            Code::InvalidArgument,
            "ACTION_INVALID",
        );
    }
    let mut req = register_req(&a, "act", &url);
    req.json_schema = Some(prost_types::Struct {
        fields: [(
            "type".to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue("nope".into())),
            },
        )]
        .into(),
    });
    assert_err(
        c.actions.clone().register_action(req).await,
        Code::InvalidArgument,
        "INVALID_JSON_SCHEMA",
    );
    assert!(seen.0.lock().expect("lock").is_empty());
    assert!(list_actions(&c, &a).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_allowlist_local_urls_are_forbidden() {
    let cp = TestControlPlane::start_with(|c| c.actions_allow_http = true).await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    create_key(&c, &a).await;
    let seen = Seen::default();
    let url = action_server(Behaviour::Fixed(200, "{}"), seen.clone()).await;
    let localhost = url.replace("127.0.0.1", "localhost");
    for u in [&url, &localhost] {
        assert_err(
            c.actions
                .clone()
                .register_action(register_req(&a, "act", u))
                .await,
            Code::InvalidArgument,
            "ACTION_URL_FORBIDDEN",
        );
    }
    assert!(seen.0.lock().expect("lock").is_empty());
    assert!(list_actions(&c, &a).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn tenancy_and_roles() {
    let cp = local_cp().await;
    let channel = cp.channel().await;
    let c = clients(&channel, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let key = create_key(&c, &a).await;
    let (url, _, _) = verifying_server(&key).await;
    let action = c
        .actions
        .clone()
        .register_action(register_req(&a, "act", &url))
        .await
        .expect("registered")
        .into_inner();

    let viewer = clients(
        &channel,
        &create_token(&c, cp.org, None, pb::Role::Viewer).await,
    )
    .await;
    assert_eq!(list_actions(&viewer, &a).await, vec![action.clone()]);
    assert_err(
        viewer
            .actions
            .clone()
            .register_action(register_req(&a, "other", &url))
            .await,
        Code::PermissionDenied,
        "ROLE_FORBIDDEN",
    );

    let org_b = Uuid::new_v4();
    let other = clients(
        &channel,
        &foreign_token(&cp, org_b, control_plane::auth::Role::Admin).await,
    )
    .await;
    let b_app = pb::AppRef {
        organization_id: org_b.to_string(),
        ..a.clone()
    };
    assert!(list_actions(&other, &b_app).await.is_empty());
    let keys = other
        .actions
        .clone()
        .list_hmac_keys(pb::ListHmacKeysRequest {
            app: Some(b_app),
            include_revoked: true,
            ..Default::default()
        })
        .await
        .expect("list keys")
        .into_inner();
    assert!(keys.keys.is_empty());
    assert_err(
        other
            .actions
            .clone()
            .get_action(pb::GetActionRequest {
                id: action.id.clone(),
            })
            .await,
        Code::NotFound,
        "ACTION_NOT_FOUND",
    );
    assert_err(
        other
            .actions
            .clone()
            .revoke_hmac_key(pb::RevokeHmacKeyRequest {
                id: key.key.as_ref().expect("key").id.clone(),
            })
            .await,
        Code::NotFound,
        "HMAC_KEY_NOT_FOUND",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_revocation_the_newer_key_signs() {
    let cp = local_cp().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let old = create_key(&c, &a).await;
    let new = create_key(&c, &a).await;
    let old_id = old.key.as_ref().expect("key").id.clone();
    let new_id = new.key.as_ref().expect("key").id.clone();
    let (url, seen, keys) = verifying_server(&old).await;
    keys.lock()
        .expect("lock")
        .insert(new_id.clone(), new.value.clone());

    // The newest active key signs: revoke it, and the older one takes over.
    let revoked = c
        .actions
        .clone()
        .revoke_hmac_key(pb::RevokeHmacKeyRequest { id: new_id.clone() })
        .await
        .expect("revoked")
        .into_inner();
    assert!(revoked.revoked_at.is_some());
    let again = c
        .actions
        .clone()
        .revoke_hmac_key(pb::RevokeHmacKeyRequest { id: new_id.clone() })
        .await
        .expect("revoking twice")
        .into_inner();
    assert_eq!(
        again, revoked,
        "revoking a revoked key returns it unchanged"
    );
    c.actions
        .clone()
        .register_action(register_req(&a, "first", &url))
        .await
        .expect("registered");
    let newest = create_key(&c, &a).await;
    let newest_id = newest.key.as_ref().expect("key").id.clone();
    keys.lock()
        .expect("lock")
        .insert(newest_id.clone(), newest.value.clone());
    c.actions
        .clone()
        .register_action(register_req(&a, "second", &url))
        .await
        .expect("registered");
    assert_eq!(
        seen.0.lock().expect("lock").clone(),
        vec![(old_id.clone(), true), (newest_id.clone(), true)]
    );

    // Listing never shows values; revoked keys only on request, newest first.
    let list = |include_revoked| {
        let mut client = c.actions.clone();
        let a = a.clone();
        async move {
            client
                .list_hmac_keys(pb::ListHmacKeysRequest {
                    app: Some(a),
                    include_revoked,
                    page_size: 1,
                    ..Default::default()
                })
                .await
                .expect("list keys")
                .into_inner()
        }
    };
    let active = list(false).await;
    assert_eq!(active.keys.len(), 1);
    assert_eq!(active.keys[0].id, newest_id);
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .actions
            .clone()
            .list_hmac_keys(pb::ListHmacKeysRequest {
                app: Some(a.clone()),
                include_revoked: true,
                page_size: 1,
                page_token: token.clone(),
            })
            .await
            .expect("list keys")
            .into_inner();
        all.extend(page.keys.into_iter().map(|k| k.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(all, vec![newest_id, new_id, old_id]);
}
