//! Encryption at rest: AES-256-GCM under a keyring of master keys.
//!
//! Every value is sealed with a fresh random 96-bit nonce under the keyring's primary key, and the
//! ciphertext carries the id of the key that sealed it, so master keys can rotate: old values stay
//! readable while any key that sealed them is still in the ring, and re-sealing moves them to the
//! primary. Associated data ([`Aad`]) binds each ciphertext to the table, row and column it was
//! written for, so a ciphertext copied to another row or column does not decrypt.
//!
//! Sealed layout: `0x01 | key id length (1 byte) | key id | nonce (12 bytes) | ciphertext and tag`.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;

use crate::secret::Secret;

const FORMAT_V1: u8 = 0x01;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const MAX_KEY_ID_LEN: usize = 32;

/// Why a keyring could not be built or a value could not be sealed or opened. Never carries secret data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The keyring text is malformed (the message says where, never the key material).
    #[error("invalid keyring: {0}")]
    InvalidKeyring(String),
    /// The sealed value is shorter than its header or has an unknown format byte.
    #[error("sealed value is malformed")]
    Malformed,
    /// The value was sealed under a key id that is not in the keyring.
    #[error("sealed under unknown key id `{0}`")]
    UnknownKey(String),
    /// Authentication failed: the value, its associated data or the key is wrong.
    #[error("sealed value failed authentication")]
    Authentication,
}

/// What a ciphertext is bound to: the table, row and column it is stored in.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Aad(String);

impl Aad {
    /// Associated data for `table`.`column` of the row identified by `row`.
    pub fn new(table: &str, row: &str, column: &str) -> Self {
        // Lengths prefix each part so `("a|b", "c")` and `("a", "b|c")` can never collide.
        Self(format!(
            "webhook-gateway/v1|{}:{table}|{}:{row}|{}:{column}",
            table.len(),
            row.len(),
            column.len()
        ))
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// A set of named 256-bit master keys, one of which (the primary) seals new values.
#[derive(Clone)]
pub struct Keyring {
    keys: BTreeMap<String, Secret<[u8; 32]>>,
    primary: String,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("primary", &self.primary)
            .finish()
    }
}

impl Keyring {
    /// Parses `id=base64key` entries separated by commas, semicolons or new lines (`#` starts a
    /// comment line). Each key is 32 bytes in standard or URL-safe base64. The primary is
    /// `primary` when given, else the last entry.
    pub fn parse(text: &str, primary: Option<&str>) -> Result<Self, CryptoError> {
        let mut keys = BTreeMap::new();
        let mut last = None;
        let mut problems = Vec::new();
        let entries = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .flat_map(|l| l.split([',', ';']))
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for (n, entry) in entries.enumerate() {
            let Some((id, key)) = entry.split_once('=') else {
                problems.push(format!("entry {} is not `id=base64key`", n + 1));
                continue;
            };
            let id = id.trim();
            if !valid_key_id(id) {
                problems.push(format!(
                    "entry {}: key id must be 1-{MAX_KEY_ID_LEN} characters of letters, digits, `_` or `-`",
                    n + 1
                ));
                continue;
            }
            match decode_key(key.trim()) {
                Some(bytes) => {
                    if keys.insert(id.to_owned(), Secret::new(bytes)).is_some() {
                        problems.push(format!("key id `{id}` appears twice"));
                    }
                    last = Some(id.to_owned());
                }
                None => problems.push(format!("key `{id}` is not 32 bytes of base64")),
            }
        }
        let primary = match (primary, last) {
            (Some(p), _) if keys.contains_key(p) => Some(p.to_owned()),
            (Some(p), _) => {
                problems.push(format!("primary key id `{p}` is not in the keyring"));
                None
            }
            (None, last) => last,
        };
        if !problems.is_empty() {
            return Err(CryptoError::InvalidKeyring(problems.join("; ")));
        }
        let primary = primary.ok_or_else(|| CryptoError::InvalidKeyring("no keys".into()))?;
        Ok(Self { keys, primary })
    }

    /// A keyring of one key (tests and tools).
    pub fn single(id: &str, key: [u8; 32]) -> Result<Self, CryptoError> {
        if !valid_key_id(id) {
            return Err(CryptoError::InvalidKeyring("invalid key id".into()));
        }
        Ok(Self {
            keys: BTreeMap::from([(id.to_owned(), Secret::new(key))]),
            primary: id.to_owned(),
        })
    }

