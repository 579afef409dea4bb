//! What the control plane and the data plane share: typed ids, provider and trigger enums, the
//! config-snapshot model the control plane streams to data planes, the correlation-key-path parser,
//! and the redacting `Secret` wrapper.

pub mod action_signing;
pub mod backoff;
pub mod canonical_json;
pub mod correlation;
pub mod crypto;
pub mod deploy_facts;
pub mod envelope;
pub mod ids;
pub mod model;
pub mod redact;
pub mod request_id;
pub mod secret;
pub mod settings;
pub mod snapshot;

pub use correlation::{CorrelationPath, PathError, ResolveError};
pub use ids::{AppId, OrganizationId, WebhookId, WorkspaceId};
pub use model::{Provider, TriggerState, TriggerType};
pub use secret::Secret;
