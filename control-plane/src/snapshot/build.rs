//! One webhook's data-plane view, built from the columns a snapshot reads.

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::sql_types::{Binary, Text};
use uuid::Uuid;

use gateway_shared::crypto::Keyring;
use gateway_shared::snapshot::{
    ApiKeyHash, ProviderSecrets, SigningSecret, TriggerBinding, WebhookConfig, WebhookOptions,
};
use gateway_shared::{
    AppId, OrganizationId, Provider, Secret, TriggerType, WebhookId, WorkspaceId,
};

use crate::error::{ApiError, ApiResult};
use crate::schema::{trigger_bindings, webhooks};
use crate::webhooks::rate_limit;
use crate::webhooks::secrets::{columns, SecretValue};

/// The columns of `webhooks` a data plane's view needs; snapshots read no others.
#[derive(Queryable, Selectable)]
#[diesel(table_name = webhooks)]
pub(crate) struct SnapshotRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub workspace_id: Uuid,
    pub app_id: Uuid,
    pub provider: StoredProvider,
    pub correlation_key_path: Option<String>,
    pub include_raw_body: bool,
    pub api_key_sha256: StoredHash,
    pub previous_api_key_sha256: Option<Vec<u8>>,
    pub previous_api_key_not_after: Option<chrono::DateTime<chrono::Utc>>,
    pub secret_resolved_ciphertext: Option<Vec<u8>>,
    pub previous_secret_resolved_ciphertext: Option<Vec<u8>>,
    pub previous_secret_not_after: Option<chrono::DateTime<chrono::Utc>>,
    pub replay_window_seconds: i32,
    pub rate_limit_per_second: Option<f64>,
    pub rate_limit_burst: Option<i32>,
}

/// The columns of `trigger_bindings` a data plane's view needs.
#[derive(Queryable, Selectable)]
#[diesel(table_name = trigger_bindings)]
pub(crate) struct SnapshotBinding {
    pub webhook_id: Uuid,
    pub process_definition_id: String,
    pub node_id: String,
    pub trigger_type: StoredTriggerType,
    pub process_correlation_key: Option<String>,
    pub process_key: Option<String>,
}

// A full read decodes these once per row: parsed from the column's bytes, with no `String` or `Vec`
// in between. An unknown or malformed stored value fails the read, as it failed the build before.

/// A stored provider name.
#[derive(FromSqlRow)]
pub(crate) struct StoredProvider(pub Provider);

impl FromSql<Text, Pg> for StoredProvider {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        let name = std::str::from_utf8(value.as_bytes())?;
        Provider::from_name(name)
            .map(Self)
            .ok_or_else(|| format!("stored provider {name:?} is unknown").into())
    }
}

/// A stored trigger type.
#[derive(FromSqlRow)]
pub(crate) struct StoredTriggerType(pub TriggerType);

impl FromSql<Text, Pg> for StoredTriggerType {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        let name = std::str::from_utf8(value.as_bytes())?;
        TriggerType::from_name(name)
            .map(Self)
            .ok_or_else(|| format!("stored trigger type {name:?} is unknown").into())
    }
}

/// A stored SHA-256 (of an API key).
#[derive(FromSqlRow)]
pub(crate) struct StoredHash(pub [u8; 32]);

impl FromSql<Binary, Pg> for StoredHash {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        value
            .as_bytes()
            .try_into()
            .map(Self)
            .map_err(|_| "stored api key hash is not 32 bytes".into())
    }
}

fn hash32(bytes: &[u8]) -> ApiResult<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| ApiError::internal("stored api key hash", "not 32 bytes"))
}

/// The data-plane view of one stored webhook, whatever its state. Bindings come out ordered by
/// process definition, then node (bytewise, whichever order they were read in).
pub(crate) fn build(
    keyring: &Keyring,
    row: SnapshotRow,
    mut bindings: Vec<SnapshotBinding>,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<WebhookConfig> {
    let mut api_keys = vec![ApiKeyHash {
        sha256: row.api_key_sha256.0,
        not_after: None,
    }];
    if let (Some(prev), Some(until)) =
        (&row.previous_api_key_sha256, row.previous_api_key_not_after)
    {
        if until > now {
            api_keys.push(ApiKeyHash {
                sha256: hash32(prev)?,
                not_after: Some(until.timestamp()),
            });
        }
    }
    let mut secrets = ProviderSecrets::default();
    if let Some(sealed) = &row.secret_resolved_ciphertext {
        let current = SecretValue::open(keyring, sealed, row.id, columns::SECRET_RESOLVED)?;
        if let Some(s) = &current.signing_secret {
            secrets.signing.push(SigningSecret {
                value: Secret::new(s.clone()),
                not_after: None,
            });
        }
        secrets.verify_token = current.verify_token.clone().map(Secret::new);
    }
    if let (Some(sealed), Some(until)) = (
        &row.previous_secret_resolved_ciphertext,
        row.previous_secret_not_after,
    ) {
        if until > now {
            let previous = SecretValue::open(keyring, sealed, row.id, columns::PREVIOUS_SECRET)?;
            if let Some(s) = &previous.signing_secret {
                secrets.signing.push(SigningSecret {
                    value: Secret::new(s.clone()),
                    not_after: Some(until.timestamp()),
                });
            }
        }
    }
    bindings.sort_unstable_by(|a, b| {
        (&a.process_definition_id, &a.node_id).cmp(&(&b.process_definition_id, &b.node_id))
    });
    let rate_limit = rate_limit::Stored {
        per_second: row.rate_limit_per_second,
        burst: row.rate_limit_burst,
    }
    .effective();
    Ok(WebhookConfig {
        webhook_id: WebhookId(row.id),
        organization_id: OrganizationId(row.organization_id),
        workspace_id: WorkspaceId(row.workspace_id),
        app_id: AppId(row.app_id),
        provider: row.provider.0,
        api_keys,
        secrets,
        bindings: bindings
            .into_iter()
            .map(|b| TriggerBinding {
                trigger_type: b.trigger_type.0,
                process_definition_id: b.process_definition_id,
                node_id: b.node_id,
                process_correlation_key: b.process_correlation_key,
                process_key: b.process_key,
            })
            .collect(),
        correlation_key_path: row.correlation_key_path,
        options: WebhookOptions {
            include_raw_body: row.include_raw_body,
            replay_window_seconds: u32::try_from(row.replay_window_seconds).unwrap_or(0),
            rate_limit,
        },
    })
}
