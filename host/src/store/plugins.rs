//! The plugin registry's tables on PostgreSQL: versions with their bytes,
//! the active version of each plugin, the registry's audit log, and the
//! notification that tells every replica an active version changed.
//!
//! Only the PostgreSQL store has them ([`Store::plugin_tables`]): on SQLite
//! there is one host, and its registry keeps these in the data directory.
//! The registry's adapter (`plugins::registry::DatabaseStore`) is the only
//! caller; the rules (what may be activated, signatures, guards) stay in
//! the registry, these statements only persist.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgRow};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::db::{Db, StoreRow};
use super::{Store, StoreError, now_ms};
use crate::plugins::registry::{AuditAction, AuditEntry, PluginVersionInfo};

/// The PostgreSQL notification channel of changes to the plugin registry
/// (a version stored, an active version switched, an audit entry added).
const PLUGINS_CHANNEL: &str = "rescind_plugins";

/// The advisory lock key that serialises uploads across replicas, so that
/// two different versions uploaded at once get different sequence numbers
/// ("rplugins" in ASCII; any key the other locks do not use).
const UPLOAD_LOCK: i64 = i64::from_be_bytes(*b"rplugins");

const VERSION_COLUMNS: &str = "name, version, sequence, uploaded_by, uploaded_at, world, wit, sdk,
     size, compile_millis, signed_by, signature, warnings";

/// The plugin registry's tables in the shared PostgreSQL database. Cheap to
/// clone: clones share the store's pool.
#[derive(Debug, Clone)]
pub struct PluginTables {
    pool: PgPool,
}

impl Store {
    /// The plugin registry's tables, when the store is on PostgreSQL (and
    /// so shared by replicas); `None` on SQLite.
    pub fn plugin_tables(&self) -> Option<PluginTables> {
        match &self.writer {
            Db::Postgres(pool) => Some(PluginTables { pool: pool.clone() }),
            Db::Sqlite(_) => None,
        }
    }

