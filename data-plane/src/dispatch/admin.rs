//! What the dispatcher's admin listener (the data plane's, `crate::admin`) reports: `/healthz`,
//! `/readyz` (config loaded and the consumer in its group) and `/metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::actions::Actions;
use super::metrics::DispatchMetrics;
use crate::admin::Probe;
use crate::distribution::StreamStatus;

/// What the admin endpoints report.
pub struct AdminState {
    /// The config.
    pub actions: Actions,
    /// Set once the invocation consumer joined its group.
    pub joined: Arc<AtomicBool>,
    /// Set when shutdown begins.
    pub draining: AtomicBool,
    /// Metrics.
    pub metrics: Arc<DispatchMetrics>,
    /// The config stream.
    pub stream: Arc<StreamStatus>,
}

impl Probe for AdminState {
    fn live(&self) -> Result<(), String> {
        Ok(())
    }

    fn ready(&self) -> Result<(), String> {
        if self.draining.load(Ordering::Acquire) {
            return Err("shutting down".to_owned());
        }
        if !self.actions.is_ready() {
            return Err("no config snapshot loaded yet".to_owned());
        }
        if !self.joined.load(Ordering::Acquire) {
            return Err("the invocation consumer has not joined its group yet".to_owned());
        }
        Ok(())
    }

    fn metrics(&self) -> String {
        self.metrics.encode(
            &self.actions,
            self.stream.connected.load(Ordering::Acquire),
            self.joined.load(Ordering::Acquire),
        )
    }
}
