//! Config distribution figures (docs/benchmarks.md): commit → every connected data plane's ACK with 1 and 8
//! real data-plane processes, and for 100,000 webhooks the snapshot build time, bytes on the wire,
//! data-plane apply time, time to ready and resident memory.
//!
//! Changes are committed with SQL exactly as the control plane's own write path does it (toggle a
//! webhook's state, bump the global revision, log the change, `NOTIFY` — one transaction), so the
//! figure starts at COMMIT and does not include gRPC API overhead. ACKs are read from the control
//! plane's `/metrics` (`gateway_config_acked_version{data_plane}`), polled every ~0.5 ms.
//!
//! The large config (`--webhooks`) is what `insert_webhooks` writes: ACTIVE webhooks with one START
//! binding each, over 4 workspaces of 2 apps; nine in ten GENERIC, one in ten SLACK with a signing
//! secret sealed by the control plane's code, so the snapshot build really opens ciphertexts. The
//! snapshot build timed is `control_plane::snapshot::config_snapshot`, whose webhook read
//! (`snapshot::active_webhooks`) is the one a control plane does at start.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use diesel_async::AsyncConnection;
use gateway_proto::v1::{
    control_plane_message, ControlPlaneMessage, Delta, SnapshotChunk, WebhookRoute,
};
use gateway_shared::snapshot::{ConfigSnapshot, WebhookConfig};
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, NoTls};

use crate::procs::{self, Proc};

/// Flags of `distribution`.
#[derive(clap::Args, Clone)]
pub struct DistributionArgs {
    /// The release `control-plane` binary.
    #[arg(long)]
    pub control_plane_bin: PathBuf,
    /// The release `data-plane` binary.
    #[arg(long)]
    pub data_plane_bin: PathBuf,
    /// Postgres admin URL (a fresh database is created in it).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Kafka bootstrap (the data planes need one; nothing is produced here).
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: String,
    /// Changes committed per data-plane count.
    #[arg(long, env = "BENCH_CHANGES", default_value_t = 100)]
    pub changes: usize,
    /// Data planes in the second round.
    #[arg(long, default_value_t = 8)]
    pub data_planes: usize,
    /// Webhooks for the large-config figures.
    #[arg(long, env = "BENCH_WEBHOOKS", default_value_t = 100_000)]
    pub webhooks: usize,
    /// Directory for logs.
    #[arg(long)]
    pub work_dir: PathBuf,
    /// Where the JSON results go.
    #[arg(long)]
    pub out: PathBuf,
}

/// Percentiles of a set of durations, milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Spread {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank).
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Spread {
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1)) - 1;
            v.get(i).copied().unwrap_or(0.0)
        };
        Spread {
            n: v.len(),
            p50_ms: rank(0.5),
            p99_ms: rank(0.99),
            max_ms: v.last().copied().unwrap_or(0.0),
        }
    }
}

/// Everything `distribution` writes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DistributionResults {
    /// Commit → ACK with 1 data plane (small config).
    pub ack_1: Spread,
    /// Commit → every one of N data planes ACKed.
    pub ack_n: Spread,
    /// N.
    pub data_planes: usize,
    /// Webhooks in the large config.
    pub webhooks: usize,
    /// `control_plane::snapshot::config_snapshot` (Postgres read + build), median of 3, ms.
    pub snapshot_build_ms: f64,
    /// Bytes of the full snapshot on the config stream as the control plane sends it by default:
    /// each message zstd-compressed as tonic does it, plus gRPC framing.
    pub snapshot_bytes: usize,
    /// Without compression and with text ids: what an earlier data plane receives.
    #[serde(default)]
    pub snapshot_bytes_uncompressed: usize,
    /// The same with gzip (`CP_STREAM_COMPRESSION=gzip`).
    #[serde(default)]
    pub snapshot_bytes_gzip: usize,
    /// CPU to compress the whole snapshot once (one data plane's start), zstd / gzip, ms.
    #[serde(default)]
    pub snapshot_compress_ms: (f64, f64),
    /// CPU to decompress it in the data plane, zstd / gzip, ms.
    #[serde(default)]
    pub snapshot_decompress_ms: (f64, f64),
    /// Bytes of a one-change delta (zstd, as sent).
    pub delta_bytes: usize,
    /// In-process: decode the chunks, convert, build the table chunk by chunk and serve it
    /// (`Routes::builder`, as the stream client does), median of 3, ms.
    pub dp_apply_ms: f64,
    /// Control-plane start → its first full read of the large config published, ms.
    pub cp_load_ms: f64,
    /// Fresh data-plane process start → `/readyz` 200 (stream, snapshot, apply), ms.
    pub dp_ready_ms: f64,
    /// Data-plane resident memory with the large config, KiB (VmRSS, and peak VmHWM).
    pub dp_rss_kib: u64,
    /// Peak.
    pub dp_hwm_kib: u64,
    /// Data-plane resident memory with a handful of webhooks (the fixed cost), KiB.
    pub dp_rss_small_kib: u64,
    /// Commit → ACK with the large config loaded (1 data plane).
    pub ack_large: Spread,
}

