use std::io::IsTerminal;

use clap::{CommandFactory, Parser};
use gateway_shared::deploy_facts::{self, Listener};
use tokio_util::sync::CancellationToken;

// The request path allocates per request (JSON payload, envelope, headers); mimalloc's thread-local
// free lists cost a fraction of glibc malloc's (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "data-plane",
    version,
    about = "Webhook gateway data plane",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: `serve`.
    #[command(flatten)]
    config: data_plane::Config,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Receive incoming webhooks and publish them to Kafka (the default).
    Serve(data_plane::Config),
    /// Call action servers for invocation records and publish their results (docs/dispatcher.md).
    Dispatch(data_plane::dispatch::DispatchConfig),
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
    Listener {
        env: "DISPATCH_ADMIN_LISTEN",
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
    let cli = Cli::parse();
    let config = match cli.command {
        None => cli.config,
        Some(Command::Serve(config)) => config,
        Some(Command::Dispatch(config)) => {
            let _flush_at_exit = init_logging(config.log_json);
            let admin = tokio::net::TcpListener::bind(config.admin_listen).await?;
            return data_plane::dispatch::run(config, admin, shutdown_on_signal()).await;
        }
    };
    let _flush_at_exit = init_logging(config.log_json);
    let listeners = data_plane::Listeners {
        public: tokio::net::TcpListener::bind(config.listen).await?,
        admin: tokio::net::TcpListener::bind(config.admin_listen).await?,
    };
    data_plane::run(config, listeners, shutdown_on_signal()).await
}

/// Logging for either mode, to stdout; the guard flushes buffered lines at exit.
fn init_logging(json: bool) -> tracing_appender::non_blocking::WorkerGuard {
    data_plane::init_logging(json, std::io::stdout(), std::io::stdout().is_terminal())
}

/// A token cancelled on SIGTERM or Ctrl-C.
fn shutdown_on_signal() -> CancellationToken {
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
    shutdown
}
