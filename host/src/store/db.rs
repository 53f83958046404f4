//! The two databases under the store, behind one set of queries.
//!
//! Most statements are the same text on SQLite and PostgreSQL: parameters
//! are written `$1`, `$2`, … (SQLite reads `$N` as the N-th parameter as
//! well), flags are bound as `bool`, numbers as `i64`, and rows are read
//! through [`StoreRow`], so one function serves both. [`on!`] runs an
//! expression against whichever database a pool, connection or transaction
//! belongs to; the expression is compiled once per database, each time with
//! that database's native driver. Where the dialects differ (locking, the
//! aggregation of an order's children, SQLite's maintenance), the caller
//! matches on [`Db`] itself.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{PgConnection, Postgres, Row, Sqlite, SqliteConnection, Transaction};
use tokio::sync::OwnedMutexGuard;

use super::StoreError;

/// The key of PostgreSQL's advisory lock that serialises the store's
/// writes other than cancellations and job leases, across every replica
/// (any fixed number; this one spells "rescind" in ASCII).
pub(super) const WRITE_LOCK: i64 = i64::from_be_bytes(*b"\0rescind");

/// The key of the advisory lock between configuration writes (exclusive)
/// and cancellations (shared): a cancellation reads one configuration, never
/// half of a write.
pub(super) const WRITE_LOCK_CONFIG: i64 = WRITE_LOCK + 1;

/// One of the two databases, holding what belongs to it.
#[derive(Debug, Clone)]
pub(super) enum Db<S, P> {
    /// The embedded SQLite file in the data directory.
    Sqlite(S),
    /// A PostgreSQL server, shared by every replica.
    Postgres(P),
}

/// A connection pool.
pub(super) type Pool = Db<SqlitePool, PgPool>;

/// An open transaction (rolled back when dropped without a commit).
pub(super) type Tx = Db<SqliteTx, Transaction<'static, Postgres>>;

/// The turn of SQLite's two writer connections (sqlx's, and the
/// cancellation writer's own), taken in the order they ask for it. Without
/// it they would meet in SQLite's busy handler, which sleeps (1, 2, 5 …
/// 100 ms) and lets a steady stream of one writer's short transactions
/// keep the other waiting: a plugin retried every few milliseconds would
/// hold back every cancellation commit.
pub(super) type WriteTurn = Arc<tokio::sync::Mutex<()>>;

/// A SQLite write transaction, holding the [`WriteTurn`] until it commits
/// or is dropped (rolled back).
pub(super) struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    _turn: OwnedMutexGuard<()>,
}

impl SqliteTx {
    /// Waits for the writers' turn, then begins `BEGIN IMMEDIATE` on
    /// `writer`.
    pub(super) async fn begin(writer: &SqlitePool, turn: &WriteTurn) -> Result<Self, sqlx::Error> {
        let turn = Arc::clone(turn).lock_owned().await;
        let tx = match writer.begin_with("BEGIN IMMEDIATE").await {
            // SQLite rolls a transaction back by itself when the disk is
            // full; sqlx then still counts it as open and refuses every
            // later BEGIN on that connection. Start over on a fresh one.
            Err(sqlx::Error::InvalidSavePointStatement) => {
                tracing::warn!("replacing the writer connection after an aborted transaction");
                writer.acquire().await?.close().await?;
                writer.begin_with("BEGIN IMMEDIATE").await?
            }
            begun => begun?,
        };
        Ok(Self { tx, _turn: turn })
    }

    /// Commits, then gives the turn to the next writer.
    pub(super) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

impl std::fmt::Debug for SqliteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTx").finish_non_exhaustive()
    }
}

/// A connection taken from a pool.
pub(super) type Conn = Db<PoolConnection<Sqlite>, PoolConnection<Postgres>>;

/// A borrowed connection: what a helper that reads or writes inside either a
/// transaction or a plain connection takes.
pub(super) type Link<'a> = Db<&'a mut SqliteConnection, &'a mut PgConnection>;