    /// The id of the key that seals new values.
    pub fn primary_id(&self) -> &str {
        &self.primary
    }

    /// Seals `plaintext` under the primary key with a fresh random nonce, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &Aad) -> Result<Vec<u8>, CryptoError> {
        let key = self
            .keys
            .get(&self.primary)
            .ok_or_else(|| CryptoError::UnknownKey(self.primary.clone()))?;
        let cipher = Aes256Gcm::new(key.expose().into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Authentication)?;
        let id = self.primary.as_bytes();
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + sealed.len());
        out.push(FORMAT_V1);
        // valid_key_id bounds the id to 32 bytes, so it fits one length byte.
        out.push(id.len() as u8);
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value sealed by [`Keyring::seal`] with the same `aad`. Any tampering, a wrong `aad`
    /// or a truncated value gives an error, never garbage.
    pub fn open(&self, sealed: &[u8], aad: &Aad) -> Result<Secret<Vec<u8>>, CryptoError> {
        let (key_id, nonce, body) = split(sealed)?;
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
        let cipher = Aes256Gcm::new(key.expose().into());
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: aad.as_bytes(),
                },
            )
            .map(Secret::new)
            .map_err(|_| CryptoError::Authentication)
    }

    /// Seals UTF-8 text.
    pub fn seal_str(&self, plaintext: &str, aad: &Aad) -> Result<Vec<u8>, CryptoError> {
        self.seal(plaintext.as_bytes(), aad)
    }

    /// Opens a value sealed by [`Keyring::seal_str`]; a value that is not UTF-8 is an authentication error.
    pub fn open_str(&self, sealed: &[u8], aad: &Aad) -> Result<Secret<String>, CryptoError> {
        let bytes = self.open(sealed, aad)?;
        String::from_utf8(bytes.expose().clone())
            .map(Secret::new)
            .map_err(|e| {
                // The copy that failed to decode is wiped too.
                zeroize::Zeroize::zeroize(&mut e.into_bytes());
                CryptoError::Authentication
            })
    }

    /// Whether `sealed` was sealed under a key other than the primary (so re-sealing would move it).
    pub fn needs_reseal(&self, sealed: &[u8]) -> Result<bool, CryptoError> {
        Ok(key_id_of(sealed)? != self.primary)
    }
}

/// The id of the key a sealed value was sealed under.
fn key_id_of(sealed: &[u8]) -> Result<&str, CryptoError> {
    split(sealed).map(|(id, _, _)| id)
}

fn split(sealed: &[u8]) -> Result<(&str, &[u8], &[u8]), CryptoError> {
    let (&format, rest) = sealed.split_first().ok_or(CryptoError::Malformed)?;
    if format != FORMAT_V1 {
        return Err(CryptoError::Malformed);
    }
    let (&id_len, rest) = rest.split_first().ok_or(CryptoError::Malformed)?;
    let id_len = usize::from(id_len);
    if id_len == 0 || id_len > MAX_KEY_ID_LEN || rest.len() < id_len + NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    let (id, rest) = rest.split_at(id_len);
    let id = std::str::from_utf8(id).map_err(|_| CryptoError::Malformed)?;
    let (nonce, body) = rest.split_at(NONCE_LEN);
    Ok((id, nonce, body))
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn decode_key(text: &str) -> Option<[u8; 32]> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .or_else(|_| STANDARD.decode(text))
        .or_else(|_| URL_SAFE.decode(text))
        .ok()?;
    let mut zeroizing = zeroize::Zeroizing::new(bytes);
    let key: [u8; 32] = zeroizing.as_slice().try_into().ok()?;
    zeroize::Zeroize::zeroize(&mut *zeroizing);
    Some(key)
}

