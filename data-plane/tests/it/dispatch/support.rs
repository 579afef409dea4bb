//! A dispatcher on port 0 fed with config built in the test, scripted action servers on
//! 127.0.0.1, and helpers to produce invocations and read results.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use data_plane::dispatch::{Actions, DispatchConfig, Dispatcher};
use data_plane::dispatch::{DispatchDelta, DispatchSnapshot};
use gateway_proto::v1::{ActionRoute, HmacKeyRoute};
use gateway_shared::{AppId, OrganizationId, WorkspaceId};
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Message;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use gateway_testkit::action_server::{dead_url, python_verifies, ActionServer, Reply};

/// An app's ids.
#[derive(Clone, Copy, Debug)]
pub struct App {
    pub org: OrganizationId,
    pub ws: WorkspaceId,
    pub app: AppId,
}

impl App {
    pub fn new() -> App {
        App {
            org: OrganizationId::new_random(),
            ws: WorkspaceId::new_random(),
            app: AppId::new_random(),
        }
    }

    pub fn action(&self, name: &str, url: &str, schema: Value) -> ActionRoute {
        ActionRoute {
            action_id: uuid::Uuid::new_v4().to_string(),
            organization_id: self.org.to_string(),
            workspace_id: self.ws.to_string(),
            app_id: self.app.to_string(),
            name: name.to_owned(),
            webhook_url: url.to_owned(),
            json_schema: schema.to_string(),
        }
    }

    pub fn key(&self, key_id: &str, value: &str, created_at_unix_ms: i64) -> HmacKeyRoute {
        HmacKeyRoute {
            key_id: key_id.to_owned(),
            organization_id: self.org.to_string(),
            workspace_id: self.ws.to_string(),
            app_id: self.app.to_string(),
            value: value.to_owned(),
            created_at_unix_ms,
        }
    }

    /// The tenancy headers of an invocation record.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Fx-Organization-Id", self.org.to_string()),
            ("Fx-Workspace-Id", self.ws.to_string()),
            ("Fx-App-Id", self.app.to_string()),
        ]
    }
}

/// Topics and a consumer group of one test.
#[derive(Clone, Debug)]
pub struct Topics {
    pub bootstrap: String,
    pub invocations: String,
    pub results: String,
    pub group: String,
}

impl Topics {
    pub async fn new(partitions: i32) -> Topics {
        let bootstrap = gateway_testkit::kafka_bootstrap().to_owned();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let invocations = format!("invocations-{id}");
        let results = format!("results-{id}");
        gateway_testkit::create_topic(&invocations, partitions).await;
        gateway_testkit::create_topic(&results, 1).await;
        Topics {
            bootstrap,
            invocations,
            results,
            group: format!("dispatch-{id}"),
        }
    }

    /// Produces an invocation record with the app's headers and `extra` headers.
    pub async fn invoke(&self, app: &App, value: Value, extra: &[(&str, &str)]) {
        self.produce(Some(value.to_string().into_bytes()), app, extra)
            .await;
    }

    /// Invokes `send_email` of `app` as `request_id` with `parameters`.
    pub async fn send_email(&self, app: &App, request_id: &str, parameters: Value) {
        let value = serde_json::json!({
            "requestId": request_id,
            "actionName": "send_email",
            "parameters": parameters,
        });
        self.invoke(app, value, &[]).await;
    }

