//! The last good config on disk, so a data plane can cold-start while the control plane is away.
//!
//! The file holds secrets, so it is encrypted: AES-256-GCM under a key derived from the data plane's
//! own control-plane token (HMAC-SHA256(token, "webhook-gateway snapshot cache v1")), with the format
//! tag and the config version as associated data. The GCM tag is the checksum: a file that was
//! truncated, corrupted, or written by another deployment (another token) fails to open and is
//! ignored as a whole — never a partial config. Writes go to a temporary file that is synced and then
//! renamed over the old one, so a crash mid-write leaves the previous file intact.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use gateway_shared::snapshot::ConfigSnapshot;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"WGSNAP01";
const HEADER: usize = 8 + 8 + 12;

/// Why a cache file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Reading or writing the file failed.
    #[error("snapshot cache I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not a snapshot cache of this format.
    #[error("snapshot cache has an unknown format")]
    Format,
    /// Authentication failed: corrupt, truncated, or written under another token.
    #[error(
        "snapshot cache failed its integrity check (corrupt, or written by another deployment)"
    )]
    Integrity,
    /// The decrypted content is not a snapshot.
    #[error("snapshot cache content is invalid: {0}")]
    Content(String),
    /// A snapshot older than one this cache already served or stored is not written over it.
    #[error(
        "not caching version {offered}: version {cached} is already cached (delete the file if the control plane's versions went back, e.g. after a database restore)"
    )]
    Older {
        /// The version already cached.
        cached: u64,
        /// The version that was offered.
        offered: u64,
    },
}

/// An encrypted snapshot file.
#[derive(Clone)]
pub struct SnapshotCache {
    path: PathBuf,
    key: Zeroizing<[u8; 32]>,
    /// The highest version loaded from or written to the file (shared by clones).
    newest: Arc<AtomicU64>,
}

