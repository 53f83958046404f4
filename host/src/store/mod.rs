//! The durable store: orders, configuration, API keys, the audit log of
//! admin writes, cancellations, idempotency records and the job outbox.
//!
//! Two databases, chosen when the store opens, behind the same methods and
//! mostly the same statements (`db`):
//!
//! - **SQLite** in the data directory, the embedded default (WAL, foreign
//!   keys on, migrations from `host/migrations/sqlite/` applied at open, on
//!   a connection of their own with foreign keys off).
//!   There are two writer connections: cancellations are committed in
//!   groups by a thread that owns a connection of its own
//!   (`group_commit`), every other write goes through sqlx's single writer
//!   connection. Both open every transaction with `BEGIN IMMEDIATE`, so
//!   SQLite's write lock serialises them and two overlapping cancellations
//!   can never both plan against the same order state; readers use a small
//!   pool of their own. One process per data directory.
//! - **PostgreSQL** (`--database-url postgres://…`), shared by several
//!   replicas (migrations from `host/migrations/postgres/`). A cancellation
//!   locks its order's row (`SELECT … FOR UPDATE`) and plans against what
//!   it reads after the lock, so of two replicas cancelling one order the
//!   second plans against the first's result (`pg_cancel`). Jobs are
//!   claimed with `FOR UPDATE SKIP LOCKED` and fenced by attempt number.
//!   The other writes (configuration, keys, idempotency records) take one
//!   store-wide advisory lock, the same serial order SQLite's write lock
//!   gives them.
//!
//! Callers (the API and the job workers) only see [`Store`]'s methods and the
//! plain record types in this module; SQL stays inside. The store holds no
//! cancel rule: a cancellation is decided by the [`Planner`] its
//! [`CancelCommand`] carries (`crate::cancel::plan`), called inside the
//! write transaction with what that transaction read.

mod audit;
mod cancellations;
mod config;
mod copy;
mod db;
mod group_commit;
mod jobs;
mod keys;
mod orders;
mod pg_cancel;
mod plugins;
#[cfg(test)]
mod query_plans;
mod records;
mod secrets;
mod shadow;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use db::{Db, Pool, SqliteTx, Tx, WRITE_LOCK, WriteTurn};

pub use cancellations::{
    CancelCommand, CancelError, Cancelled, Committed, IdempotencyClaim, IdempotencyKey, Planned,
    Planner, PrunedJobs,
};
pub use config::ConfigSnapshot;
pub use copy::{CopiedTable, CopyError, copy_sqlite_to_postgres};
pub use jobs::new_job;
pub use jobs::{
    AttemptInput, AttemptRecord, AttemptResult, ClaimedJob, JobFilter, ManualRun, Pruned,
    RecordedAttempt, RetryError, RetryShares, RunError,
};
pub use orders::{OrderSummary, PutOrder, format_date};
pub use plugins::PluginTables;
pub use records::*;
pub use secrets::{
    KeyRotation, SECRETS_KEY_FILE, SecretsError, SecretsKey, SecretsKeySource, rotate_secrets_key,
};
pub use shadow::{NewShadowRun, ShadowComparison, ShadowRequest, ShadowResult, ShadowRun};

/// Why the store could not do what was asked. Refusals by the cancel rules
/// are not here: they come back as [`CancelError::Refused`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached or a statement failed.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A statement of the cancellation writer (its own connection) failed.
    #[error("database error: {0}")]
    Writer(rusqlite::Error),
    /// The database cannot be written just now: its disk is full, it was
    /// made read-only, or the file system failed. Nothing was changed; the
    /// same request may succeed once the operator has made room.
    #[error("the database cannot be written ({reason}): nothing was changed")]
    Unwritable {
        /// What SQLite or the file system said.
        reason: String,
    },
    /// The PostgreSQL URL is not one.
    #[error("invalid database URL: {0}")]
    DatabaseUrl(String),
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
    /// Another process has the data directory open.
    #[error(
        "another rescind process is using the data directory {path}: stop it first, or give \
         this one a --data-dir of its own (two processes on one SQLite store would take \
         over each other's jobs and idempotency keys)"
    )]
    DataDirInUse {
        /// The directory.
        path: PathBuf,
    },
    /// Connection secrets cannot be sealed or opened: no key, the wrong
    /// key, or a value that does not open.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let unwritable = match &e {
            sqlx::Error::Database(db) => {
                if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    is_unwritable_state(pg.code())
                } else {
                    db.code()
                        .and_then(|code| code.parse::<i32>().ok())
                        .is_some_and(|code| is_unwritable_code(code & 0xff))
                }
            }
            sqlx::Error::Io(_) => true,
            _ => false,
        };
        if unwritable {
            StoreError::Unwritable {
                reason: e.to_string(),
            }
        } else {
            StoreError::Database(e)
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(failure, _)
                if is_unwritable_code(failure.extended_code & 0xff) =>
            {
                StoreError::Unwritable {
                    reason: e.to_string(),
                }
            }
            _ => StoreError::Writer(e),
        }
    }
}

