//! Outbound calls to action servers (docs/actions.md): destination safety and the HTTP client both the
//! control plane (registration test requests) and the dispatcher use.

pub mod answer;
pub mod client;
pub mod destination;

pub use answer::Answer;
pub use client::{ActionClient, CallError, CallResponse};
pub use destination::{DestinationError, DestinationPolicy};
