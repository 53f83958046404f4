//! Cancellations: one write transaction each (order and line states, payment
//! voids and refunds, allocation releases, approval, the idempotency record
//! and the outbox jobs; committed in groups, see [`super::group_commit`]),
//! and `Idempotency-Key` bookkeeping.

use std::time::Duration;

use time::Date;

use super::config::ConfigSnapshot;
use super::db::{Link, StoreRow, on};
use super::jobs::jobs_of_cancellation;
use super::{CancellationRecord, Job, Store, StoreError, from_json, now_ms};
use crate::domain::{AllocationState, CancelRequest, LineState, Order, Refusal, Requester};

/// How long a first request holds its `Idempotency-Key` before a retry may
/// take it over (a crashed host must not block the key forever).
const IDEMPOTENCY_HOLD: Duration = Duration::from_secs(60);

/// A cancellation to commit.
#[derive(Debug)]
pub struct CancelCommand<'a> {
    /// The order.
    pub order_number: &'a str,
    /// Who asks.
    pub actor: &'a Requester,
    /// What they asked for.
    pub request: &'a CancelRequest,
    /// Today's date (UTC) for the date rules.
    pub today: Date,
    /// `(scope, key)` of an `Idempotency-Key` claimed with
    /// [`Store::claim_idempotency_key`], recorded in the same transaction.
    pub idempotency: Option<(&'a str, &'a str)>,
    /// What decides the cancellation and what it queues.
    pub planner: Planner,
}

/// A committed cancellation with the jobs it enqueued.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The cancellation.
    pub record: CancellationRecord,
    /// Its jobs (at commit: all queued), those the job retention has not
    /// deleted.
    pub jobs: Vec<Job>,
    /// Its jobs the job retention deleted (none at commit).
    pub pruned: PrunedJobs,
}

/// How many of a cancellation's jobs the job retention deleted, by the
/// final state each had.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrunedJobs {
    /// Jobs its ERP had accepted.
    pub succeeded: u64,
    /// Jobs that had failed for good.
    pub failed: u64,
}

/// Why a cancellation was not committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CancelError {
    /// The cancel rules refused it; nothing changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The store failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CancelError {
    fn from(e: sqlx::Error) -> Self {
        CancelError::Store(e.into())
    }
}

/// What to do with a request carrying an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is new (or its holder died): go ahead, the key is held.
    Proceed,
    /// The same request was committed before: answer with that cancellation.
    Replay {
        /// The cancellation the first request committed.
        cancellation_id: String,
    },
    /// The first request with this key is still running.
    InProgress,
    /// The key was used for a different request.
    Reused,
}