impl std::fmt::Debug for SnapshotCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotCache")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SnapshotCache {
    /// A cache at `path` keyed from the data plane's control-plane token.
    pub fn new(path: impl Into<PathBuf>, token: &str) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes())
            .expect("HMAC takes any key length");
        mac.update(b"webhook-gateway snapshot cache v1");
        let key = Zeroizing::new(mac.finalize().into_bytes().into());
        Self {
            path: path.into(),
            key,
            newest: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Where the file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.key.as_ref().into())
    }

    fn aad(version: u64) -> Vec<u8> {
        let mut aad = MAGIC.to_vec();
        aad.extend_from_slice(&version.to_be_bytes());
        aad
    }

    /// Encrypts a snapshot into the file format.
    pub fn seal(&self, snapshot: &ConfigSnapshot) -> Result<Vec<u8>, CacheError> {
        let plain = Zeroizing::new(
            serde_json::to_vec(snapshot).map_err(|e| CacheError::Content(e.to_string()))?,
        );
        let nonce: [u8; 12] = rand::random();
        let aad = Self::aad(snapshot.version);
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .map_err(|_| CacheError::Integrity)?;
        let mut out = Vec::with_capacity(HEADER + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&snapshot.version.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts and parses the file format.
    pub fn open(&self, bytes: &[u8]) -> Result<ConfigSnapshot, CacheError> {
        if bytes.len() < HEADER + 16 || &bytes[..8] != MAGIC {
            return Err(CacheError::Format);
        }
        let mut v = [0u8; 8];
        v.copy_from_slice(&bytes[8..16]);
        let version = u64::from_be_bytes(v);
        let nonce = Nonce::from_slice(&bytes[16..HEADER]);
        let aad = Self::aad(version);
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(
                    nonce,
                    Payload {
                        msg: &bytes[HEADER..],
                        aad: &aad,
                    },
                )
                .map_err(|_| CacheError::Integrity)?,
        );
        let snapshot: ConfigSnapshot =
            serde_json::from_slice(&plain).map_err(|e| CacheError::Content(e.to_string()))?;
        if snapshot.version != version {
            return Err(CacheError::Content(
                "version does not match the header".into(),
            ));
        }
        Ok(snapshot)
    }

    /// Reads the cache; `Ok(None)` when there is no file.
    pub fn load(&self) -> Result<Option<ConfigSnapshot>, CacheError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let snapshot = self.open(&bytes)?;
                self.newest.fetch_max(snapshot.version, Ordering::SeqCst);
                Ok(Some(snapshot))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the cache atomically (temporary file, fsync, rename, fsync of the folder). Blocking: call
    /// it from `spawn_blocking`.
    /// A snapshot older than one already loaded or stored is refused ([`CacheError::Older`]), so a
    /// stale control-plane replica cannot roll the cold-start config back.
    pub fn store(&self, snapshot: &ConfigSnapshot) -> Result<(), CacheError> {
        let cached = self.newest.load(Ordering::SeqCst);
        if snapshot.version < cached {
            return Err(CacheError::Older {
                cached,
                offered: snapshot.version,
            });
        }
        let bytes = self.seal(snapshot)?;
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            self.path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("snapshot"),
            std::process::id()
        ));
        {
            let mut f = std::fs::OpenOptions::new();
            f.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
            let mut file = f.open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        self.newest.fetch_max(snapshot.version, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use gateway_shared::snapshot::{
        ApiKeyHash, ProviderSecrets, SigningSecret, WebhookConfig, WebhookOptions,
    };
    use gateway_shared::{AppId, OrganizationId, Provider, Secret, WebhookId, WorkspaceId};

    use super::*;

    fn snapshot() -> ConfigSnapshot {
        ConfigSnapshot {
            version: 42,
            webhooks: vec![WebhookConfig {
                webhook_id: WebhookId::new_random(),
                organization_id: OrganizationId::new_random(),
                workspace_id: WorkspaceId::new_random(),
                app_id: AppId::new_random(),
                provider: Provider::Slack,
                api_keys: vec![ApiKeyHash::of("key")],
                secrets: ProviderSecrets {
                    signing: vec![SigningSecret {
                        value: Secret::new("very-secret-signing".into()),
                        not_after: None,
                    }],
                    verify_token: None,
                },
                bindings: vec![],
                correlation_key_path: None,
                options: WebhookOptions::default(),
            }],
        }
    }

    fn temp_path() -> PathBuf {
        std::env::temp_dir()
            .join(format!("snapcache-{}", uuid::Uuid::new_v4().simple()))
            .join("snapshot.bin")
    }

    #[test]
    fn round_trips_and_hides_secrets_on_disk() {
        let cache = SnapshotCache::new(temp_path(), "dp-token");
        cache.store(&snapshot()).expect("stored");
        let raw = std::fs::read(cache.path()).expect("file exists");
        assert!(
            !raw.windows(19).any(|w| w == b"very-secret-signing"),
            "secret in plain text on disk"
        );
        let back = cache.load().expect("valid").expect("present");
        assert_eq!(back.version, 42);
        assert_eq!(
            back.webhooks[0].secrets.signing[0].value.expose(),
            "very-secret-signing"
        );
        let _ = std::fs::remove_dir_all(cache.path().parent().expect("dir"));
    }

    #[test]
    fn corrupt_truncated_and_foreign_files_are_rejected_whole() {
        let cache = SnapshotCache::new(temp_path(), "dp-token");
        let sealed = cache.seal(&snapshot()).expect("sealed");
        for i in [0, 9, 20, HEADER + 3, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(cache.open(&bad).is_err(), "flipped byte {i} accepted");
        }
        assert!(matches!(
            cache.open(&sealed[..sealed.len() - 5]),
            Err(CacheError::Integrity)
        ));
        assert!(matches!(cache.open(&sealed[..10]), Err(CacheError::Format)));
        assert!(matches!(
            cache.open(b"{\"version\":1,\"webhooks\":[]}"),
            Err(CacheError::Format)
        ));
        let other = SnapshotCache::new(temp_path(), "another-deployment-token");
        assert!(matches!(other.open(&sealed), Err(CacheError::Integrity)));
        assert_eq!(cache.open(&sealed).expect("intact file opens").version, 42);
        assert!(cache
            .load()
            .expect("missing file is not an error")
            .is_none());
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_cached_one() {
        let dir =
            std::env::temp_dir().join(format!("gw-cache-older-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("snapshot.bin");
        let at = |version| ConfigSnapshot {
            version,
            ..snapshot()
        };
        let cache = SnapshotCache::new(&path, "token");
        cache.store(&at(5)).expect("first write");
        assert!(matches!(
            cache.store(&at(3)),
            Err(CacheError::Older {
                cached: 5,
                offered: 3
            })
        ));
        cache.store(&at(5)).expect("the same version again");
        // A new process knows what the file holds once it has loaded it.
        let restarted = SnapshotCache::new(&path, "token");
        assert_eq!(restarted.load().expect("load").map(|s| s.version), Some(5));
        assert!(matches!(
            restarted.clone().store(&at(4)),
            Err(CacheError::Older { .. })
        ));
        assert_eq!(restarted.load().expect("load").map(|s| s.version), Some(5));
        restarted.store(&at(6)).expect("a newer one");
        assert_eq!(
            SnapshotCache::new(&path, "token")
                .load()
                .expect("load")
                .map(|s| s.version),
            Some(6)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
