//! `rescind migrate-store`: a stopped host's SQLite store copied into an
//! empty PostgreSQL database, table by table in one transaction, every
//! table's row count checked on both sides before the commit.
//!
//! What is copied is the database as it is: orders with their lines,
//! payments and allocations, cancellations, idempotency records, jobs with
//! their attempts, settings, websites, connections with their secrets
//! (still sealed: the same key opens them), job definitions, API keys
//! (token digests), the audit log, shadow runs and the secrets key's
//! fingerprint. The plugins live in the data directory, not in the
//! database: start the first replica on the same data directory, or copy
//! `plugins/store/` to each replica.

use std::path::{Path, PathBuf};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgConnection, Row};

use super::{SecretsKeySource, Store, StoreError, StoreOptions, lock_data_dir};

/// How a column is read from SQLite and bound for PostgreSQL.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Int,
    Flag,
    Bytes,
}

use Kind::{Bytes, Flag, Int, Text};

/// Every table, parents before children, with its columns.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "orders",
        &[
            ("number", Text),
            ("business_code", Text),
            ("customer_number", Text),
            ("website", Text),
            ("status", Text),
            ("order_date", Text),
            ("currency", Text),
            ("erp_order_number", Text),
            ("approval_state", Text),
            ("tracking", Text),
            ("updated_at", Int),
        ],
    ),
    (
        "order_lines",
        &[
            ("order_number", Text),
            ("line_number", Int),
            ("sku", Text),
            ("quantity", Int),
            ("amount_minor", Int),
            ("tax_minor", Int),
            ("parent_line", Int),
            ("kind", Text),
            ("applies_to", Text),
            ("state", Text),
            ("erp_line_ref", Text),
        ],
    ),
    (
        "payments",
        &[
            ("order_number", Text),
            ("position", Int),
            ("id", Text),
            ("method", Text),
            ("authorized_minor", Int),
            ("deposited_minor", Int),
            ("voided_minor", Int),
            ("refunded_minor", Int),
        ],
    ),
    (
        "allocations",
        &[
            ("order_number", Text),
            ("position", Int),
            ("line_number", Int),
            ("warehouse", Text),
            ("quantity", Int),
            ("kind", Text),
            ("state", Text),
        ],
    ),
    (
        "settings",
        &[
            ("id", Int),
            ("cancellable_statuses", Text),
            ("cancelled_status", Text),
        ],
    ),
    (
        "status_mappings",
        &[
            ("position", Int),
            ("erp_code", Text),
            ("status", Text),
            ("allow_cancellation", Flag),
        ],
    ),
    (
        "websites",
        &[("name", Text), ("allow_cancellation_request", Flag)],
    ),
    (
        "connections",
        &[
            ("name", Text),
            ("base_url", Text),
            ("allowed_hosts", Text),
            ("settings", Text),
            ("updated_at", Int),
            ("allow_private_network", Flag),
            ("ca_certificates", Text),
        ],
    ),
    (
        "connection_secrets",
        &[
            ("connection", Text),
            ("name", Text),
            ("nonce", Bytes),
            ("ciphertext", Bytes),
        ],
    ),
    (
        "secrets_key",
        &[("id", Int), ("fingerprint", Text), ("created_at", Int)],
    ),
    (
        "job_definitions",
        &[
            ("name", Text),
            ("job_type", Text),
            ("connection", Text),
            ("preprocessor", Text),
            ("integration_processor", Text),
            ("post_processor", Text),
            ("parameters", Text),
            ("max_attempts", Int),
            ("initial_backoff_ms", Int),
            ("max_backoff_ms", Int),
            ("enabled", Flag),
            ("updated_at", Int),
            ("applies_to", Text),
        ],
    ),
    (
        "api_keys",
        &[
            ("id", Text),
            ("token_sha256", Text),
            ("token_prefix", Text),
            ("name", Text),
            ("role", Text),
            ("customer_number", Text),
            ("created_by", Text),
            ("created_at", Int),
            ("last_used_at", Int),
            ("expires_at", Int),
        ],
    ),
    (
        "audit_log",
        &[
            ("id", Int),
            ("at", Int),
            ("actor", Text),
            ("key_id", Text),
            ("key_name", Text),
            ("method", Text),
            ("path", Text),
            ("status", Int),
            ("summary", Text),
            ("request_id", Text),
        ],
    ),
    (
        "cancellations",
        &[
            ("id", Text),
            ("order_number", Text),
            ("customer_number", Text),
            ("record", Text),
            ("created_at", Int),
            ("jobs_pruned_succeeded", Int),
            ("jobs_pruned_failed", Int),
        ],
    ),
    (
        "idempotency_keys",
        &[
            ("scope", Text),
            ("key", Text),
            ("request_sha256", Text),
            ("state", Text),
            ("cancellation_id", Text),
            ("expires_at", Int),
            ("created_at", Int),
        ],
    ),
    (
        "jobs",
        &[
            ("id", Text),
            ("definition", Text),
            ("order_number", Text),
            ("cancellation_id", Text),
            ("request_id", Text),
            ("parameters", Text),
            ("state", Text),
            ("attempts", Int),
            ("attempt_base", Int),
            ("max_attempts", Int),
            ("initial_backoff_ms", Int),
            ("max_backoff_ms", Int),
            ("run_at", Int),
            ("lease_owner", Text),
            ("lease_expires_at", Int),
            ("erp_reference", Text),
            ("last_error", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    ),
    (
        "job_attempts",
        &[
            ("job_id", Text),
            ("number", Int),
            ("worker", Text),
            ("started_at", Int),
            ("ended_at", Int),
            ("outcome", Text),
            ("message", Text),
            ("erp_reference", Text),
            ("plugin_version", Text),
            ("log", Text),
            ("exchange", Text),
        ],
    ),
    (
        "shadow_runs",
        &[
            ("plugin", Text),
            ("version", Text),
            ("jobs", Int),
            ("started_at", Int),
            ("started_by", Text),
            ("stopped_at", Int),
        ],
    ),
    (
        "shadow_results",
        &[
            ("plugin", Text),
            ("job_id", Text),
            ("attempt", Int),
            ("active_version", Text),
            ("taken_at", Int),
            ("report", Text),
        ],
    ),
];

/// Why the copy did not happen. Nothing was written to the target.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// The source directory holds no database.
    #[error("no rescind database in {0} (rescind.db is missing)")]
    NoSource(PathBuf),
    /// The target already holds data of a store.
    #[error(
        "the target database is not empty (table {table} has {rows} rows): migrate into an \
         empty database only"
    )]
    TargetNotEmpty {
        /// The first table found with rows.
        table: &'static str,
        /// How many.
        rows: i64,
    },
    /// A table's row count differs after the copy.
    #[error("table {table}: {source_rows} rows in SQLite, {target_rows} in PostgreSQL")]
    CountMismatch {
        /// The table.
        table: &'static str,
        /// Rows in the source.
        source_rows: i64,
        /// Rows in the target.
        target_rows: i64,
    },
    /// Either store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CopyError {
    fn from(e: sqlx::Error) -> Self {
        CopyError::Store(e.into())
    }
}