struct Env {
    args: DistributionArgs,
    db_url: String,
    organization: uuid::Uuid,
    master_keys: String,
    client: reqwest::Client,
}

/// `gateway-bench distribution`.
pub async fn run(args: DistributionArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.work_dir)?;
    let db_url = fresh_database(&args.database_url).await?;
    let key: [u8; 32] = rand::random();
    let env = Env {
        db_url,
        organization: uuid::Uuid::new_v4(),
        master_keys: format!(
            "k1={}",
            base64::engine::general_purpose::STANDARD.encode(key)
        ),
        client: reqwest::Client::new(),
        args,
    };
    let status = std::process::Command::new(&env.args.control_plane_bin)
        .args(["migrate", "--database-url", &env.db_url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "control-plane migrate failed");
    let token = data_plane_token(&env)?;
    let (mut sql, conn) = tokio_postgres::connect(&env.db_url, NoTls).await?;
    tokio::spawn(conn);
    let keyring = gateway_shared::crypto::Keyring::single("k1", key)?;
    insert_webhooks(&mut sql, &keyring, env.organization, "small", 10).await?;
    let toggled: uuid::Uuid = sql
        .query_one("SELECT id::text FROM webhooks ORDER BY name LIMIT 1", &[])
        .await?
        .get::<_, String>(0)
        .parse()?;
    let mut out = DistributionResults {
        data_planes: env.args.data_planes,
        webhooks: env.args.webhooks,
        ..Default::default()
    };

    // Commit → ACK with 1, then N data planes.
    let cp = start_control_plane(&env, "cp-small").await?;
    let cp_metrics = cp.metrics.clone();
    let mut dps = Vec::new();
    dps.push(start_data_plane(&env, &cp, &token, "dp-0").await?);
    wait_acked(&env, &cp_metrics, 1, current_revision(&sql).await?).await?;
    out.dp_rss_small_kib = dps[0].0.rss_kib().map_or(0, |r| r.0);
    eprintln!(
        "commit → ACK, 1 data plane ({} changes) …",
        env.args.changes
    );
    out.ack_1 = measure_changes(&env, env.args.changes, &sql, &cp_metrics, toggled, 1).await?;
    for i in 1..env.args.data_planes {
        dps.push(start_data_plane(&env, &cp, &token, &format!("dp-{i}")).await?);
    }
    wait_acked(
        &env,
        &cp_metrics,
        env.args.data_planes,
        current_revision(&sql).await?,
    )
    .await?;
    eprintln!(
        "commit → ACK, {} data planes ({} changes) …",
        env.args.data_planes, env.args.changes
    );
    out.ack_n = measure_changes(
        &env,
        env.args.changes,
        &sql,
        &cp_metrics,
        toggled,
        env.args.data_planes,
    )
    .await?;
    for (p, _) in dps {
        p.stop().await;
    }
    cp.proc.stop().await;

    // The large config.
    eprintln!("inserting {} webhooks …", env.args.webhooks);
    insert_webhooks(
        &mut sql,
        &keyring,
        env.organization,
        "large",
        env.args.webhooks,
    )
    .await?;
    let mut pg = diesel_async::AsyncPgConnection::establish(&env.db_url).await?;
    let mut builds = Vec::new();
    let mut snapshot = ConfigSnapshot::default();
    for _ in 0..3 {
        let t = Instant::now();
        snapshot = control_plane::snapshot::config_snapshot(&mut pg, &keyring, None)
            .await
            .map_err(|e| anyhow::anyhow!("config_snapshot: {e:?}"))?;
        builds.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.snapshot_build_ms = Spread::of(builds).p50_ms;
    // What a data plane of this release receives (16-byte ids), and an earlier one (text ids).
    let frames = encode_snapshot(&snapshot.webhooks, snapshot.version, true);
    let wire = Wire::of(&frames)?;
    out.snapshot_bytes = wire.zstd;
    out.snapshot_bytes_uncompressed = encode_snapshot(&snapshot.webhooks, snapshot.version, false)
        .iter()
        .map(|f| f.len() + 5)
        .sum();
    out.snapshot_bytes_gzip = wire.gzip;
    out.snapshot_compress_ms = wire.compress_ms;
    out.snapshot_decompress_ms = wire.decompress_ms;
    out.delta_bytes = Wire::of(&[encode_delta(&snapshot.webhooks[..1], snapshot.version)])?.zstd;
    eprintln!(
        "snapshot on the wire: {} B uncompressed, {} B zstd, {} B gzip; compress {:.0} / {:.0} ms, decompress {:.0} / {:.0} ms (zstd / gzip)",
        out.snapshot_bytes_uncompressed, wire.zstd, wire.gzip, wire.compress_ms.0, wire.compress_ms.1,
        wire.decompress_ms.0, wire.decompress_ms.1
    );
    let mut applies = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let routes = apply_in_process(&frames)?;
        applies.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(routes);
    }
    out.dp_apply_ms = Spread::of(applies).p50_ms;
    drop(snapshot);

    let started = Instant::now();
    let cp = start_control_plane(&env, "cp-large").await?;
    let cp_metrics = cp.metrics.clone();
    let revision = current_revision(&sql).await?;
    let url = cp_metrics.clone();
    procs::wait_until(
        "the control plane to load the large config",
        Duration::from_secs(120),
        || {
            let url = url.clone();
            let client = env.client.clone();
            async move {
                match procs::get(&client, &url).await {
                    Some((200, text)) => {
                        metric(&text, "gateway_config_version ").is_some_and(|v| v >= revision)
                    }
                    _ => false,
                }
            }
        },
    )
    .await?;
    out.cp_load_ms = started.elapsed().as_secs_f64() * 1000.0;
    eprintln!("fresh data plane with {} webhooks …", env.args.webhooks);
    let (dp, ready) = start_data_plane(&env, &cp, &token, "dp-large").await?;
    out.dp_ready_ms = ready.as_secs_f64() * 1000.0;
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some((rss, hwm)) = dp.rss_kib() {
        out.dp_rss_kib = rss;
        out.dp_hwm_kib = hwm;
    }
    let changes = env.args.changes.min(30);
    out.ack_large = measure_changes(&env, changes, &sql, &cp_metrics, toggled, 1).await?;
    dp.stop().await;
    cp.proc.stop().await;
    std::fs::write(&env.args.out, serde_json::to_vec_pretty(&out)?)?;
    Ok(())
}

