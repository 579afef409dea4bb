//! The data plane: a stateless hyper gateway. `main` parses [`Config`] and calls [`run`]; tests call
//! the same `run` with listeners bound to port 0.

pub mod admin;
pub mod config;

pub use config::Config;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Listeners the data plane serves on.
pub struct Listeners {
    /// Public listener: `/webhooks/incoming/**`.
    pub public: TcpListener,
    /// Admin listener: `/healthz`, `/readyz`, `/metrics`.
    pub admin: TcpListener,
}

/// Serves until `shutdown` is cancelled.
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let _ = config;
    let state = Arc::new(admin::AdminState::default());
    tracing::info!(admin = %listeners.admin.local_addr()?, public = %listeners.public.local_addr()?, "data plane listening");
    admin::serve(listeners.admin, state, shutdown).await
}