/// One table's rows, copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    /// The table.
    pub table: &'static str,
    /// Its rows, the same count on both sides.
    pub rows: i64,
}

/// Copies the SQLite store of the stopped host in `from` into the empty
/// PostgreSQL database at `to` (created beforehand; the schema is applied
/// here). The source is opened once as the host would open it first, so
/// that an older data directory is brought up to date (and its key
/// checked) before it is read.
pub async fn copy_sqlite_to_postgres(
    from: &Path,
    secrets_key: SecretsKeySource,
    to: &str,
) -> Result<Vec<CopiedTable>, CopyError> {
    let file = from.join("rescind.db");
    if !file.is_file() {
        return Err(CopyError::NoSource(from.to_owned()));
    }
    let mut options = StoreOptions::new(from);
    options.secrets_key = secrets_key;
    Store::open(&options).await?.close().await;
    // Held until the copy is done: no host may start on the source meanwhile.
    let _lock = lock_data_dir(from)?;
    let source = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(&file).read_only(true))
        .await?;
    let connect = to
        .parse::<PgConnectOptions>()
        .map_err(|e| StoreError::DatabaseUrl(e.to_string()))?;
    let target = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(connect)
        .await?;
    sqlx::migrate!("./migrations/postgres")
        .run(&target)
        .await
        .map_err(StoreError::from)?;
    let mut tx = target.begin().await?;
    for (table, _) in TABLES {
        // A new database holds the settings' defaults, nothing else.
        let rows = count(&mut tx, table).await?;
        let expected = i64::from(*table == "settings");
        if rows != expected {
            return Err(CopyError::TargetNotEmpty { table, rows });
        }
    }
    sqlx::query("DELETE FROM settings")
        .execute(&mut *tx)
        .await?;
    let mut copied = Vec::with_capacity(TABLES.len());
    for (table, columns) in TABLES {
        let names = columns
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ");
        let placeholders = (1..=columns.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        // The audit log's ids are kept (they page the log).
        let overriding = if *table == "audit_log" {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        let insert = format!("INSERT INTO {table} ({names}){overriding} VALUES ({placeholders})");
        let rows = sqlx::query(&format!("SELECT {names} FROM {table}"))
            .fetch_all(&source)
            .await?;
        for row in &rows {
            let mut query = sqlx::query(&insert);
            for (name, kind) in *columns {
                query = match kind {
                    Text => query.bind(row.try_get::<Option<String>, _>(*name)?),
                    Int => query.bind(row.try_get::<Option<i64>, _>(*name)?),
                    Flag => query.bind(row.try_get::<Option<bool>, _>(*name)?),
                    Bytes => query.bind(row.try_get::<Option<Vec<u8>>, _>(*name)?),
                };
            }
            query.execute(&mut *tx).await?;
        }
        let source_rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&source)
            .await?;
        let target_rows = count(&mut tx, table).await?;
        if source_rows != target_rows || target_rows != rows.len() as i64 {
            return Err(CopyError::CountMismatch {
                table,
                source_rows,
                target_rows,
            });
        }
        copied.push(CopiedTable {
            table,
            rows: target_rows,
        });
    }
    // New audit entries continue after the copied ones.
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('audit_log', 'id'),
                       COALESCE((SELECT MAX(id) FROM audit_log), 0) + 1, false)",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    source.close().await;
    target.close().await;
    Ok(copied)
}

async fn count(conn: &mut PgConnection, table: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(conn)
        .await
}
