//! The HTTP scenarios of docs/benchmarks.md, side by side in one run: the same load generator, concurrency,
//! payloads and durations against bare hyper, the data plane (401 path, GENERIC, SLACK) and a minimal
//! hyper → rdkafka forwarder on the same broker. Every server is a separate process.
//!
//! The data plane gets its routing table from `--snapshot-file` (a JSON `ConfigSnapshot` written
//! here), not from a control plane: the request path is the same whichever way the table was loaded,
//! and the HTTP numbers then do not depend on Postgres.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use gateway_shared::snapshot::{
    ApiKeyHash, ConfigSnapshot, ProviderSecrets, SigningSecret, TriggerBinding, WebhookConfig,
    WebhookOptions,
};
use gateway_shared::{
    AppId, OrganizationId, Provider, Secret, TriggerType, WebhookId, WorkspaceId,
};
use hmac::{Hmac, Mac};
use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::load::{self, LoadResult, Shape, Target};
use crate::procs::{self, Proc};

/// Flags of `http`.
#[derive(clap::Args, Clone)]
pub struct HttpArgs {
    /// The release `data-plane` binary.
    #[arg(long)]
    pub data_plane_bin: PathBuf,
    /// Kafka bootstrap (tansu).
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: String,
    /// Concurrent connections of the load generator.
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 32)]
    pub concurrency: usize,
    /// Measured seconds per scenario and round.
    #[arg(long, env = "BENCH_DURATION_SECS", default_value_t = 5)]
    pub duration_secs: u64,
    /// Warm-up seconds per scenario and round.
    #[arg(long, env = "BENCH_WARMUP_SECS", default_value_t = 2)]
    pub warmup_secs: u64,
    /// Rounds: every scenario runs once per round, in order, so a noisy neighbour hits baselines and
    /// data plane alike; the figures are the median round.
    #[arg(long, env = "BENCH_ROUNDS", default_value_t = 3)]
    pub rounds: usize,
    /// Producer `linger.ms` for the data plane and the forwarder alike.
    #[arg(long, env = "BENCH_LINGER_MS", default_value_t = 1)]
    pub linger_ms: u64,
    /// Directory for logs and the snapshot file.
    #[arg(long)]
    pub work_dir: PathBuf,
    /// Where the JSON results go.
    #[arg(long)]
    pub out: PathBuf,
    /// Only scenarios whose name contains one of these (comma-separated); all when empty.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Extra data-plane flags (e.g. producer tuning), passed to every data-plane scenario.
    #[arg(long = "dp-arg", allow_hyphen_values = true)]
    pub dp_args: Vec<String>,
    /// Extra producer properties for the forwarder (`key=value`).
    #[arg(long = "forwarder-property")]
    pub forwarder_properties: Vec<String>,
}

/// Which server a scenario runs.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Server {
    /// Baseline 1.
    Hyper,
    /// Baseline 3.
    Forwarder,
    /// The real data plane.
    DataPlane,
}

/// One scenario's definition and result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Short id (`hyper-1k`, `dp-generic-1k`, …).
    pub name: String,
    /// What it measures.
    pub label: String,
    /// The server.
    pub server: Server,
    /// Request body bytes.
    pub body_bytes: usize,
    /// Concurrent connections of the load generator.
    #[serde(default)]
    pub concurrency: usize,
    /// Expected status.
    pub expect_status: u16,
    /// The median round (by requests/s).
    pub result: LoadResult,
    /// Requests/s of every round, in order.
    pub rounds_rps: Vec<f64>,
}

/// Everything `http` writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HttpResults {
    /// Load shape shared by all scenarios.
    pub shape: Shape,
    /// Rounds run.
    pub rounds: usize,
    /// Producer `linger.ms` of the data plane and the forwarder.
    pub linger_ms: u64,
    /// Results in run order.
    pub scenarios: Vec<ScenarioResult>,
}

pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) server: Server,
    body: usize,
    pub(crate) expect_status: u16,
    webhook: Hook,
    /// Extra environment of the server (e.g. `RUST_LOG`).
    pub(crate) env: Vec<(&'static str, String)>,
    /// Connections, when not the run's `--concurrency`.
    pub(crate) concurrency: Option<usize>,
}

#[derive(Clone, Copy)]
enum Hook {
    Generic,
    GenericWrongKey,
    Slack,
    /// A GENERIC webhook with a RESUME binding: its correlation path is looked up in every body.
    Resume,
}

const GENERIC_KEY: &str = "bench-generic-api-key-0123456789abcdef0123456";
const SLACK_KEY: &str = "bench-slack-api-key-0123456789abcdef012345678";
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const RESUME_KEY: &str = "bench-resume-api-key-0123456789abcdef01234567";
/// Four levels deep; [`load::resume_body`] puts it after the body's large `items` array.
pub(crate) const RESUME_PATH: &str = "order.customer.account.id";
/// More connections than the default, for the producer's batching under load.
const HIGH_CONCURRENCY: usize = 256;

