//! Integration tests of the control plane: the real `run` on port 0, real Postgres.

mod foundation;
mod support;
