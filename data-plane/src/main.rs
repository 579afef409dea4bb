use std::io::IsTerminal;

use clap::{CommandFactory, Parser};
use gateway_shared::deploy_facts::{self, Listener};
use tokio_util::sync::CancellationToken;

// The request path allocates per request (JSON payload, envelope, headers); mimalloc's thread-local
// free lists cost a fraction of glibc malloc's (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "data-plane", version, about = "Webhook gateway data plane")]
struct Cli {
    #[command(flatten)]
    config: data_plane::Config,
}

/// The listeners, for `--print-config-schema` (deploy/README.md).
const LISTENERS: &[Listener] = &[
    Listener {
        env: "DP_LISTEN",
        protocol: "http",
        paths: &[],
        grpc_health: false,
    },
    Listener {
        env: "DP_ADMIN_LISTEN",
        protocol: "http",
        paths: data_plane::ADMIN_PATHS,
        grpc_health: false,
    },
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some(deploy_facts::FLAG) {
        let facts = deploy_facts::describe(&Cli::command(), LISTENERS, &["RUST_LOG"]);
        println!("{facts:#}");
        return Ok(());
    }
    let config = Cli::parse().config;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Log lines are written by a background thread: a request never waits on stdout (a slow log
    // collector must not stall the gateway). If the collector cannot keep up and the buffer of
    // 128k lines fills, lines are dropped, not requests; the guard flushes the rest at exit.
    // Buffered: the writer thread flushes whenever it has drained what is queued, so a burst of
    // lines becomes one write(2) instead of one per line.
    let (writer, _flush_at_exit) = tracing_appender::non_blocking(
        std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
    );
    if config.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_writer(writer)
            .with_env_filter(filter)
            .init();
    } else {
        // Colour codes only for a terminal: in a log file or a container's captured stdout they are
        // noise, and cost formatting work on every request line.
        tracing_subscriber::fmt()
            .with_ansi(std::io::stdout().is_terminal())
            .with_writer(writer)
            .with_env_filter(filter)
            .init();
    }
    let listeners = data_plane::Listeners {
        public: tokio::net::TcpListener::bind(config.listen).await?,
        admin: tokio::net::TcpListener::bind(config.admin_listen).await?,
    };
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        token.cancel();
    });
    data_plane::run(config, listeners, shutdown).await
}
