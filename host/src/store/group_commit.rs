//! Group commit of cancellations on a writer thread of their own.
//!
//! One thread owns a SQLite connection (rusqlite, the same bundled SQLite
//! as sqlx's) and commits the cancellations waiting for it together, in a
//! single `BEGIN IMMEDIATE` transaction. Each is planned against its order
//! as the ones before it in the group left it. The whole group runs as
//! plain function calls on that thread with prepared statements kept
//! between groups: no trip to another thread per statement, which is what
//! bounded throughput when the group went through sqlx (each statement a
//! channel round trip and a wake-up of sqlx's connection thread). Alone, a
//! cancellation is a group of one.
//!
//! A refusal by the cancel rules writes nothing, so it needs no undo. A
//! cancellation whose *writes* fail (an I/O error, a full disk, a
//! constraint) aborts the group's transaction; the others are committed
//! again as a group without it, and it alone in a transaction of its own,
//! so that the failure stays with the one that caused it. A failure of
//! what the whole group shares (taking the write lock, reading the orders,
//! the commit) fails the group. The group does not use a savepoint per
//! cancellation for this: a savepoint journals every page it touches to a
//! statement journal, which spilled to a temporary file and was most of the
//! writer's system calls (about nine in ten of its writes).
//!
//! The job queue's grouped writes (a pool's attempt records and the claims
//! made with them) run on this thread too, between groups of cancellations
//! ([`Batcher::run`]). The other writes of the store stay on sqlx's writer
//! connection. The two connections take turns in the order they ask (the
//! store's write turn) before they open their transactions with `BEGIN
//! IMMEDIATE`, so they never wait for each other in SQLite's busy handler,
//! which sleeps.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use time::Date;
use tokio::sync::{mpsc, oneshot};

use super::cancellations::{
    CancelCommand, CancelError, Cancelled, KeyVerdict, Planned, Planner, judge_key, key_hold, sql,
};
use super::config::{ConfigCache, ConfigSnapshot, config_snapshot};
use super::db::WriteTurn;
use super::jobs::INSERT_JOB;
use super::orders::{LOAD_ORDERS, OrderDocuments, approval_str, order_from_row};
use super::{AUTOCHECKPOINT_PAGES, BUSY_TIMEOUT, Durability, Job, StoreError, now_ms, to_json};
use crate::domain::{CancelRequest, Order, Refusal, Requester};

/// Most cancellations committed in one transaction.
const MAX_GROUP: usize = 64;

/// Prepared statements kept by the writer's connection (the group's
/// statements fit with room to spare).
const STATEMENT_CACHE: usize = 32;

/// A cancellation waiting for the writer.
struct Pending {
    order_number: String,
    actor: Requester,
    request: CancelRequest,
    today: Date,
    idempotency: Option<OwnedKey>,
    planner: Planner,
    reply: oneshot::Sender<Result<Cancelled, CancelError>>,
}

/// A pending cancellation's `Idempotency-Key`, owned.
struct OwnedKey {
    scope: String,
    key: String,
    request_sha256: String,
}

/// Other writes the writer thread runs on its connection, between groups
/// of cancellations and holding the write turn (see [`Batcher::run`]).
type Task = Box<dyn FnOnce(&mut Connection) + Send>;

/// What the writer thread is sent.
enum Work {
    /// Boxed: the channel's slots stay small.
    Cancel(Box<Pending>),
    /// Another write, run after the cancellations taken before it.
    Run(Task),
    /// Commit what has been taken, refuse the rest, close the connection.
    Stop,
}

/// The handle on the writer thread. Cheap to clone; the thread ends when
/// [`Batcher::stop`] is called or every clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct Batcher {
    queue: mpsc::Sender<Work>,
    stopped: Arc<AtomicBool>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Work::Cancel(pending) => write!(f, "Cancel({})", pending.order_number),
            Work::Run(_) => f.write_str("Run"),
            Work::Stop => f.write_str("Stop"),
        }
    }
}

