use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "data-plane", version, about = "Webhook gateway data plane")]
struct Cli {
    #[command(flatten)]
    config: data_plane::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = Cli::parse().config;
    let listeners = data_plane::Listeners {
        public: tokio::net::TcpListener::bind(config.listen).await?,
        admin: tokio::net::TcpListener::bind(config.admin_listen).await?,
    };
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        token.cancel();
    });
    data_plane::run(config, listeners, shutdown).await
}
