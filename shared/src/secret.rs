//! A wrapper for secret values: redacted in `Debug` and `Display`, zeroized on drop.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// A secret value. `Debug` prints `Secret(***)`; read it only with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself; call it only where the value is used (signing, encrypting, sending on the
    /// config stream), never to log it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The value is wiped when the secret is dropped (the `Drop` above).
impl<T: Zeroize> zeroize::ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

/// Serialized as the plain value: serialization happens only where the secret must travel (the
/// config stream to data planes, the data plane's encrypted-at-rest snapshot cache).
impl<T: Zeroize + Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Self)
    }
}

/// A secret setting given either as a value (`X`) or as a file holding it (`X_FILE`; surrounding
/// white space is trimmed). `what` names the setting in the error, which never holds the secret.
pub fn value_or_file(
    value: Option<&Secret<String>>,
    file: Option<&std::path::Path>,
    what: &str,
) -> Result<Secret<String>, String> {
    match (value, file) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(mut text) => {
                let secret = Secret::new(text.trim().to_owned());
                text.zeroize();
                Ok(secret)
            }
            Err(e) => Err(format!("cannot read {what} file {}: {e}", path.display())),
        },
        (None, None) => Err(format!("{what} is not configured")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_comes_from_its_value_or_its_trimmed_file() {
        let value = Secret::new("from-value".to_owned());
        let dir = std::env::temp_dir().join(format!("secret-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("token");
        std::fs::write(&file, "  from-file\n").expect("write");
        let got = value_or_file(Some(&value), Some(&file), "token").expect("value");
        assert_eq!(got.expose(), "from-value", "the value wins over the file");
        let got = value_or_file(None, Some(&file), "token").expect("file");
        assert_eq!(got.expose(), "from-file");
        let missing = value_or_file(None, Some(&dir.join("absent")), "the token");
        assert!(missing
            .expect_err("unreadable")
            .starts_with("cannot read the token file"));
        assert_eq!(
            value_or_file(None, None, "the token").expect_err("absent"),
            "the token is not configured"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new(String::from("hunter2-signing-secret"));
        let printed = format!("{s:?} {:?}", Some(&s));
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(s.expose(), "hunter2-signing-secret");
    }
}
