//! Tokens from the platform's identity provider (docs/control-plane.md, "OIDC tokens"): JWTs from
//! one external issuer (Keycloak or any OIDC provider), verified against its public keys (a JWKS
//! file or URL) with RS256 or ES256, their organization, workspace and role read from configured
//! claims.
//!
//! Only the algorithms a key's type allows are accepted (an RSA key verifies RS256 only, a P-256
//! key ES256 only, symmetric keys never), so a token cannot choose how it is checked. A token whose
//! `kid` is not in the key set makes a URL-backed set be fetched again, at most once per
//! [`REFETCH_AFTER`], so a rotated key is picked up without a restart and unknown ids cannot be used
//! to flood the issuer.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::RwLock;
use uuid::Uuid;

use gateway_shared::settings::parse_duration;
use gateway_shared::{OrganizationId, WorkspaceId};

use super::Role;

/// A key set from a URL is fetched again at most this often for an unknown `kid`.
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// Tolerated clock skew for `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;

/// OIDC settings (all optional: without an issuer only the control plane's own tokens are accepted).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct OidcArgs {
    /// Accept bearer JWTs from this issuer (`iss`), besides the control plane's own.
    #[arg(long = "oidc-issuer", env = "CP_OIDC_ISSUER")]
    pub issuer: Option<String>,

    /// The `aud` those JWTs must carry (recommended; without it any audience is accepted).
    #[arg(long = "oidc-audience", env = "CP_OIDC_AUDIENCE")]
    pub audience: Option<String>,

    /// The issuer's public keys as a JWKS file.
    #[arg(
        long = "oidc-jwks-file",
        env = "CP_OIDC_JWKS_FILE",
        conflicts_with = "jwks_url"
    )]
    pub jwks_file: Option<PathBuf>,

    /// The issuer's JWKS URL (e.g. Keycloak's `…/realms/R/protocol/openid-connect/certs`).
    #[arg(long = "oidc-jwks-url", env = "CP_OIDC_JWKS_URL")]
    pub jwks_url: Option<String>,

    /// How often a JWKS URL is read again.
    #[arg(long = "oidc-jwks-refresh", env = "CP_OIDC_JWKS_REFRESH", default_value = "10m", value_parser = parse_duration)]
    pub jwks_refresh: Duration,

    /// Claim holding the organization id (a dotted path reads nested claims).
    #[arg(
        long = "oidc-organization-claim",
        env = "CP_OIDC_ORGANIZATION_CLAIM",
        default_value = "organization_id"
    )]
    pub organization_claim: String,

    /// Claim holding the workspace id; absent or empty = the whole organization.
    #[arg(
        long = "oidc-workspace-claim",
        env = "CP_OIDC_WORKSPACE_CLAIM",
        default_value = "workspace_id"
    )]
    pub workspace_claim: String,

    /// Claim holding the role: a string or a list (e.g. `realm_access.roles`); ADMIN, EDITOR or
    /// VIEWER in any case, the highest one wins.
    #[arg(
        long = "oidc-role-claim",
        env = "CP_OIDC_ROLE_CLAIM",
        default_value = "role"
    )]
    pub role_claim: String,
}

/// Who an OIDC token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcIdentity {
    /// A stable id for the caller: UUIDv5 of `iss` and `sub` (logged as `created_by`).
    pub id: Uuid,
    /// Organization scope.
    pub organization_id: OrganizationId,
    /// Workspace scope.
    pub workspace_id: Option<WorkspaceId>,
    /// Role (never DATA_PLANE: data planes use API tokens).
    pub role: Role,
    /// Expiry (unix seconds).
    pub expires_at: i64,
}

/// Why an OIDC token was refused (logged at debug level, never shown in detail).
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Header, signature, issuer, audience or time checks failed.
    #[error("token refused: {0}")]
    Token(String),
    /// No key of the set verifies this token's algorithm and `kid`.
    #[error("no usable key for kid {0:?}")]
    UnknownKey(Option<String>),
    /// A claim is missing or malformed.
    #[error("claim {0}: {1}")]
    Claim(String, &'static str),
}

enum Source {
    File,
    Url { url: String, http: reqwest::Client },
}

struct Keys {
    set: JwkSet,
    fetched_at: Instant,
}

