//! The one error table of the API: every failure maps to a gRPC code and a stable reason, sent as a
//! `google.rpc.ErrorInfo` in the status details. Internal errors reach the caller as a generic
//! INTERNAL; their detail goes to the log only.

use std::collections::HashMap;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use crate::reasons;

/// The `domain` of every ErrorInfo this service sends.
pub const ERROR_DOMAIN: &str = "webhook-gateway.control-plane";

/// Unique constraints whose violation the API reports as a specific error (see `migrations/`).
pub mod constraints {
    /// Webhook name already used in the app.
    pub const WEBHOOK_APP_NAME: &str = "webhooks_app_name_key";
    /// The same node bound twice to the same webhook in one commit.
    pub const BINDING_NODE: &str = "trigger_bindings_node_key";
}

/// Everything an RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No usable credentials.
    #[error("{message}")]
    Unauthenticated {
        reason: &'static str,
        message: &'static str,
    },
    /// The caller's role does not allow this.
    #[error("role {role} may not {action}")]
    RoleForbidden {
        role: &'static str,
        action: &'static str,
    },
    /// The object is outside the caller's organization or workspace.
    #[error("the token's scope does not include this {what}")]
    ScopeForbidden { what: &'static str },
    /// A request field is malformed.
    #[error("{message}")]
    Invalid {
        reason: &'static str,
        field: &'static str,
        message: String,
    },
    /// An object does not exist (or is outside the caller's scope).
    #[error("{what} not found")]
    NotFound {
        reason: &'static str,
        what: &'static str,
    },
    /// A webhook name is already used in the app.
    #[error("a webhook named `{0}` already exists in this app")]
    WebhookNameTaken(String),
    /// The request conflicts with the object's state.
    #[error("{message}")]
    Precondition {
        reason: &'static str,
        message: String,
        metadata: Vec<(&'static str, String)>,
    },
    /// The Kafka broker did not acknowledge an event (a replay) in time.
    #[error("the broker did not acknowledge the event; nothing was changed, try again")]
    BrokerUnavailable(#[source] anyhow::Error),
    /// Postgres is unreachable or the pool is exhausted.
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// A bug or an unexpected failure; the detail is logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A malformed request field.
    pub fn invalid(reason: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            reason,
            field,
            message: message.into(),
        }
    }

    /// A state conflict without extra metadata.
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Precondition {
            reason,
            message: message.into(),
            metadata: Vec::new(),
        }
    }

    /// The webhook does not exist in the caller's scope.
    pub fn webhook_not_found() -> Self {
        Self::NotFound {
            reason: reasons::WEBHOOK_NOT_FOUND,
            what: "webhook",
        }
    }

    /// An unexpected failure with context for the log.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("{context}: {error}"))
    }

    /// The gRPC code and the stable reason of this error.
    pub fn code_and_reason(&self) -> (Code, &'static str) {
        match self {
            Self::Unauthenticated { reason, .. } => (Code::Unauthenticated, reason),
            Self::RoleForbidden { .. } => (Code::PermissionDenied, reasons::ROLE_FORBIDDEN),
            Self::ScopeForbidden { .. } => (Code::PermissionDenied, reasons::SCOPE_FORBIDDEN),
            Self::Invalid { reason, .. } => (Code::InvalidArgument, reason),
            Self::NotFound { reason, .. } => (Code::NotFound, reason),
            Self::WebhookNameTaken(_) => (Code::AlreadyExists, reasons::WEBHOOK_NAME_TAKEN),
            Self::Precondition { reason, .. } => (Code::FailedPrecondition, reason),
            Self::BrokerUnavailable(_) => (Code::Unavailable, reasons::BROKER_UNAVAILABLE),
            Self::Unavailable(_) => (Code::Unavailable, reasons::DATABASE_UNAVAILABLE),
            Self::Internal(_) => (Code::Internal, reasons::INTERNAL),
        }
    }

    fn metadata(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        match self {
            Self::Invalid { field, .. } => {
                m.insert("field".into(), (*field).into());
            }
            Self::RoleForbidden { role, .. } => {
                m.insert("role".into(), (*role).into());
            }
            Self::WebhookNameTaken(name) => {
                m.insert("name".into(), name.clone());
            }
            Self::Precondition { metadata, .. } => {
                for (k, v) in metadata {
                    m.insert((*k).into(), v.clone());
                }
            }
            _ => {}
        }
        m
    }
}

impl From<ApiError> for tonic::Status {
    fn from(err: ApiError) -> Self {
        let (code, reason) = err.code_and_reason();
        let message = match &err {
            ApiError::Internal(source) => {
                tracing::error!(error = format!("{source:#}"), "internal error");
                "internal error".to_owned()
            }
            ApiError::Unavailable(source) => {
                tracing::warn!(error = format!("{source:#}"), "database unavailable");
                err.to_string()
            }
            ApiError::BrokerUnavailable(source) => {
                tracing::warn!(error = format!("{source:#}"), "broker unavailable");
                err.to_string()
            }
            _ => err.to_string(),
        };
        let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, err.metadata());
        tonic::Status::with_error_details(code, message, details)
    }
}

impl From<DieselError> for ApiError {
    /// Postgres errors by class (diesel maps SQLSTATE 23505 to UniqueViolation, 23503 to
    /// ForeignKeyViolation, 40001 to SerializationFailure, …). Unique violations the API expects are
    /// mapped where they can happen (see [`constraints`]); anything reaching here is internal.
    fn from(err: DieselError) -> Self {
        match &err {
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
                ApiError::Unavailable(err.into())
            }
            DieselError::DatabaseError(kind, info) => ApiError::Internal(anyhow::anyhow!(
                "database error {kind:?} (constraint {:?}): {}",
                info.constraint_name(),
                info.message()
            )),
            _ => ApiError::Internal(err.into()),
        }
    }
}

/// Whether `err` is a unique violation of the named constraint.
pub fn is_unique_violation(err: &DieselError, constraint: &str) -> bool {
    matches!(err, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
        if info.constraint_name() == Some(constraint))
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ApiError {
    fn from(err: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        ApiError::Unavailable(anyhow::anyhow!("connection pool: {err}"))
    }
}

impl From<gateway_shared::crypto::CryptoError> for ApiError {
    fn from(err: gateway_shared::crypto::CryptoError) -> Self {
        ApiError::Internal(anyhow::anyhow!("encryption at rest: {err}"))
    }
}

/// Result of an RPC body.
pub type ApiResult<T> = Result<T, ApiError>;
