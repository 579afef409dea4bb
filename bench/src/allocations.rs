//! Heap allocations per request (docs/benchmarks.md, "Allocations"): each server of the HTTP suite —
//! bare hyper, the forwarder and the data plane, the library the `data-plane` binary runs — serves
//! in this process on a current-thread tokio runtime of its own thread, so every allocation of its
//! request path (hyper's included) happens on that thread, where [`counting_alloc::count`] counts
//! them. The load generator runs on other threads and is not counted. Neither are librdkafka's
//! threads nor rdkafka's delivery thread (the same for the forwarder and the data plane), nor the
//! data plane's log writer thread (its formatting happens on the request thread and is counted).
//!
//! The server first serves a warm-up load uncounted; then a second load runs while counting, and
//! the counts are divided by the requests it sent.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::counting_alloc::{self, Counts};
use crate::http_suite::{self, Server};
use crate::load::{self, Shape};
use crate::procs;
use crate::servers;

/// Flags of `allocations`.
#[derive(clap::Args, Clone)]
pub struct AllocArgs {
    /// Kafka bootstrap (tansu).
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: String,
    /// Connections of the load generator.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Counted seconds per scenario (after two uncounted seconds of warm-up).
    #[arg(long, default_value_t = 2)]
    pub duration_secs: u64,
    /// Producer `linger.ms` for the data plane and the forwarder.
    #[arg(long, env = "BENCH_LINGER_MS", default_value_t = 1)]
    pub linger_ms: u64,
    /// Directory for the snapshot file and the data plane's log.
    #[arg(long)]
    pub work_dir: PathBuf,
    /// Where the JSON results go.
    #[arg(long)]
    pub out: PathBuf,
}

/// One scenario's counts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AllocRow {
    /// Scenario name (as in the HTTP suite).
    pub name: String,
    /// What it measures.
    pub label: String,
    /// Requests sent in the counted window.
    pub requests: u64,
    /// Heap allocations per request on the server's thread.
    pub allocations_per_request: f64,
    /// Bytes those allocations asked for, per request.
    pub bytes_per_request: f64,
}

/// The data plane's flags, parsed as its binary parses them.
#[derive(Parser)]
struct DataPlaneFlags {
    #[command(flatten)]
    config: data_plane::Config,
}