/// SQLite's primary result codes for a database that cannot be written:
/// `SQLITE_IOERR` (10), `SQLITE_FULL` (13), `SQLITE_CANTOPEN` (14),
/// `SQLITE_READONLY` (8).
fn is_unwritable_code(primary: i32) -> bool {
    matches!(primary, 8 | 10 | 13 | 14)
}

/// PostgreSQL's states for a database that cannot be written just now:
/// class 53 (insufficient resources: disk full, out of memory, too many
/// connections), `read_only_sql_transaction` (25006: a standby, or
/// `default_transaction_read_only`), class 57P (the server is shutting
/// down or starting) and class 08 (the connection failed).
fn is_unwritable_state(state: &str) -> bool {
    state.starts_with("53")
        || state == "25006"
        || state.starts_with("57P")
        || state.starts_with("08")
}

impl StoreError {
    /// Whether the failure is the database being unwritable (disk full,
    /// read-only): the API answers 503 rather than 500.
    pub fn is_unwritable(&self) -> bool {
        matches!(self, StoreError::Unwritable { .. })
    }
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
    /// Where the key that seals connection secrets comes from.
    pub secrets_key: SecretsKeySource,
    /// A PostgreSQL URL (`postgres://user@host:port/database`): the store
    /// lives there, shared with other replicas, instead of in the data
    /// directory's SQLite file. The data directory still holds this
    /// process's lock, the secrets key file and the plugins.
    pub database_url: Option<String>,
    /// Connections to PostgreSQL this process keeps at most.
    pub postgres_connections: u32,
}

impl StoreOptions {
    /// Defaults for a data directory: NORMAL durability, four readers, the
    /// secrets key in the data directory's key file.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreOptions {
            data_dir: data_dir.into(),
            durability: Durability::Normal,
            readers: 4,
            secrets_key: SecretsKeySource::KeyFile,
            database_url: None,
            postgres_connections: 16,
        }
    }
}

/// The store. Cheap to clone: clones share the connection pools.
#[derive(Clone, Debug)]
pub struct Store {
    /// SQLite: the single writer connection. PostgreSQL: the pool.
    writer: Pool,
    /// SQLite: the turn its writer connections take (this one and the
    /// cancellation writer's). Unused on PostgreSQL.
    write_turn: WriteTurn,
    /// SQLite: the read-only connections. PostgreSQL: the same pool as
    /// `writer`.
    reader: Pool,
    /// Settings, websites and enabled job definitions, read by every
    /// cancellation. Filled while SQLite's write lock is held and emptied by
    /// every configuration write before it commits, so it never holds data
    /// older than the last commit (every write, on either writer
    /// connection, takes that lock with `BEGIN IMMEDIATE`).
    config: config::ConfigCache,
    /// PostgreSQL: the configuration with the version it was read at,
    /// checked by every cancellation (empty on SQLite).
    postgres_config: config::VersionedConfigCache,
    /// SQLite: the API keys, kept between key writes (see [`keys`]).
    /// Unused on PostgreSQL.
    keys: Arc<keys::KeyTable>,
    /// SQLite: commits cancellations in groups on a thread of its own
    /// (see [`group_commit`]). PostgreSQL: none, each cancellation is a
    /// transaction of the pool (`pg_cancel`).
    cancellations: Option<group_commit::Batcher>,
    /// PostgreSQL: tells the other replicas' workers about the jobs its
    /// cancellations queued, after they commit (see [`JobsAnnouncer`]).
    /// None on SQLite.
    jobs_announcer: Option<JobsAnnouncer>,
    /// Tasks that live as long as the store, stopped by [`Store::close`]:
    /// SQLite's checkpointer, PostgreSQL's listener for new jobs and its
    /// announcer of them.
    background: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    /// This process's hold on the data directory, let go at [`Store::close`].
    held: Arc<std::sync::Mutex<Option<Held>>>,
    /// Seals and opens connection secrets (replaced only by a key rotation).
    secrets: Arc<std::sync::RwLock<secrets::SecretsCipher>>,
}

