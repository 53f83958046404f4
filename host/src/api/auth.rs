//! Bearer-token authentication. Tokens are never stored: the store keeps a
//! SHA-256 of each, and the first admin token comes from the environment
//! (`RESCIND_ADMIN_TOKEN`) or the config file and lives only in memory as a
//! digest.

use std::collections::HashMap;
use std::sync::RwLock;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::error::AppError;
use super::extract::Caller;
use crate::store::{ApiKey, Role, Store};

/// Authenticates bearer tokens.
#[derive(Debug, Default)]
pub struct Auth {
    admin_token_sha256: Option<String>,
    /// Keys already looked up. Keys are never deleted through the API, so a
    /// positive answer stays true; unknown tokens are not cached (so a
    /// flood of bad tokens cannot grow it).
    known: RwLock<HashMap<String, Caller>>,
}

/// Hex SHA-256 of a token.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token: `rsk_` and 64 hex digits (256 bits).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("rsk_{}", hex::encode(bytes))
}

impl Auth {
    /// Authentication with an optional bootstrap admin token.
    pub fn new(admin_token: Option<&str>) -> Self {
        Auth {
            admin_token_sha256: admin_token.filter(|t| !t.is_empty()).map(token_digest),
            known: RwLock::default(),
        }
    }

    /// The caller a token belongs to, if any.
    pub async fn authenticate(
        &self,
        store: &Store,
        token: &str,
    ) -> Result<Option<Caller>, AppError> {
        let digest = token_digest(token);
        if self.admin_token_sha256.as_deref() == Some(digest.as_str()) {
            return Ok(Some(Caller {
                role: Role::Admin,
                customer_number: None,
                key_id: digest,
            }));
        }
        if let Some(caller) = self
            .known
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&digest)
        {
            return Ok(Some(caller.clone()));
        }
        let Some(ApiKey {
            role,
            customer_number,
            ..
        }) = store.api_key(&digest).await?
        else {
            return Ok(None);
        };
        let caller = Caller {
            role,
            customer_number,
            key_id: digest.clone(),
        };
        self.known
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(digest, caller.clone());
        Ok(Some(caller))
    }
}
