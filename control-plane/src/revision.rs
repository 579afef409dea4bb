//! The global config revision and the change log that config distribution streams from.
//!
//! Every write that changes what data planes serve calls [`record_change`] inside its transaction:
//! it bumps the single `config_revision` row (whose row lock also orders concurrent writers, so
//! revisions commit in increasing order), writes one `config_changes` row per object touched (a
//! webhook, an action, an HMAC key or a revoked API token: the [`Resource`] of its [`ChangeKind`]), and sends
//! `NOTIFY config_revision, '<revision>'` (delivered at commit) for replicas that listen.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::{config_changes, config_revision};

/// The Postgres notification channel that carries each committed revision.
pub(crate) const NOTIFY_CHANNEL: &str = "config_revision";

/// What kind of object a change-log row names; stored in `config_changes.resource`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// A webhook (ingest planes).
    Webhook,
    /// An action (dispatch planes).
    Action,
    /// An HMAC key (dispatch planes).
    HmacKey,
    /// An API token (revoked: streams opened with it end).
    ApiToken,
}

impl Resource {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Webhook => "webhook",
            Resource::Action => "action",
            Resource::HmacKey => "hmac_key",
            Resource::ApiToken => "api_token",
        }
    }

    /// The resource of a stored text.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "webhook" => Some(Resource::Webhook),
            "action" => Some(Resource::Action),
            "hmac_key" => Some(Resource::HmacKey),
            "api_token" => Some(Resource::ApiToken),
            _ => None,
        }
    }
}

/// Why an object's config changed; stored in `config_changes.kind`. Consumers treat every kind of
/// one resource the same way: re-read the object; if it is gone (or, for a webhook, not ACTIVE; for
/// an HMAC key, revoked), data planes must drop it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// Created.
    Created,
    /// Name, description, correlation path or options changed.
    Updated,
    /// Deleted.
    Deleted,
    /// Provider secret set or rotated.
    SecretSet,
    /// A referenced config param changed and the secret was re-resolved.
    SecretResolved,
    /// API key reset.
    ApiKeyReset,
    /// Bindings committed.
    BindingsCommitted,
    /// Trigger activated.
    Activated,
    /// Trigger deactivated.
    Deactivated,
    /// Action registered.
    ActionRegistered,
    /// Action description, URL or schema changed.
    ActionUpdated,
    /// Action deleted.
    ActionDeleted,
    /// HMAC key created.
    HmacKeyCreated,
    /// HMAC key revoked.
    HmacKeyRevoked,
    /// API token revoked.
    ApiTokenRevoked,
}

impl ChangeKind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Deleted => "deleted",
            ChangeKind::SecretSet => "secret_set",
            ChangeKind::SecretResolved => "secret_resolved",
            ChangeKind::ApiKeyReset => "api_key_reset",
            ChangeKind::BindingsCommitted => "bindings_committed",
            ChangeKind::Activated => "activated",
            ChangeKind::Deactivated => "deactivated",
            ChangeKind::ActionRegistered => "action_registered",
            ChangeKind::ActionUpdated => "action_updated",
            ChangeKind::ActionDeleted => "action_deleted",
            ChangeKind::HmacKeyCreated => "hmac_key_created",
            ChangeKind::HmacKeyRevoked => "hmac_key_revoked",
            ChangeKind::ApiTokenRevoked => "api_token_revoked",
        }
    }

    /// The kind of object this change is about.
    pub fn resource(self) -> Resource {
        match self {
            ChangeKind::ActionRegistered
            | ChangeKind::ActionUpdated
            | ChangeKind::ActionDeleted => Resource::Action,
            ChangeKind::HmacKeyCreated | ChangeKind::HmacKeyRevoked => Resource::HmacKey,
            ChangeKind::ApiTokenRevoked => Resource::ApiToken,
            ChangeKind::Created
            | ChangeKind::Updated
            | ChangeKind::Deleted
            | ChangeKind::SecretSet
            | ChangeKind::SecretResolved
            | ChangeKind::ApiKeyReset
            | ChangeKind::BindingsCommitted
            | ChangeKind::Activated
            | ChangeKind::Deactivated => Resource::Webhook,
        }
    }
}

/// Bumps the global revision and logs `kind` for each object in `ids` (webhooks, actions or HMAC
/// keys, as `kind` says; duplicates are logged once). Must run inside the transaction that makes the
/// change. Returns the new revision; with no ids it does nothing and returns `None`.
pub(crate) async fn record_change(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
    kind: ChangeKind,
) -> QueryResult<Option<i64>> {
    let mut ids: Vec<Uuid> = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(None);
    }
    let revision: i64 = diesel::update(config_revision::table)
        .set(config_revision::revision.eq(config_revision::revision + 1))
        .returning(config_revision::revision)
        .get_result(conn)
        .await?;
    let rows: Vec<_> = ids
        .iter()
        .map(|id| {
            (
                config_changes::revision.eq(revision),
                config_changes::resource.eq(kind.resource().as_str()),
                config_changes::resource_id.eq(*id),
                config_changes::kind.eq(kind.as_str()),
            )
        })
        .collect();
    diesel::insert_into(config_changes::table)
        .values(rows)
        .execute(conn)
        .await?;
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<diesel::sql_types::Text, _>(NOTIFY_CHANNEL)
        .bind::<diesel::sql_types::Text, _>(revision.to_string())
        .execute(conn)
        .await?;
    Ok(Some(revision))
}

/// The current global revision.
pub async fn current(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    config_revision::table
        .select(config_revision::revision)
        .first(conn)
        .await
}