pub(crate) struct Fixture {
    generic: WebhookConfig,
    slack: WebhookConfig,
    resume: WebhookConfig,
}

/// A webhook of `provider` with API key `key` and signing secret `secret`, one START binding.
pub(crate) fn webhook(provider: Provider, key: &str, secret: Option<&str>) -> WebhookConfig {
    WebhookConfig {
        webhook_id: WebhookId::new_random(),
        organization_id: OrganizationId::new_random(),
        workspace_id: WorkspaceId::new_random(),
        app_id: AppId::new_random(),
        provider,
        api_keys: vec![ApiKeyHash::of(key)],
        secrets: ProviderSecrets {
            signing: secret
                .map(|s| SigningSecret {
                    value: Secret::new(s.to_owned()),
                    not_after: None,
                })
                .into_iter()
                .collect(),
            verify_token: None,
        },
        bindings: vec![TriggerBinding {
            trigger_type: TriggerType::StartProcess,
            process_definition_id: "order-intake".into(),
            node_id: "start".into(),
            process_correlation_key: None,
            process_key: None,
        }],
        correlation_key_path: None,
        options: WebhookOptions::default(),
    }
}

fn url_path(w: &WebhookConfig, key: &str) -> String {
    let segment = w
        .provider
        .url_segment()
        .map_or(String::new(), |s| format!("{s}/"));
    format!(
        "/webhooks/incoming/{segment}{}/{}/{}/{}?flowxApiKey={key}",
        w.organization_id, w.workspace_id, w.app_id, w.webhook_id
    )
}

fn slack_headers(body: &[u8]) -> anyhow::Result<Vec<(HeaderName, HeaderValue)>> {
    // One timestamp for the whole run: Slack allows 5 minutes, a scenario takes seconds.
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SLACK_SECRET.as_bytes())?;
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    Ok(vec![
        (
            HeaderName::from_static("x-slack-signature"),
            HeaderValue::from_str(&sig)?,
        ),
        (
            HeaderName::from_static("x-slack-request-timestamp"),
            HeaderValue::from_str(&ts)?,
        ),
    ])
}

pub(crate) fn scenarios() -> Vec<Scenario> {
    let quiet = || vec![("RUST_LOG", "warn".to_owned())];
    vec![
        Scenario {
            name: "hyper-1k",
            label: "1. bare hyper, 200",
            server: Server::Hyper,
            body: 1024,
            expect_status: 200,
            webhook: Hook::Generic,
            env: vec![],
            concurrency: None,
        },
        Scenario {
            name: "dp-401-1k",
            label: "2. data plane, 401 (routing + key)",
            server: Server::DataPlane,
            body: 1024,
            expect_status: 401,
            webhook: Hook::GenericWrongKey,
            env: vec![],
            concurrency: None,
        },
        Scenario {
            name: "fwd-1k",
            label: "3. hyper → rdkafka forwarder",
            server: Server::Forwarder,
            body: 1024,
            expect_status: 200,
            webhook: Hook::Generic,
            env: vec![],
            concurrency: None,
        },
        Scenario {
            name: "dp-generic-1k",
            label: "4. data plane GENERIC, 1 KiB",
            server: Server::DataPlane,
            body: 1024,
            expect_status: 200,
            webhook: Hook::Generic,
            env: vec![],
            concurrency: None,
        },
        Scenario {
            name: "fwd-16k",
            label: "3b. forwarder, 16 KiB",
            server: Server::Forwarder,
            body: 16 * 1024,
            expect_status: 200,
            webhook: Hook::Generic,
            env: vec![],
            concurrency: None,
        },
        Scenario {
            name: "dp-generic-16k",
            label: "4b. data plane GENERIC, 16 KiB",
            server: Server::DataPlane,
            body: 16 * 1024,
            expect_status: 200,
            webhook: Hook::Generic,
            env: vec![],
            concurrency: None,
        },
        Scenario {
            name: "dp-slack-1k",
            label: "5. data plane SLACK-signed, 1 KiB",
            server: Server::DataPlane,
            body: 1024,
            expect_status: 200,
            webhook: Hook::Slack,
            env: vec![],
            concurrency: None,
        },
        Scenario {
            name: "hyper-16k",
            label: "1b. bare hyper, 16 KiB",
            server: Server::Hyper,
            body: 16 * 1024,
            expect_status: 200,
            webhook: Hook::Generic,
            env: vec![],
            concurrency: None,
        },
        Scenario {
            name: "dp-401-1k-quiet",
            label: "diag: 401 with RUST_LOG=warn",
            server: Server::DataPlane,
            body: 1024,
            expect_status: 401,
            webhook: Hook::GenericWrongKey,
            env: quiet(),
            concurrency: None,
        },
        Scenario {
            name: "dp-generic-1k-quiet",
            label: "diag: GENERIC 1 KiB, RUST_LOG=warn",
            server: Server::DataPlane,
            body: 1024,
            expect_status: 200,
            webhook: Hook::Generic,
            env: quiet(),
            concurrency: None,
        },
        Scenario {
            name: "dp-resume-16k",
            label: "6. data plane RESUME, 16 KiB, correlation path 4 deep",
            server: Server::DataPlane,
            body: 16 * 1024,
            expect_status: 200,
            webhook: Hook::Resume,
            env: vec![],
            concurrency: None,
        },
        Scenario {
            name: "fwd-1k-c256",
            label: "3. forwarder, 1 KiB, 256 connections",
            server: Server::Forwarder,
            body: 1024,
            expect_status: 200,
            webhook: Hook::Generic,
            env: vec![],
            concurrency: Some(HIGH_CONCURRENCY),
        },
        Scenario {
            name: "dp-generic-1k-c256",
            label: "4. data plane GENERIC, 1 KiB, 256 connections",
            server: Server::DataPlane,
            body: 1024,
            expect_status: 200,
            webhook: Hook::Generic,
            env: vec![],
            concurrency: Some(HIGH_CONCURRENCY),
        },
        Scenario {
            name: "fwd-16k-c256",
            label: "3b. forwarder, 16 KiB, 256 connections",
            server: Server::Forwarder,
            body: 16 * 1024,
            expect_status: 200,
            webhook: Hook::Generic,
            env: vec![],
            concurrency: Some(HIGH_CONCURRENCY),
        },
        Scenario {
            name: "dp-generic-16k-c256",
            label: "4b. data plane GENERIC, 16 KiB, 256 connections",
            server: Server::DataPlane,
            body: 16 * 1024,
            expect_status: 200,
            webhook: Hook::Generic,
            env: vec![],
            concurrency: Some(HIGH_CONCURRENCY),
        },
    ]
}

