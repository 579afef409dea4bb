//! The control plane: a tonic gRPC service over Postgres. `main` parses [`Config`] and calls [`run`];
//! tests call the same `run` with a listener bound to port 0.

pub mod access_log;
pub mod actions;
pub mod api;
pub mod auth;
pub mod config;
pub mod config_params;
pub mod db;
pub mod distribution;
pub mod error;
pub mod failed_triggers;
pub mod keys;
pub mod metrics;
pub mod revision;
pub mod schema;
pub mod server;
pub mod snapshot;
pub mod triggers;
pub mod webhooks;

pub use config::Config;
pub use server::run;