/// WAL pages after which a commit checkpoints by itself (256 MiB of WAL
/// with SQLite's 4 KiB pages).
///
/// Under a light load the background checkpointer catches up with the
/// end of the WAL between commits, the WAL starts again from its
/// beginning, and this mark is never reached. Under a steady stream of
/// cancellations into a large store it cannot catch up (each cancellation
/// dirties pages no other shares, and the stream never pauses), so the
/// WAL grows to this mark and the cancellation writer checkpoints it
/// itself, inside a commit: every cancellation of that group waits for
/// the rest of the copy and the sync of the database file (tens of
/// milliseconds). How long that stall lasts depends on what the
/// background passes left, not on the mark; how often it comes depends
/// on the mark. At 16,384 pages it came often enough to set the p99 of a
/// steady stream into a 1M-order store; at this mark it comes four times
/// less often and no longer does (`BENCHMARKS.md`, `scaling`). The price is
/// disk: while the store is open the WAL file keeps the largest size it
/// reached (SQLite reuses it rather than shrinking it; the last connection
/// to close removes it), so up to about 256 MiB beside the database.
const AUTOCHECKPOINT_PAGES: i64 = 65_536;

/// WAL frames (16 MiB) from which the background checkpointer syncs the
/// database file after each pass and follows it with the next one soon:
/// the stream is outrunning the passes. Below it, syncing early would
/// only write pages that later passes copy again. It stayed here when
/// [`AUTOCHECKPOINT_PAGES`] grew fourfold (a quarter of the new mark did
/// no better in the runs that tried it).
const SYNC_FROM_FRAMES: i64 = 4_096;

/// How often the background checkpointer copies the WAL into the database.
/// Often, so that under a steady stream of cancellations little is left to
/// copy when a commit crosses [`AUTOCHECKPOINT_PAGES`] and the cancellation
/// writer checkpoints itself (a stall for every cancellation waiting). It
/// also bounds what a power loss can take with `synchronous=NORMAL`.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// How soon the background checkpointer's next pass follows one that got
/// on while the WAL is large (past [`SYNC_FROM_FRAMES`]).
const CHECKPOINT_CHASING: Duration = Duration::from_millis(10);