pub(crate) async fn fresh_database(admin: &str) -> anyhow::Result<String> {
    let (client, conn) = tokio_postgres::connect(admin, NoTls).await?;
    tokio::spawn(conn);
    let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let i = admin
        .rfind('/')
        .ok_or_else(|| anyhow::anyhow!("DATABASE_URL must end with /DBNAME"))?;
    Ok(format!("{}/{name}", &admin[..i]))
}

fn data_plane_token(env: &Env) -> anyhow::Result<String> {
    let out = std::process::Command::new(&env.args.control_plane_bin)
        .args([
            "bootstrap-token",
            "--database-url",
            &env.db_url,
            "--organization-id",
            &env.organization.to_string(),
            "--role",
            "DATA_PLANE",
            "--name",
            "bench",
        ])
        .stderr(std::process::Stdio::null())
        .output()?;
    anyhow::ensure!(out.status.success(), "control-plane bootstrap-token failed");
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Signed webhooks among those `insert_webhooks` writes: one in this many.
const SIGNED_EVERY: usize = 10;
/// Workspaces, and apps per workspace, the webhooks are spread over.
const WORKSPACES: usize = 4;
const APPS_PER_WORKSPACE: usize = 2;

/// `count` ACTIVE webhooks with one START binding each, spread round-robin over 4 workspaces of 2
/// apps each of `org`: nine in ten GENERIC, one in ten (the 10th, 20th, …) SLACK with a signing secret sealed by the
/// control plane's own code under `keyring`, so a snapshot opens it as it would in production.
/// Written with `COPY` in one transaction (the gRPC API would take minutes for 100,000), with one
/// revision bump.
async fn insert_webhooks(
    sql: &mut Client,
    keyring: &gateway_shared::crypto::Keyring,
    org: uuid::Uuid,
    prefix: &str,
    count: usize,
) -> anyhow::Result<()> {
    use futures::SinkExt;
    use std::fmt::Write;

    let apps: Vec<(uuid::Uuid, uuid::Uuid)> = (0..WORKSPACES)
        .flat_map(|_| {
            let ws = uuid::Uuid::new_v4();
            (0..APPS_PER_WORKSPACE).map(move |_| (ws, uuid::Uuid::new_v4()))
        })
        .collect();
    let tx = sql.transaction().await?;
    let webhooks = tx
        .copy_in(
            "COPY webhooks (id, organization_id, workspace_id, app_id, name, provider, state,
                            api_key_ciphertext, api_key_sha256, secret_resolved_ciphertext)
             FROM STDIN",
        )
        .await?;
    futures::pin_mut!(webhooks);
    let mut ids = Vec::with_capacity(count);
    let mut w = String::new();
    for i in 0..count {
        let id = uuid::Uuid::new_v4();
        let (ws, app) = apps[i % apps.len()];
        let key_hash = hex::encode(gateway_shared::snapshot::sha256(
            format!("bench-key-{prefix}-{i}").as_bytes(),
        ));
        let (provider, secret) = if i % SIGNED_EVERY == SIGNED_EVERY - 1 {
            let sealed = control_plane::seal_resolved_signing_secret(
                keyring,
                id,
                &format!("slack-signing-secret-{prefix}-{i}"),
            )
            .map_err(|e| anyhow::anyhow!("sealing: {e:?}"))?;
            ("SLACK", format!("\\\\x{}", hex::encode(sealed)))
        } else {
            ("GENERIC", "\\N".to_owned())
        };
        writeln!(
            w,
            "{id}\t{org}\t{ws}\t{app}\t{prefix}-{i}\t{provider}\tACTIVE\t\\\\x00\t\\\\x{key_hash}\t{secret}"
        )?;
        ids.push((id, ws, app));
        if w.len() > 1 << 20 {
            webhooks
                .send(bytes::Bytes::from(std::mem::take(&mut w)))
                .await?;
        }
    }
    webhooks.send(bytes::Bytes::from(w)).await?;
    webhooks.as_mut().finish().await?;
    // One COPY at a time on a connection: the bindings follow.
    let bindings = tx
        .copy_in(
            "COPY trigger_bindings (webhook_id, organization_id, workspace_id, app_id,
                                    process_definition_id, node_id, node_kind, trigger_type,
                                    project_id, branch)
             FROM STDIN",
        )
        .await?;
    futures::pin_mut!(bindings);
    let mut b = String::new();
    for (id, ws, app) in ids {
        writeln!(
            b,
            "{id}\t{org}\t{ws}\t{app}\torder-intake\tstart\tMESSAGE_START_EVENT\tSTART_PROCESS\tbench\tmain"
        )?;
        if b.len() > 1 << 20 {
            bindings
                .send(bytes::Bytes::from(std::mem::take(&mut b)))
                .await?;
        }
    }
    bindings.send(bytes::Bytes::from(b)).await?;
    bindings.as_mut().finish().await?;
    tx.batch_execute("UPDATE config_revision SET revision = revision + 1")
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn current_revision(sql: &Client) -> anyhow::Result<u64> {
    let r: i64 = sql
        .query_one("SELECT revision FROM config_revision", &[])
        .await?
        .get(0);
    Ok(u64::try_from(r)?)
}

