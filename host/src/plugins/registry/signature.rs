//! Detached ed25519 signatures over a component's bytes.
//!
//! When the host trusts at least one public key, every upload must carry a
//! signature by one of them. The signature travels as 64 raw bytes or as
//! their base64 text (an `X-Plugin-Signature` header, a `NAME.wasm.sig` file).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};

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
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| e.to_string())?
        } else {
            STANDARD.decode(text).map_err(|_| {
                "an ed25519 public key is 32 bytes written as base64 or hex".to_owned()
            })?
        };
        let bytes: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            format!(
                "an ed25519 public key is 32 bytes, this one has {}",
                bytes.len()
            )
        })?;
        Self::from_bytes(&bytes)
    }

    /// The key in base64: how it is named in messages and version records.
    pub fn id(&self) -> String {
        STANDARD.encode(self.0.as_bytes())
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignatureProblem {
    Missing,
    Unreadable,
    NotByTrustedKey,
}

/// Checks `signature` over `bytes` against the trusted keys; answers the
/// key that signed. With no trusted keys every upload passes unsigned.
pub(crate) fn verify(
    trusted: &[TrustedKey],
    bytes: &[u8],
    signature: Option<&[u8]>,
) -> Result<Option<String>, SignatureProblem> {
    if trusted.is_empty() {
        return Ok(None);
    }
    let signature = signature.ok_or(SignatureProblem::Missing)?;
    let signature = decode(signature).ok_or(SignatureProblem::Unreadable)?;
    trusted
        .iter()
        // Strict: refuses the malleable and small-order forms that plain
        // `verify` lets through.
        .find(|key| key.0.verify_strict(bytes, &signature).is_ok())
        .map(|key| Some(key.id()))
        .ok_or(SignatureProblem::NotByTrustedKey)
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
    use ed25519_dalek::{Signer, SigningKey};

    fn signer(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn trusted(seed: u8) -> TrustedKey {
        TrustedKey::from_bytes(signer(seed).verifying_key().as_bytes()).unwrap()
    }

    #[test]
    fn signatures_table() {
        let bytes = b"\0asm component bytes".to_vec();
        let good = signer(1).sign(&bytes).to_bytes();
        let by_other = signer(2).sign(&bytes).to_bytes();
        let mut altered = bytes.clone();
        altered[5] ^= 1;
        let base64 = format!("  {}\n", STANDARD.encode(good));
        let keys = [trusted(1), trusted(3)];
        let key_id = Some(trusted(1).id());
        for (what, keys, data, signature, expected) in [
            ("no keys, unsigned", &[][..], &bytes, None, Ok(None)),
            (
                "no keys, signed",
                &[][..],
                &bytes,
                Some(&good[..]),
                Ok(None),
            ),
            (
                "raw signature",
                &keys[..],
                &bytes,
                Some(&good[..]),
                Ok(key_id.clone()),
            ),
            (
                "base64 signature",
                &keys[..],
                &bytes,
                Some(base64.as_bytes()),
                Ok(key_id.clone()),
            ),
            (
                "missing",
                &keys[..],
                &bytes,
                None,
                Err(SignatureProblem::Missing),
            ),
            (
                "unreadable",
                &keys[..],
                &bytes,
                Some(&b"not a signature"[..]),
                Err(SignatureProblem::Unreadable),
            ),
            (
                "wrong key",
                &keys[..],
                &bytes,
                Some(&by_other[..]),
                Err(SignatureProblem::NotByTrustedKey),
            ),
            (
                "altered byte",
                &keys[..],
                &altered,
                Some(&good[..]),
                Err(SignatureProblem::NotByTrustedKey),
            ),
        ] {
            assert_eq!(verify(keys, data, signature), expected, "{what}");
        }
    }

    #[test]
    fn keys_parse_from_base64_and_hex() {
        let key = signer(9).verifying_key();
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
}