impl Batcher {
    /// Opens the writer's connection to the (already migrated) database and
    /// starts its thread. The writer fills `config` on its own connection
    /// when the cache is empty.
    pub(super) fn start(
        path: &Path,
        durability: Durability,
        config: ConfigCache,
        turn: WriteTurn,
    ) -> Result<Batcher, StoreError> {
        let connection = open(path, durability)?;
        let (queue, waiting) = mpsc::channel::<Work>(4 * MAX_GROUP);
        let stopped = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            connection,
            config,
            turn,
        };
        let thread = std::thread::Builder::new()
            .name("rescind-cancel-writer".to_owned())
            .spawn(move || writer.run(waiting))
            .map_err(|e| StoreError::GroupCommit(format!("cannot start the writer thread: {e}")))?;
        Ok(Batcher {
            queue,
            stopped,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Stops the thread after the group it is committing and waits for it
    /// to close its connection. Cancellations still queued get
    /// [`StoreError::Closed`].
    pub(super) async fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = self.queue.send(Work::Stop).await;
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// Runs `task` on the writer's connection, holding the write turn, and
    /// waits for its answer: writes that would otherwise make a round trip
    /// to sqlx's connection thread for every statement. The task owns its
    /// transaction; one it leaves open is rolled back.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        task: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Work::Run(Box::new(move |connection: &mut Connection| {
                let _ = reply.send(task(connection));
            })))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a cancellation and waits for its group to commit.
    pub(super) async fn submit(
        &self,
        command: CancelCommand<'_>,
    ) -> Result<Cancelled, CancelError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(StoreError::Closed.into());
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Work::Cancel(Box::new(Pending {
                order_number: command.order_number.to_owned(),
                actor: command.actor.clone(),
                request: command.request.clone(),
                today: command.today,
                idempotency: command.idempotency.map(|k| OwnedKey {
                    scope: k.scope.to_owned(),
                    key: k.key.to_owned(),
                    request_sha256: k.request_sha256.to_owned(),
                }),
                planner: command.planner,
                reply,
            })))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// The writer's connection, with the same settings as sqlx's connections
/// (see `connect_options`): WAL (persistent, set when sqlx opened the
/// database), foreign keys, busy timeout, `synchronous`, autocheckpoint.
fn open(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = connection.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "the database is in journal mode {mode:?}, not WAL"
        )));
    }
    connection.pragma_update(None, "foreign_keys", true)?;
    connection.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        },
    )?;
    connection.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

/// Why a group's transaction failed (it is then rolled back).
#[derive(Debug)]
enum GroupError {
    /// The writes of the cancellation at this position in the group.
    Cancellation(usize, StoreError),
    /// What the whole group shares: the write lock, the configuration,
    /// reading the orders, the commit.
    Group(StoreError),
}

impl From<StoreError> for GroupError {
    fn from(e: StoreError) -> Self {
        GroupError::Group(e)
    }
}

impl From<rusqlite::Error> for GroupError {
    fn from(e: rusqlite::Error) -> Self {
        GroupError::Group(e.into())
    }
}

/// What the writer thread owns.
struct Writer {
    connection: Connection,
    config: ConfigCache,
    /// The turn it takes with sqlx's writer connection.
    turn: WriteTurn,
}

