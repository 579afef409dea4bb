//! What every service shares: the state it holds, the one way an RPC learns its caller, paging and
//! time fields.

pub(crate) mod page;

use std::future::Future;
use std::sync::Arc;

use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::AsyncPgConnection;
use tonic::{Request, Response, Status};

use gateway_shared::crypto::Keyring;

use crate::auth::{Authenticator, Caller};
use crate::db::DbPool;
use crate::error::{ApiError, ApiResult};
use crate::reasons;

pub(crate) use page::{invalid_token, Page};

/// What the services share.
#[derive(Clone)]
pub(crate) struct AppState {
    /// Postgres.
    pub pool: DbPool,
    /// Master keys for encryption at rest.
    pub keyring: Arc<Keyring>,
    /// Verifies callers and issues JWTs.
    pub auth: Authenticator,
    /// Public base URL of the data planes, without a trailing slash.
    pub public_base_url: String,
}

impl AppState {
    /// A pooled connection, or UNAVAILABLE.
    pub async fn conn(&self) -> ApiResult<Object<AsyncPgConnection>> {
        Ok(self.pool.get().await?)
    }
}

/// Serves one RPC: authenticates `request` (UNAUTHENTICATED without a valid bearer JWT), then hands
/// the caller and the message to `handle`, whose error becomes the status. Every authenticated RPC
/// goes through here, so a handler is one line and the work lives in a method that takes a
/// [`Caller`].
pub(crate) async fn serve<T, R, E, F>(
    auth: &Authenticator,
    request: Request<T>,
    handle: impl FnOnce(Caller, T) -> F,
) -> Result<Response<R>, Status>
where
    F: Future<Output = Result<R, E>>,
    Status: From<E>,
{
    let caller = auth.authenticate(request.metadata()).await?;
    Ok(Response::new(handle(caller, request.into_inner()).await?))
}

/// A protobuf timestamp.
pub(crate) fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// An optional protobuf timestamp request field (INVALID_ARGUMENT, reason TIME_INVALID, when out of
/// range).
pub(crate) fn time_field(
    t: Option<&prost_types::Timestamp>,
    field: &'static str,
) -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
    t.map(|t| {
        u32::try_from(t.nanos)
            .ok()
            .and_then(|n| chrono::DateTime::from_timestamp(t.seconds, n))
            .ok_or_else(|| {
                ApiError::invalid(
                    reasons::TIME_INVALID,
                    field,
                    format!("`{field}` is out of range"),
                )
            })
    })
    .transpose()
}

/// Validates a grace period in seconds (at most 7 days).
pub(crate) fn grace(seconds: u32, field: &'static str) -> ApiResult<Option<chrono::Duration>> {
    const MAX: u32 = 7 * 86_400;
    if seconds > MAX {
        return Err(ApiError::invalid(
            reasons::GRACE_PERIOD_INVALID,
            field,
            format!("`{field}` must be at most {MAX} seconds"),
        ));
    }
    Ok((seconds > 0).then(|| chrono::Duration::seconds(i64::from(seconds))))
}