    /// Produces a record with any value.
    pub async fn produce(&self, value: Option<Vec<u8>>, app: &App, extra: &[(&str, &str)]) {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .expect("producer");
        let mut headers = OwnedHeaders::new();
        let tenancy = app.headers();
        for (k, v) in tenancy
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(extra.iter().copied())
        {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut record = FutureRecord::<str, [u8]>::to(&self.invocations)
            .key("k")
            .headers(headers);
        if let Some(v) = &value {
            record = record.payload(v.as_slice());
        }
        producer
            .send(record, Timeout::After(Duration::from_secs(10)))
            .await
            .map_err(|(e, _)| e)
            .expect("invocation produced");
    }

    /// Reads `n` results (from the beginning of the result topic).
    pub async fn results(&self, n: usize) -> Vec<Result> {
        gateway_testkit::consume(&self.bootstrap, &self.results, n, Duration::from_secs(60))
            .await
            .into_iter()
            .map(Result::from)
            .collect()
    }

    /// The result of `request_id`, waiting until it is among the first `n` results.
    pub async fn result_of(&self, request_id: &str, n: usize) -> Result {
        self.results(n)
            .await
            .into_iter()
            .find(|r| r.value["requestId"] == request_id)
            .unwrap_or_else(|| panic!("no result for {request_id} among the first {n}"))
    }
}

/// A result record.
#[derive(Debug, Clone)]
pub struct Result {
    pub value: Value,
    pub headers: Vec<(String, String)>,
}

impl From<OwnedMessage> for Result {
    fn from(m: OwnedMessage) -> Self {
        let value =
            serde_json::from_slice(m.payload().unwrap_or_default()).expect("result is JSON");
        let headers = crate::support::record_headers(&m);
        Result { value, headers }
    }
}

impl Result {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The test key's value (`key-1` in [`email_routes`]).
pub const KEY: &str = "k3y-for-tests-0123456789abcdef0123456789";

/// The parameter schema of `send_email`: `to` (a string) required, `amount` a number.
pub fn email_schema() -> Value {
    serde_json::json!({
        "type": "object",
        "properties": {"to": {"type": "string"}, "amount": {"type": "number"}},
        "required": ["to"]
    })
}

/// `send_email` of `app` at `url` with [`email_schema`], and its one HMAC key `key-1` ([`KEY`]).
pub fn email_routes(app: &App, url: &str) -> (Vec<ActionRoute>, Vec<HmacKeyRoute>) {
    (
        vec![app.action("send_email", url, email_schema())],
        vec![app.key("key-1", KEY, 1)],
    )
}

/// A running dispatcher.
pub struct TestDispatcher {
    pub actions: Actions,
    pub admin: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Flags every test dispatcher gets: loopback action servers, short retries.
pub fn base_flags(topics: &Topics) -> Vec<String> {
    [
        "--kafka-bootstrap",
        &topics.bootstrap,
        "--invocation-topic",
        &topics.invocations,
        "--result-topic",
        &topics.results,
        "--consumer-group",
        &topics.group,
        "--allow-http",
        "--allow-cidrs",
        "127.0.0.1/32",
        "--retry-initial-delay",
        "20ms",
        "--retry-max-delay",
        "100ms",
        "--kafka-property",
        "session.timeout.ms=6000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "data_plane=info,warn".into()),
        )
        .with_test_writer()
        .try_init();
}

pub fn config(topics: &Topics, extra: &[&str]) -> DispatchConfig {
    let mut args = base_flags(topics);
    args.extend(extra.iter().map(|s| s.to_string()));
    DispatchConfig::from_args(args).expect("valid flags")
}

impl TestDispatcher {
    /// Starts a dispatcher with extra flags; its config is whatever the test applies.
    pub async fn start(topics: &Topics, extra: &[&str]) -> TestDispatcher {
        init_logging();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind admin");
        let addr = admin.local_addr().expect("addr");
        let dispatcher = Dispatcher::new(config(topics, extra)).expect("dispatcher builds");
        let actions = dispatcher.actions().clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(dispatcher.serve(admin, shutdown.clone()));
        TestDispatcher {
            actions,
            admin: addr,
            shutdown,
            task: Some(task),
        }
    }

    /// Starts a dispatcher with extra flags serving [`email_routes`] of `app` at `url`, ready.
    pub async fn serving_email(
        topics: &Topics,
        app: &App,
        url: &str,
        extra: &[&str],
    ) -> TestDispatcher {
        let d = TestDispatcher::start(topics, extra).await;
        let (actions, keys) = email_routes(app, url);
        d.load(actions, keys).await;
        d
    }

    /// Loads a snapshot (version 1) and waits until the consumer is in its group.
    pub async fn load(&self, actions: Vec<ActionRoute>, hmac_keys: Vec<HmacKeyRoute>) {
        self.actions
            .apply_snapshot(DispatchSnapshot {
                version: 1,
                actions,
                hmac_keys,
            })
            .expect("snapshot applies");
        self.wait_ready().await;
    }

    pub async fn wait_ready(&self) {
        let url = format!("http://{}/readyz", self.admin);
        gateway_testkit::eventually(
            "the dispatcher to be ready",
            Duration::from_secs(60),
            || {
                let url = url.clone();
                async move {
                    let r = reqwest::get(url).await.ok()?;
                    r.status().is_success().then_some(())
                }
            },
        )
        .await;
    }

    /// Applies a delta on top of the served version.
    pub fn delta(&self, change: impl FnOnce(&mut DispatchDelta)) {
        let from = self.actions.version();
        let mut delta = DispatchDelta {
            from_version: from,
            to_version: from + 1,
            ..Default::default()
        };
        change(&mut delta);
        self.actions.apply_delta(delta).expect("delta applies");
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics body")
    }

    /// Stops it and waits for a clean exit.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("stops within 60s")
                .expect("no panic")
                .expect("clean exit");
        }
    }
}

impl Drop for TestDispatcher {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
