//! The audit log of admin writes: appended to, read newest first.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{AdminWrite, AuditActor, AuditLogEntry, Store, StoreError, now_ms};

fn entry(row: &SqliteRow) -> Result<AuditLogEntry, StoreError> {
    let actor: String = row.get("actor");
    let key_id: Option<String> = row.get("key_id");
    let key_name: Option<String> = row.get("key_name");
    let actor = match (actor.as_str(), key_id, key_name) {
        ("admin-token", _, _) => AuditActor::AdminToken,
        ("command-line", _, _) => AuditActor::CommandLine,
        ("plugins-folder", _, _) => AuditActor::PluginsFolder,
        ("api-key", Some(id), Some(name)) => AuditActor::ApiKey { id, name },
        (other, _, _) => {
            return Err(StoreError::Corrupt(format!(
                "audit entry with actor {other:?} and no key"
            )));
        }
    };
    let status: i64 = row.get("status");
    Ok(AuditLogEntry {
        id: row.get("id"),
        at_ms: row.get("at"),
        write: AdminWrite {
            actor,
            method: row.get("method"),
            path: row.get("path"),
            status: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt(format!("audit status {status}")))?,
            summary: row.get("summary"),
            request_id: row.get("request_id"),
        },
    })
}

impl Store {
    /// Appends an admin write to the audit log, stamped with the store's
    /// clock; answers its id.
    pub async fn append_audit(&self, write: &AdminWrite) -> Result<i64, StoreError> {
        let (actor, key_id, key_name) = match &write.actor {
            AuditActor::AdminToken => ("admin-token", None, None),
            AuditActor::ApiKey { id, name } => ("api-key", Some(id.as_str()), Some(name.as_str())),
            AuditActor::CommandLine => ("command-line", None, None),
            AuditActor::PluginsFolder => ("plugins-folder", None, None),
        };
        let mut tx = self.write().await?;
        let id = sqlx::query(
            "INSERT INTO audit_log (at, actor, key_id, key_name, method, path, status, summary,
                 request_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(now_ms())
        .bind(actor)
        .bind(key_id)
        .bind(key_name)
        .bind(&write.method)
        .bind(&write.path)
        .bind(i64::from(write.status))
        .bind(&write.summary)
        .bind(&write.request_id)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        tx.commit().await?;
        Ok(id)
    }

    /// Up to `limit` entries, newest first, each older than the entry
    /// `before` when it is given (the next page starts before the last
    /// entry of this one).
    pub async fn audit_log(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditLogEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, key_id, key_name, method, path, status, summary, request_id
             FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(entry).collect()
    }
}