/// Runs `$body` with `$x` bound to what `$target` (a [`Db`] or a reference
/// to one) holds, once per database.
macro_rules! on {
    ($target:expr, |$x:ident| $body:expr) => {
        match $target {
            $crate::store::db::Db::Sqlite($x) => $body,
            $crate::store::db::Db::Postgres($x) => $body,
        }
    };
}
pub(super) use on;

impl Tx {
    /// Commits the transaction.
    pub(super) async fn commit(self) -> Result<(), sqlx::Error> {
        on!(self, |tx| tx.commit().await)
    }
}

impl Tx {
    /// The transaction's connection, for helpers that take a [`Link`].
    pub(super) fn link(&mut self) -> Link<'_> {
        match self {
            Db::Sqlite(tx) => Db::Sqlite(&mut **tx),
            Db::Postgres(tx) => Db::Postgres(&mut **tx),
        }
    }
}

impl Link<'_> {
    /// Borrows the connection again, for a helper that takes a [`Link`].
    pub(super) fn reborrow(&mut self) -> Link<'_> {
        match self {
            Db::Sqlite(c) => Db::Sqlite(&mut **c),
            Db::Postgres(c) => Db::Postgres(&mut **c),
        }
    }
}

impl Conn {
    /// The connection, for helpers that take a [`Link`].
    pub(super) fn link(&mut self) -> Link<'_> {
        match self {
            Db::Sqlite(conn) => Db::Sqlite(&mut **conn),
            Db::Postgres(conn) => Db::Postgres(&mut **conn),
        }
    }
}

impl Pool {
    /// Takes a connection from the pool.
    pub(super) async fn acquire(&self) -> Result<Conn, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool) => Db::Sqlite(pool.acquire().await?),
            Db::Postgres(pool) => Db::Postgres(pool.acquire().await?),
        })
    }

    /// Closes the pool, waiting for the connections in use.
    pub(super) async fn close(&self) {
        on!(self, |pool| pool.close().await)
    }

    /// Whether this is the PostgreSQL store.
    pub(super) fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }
}

/// A row read by either driver, its columns decoded to the few types the
/// store keeps: text, 64-bit integers, flags and bytes. A column of the
/// wrong type is [`StoreError::Corrupt`], never a panic.
pub(super) trait StoreRow {
    /// A text column that must not be NULL.
    fn text(&self, column: &str) -> Result<String, StoreError>;
    /// A text column that may be NULL.
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    /// An integer column that must not be NULL.
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    /// An integer column that may be NULL.
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    /// A flag (SQLite: 0 or 1; PostgreSQL: BOOLEAN).
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    /// A byte string.
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError>;

    /// An integer column that must fit `T` (counts, line numbers,
    /// attempts); one that does not is corrupt data.
    fn count<T: TryFrom<i64>>(&self, column: &str) -> Result<T, StoreError> {
        let value = self.int(column)?;
        T::try_from(value).map_err(|_| {
            StoreError::Corrupt(format!("column {column} holds {value}, out of range"))
        })
    }
}

/// A column that does not decode as asked: corrupt data.
fn column_error(column: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("column {column}: {e}"))
}

/// [`StoreRow`] for a driver's row type, whose `$get` reads a column by
/// name.
macro_rules! store_row {
    ($row:ty, $get:ident) => {
        impl StoreRow for $row {
            fn text(&self, column: &str) -> Result<String, StoreError> {
                self.$get(column).map_err(|e| column_error(column, e))
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
                self.$get(column).map_err(|e| column_error(column, e))
            }
            fn int(&self, column: &str) -> Result<i64, StoreError> {
                self.$get(column).map_err(|e| column_error(column, e))
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
                self.$get(column).map_err(|e| column_error(column, e))
            }
            fn flag(&self, column: &str) -> Result<bool, StoreError> {
                self.$get(column).map_err(|e| column_error(column, e))
            }
            fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
                self.$get(column).map_err(|e| column_error(column, e))
            }
        }
    };
}

store_row!(SqliteRow, try_get);
store_row!(PgRow, try_get);
// A row read on the writer thread's own connection (rusqlite).
store_row!(rusqlite::Row<'_>, get);