/// A fresh random 256-bit key in standard base64, for generating keyring entries.
pub fn generate_key_base64() -> String {
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(&mut *key);
    base64::engine::general_purpose::STANDARD.encode(*key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles only while key material and the cipher state are wiped on drop (aes-gcm, aes,
    /// ghash and polyval with their `zeroize` features; master keys in [`Secret`]).
    #[test]
    fn keys_and_cipher_state_are_wiped_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<Secret<[u8; 32]>>();
        wiped_on_drop::<Secret<Vec<u8>>>();
        wiped_on_drop::<aes::Aes256>();
        wiped_on_drop::<zeroize::Zeroizing<[u8; 32]>>();
        let _: fn(&Keyring) -> Option<&Secret<[u8; 32]>> = |k| k.keys.values().next();
    }

    fn ring() -> Keyring {
        Keyring::single("k1", [7u8; 32]).expect("valid")
    }

    fn aad() -> Aad {
        Aad::new(
            "webhooks",
            "0b7e6c1a-0000-4000-8000-000000000001",
            "api_key",
        )
    }

    #[test]
    fn round_trip_with_fresh_nonce_each_time() {
        let ring = ring();
        let a = ring.seal_str("s3cr3t-value", &aad()).expect("seals");
        let b = ring.seal_str("s3cr3t-value", &aad()).expect("seals");
        assert_ne!(a, b, "a fresh nonce makes each ciphertext different");
        assert!(
            !a.windows(12).any(|w| w == b"s3cr3t-value"),
            "no plaintext in the ciphertext"
        );
        assert_eq!(
            ring.open_str(&a, &aad()).expect("opens").expose(),
            "s3cr3t-value"
        );
        assert_eq!(key_id_of(&a), Ok("k1"));
    }

    #[test]
    fn every_flipped_byte_is_an_error() {
        let ring = ring();
        let sealed = ring.seal_str("value", &aad()).expect("seals");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                ring.open(&bad, &aad()).is_err(),
                "flipping byte {i} must fail"
            );
        }
    }

    #[test]
    fn wrong_aad_is_an_error() {
        let ring = ring();
        let sealed = ring.seal_str("value", &aad()).expect("seals");
        let other_row = Aad::new(
            "webhooks",
            "0b7e6c1a-0000-4000-8000-000000000002",
            "api_key",
        );
        let other_col = Aad::new("webhooks", "0b7e6c1a-0000-4000-8000-000000000001", "secret");
        let other_table = Aad::new(
            "config_params",
            "0b7e6c1a-0000-4000-8000-000000000001",
            "api_key",
        );
        for wrong in [other_row, other_col, other_table] {
            assert_eq!(
                ring.open(&sealed, &wrong).err(),
                Some(CryptoError::Authentication)
            );
        }
    }

    #[test]
    fn truncated_values_are_errors_never_panics() {
        let ring = ring();
        let sealed = ring.seal_str("value", &aad()).expect("seals");
        for len in 0..sealed.len() {
            assert!(
                ring.open(&sealed[..len], &aad()).is_err(),
                "length {len} must fail"
            );
        }
        assert_eq!(ring.open(&[], &aad()).err(), Some(CryptoError::Malformed));
    }

    #[test]
    fn unknown_key_and_rotation() {
        let old = Keyring::parse(&format!("old={}", generate_key_base64()), None).expect("parses");
        let sealed = old.seal_str("v", &aad()).expect("seals");
        let other = ring();
        assert_eq!(
            other.open(&sealed, &aad()).err(),
            Some(CryptoError::UnknownKey("old".into()))
        );

        // A ring holding both keys reads the old value and says it should be re-sealed.
        let both_text = format!("old={},\nnew={}", "A".repeat(43), generate_key_base64());
        let both = Keyring::parse(&both_text, None).expect("parses");
        assert_eq!(both.primary_id(), "new");
        let with_old = Keyring::parse(&both_text, Some("old")).expect("parses");
        let sealed = with_old.seal_str("v", &aad()).expect("seals");
        assert!(both.needs_reseal(&sealed).expect("well formed"));
        let resealed = both
            .seal(both.open(&sealed, &aad()).expect("opens").expose(), &aad())
            .expect("seals");
        assert!(!both.needs_reseal(&resealed).expect("well formed"));
    }

    #[test]
    fn keyring_parse_reports_every_problem_without_key_material() {
        let err = Keyring::parse("a=short, =AAAA, b c=xyz, noequals", None).expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("`a` is not 32 bytes"), "{text}");
        assert!(text.contains("entry 2"), "{text}");
        assert!(text.contains("entry 4"), "{text}");
        assert!(!text.contains("short"), "{text}");
        assert!(Keyring::parse("", None).is_err());
        let key = generate_key_base64();
        assert!(Keyring::parse(&format!("a={key}"), Some("b")).is_err());
        let ring = Keyring::parse(&format!("# comment\na={key}"), None).expect("parses");
        assert!(!format!("{ring:?}").contains(&key));
    }
}
