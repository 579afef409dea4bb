//! The control plane: a tonic gRPC service over Postgres. `main` parses [`Config`] and calls [`run`];
//! tests call the same `run` with a listener bound to port 0.

pub mod config;
pub mod db;
pub mod server;

pub use config::Config;
pub use server::run;
