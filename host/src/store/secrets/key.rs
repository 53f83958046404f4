//! The secrets key: 32 random bytes, written as 64 hex digits, from
//! `RESCIND_SECRETS_KEY` or the data directory's key file.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore as _;
use sha2::{Digest, Sha256};

use super::SecretsError;

/// The key file's name in the data directory.
pub const SECRETS_KEY_FILE: &str = "secrets.key";

/// Where `rescind secrets rotate-key` writes the new key until the database
/// has switched to it; a start that finds it finishes the switch.
pub(super) const PENDING_KEY_FILE: &str = "secrets.key.new";

/// The key connection secrets are sealed with: 32 bytes. Shown only as its
/// [fingerprint](Self::fingerprint).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretsKey([u8; 32]);

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretsKey({})", self.fingerprint())
    }
}

impl SecretsKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The key from its 64 hex digits (surrounding whitespace ignored), as
    /// `RESCIND_SECRETS_KEY` and the key file hold it.
    pub fn parse(text: &str) -> Result<Self, SecretsError> {
        let text = text.trim();
        let malformed = || SecretsError::KeyMalformed {
            length: text.chars().count(),
        };
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed());
        }
        let bytes = hex::decode(text).map_err(|_| malformed())?;
        Ok(Self(bytes.try_into().map_err(|_| malformed())?))
    }

    /// The key as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A short, one-way name of the key (16 hex digits of a SHA-256 over
    /// it): recorded in the database to recognise the key, and shown in
    /// messages. It does not reveal the key.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"rescind-secrets-key-fingerprint-v1\0")
            .chain_update(self.0)
            .finalize();
        hex::encode(&digest[..8])
    }

    pub(super) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Reads a key file; `None` when there is none.
pub(super) fn read_key_file(path: &Path) -> Result<Option<SecretsKey>, SecretsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SecretsError::KeyFile {
                path: path.to_owned(),
                source,
            });
        }
    };
    check_private(path)?;
    SecretsKey::parse(&text)
        .map(Some)
        .map_err(|_| SecretsError::KeyFileMalformed {
            path: path.to_owned(),
        })
}

/// Refuses a key file that others than its owner may read or write, as ssh
/// does with a private key.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), SecretsError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(|source| SecretsError::KeyFile {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(SecretsError::KeyFileNotPrivate {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), SecretsError> {
    Ok(())
}

/// Writes `key` to a new file at `path`, readable and writable by its owner
/// only (0600), synced with its directory. Refuses to overwrite a file.
pub(super) fn write_key_file(path: &Path, key: &SecretsKey) -> Result<(), SecretsError> {
    let failed = |source| SecretsError::KeyFile {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(failed)?;
    file.write_all(format!("{}\n", key.to_hex()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failed)?;
    sync_dir(path).map_err(failed)
}

/// Renames `from` over `to` and syncs their directory: the switch to a new
/// key file survives a power loss.
pub(super) fn replace_key_file(from: &Path, to: &Path) -> Result<(), SecretsError> {
    std::fs::rename(from, to)
        .and_then(|()| sync_dir(to))
        .map_err(|source| SecretsError::KeyFile {
            path: to.to_owned(),
            source,
        })
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The key file and the pending key file of a data directory.
pub(super) fn key_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    (
        data_dir.join(SECRETS_KEY_FILE),
        data_dir.join(PENDING_KEY_FILE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_64_hex_digits_only() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let key = SecretsKey::parse(&format!("  {hex}\n")).unwrap();
        assert_eq!(key.to_hex(), hex.to_ascii_lowercase());
        for bad in [
            "",
            "abc",
            &hex[..63],
            &format!("{hex}0"),
            &hex.replace('0', "g"),
        ] {
            let error = SecretsKey::parse(bad).unwrap_err().to_string();
            assert!(error.contains("64 hex digits"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn fingerprints_name_keys_without_showing_them() {
        let a = SecretsKey::generate();
        let b = SecretsKey::generate();
        assert_ne!(a, b);
        assert_eq!(a.fingerprint().len(), 16);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(!a.to_hex().contains(&a.fingerprint()));
        assert!(!format!("{a:?}").contains(&a.to_hex()));
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRETS_KEY_FILE);
        let key = SecretsKey::generate();
        write_key_file(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_key_file(&path).unwrap(), Some(key));
        assert!(write_key_file(&path, &SecretsKey::generate()).is_err());

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = read_key_file(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        assert_eq!(read_key_file(&dir.path().join("none")).unwrap(), None);
    }
}