/// Verifies tokens of one issuer.
pub struct Oidc {
    issuer: String,
    audience: Option<String>,
    args: OidcArgs,
    source: Source,
    keys: RwLock<Keys>,
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl OidcArgs {
    /// Checks the settings, adding problems to `problems`; `Ok(false)` when OIDC is off.
    pub fn check(&self, problems: &mut Vec<String>) -> bool {
        match (&self.issuer, &self.jwks_file, &self.jwks_url) {
            (None, None, None) => false,
            (None, _, _) => {
                problems.push("CP_OIDC_JWKS_FILE / CP_OIDC_JWKS_URL need CP_OIDC_ISSUER".into());
                false
            }
            (Some(_), None, None) => {
                problems.push("CP_OIDC_ISSUER needs CP_OIDC_JWKS_FILE or CP_OIDC_JWKS_URL".into());
                false
            }
            (Some(issuer), _, _) if issuer == super::jwt::ISSUER => {
                problems.push(format!(
                    "CP_OIDC_ISSUER cannot be {issuer:?}, the control plane's own issuer"
                ));
                false
            }
            (Some(_), _, Some(url))
                if !(url.starts_with("https://") || url.starts_with("http://")) =>
            {
                problems.push(format!(
                    "CP_OIDC_JWKS_URL must be an http(s) URL, not {url:?}"
                ));
                false
            }
            _ => true,
        }
    }
}

impl Oidc {
    /// Reads the key set once (a start-up error when it cannot be read or holds no usable key).
    pub async fn load(args: &OidcArgs) -> anyhow::Result<Option<Oidc>> {
        let mut problems = Vec::new();
        if !args.check(&mut problems) {
            return match problems.is_empty() {
                true => Ok(None),
                false => Err(anyhow::anyhow!(problems.join("; "))),
            };
        }
        let issuer = args.issuer.clone().unwrap_or_default();
        let source = match &args.jwks_url {
            Some(url) => Source::Url {
                url: url.clone(),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?,
            },
            None => Source::File,
        };
        let oidc = Oidc {
            issuer,
            audience: args.audience.clone(),
            args: args.clone(),
            source,
            keys: RwLock::new(Keys {
                set: JwkSet { keys: vec![] },
                fetched_at: Instant::now(),
            }),
            fetching: tokio::sync::Mutex::new(()),
        };
        let set = oidc.read_set().await?;
        if !set.keys.iter().any(|k| usable(k).is_some()) {
            anyhow::bail!("the OIDC key set holds no RS256 or ES256 (P-256) key");
        }
        *oidc.keys.write().await = Keys {
            set,
            fetched_at: Instant::now(),
        };
        Ok(Some(oidc))
    }

