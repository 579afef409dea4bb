//! The dispatcher fed by the real control plane: actions and HMAC keys reach it over the config
//! stream (role DISPATCH), a signed call reaches a real action server, a revoked key is never used
//! again after its delta, and a dispatcher dying mid-call loses no invocation.
//!
//! Actions and keys are written to Postgres the way the control plane stores them: the row (a key's
//! value sealed with the keyring, associated data `hmac_keys`/id/`value_ciphertext`) and, in the
//! same transaction, the global revision bump, the change-log entry and the notification its config
//! watcher follows.

use std::time::Duration;

use data_plane::dispatch::{Actions, DispatchConfig, Dispatcher};
use diesel::sql_types::{BigInt, Bytea, Jsonb, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use gateway_shared::crypto::{Aad, Keyring};
use gateway_testkit::action_server::{python_verifies, ActionServer, Reply};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{Api, ControlPlane, BOOTSTRAP_TOKEN, MASTER_KEYS, WAIT};

/// Writes actions and keys of one app the way the control plane stores them.
struct Store {
    conn: AsyncPgConnection,
    keyring: Keyring,
    org: Uuid,
    ws: Uuid,
    app: Uuid,
}

impl Store {
    async fn connect(url: &str, org: Uuid) -> Store {
        Store {
            conn: AsyncPgConnection::establish(url).await.expect("connect"),
            keyring: Keyring::parse(MASTER_KEYS, None).expect("keyring"),
            org,
            ws: Uuid::new_v4(),
            app: Uuid::new_v4(),
        }
    }

    /// Saves an action; returns the revision of the change.
    async fn register(&mut self, name: &str, url: &str, schema: Value) -> i64 {
        let id = Uuid::new_v4();
        let (org, ws, app) = (self.org, self.ws, self.app);
        let (name, url) = (name.to_owned(), url.to_owned());
        // One transaction, as the control plane writes: the row and its change-log entry commit
        // together (a revision visible before its change-log row would be skipped).
        self.conn
            .transaction(async move |conn| -> diesel::QueryResult<i64> {
                diesel::sql_query(
                    "INSERT INTO actions (id, organization_id, workspace_id, app_id, name, description, \
                     webhook_url, json_schema, validated_at) VALUES ($1, $2, $3, $4, $5, 'e2e', $6, $7, now())",
                )
                .bind::<SqlUuid, _>(id)
                .bind::<SqlUuid, _>(org)
                .bind::<SqlUuid, _>(ws)
                .bind::<SqlUuid, _>(app)
                .bind::<Text, _>(name)
                .bind::<Text, _>(url)
                .bind::<Jsonb, _>(schema)
                .execute(conn)
                .await?;
                changed(conn, "action", id, "action_registered").await
            })
            .await
            .expect("register action")
    }

    /// Creates a key; returns (id, value, revision).
    async fn create_key(&mut self) -> (Uuid, String, i64) {
        let id = Uuid::new_v4();
        let value = format!("key-{}", Uuid::new_v4().simple());
        let sealed = self
            .keyring
            .seal_str(
                &value,
                &Aad::new("hmac_keys", &id.to_string(), "value_ciphertext"),
            )
            .expect("seal");
        let (org, ws, app) = (self.org, self.ws, self.app);
        let revision = self
            .conn
            .transaction(async move |conn| -> diesel::QueryResult<i64> {
                diesel::sql_query(
                    "INSERT INTO hmac_keys (id, organization_id, workspace_id, app_id, value_ciphertext) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind::<SqlUuid, _>(id)
                .bind::<SqlUuid, _>(org)
                .bind::<SqlUuid, _>(ws)
                .bind::<SqlUuid, _>(app)
                .bind::<Bytea, _>(sealed)
                .execute(conn)
                .await?;
                changed(conn, "hmac_key", id, "hmac_key_created").await
            })
            .await
            .expect("create key");
        (id, value, revision)
    }

    async fn revoke_key(&mut self, id: Uuid) -> i64 {
        self.conn
            .transaction(async move |conn| -> diesel::QueryResult<i64> {
                diesel::sql_query("UPDATE hmac_keys SET revoked_at = now() WHERE id = $1")
                    .bind::<SqlUuid, _>(id)
                    .execute(conn)
                    .await?;
                changed(conn, "hmac_key", id, "hmac_key_revoked").await
            })
            .await
            .expect("revoke key")
    }

    fn headers(&self) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new();
        for (key, id) in [
            ("Fx-Organization-Id", self.org),
            ("Fx-Workspace-Id", self.ws),
            ("Fx-App-Id", self.app),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(id.to_string().as_bytes()),
            });
        }
        headers
    }
}

