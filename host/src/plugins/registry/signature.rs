//! Detached ed25519 signatures that bind a plugin's name and its exact
//! bytes.
//!
//! What is signed is the text `rescind-plugin-v1\n{name}\n{sha256 hex}`:
//! the scheme's version, the name the plugin is uploaded under, and the
//! SHA-256 of the component's bytes in lower-case hex. A signature for
//! `aaas` therefore does not verify for the same bytes uploaded as
//! `webhook`, and the host can check a stored version again (on activation,
//! on a pinned reference, at start) from its name and hash alone.
//!
//! When the host trusts at least one public key, every path to active code
//! must carry a signature by one of them. The signature travels as 64 raw
//! bytes or as their base64 text (an `X-Plugin-Signature` header, a
//! `NAME.wasm.sig` file); `rescind plugin sign` makes it.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The first line of every signed message: the signature scheme.
pub const SIGNATURE_SCHEME: &str = "rescind-plugin-v1";

/// The largest signature (file or header) read: 64 bytes raw, 88
/// characters of base64, with room for whitespace around them.
pub const MAX_SIGNATURE_BYTES: u64 = 1024;

/// The message a signature covers for plugin `name` with these bytes'
/// SHA-256 (lower-case hex): `rescind-plugin-v1\n{name}\n{sha256 hex}`.
pub fn signed_message(name: &str, sha256_hex: &str) -> Vec<u8> {
    format!("{SIGNATURE_SCHEME}\n{name}\n{sha256_hex}").into_bytes()
}

/// A public key whose signatures the host accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedKey(VerifyingKey);

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedKey({})", self.id())
    }
}

impl TrustedKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, String> {
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| "these 32 bytes are not an ed25519 public key".to_owned())
    }

    /// The key from its base64 (44 characters) or hex (64 characters) text,
    /// as an operator writes it into the configuration.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = key_bytes(text).map_err(|length| {
            format!("an ed25519 public key is 32 bytes, this one has {length}")
        })?;
        Self::from_bytes(&bytes)
    }

    /// The key in base64: how it is named in messages and version records.
    pub fn id(&self) -> String {
        STANDARD.encode(self.0.as_bytes())
    }
}

/// A private key that signs plugins (`rescind plugin sign`). Its file holds
/// the 32-byte ed25519 seed as 64 hex digits (or base64).
pub struct PluginSigningKey(SigningKey);

impl std::fmt::Debug for PluginSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PluginSigningKey(public {})", self.public_key().id())
    }
}

impl PluginSigningKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Self {
        use chacha20poly1305::aead::OsRng;
        use chacha20poly1305::aead::rand_core::RngCore as _;
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        Self(SigningKey::from_bytes(&seed))
    }

    /// The key from its text: the 32-byte seed as 64 hex digits or base64.
    pub fn parse(text: &str) -> Result<Self, String> {
        let seed = key_bytes(text).map_err(|length| {
            format!(
                "a plugin signing key is a 32-byte ed25519 seed written as 64 hex digits, this \
                 one has {length} bytes"
            )
        })?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// Reads a key file written by [`Self::write_new`] (or by hand).
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the signing key {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes the seed as 64 hex digits to a new file readable by its owner
    /// only (0600); never overwrites a file.
    pub fn write_new(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path)?;
        file.write_all(format!("{}\n", hex::encode(self.0.to_bytes())).as_bytes())?;
        file.sync_all()
    }

    /// The public key to give hosts (`--trusted-key`).
    pub fn public_key(&self) -> TrustedKey {
        TrustedKey(self.0.verifying_key())
    }

    /// The signature (base64) of `bytes` as plugin `name`.
    pub fn sign(&self, name: &str, bytes: &[u8]) -> String {
        let digest = hex::encode(Sha256::digest(bytes));
        STANDARD.encode(self.0.sign(&signed_message(name, &digest)).to_bytes())
    }
}

/// 32 bytes from 64 hex digits or base64; the wrong length is the error.
fn key_bytes(text: &str) -> Result<[u8; 32], usize> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|_| text.len() / 2)?
    } else {
        STANDARD.decode(text).map_err(|_| text.len())?
    };
    bytes.try_into().map_err(|bytes: Vec<u8>| bytes.len())
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignatureProblem {
    Missing,
    Unreadable,
    NotByTrustedKey,
}

/// Checks `signature` over plugin `name` with bytes hashing to
/// `sha256_hex` against the trusted keys; answers the key that signed. With
/// no trusted keys every version passes unsigned.
pub(crate) fn verify(
    trusted: &[TrustedKey],
    name: &str,
    sha256_hex: &str,
    signature: Option<&[u8]>,
) -> Result<Option<String>, SignatureProblem> {
    if trusted.is_empty() {
        return Ok(None);
    }
    let signature = signature.ok_or(SignatureProblem::Missing)?;
    let signature = decode(signature).ok_or(SignatureProblem::Unreadable)?;
    let message = signed_message(name, sha256_hex);
    trusted
        .iter()
        // Strict: refuses the malleable and small-order forms that plain
        // `verify` lets through.
        .find(|key| key.0.verify_strict(&message, &signature).is_ok())
        .map(|key| Some(key.id()))
        .ok_or(SignatureProblem::NotByTrustedKey)
}