impl Store {
    /// Claims an idempotency key for a request whose canonical body has the
    /// digest `request_sha256`.
    pub async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        request_sha256: &str,
    ) -> Result<IdempotencyClaim, StoreError> {
        let now = now_ms();
        let hold = now + IDEMPOTENCY_HOLD.as_millis() as i64;
        // A new key is inserted at once; a known one is read under its row
        // lock, so that of two requests with one key (on any replica) the
        // second sees what the first decided.
        let mut tx = self.write_rows().await?;
        let inserted = on!(&mut tx, |tx| sqlx::query(
            "INSERT INTO idempotency_keys
                (scope, key, request_sha256, state, expires_at, created_at)
             VALUES ($1, $2, $3, 'in-progress', $4, $5)
             ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(request_sha256)
        .bind(hold)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected());
        if inserted == 1 {
            tx.commit().await?;
            return Ok(IdempotencyClaim::Proceed);
        }
        let lock = match &tx {
            super::db::Db::Sqlite(_) => "",
            super::db::Db::Postgres(_) => " FOR UPDATE",
        };
        let row = on!(&mut tx, |tx| sqlx::query(&format!(
            "SELECT request_sha256, state, cancellation_id, expires_at
             FROM idempotency_keys WHERE scope = $1 AND key = $2{lock}"
        ))
        .bind(scope)
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?
        .map(|row| -> Result<_, StoreError> {
            Ok((
                row.text("request_sha256")?,
                row.text("state")?,
                row.opt_text("cancellation_id")?,
                row.int("expires_at")?,
            ))
        })
        .transpose()?);
        let claim = match row {
            // Deleted (released) since the insert found it: take it now.
            None => {
                on!(&mut tx, |tx| sqlx::query(
                    "INSERT INTO idempotency_keys
                        (scope, key, request_sha256, state, expires_at, created_at)
                     VALUES ($1, $2, $3, 'in-progress', $4, $5)",
                )
                .bind(scope)
                .bind(key)
                .bind(request_sha256)
                .bind(hold)
                .bind(now)
                .execute(&mut **tx)
                .await
                .map(drop)?);
                IdempotencyClaim::Proceed
            }
            Some((stored, state, cancellation_id, expires_at)) => {
                if stored != request_sha256 {
                    IdempotencyClaim::Reused
                } else if state == "done" {
                    match cancellation_id {
                        Some(cancellation_id) => IdempotencyClaim::Replay { cancellation_id },
                        None => {
                            return Err(StoreError::Corrupt(format!(
                                "idempotency key {key:?} done without a cancellation"
                            )));
                        }
                    }
                } else if expires_at > now {
                    IdempotencyClaim::InProgress
                } else {
                    on!(&mut tx, |tx| sqlx::query(
                        "UPDATE idempotency_keys SET expires_at = $1 WHERE scope = $2 AND key = $3",
                    )
                    .bind(hold)
                    .bind(scope)
                    .bind(key)
                    .execute(&mut **tx)
                    .await
                    .map(drop)?);
                    IdempotencyClaim::Proceed
                }
            }
        };
        tx.commit().await?;
        Ok(claim)
    }

    /// Lets go of a claimed key whose request was refused or failed, so that
    /// nothing of it remains (docs/api.md: a refused request changes nothing).
    pub async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let mut tx = self.write_rows().await?;
        on!(&mut tx, |tx| sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND state = 'in-progress'",
        )
        .bind(scope)
        .bind(key)
        .execute(&mut **tx)
        .await
        .map(drop)?);
        tx.commit().await?;
        Ok(())
    }

    /// Plans and commits a cancellation. The order is read inside the write
    /// transaction, under the write lock, so that of two overlapping
    /// cancellations the second plans against the first's result.
    pub async fn cancel(&self, command: CancelCommand<'_>) -> Result<Committed, CancelError> {
        match (&self.cancellations, &self.writer) {
            (Some(batcher), _) => batcher.submit(command).await,
            (None, super::db::Db::Postgres(pool)) => {
                super::pg_cancel::cancel(pool, &self.postgres_config, command).await
            }
            (None, super::db::Db::Sqlite(_)) => Err(StoreError::Closed.into()),
        }
    }

    /// A committed cancellation with its jobs as they are now.
    pub async fn cancellation(&self, id: &str) -> Result<Option<Committed>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let row = on!(&mut conn, |conn| sqlx::query(
            "SELECT record, jobs_pruned_succeeded, jobs_pruned_failed
             FROM cancellations WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(&mut **conn)
        .await?
        .map(|row| -> Result<_, StoreError> {
            Ok((
                row.text("record")?,
                PrunedJobs {
                    succeeded: row.count("jobs_pruned_succeeded")?,
                    failed: row.count("jobs_pruned_failed")?,
                },
            ))
        })
        .transpose()?);
        let Some((text, pruned)) = row else {
            return Ok(None);
        };
        let record: CancellationRecord = from_json("cancellation", &text)?;
        let jobs = jobs_of_cancellation(&mut conn, id).await?;
        Ok(Some(Committed {
            record,
            jobs,
            pruned,
        }))
    }

    /// The cancellation `id` as it was committed, without its jobs (what an
    /// attempt submits).
    pub async fn cancellation_record(
        &self,
        id: &str,
    ) -> Result<Option<CancellationRecord>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        load_cancellation_record(conn.link(), id).await
    }

    /// The newest cancellation of an order (what a manual job run submits).
    pub async fn latest_cancellation_of(
        &self,
        order_number: &str,
    ) -> Result<Option<CancellationRecord>, StoreError> {
        let text: Option<String> =
            on!(&self.reader, |pool| sqlx::query_scalar(LATEST_CANCELLATION)
                .bind(order_number)
                .fetch_optional(pool)
                .await?);
        text.map(|t| from_json("cancellation", &t)).transpose()
    }
}

/// The record of an order's newest cancellation. Ids are time-ordered, so
/// they break a tie between two committed in the same millisecond.
pub(super) const LATEST_CANCELLATION: &str = "SELECT record FROM cancellations
    WHERE order_number = $1 ORDER BY created_at DESC, id DESC LIMIT 1";