#[derive(diesel::QueryableByName)]
struct Revision {
    #[diesel(sql_type = BigInt)]
    revision: i64,
}

/// Bumps the global revision, logs the change and notifies the control plane's watcher (inside the
/// caller's transaction, so the revision never shows before its change-log entry).
async fn changed(
    conn: &mut AsyncPgConnection,
    resource: &str,
    id: Uuid,
    kind: &str,
) -> diesel::QueryResult<i64> {
    let Revision { revision } =
        diesel::sql_query("UPDATE config_revision SET revision = revision + 1 RETURNING revision")
            .get_result(conn)
            .await?;
    diesel::sql_query(
        "INSERT INTO config_changes (revision, resource, resource_id, kind) VALUES ($1, $2, $3, $4)",
    )
    .bind::<BigInt, _>(revision)
    .bind::<Text, _>(resource)
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(kind)
    .execute(conn)
    .await?;
    diesel::sql_query("SELECT pg_notify('config_revision', $1)")
        .bind::<Text, _>(revision.to_string())
        .execute(conn)
        .await?;
    Ok(revision)
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

    fn config(&self, cp: &ControlPlane, token: &str) -> DispatchConfig {
        DispatchConfig::from_args([
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
        ])
        .expect("valid flags")
    }

    async fn invoke(&self, store: &Store, request_id: &str, parameters: Value) {
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
                    .headers(store.headers()),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
    }

    /// The result of `request_id` among the first `n` results, with its headers.
    async fn result_of(&self, request_id: &str, n: usize) -> (Value, Vec<(String, String)>) {
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
            .find(|(v, _)| v["requestId"] == request_id)
            .unwrap_or_else(|| panic!("no result for {request_id}"))
    }
}

/// Starts a dispatcher on `rt` (stopped by dropping that runtime, as a crash would, or by the
/// test's end); returns its config table.
fn start_dispatcher(rt: &tokio::runtime::Handle, config: DispatchConfig) -> Actions {
    let dispatcher = Dispatcher::new(config).expect("dispatcher builds");
    let actions = dispatcher.actions().clone();
    rt.spawn(async move {
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        dispatcher
            .serve(admin, tokio_util::sync::CancellationToken::new())
            .await
    });
    actions
}

async fn wait_version(actions: &Actions, at_least: i64) {
    gateway_testkit::eventually("the dispatcher to apply the change", WAIT, || async {
        (actions.version() as i64 >= at_least).then_some(())
    })
    .await;
}

fn schema() -> Value {
    json!({"type":"object","properties":{"to":{"type":"string"}},"required":["to"]})
}

