//! API keys, stored as SHA-256 digests of their tokens.

use super::db::{StoreRow, on};
use super::{ApiKey, Role, Store, StoreError};

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
        tx.commit().await?;
        Ok(())
    }

    /// The key whose token has this digest, read from the database on
    /// every call (revocation must be seen at once; see `api::auth`).
    pub async fn api_key_by_digest(
        &self,
        token_sha256: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        on!(&self.reader, |pool| sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE token_sha256 = $1"
        ))
        .bind(token_sha256)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(api_key)
        .transpose())
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
        tx.commit().await?;
        Ok(Some(key))
    }

    /// Records that a key was used at `now_ms`, unless its last use on
    /// record is less than `interval_ms` before: the row is written at most
    /// once per interval, whichever process or replica sees the key first.
    /// Answers whether it wrote.
    pub async fn touch_api_key(
        &self,
        id: &str,
        now_ms: i64,
        interval_ms: i64,
    ) -> Result<bool, StoreError> {
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