/// The RESUME webhook: one START and one RESUME binding, correlation path [`RESUME_PATH`].
fn resume_webhook() -> WebhookConfig {
    let mut w = webhook(Provider::Generic, RESUME_KEY, None);
    w.bindings.push(TriggerBinding {
        trigger_type: TriggerType::ResumeProcess,
        process_definition_id: "order-intake".into(),
        node_id: "await-payment".into(),
        process_correlation_key: Some("accountId".into()),
        process_key: Some("payment".into()),
    });
    w.correlation_key_path = Some(RESUME_PATH.into());
    w
}

/// The scenarios' webhooks, and the snapshot file holding them (for `--snapshot-file`).
pub(crate) fn fixture(work_dir: &std::path::Path) -> anyhow::Result<(Fixture, PathBuf)> {
    let fixture = Fixture {
        generic: webhook(Provider::Generic, GENERIC_KEY, None),
        slack: webhook(Provider::Slack, SLACK_KEY, Some(SLACK_SECRET)),
        resume: resume_webhook(),
    };
    let snapshot = ConfigSnapshot {
        version: 1,
        webhooks: vec![
            fixture.generic.clone(),
            fixture.slack.clone(),
            fixture.resume.clone(),
        ],
    };
    let snapshot_file = work_dir.join("http-snapshot.json");
    std::fs::write(&snapshot_file, serde_json::to_vec(&snapshot)?)?;
    Ok((fixture, snapshot_file))
}

/// `gateway-bench http`.
pub async fn run(args: HttpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.work_dir)?;
    let (fixture, snapshot_file) = fixture(&args.work_dir)?;
    let shape = Shape {
        concurrency: args.concurrency,
        warmup: Duration::from_secs(args.warmup_secs),
        duration: Duration::from_secs(args.duration_secs),
    };
    let chosen: Vec<Scenario> = scenarios()
        .into_iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| s.name.contains(o.as_str())))
        .collect();
    let mut runs: Vec<Vec<LoadResult>> = vec![Vec::new(); chosen.len()];
    for round in 1..=args.rounds.max(1) {
        for (i, s) in chosen.iter().enumerate() {
            eprintln!("round {round}: {} ({}) …", s.name, s.label);
            let shape = Shape {
                concurrency: s.concurrency.unwrap_or(shape.concurrency),
                ..shape
            };
            let result = run_scenario(&args, &fixture, &snapshot_file, s, shape).await?;
            eprintln!(
                "  {:>9.0} req/s  p50 {} µs  p99 {} µs  p99.9 {} µs  errors {}{}",
                result.rps,
                result.p50_us,
                result.p99_us,
                result.p999_us,
                result.errors,
                result
                    .first_unexpected
                    .as_deref()
                    .map_or(String::new(), |u| format!(" (first: {u})"))
            );
            runs[i].push(result);
        }
    }
    let mut results = Vec::new();
    for (s, mut rounds) in chosen.iter().zip(runs) {
        let rounds_rps: Vec<f64> = rounds.iter().map(|r| r.rps).collect();
        rounds.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        let median = rounds.swap_remove(rounds.len() / 2);
        results.push(ScenarioResult {
            name: s.name.into(),
            label: s.label.into(),
            server: s.server,
            body_bytes: body_of(s).len(),
            concurrency: s.concurrency.unwrap_or(args.concurrency),
            expect_status: s.expect_status,
            result: median,
            rounds_rps,
        });
    }
    let out = HttpResults {
        shape,
        rounds: args.rounds.max(1),
        linger_ms: args.linger_ms,
        scenarios: results,
    };
    std::fs::write(&args.out, serde_json::to_vec_pretty(&out)?)?;
    Ok(())
}

