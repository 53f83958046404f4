//! API keys, stored as SHA-256 digests of their tokens.
//!
//! **Where a request's key is read.** On PostgreSQL, from the database on
//! every request: other replicas create and revoke keys, and nothing tells
//! this one. On SQLite the database belongs to this process alone (the data
//! directory's lock refuses a second host and `rescind keys create` while
//! one runs), so every key write is one of ours: the store keeps the whole
//! key table in memory ([`KeyTable`]), read once, and drops it whenever a
//! key is created or revoked, before that write answers. A request after a
//! revocation reads the table again, without the key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use super::db::{StoreRow, on};
use super::{ApiKey, Role, Store, StoreError};

/// SQLite: every API key by its token's digest, as the database held them
/// after this process's last key write; empty until a request needs it and
/// after every key write. Its size is the key table's, which only admins
/// grow.
#[derive(Default)]
pub(super) struct KeyTable {
    state: Mutex<KeyTableState>,
}

#[derive(Default)]
struct KeyTableState {
    /// Moved on by every key write: a table read before it is used for the
    /// request that read it, never kept.
    generation: u64,
    keys: Option<Arc<Keys>>,
}

/// The keys as read, found by their token's digest or their id.
struct Keys {
    entries: Vec<KeyEntry>,
    by_digest: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
}

impl Keys {
    fn new(keys: Vec<ApiKey>) -> Keys {
        let entries: Vec<KeyEntry> = keys
            .into_iter()
            .map(|key| KeyEntry {
                last_used_at_ms: AtomicI64::new(key.last_used_at_ms.unwrap_or(i64::MIN)),
                key,
            })
            .collect();
        let index = |field: fn(&ApiKey) -> &String| {
            entries
                .iter()
                .enumerate()
                .map(|(i, entry)| (field(&entry.key).clone(), i))
                .collect()
        };
        Keys {
            by_digest: index(|key| &key.token_sha256),
            by_id: index(|key| &key.id),
            entries,
        }
    }

    fn by_digest(&self, token_sha256: &str) -> Option<&KeyEntry> {
        self.by_digest.get(token_sha256).map(|&i| &self.entries[i])
    }
}

struct KeyEntry {
    key: ApiKey,
    /// The key's last use as read, or as a request last took the turn to
    /// write it (Unix milliseconds, `i64::MIN` for never), so that a kept
    /// key is not written as used on every request once its stored time is
    /// stale.
    last_used_at_ms: AtomicI64,
}

impl std::fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("KeyTable")
            .field("generation", &state.generation)
            .field("keys", &state.keys.as_ref().map(|keys| keys.entries.len()))
            .finish()
    }
}

impl KeyTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, KeyTableState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The table's generation and the table, if one is kept.
    fn current(&self) -> (u64, Option<Arc<Keys>>) {
        let state = self.lock();
        (state.generation, state.keys.clone())
    }

    /// Keeps `keys`, read after [`KeyTable::current`] answered
    /// `generation`, unless a key write came since; answers whether it did.
    fn keep(&self, generation: u64, keys: &Arc<Keys>) -> bool {
        let mut state = self.lock();
        let current = state.generation == generation;
        if current {
            state.keys = Some(Arc::clone(keys));
        }
        current
    }

    /// Forgets the table: called after every key write, before it answers.
    fn forget(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.keys = None;
    }

    /// Takes the turn to record `id`'s use at `now_ms`: moves the kept last
    /// use on to `now_ms` and answers true, unless it is less than
    /// `interval_ms` old (another request took the turn, or the use is
    /// recorded), then false. True when no table is kept or it has no such
    /// key: the database's own condition decides.
    fn claim_use(&self, id: &str, now_ms: i64, interval_ms: i64) -> bool {
        let state = self.lock();
        let Some(entry) = state
            .keys
            .as_ref()
            .and_then(|keys| keys.by_id.get(id).map(|&i| &keys.entries[i]))
        else {
            return true;
        };
        // The table's lock is held: no other request takes a turn meanwhile.
        let kept = entry.last_used_at_ms.load(Ordering::Relaxed);
        if kept != i64::MIN && now_ms.saturating_sub(kept) < interval_ms {
            return false;
        }
        entry.last_used_at_ms.store(now_ms, Ordering::Relaxed);
        true
    }
}

impl KeyEntry {
    fn key(&self) -> ApiKey {
        let last_used = self.last_used_at_ms.load(Ordering::Relaxed);
        ApiKey {
            last_used_at_ms: (last_used != i64::MIN).then_some(last_used),
            ..self.key.clone()
        }
    }
}

const COLUMNS: &str = "id, token_sha256, token_prefix, name, role, customer_number, created_by,
     created_at, last_used_at, expires_at";

fn api_key(row: &impl StoreRow) -> Result<ApiKey, StoreError> {
    let role = row.text("role")?;
    Ok(ApiKey {
        id: row.text("id")?,
        token_sha256: row.text("token_sha256")?,
        token_prefix: row.opt_text("token_prefix")?,
        name: row.text("name")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
        customer_number: row.opt_text("customer_number")?,
        created_by: row.text("created_by")?,
        created_at_ms: row.int("created_at")?,
        last_used_at_ms: row.opt_int("last_used_at")?,
        expires_at_ms: row.opt_int("expires_at")?,
    })
}

