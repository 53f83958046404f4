//! Bearer-token authentication. Tokens are never stored: the store keeps a
//! SHA-256 of each key's token, and the bootstrap admin token
//! (`RESCIND_ADMIN_TOKEN`) lives only in memory, as a digest.
//!
//! **Revocation is seen at once.** Deleting a key refuses the very next
//! request with it, on this process and on any other that shares the
//! database. On PostgreSQL every request reads its key from the database
//! (other replicas write keys); on SQLite, whose database this process
//! alone opens, the store keeps the key table in memory and drops it with
//! every key write before the write answers (see `store::keys`).
//!
//! **Last use.** A key's `lastUsedAt` is written at most once per
//! [`LAST_USED_INTERVAL`], not on every request: the write happens only when
//! the stored value is older than that, and the update itself is
//! conditional, so replicas racing on one key write it once.

use std::sync::Arc;
use std::time::Duration;

use super::error::AppError;
use super::extract::Caller;
use crate::keys::token_digest;
use crate::store::{AuditActor, Role, Store, now_ms};

/// How stale a key's recorded last use may get before a request with it
/// writes the new time.
pub const LAST_USED_INTERVAL: Duration = Duration::from_secs(60);

/// The clock authentication reads (Unix milliseconds); the store's clock
/// unless a test sets another.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Authenticates bearer tokens.
pub struct Auth {
    admin_token_sha256: Option<String>,
    clock: Clock,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("admin_token", &self.admin_token_sha256.is_some())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Authentication with an optional bootstrap admin token. Its length is
    /// checked where the service starts ([`crate::keys::check_admin_token`]).
    pub fn new(admin_token: Option<&str>) -> Self {
        Auth {
            admin_token_sha256: admin_token.filter(|t| !t.is_empty()).map(token_digest),
            clock: Arc::new(now_ms),
        }
    }

    /// The same, reading time from `clock` (expiry and last use).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The caller a token belongs to; `None` for an unknown, revoked or
    /// expired one.
    pub async fn authenticate(
        &self,
        store: &Store,
        token: &str,
    ) -> Result<Option<Caller>, AppError> {
        self.authenticate_digest(store, &token_digest(token)).await
    }

    /// The caller whose token has this digest (hex SHA-256, see
    /// [`token_digest`]); `None` for an unknown, revoked or expired one. The
    /// console keeps a signed-in operator's digest, never the token, and
    /// checks it again on every request, as the API checks a token.
    pub async fn authenticate_digest(
        &self,
        store: &Store,
        digest: &str,
    ) -> Result<Option<Caller>, AppError> {
        let digest = digest.to_owned();
        if self.admin_token_sha256.as_deref() == Some(digest.as_str()) {
            return Ok(Some(Caller {
                role: Role::Admin,
                customer_number: None,
                idempotency_scope: digest,
                audit_actor: AuditActor::AdminToken,
            }));
        }
        let Some(key) = store.api_key_by_digest(&digest).await? else {
            return Ok(None);
        };
        let now = (self.clock)();
        if key.is_expired(now) {
            return Ok(None);
        }
        let interval = i64::try_from(LAST_USED_INTERVAL.as_millis()).unwrap_or(i64::MAX);
        if key
            .last_used_at_ms
            .is_none_or(|last| now.saturating_sub(last) >= interval)
        {
            // Bookkeeping: a database that cannot be written just now must
            // not refuse a read that needs no write.
            if let Err(error) = store.touch_api_key(&key.id, now, interval).await {
                tracing::warn!(%error, key = %key.id, "cannot record the key's last use");
            }
        }
        Ok(Some(Caller {
            role: key.role,
            customer_number: key.customer_number,
            idempotency_scope: digest,
            audit_actor: AuditActor::ApiKey {
                id: key.id,
                name: key.name,
            },
        }))
    }
}
