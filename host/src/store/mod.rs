//! The durable store: orders, configuration, API keys, cancellations,
//! idempotency records and the job outbox.
//!
//! The embedded implementation is SQLite in the data directory (WAL, foreign
//! keys on, migrations from `host/migrations/` applied at open). There are two
//! writer connections: cancellations are committed in groups by a thread
//! that owns a connection of its own ([`group_commit`]), every other write
//! goes through sqlx's single writer connection. Both open every
//! transaction with `BEGIN IMMEDIATE`, so SQLite's write lock serialises
//! them and two overlapping cancellations can never both plan against the
//! same order state; readers use a small pool of their own.
//!
//! Callers (the API and the job workers) only see [`Store`]'s methods and the
//! plain record types in this module; SQL stays inside. A PostgreSQL
//! implementation keeps these signatures and replaces the queries (claiming
//! jobs with `FOR UPDATE SKIP LOCKED` instead of the single writer).

mod cancellations;
mod config;
mod group_commit;
mod jobs;
mod keys;
mod orders;
mod records;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use cancellations::{
    CancelCommand, CancelError, Committed, IdempotencyClaim, NOT_COMMUNICATED_TO_ERP,
    PARTIAL_NOT_COMMUNICATED_TO_ERP,
};
pub use jobs::{AttemptResult, ClaimedJob, JobFilter, ManualRun, RetryError, RunError};
pub use orders::{PutOrder, format_date};
pub use records::*;

/// Why the store could not do what was asked. Refusals by the cancel rules
/// are not here: they come back as [`CancelError::Refused`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached or a statement failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A statement of the cancellation writer (its own connection) failed.
    #[error("database error: {0}")]
    Writer(#[from] rusqlite::Error),
    /// The schema migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back (hand-edited or corrupt data).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The transaction of a group of cancellations failed; none of them
    /// was committed.
    #[error("database error: {0}")]
    GroupCommit(String),
    /// The store is closed.
    #[error("the store is closed")]
    Closed,
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// How hard SQLite works to keep a committed transaction across a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: safe against a killed process; a
    /// power loss may lose the last transactions committed before it (never
    /// corrupts the database).
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is on disk before it is answered.
    Full,
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Ok(Durability::Normal),
            "full" => Ok(Durability::Full),
            other => Err(format!(
                "unknown durability {other:?}: use \"normal\" or \"full\""
            )),
        }
    }
}

/// Where and how to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The data directory; the database is `rescind.db` inside it.
    pub data_dir: PathBuf,
    /// `synchronous` setting.
    pub durability: Durability,
    /// Size of the read-only connection pool.
    pub readers: u32,
}

impl StoreOptions {
    /// Defaults for a data directory: NORMAL durability, four readers.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreOptions {
            data_dir: data_dir.into(),
            durability: Durability::Normal,
            readers: 4,
        }
    }
}

/// The store. Cheap to clone: clones share the connection pools.
#[derive(Clone, Debug)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Settings, websites and enabled job definitions, read by every
    /// cancellation. Filled while SQLite's write lock is held and emptied by
    /// every configuration write before it commits, so it never holds data
    /// older than the last commit (every write, on either writer
    /// connection, takes that lock with `BEGIN IMMEDIATE`).
    config: config::ConfigCache,
    /// Commits cancellations in groups on a thread of its own (see
    /// [`group_commit`]).
    cancellations: group_commit::Batcher,
    checkpointer: Arc<tokio::task::JoinHandle<()>>,
}

/// WAL pages after which a commit checkpoints by itself; the background
/// checkpointer normally keeps the WAL far below this.
const AUTOCHECKPOINT_PAGES: &str = "16384";

/// How often the background checkpointer copies the WAL into the database.
/// Often, so that under a steady stream of cancellations little is left to
/// copy when a commit crosses [`AUTOCHECKPOINT_PAGES`] and the cancellation
/// writer checkpoints itself (a stall for every cancellation waiting). It
/// also bounds what a power loss can take with `synchronous=NORMAL`.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// How long a caller waits for SQLite's write lock held by another process
/// (a second host on the same file) before the statement fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Opens (creating if needed) the database in the data directory and
    /// applies the migrations.
    pub async fn open(options: &StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(&options.data_dir).map_err(|source| StoreError::DataDir {
            path: options.data_dir.clone(),
            source,
        })?;
        let path = options.data_dir.join("rescind.db");
        let connect = connect_options(&path, options.durability);
        // Connections are only ever ours and local: no need to ping them
        // before each use.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect.clone().read_only(true))
            .await?;
        // Checkpoints (which sync the database file) run on their own
        // connection, off the path of the commits that answer requests.
        let maintenance = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(connect)
            .await?;
        let checkpointer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if maintenance.is_closed() {
                    break;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&maintenance)
                    .await
                {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        });
        let config = config::ConfigCache::default();
        let cancellations = group_commit::Batcher::start(
            &path,
            options.durability,
            reader.clone(),
            Arc::clone(&config),
        )?;
        Ok(Store {
            writer,
            reader,
            config,
            cancellations,
            checkpointer: Arc::new(checkpointer),
        })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// Closes the pools, waiting for running statements.
    pub async fn close(&self) {
        self.checkpointer.abort();
        self.cancellations.stop().await;
        self.writer.close().await;
        self.reader.close().await;
    }

    /// Starts a write transaction that holds SQLite's write lock from its
    /// first statement, so whatever it reads stays true until it commits.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

fn connect_options(path: &Path, durability: Durability) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("wal_autocheckpoint", AUTOCHECKPOINT_PAGES)
        .synchronous(match durability {
            Durability::Normal => SqliteSynchronous::Normal,
            Durability::Full => SqliteSynchronous::Full,
        })
}

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising our own plain records cannot fail (string keys only).
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}