impl Store {
    /// Stores a new key.
    pub async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        on!(&mut tx, |tx| sqlx::query(
            "INSERT INTO api_keys (id, token_sha256, token_prefix, name, role, customer_number,
                 created_by, created_at, last_used_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&key.id)
        .bind(&key.token_sha256)
        .bind(&key.token_prefix)
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(&key.customer_number)
        .bind(&key.created_by)
        .bind(key.created_at_ms)
        .bind(key.last_used_at_ms)
        .bind(key.expires_at_ms)
        .execute(&mut **tx)
        .await
        .map(drop)?);
        let committed = tx.commit().await;
        self.keys.forget();
        Ok(committed?)
    }

    /// The key whose token has this digest, as the database holds it now:
    /// on PostgreSQL read on every call, on SQLite from the [`KeyTable`]
    /// (see the module's documentation).
    pub async fn api_key_by_digest(
        &self,
        token_sha256: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        if self.reader.is_postgres() {
            return on!(&self.reader, |pool| sqlx::query(&format!(
                "SELECT {COLUMNS} FROM api_keys WHERE token_sha256 = $1"
            ))
            .bind(token_sha256)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(api_key)
            .transpose());
        }
        let (generation, keys) = self.keys.current();
        let keys = match keys {
            Some(keys) => keys,
            None => {
                // Read after the generation was taken: a key write that
                // commits meanwhile moves it on, and this table is not kept.
                let keys = Arc::new(Keys::new(self.api_keys().await?));
                self.keys.keep(generation, &keys);
                keys
            }
        };
        Ok(keys.by_digest(token_sha256).map(KeyEntry::key))
    }

    /// Every key, oldest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        on!(&self.reader, |pool| sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id"
        ))
        .fetch_all(pool)
        .await?
        .iter()
        .map(api_key)
        .collect())
    }

    /// Deletes (revokes) a key; answers it, or `None` when there is no key
    /// with this id.
    pub async fn delete_api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let mut tx = self.write().await?;
        let key = on!(&mut tx, |tx| sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(api_key)
        .transpose()?);
        let Some(key) = key else {
            return Ok(None);
        };
        on!(&mut tx, |tx| sqlx::query(
            "DELETE FROM api_keys WHERE id = $1"
        )
        .bind(id)
        .execute(&mut **tx)
        .await
        .map(drop)?);
        let committed = tx.commit().await;
        self.keys.forget();
        committed?;
        Ok(Some(key))
    }

    /// Records that a key was used at `now_ms`, unless its last use on
    /// record is less than `interval_ms` before: the row is written at most
    /// once per interval, whichever process or replica sees the key first.
    /// On SQLite, of the requests that saw the same stale last use only the
    /// first writes (the kept table's turn); if its write fails, the next
    /// try comes an interval later. Answers whether it wrote.
    pub async fn touch_api_key(
        &self,
        id: &str,
        now_ms: i64,
        interval_ms: i64,
    ) -> Result<bool, StoreError> {
        if !self.keys.claim_use(id, now_ms, interval_ms) {
            return Ok(false);
        }
        // One conditional statement: right without the store-wide lock.
        let mut tx = self.write_rows().await?;
        let written = on!(&mut tx, |tx| sqlx::query(
            "UPDATE api_keys SET last_used_at = $1
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(now_ms)
        .bind(id)
        .bind(now_ms.saturating_sub(interval_ms))
        .execute(&mut **tx)
        .await?
        .rows_affected());
        tx.commit().await?;
        Ok(written > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(digests: &[&str]) -> Arc<Keys> {
        let key = |digest: &str| ApiKey {
            id: format!("id-{digest}"),
            token_sha256: digest.to_owned(),
            token_prefix: None,
            name: "k".to_owned(),
            role: Role::Service,
            customer_number: None,
            created_by: "admin token".to_owned(),
            created_at_ms: 0,
            last_used_at_ms: None,
            expires_at_ms: None,
        };
        Arc::new(Keys::new(digests.iter().map(|d| key(d)).collect()))
    }

    #[test]
    fn a_table_read_before_a_key_write_is_not_kept() {
        let keys = KeyTable::default();
        let (generation, kept) = keys.current();
        assert!(kept.is_none(), "nothing is kept before a request reads");
        // A revocation commits while the table is read.
        keys.forget();
        assert!(!keys.keep(generation, &table(&["revoked"])));
        assert!(keys.current().1.is_none(), "the stale table is not kept");
        // Read again after it: kept.
        let (generation, _) = keys.current();
        assert!(keys.keep(generation, &table(&["live"])));
        let kept = keys.current().1.expect("kept");
        assert!(kept.by_digest("live").is_some());
        assert!(kept.by_digest("revoked").is_none());
        // The next key write forgets it.
        keys.forget();
        assert!(keys.current().1.is_none());
    }

    #[test]
    fn one_request_an_interval_takes_the_turn_to_record_a_use() {
        let keys = KeyTable::default();
        assert!(
            keys.claim_use("id-a", 5_000, 60_000),
            "no table: the database decides"
        );
        let (generation, _) = keys.current();
        assert!(keys.keep(generation, &table(&["a", "b"])));
        assert!(
            keys.claim_use("id-a", 5_000, 60_000),
            "never used: the first writes"
        );
        assert!(
            !keys.claim_use("id-a", 5_000, 60_000),
            "the same stale time: one writes"
        );
        assert!(
            !keys.claim_use("id-a", 64_999, 60_000),
            "within the interval"
        );
        assert!(keys.claim_use("id-a", 65_000, 60_000), "an interval later");
        assert!(
            keys.claim_use("id-b", 65_000, 60_000),
            "each key its own turn"
        );
        assert!(keys.claim_use("id-unknown", 65_000, 60_000));
        let kept = keys.current().1.expect("kept");
        let last_used = |digest| kept.by_digest(digest).unwrap().key().last_used_at_ms;
        assert_eq!(last_used("a"), Some(65_000));
        assert_eq!(last_used("b"), Some(65_000));
    }
}
