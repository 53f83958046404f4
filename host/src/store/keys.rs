//! API keys, stored as SHA-256 digests of their tokens.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{ApiKey, Role, Store, StoreError};

const COLUMNS: &str = "id, token_sha256, token_prefix, name, role, customer_number, created_by,
     created_at, last_used_at, expires_at";

fn api_key(row: &SqliteRow) -> Result<ApiKey, StoreError> {
    let role: String = row.get("role");
    Ok(ApiKey {
        id: row.get("id"),
        token_sha256: row.get("token_sha256"),
        token_prefix: row.get("token_prefix"),
        name: row.get("name"),
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
        customer_number: row.get("customer_number"),
        created_by: row.get("created_by"),
        created_at_ms: row.get("created_at"),
        last_used_at_ms: row.get("last_used_at"),
        expires_at_ms: row.get("expires_at"),
    })
}

impl Store {
    /// Stores a new key.
    pub async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, token_sha256, token_prefix, name, role, customer_number,
                 created_by, created_at, last_used_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The key whose token has this digest, read from the database on
    /// every call (revocation must be seen at once; see `api::auth`).
    pub async fn api_key_by_digest(
        &self,
        token_sha256: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE token_sha256 = ?"
        ))
        .bind(token_sha256)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(api_key).transpose()
    }

    /// Every key, oldest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(api_key).collect()
    }

    /// Deletes (revokes) a key; answers it, or `None` when there is no key
    /// with this id.
    pub async fn delete_api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(key) = row.as_ref().map(api_key).transpose()? else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM api_keys WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
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
        let mut tx = self.write().await?;
        let written = sqlx::query(
            "UPDATE api_keys SET last_used_at = ?
             WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)",
        )
        .bind(now_ms)
        .bind(id)
        .bind(now_ms.saturating_sub(interval_ms))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(written > 0)
    }
}