#[tokio::test]
async fn actions_and_keys_from_the_control_plane_sign_calls_and_a_revoked_key_is_never_used_again()
{
    let db = gateway_testkit::fresh_database().await;
    let org = Uuid::new_v4();
    let cp = ControlPlane::start(&db.url, org).await;
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let token = api.data_plane_token(org).await;
    let topics = Topics::new().await;
    let server = ActionServer::start(vec![Reply::ok("first"), Reply::ok("second")]).await;
    let mut store = Store::connect(&db.url, org).await;
    let (old_key, old_value, _) = store.create_key().await;
    let registered = store.register("send_email", &server.url(), schema()).await;

    // The snapshot carries the action and the key: a signed call, a result with the headers.
    let actions = start_dispatcher(
        &tokio::runtime::Handle::current(),
        topics.config(&cp, &token),
    );
    wait_version(&actions, registered).await;
    topics
        .invoke(&store, "e2e-1", json!({"to":"ops@example.com"}))
        .await;
    let (first, headers) = topics.result_of("e2e-1", 1).await;
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    assert_eq!(first["result"], "first");
    for (name, id) in [("Fx-Organization-Id", store.org), ("Fx-App-Id", store.app)] {
        assert!(
            headers.contains(&(name.to_owned(), id.to_string())),
            "{name}: {headers:?}"
        );
    }
    let call = &server.seen()[0];
    assert_eq!(
        call.header("x-signature-key-id"),
        Some(old_key.to_string().as_str())
    );
    assert_eq!(call.header("idempotency-key"), Some("e2e-1"));
    assert!(
        python_verifies(&old_value, &call.body),
        "Flowent's Python check accepts it"
    );

    // A newer key, then the old one revoked: once the deltas are applied only the new key signs.
    let (new_key, new_value, _) = store.create_key().await;
    let revoked = store.revoke_key(old_key).await;
    wait_version(&actions, revoked).await;
    topics
        .invoke(&store, "e2e-2", json!({"to":"ops@example.com"}))
        .await;
    let (second, _) = topics.result_of("e2e-2", 2).await;
    assert_eq!(second["status"], "SUCCEEDED", "{second}");
    let call = &server.seen()[1];
    assert_eq!(
        call.header("x-signature-key-id"),
        Some(new_key.to_string().as_str())
    );
    assert!(python_verifies(&new_value, &call.body));
    assert!(
        !python_verifies(&old_value, &call.body),
        "the revoked key signs nothing"
    );

    // Invalid parameters never reach the server.
    topics.invoke(&store, "e2e-bad", json!({"to": 5})).await;
    assert_eq!(
        topics.result_of("e2e-bad", 3).await.0["status"],
        "INVALID_PARAMETERS"
    );
    assert_eq!(server.seen().len(), 2);

    // With no active key left, calls fail with the reason and are not made.
    let none_left = store.revoke_key(new_key).await;
    wait_version(&actions, none_left).await;
    topics.invoke(&store, "e2e-nokey", json!({"to":"a"})).await;
    let (missing, _) = topics.result_of("e2e-nokey", 4).await;
    assert_eq!(missing["status"], "FAILED");
    assert!(
        missing["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("HMAC_KEY_MISSING")),
        "{missing}"
    );
    assert_eq!(server.seen().len(), 2);
    cp.stop().await;
}

#[tokio::test]
async fn a_dispatcher_dying_mid_call_loses_no_invocation() {
    let db = gateway_testkit::fresh_database().await;
    let org = Uuid::new_v4();
    let cp = ControlPlane::start(&db.url, org).await;
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let token = api.data_plane_token(org).await;
    let topics = Topics::new().await;
    let server = ActionServer::start(vec![
        Reply::ok("never answered").held(),
        Reply::ok("after the crash"),
    ])
    .await;
    let mut store = Store::connect(&db.url, org).await;
    store.create_key().await;
    let registered = store.register("send_email", &server.url(), schema()).await;

    // The first dispatcher runs on a runtime of its own, dropped whole mid-call: it never
    // publishes the result nor commits the offset.
    let doomed = tokio::runtime::Runtime::new().expect("runtime");
    let first = start_dispatcher(doomed.handle(), topics.config(&cp, &token));
    wait_version(&first, registered).await;
    topics
        .invoke(&store, "e2e-crash", json!({"to":"ops@example.com"}))
        .await;
    server.wait_seen(1).await;
    doomed.shutdown_background();

    // Its replacement in the same group runs the invocation again; its result lands.
    let second = start_dispatcher(
        &tokio::runtime::Handle::current(),
        topics.config(&cp, &token),
    );
    wait_version(&second, registered).await;
    let (result, _) = topics.result_of("e2e-crash", 1).await;
    assert_eq!(result["status"], "SUCCEEDED", "{result}");
    assert_eq!(result["result"], "after the crash");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].header("idempotency-key"),
        Some("e2e-crash"),
        "the receiver can de-duplicate"
    );
    server.release(1);
    cp.stop().await;
}
