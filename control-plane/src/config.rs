//! Typed configuration, parsed once at start-up from flags and environment variables. Secrets come
//! from an environment variable or a file (never the database), and every problem is reported at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gateway_shared::crypto::Keyring;
use gateway_shared::secret::value_or_file;
use gateway_shared::settings::{parse_duration, parse_legacy_secs, Renamed};
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

    /// How long shutdown waits for in-flight calls after SIGTERM before closing what is left.
    #[arg(long, env = "CP_SHUTDOWN_GRACE", default_value = "25s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Deprecated: `--shutdown-grace` in seconds.
    #[arg(long, env = "CP_SHUTDOWN_GRACE_SECS", hide = true, value_parser = parse_legacy_secs, conflicts_with = "shutdown_grace")]
    pub shutdown_grace_secs: Option<Duration>,

    /// Master keys for encryption at rest.
    #[command(flatten)]
    pub keys: KeyringArgs,

    /// Config distribution, TLS and the admin listener.
    #[command(flatten)]
    pub distribution: crate::distribution::DistributionArgs,

    /// Failed-trigger storage, retention and replay.
    #[command(flatten)]
    pub failed_triggers: crate::failed_triggers::FailedTriggerArgs,

    /// Tokens from an external OIDC issuer.
    #[command(flatten)]
    pub oidc: crate::auth::oidc::OidcArgs,

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

    /// Lifetime of the JWTs ExchangeToken issues (1s to 30d); a config stream ends when its JWT
    /// expires and the data plane exchanges its API token again.
    #[arg(long, env = "CP_JWT_TTL", default_value = "24h", value_parser = parse_duration)]
    pub jwt_ttl: Duration,

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

    /// Accept `http://` action URLs (local development only; docs/actions.md, "Destinations").
    #[arg(long, env = "CP_ACTIONS_ALLOW_HTTP", default_value_t = false)]
    pub actions_allow_http: bool,

    /// Comma-separated CIDRs action URLs may resolve to although they are private or loopback
    /// (e.g. `127.0.0.1/32`); empty = only public addresses.
    #[arg(long, env = "CP_ACTIONS_ALLOW_CIDRS", default_value = "")]
    pub actions_allow_cidrs: String,
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
    /// Where action URLs may point.
    pub action_policy: gateway_outbound::DestinationPolicy,
}

