//! The dispatcher benchmark (docs/benchmarks.md, "Dispatcher"): invocations/s and latency of the
//! real `data-plane dispatch` process calling a local action server, next to a minimal consumer →
//! POST → producer loop (`baseline-dispatch`) with the same concurrency, on the same broker, with
//! the same invocations. Rounds alternate dispatcher and baseline; each ratio is taken within a round.
//!
//! The dispatcher gets its action and HMAC key from a real control plane (the ActionService RPCs,
//! whose registration sends the signed test request to the action server), over the config stream,
//! and signs every call as in production.

pub mod baseline;
mod driver;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use gateway_proto::v1 as pb;
use rdkafka::message::{Header, OwnedHeaders};
use serde::{Deserialize, Serialize};

use self::driver::{DriveResult, Load, Topics};
use crate::procs::{self, Proc};
use crate::report::{ms, verdict};

/// Flags of `dispatch`.
#[derive(clap::Args, Clone)]
pub struct DispatchArgs {
    /// The release `control-plane` binary.
    #[arg(long)]
    pub control_plane_bin: PathBuf,
    /// The release `data-plane` binary (run as `data-plane dispatch`).
    #[arg(long)]
    pub data_plane_bin: PathBuf,
    /// Postgres admin URL (a fresh database is created in it).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Kafka bootstrap (tansu).
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: String,
    /// Invocations measured per side and round.
    #[arg(long, env = "BENCH_DISPATCH_INVOCATIONS", default_value_t = 20_000)]
    pub invocations: usize,
    /// Invocations run first, not measured, per side and round.
    #[arg(long, env = "BENCH_DISPATCH_WARMUP", default_value_t = 2_000)]
    pub warmup: usize,
    /// Calls at once: the dispatcher's `--action-concurrency` and the baseline's call slots.
    #[arg(long, env = "BENCH_DISPATCH_CONCURRENCY", default_value_t = 32)]
    pub concurrency: usize,
    /// Most invocations produced and not yet answered (0: 4 × the concurrency).
    #[arg(long, default_value_t = 0)]
    pub window: usize,
    /// Rounds (dispatcher, then baseline, in each).
    #[arg(long, env = "BENCH_ROUNDS", default_value_t = 3)]
    pub rounds: usize,
    /// Producer `linger.ms` for the dispatcher and the baseline alike.
    #[arg(long, env = "BENCH_LINGER_MS", default_value_t = 1)]
    pub linger_ms: u64,
    /// Consumer `fetch.wait.max.ms` for the dispatcher, the baseline and the bench's result reader
    /// alike (tansu holds a fetch for this long when it has nothing new, so librdkafka's 500 ms
    /// default would pace a closed loop).
    #[arg(long, default_value_t = 5)]
    pub fetch_wait_ms: u64,
    /// Directory for logs.
    #[arg(long)]
    pub work_dir: PathBuf,
    /// Where the JSON results go.
    #[arg(long)]
    pub out: PathBuf,
    /// Extra `data-plane dispatch` flags.
    #[arg(long = "dispatcher-arg", allow_hyphen_values = true)]
    pub dispatcher_args: Vec<String>,
}

/// One side's figures.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Side {
    /// The median round (by invocations/s).
    pub result: DriveResult,
    /// Invocations/s of every round, in order.
    pub rounds_rate: Vec<f64>,
}

/// Everything `dispatch` writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DispatchResults {
    /// Invocations per side and round, and the window.
    pub load: Load,
    /// Calls at once.
    pub concurrency: usize,
    /// Producer `linger.ms` of both sides.
    pub linger_ms: u64,
    /// Rounds run.
    pub rounds: usize,
    /// Bytes of one invocation record's value.
    pub invocation_bytes: usize,
    /// `data-plane dispatch`.
    pub dispatcher: Side,
    /// `baseline-dispatch`.
    pub baseline: Side,
    /// Dispatcher ÷ baseline invocations/s, per round.
    pub ratios: Vec<f64>,
    /// Their median.
    pub ratio: f64,
}

/// The target of docs/benchmarks.md: the dispatcher at ≥ 85 % of the baseline's invocations/s.
pub const TARGET: f64 = 0.85;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dispatcher,
    Baseline,
}

