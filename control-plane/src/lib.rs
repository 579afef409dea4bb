//! The control plane: a tonic gRPC service over Postgres. `main` parses [`Config`] and calls [`run`];
//! tests call the same `run` with a listener bound to port 0.
//!
//! The public surface is what the binary, the tests, `e2e/` and `bench/` use: [`Config`] and its
//! settings, [`run`], the database commands ([`db::migrate`], [`keys::rotate`],
//! [`auth::tokens::issue`]), the read side data planes are served from ([`snapshot`],
//! [`revision::current`], [`seal_resolved_signing_secret`] for tools that write rows with SQL), the stable error [`reasons`] and the admin listener's paths ([`ADMIN_PATHS`]).
//! Everything else is crate-private; the
//! layout is described in docs/control-plane.md, "Code layout".

mod access_log;
pub mod actions;
mod api;
mod apps;
pub mod auth;
pub mod config;
mod config_params;
mod console;
pub mod db;
pub mod distribution;
mod error;
pub mod failed_triggers;
pub mod keys;
mod metrics;
pub mod reasons;
pub mod revision;
mod schema;
mod scope;
mod server;
pub mod snapshot;
mod triggers;
mod webhooks;

pub use config::Config;
pub use console::CONTENT_SECURITY_POLICY;
pub use error::ERROR_DOMAIN;
pub use metrics::PATHS as ADMIN_PATHS;
pub use server::run;
pub use webhooks::secrets::seal_resolved_signing_secret;
