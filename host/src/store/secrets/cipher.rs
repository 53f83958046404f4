//! Sealing one secret value: XChaCha20-Poly1305 with a random 24-byte
//! nonce per value (random nonces of that size never repeat in practice),
//! the connection's and the secret's names bound as associated data so that
//! a sealed value moved to another row no longer opens.

use chacha20poly1305::aead::{Aead as _, AeadCore as _, KeyInit as _, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::SecretsKey;

/// The nonce's length in bytes.
pub(super) const NONCE_BYTES: usize = 24;

/// A value as stored: its nonce and its ciphertext (with the 16-byte tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Seals and opens values under one key.
#[derive(Clone)]
pub(in crate::store) struct SecretsCipher {
    aead: XChaCha20Poly1305,
    fingerprint: String,
}

impl std::fmt::Debug for SecretsCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretsCipher({})", self.fingerprint)
    }
}

impl SecretsCipher {
    pub fn new(key: &SecretsKey) -> Self {
        Self {
            aead: XChaCha20Poly1305::new(key.bytes().into()),
            fingerprint: key.fingerprint(),
        }
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Seals `value`, secret `name` of connection `connection`.
    pub fn seal(&self, connection: &str, name: &str, value: &str) -> Sealed {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(connection, name);
        let ciphertext = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any value that fits in memory");
        Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }

    /// Opens a sealed value; `None` when it does not authenticate (another
    /// key, another row's value, or altered bytes) or is not UTF-8.
    pub fn open(&self, connection: &str, name: &str, sealed: &Sealed) -> Option<String> {
        if sealed.nonce.len() != NONCE_BYTES {
            return None;
        }
        let aad = associated_data(connection, name);
        let plain = self
            .aead
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// `rescind-secret-v1`, then the connection's name with its length in
/// front, then the secret's name: no two (connection, name) pairs give the
/// same bytes.
fn associated_data(connection: &str, name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + connection.len() + name.len());
    aad.extend_from_slice(b"rescind-secret-v1\0");
    aad.extend_from_slice(&(connection.len() as u64).to_be_bytes());
    aad.extend_from_slice(connection.as_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_in_its_own_row_under_its_own_key() {
        let key = SecretsKey::generate();
        let cipher = SecretsCipher::new(&key);
        let sealed = cipher.seal("erp", "apiToken", "tok-123");
        assert_eq!(
            cipher.open("erp", "apiToken", &sealed).as_deref(),
            Some("tok-123")
        );
        assert!(
            !sealed
                .ciphertext
                .windows(7)
                .any(|w| w == b"tok-123".as_slice())
        );
        // Another row, another key, a flipped bit: nothing.
        assert_eq!(cipher.open("erp", "password", &sealed), None);
        assert_eq!(cipher.open("crm", "apiToken", &sealed), None);
        // The length prefix keeps `ab` + `c` apart from `a` + `bc`.
        let ab = cipher.seal("ab", "c", "x");
        assert_eq!(cipher.open("a", "bc", &ab), None);
        let other = SecretsCipher::new(&SecretsKey::generate());
        assert_eq!(other.open("erp", "apiToken", &sealed), None);
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert_eq!(cipher.open("erp", "apiToken", &flipped), None);
        let short = Sealed {
            nonce: vec![0; 12],
            ciphertext: sealed.ciphertext.clone(),
        };
        assert_eq!(cipher.open("erp", "apiToken", &short), None);
    }

    #[test]
    fn every_seal_has_its_own_nonce() {
        let cipher = SecretsCipher::new(&SecretsKey::generate());
        let a = cipher.seal("erp", "t", "same");
        let b = cipher.seal("erp", "t", "same");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }
}