struct Env<'a> {
    args: &'a DispatchArgs,
    control_plane: &'a str,
    data_plane_token: &'a str,
    action_url: &'a str,
    headers: OwnedHeaders,
    parameters: String,
    client: reqwest::Client,
}

/// `gateway-bench dispatch`.
pub async fn run(args: DispatchArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.work_dir)?;
    let db_url = crate::distribution::fresh_database(&args.database_url).await?;
    let status = std::process::Command::new(&args.control_plane_bin)
        .args(["migrate", "--database-url", &db_url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "control-plane migrate failed");
    let organization = uuid::Uuid::new_v4();
    let admin_token = bootstrap_token(&args, &db_url, organization, "ADMIN")?;
    let data_plane_token = bootstrap_token(&args, &db_url, organization, "DATA_PLANE")?;
    let client = reqwest::Client::new();

    let me = std::env::current_exe()?;
    let action_port = procs::free_port()?;
    let mut action_server = Proc::spawn(
        "action-server",
        &me,
        &[
            "action-server".into(),
            "--listen".into(),
            format!("127.0.0.1:{action_port}"),
        ],
        &[],
        args.work_dir.join("dispatch-action-server.log"),
    )?;
    procs::wait_until(
        "the action server to listen",
        Duration::from_secs(30),
        || procs::port_open(action_port),
    )
    .await?;
    action_server.check_alive()?;
    let action_url = format!("http://127.0.0.1:{action_port}/send_email");
    let (control_plane, grpc) = start_control_plane(&args, &db_url, &client).await?;
    let app = pb::AppRef {
        organization_id: organization.to_string(),
        workspace_id: uuid::Uuid::new_v4().to_string(),
        app_id: uuid::Uuid::new_v4().to_string(),
    };
    register(&grpc, &admin_token, &app, &action_url).await?;
    let mut headers = OwnedHeaders::new();
    for (key, id) in [
        ("Fx-Organization-Id", &app.organization_id),
        ("Fx-Workspace-Id", &app.workspace_id),
        ("Fx-App-Id", &app.app_id),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(id.as_bytes()),
        });
    }
    let env = Env {
        args: &args,
        control_plane: &grpc,
        data_plane_token: &data_plane_token,
        action_url: &action_url,
        headers,
        parameters: parameters(),
        client,
    };
    let load = Load {
        warmup: args.warmup,
        invocations: args.invocations,
        window: if args.window == 0 {
            4 * args.concurrency.max(1)
        } else {
            args.window
        },
    };
    let mut rounds: [Vec<DriveResult>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=args.rounds.max(1) {
        for (i, (kind, name)) in [
            (Kind::Dispatcher, "dispatcher"),
            (Kind::Baseline, "baseline"),
        ]
        .into_iter()
        .enumerate()
        {
            eprintln!("round {round}: {name} ({} invocations) …", load.invocations);
            let r = run_side(&env, kind, round, load).await?;
            eprintln!(
                "  {:>9.0} invocations/s  p50 {} µs  p99 {} µs  p99.9 {} µs  errors {}",
                r.rate, r.p50_us, r.p99_us, r.p999_us, r.errors
            );
            rounds[i].push(r);
        }
    }
    control_plane.stop().await;
    action_server.stop().await;
    let [dispatcher, baseline] = rounds;
    let ratios: Vec<f64> = dispatcher
        .iter()
        .zip(&baseline)
        .map(|(d, b)| if b.rate > 0.0 { d.rate / b.rate } else { 0.0 })
        .collect();
    let ratio = median(&mut ratios.clone());
    let out = DispatchResults {
        load,
        concurrency: args.concurrency,
        linger_ms: args.linger_ms,
        rounds: args.rounds.max(1),
        invocation_bytes: invocation(&env.parameters, 0).len(),
        dispatcher: side(dispatcher),
        baseline: side(baseline),
        ratios,
        ratio,
    };
    std::fs::write(&args.out, serde_json::to_vec_pretty(&out)?)?;
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn side(mut rounds: Vec<DriveResult>) -> Side {
    let rounds_rate = rounds.iter().map(|r| r.rate).collect();
    rounds.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let mid = rounds.len() / 2;
    Side {
        result: rounds.into_iter().nth(mid).unwrap_or_default(),
        rounds_rate,
    }
}

/// The parameters of every invocation: a small e-mail, about 500 bytes of JSON.
fn parameters() -> String {
    serde_json::json!({
        "to": "ops@example.com",
        "subject": "Order ORD-12345 shipped",
        "body": "Hello Ana, your order ORD-12345 (3 items) left our warehouse today and should reach you within two working days. You can follow the parcel with the tracking link in your account. Thank you for shopping with us. If anything is missing or damaged, answer this message and we will make it right. Kind regards, the shop team.",
        "priority": 2,
    })
    .to_string()
}

fn invocation(parameters: &str, i: usize) -> Vec<u8> {
    format!(r#"{{"requestId":"bench-{i}","actionName":"send_email","parameters":{parameters}}}"#)
        .into_bytes()
}

/// The action's parameter schema, as the RPC takes it.
fn schema() -> anyhow::Result<prost_types::Struct> {
    let v = serde_json::json!({
        "type": "object",
        "properties": {
            "to": {"type": "string"},
            "subject": {"type": "string"},
            "body": {"type": "string"},
            "priority": {"type": "integer"},
        },
        "required": ["to", "subject"],
    });
    match to_proto(&v).kind {
        Some(prost_types::value::Kind::StructValue(s)) => Ok(s),
        _ => anyhow::bail!("the schema is an object"),
    }
}

fn to_proto(v: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    use serde_json::Value;
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(to_proto).collect(),
        }),
        Value::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o.iter().map(|(k, v)| (k.clone(), to_proto(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

fn bootstrap_token(
    args: &DispatchArgs,
    db_url: &str,
    organization: uuid::Uuid,
    role: &str,
) -> anyhow::Result<String> {
    let out = std::process::Command::new(&args.control_plane_bin)
        .args([
            "bootstrap-token",
            "--database-url",
            db_url,
            "--organization-id",
            &organization.to_string(),
            "--role",
            role,
            "--name",
            &format!("bench-{}", role.to_lowercase()),
        ])
        .stderr(std::process::Stdio::null())
        .output()?;
    anyhow::ensure!(out.status.success(), "control-plane bootstrap-token failed");
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Starts the control plane, allowed to call the loopback action server; returns it and its gRPC URL.
async fn start_control_plane(
    args: &DispatchArgs,
    db_url: &str,
    client: &reqwest::Client,
) -> anyhow::Result<(Proc, String)> {
    let port = procs::free_port()?;
    let admin = procs::free_port()?;
    let master: [u8; 32] = rand::random();
    let jwt: [u8; 48] = std::array::from_fn(|_| rand::random());
    let b64 = base64::engine::general_purpose::STANDARD;
    let envs = vec![
        ("DATABASE_URL", db_url.to_owned()),
        ("CP_LISTEN", format!("127.0.0.1:{port}")),
        ("CP_METRICS_LISTEN", format!("127.0.0.1:{admin}")),
        ("CP_MASTER_KEYS", format!("k1={}", b64.encode(master))),
        (
            "CP_JWT_SIGNING_KEY",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(jwt),
        ),
        ("CP_PUBLIC_BASE_URL", "http://127.0.0.1:8080".into()),
        ("CP_ACTIONS_ALLOW_HTTP", "true".into()),
        ("CP_ACTIONS_ALLOW_CIDRS", "127.0.0.1/32".into()),
    ];
    let mut p = Proc::spawn(
        "control-plane",
        &args.control_plane_bin,
        &["serve".into()],
        &envs,
        args.work_dir.join("dispatch-control-plane.log"),
    )?;
    let health = format!("http://127.0.0.1:{admin}/healthz");
    procs::wait_for_200(
        "the control plane",
        Duration::from_secs(60),
        client,
        &health,
    )
    .await?;
    p.check_alive()?;
    Ok((p, format!("http://127.0.0.1:{port}")))
}

/// Creates the app's HMAC key and registers `send_email` at `url` with the ActionService RPCs.
async fn register(
    grpc: &str,
    admin_token: &str,
    app: &pb::AppRef,
    url: &str,
) -> anyhow::Result<()> {
    let channel = tonic::transport::Channel::from_shared(grpc.to_owned())?
        .connect()
        .await?;
    let jwt = pb::auth_service_client::AuthServiceClient::new(channel.clone())
        .exchange_token(pb::ExchangeTokenRequest {
            api_token: admin_token.to_owned(),
        })
        .await?
        .into_inner()
        .jwt_token;
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {jwt}").parse()?;
    let req = |msg| {
        let mut r = tonic::Request::new(msg);
        r.metadata_mut().insert("authorization", bearer.clone());
        r
    };
    let mut actions = pb::action_service_client::ActionServiceClient::new(channel);
    actions
        .create_hmac_key(req(pb::CreateHmacKeyRequest {
            app: Some(app.clone()),
            label: "bench".into(),
        }))
        .await?;
    let mut req = tonic::Request::new(pb::RegisterActionRequest {
        app: Some(app.clone()),
        name: "send_email".into(),
        description: "sends an email (benchmark)".into(),
        webhook_url: url.to_owned(),
        json_schema: Some(schema()?),
    });
    req.metadata_mut().insert("authorization", bearer.clone());
    actions.register_action(req).await?;
    Ok(())
}

async fn run_side(
    env: &Env<'_>,
    kind: Kind,
    round: usize,
    load: Load,
) -> anyhow::Result<DriveResult> {
    let args = env.args;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let topics = Topics {
        invocations: format!("bench-invocations-{id}"),
        results: format!("bench-results-{id}"),
    };
    procs::create_topic(&args.kafka_bootstrap, &topics.invocations, 1).await?;
    procs::create_topic(&args.kafka_bootstrap, &topics.results, 1).await?;
    let group = format!("bench-dispatch-{id}");
    let linger = format!("linger.ms={}", args.linger_ms);
    let fetch_wait = format!("fetch.wait.max.ms={}", args.fetch_wait_ms);
    let mut proc = match kind {
        Kind::Dispatcher => {
            let admin = procs::free_port()?;
            let mut a: Vec<String> = [
                "dispatch",
                "--admin-listen",
                &format!("127.0.0.1:{admin}"),
                "--kafka-bootstrap",
                &args.kafka_bootstrap,
                "--invocation-topic",
                &topics.invocations,
                "--result-topic",
                &topics.results,
                "--consumer-group",
                &group,
                "--allow-http",
                "--allow-cidrs",
                "127.0.0.1/32",
                "--app-rate-per-hour",
                "0",
                "--action-concurrency",
                &args.concurrency.to_string(),
                "--kafka-property",
                &linger,
                "--kafka-property",
                &fetch_wait,
            ]
            .map(str::to_owned)
            .into();
            a.extend(args.dispatcher_args.iter().cloned());
            let envs = vec![
                ("DP_CONTROL_PLANE_URL", env.control_plane.to_owned()),
                ("DP_CONTROL_PLANE_TOKEN", env.data_plane_token.to_owned()),
                ("DP_ID", format!("bench-dispatcher-{round}")),
            ];
            let mut p = Proc::spawn(
                "dispatcher",
                &args.data_plane_bin,
                &a,
                &envs,
                args.work_dir.join("dispatch-dispatcher.log"),
            )?;
            let ready = format!("http://127.0.0.1:{admin}/readyz");
            procs::wait_for_200(
                "the dispatcher to be ready",
                Duration::from_secs(60),
                &env.client,
                &ready,
            )
            .await?;
            p.check_alive()?;
            p
        }
        Kind::Baseline => {
            let a: Vec<String> = [
                "baseline-dispatch",
                "--kafka-bootstrap",
                &args.kafka_bootstrap,
                "--invocation-topic",
                &topics.invocations,
                "--result-topic",
                &topics.results,
                "--consumer-group",
                &group,
                "--action-url",
                env.action_url,
                "--concurrency",
                &args.concurrency.to_string(),
                "--kafka-property",
                &linger,
                "--kafka-property",
                &fetch_wait,
            ]
            .map(str::to_owned)
            .into();
            Proc::spawn(
                "baseline-dispatch",
                &std::env::current_exe()?,
                &a,
                &[],
                args.work_dir.join("dispatch-baseline.log"),
            )?
        }
    };
    let parameters = env.parameters.as_str();
    let result = driver::drive(
        &args.kafka_bootstrap,
        &topics,
        &env.headers,
        |i| invocation(parameters, i),
        load,
        args.fetch_wait_ms,
    )
    .await;
    let alive = proc.check_alive();
    proc.stop().await;
    alive?;
    result
}

/// The `dispatch` section of `gateway-bench report`.
pub fn report_section(path: &Path) -> anyhow::Result<String> {
    let d: DispatchResults = serde_json::from_slice(&std::fs::read(path)?)?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nDispatcher: {} invocations per side and round after {} unmeasured, {} B invocation records, \
         at most {} unanswered, {} calls at once; {} rounds (dispatcher, then baseline), figures from \
         the median round (range in brackets), the ratio the median of the per-round ratios. Latency: \
         invocation handed to the bench's producer → its result read from the result topic.\n",
        d.load.invocations,
        d.load.warmup,
        d.invocation_bytes,
        d.load.window,
        d.concurrency,
        d.rounds
    );
    let _ = writeln!(
        s,
        "| dispatcher benchmark | invocations/s | p50 ms | p99 ms | p99.9 ms | errors |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    for (label, side) in [
        ("`data-plane dispatch` (signed calls)", &d.dispatcher),
        (
            "baseline: consumer → POST → producer (`baseline-dispatch`)",
            &d.baseline,
        ),
    ] {
        let r = &side.result;
        let _ = writeln!(
            s,
            "| {label} | {:.0} ({:.0}–{:.0}) | {} | {} | {} | {} |",
            r.rate,
            side.rounds_rate
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min),
            side.rounds_rate.iter().copied().fold(0.0, f64::max),
            ms(r.p50_us),
            ms(r.p99_us),
            ms(r.p999_us),
            r.errors
        );
    }
    let _ = writeln!(s, "\n| ratio (same run) | value | target | |");
    let _ = writeln!(s, "|---|---:|---:|---|");
    let _ = writeln!(
        s,
        "| dispatcher ÷ baseline, invocations/s | {:.0} % | ≥ {:.0} % | {} |",
        d.ratio * 100.0,
        TARGET * 100.0,
        verdict(d.ratio >= TARGET)
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(rate: f64) -> DriveResult {
        DriveResult {
            ok: 100,
            rate,
            p50_us: 20_000,
            p99_us: 50_000,
            ..Default::default()
        }
    }

    #[test]
    fn the_report_takes_the_median_round_and_judges_the_ratio() {
        let dispatcher = side(vec![result(900.0), result(700.0), result(800.0)]);
        assert_eq!(dispatcher.result.rate, 800.0, "the median round");
        assert_eq!(dispatcher.rounds_rate, vec![900.0, 700.0, 800.0]);
        let mut results = DispatchResults {
            load: Load {
                warmup: 10,
                invocations: 100,
                window: 128,
            },
            concurrency: 32,
            linger_ms: 1,
            rounds: 3,
            invocation_bytes: 467,
            dispatcher,
            baseline: side(vec![result(1000.0); 3]),
            ratios: vec![0.9, 0.7, 0.8],
            ratio: median(&mut [0.9, 0.7, 0.8]),
        };
        let path = std::env::temp_dir().join(format!("dispatch-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, serde_json::to_vec(&results).expect("json")).expect("write");
        let text = report_section(&path).expect("renders");
        assert!(text.contains("| 800 (700–900) | 20.00 | 50.00 |"), "{text}");
        assert!(text.contains("| 80 % | ≥ 85 % | **misses** |"), "{text}");
        results.ratio = 0.86;
        std::fs::write(&path, serde_json::to_vec(&results).expect("json")).expect("write");
        let text = report_section(&path).expect("renders");
        assert!(text.contains("| 86 % | ≥ 85 % | meets |"), "{text}");
        let _ = std::fs::remove_file(&path);
    }
}