/// `gateway-bench allocations`.
pub async fn run(args: AllocArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.work_dir)?;
    let (fixture, snapshot_file) = http_suite::fixture(&args.work_dir)?;
    // The data plane's log subscriber, as its binary installs it, writing to a file.
    let log = std::fs::File::create(args.work_dir.join("allocations-data-plane.log"))?;
    let _flush = data_plane::init_logging(false, log, false);
    let mut rows = Vec::new();
    for s in http_suite::scenarios() {
        // The diagnostic rows change only the environment, and 256 connections only the load.
        if !s.env.is_empty() || s.concurrency.is_some() {
            continue;
        }
        let port = procs::free_port()?;
        let topic = format!("alloc-{}-{}", s.name, uuid::Uuid::new_v4().simple());
        if s.server != Server::Hyper {
            procs::create_topic(&args.kafka_bootstrap, &topic, 1).await?;
        }
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let admin = procs::free_port()?;
        let server = match s.server {
            Server::Hyper => Serve::Hyper(servers::HyperArgs { listen }),
            Server::Forwarder => Serve::Forwarder(servers::ForwarderArgs {
                listen,
                kafka_bootstrap: args.kafka_bootstrap.clone(),
                topic,
                kafka_properties: vec![format!("linger.ms={}", args.linger_ms)],
            }),
            Server::DataPlane => {
                let flags = DataPlaneFlags::try_parse_from([
                    "data-plane".to_owned(),
                    format!("--listen={listen}"),
                    format!("--admin-listen=127.0.0.1:{admin}"),
                    format!("--kafka-bootstrap={}", args.kafka_bootstrap),
                    format!("--kafka-topic={topic}"),
                    format!("--snapshot-file={}", snapshot_file.display()),
                    format!("--kafka-linger={}ms", args.linger_ms),
                ])?;
                Serve::DataPlane(Box::new(flags.config))
            }
        };
        let (warmed_tx, warmed_rx) = oneshot::channel::<()>();
        let (counting_tx, counting_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let thread =
            std::thread::spawn(move || serve_counted(server, warmed_rx, counting_tx, done_rx));
        procs::wait_until(
            &format!("{} to listen", s.name),
            Duration::from_secs(30),
            || procs::port_open(port),
        )
        .await?;
        if s.server == Server::DataPlane {
            let ready = format!("http://127.0.0.1:{admin}/readyz");
            let client = reqwest::Client::new();
            procs::wait_for_200(
                "the data plane to be ready",
                Duration::from_secs(30),
                &client,
                &ready,
            )
            .await?;
        }
        let target = http_suite::target(&s, &fixture, port)?;
        let shape = |secs| Shape {
            concurrency: args.concurrency,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(secs),
        };
        let warm = load::run(&target, shape(2)).await?;
        anyhow::ensure!(
            warm.ok > 0,
            "{}: no request was answered {} during the warm-up (first: {:?})",
            s.name,
            s.expect_status,
            warm.first_unexpected
        );
        let _ = warmed_tx.send(());
        // The counted load starts only once the server thread counts.
        counting_rx.await.map_err(|_| {
            anyhow::anyhow!("{}: the server thread stopped before counting", s.name)
        })?;
        let counted = load::run(&target, shape(args.duration_secs)).await?;
        let _ = done_tx.send(());
        let counts = thread
            .join()
            .map_err(|_| anyhow::anyhow!("{}: the server thread panicked", s.name))??;
        let requests = counted.ok + counted.errors;
        anyhow::ensure!(
            counted.errors == 0,
            "{}: {} unexpected answers (first: {:?})",
            s.name,
            counted.errors,
            counted.first_unexpected
        );
        let per = |n: u64| n as f64 / requests.max(1) as f64;
        let row = AllocRow {
            name: s.name.into(),
            label: s.label.into(),
            requests,
            allocations_per_request: per(counts.allocations),
            bytes_per_request: per(counts.bytes),
        };
        eprintln!(
            "{}: {:.1} allocations, {:.0} B per request ({} requests)",
            row.name, row.allocations_per_request, row.bytes_per_request, row.requests
        );
        rows.push(row);
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&rows)?)?;
    Ok(())
}

/// The server a scenario runs in process.
enum Serve {
    Hyper(servers::HyperArgs),
    Forwarder(servers::ForwarderArgs),
    DataPlane(Box<data_plane::Config>),
}

/// Runs `server` on a current-thread runtime on this thread: uncounted until `warmed`, then
/// counted (saying so on `counting`) until `done`, then stops it.
fn serve_counted(
    server: Serve,
    warmed: oneshot::Receiver<()>,
    counting: oneshot::Sender<()>,
    done: oneshot::Receiver<()>,
) -> anyhow::Result<Counts> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stop = CancellationToken::new();
    let task = rt.block_on(async {
        anyhow::Ok(match server {
            Serve::Hyper(a) => tokio::spawn(servers::hyper_baseline(a)),
            Serve::Forwarder(a) => tokio::spawn(servers::forwarder(a)),
            Serve::DataPlane(config) => {
                let listeners = data_plane::Listeners {
                    public: tokio::net::TcpListener::bind(config.listen).await?,
                    admin: tokio::net::TcpListener::bind(config.admin_listen).await?,
                };
                let dp = data_plane::DataPlane::new(*config)?;
                tokio::spawn(dp.serve(listeners, stop.clone()))
            }
        })
    })?;
    // Warm-up: the server's tasks run while this thread waits, uncounted.
    let _ = rt.block_on(warmed);
    let (_, counts) = counting_alloc::count(|| {
        let _ = counting.send(());
        let _ = rt.block_on(done);
    });
    stop.cancel();
    task.abort();
    rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    });
    Ok(counts)
}
