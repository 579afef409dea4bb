//! The harness every integration test uses.
//!
//! - Postgres: the cluster named by `DATABASE_URL` (a URL whose user may `CREATE DATABASE`), else a
//!   throwaway cluster started once per test process by `deploy/services.sh`. [`fresh_database`] gives
//!   each test its own empty database.
//! - Kafka: the broker named by `KAFKA_BOOTSTRAP`, else a tansu broker started once per test process
//!   (the project's patched build, found by `deploy/services.sh tansu-bin`: deploy/tansu/README.md).
//!   [`create_topic`] and [`unique_topic`] give each test its own topics.
//!
//! When a service cannot be had the calling test panics with the reason; nothing is skipped.
//! Services started here are stopped by a watchdog once the test process exits.

#![allow(clippy::unwrap_used)]

pub mod action_server;
pub mod fault;
pub mod process;

pub use process::{free_port, Process};

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::Message;

/// The repository root (for `deploy/services.sh`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives one level below the repository root")
        .to_path_buf()
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Runs `deploy/services.sh ARGS…` and returns the `KEY=VALUE` lines it printed.
fn services_sh(args: &[&str]) -> Result<Vec<(String, String)>, String> {
    services_sh_env(args, &[])
}

fn services_sh_env(args: &[&str], env: &[(&str, &str)]) -> Result<Vec<(String, String)>, String> {
    let script = repo_root().join("deploy/services.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed ({}): {}",
            script.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect())
}

fn lookup(pairs: &[(String, String)], key: &str) -> Result<String, String> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| format!("deploy/services.sh printed no {key}"))
}

fn scratch_dir(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "gateway-test-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    dir.to_string_lossy().into_owned()
}

/// Admin URL of the Postgres cluster the tests use (started on first use when `DATABASE_URL` is unset).
pub fn postgres_url() -> &'static str {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    let url = URL.get_or_init(|| {
        if let Some(url) = env_nonempty("DATABASE_URL") {
            return Ok(url);
        }
        let pid = std::process::id().to_string();
        let pairs = services_sh(&["postgres", &scratch_dir("pg"), &pid])?;
        lookup(&pairs, "DATABASE_URL")
    });
    match url {
        Ok(u) => u,
        Err(e) => panic!("integration tests need Postgres and none could be started: {e}"),
    }
}

/// A dedicated Postgres cluster that accepts only TLS connections over TCP, serving `cert_pem`
/// with `key_pem`; returns its admin URL (without `sslmode`). Stopped when the test process exits.
pub fn tls_postgres(cert_pem: &str, key_pem: &str) -> String {
    let dir = scratch_dir("pg-tls-files");
    std::fs::create_dir_all(&dir).unwrap();
    let cert = format!("{dir}/server.crt");
    let key = format!("{dir}/server.key");
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let pid = std::process::id().to_string();
    let pairs = services_sh_env(
        &["postgres", &scratch_dir("pg-tls"), &pid],
        &[("PG_TLS_CERT", &cert), ("PG_TLS_KEY", &key)],
    )
    .unwrap_or_else(|e| panic!("a TLS Postgres cluster could not be started: {e}"));
    lookup(&pairs, "DATABASE_URL").unwrap()
}

/// Bootstrap address of the Kafka-protocol broker the tests use (tansu started on first use when
/// `KAFKA_BOOTSTRAP` is unset).
pub fn kafka_bootstrap() -> &'static str {
    static ADDR: OnceLock<Result<String, String>> = OnceLock::new();
    let addr = ADDR.get_or_init(|| {
        if let Some(addr) = env_nonempty("KAFKA_BOOTSTRAP") {
            return Ok(addr);
        }
        let pid = std::process::id().to_string();
        let pairs = services_sh(&["tansu", &scratch_dir("tansu"), "memory", &pid])?;
        lookup(&pairs, "KAFKA_BOOTSTRAP")
    });
    match addr {
        Ok(a) => a,
        Err(e) => {
            panic!("integration tests need a Kafka-protocol broker and none could be started: {e}")
        }
    }
}

/// A dedicated Postgres cluster for one test (for tests that restart the database).
pub struct DedicatedPostgres {
    /// Admin URL (`postgres://postgres@127.0.0.1:PORT/postgres`); the port survives restarts.
    pub url: String,
    dir: String,
}

impl DedicatedPostgres {
    /// Starts a cluster of its own (stopped and removed when the test process exits).
    pub fn start() -> DedicatedPostgres {
        let dir = scratch_dir("pg-own");
        let pid = std::process::id().to_string();
        let pairs = services_sh(&["postgres", &dir, &pid])
            .unwrap_or_else(|e| panic!("a dedicated Postgres cluster could not be started: {e}"));
        DedicatedPostgres {
            url: lookup(&pairs, "DATABASE_URL").unwrap(),
            dir,
        }
    }

    /// Restarts the server (`pg_ctl restart -m fast`: every connection is closed) on the same port.
    pub fn restart(&self) {
        services_sh(&["restart-postgres", &self.dir])
            .unwrap_or_else(|e| panic!("Postgres did not restart: {e}"));
    }
}

/// The binary `name` that cargo built for this workspace (`target/debug/NAME` beside the test's own
/// `deps/` directory). `cargo test --workspace` builds every binary before it runs any test; run
/// alone, build them first (`cargo build -p control-plane -p data-plane`). Panics, naming the
/// path, when it is missing.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/PROFILE/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first (cargo build -p {name})",
        path.display()
    );
    path
}

