//! Typed configuration, parsed once at start-up from flags and environment variables. Secrets come
//! from an environment variable or a file (never the database), and every problem is reported at once.

use std::net::SocketAddr;
use std::path::PathBuf;

use gateway_shared::crypto::Keyring;
use gateway_shared::{OrganizationId, Secret};

use crate::auth::jwt::{JwtKey, MIN_KEY_LEN};

/// Settings of `control-plane serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "CP_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Postgres connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Apply pending migrations before serving.
    #[arg(long, env = "CP_MIGRATE_ON_START", default_value_t = false)]
    pub migrate_on_start: bool,

    /// Maximum Postgres connections in the pool.
    #[arg(long, env = "CP_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// Seconds shutdown waits for in-flight calls after SIGTERM before closing what is left.
    #[arg(long, env = "CP_SHUTDOWN_GRACE_SECS", default_value_t = 25)]
    pub shutdown_grace_secs: u64,

    /// Master keys for encryption at rest.
    #[command(flatten)]
    pub keys: KeyringArgs,

    /// Config distribution, TLS and the admin listener.
    #[command(flatten)]
    pub distribution: crate::distribution::DistributionArgs,

    /// Failed-trigger storage, retention and replay.
    #[command(flatten)]
    pub failed_triggers: crate::failed_triggers::FailedTriggerArgs,

    /// Key that signs and verifies bearer JWTs (HS256), at least 32 bytes.
    #[arg(
        long,
        env = "CP_JWT_SIGNING_KEY",
        hide_env_values = true,
        conflicts_with = "jwt_signing_key_file"
    )]
    pub jwt_signing_key: Option<Secret<String>>,

    /// File holding the JWT signing key (surrounding white space is trimmed).
    #[arg(long, env = "CP_JWT_SIGNING_KEY_FILE")]
    pub jwt_signing_key_file: Option<PathBuf>,

    /// Public base URL of the data planes, used by GetWebhookUrl (e.g. https://hooks.example.com).
    #[arg(long, env = "CP_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,

    /// Optional bootstrap API token (at least 24 characters): registered at start-up as an ADMIN token
    /// of `--bootstrap-organization-id` unless already known. Revoke it once real tokens exist.
    #[arg(
        long,
        env = "CP_BOOTSTRAP_TOKEN",
        hide_env_values = true,
        requires = "bootstrap_organization_id"
    )]
    pub bootstrap_token: Option<Secret<String>>,

    /// Organization of the bootstrap token.
    #[arg(long, env = "CP_BOOTSTRAP_ORGANIZATION_ID")]
    pub bootstrap_organization_id: Option<uuid::Uuid>,

    /// Directory of the built web console (`console/dist`), served on the gRPC listener; unset = no console.
    #[arg(long, env = "CP_CONSOLE_DIR")]
    pub console_dir: Option<PathBuf>,
}

/// Where the master keyring comes from.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct KeyringArgs {
    /// Master keys: `id=base64(32 bytes)` entries separated by commas or new lines. New values are
    /// sealed with the primary key; the others only decrypt (keep them until `rotate-keys` has run).
    #[arg(
        long,
        env = "CP_MASTER_KEYS",
        hide_env_values = true,
        conflicts_with = "master_keys_file"
    )]
    pub master_keys: Option<Secret<String>>,

    /// File holding the master keys in the same format (one entry a line; `#` comments).
    #[arg(long, env = "CP_MASTER_KEYS_FILE")]
    pub master_keys_file: Option<PathBuf>,

    /// Id of the key that seals new values; default: the last key listed.
    #[arg(long, env = "CP_MASTER_KEY_PRIMARY")]
    pub master_key_primary: Option<String>,
}

/// Secrets and settings checked and loaded from [`Config`].
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Master keyring.
    pub keyring: Keyring,
    /// JWT key.
    pub jwt_key: JwtKey,
    /// Public base URL without a trailing slash.
    pub public_base_url: String,
    /// Bootstrap token and its organization.
    pub bootstrap: Option<(Secret<String>, OrganizationId)>,
}