impl Writer {
    fn run(mut self, mut waiting: mpsc::Receiver<Work>) {
        let mut group: Vec<Pending> = Vec::with_capacity(MAX_GROUP);
        let mut stop = false;
        while !stop {
            // Sleep until there is work, then take whatever else is waiting
            // up to the next task, which runs after the group.
            match waiting.blocking_recv() {
                Some(Work::Cancel(pending)) => group.push(*pending),
                Some(Work::Run(task)) => {
                    self.run_task(task);
                    continue;
                }
                Some(Work::Stop) | None => break,
            }
            let mut then = None;
            while group.len() < MAX_GROUP {
                match waiting.try_recv() {
                    Ok(Work::Cancel(pending)) => group.push(*pending),
                    Ok(Work::Run(task)) => {
                        then = Some(task);
                        break;
                    }
                    Ok(Work::Stop) => {
                        stop = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(std::mem::take(&mut group));
            if let Some(task) = then {
                self.run_task(task);
            }
        }
        waiting.close();
        // Dropping the replies answers the rest with `StoreError::Closed`.
        while waiting.try_recv().is_ok() {}
    }

    /// Commits a group and answers each of its cancellations. When one
    /// cancellation's writes fail, the others are committed again as a
    /// group without it and it alone (its own verdict, answered to it).
    fn commit_group(&mut self, mut group: Vec<Pending>) {
        // Held until the group is committed or rolled back (a retry of
        // part of the group waits for its turn again).
        let turn = Arc::clone(&self.turn);
        let held = turn.blocking_lock();
        let written = self.write_group(&group);
        if written.is_err() {
            self.roll_back();
        }
        drop(held);
        match written {
            Ok(results) => {
                for (pending, result) in group.into_iter().zip(results) {
                    let _ = pending.reply.send(result);
                }
            }
            Err(GroupError::Cancellation(position, e)) if group.len() > 1 => {
                tracing::warn!(
                    error = %e,
                    order = %group[position].order_number,
                    cancellations = group.len(),
                    "a cancellation's writes failed; committing the group without it"
                );
                let failed = group.remove(position);
                self.commit_group(group);
                self.commit_group(vec![failed]);
            }
            Err(GroupError::Cancellation(_, e)) => {
                tracing::error!(error = %e, "cancellation commit failed");
                if let Some(pending) = group.pop() {
                    let _ = pending.reply.send(Err(e.into()));
                }
            }
            Err(GroupError::Group(e)) => {
                tracing::error!(error = %e, cancellations = group.len(), "group commit failed");
                let message = e.to_string();
                let unwritable = e.is_unwritable();
                for pending in group {
                    let error = if unwritable {
                        StoreError::Unwritable {
                            reason: message.clone(),
                        }
                    } else {
                        StoreError::GroupCommit(message.clone())
                    };
                    let _ = pending.reply.send(Err(error.into()));
                }
            }
        }
    }

    /// Runs another write on the connection, holding the write turn; rolls
    /// back a transaction the task left open.
    fn run_task(&mut self, task: Task) {
        let turn = Arc::clone(&self.turn);
        let _held = turn.blocking_lock();
        task(&mut self.connection);
        self.roll_back();
    }

    /// Ends a failed transaction, if SQLite has not already.
    fn roll_back(&mut self) {
        if !self.connection.is_autocommit()
            && let Err(e) = self.connection.execute_batch("ROLLBACK")
        {
            tracing::error!(error = %e, "rollback of a failed write group failed");
        }
    }

    /// The group's transaction. The outer error means none of it was
    /// committed (and the transaction may still be open: the caller rolls
    /// back); the inner results are the cancellations' answers, refusals
    /// by the cancel rules among them.
    fn write_group(
        &mut self,
        group: &[Pending],
    ) -> Result<Vec<Result<Cancelled, CancelError>>, GroupError> {
        self.connection
            .prepare_cached("BEGIN IMMEDIATE")?
            .execute([])?;
        // Under the write lock from here: the configuration and the orders
        // read now stay true until the commit.
        let config = self.config()?;
        let mut numbers: Vec<&str> = group.iter().map(|p| p.order_number.as_str()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let mut orders = HashMap::with_capacity(numbers.len());
        {
            let mut statement = self.connection.prepare_cached(LOAD_ORDERS)?;
            let mut rows = statement.query([to_json(&numbers)])?;
            while let Some(row) = rows.next()? {
                let order = order_from_row(row)?;
                orders.insert(order.number.clone(), order);
            }
        }
        let mut results = Vec::with_capacity(group.len());
        for (position, pending) in group.iter().enumerate() {
            let result = self
                .plan_and_write(&config, &mut orders, pending)
                .map_err(|e| GroupError::Cancellation(position, e))?;
            results.push(result);
        }
        self.connection.prepare_cached("COMMIT")?.execute([])?;
        Ok(results)
    }

    /// The cached configuration; on a miss, read on the writer's own
    /// connection inside its transaction.
    fn config(&self) -> Result<Arc<ConfigSnapshot>, rusqlite::Error> {
        config_snapshot(&self.config, &self.connection)
    }

    /// Plans one cancellation and writes it. The outer error means the
    /// group's transaction is unusable; the inner result is this
    /// cancellation's answer (a refusal writes nothing). Its
    /// `Idempotency-Key` is judged first, in the group's transaction: an
    /// earlier cancellation of the group with the same key counts as
    /// answered before.
    fn plan_and_write(
        &mut self,
        config: &ConfigSnapshot,
        orders: &mut HashMap<String, Order>,
        pending: &Pending,
    ) -> Result<Result<Cancelled, CancelError>, StoreError> {
        if let Some(key) = &pending.idempotency {
            let row = self
                .connection
                .prepare_cached(sql::KEY_ROW)?
                .query_row(params![key.scope, key.key], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .optional()?;
            match judge_key(row, &key.request_sha256, now_ms())? {
                KeyVerdict::New | KeyVerdict::Abandoned => {}
                KeyVerdict::Replay(cancellation_id) => {
                    return Ok(Ok(Cancelled::Replayed { cancellation_id }));
                }
                KeyVerdict::InProgress => return Ok(Err(CancelError::KeyInProgress)),
                KeyVerdict::Reused => return Ok(Err(CancelError::KeyReused)),
            }
        }
        let Some(order) = orders.get(&pending.order_number) else {
            return Ok(Err(Refusal::OrderNotFound.into()));
        };
        let Planned { after, committed } = match (pending.planner)(
            config,
            order,
            &pending.actor,
            &pending.request,
            pending.today,
            now_ms(),
        ) {
            Ok(planned) => planned,
            Err(refusal) => return Ok(Err(refusal.into())),
        };
        write_cancellation(
            &self.connection,
            &after,
            &committed.record,
            &committed.jobs,
            pending.idempotency.as_ref(),
        )?;
        orders.insert(after.number.clone(), after);
        Ok(Ok(Cancelled::Committed(committed)))
    }
}

/// Every write of a cancellation: the order as it leaves it (status,
/// approval, lines, payments and allocations, all in the order's row), the
/// cancellation, its outbox jobs and the idempotency record.
fn write_cancellation(
    connection: &Connection,
    after: &Order,
    record: &super::CancellationRecord,
    jobs: &[Job],
    idempotency: Option<&OwnedKey>,
) -> Result<(), rusqlite::Error> {
    let number = after.number.as_str();
    let now = record.created_at_ms;
    let documents = OrderDocuments::of(after);
    one_row(
        connection
            .prepare_cached(sql::UPDATE_ORDER)?
            .execute(params![
                after.status,
                after.approval.as_ref().map(|a| approval_str(&a.state)),
                documents.lines,
                documents.payments,
                documents.allocations,
                now,
                number
            ])?,
    )?;
    connection
        .prepare_cached(sql::INSERT_CANCELLATION)?
        .execute(params![
            record.id,
            number,
            record.customer_number,
            to_json(record),
            now
        ])?;
    for job in jobs {
        connection.prepare_cached(INSERT_JOB)?.execute(params![
            job.id,
            job.definition,
            number,
            record.id,
            job.request_id,
            to_json(&job.parameters),
            job.retry.max_attempts,
            i64::try_from(job.retry.initial_backoff_ms).unwrap_or(i64::MAX),
            i64::try_from(job.retry.max_backoff_ms).unwrap_or(i64::MAX),
            now
        ])?;
    }
    if let Some(key) = idempotency {
        connection
            .prepare_cached(sql::RECORD_IDEMPOTENCY_KEY)?
            .execute(params![
                key.scope,
                key.key,
                key.request_sha256,
                record.id,
                key_hold(now),
                now
            ])?;
    }
    Ok(())
}

/// Checks that the write of the order the plan changed found its row: a
/// row the database left alone (gone, or skipped by a trigger) fails the
/// cancellation whole rather than commit it in part.
fn one_row(changed: usize) -> Result<(), rusqlite::Error> {
    match changed {
        1 => Ok(()),
        n => Err(rusqlite::Error::StatementChangedRows(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AUTOCHECKPOINT_PAGES, Db, Store, StoreOptions};

    /// Every connection that writes checkpoints at the same mark: one left
    /// at SQLite's default (1,000 pages, 4 MiB) would checkpoint inside its
    /// own commits some sixty-five times as often, each a stall for what
    /// waits on it.
    #[tokio::test]
    async fn every_writing_connection_checkpoints_at_the_same_mark() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(&StoreOptions::new(dir.path()))
            .await
            .expect("open the store");
        let batcher = store.cancellations.as_ref().expect("a SQLite store");
        let on_writer: i64 = batcher
            .run(|connection| {
                Ok(connection.query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))?)
            })
            .await
            .expect("ask the cancellation writer");
        let Db::Sqlite(pool) = &store.writer else {
            panic!("a SQLite store")
        };
        let on_sqlx: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(pool)
            .await
            .expect("ask sqlx's writer");
        assert_eq!(on_writer, AUTOCHECKPOINT_PAGES);
        assert_eq!(on_sqlx, AUTOCHECKPOINT_PAGES);
        store.close().await;
    }
}
