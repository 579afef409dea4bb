//! Short-lived bearer JWTs, HS256 over a configured signing key. Written here (about a hundred lines
//! on `hmac`) instead of pulling a JWT crate with its own crypto backend: only one algorithm is ever
//! issued or accepted, so the `alg` confusion class of bugs cannot arise.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use gateway_shared::Secret;

/// The `iss` of every JWT this control plane issues and the only one it accepts.
pub const ISSUER: &str = "webhook-gateway-control-plane";
/// Default lifetime of an issued JWT (`CP_JWT_TTL`).
pub const TTL_SECONDS: i64 = 86_400;
/// Tolerated clock skew when checking `exp`, `iat` and `nbf`.
const LEEWAY_SECONDS: i64 = 30;
/// Minimum length of the signing key.
pub const MIN_KEY_LEN: usize = 32;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// What a JWT says about its bearer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// The API token id the JWT was exchanged for.
    pub sub: String,
    /// Organization scope.
    pub org: String,
    /// Optional workspace scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws: Option<String>,
    /// Role name (`ADMIN`, …).
    pub role: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Not valid before (unix seconds).
    pub nbf: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
}

/// Why a JWT was refused (never shown to callers in detail).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// Header is not exactly HS256.
    #[error("unsupported algorithm")]
    Algorithm,
    /// Signature mismatch.
    #[error("bad signature")]
    Signature,
    /// Expired, not yet valid, or wrong issuer.
    #[error("token not valid now")]
    Expired,
}

/// Signs and verifies JWTs with one HMAC key.
#[derive(Clone)]
pub struct JwtKey(Secret<Vec<u8>>);

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKey(***)")
    }
}

impl JwtKey {
    /// A key from at least [`MIN_KEY_LEN`] bytes.
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= MIN_KEY_LEN).then(|| Self(Secret::new(bytes)))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        match Hmac::<Sha256>::new_from_slice(self.0.expose()) {
            Ok(mac) => mac,
            Err(_) => unreachable!("hmac takes keys of any length"),
        }
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> Result<String, serde_json::Error> {
        let payload = serde_json::to_vec(claims)?;
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = mac.finalize().into_bytes();
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// Verifies signature (constant time), algorithm, issuer and validity window at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Malformed)?)
                .map_err(|_| JwtError::Malformed)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(JwtError::Algorithm);
        }
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        mac.verify_slice(&sig).map_err(|_| JwtError::Signature)?;
        let claims: Claims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).map_err(|_| JwtError::Malformed)?)
                .map_err(|_| JwtError::Malformed)?;
        if claims.iss != ISSUER
            || claims.exp + LEEWAY_SECONDS < now
            || claims.nbf - LEEWAY_SECONDS > now
            || claims.iat - LEEWAY_SECONDS > now
        {
            return Err(JwtError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "t".into(),
            org: "o".into(),
            ws: None,
            role: "ADMIN".into(),
            iat: now,
            nbf: now,
            exp: now + TTL_SECONDS,
        }
    }

    #[test]
    fn sign_verify_and_every_rejection() {
        let key = JwtKey::new(vec![1; 32]).expect("long enough");
        let now = 1_800_000_000;
        let jwt = key.sign(&claims(now)).expect("signs");
        assert_eq!(key.verify(&jwt, now + 10), Ok(claims(now)));
        assert_eq!(
            key.verify(&jwt, now + TTL_SECONDS + 31),
            Err(JwtError::Expired)
        );
        let other = JwtKey::new(vec![2; 32]).expect("long enough");
        assert_eq!(other.verify(&jwt, now), Err(JwtError::Signature));
        let mut tampered = jwt.clone();
        tampered.push('A');
        assert!(key.verify(&tampered, now).is_err());
        assert_eq!(key.verify("a.b", now), Err(JwtError::Malformed));
        // alg=none with an empty signature is refused before any signature check.
        let parts: Vec<&str> = jwt.split('.').collect();
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            parts[1]
        );
        assert_eq!(key.verify(&none, now), Err(JwtError::Algorithm));
        let mut wrong_iss = claims(now);
        wrong_iss.iss = "someone-else".into();
        let jwt = key.sign(&wrong_iss).expect("signs");
        assert_eq!(key.verify(&jwt, now), Err(JwtError::Expired));
        assert!(JwtKey::new(vec![1; 31]).is_none());
    }
}
