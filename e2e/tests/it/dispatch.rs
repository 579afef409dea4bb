//! The dispatcher fed by the real control plane: actions and HMAC keys are made with the
//! ActionService RPCs (registration sends its signed test request to the test's action server),
//! reach the dispatcher over the config stream (role DISPATCH), a signed call reaches a real action
//! server, a revoked key is never used again after its delta, and a `data-plane dispatch` process
//! killed mid-call loses no invocation (that test runs the workspace's `data-plane` binary: run alone,
//! build it first with `cargo build -p data-plane`).

use std::time::Duration;

use data_plane::dispatch::{Actions, DispatchConfig, Dispatcher, Tenancy};
use gateway_proto::v1 as pb;
use gateway_testkit::action_server::{python_verifies, ActionServer, Reply};
use gateway_testkit::{free_port, workspace_binary, Process};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{self, Api, ControlPlane, BOOTSTRAP_TOKEN, WAIT};

/// One app's actions and keys, managed through the ActionService RPCs.
struct App {
    api: Api,
    app: pb::AppRef,
}

impl App {
    fn new(api: &Api, org: Uuid) -> App {
        App {
            api: api.clone(),
            app: support::app(org),
        }
    }

    /// Creates an HMAC key; returns (id, value).
    async fn create_key(&self) -> (String, String) {
        let created = self
            .api
            .actions()
            .create_hmac_key(self.api.req(pb::CreateHmacKeyRequest {
                app: Some(self.app.clone()),
                label: "e2e".into(),
            }))
            .await
            .expect("CreateHmacKey")
            .into_inner();
        let id = created.key.expect("the key's metadata").id;
        (id, created.value)
    }

    async fn revoke_key(&self, id: &str) {
        let revoked = self
            .api
            .actions()
            .revoke_hmac_key(self.api.req(pb::RevokeHmacKeyRequest { id: id.to_owned() }))
            .await
            .expect("RevokeHmacKey")
            .into_inner();
        assert!(revoked.revoked_at.is_some(), "{revoked:?}");
    }

    /// Registers `send_email` at `url` with the parameter schema of these tests (the control plane
    /// sends its signed test request to `url` first).
    async fn register(&self, url: &str) -> pb::Action {
        self.api
            .actions()
            .register_action(self.api.req(pb::RegisterActionRequest {
                app: Some(self.app.clone()),
                name: "send_email".into(),
                description: "sends an email".into(),
                webhook_url: url.to_owned(),
                json_schema: Some(schema()),
            }))
            .await
            .expect("RegisterAction")
            .into_inner()
    }

    fn tenancy(&self) -> Tenancy {
        Tenancy {
            organization_id: self.app.organization_id.parse().expect("org id"),
            workspace_id: self.app.workspace_id.parse().expect("workspace id"),
            app_id: self.app.app_id.parse().expect("app id"),
        }
    }

    fn headers(&self) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new();
        for (key, id) in [
            ("Fx-Organization-Id", &self.app.organization_id),
            ("Fx-Workspace-Id", &self.app.workspace_id),
            ("Fx-App-Id", &self.app.app_id),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(id.as_bytes()),
            });
        }
        headers
    }
}