/// A running control plane and its addresses.
struct ControlPlane {
    proc: Proc,
    grpc: String,
    metrics: String,
}

async fn start_control_plane(env: &Env, name: &str) -> anyhow::Result<ControlPlane> {
    let port = procs::free_port()?;
    let admin = procs::free_port()?;
    let jwt: [u8; 48] = std::array::from_fn(|_| rand::random());
    let envs = vec![
        ("DATABASE_URL", env.db_url.clone()),
        ("CP_LISTEN", format!("127.0.0.1:{port}")),
        ("CP_METRICS_LISTEN", format!("127.0.0.1:{admin}")),
        ("CP_MASTER_KEYS", env.master_keys.clone()),
        (
            "CP_JWT_SIGNING_KEY",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(jwt),
        ),
        ("CP_PUBLIC_BASE_URL", "http://127.0.0.1:8080".into()),
    ];
    let mut p = Proc::spawn(
        name,
        &env.args.control_plane_bin,
        &["serve".into()],
        &envs,
        env.args.work_dir.join(format!("{name}.log")),
    )?;
    let health = format!("http://127.0.0.1:{admin}/healthz");
    procs::wait_for_200(
        "the control plane",
        Duration::from_secs(60),
        &env.client,
        &health,
    )
    .await?;
    p.check_alive()?;
    Ok(ControlPlane {
        proc: p,
        grpc: format!("http://127.0.0.1:{port}"),
        metrics: format!("http://127.0.0.1:{admin}/metrics"),
    })
}

