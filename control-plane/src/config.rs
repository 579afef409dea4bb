//! Typed configuration, parsed once at start-up from flags and environment variables.

use std::net::SocketAddr;

/// Settings of `control-plane serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "CP_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Postgres connection URL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,

    /// Apply pending migrations before serving.
    #[arg(long, env = "CP_MIGRATE_ON_START", default_value_t = false)]
    pub migrate_on_start: bool,

    /// Maximum Postgres connections in the pool.
    #[arg(long, env = "CP_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,
}
