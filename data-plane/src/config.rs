//! Typed configuration, parsed once at start-up from flags and environment variables.

use std::net::SocketAddr;

/// Settings of the data plane.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Public listener (`/webhooks/incoming/**`).
    #[arg(long, env = "DP_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Admin listener (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "DP_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    pub admin_listen: SocketAddr,
}
