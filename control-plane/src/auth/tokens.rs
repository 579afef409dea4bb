//! API tokens: random text shown once, stored as a SHA-256 hash.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use uuid::Uuid;

use gateway_shared::snapshot::sha256;
use gateway_shared::{OrganizationId, Secret, WorkspaceId};

use super::Role;
use crate::schema::api_tokens;

/// Prefix of every API token, so leaked tokens are recognisable by secret scanners.
pub(crate) const TOKEN_PREFIX: &str = "gwt_";

/// A fresh API token: the prefix and 32 CSPRNG bytes in base64url without padding.
pub(crate) fn generate() -> Secret<String> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(&mut *bytes);
    Secret::new(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(*bytes)))
}

/// A stored token row.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct TokenRow {
    /// Id.
    pub id: Uuid,
    /// Organization scope.
    pub organization_id: Uuid,
    /// Workspace scope.
    pub workspace_id: Option<Uuid>,
    /// Role name.
    pub role: String,
    /// Label.
    pub name: String,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Revoked.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Inserts a token with the hash of `token` and returns its row.
pub(crate) async fn insert(
    conn: &mut AsyncPgConnection,
    token: &Secret<String>,
    organization_id: OrganizationId,
    workspace_id: Option<WorkspaceId>,
    role: Role,
    name: &str,
) -> QueryResult<TokenRow> {
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(Uuid::now_v7()),
            api_tokens::organization_id.eq(organization_id.0),
            api_tokens::workspace_id.eq(workspace_id.map(|w| w.0)),
            api_tokens::role.eq(role.as_str()),
            api_tokens::name.eq(name),
            api_tokens::token_sha256.eq(sha256(token.expose().as_bytes()).to_vec()),
        ))
        .returning(TokenRow::as_returning())
        .get_result(conn)
        .await
}

/// Generates a token and stores it straight in the database at `database_url` (the
/// `bootstrap-token` command; tests that need a token of another organization). Returns the token
/// text, shown once, and its row.
pub async fn issue(
    database_url: &str,
    organization_id: OrganizationId,
    workspace_id: Option<WorkspaceId>,
    role: Role,
    name: &str,
) -> anyhow::Result<(Secret<String>, TokenRow)> {
    use diesel_async::AsyncConnection;
    let mut conn = AsyncPgConnection::establish(database_url).await?;
    let token = generate();
    let row = insert(&mut conn, &token, organization_id, workspace_id, role, name).await?;
    Ok((token, row))
}

/// Registers a configured bootstrap token unless its hash is already known (a revoked bootstrap
/// token stays revoked). Returns whether a row was inserted.
pub(crate) async fn ensure_bootstrap(
    conn: &mut AsyncPgConnection,
    token: &Secret<String>,
    organization_id: OrganizationId,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(Uuid::now_v7()),
            api_tokens::organization_id.eq(organization_id.0),
            api_tokens::role.eq(Role::Admin.as_str()),
            api_tokens::name.eq("bootstrap"),
            api_tokens::token_sha256.eq(sha256(token.expose().as_bytes()).to_vec()),
        ))
        .on_conflict(api_tokens::token_sha256)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

/// The valid (not revoked) token whose text is `token`.
pub(crate) async fn find_valid(
    conn: &mut AsyncPgConnection,
    token: &str,
) -> QueryResult<Option<TokenRow>> {
    api_tokens::table
        .filter(api_tokens::token_sha256.eq(sha256(token.as_bytes()).to_vec()))
        .filter(api_tokens::revoked_at.is_null())
        .select(TokenRow::as_select())
        .first(conn)
        .await
        .optional()
}
