//! API keys, stored as SHA-256 digests of their tokens.

use sqlx::Row;

use super::{ApiKey, Role, Store, StoreError, now_ms};

impl Store {
    /// Stores a key (its token's digest); replaces a key with the same digest.
    pub async fn put_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO api_keys (token_sha256, role, customer_number, created_at)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (token_sha256) DO UPDATE SET role = excluded.role,
                customer_number = excluded.customer_number",
        )
        .bind(&key.token_sha256)
        .bind(key.role.as_str())
        .bind(&key.customer_number)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The key whose token has this digest.
    pub async fn api_key(&self, token_sha256: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query("SELECT role, customer_number FROM api_keys WHERE token_sha256 = ?")
            .bind(token_sha256)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|row| {
            let role: String = row.get("role");
            Ok(ApiKey {
                token_sha256: token_sha256.to_owned(),
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
                customer_number: row.get("customer_number"),
            })
        })
        .transpose()
    }
}