/// `{"type":"object","properties":{"to":{"type":"string"}},"required":["to"]}` as a proto Struct.
fn schema() -> prost_types::Struct {
    use prost_types::value::Kind;
    fn text(s: &str) -> prost_types::Value {
        prost_types::Value {
            kind: Some(Kind::StringValue(s.to_owned())),
        }
    }
    fn object(fields: Vec<(&str, prost_types::Value)>) -> prost_types::Struct {
        prost_types::Struct {
            fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }
    let nested = |s| prost_types::Value {
        kind: Some(Kind::StructValue(s)),
    };
    object(vec![
        ("type", text("object")),
        (
            "properties",
            nested(object(vec![(
                "to",
                nested(object(vec![("type", text("string"))])),
            )])),
        ),
        (
            "required",
            prost_types::Value {
                kind: Some(Kind::ListValue(prost_types::ListValue {
                    values: vec![text("to")],
                })),
            },
        ),
    ])
}

/// Topics and a consumer group no other test uses.
struct Topics {
    invocations: String,
    results: String,
    group: String,
}

impl Topics {
    async fn new() -> Topics {
        let id = Uuid::new_v4().simple().to_string();
        let topics = Topics {
            invocations: format!("e2e-invocations-{id}"),
            results: format!("e2e-results-{id}"),
            group: format!("e2e-dispatch-{id}"),
        };
        gateway_testkit::create_topic(&topics.invocations, 1).await;
        gateway_testkit::create_topic(&topics.results, 1).await;
        topics
    }

    /// The dispatcher's flags (in-process config and binary alike).
    fn args(&self, cp: &ControlPlane, token: &str) -> Vec<String> {
        [
            "--control-plane-url",
            &cp.url(),
            "--control-plane-token",
            token,
            "--stream-heartbeat",
            "500ms",
            "--kafka-bootstrap",
            gateway_testkit::kafka_bootstrap(),
            "--invocation-topic",
            &self.invocations,
            "--result-topic",
            &self.results,
            "--consumer-group",
            &self.group,
            "--allow-http",
            "--allow-cidrs",
            "127.0.0.1/32",
            "--kafka-property",
            "session.timeout.ms=6000",
        ]
        .map(str::to_owned)
        .into()
    }

    async fn invoke(&self, app: &App, request_id: &str, parameters: Value) {
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", gateway_testkit::kafka_bootstrap())
            .create()
            .expect("producer");
        let value =
            json!({"requestId": request_id, "actionName": "send_email", "parameters": parameters})
                .to_string();
        producer
            .send(
                FutureRecord::to(&self.invocations)
                    .key(request_id)
                    .payload(&value)
                    .headers(app.headers()),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
    }

    /// The first `n` results with their headers.
    async fn results(&self, n: usize) -> Vec<(Value, Vec<(String, String)>)> {
        let records =
            gateway_testkit::consume(gateway_testkit::kafka_bootstrap(), &self.results, n, WAIT)
                .await;
        records
            .iter()
            .map(|m| {
                let value: Value =
                    serde_json::from_slice(m.payload().unwrap_or_default()).expect("json");
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                let v = String::from_utf8_lossy(h.value.unwrap_or_default());
                                (h.key.to_owned(), v.into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (value, headers)
            })
            .collect()
    }

    /// The result of `request_id` among the first `n` results, with its headers.
    async fn result_of(&self, request_id: &str, n: usize) -> (Value, Vec<(String, String)>) {
        self.results(n)
            .await
            .into_iter()
            .find(|(v, _)| v["requestId"] == request_id)
            .unwrap_or_else(|| panic!("no result for {request_id}"))
    }
}

/// Starts a dispatcher on the test's runtime; returns its config table.
fn start_dispatcher(config: DispatchConfig) -> Actions {
    let dispatcher = Dispatcher::new(config).expect("dispatcher builds");
    let actions = dispatcher.actions().clone();
    tokio::spawn(async move {
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        dispatcher
            .serve(admin, tokio_util::sync::CancellationToken::new())
            .await
    });
    actions
}

/// Waits until the dispatcher serves `send_email` of `app` and signs its calls with `key` (`None`:
/// with no key).
async fn wait_applied(actions: &Actions, app: &App, key: Option<&str>) {
    let tenancy = app.tenancy();
    gateway_testkit::eventually("the dispatcher to apply the change", WAIT, || async {
        let signing = actions.signing_key(&tenancy).map(|k| k.key_id.clone());
        (actions.find(&tenancy, "send_email").is_some() && signing.as_deref() == key).then_some(())
    })
    .await;
}

/// Starts `data-plane dispatch` as a real process and waits until it is ready (config loaded,
/// consumer in its group); returns it and its admin address.
async fn dispatch_process(args: &[String]) -> (Process, String) {
    let admin = format!("127.0.0.1:{}", free_port());
    let mut argv = vec!["dispatch", "--admin-listen", &admin];
    argv.extend(args.iter().map(String::as_str));
    let process = Process::spawn(&workspace_binary("data-plane"), &argv, &[]);
    let ready = format!("http://{admin}/readyz");
    gateway_testkit::eventually("the dispatcher process to be ready", WAIT * 2, || {
        let ready = ready.clone();
        async move { (reqwest::get(ready).await.ok()?.status() == 200).then_some(()) }
    })
    .await;
    (process, admin)
}

#[tokio::test]
async fn actions_and_keys_from_the_control_plane_sign_calls_and_a_revoked_key_is_never_used_again()
{
    let db = gateway_testkit::fresh_database().await;
    let org = Uuid::new_v4();
    let cp = ControlPlane::start_for_actions(&db.url, org).await;
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let token = api.data_plane_token(org).await;
    let topics = Topics::new().await;
    let server = ActionServer::start(vec![
        Reply::ok("validated"),
        Reply::ok("first"),
        Reply::ok("second"),
    ])
    .await;
    let app = App::new(&api, org);
    let (old_key, old_value) = app.create_key().await;
    let action = app.register(&server.url()).await;
    assert!(action.validated_at.is_some(), "{action:?}");
    // Registration sent the signed test request, signed with the key.
    let test_request = &server.seen()[0];
    assert_eq!(test_request.json()["test"], true);
    assert!(python_verifies(&old_value, &test_request.body));

    // The snapshot carries the action and the key: a signed call, a result with the headers.
    let actions =
        start_dispatcher(DispatchConfig::from_args(topics.args(&cp, &token)).expect("valid flags"));
    wait_applied(&actions, &app, Some(&old_key)).await;
    topics
        .invoke(&app, "e2e-1", json!({"to":"ops@example.com"}))
        .await;
    let (first, headers) = topics.result_of("e2e-1", 1).await;
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    assert_eq!(first["result"], "first");
    for (name, id) in [
        ("Fx-Organization-Id", &app.app.organization_id),
        ("Fx-App-Id", &app.app.app_id),
    ] {
        assert!(
            headers.contains(&(name.to_owned(), id.clone())),
            "{name}: {headers:?}"
        );
    }
    let call = &server.seen()[1];
    assert_eq!(call.header("x-signature-key-id"), Some(old_key.as_str()));
    assert_eq!(call.header("idempotency-key"), Some("e2e-1"));
    assert!(
        python_verifies(&old_value, &call.body),
        "Flowent's Python check accepts it"
    );

    // A newer key, then the old one revoked: once the deltas are applied only the new key signs.
    let (new_key, new_value) = app.create_key().await;
    app.revoke_key(&old_key).await;
    wait_applied(&actions, &app, Some(&new_key)).await;
    topics
        .invoke(&app, "e2e-2", json!({"to":"ops@example.com"}))
        .await;
    let (second, _) = topics.result_of("e2e-2", 2).await;
    assert_eq!(second["status"], "SUCCEEDED", "{second}");
    let call = &server.seen()[2];
    assert_eq!(call.header("x-signature-key-id"), Some(new_key.as_str()));
    assert!(python_verifies(&new_value, &call.body));
    assert!(
        !python_verifies(&old_value, &call.body),
        "the revoked key signs nothing"
    );

    // Invalid parameters never reach the server.
    topics.invoke(&app, "e2e-bad", json!({"to": 5})).await;
    assert_eq!(
        topics.result_of("e2e-bad", 3).await.0["status"],
        "INVALID_PARAMETERS"
    );
    assert_eq!(server.seen().len(), 3);

    // With no active key left, calls fail with the reason and are not made.
    app.revoke_key(&new_key).await;
    wait_applied(&actions, &app, None).await;
    topics.invoke(&app, "e2e-nokey", json!({"to":"a"})).await;
    let (missing, _) = topics.result_of("e2e-nokey", 4).await;
    assert_eq!(missing["status"], "FAILED");
    assert!(
        missing["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("HMAC_KEY_MISSING")),
        "{missing}"
    );
    assert_eq!(server.seen().len(), 3);
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispatcher_dying_mid_call_loses_no_invocation() {
    let db = gateway_testkit::fresh_database().await;
    let org = Uuid::new_v4();
    let cp = ControlPlane::start_for_actions(&db.url, org).await;
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let token = api.data_plane_token(org).await;
    let topics = Topics::new().await;
    let server = ActionServer::start(vec![
        Reply::ok("validated"),
        Reply::ok("never answered").held(),
        Reply::ok("after the crash"),
    ])
    .await;
    let app = App::new(&api, org);
    app.create_key().await;
    app.register(&server.url()).await;
    let args = topics.args(&cp, &token);

    // The first dispatcher process gets SIGKILL while the action server holds its call: it never
    // publishes the result nor commits the offset.
    let (mut doomed, _) = dispatch_process(&args).await;
    topics
        .invoke(&app, "e2e-crash", json!({"to":"ops@example.com"}))
        .await;
    server.wait_seen(2).await;
    doomed.kill();

    // Its replacement in the same group runs the invocation again; its result lands, once.
    let (_second, admin) = dispatch_process(&args).await;
    let (result, _) = topics.result_of("e2e-crash", 1).await;
    assert_eq!(result["status"], "SUCCEEDED", "{result}");
    assert_eq!(result["result"], "after the crash");
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[2].header("idempotency-key"),
        Some("e2e-crash"),
        "the receiver can de-duplicate"
    );
    let metrics = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    assert_eq!(
        support::sample(
            &metrics,
            r#"webhook_gateway_dispatch_invocations_total{action="send_email",status="SUCCEEDED"}"#
        ),
        Some(1.0),
        "the second process published it: {metrics}"
    );
    // A later invocation's result follows that one; before it, e2e-crash landed exactly once.
    topics.invoke(&app, "e2e-after", json!({"to":"a"})).await;
    let results = topics.results(2).await;
    let ids: Vec<&Value> = results.iter().map(|(v, _)| &v["requestId"]).collect();
    assert_eq!(ids, [&json!("e2e-crash"), &json!("e2e-after")]);
    server.release(1);
    cp.stop().await;
}