/// The request body of a scenario.
fn body_of(s: &Scenario) -> Bytes {
    match s.webhook {
        Hook::Resume => load::resume_body(s.body),
        _ => load::json_body(s.body),
    }
}

async fn run_scenario(
    args: &HttpArgs,
    fixture: &Fixture,
    snapshot_file: &std::path::Path,
    s: &Scenario,
    shape: Shape,
) -> anyhow::Result<LoadResult> {
    let port = procs::free_port()?;
    let topic = format!("bench-{}-{}", s.name, uuid::Uuid::new_v4().simple());
    let log = args.work_dir.join(format!("{}.log", s.name));
    let me = std::env::current_exe()?;
    let listen = format!("127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let envs: Vec<(&str, String)> = s.env.clone();
    let mut proc = match s.server {
        Server::Hyper => Proc::spawn(
            s.name,
            &me,
            &["baseline-hyper".into(), "--listen".into(), listen],
            &envs,
            log,
        )?,
        Server::Forwarder => {
            procs::create_topic(&args.kafka_bootstrap, &topic, 1).await?;
            let mut a = vec![
                "baseline-forwarder".into(),
                "--listen".into(),
                listen,
                "--kafka-bootstrap".into(),
                args.kafka_bootstrap.clone(),
                "--topic".into(),
                topic,
            ];
            a.push("--kafka-property".into());
            a.push(format!("linger.ms={}", args.linger_ms));
            for p in &args.forwarder_properties {
                a.push("--kafka-property".into());
                a.push(p.clone());
            }
            Proc::spawn(s.name, &me, &a, &envs, log)?
        }
        Server::DataPlane => {
            procs::create_topic(&args.kafka_bootstrap, &topic, 1).await?;
            let admin = procs::free_port()?;
            let mut a = vec![
                "--listen".into(),
                listen,
                "--admin-listen".into(),
                format!("127.0.0.1:{admin}"),
                "--kafka-bootstrap".into(),
                args.kafka_bootstrap.clone(),
                "--kafka-topic".into(),
                topic,
                "--snapshot-file".into(),
                snapshot_file.display().to_string(),
            ];
            a.push(format!("--kafka-linger={}ms", args.linger_ms));
            a.extend(args.dp_args.iter().cloned());
            let mut p = Proc::spawn(s.name, &args.data_plane_bin, &a, &envs, log)?;
            let ready = format!("http://127.0.0.1:{admin}/readyz");
            procs::wait_for_200(
                "the data plane to be ready",
                Duration::from_secs(30),
                &client,
                &ready,
            )
            .await?;
            p.check_alive()?;
            p
        }
    };
    procs::wait_until(
        &format!("{} to listen", s.name),
        Duration::from_secs(30),
        || procs::port_open(port),
    )
    .await?;
    proc.check_alive()?;
    let target = target(s, fixture, port)?;
    let result = load::run(&target, shape).await;
    let alive = proc.check_alive();
    proc.stop().await;
    alive?;
    result
}

/// The request a scenario sends, to a server on loopback `port`.
pub(crate) fn target(s: &Scenario, fixture: &Fixture, port: u16) -> anyhow::Result<Target> {
    let body: Bytes = body_of(s);
    let (hook, key) = match s.webhook {
        Hook::Generic => (&fixture.generic, GENERIC_KEY),
        Hook::GenericWrongKey => (&fixture.generic, "wrong-key"),
        Hook::Slack => (&fixture.slack, SLACK_KEY),
        Hook::Resume => (&fixture.resume, RESUME_KEY),
    };
    let mut headers = vec![(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    if matches!(s.webhook, Hook::Slack) {
        headers.extend(slack_headers(&body)?);
    }
    Ok(Target {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        path: url_path(hook, key),
        headers,
        body,
        expect_status: s.expect_status,
    })
}