/// A cancellation planned against its order, ready to be written.
#[derive(Debug)]
pub struct Planned {
    /// The order as the cancellation leaves it.
    pub after: Order,
    /// The cancellation and its queued jobs.
    pub committed: Committed,
}

/// The cancel use case, as the store's writers call it: plans a
/// cancellation of `order` under `config` (the cancel rules' verdict, the
/// record, the jobs to queue) without I/O. The store reads the order and
/// the configuration inside its transaction, calls this, and writes what it
/// answers; [`crate::cancel::plan`] is the one the API passes.
pub type Planner = fn(
    config: &ConfigSnapshot,
    order: &Order,
    requester: &Requester,
    request: &CancelRequest,
    today: Date,
    now: i64,
) -> Result<Planned, Refusal>;

/// The rows of its order a cancellation changes, by key. Positions line up
/// because `apply` keeps the order's shape.
#[derive(Debug, Default)]
pub(super) struct RowChanges {
    /// Lines newly cancelled, by number.
    pub cancelled_lines: Vec<i64>,
    /// Payments voided or refunded: position, voided and refunded amounts.
    pub payments: Vec<(i64, i64, i64)>,
    /// Allocations released, by position.
    pub released_allocations: Vec<i64>,
}

impl RowChanges {
    /// What differs between the order before and after the cancellation.
    pub(super) fn between(before: &Order, after: &Order) -> RowChanges {
        let cancelled_lines = after
            .lines
            .iter()
            .filter(|line| {
                line.state == LineState::Cancelled
                    && before
                        .lines
                        .iter()
                        .any(|l| l.number == line.number && l.state != LineState::Cancelled)
            })
            .map(|line| i64::from(line.number))
            .collect();
        let payments = before
            .payments
            .iter()
            .zip(&after.payments)
            .enumerate()
            .filter(|(_, (was, now))| {
                was.voided_minor != now.voided_minor || was.refunded_minor != now.refunded_minor
            })
            .map(|(position, (_, now))| (position as i64, now.voided_minor, now.refunded_minor))
            .collect();
        let released_allocations = before
            .allocations
            .iter()
            .zip(&after.allocations)
            .enumerate()
            .filter(|(_, (was, now))| {
                was.state != now.state && now.state == AllocationState::Released
            })
            .map(|(position, _)| position as i64)
            .collect();
        RowChanges {
            cancelled_lines,
            payments,
            released_allocations,
        }
    }
}

/// The statements of a cancellation's writes, the same text for SQLite's
/// cancellation writer and for PostgreSQL.
pub(super) mod sql {
    /// The order's status and approval state.
    pub const UPDATE_ORDER: &str = "UPDATE orders SET status = $1, approval_state = $2,
        updated_at = $3 WHERE number = $4";
    /// A line newly cancelled.
    pub const CANCEL_LINE: &str = "UPDATE order_lines SET state = 'cancelled'
        WHERE order_number = $1 AND line_number = $2";
    /// A payment's voided and refunded amounts.
    pub const UPDATE_PAYMENT: &str = "UPDATE payments SET voided_minor = $1, refunded_minor = $2
        WHERE order_number = $3 AND position = $4";
    /// An allocation released.
    pub const RELEASE_ALLOCATION: &str = "UPDATE allocations SET state = 'released'
        WHERE order_number = $1 AND position = $2";
    /// The cancellation's record.
    pub const INSERT_CANCELLATION: &str = "INSERT INTO cancellations
        (id, order_number, customer_number, record, created_at) VALUES ($1, $2, $3, $4, $5)";
    /// The `Idempotency-Key` of the request, now answered by the cancellation.
    pub const COMPLETE_IDEMPOTENCY_KEY: &str = "UPDATE idempotency_keys
        SET state = 'done', cancellation_id = $1 WHERE scope = $2 AND key = $3";
}

/// The committed cancellation `id` without its jobs, read on `link`.
pub(super) async fn load_cancellation_record(
    mut link: Link<'_>,
    id: &str,
) -> Result<Option<CancellationRecord>, StoreError> {
    let text: Option<String> = on!(&mut link, |c| sqlx::query_scalar(
        "SELECT record FROM cancellations WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(&mut **c)
    .await?);
    text.map(|t| from_json("cancellation", &t)).transpose()
}