    /// Wakes `wakeup` (one permit, [`tokio::sync::Notify::notify_one`])
    /// whenever any replica changes the plugin registry's tables: a
    /// `LISTEN` on `rescind_plugins`, stopped by [`Store::close`]. A hint
    /// only: a notification lost while the listener reconnects is made up
    /// for by a wake-up once it is back, and the registry checks the tables
    /// periodically anyway. Nothing on SQLite.
    pub fn wake_on_plugin_changes(&self, wakeup: Arc<tokio::sync::Notify>) {
        let Db::Postgres(pool) = &self.writer else {
            return;
        };
        let pool = pool.clone();
        let task = tokio::spawn(async move {
            loop {
                match listen_for_plugin_changes(&pool, &wakeup).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "listening for plugin changes failed; trying again");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        self.background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }
}

/// Wakes `wakeup` on every notification until the pool closes.
async fn listen_for_plugin_changes(
    pool: &PgPool,
    wakeup: &tokio::sync::Notify,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(PLUGINS_CHANNEL).await?;
    loop {
        // `None`: the connection was lost and made again; changes made
        // meanwhile were not announced, so look now.
        let _ = listener.try_recv().await?;
        wakeup.notify_one();
        if pool.is_closed() {
            return Ok(());
        }
    }
}

impl PluginTables {
    /// Keeps a version (bytes and metadata) and answers it as stored. A new
    /// version gets the next sequence number of its plugin, whatever
    /// `info` says: another replica may have stored one meanwhile. Bytes
    /// already stored keep their metadata, except that a signature `info`
    /// carries replaces the stored one.
    pub async fn put_version(
        &self,
        info: &PluginVersionInfo,
        bytes: &[u8],
    ) -> Result<PluginVersionInfo, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(UPLOAD_LOCK)
            .execute(&mut *tx)
            .await?;
        let warnings = super::to_json(&info.warnings);
        let row = sqlx::query(&format!(
            "INSERT INTO plugin_versions ({VERSION_COLUMNS}, bytes)
             SELECT $1, $2, COALESCE(MAX(sequence), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                 $12, $13
             FROM plugin_versions WHERE name = $1
             ON CONFLICT (name, version) DO UPDATE SET
                 signature = COALESCE(EXCLUDED.signature, plugin_versions.signature),
                 signed_by = CASE WHEN EXCLUDED.signature IS NULL
                     THEN plugin_versions.signed_by ELSE EXCLUDED.signed_by END
             RETURNING {VERSION_COLUMNS}"
        ))
        .bind(&info.name)
        .bind(&info.version)
        .bind(&info.uploaded_by)
        .bind(rfc3339(info.uploaded_at)?)
        .bind(&info.world)
        .bind(&info.wit)
        .bind(&info.sdk)
        .bind(count(info.size)?)
        .bind(count(
            u64::try_from(info.compile_time.as_millis()).unwrap_or(u64::MAX),
        )?)
        .bind(&info.signed_by)
        .bind(&info.signature)
        .bind(warnings)
        .bind(bytes)
        .fetch_one(&mut *tx)
        .await?;
        notify(&mut tx).await?;
        tx.commit().await?;
        version_info(&row)
    }

    /// Every stored version's metadata (not its bytes), by plugin and
    /// sequence.
    pub async fn versions(&self) -> Result<Vec<PluginVersionInfo>, StoreError> {
        sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions ORDER BY name, sequence"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(version_info)
        .collect()
    }

    /// A stored version's bytes, as stored (the caller checks them against
    /// the version's hash); `None` when there is no such version.
    pub async fn bytes(&self, name: &str, version: &str) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query("SELECT bytes FROM plugin_versions WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.bytes("bytes"))
            .transpose()
    }

    /// Makes `version` (a stored version) the active version of `name` and
    /// tells every replica (`NOTIFY rescind_plugins`) when it commits.
    pub async fn set_active(&self, name: &str, version: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO plugin_active (name, version, changed_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version,
                 changed_at = EXCLUDED.changed_at",
        )
        .bind(name)
        .bind(version)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        notify(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The active version of each plugin that has one.
    pub async fn active_versions(&self) -> Result<BTreeMap<String, String>, StoreError> {
        sqlx::query("SELECT name, version FROM plugin_active")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok((row.text("name")?, row.text("version")?)))
            .collect()
    }

    /// Appends one entry to the registry's audit log.
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO plugin_audit (at, plugin, action, from_version, to_version, by_whom,
                 reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(rfc3339(entry.at)?)
        .bind(&entry.plugin)
        .bind(action_name(entry.action))
        .bind(&entry.from)
        .bind(&entry.to)
        .bind(&entry.by)
        .bind(&entry.reason)
        .execute(&mut *tx)
        .await?;
        notify(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The latest `limit` entries of the audit log, oldest first.
    pub async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut entries = sqlx::query(
            "SELECT at, plugin, action, from_version, to_version, by_whom, reason
             FROM plugin_audit ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(audit_entry)
        .collect::<Result<Vec<_>, _>>()?;
        entries.reverse();
        Ok(entries)
    }
}

/// Tells every replica, when `tx` commits, that the registry changed.
async fn notify(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(PLUGINS_CHANNEL)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn version_info(row: &PgRow) -> Result<PluginVersionInfo, StoreError> {
    Ok(PluginVersionInfo {
        name: row.text("name")?,
        version: row.text("version")?,
        sequence: row.count("sequence")?,
        uploaded_by: row.text("uploaded_by")?,
        uploaded_at: parse_time("uploaded_at", &row.text("uploaded_at")?)?,
        world: row.text("world")?,
        wit: row.text("wit")?,
        sdk: row.opt_text("sdk")?,
        size: row.count("size")?,
        compile_time: Duration::from_millis(row.count("compile_millis")?),
        signed_by: row.opt_text("signed_by")?,
        signature: row.opt_text("signature")?,
        warnings: super::from_json("plugin version warnings", &row.text("warnings")?)?,
    })
}

fn audit_entry(row: &PgRow) -> Result<AuditEntry, StoreError> {
    let action = row.text("action")?;
    Ok(AuditEntry {
        at: parse_time("at", &row.text("at")?)?,
        plugin: row.text("plugin")?,
        action: serde_json::from_value(serde_json::Value::String(action.clone()))
            .map_err(|_| StoreError::Corrupt(format!("unknown plugin audit action {action:?}")))?,
        from: row.opt_text("from_version")?,
        to: row.text("to_version")?,
        by: row.text("by_whom")?,
        reason: row.opt_text("reason")?,
    })
}

/// The audit action's name as the API spells it (`rolled-back`, …).
fn action_name(action: AuditAction) -> String {
    match serde_json::to_value(action) {
        Ok(serde_json::Value::String(name)) => name,
        // A unit variant always serialises to its name.
        other => unreachable!("audit action serialised as {other:?}"),
    }
}

fn rfc3339(at: OffsetDateTime) -> Result<String, StoreError> {
    at.format(&Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("time {at} cannot be written: {e}")))
}

fn parse_time(column: &str, text: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("column {column} holds {text:?}: {e}")))
}

fn count(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{value} is out of range")))
}