    async fn read_set(&self) -> anyhow::Result<JwkSet> {
        let text = match &self.source {
            Source::File => {
                let path = self
                    .args
                    .jwks_file
                    .as_ref()
                    .expect("file source has a path");
                std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("cannot read CP_OIDC_JWKS_FILE {}: {e}", path.display())
                })?
            }
            Source::Url { url, http } => {
                let answer = http
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot fetch CP_OIDC_JWKS_URL {url}: {e}"))?;
                if !answer.status().is_success() {
                    anyhow::bail!("CP_OIDC_JWKS_URL {url} answered {}", answer.status());
                }
                answer.text().await?
            }
        };
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("the OIDC key set is not a JWKS: {e}"))
    }

    /// Whether `token` claims this issuer (read without verifying, only to pick the verifier).
    pub fn claims_issuer(&self, token: &str) -> bool {
        jsonwebtoken::dangerous::insecure_decode::<Value>(token)
            .ok()
            .is_some_and(|t| {
                t.claims.get("iss").and_then(Value::as_str) == Some(self.issuer.as_str())
            })
    }

    /// Verifies `token` and reads who it names.
    pub async fn verify(&self, token: &str) -> Result<OidcIdentity, OidcError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| OidcError::Token(e.to_string()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(OidcError::Token(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header.kid.as_deref();
        let key = match self.find(kid, header.alg, false).await {
            Some(key) => key,
            None => {
                self.refetch().await;
                self.find(kid, header.alg, true)
                    .await
                    .ok_or(OidcError::UnknownKey(header.kid.clone()))?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud.as_str()]),
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| OidcError::Token(e.to_string()))?;
        self.identity(&data.claims)
    }

    fn identity(&self, claims: &Value) -> Result<OidcIdentity, OidcError> {
        let text = |name: &str| -> Result<Option<&str>, OidcError> {
            match claim(claims, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(OidcError::Claim(name.to_owned(), "is not a string")),
            }
        };
        let a = &self.args;
        let organization_id = text(&a.organization_claim)?
            .ok_or_else(|| OidcError::Claim(a.organization_claim.clone(), "is missing"))?
            .parse::<OrganizationId>()
            .map_err(|_| OidcError::Claim(a.organization_claim.clone(), "is not a UUID"))?;
        let workspace_id = text(&a.workspace_claim)?
            .map(|ws| {
                ws.parse::<WorkspaceId>()
                    .map_err(|_| OidcError::Claim(a.workspace_claim.clone(), "is not a UUID"))
            })
            .transpose()?;
        let role = role_of(claim(claims, &a.role_claim)).ok_or_else(|| {
            OidcError::Claim(
                a.role_claim.clone(),
                "names no ADMIN, EDITOR or VIEWER role",
            )
        })?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        Ok(OidcIdentity {
            id: Uuid::new_v5(
                &Uuid::NAMESPACE_URL,
                format!("{}#{subject}", self.issuer).as_bytes(),
            ),
            organization_id,
            workspace_id,
            role,
            expires_at,
        })
    }

    /// The key for `kid` and `alg`. A URL-backed set older than the refresh interval counts as a
    /// miss unless `stale_ok`.
    async fn find(&self, kid: Option<&str>, alg: Algorithm, stale_ok: bool) -> Option<DecodingKey> {
        let keys = self.keys.read().await;
        let stale = matches!(self.source, Source::Url { .. })
            && keys.fetched_at.elapsed() >= self.args.jwks_refresh;
        if stale && !stale_ok {
            return None;
        }
        keys.set
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
            .find_map(|k| usable(k).filter(|(a, _)| *a == alg).map(|(_, key)| key))
    }

    /// Reads a URL-backed set again unless it was read less than [`REFETCH_AFTER`] ago (one
    /// fetch at a time). A failed fetch keeps the keys it had.
    async fn refetch(&self) {
        if !matches!(self.source, Source::Url { .. }) {
            return;
        }
        let _one = self.fetching.lock().await;
        let age = self.keys.read().await.fetched_at.elapsed();
        if age < REFETCH_AFTER.min(self.args.jwks_refresh) {
            return;
        }
        match self.read_set().await {
            Ok(set) => {
                *self.keys.write().await = Keys {
                    set,
                    fetched_at: Instant::now(),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the OIDC key set could not be read again; keeping the keys it had");
                self.keys.write().await.fetched_at = Instant::now();
            }
        }
    }
}

/// The algorithm a JWK may verify and its key: RS256 for RSA, ES256 for P-256, nothing else. A
/// key that declares another `alg` is not used.
fn usable(jwk: &jsonwebtoken::jwk::Jwk) -> Option<(Algorithm, DecodingKey)> {
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return None,
    };
    if let Some(declared) = jwk.common.key_algorithm {
        if declared.to_string().parse::<Algorithm>().ok() != Some(alg) {
            return None;
        }
    }
    DecodingKey::from_jwk(jwk).ok().map(|key| (alg, key))
}

/// The claim at a dotted path (`realm_access.roles`); a claim whose own name has dots is found too.
fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(claims, |v, part| v.get(part))
}

/// The highest of ADMIN, EDITOR and VIEWER named by a string or a list of strings (any case).
fn role_of(value: Option<&Value>) -> Option<Role> {
    let names: Vec<&str> = match value? {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    [Role::Admin, Role::Editor, Role::Viewer]
        .into_iter()
        .find(|role| names.iter().any(|n| n.eq_ignore_ascii_case(role.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_come_from_a_string_or_a_list_and_the_highest_wins() {
        assert_eq!(role_of(Some(&json!("viewer"))), Some(Role::Viewer));
        assert_eq!(
            role_of(Some(&json!(["offline_access", "EDITOR", "viewer"]))),
            Some(Role::Editor)
        );
        assert_eq!(role_of(Some(&json!(["DATA_PLANE"]))), None);
        assert_eq!(role_of(Some(&json!(42))), None);
        assert_eq!(role_of(None), None);
    }

    #[test]
    fn claims_are_found_by_dotted_path_or_literal_name() {
        let claims = json!({"realm_access": {"roles": ["ADMIN"]}, "https://x.example/org": "o"});
        assert_eq!(
            claim(&claims, "realm_access.roles"),
            Some(&json!(["ADMIN"]))
        );
        assert_eq!(claim(&claims, "https://x.example/org"), Some(&json!("o")));
        assert_eq!(claim(&claims, "realm_access.missing"), None);
    }

    #[test]
    fn settings_need_an_issuer_and_a_key_source_together() {
        let mut problems = Vec::new();
        assert!(!OidcArgs::default().check(&mut problems));
        assert!(problems.is_empty());
        let issuer_only = OidcArgs {
            issuer: Some("https://idp".into()),
            ..Default::default()
        };
        assert!(!issuer_only.check(&mut problems));
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
