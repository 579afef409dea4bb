use clap::{CommandFactory, Parser, Subcommand};
use gateway_shared::deploy_facts::{self, Listener};
use tokio_util::sync::CancellationToken;

// The full config read at start allocates a few times per webhook on the runtime and frees on the
// blocking threads that build it; mimalloc's thread-local free lists cost a fraction of glibc
// malloc's there (docs/benchmarks.md, "Snapshot build").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "control-plane",
    version,
    about = "Webhook gateway control plane"
)]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, env = "CP_LOG_JSON", global = true, default_value_t = false)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up; the size of the `serve` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve the gRPC API.
    Serve(control_plane::Config),
    /// Apply pending database migrations and exit.
    Migrate {
        /// Postgres connection URL.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// Create an API token for an organization and print it once (the first ADMIN token).
    BootstrapToken {
        /// Postgres connection URL.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// Organization the token is scoped to.
        #[arg(long)]
        organization_id: uuid::Uuid,
        /// Optional workspace scope.
        #[arg(long)]
        workspace_id: Option<uuid::Uuid>,
        /// Role: ADMIN, EDITOR, VIEWER or DATA_PLANE.
        #[arg(long, default_value = "ADMIN")]
        role: String,
        /// A label for the token.
        #[arg(long, default_value = "bootstrap")]
        name: String,
    },
    /// Re-encrypt every stored secret under the keyring's primary key, then exit.
    RotateKeys {
        /// Postgres connection URL.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        #[command(flatten)]
        keys: control_plane::config::KeyringArgs,
    },
}

/// The listeners of `serve`, for `--print-config-schema` (deploy/README.md).
const LISTENERS: &[Listener] = &[
    Listener {
        env: "CP_LISTEN",
        protocol: "grpc",
        paths: &[],
        grpc_health: true,
    },
    Listener {
        env: "CP_METRICS_LISTEN",
        protocol: "http",
        paths: control_plane::ADMIN_PATHS,
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
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if cli.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    match cli.command {
        Command::Serve(config) => {
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            let shutdown = CancellationToken::new();
            tokio::spawn(shutdown_on_signal(shutdown.clone()));
            control_plane::run(config, listener, shutdown).await
        }
        Command::Migrate { database_url } => {
            let applied = control_plane::db::migrate(&database_url).await?;
            tracing::info!(applied = ?applied, "migrations applied");
            Ok(())
        }
        Command::BootstrapToken {
            database_url,
            organization_id,
            workspace_id,
            role,
            name,
        } => {
            let role = control_plane::auth::Role::from_name(&role).ok_or_else(|| {
                anyhow::anyhow!("role must be ADMIN, EDITOR, VIEWER or DATA_PLANE")
            })?;
            let (token, row) = control_plane::auth::tokens::issue(
                &database_url,
                organization_id.into(),
                workspace_id.map(Into::into),
                role,
                &name,
            )
            .await?;
            tracing::info!(token_id = %row.id, role = role.as_str(), "api token created");
            // The only place a token is ever printed: stdout, once, for the operator to store.
            println!("{}", token.expose());
            Ok(())
        }
        Command::RotateKeys { database_url, keys } => {
            let keyring = keys.load()?;
            use diesel_async::AsyncConnection;
            let mut conn = diesel_async::AsyncPgConnection::establish(&database_url).await?;
            let report = control_plane::keys::rotate(&mut conn, &keyring).await?;
            tracing::info!(
                primary = keyring.primary_id(),
                resealed = report.resealed,
                unchanged = report.unchanged,
                "keys rotated"
            );
            Ok(())
        }
    }
}

async fn shutdown_on_signal(token: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutdown requested");
    token.cancel();
}