async fn start_data_plane(
    env: &Env,
    cp: &ControlPlane,
    token: &str,
    id: &str,
) -> anyhow::Result<(Proc, Duration)> {
    let admin = procs::free_port()?;
    let envs = vec![
        ("DP_LISTEN", format!("127.0.0.1:{}", procs::free_port()?)),
        ("DP_ADMIN_LISTEN", format!("127.0.0.1:{admin}")),
        ("DP_KAFKA_BOOTSTRAP", env.args.kafka_bootstrap.clone()),
        ("DP_CONTROL_PLANE_URL", cp.grpc.clone()),
        ("DP_CONTROL_PLANE_TOKEN", token.to_owned()),
        ("DP_ID", id.to_owned()),
    ];
    let started = Instant::now();
    let mut p = Proc::spawn(
        id,
        &env.args.data_plane_bin,
        &[],
        &envs,
        env.args.work_dir.join(format!("{id}.log")),
    )?;
    let ready = format!("http://127.0.0.1:{admin}/readyz");
    procs::wait_for_200(
        &format!("{id} to be ready"),
        Duration::from_secs(120),
        &env.client,
        &ready,
    )
    .await?;
    let took = started.elapsed();
    p.check_alive()?;
    Ok((p, took))
}

/// The value of the first sample line starting with `prefix`.
fn metric(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Whether `expected` data planes have ACKed at least `revision`.
fn all_acked(text: &str, expected: usize, revision: u64) -> bool {
    let acked: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("gateway_config_acked_version{"))
        .filter_map(|l| l.rsplit(' ').next()?.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .collect();
    acked.len() >= expected && acked.iter().filter(|v| **v >= revision).count() >= expected
}

async fn wait_acked(env: &Env, url: &str, expected: usize, revision: u64) -> anyhow::Result<()> {
    procs::wait_until("every data plane to ACK", Duration::from_secs(120), || {
        let client = env.client.clone();
        let url = url.to_owned();
        async move {
            matches!(procs::get(&client, &url).await, Some((200, t)) if all_acked(&t, expected, revision))
        }
    })
    .await?;
    Ok(())
}

/// Commits `changes` changes (toggling one webhook's state) and times COMMIT → every one of
/// `expected` data planes ACKed, one change at a time.
async fn measure_changes(
    env: &Env,
    changes: usize,
    sql: &Client,
    metrics_url: &str,
    webhook: uuid::Uuid,
    expected: usize,
) -> anyhow::Result<Spread> {
    let mut samples = Vec::with_capacity(changes);
    for _ in 0..changes {
        sql.batch_execute("BEGIN").await?;
        let state: String = sql
            .query_one(
                "UPDATE webhooks SET state = CASE state WHEN 'ACTIVE' THEN 'DEACTIVATED' ELSE 'ACTIVE' END,
                        updated_at = now() WHERE id = $1::text::uuid RETURNING state",
                &[&webhook.to_string()],
            )
            .await?
            .get(0);
        let revision: i64 = sql
            .query_one(
                "UPDATE config_revision SET revision = revision + 1 RETURNING revision",
                &[],
            )
            .await?
            .get(0);
        let kind = if state == "ACTIVE" {
            "activated"
        } else {
            "deactivated"
        };
        sql.execute(
            "INSERT INTO config_changes (revision, resource_id, kind) VALUES ($1, $2::text::uuid, $3)",
            &[&revision, &webhook.to_string(), &kind],
        )
        .await?;
        sql.execute(
            "SELECT pg_notify('config_revision', $1)",
            &[&revision.to_string()],
        )
        .await?;
        let t0 = Instant::now();
        sql.batch_execute("COMMIT").await?;
        let revision = u64::try_from(revision)?;
        loop {
            if let Some((200, text)) = procs::get(&env.client, metrics_url).await {
                if all_acked(&text, expected, revision) {
                    break;
                }
            }
            if t0.elapsed() > Duration::from_secs(30) {
                anyhow::bail!(
                    "revision {revision} was not ACKed by {expected} data planes in 30 s"
                );
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        // Let heartbeats and the previous delta settle; changes are independent samples.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Spread::of(samples))
}

/// The snapshot as the control plane sends it: chunks of 1,000 webhooks, one message each, with
/// 16-byte ids (`binary_ids`, a data plane of this release) or text ids (an earlier one).
fn encode_snapshot(webhooks: &[WebhookConfig], version: u64, binary_ids: bool) -> Vec<Vec<u8>> {
    let parts: Vec<&[WebhookConfig]> = webhooks.chunks(1000).collect();
    let total = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            ControlPlaneMessage {
                kind: Some(control_plane_message::Kind::Snapshot(SnapshotChunk {
                    version,
                    nonce: uuid::Uuid::new_v4().simple().to_string(),
                    chunk_index: i as u32,
                    last: i + 1 == total,
                    webhooks: part
                        .iter()
                        .map(|w| {
                            if binary_ids {
                                gateway_proto::convert::binary_id_route(w)
                            } else {
                                WebhookRoute::from(w)
                            }
                        })
                        .collect(),
                    committed_at_unix_ms: chrono::Utc::now().timestamp_millis(),
                    ..Default::default()
                })),
            }
            .encode_to_vec()
        })
        .collect()
}

fn encode_delta(upserts: &[WebhookConfig], version: u64) -> Vec<u8> {
    ControlPlaneMessage {
        kind: Some(control_plane_message::Kind::Delta(Delta {
            version: version + 1,
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            from_version: version,
            upserts: upserts
                .iter()
                .map(gateway_proto::convert::binary_id_route)
                .collect(),
            removals: vec![],
            committed_at_unix_ms: chrono::Utc::now().timestamp_millis(),
            ..Default::default()
        })),
    }
    .encode_to_vec()
}

/// What the messages of the config stream cost on the wire: each message as tonic sends it (its own
/// compressed frame, zstd at level 3 or gzip at level 6 — tonic's levels) plus the 5-byte gRPC
/// message header, and the CPU it takes to compress and decompress them all on one thread.
struct Wire {
    zstd: usize,
    gzip: usize,
    compress_ms: (f64, f64),
    decompress_ms: (f64, f64),
}

impl Wire {
    fn of(frames: &[Vec<u8>]) -> anyhow::Result<Wire> {
        use std::io::Read;
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
        let t = Instant::now();
        let zstd = frames
            .iter()
            .map(|f| {
                let mut out = Vec::new();
                zstd::stream::read::Encoder::new(f.as_slice(), zstd::DEFAULT_COMPRESSION_LEVEL)?
                    .read_to_end(&mut out)?;
                Ok(out)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let zstd_ms = ms(t);
        let t = Instant::now();
        let gzip = frames
            .iter()
            .map(|f| {
                let mut out = Vec::new();
                flate2::read::GzEncoder::new(f.as_slice(), flate2::Compression::new(6))
                    .read_to_end(&mut out)?;
                Ok(out)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let gzip_ms = ms(t);
        let t = Instant::now();
        for f in &zstd {
            std::io::copy(
                &mut zstd::stream::read::Decoder::new(f.as_slice())?,
                &mut std::io::sink(),
            )?;
        }
        let unzstd_ms = ms(t);
        let t = Instant::now();
        for f in &gzip {
            std::io::copy(
                &mut flate2::read::GzDecoder::new(f.as_slice()),
                &mut std::io::sink(),
            )?;
        }
        let ungzip_ms = ms(t);
        let framed = |v: &[Vec<u8>]| v.iter().map(|f| f.len() + 5).sum();
        Ok(Wire {
            zstd: framed(&zstd),
            gzip: framed(&gzip),
            compress_ms: (zstd_ms, gzip_ms),
            decompress_ms: (unzstd_ms, ungzip_ms),
        })
    }
}

/// What a data plane does with a streamed snapshot: decode every chunk, convert its webhooks and add
/// them to the table being built, then serve it. The table is returned, so dropping it is not timed
/// (a fresh data plane has no old table to drop).
fn apply_in_process(frames: &[Vec<u8>]) -> anyhow::Result<data_plane::Routes> {
    let routes = data_plane::Routes::new();
    let mut builder = routes.builder();
    let mut version = 0;
    for f in frames {
        let m = ControlPlaneMessage::decode(f.as_slice())?;
        if let Some(control_plane_message::Kind::Snapshot(chunk)) = m.kind {
            version = chunk.version;
            for r in chunk.webhooks {
                let w = WebhookConfig::try_from(r).map_err(|e| anyhow::anyhow!("{e:?}"))?;
                builder.add(w).map_err(|e| anyhow::anyhow!("apply: {e}"))?;
            }
        }
    }
    routes.install(builder, version);
    Ok(routes)
}