/// A secret setting from its value or its file; a problem is added to `problems`.
fn read_secret(
    value: &Option<Secret<String>>,
    file: &Option<PathBuf>,
    what: &str,
    problems: &mut Vec<String>,
) -> Option<Secret<String>> {
    value_or_file(value.as_ref(), file.as_deref(), what)
        .map_err(|problem| problems.push(problem))
        .ok()
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

const SHUTDOWN_GRACE: Renamed = Renamed {
    old_flag: "shutdown-grace-secs",
    old_env: "CP_SHUTDOWN_GRACE_SECS",
    new_flag: "shutdown-grace",
    new_env: "CP_SHUTDOWN_GRACE",
};

impl Config {
    /// The settings `control-plane serve --database-url <database_url>` has with no other flag and
    /// no environment: every default as documented, no secrets. Tests and tools start from it and
    /// set what they need.
    pub fn new(database_url: impl Into<String>) -> Config {
        use clap::{Args, FromArgMatches};
        let database_url: String = database_url.into();
        // The defaults come from the flag definitions themselves, read without the environment.
        let matches = Config::augment_args(clap::Command::new("control-plane"))
            .mut_args(|arg| arg.env(None::<&str>))
            .try_get_matches_from(["control-plane", "--database-url", database_url.as_str()]);
        matches
            .and_then(|m| Config::from_arg_matches(&m))
            .expect("the built-in defaults of every setting parse")
    }

    /// Moves values given under the names renamed in this release (`CP_SHUTDOWN_GRACE_SECS`,
    /// `CP_CONFIG_POLL_MS`, `CP_STREAM_HEARTBEAT_MS`) to their new settings, and returns one
    /// deprecation warning for each, to be logged at start-up.
    pub fn apply_renamed(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        SHUTDOWN_GRACE.apply(
            &mut self.shutdown_grace_secs,
            &mut self.shutdown_grace,
            &mut warnings,
        );
        self.distribution.apply_renamed(&mut warnings);
        warnings
    }

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
        if !(Duration::from_secs(1)..=Duration::from_secs(30 * 86_400)).contains(&self.jwt_ttl) {
            problems.push("JWT lifetime (CP_JWT_TTL) must be between 1s and 30d".into());
        }
        if self.db_pool_size == 0 {
            problems.push("database pool size must be at least 1".into());
        }
        self.failed_triggers.check(&mut problems);
        self.oidc.check(&mut problems);
        if let Some(dir) = &self.console_dir {
            crate::console::check_dir(dir, &mut problems);
        }
        let allow = gateway_outbound::DestinationPolicy::parse_allowlist(&self.actions_allow_cidrs)
            .unwrap_or_else(|e| {
                problems.push(format!("CP_ACTIONS_ALLOW_CIDRS: {e}"));
                Vec::new()
            });
        let action_policy =
            gateway_outbound::DestinationPolicy::new(self.actions_allow_http, allow);
        match (keyring, jwt_key, public_base_url) {
            (Some(keyring), Some(jwt_key), Some(public_base_url)) if problems.is_empty() => {
                Ok(Loaded {
                    keyring,
                    jwt_key,
                    public_base_url,
                    bootstrap,
                    action_policy,
                })
            }
            _ => Err(anyhow::anyhow!(
                "invalid configuration:\n  - {}",
                problems.join("\n  - ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        use clap::Parser;
        let argv = ["control-plane", "--database-url", "postgres://db/x"];
        Serve::try_parse_from(argv.iter().chain(args)).map(|s| s.config)
    }

    #[test]
    fn new_has_the_documented_defaults() {
        let c = Config::new("postgres://db/x");
        assert_eq!(c.database_url, "postgres://db/x");
        assert_eq!(c.listen, "127.0.0.1:50051".parse().expect("addr"));
        assert_eq!(c.db_pool_size, 16);
        assert_eq!(c.shutdown_grace, Duration::from_secs(25));
        assert_eq!(c.distribution.config_poll_interval, Duration::from_secs(1));
        assert_eq!(c.distribution.stream_heartbeat, Duration::from_secs(10));
        assert_eq!(c.distribution.snapshot_chunk, 1000);
        assert_eq!(
            c.failed_triggers.failed_trigger_max_age,
            Duration::from_secs(7 * 86_400)
        );
        assert!(c.jwt_signing_key.is_none() && c.keys.master_keys.is_none());
        assert!(!c.migrate_on_start);
        assert_eq!(c.jwt_ttl, Duration::from_secs(86_400));
    }

    #[test]
    fn durations_take_units_and_the_old_names_still_work_with_a_warning() {
        let mut c = parse(&[
            "--shutdown-grace",
            "3s",
            "--config-poll-interval",
            "250ms",
            "--stream-heartbeat",
            "2s",
        ])
        .expect("parses");
        assert!(c.apply_renamed().is_empty());
        assert_eq!(c.shutdown_grace, Duration::from_secs(3));
        assert_eq!(
            c.distribution.config_poll_interval,
            Duration::from_millis(250)
        );
        assert_eq!(c.distribution.stream_heartbeat, Duration::from_secs(2));

        let mut old = parse(&[
            "--shutdown-grace-secs",
            "20",
            "--config-poll-ms",
            "500",
            "--stream-heartbeat-ms",
            "60000",
        ])
        .expect("the old names parse");
        let warnings = old.apply_renamed();
        assert_eq!(old.shutdown_grace, Duration::from_secs(20));
        assert_eq!(
            old.distribution.config_poll_interval,
            Duration::from_millis(500)
        );
        assert_eq!(old.distribution.stream_heartbeat, Duration::from_secs(60));
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        for (old_env, new_env) in [
            ("CP_SHUTDOWN_GRACE_SECS", "CP_SHUTDOWN_GRACE"),
            ("CP_CONFIG_POLL_MS", "CP_CONFIG_POLL_INTERVAL"),
            ("CP_STREAM_HEARTBEAT_MS", "CP_STREAM_HEARTBEAT"),
        ] {
            assert!(
                warnings.iter().any(|w| w.contains(old_env)
                    && w.contains(new_env)
                    && w.contains("deprecated")),
                "{old_env}: {warnings:?}"
            );
        }
        assert!(
            parse(&["--config-poll-ms", "500", "--config-poll-interval", "1s"]).is_err(),
            "an old and a new name for one setting are refused"
        );
    }
}