/// How long a caller waits for SQLite's write lock held by another process
/// (a second host on the same file) before the statement fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Opens (creating if needed) the database and applies the
    /// migrations: PostgreSQL when the options name a database URL, the
    /// SQLite file in the data directory otherwise.
    pub async fn open(options: &StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(&options.data_dir).map_err(|source| StoreError::DataDir {
            path: options.data_dir.clone(),
            source,
        })?;
        let lock = lock_data_dir(&options.data_dir)?;
        match &options.database_url {
            Some(url) => Store::open_postgres(options, url, lock).await,
            None => Store::open_sqlite(options, lock).await,
        }
    }

    async fn open_sqlite(options: &StoreOptions, lock: std::fs::File) -> Result<Store, StoreError> {
        let path = options.data_dir.join("rescind.db");
        let connect = connect_options(&path, options.durability);
        migrate_sqlite(&connect).await?;
        // Connections are only ever ours and local: no need to ping them
        // before each use.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect.clone())
            .await?;
        let writer = Db::Sqlite(writer);
        recover_after_restart(&writer).await?;
        let cipher = secrets::prepare(&mut writer.acquire().await?, options).await?;
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
        let database =
            Arc::new(
                std::fs::File::open(&path).map_err(|source| StoreError::DataDir {
                    path: path.clone(),
                    source,
                })?,
            );
        let checkpointer = tokio::spawn(checkpoint_continually(maintenance, Arc::clone(&database)));
        let config = config::ConfigCache::default();
        let write_turn = WriteTurn::default();
        let cancellations = group_commit::Batcher::start(
            &path,
            options.durability,
            Arc::clone(&config),
            Arc::clone(&write_turn),
        )?;
        Ok(Store {
            writer,
            write_turn,
            reader: Db::Sqlite(reader),
            config,
            postgres_config: Arc::default(),
            keys: Arc::default(),
            cancellations: Some(cancellations),
            jobs_announcer: None,
            background: Arc::new(std::sync::Mutex::new(vec![checkpointer])),
            held: Arc::new(std::sync::Mutex::new(Some(Held {
                _lock: lock,
                _database: Some(database),
            }))),
            secrets: Arc::new(std::sync::RwLock::new(cipher)),
        })
    }

    async fn open_postgres(
        options: &StoreOptions,
        url: &str,
        lock: std::fs::File,
    ) -> Result<Store, StoreError> {
        let connect =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::DatabaseUrl(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.postgres_connections.max(2))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect)
            .await?;
        // Replicas starting together: one applies the migrations, the
        // others wait for its lock (sqlx takes an advisory lock).
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let pg = pool.clone();
        let pool = Db::Postgres(pool);
        // Nothing is taken back at start: other replicas may be running the
        // jobs and holding the keys; what a dead replica held comes free
        // when its leases and holds expire.
        let cipher = secrets::prepare(&mut pool.acquire().await?, options).await?;
        let (announcer, announcing) = JobsAnnouncer::start(pg);
        Ok(Store {
            writer: pool.clone(),
            write_turn: WriteTurn::default(),
            reader: pool,
            config: config::ConfigCache::default(),
            postgres_config: Arc::default(),
            keys: Arc::default(),
            cancellations: None,
            jobs_announcer: Some(announcer),
            background: Arc::new(std::sync::Mutex::new(vec![announcing])),
            held: Arc::new(std::sync::Mutex::new(Some(Held {
                _lock: lock,
                _database: None,
            }))),
            secrets: Arc::new(std::sync::RwLock::new(cipher)),
        })
    }

    /// Which database the store is on: `sqlite` or `postgresql`.
    pub fn backend(&self) -> &'static str {
        if self.writer.is_postgres() {
            "postgresql"
        } else {
            "sqlite"
        }
    }

    /// The cipher of connection secrets.
    fn secrets_cipher(&self) -> secrets::SecretsCipher {
        self.secrets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn replace_secrets_cipher(&self, cipher: secrets::SecretsCipher) {
        *self.secrets.write().unwrap_or_else(|e| e.into_inner()) = cipher;
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        db::on!(&self.reader, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Closes the pools, waiting for running statements.
    pub async fn close(&self) {
        let background =
            std::mem::take(&mut *self.background.lock().unwrap_or_else(|e| e.into_inner()));
        for task in background {
            task.abort();
            let _ = task.await;
        }
        if let Some(cancellations) = &self.cancellations {
            cancellations.stop().await;
        }
        self.writer.close().await;
        self.reader.close().await;
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        drop(held.take());
    }

    /// Wakes `wakeup`'s waiters (the job workers) whenever any replica
    /// commits jobs that are due: on PostgreSQL, a `LISTEN` on
    /// `rescind_jobs`, to which such commits send a `NOTIFY`. A hint only:
    /// the workers still poll, so a notification lost while the listener
    /// reconnects delays a job, never loses it. On SQLite there is one
    /// process, whose API wakes its own workers: nothing to do.
    pub fn wake_on_new_jobs(&self, wakeup: Arc<tokio::sync::Notify>) {
        let Db::Postgres(pool) = &self.writer else {
            return;
        };
        let pool = pool.clone();
        let task = tokio::spawn(async move {
            loop {
                match listen_for_jobs(&pool, &wakeup).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "listening for new jobs failed; trying again");
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

    /// Starts a write transaction whose reads stay true until it commits:
    /// on SQLite it holds the write lock from its first statement, on
    /// PostgreSQL the store-wide advisory lock (so writes of this kind
    /// follow one another across every replica, as they do on SQLite).
    async fn write(&self) -> Result<Tx, StoreError> {
        match &self.writer {
            Db::Sqlite(writer) => Ok(Db::Sqlite(SqliteTx::begin(writer, &self.write_turn).await?)),
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(Db::Postgres(tx))
            }
        }
    }

    /// Starts a write transaction for statements that stay right by their
    /// own row locks and conditions (claiming jobs `SKIP LOCKED`, leases
    /// fenced by attempt number): on PostgreSQL it takes no store-wide
    /// lock, so replicas claim and finish jobs side by side. On SQLite it is
    /// [`Store::write`].
    async fn write_rows(&self) -> Result<Tx, StoreError> {
        match &self.writer {
            Db::Sqlite(_) => self.write().await,
            Db::Postgres(pool) => Ok(Db::Postgres(pool.begin().await?)),
        }
    }
}

/// The PostgreSQL notification channel of commits that make jobs due.
pub(crate) const JOBS_CHANNEL: &str = "rescind_jobs";

/// Tells every replica's workers, when `tx` commits, that jobs are due
/// (PostgreSQL; nothing on SQLite, whose one process wakes its own).
async fn notify_jobs(tx: &mut Tx) -> Result<(), StoreError> {
    if let Db::Postgres(tx) = tx {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(JOBS_CHANNEL)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Announces, on PostgreSQL, that cancellations queued jobs: one `NOTIFY`
/// on [`JOBS_CHANNEL`] sent after they commit, on a task of its own, for
/// every cancellation that committed since the last one was sent.
///
/// A transaction that sends a `NOTIFY` holds a lock of the whole database
/// through its commit, WAL flush included, so that notifications arrive in
/// commit order: every such commit waits for the one before. Sent from
/// inside each cancellation's transaction, that lock made every
/// cancellation of every replica commit one after the other, one WAL flush
/// each. Announced from here, cancellations commit side by side and share
/// flushes; announcements that pile up while one is being sent are sent
/// once. The announcement is a hint, as the `NOTIFY` was (the workers
/// poll): it is sent with `synchronous_commit` off, so its own commit does
/// not wait for a flush either, and one lost in a crash delays the job by
/// a poll at most.
#[derive(Debug, Clone)]
struct JobsAnnouncer {
    /// Stores one permit while announcements are due.
    due: Arc<tokio::sync::Notify>,
}

/// The announcement: the `NOTIFY`, in a transaction whose commit does not
/// wait for the WAL's flush (a setting local to that transaction).
const ANNOUNCE_JOBS: &str =
    "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')";

impl JobsAnnouncer {
    /// The announcer and its task, which runs until it is aborted.
    fn start(pool: sqlx::PgPool) -> (JobsAnnouncer, tokio::task::JoinHandle<()>) {
        let due = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(announce_jobs(pool, Arc::clone(&due)));
        (JobsAnnouncer { due }, task)
    }

    /// Asks for an announcement once what the caller committed is
    /// committed; returns at once.
    fn announce(&self) {
        self.due.notify_one();
    }
}

/// Sends [`ANNOUNCE_JOBS`] each time announcements are due.
async fn announce_jobs(pool: sqlx::PgPool, due: Arc<tokio::sync::Notify>) {
    loop {
        due.notified().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query(ANNOUNCE_JOBS)
            .bind(JOBS_CHANNEL)
            .execute(&pool)
            .await
        {
            tracing::warn!(
                error = %e,
                "telling the replicas about new jobs failed; their workers find them when they \
                 next look"
            );
        }
    }
}

/// Wakes the workers on every notification until the pool closes.
async fn listen_for_jobs(
    pool: &sqlx::PgPool,
    wakeup: &tokio::sync::Notify,
) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(JOBS_CHANNEL).await?;
    loop {
        match listener.try_recv().await? {
            Some(_) => wakeup.notify_waiters(),
            // The connection was lost and is made again: jobs committed
            // meanwhile were not announced, so look now.
            None => wakeup.notify_waiters(),
        }
        if pool.is_closed() {
            return Ok(());
        }
    }
}

/// What a store holds of its data directory while it is open: files kept
/// open only to be closed when the store closes.
#[derive(Debug)]
struct Held {
    /// `rescind.lock`: no other process opens this store meanwhile.
    _lock: std::fs::File,
    /// SQLite: the database file, opened once for the checkpointer to sync.
    /// Closed only when the store closes, after its connections: closing
    /// any descriptor of a file lets go of every POSIX lock the process
    /// holds on it, SQLite's own included.
    _database: Option<Arc<std::fs::File>>,
}

/// Copies SQLite's WAL into the database every [`CHECKPOINT_EVERY`] until
/// the pool closes, and syncs what it copied once the WAL grows.
///
/// Under a steady stream of commits a pass rarely catches up with the end
/// of the WAL, and SQLite syncs the database file only in a pass that
/// does. Left alone, the pages the passes copy wait in the page cache
/// until the WAL reaches [`AUTOCHECKPOINT_PAGES`] and a commit checkpoints
/// itself: its sync then flushes all of them (tens of milliseconds on a
/// large store) while every cancellation of its group waits. Syncing here
/// after each pass, from [`SYNC_FROM_FRAMES`] on, leaves that commit
/// little to flush.
async fn checkpoint_continually(maintenance: SqlitePool, database: Arc<std::fs::File>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // WAL frames copied as of the last pass.
    let mut last_copied = 0;
    // Cleared if the system refuses the sync: it is only an optimisation.
    let mut sync = true;
    loop {
        tick.tick().await;
        if maintenance.is_closed() {
            break;
        }
        let (in_wal, copied) =
            match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&maintenance)
                .await
            {
                Ok((_busy, in_wal, copied)) => (in_wal, copied),
                Err(e) => {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                    continue;
                }
            };
        // Whether SQLite synced cannot be told from the answer (it counts
        // the WAL as the pass found it, not as it is at the end of the
        // pass); a sync with nothing left to write costs little.
        let large = in_wal >= SYNC_FROM_FRAMES;
        let advanced = copied != last_copied;
        if sync && large && advanced {
            let file = Arc::clone(&database);
            let failed = match tokio::task::spawn_blocking(move || file.sync_data()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(error) = failed {
                tracing::warn!(
                    %error,
                    "cannot sync the database file behind the checkpointer; SQLite's own \
                     checkpoints still sync it"
                );
                sync = false;
            }
        }
        last_copied = copied;
        // While the WAL is large and the passes get on, the next one follows
        // soon ([`CHECKPOINT_CHASING`]): the less they leave uncopied and
        // unsynced, the shorter the commit that checkpoints at the mark. A
        // pass that copied nothing new (readers hold the rest) waits for the
        // next tick.
        if large && advanced {
            tick.reset_after(CHECKPOINT_CHASING);
        }
    }
}

/// Takes `<data-dir>/rescind.lock` for this process: one process per
/// SQLite store, which is what lets [`recover_after_restart`] treat what it
/// finds in flight as left behind by a dead process.
fn lock_data_dir(dir: &Path) -> Result<std::fs::File, StoreError> {
    let path = dir.join("rescind.lock");
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StoreError::DataDir {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::DataDirInUse {
            path: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::DataDir { path, source }),
    }
}

/// What a process that died (killed, power cut) left in flight, given back
/// at start: no other process can be using this store (see
/// [`lock_data_dir`]), so nobody will finish it. The `Idempotency-Key`s
/// held by requests that never committed are let go (their clients' retries
/// go ahead instead of waiting out the hold), and jobs whose attempt was cut
/// short are due again at once (rather than after their lease), with the
/// open attempt recorded as `interrupted`.
async fn recover_after_restart(writer: &Pool) -> Result<(), StoreError> {
    let Db::Sqlite(writer) = writer else {
        return Ok(());
    };
    let now = now_ms();
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let keys = sqlx::query("DELETE FROM idempotency_keys WHERE state = 'in-progress'")
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query(
        "UPDATE job_attempts SET ended_at = $1, outcome = 'interrupted',
             message = 'the host stopped before the attempt finished'
         WHERE ended_at IS NULL AND job_id IN (SELECT id FROM jobs WHERE state = 'running')",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let jobs = sqlx::query(
        "UPDATE jobs SET state = 'retrying', run_at = $1, lease_owner = NULL,
             lease_expires_at = NULL, updated_at = $1
         WHERE state = 'running'",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if keys + jobs > 0 {
        tracing::info!(
            idempotency_keys = keys,
            jobs,
            "took back what the previous run left in flight"
        );
    }
    Ok(())
}

/// Applies the SQLite migrations the store's file has not had yet, each in
/// a transaction of its own, on a connection of their own with foreign keys
/// off: SQLite changes how a table is stored only by copying it, and with
/// foreign keys on, dropping the old copy of a parent table deletes its
/// children's rows (a migration that deletes parent rows deletes their
/// children itself). Every other connection enforces the keys.
async fn migrate_sqlite(connect: &SqliteConnectOptions) -> Result<(), StoreError> {
    use sqlx::{ConnectOptions as _, Connection as _};
    let mut connection = connect.clone().foreign_keys(false).connect().await?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&mut connection)
        .await?;
    connection.close().await?;
    Ok(())
}

fn connect_options(path: &Path, durability: Durability) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("wal_autocheckpoint", AUTOCHECKPOINT_PAGES.to_string())
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
