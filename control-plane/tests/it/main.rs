//! Integration tests of the control plane: the real `run` on port 0, real Postgres.

mod access_log;
mod actions;
mod apps;
mod auth;
mod compression;
mod console;
mod failed_triggers;
mod foundation;
mod oidc;
mod params;
mod pg_tls;
mod presence;
mod rate_limits;
mod signals;
mod snapshot;
mod streams;
mod support;
mod triggers;
mod webhooks;