/// A dedicated tansu broker for one test (for tests that stop and restart the broker).
pub struct Broker {
    /// `host:port` to bootstrap from.
    pub bootstrap: String,
    pid: u32,
    dir: String,
    storage: String,
}

impl Broker {
    /// Starts a broker with `memory` or `sqlite` (durable across restarts) storage.
    pub fn start(storage: &str) -> Broker {
        let dir = scratch_dir("broker");
        let (bootstrap, pid) = Self::launch(&dir, storage, None);
        Broker {
            bootstrap,
            pid,
            dir,
            storage: storage.to_owned(),
        }
    }

    /// Starts tansu through `deploy/services.sh` (on `port`, or a free one); returns (bootstrap, pid).
    fn launch(dir: &str, storage: &str, port: Option<u16>) -> (String, u32) {
        let owner = std::process::id().to_string();
        let port = port.map(|p| p.to_string());
        let mut args = vec!["tansu", dir, storage, &owner];
        args.extend(port.as_deref());
        let pairs =
            services_sh(&args).unwrap_or_else(|e| panic!("cannot start a tansu broker: {e}"));
        (
            lookup(&pairs, "KAFKA_BOOTSTRAP").unwrap(),
            lookup(&pairs, "TANSU_PID").unwrap().parse().unwrap(),
        )
    }

    /// Freezes the broker (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused broker run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let status = Command::new("kill")
            .arg(which)
            .arg(self.pid.to_string())
            .status()
            .unwrap_or_else(|e| panic!("kill {which} {}: {e}", self.pid));
        assert!(status.success(), "kill {which} {} failed", self.pid);
    }

    /// Kills the broker process (as a crash would).
    pub fn stop(&self) {
        let _ = Command::new("kill")
            .arg("-9")
            .arg(self.pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the broker again on the same storage AND the same port, so running clients reconnect
    /// to the bootstrap address they already have (as they would to a restarted Kafka node).
    pub fn restart_on_same_port(&mut self) {
        let port = self
            .bootstrap
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("bootstrap {} has no port", self.bootstrap));
        let (bootstrap, pid) = Self::launch(&self.dir, &self.storage, Some(port));
        self.bootstrap = bootstrap;
        self.pid = pid;
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A database created for one test.
pub struct TestDb {
    /// Connection URL of the new database.
    pub url: String,
    /// Its name.
    pub name: String,
}

/// Creates a new empty database and returns its URL.
pub async fn fresh_database() -> TestDb {
    let admin = postgres_url().to_owned();
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to Postgres at {admin}: {e}"));
    tokio::spawn(conn);
    let name = format!("gw_test_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    let url = match admin.rfind('/') {
        Some(i) if !admin[i + 1..].contains('@') => format!("{}/{name}", &admin[..i]),
        _ => panic!("DATABASE_URL must end with /DBNAME: {admin}"),
    };
    TestDb { url, name }
}

/// An admin client for `bootstrap`.
pub fn admin_client(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap_or_else(|e| panic!("cannot create a Kafka admin client for {bootstrap}: {e}"))
}

/// The `max.message.bytes` of every topic the harness creates: room for the largest record a data
/// plane with the default limits produces (1 MiB body, base64 raw body, headers), as in the
/// deployment manifests (docs/data-plane.md, "Record size").
pub const TOPIC_MAX_MESSAGE_BYTES: &str = "3145728";

/// Creates a topic (the broker does not auto-create) with `max.message.bytes` of
/// [`TOPIC_MAX_MESSAGE_BYTES`].
pub async fn create_topic_on(bootstrap: &str, name: &str, partitions: i32) {
    create_topic_with(
        bootstrap,
        name,
        partitions,
        &[("max.message.bytes", TOPIC_MAX_MESSAGE_BYTES)],
    )
    .await;
}

/// Creates a topic with these topic configs.
pub async fn create_topic_with(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let admin = admin_client(bootstrap);
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin
        .create_topics(&[topic], &opts)
        .await
        .unwrap_or_else(|e| panic!("create topic {name} on {bootstrap}: {e}"));
    for r in results {
        if let Err((topic, code)) = r {
            panic!("create topic {topic}: {code}");
        }
    }
}

/// Creates a topic on the shared broker.
pub async fn create_topic(name: &str, partitions: i32) {
    create_topic_on(kafka_bootstrap(), name, partitions).await;
}

/// A topic name no other test uses, created on the shared broker with one partition.
pub async fn unique_topic(prefix: &str) -> String {
    let name = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    create_topic(&name, 1).await;
    name
}

/// A consumer in a fresh group, reading `topic` from the beginning.
pub fn consumer(bootstrap: &str, topic: &str) -> StreamConsumer {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("test-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap_or_else(|e| panic!("cannot create a consumer for {bootstrap}: {e}"));
    c.subscribe(&[topic])
        .unwrap_or_else(|e| panic!("subscribe {topic}: {e}"));
    c
}

/// Reads records from `topic` until `count` arrived or `within` passed; panics on timeout.
pub async fn consume(
    bootstrap: &str,
    topic: &str,
    count: usize,
    within: Duration,
) -> Vec<OwnedMessage> {
    let c = consumer(bootstrap, topic);
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, c.recv()).await {
            Ok(Ok(m)) => out.push(m.detach()),
            Ok(Err(e)) => panic!("consuming {topic}: {e}"),
            Err(_) => panic!(
                "only {} of {count} records arrived on {topic} within {within:?}",
                out.len()
            ),
        }
    }
    out
}

/// Polls `check` until it returns `Some`, or panics after `within` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The payload of a record as UTF-8 text.
pub fn payload_text(m: &OwnedMessage) -> String {
    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()
}