/// Whether `signature` is a trusted key's signature over the bytes alone:
/// the scheme before names were bound, which is no longer accepted (the
/// refusal says how to sign again).
pub(crate) fn signs_bytes_only(trusted: &[TrustedKey], bytes: &[u8], signature: &[u8]) -> bool {
    decode(signature).is_some_and(|signature| {
        trusted
            .iter()
            .any(|key| key.0.verify_strict(bytes, &signature).is_ok())
    })
}

/// The signature in the form versions keep it (base64), when it is one.
pub(crate) fn normalized(signature: &[u8]) -> Option<String> {
    decode(signature).map(|s| STANDARD.encode(s.to_bytes()))
}

/// 64 raw bytes, or base64 text of them (surrounding whitespace ignored).
fn decode(signature: &[u8]) -> Option<Signature> {
    let raw: [u8; 64] = match <[u8; 64]>::try_from(signature) {
        Ok(raw) => raw,
        Err(_) => {
            let text = std::str::from_utf8(signature).ok()?.trim();
            STANDARD.decode(text).ok()?.try_into().ok()?
        }
    };
    Some(Signature::from_bytes(&raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(seed: u8) -> PluginSigningKey {
        PluginSigningKey(SigningKey::from_bytes(&[seed; 32]))
    }

    fn hash(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn the_signed_message_names_scheme_plugin_and_hash() {
        assert_eq!(
            signed_message("aaas", "ab12"),
            b"rescind-plugin-v1\naaas\nab12".to_vec()
        );
    }

    #[test]
    fn signatures_table() {
        let bytes = b"\0asm component bytes".to_vec();
        let digest = hash(&bytes);
        let good = signer(1).sign("aaas", &bytes);
        let raw = STANDARD.decode(&good).unwrap();
        let for_webhook = signer(1).sign("webhook", &bytes);
        let by_other = signer(2).sign("aaas", &bytes);
        let mut altered = bytes.clone();
        altered[5] ^= 1;
        let bytes_only = STANDARD.encode(signer(1).0.sign(&bytes).to_bytes());
        let padded = format!("  {good}\n");
        let keys = [signer(1).public_key(), signer(3).public_key()];
        let key_id = Some(signer(1).public_key().id());
        for (what, keys, name, digest, signature, expected) in [
            (
                "no keys, unsigned",
                &[][..],
                "aaas",
                &digest,
                None,
                Ok(None),
            ),
            (
                "no keys, signed",
                &[][..],
                "aaas",
                &digest,
                Some(good.as_bytes()),
                Ok(None),
            ),
            (
                "raw signature",
                &keys[..],
                "aaas",
                &digest,
                Some(&raw[..]),
                Ok(key_id.clone()),
            ),
            (
                "base64 signature",
                &keys[..],
                "aaas",
                &digest,
                Some(padded.as_bytes()),
                Ok(key_id.clone()),
            ),
            (
                "missing",
                &keys[..],
                "aaas",
                &digest,
                None,
                Err(SignatureProblem::Missing),
            ),
            (
                "unreadable",
                &keys[..],
                "aaas",
                &digest,
                Some(&b"not a signature"[..]),
                Err(SignatureProblem::Unreadable),
            ),
            (
                "wrong key",
                &keys[..],
                "aaas",
                &digest,
                Some(by_other.as_bytes()),
                Err(SignatureProblem::NotByTrustedKey),
            ),
            (
                "signed for another name",
                &keys[..],
                "aaas",
                &digest,
                Some(for_webhook.as_bytes()),
                Err(SignatureProblem::NotByTrustedKey),
            ),
            (
                "altered byte",
                &keys[..],
                "aaas",
                &hash(&altered),
                Some(good.as_bytes()),
                Err(SignatureProblem::NotByTrustedKey),
            ),
            (
                "over the bytes alone",
                &keys[..],
                "aaas",
                &digest,
                Some(bytes_only.as_bytes()),
                Err(SignatureProblem::NotByTrustedKey),
            ),
        ] {
            assert_eq!(verify(keys, name, digest, signature), expected, "{what}");
        }
        assert!(signs_bytes_only(&keys, &bytes, bytes_only.as_bytes()));
        assert!(!signs_bytes_only(&keys, &bytes, good.as_bytes()));
        assert_eq!(normalized(&raw), Some(good.clone()));
        assert_eq!(normalized(padded.as_bytes()), Some(good));
        assert_eq!(normalized(b"nope"), None);
    }

    #[test]
    fn keys_parse_from_base64_and_hex() {
        let key = signer(9).0.verifying_key();
        let b64 = STANDARD.encode(key.as_bytes());
        let hex = hex::encode(key.as_bytes());
        assert_eq!(TrustedKey::parse(&b64).unwrap(), TrustedKey(key));
        assert_eq!(
            TrustedKey::parse(&format!(" {hex} ")).unwrap(),
            TrustedKey(key)
        );
        assert_eq!(TrustedKey::parse(&b64).unwrap().id(), b64);
        assert!(TrustedKey::parse("c2hvcnQ=").unwrap_err().contains("has 5"));
        assert!(TrustedKey::parse("!!").is_err());
    }

    #[test]
    fn signing_keys_round_trip_through_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let key = PluginSigningKey::generate();
        key.write_new(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let read = PluginSigningKey::read(&path).unwrap();
        assert_eq!(read.public_key(), key.public_key());
        assert!(key.write_new(&path).is_err(), "never overwritten");
        assert!(!format!("{key:?}").contains(&hex::encode(key.0.to_bytes())));
        assert!(
            PluginSigningKey::parse("abcd")
                .unwrap_err()
                .contains("64 hex digits")
        );
    }
}