fn read_secret(
    value: &Option<Secret<String>>,
    file: &Option<PathBuf>,
    what: &str,
    problems: &mut Vec<String>,
) -> Option<Secret<String>> {
    match (value, file) {
        (Some(v), _) => Some(v.clone()),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => Some(Secret::new(text.trim().to_owned())),
            Err(e) => {
                problems.push(format!("cannot read {what} file {}: {e}", path.display()));
                None
            }
        },
        (None, None) => {
            problems.push(format!("{what} is not configured"));
            None
        }
    }
}

impl KeyringArgs {
    /// Loads the keyring, adding any problem to `problems`.
    pub fn load_into(&self, problems: &mut Vec<String>) -> Option<Keyring> {
        let text = read_secret(
            &self.master_keys,
            &self.master_keys_file,
            "master keyring (CP_MASTER_KEYS or CP_MASTER_KEYS_FILE)",
            problems,
        )?;
        match Keyring::parse(text.expose(), self.master_key_primary.as_deref()) {
            Ok(k) => Some(k),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        }
    }

    /// Loads the keyring alone (for `rotate-keys`).
    pub fn load(&self) -> anyhow::Result<Keyring> {
        let mut problems = Vec::new();
        self.load_into(&mut problems).ok_or_else(|| {
            anyhow::anyhow!("invalid configuration:\n  - {}", problems.join("\n  - "))
        })
    }
}

impl Config {
    /// Checks every setting and loads the secrets; all problems are reported together.
    pub fn load(&self) -> anyhow::Result<Loaded> {
        let mut problems = Vec::new();
        let keyring = self.keys.load_into(&mut problems);
        let jwt_key = read_secret(
            &self.jwt_signing_key,
            &self.jwt_signing_key_file,
            "JWT signing key (CP_JWT_SIGNING_KEY or CP_JWT_SIGNING_KEY_FILE)",
            &mut problems,
        )
        .and_then(|k| {
            let key = JwtKey::new(k.expose().as_bytes().to_vec());
            if key.is_none() {
                problems.push(format!(
                    "JWT signing key must be at least {MIN_KEY_LEN} bytes"
                ));
            }
            key
        });
        let public_base_url = match &self.public_base_url {
            Some(u)
                if (u.starts_with("https://") || u.starts_with("http://"))
                    && !u.contains(['?', '#', ' ']) =>
            {
                Some(u.trim_end_matches('/').to_owned())
            }
            Some(_) => {
                problems.push(
                    "public base URL must be an http(s) URL without query or fragment".into(),
                );
                None
            }
            None => {
                problems.push("public base URL (CP_PUBLIC_BASE_URL) is not configured".into());
                None
            }
        };
        let bootstrap = match (&self.bootstrap_token, self.bootstrap_organization_id) {
            (Some(t), Some(org)) if t.expose().len() >= 24 => {
                Some((t.clone(), OrganizationId(org)))
            }
            (Some(_), Some(_)) => {
                problems.push("bootstrap token must be at least 24 characters".into());
                None
            }
            (Some(_), None) => {
                problems.push("bootstrap token needs CP_BOOTSTRAP_ORGANIZATION_ID".into());
                None
            }
            (None, _) => None,
        };
        if self.db_pool_size == 0 {
            problems.push("database pool size must be at least 1".into());
        }
        self.failed_triggers.check(&mut problems);
        if let Some(dir) = &self.console_dir {
            crate::console::check_dir(dir, &mut problems);
        }
        match (keyring, jwt_key, public_base_url) {
            (Some(keyring), Some(jwt_key), Some(public_base_url)) if problems.is_empty() => {
                Ok(Loaded {
                    keyring,
                    jwt_key,
                    public_base_url,
                    bootstrap,
                })
            }
            _ => Err(anyhow::anyhow!(
                "invalid configuration:\n  - {}",
                problems.join("\n  - ")
            )),
        }
    }
}
