//! The audit log of admin writes: appended to, read newest first.

use super::db::{StoreRow, on};
use super::{AdminWrite, AuditActor, AuditLogEntry, Store, StoreError, now_ms};

fn entry(row: &impl StoreRow) -> Result<AuditLogEntry, StoreError> {
    let actor = row.text("actor")?;
    let key_id = row.opt_text("key_id")?;
    let key_name = row.opt_text("key_name")?;
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
    Ok(AuditLogEntry {
        id: row.int("id")?,
        at_ms: row.int("at")?,
        write: AdminWrite {
            actor,
            method: row.text("method")?,
            path: row.text("path")?,
            status: row.count("status")?,
            summary: row.text("summary")?,
            request_id: row.opt_text("request_id")?,
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
        let id: i64 = on!(&mut tx, |tx| sqlx::query_scalar(
            "INSERT INTO audit_log (at, actor, key_id, key_name, method, path, status, summary,
                 request_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
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
        .fetch_one(&mut **tx)
        .await?);
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
        on!(&self.reader, |pool| sqlx::query(
            "SELECT id, at, actor, key_id, key_name, method, path, status, summary, request_id
             FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
        .iter()
        .map(entry)
        .collect())
    }
}
