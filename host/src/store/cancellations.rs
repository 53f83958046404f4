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
    /// The request's `Idempotency-Key`, if it came with one: checked and
    /// recorded in the cancellation's own transaction (see
    /// [`Store::cancel`]).
    pub idempotency: Option<IdempotencyKey<'a>>,
    /// What decides the cancellation and what it queues.
    pub planner: Planner,
}

/// A request's `Idempotency-Key`: the caller's scope, the key, and the
/// digest of the request it came with (see `api::request_digest`).
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKey<'a> {
    /// Whose key it is (keys are per caller).
    pub scope: &'a str,
    /// The key as the caller sent it.
    pub key: &'a str,
    /// Hex SHA-256 of the order number and the canonical body.
    pub request_sha256: &'a str,
}

/// What a cancel command came to.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "moved once, through the writer's reply; a box would cost an allocation per cancellation"
)]
pub enum Cancelled {
    /// Committed now, by this command.
    Committed(Committed),
    /// The same request with the same `Idempotency-Key` was committed
    /// before, as this cancellation: nothing was written now.
    Replayed {
        /// The cancellation the first request committed.
        cancellation_id: String,
    },
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
    /// The first request with this `Idempotency-Key` has not been answered
    /// yet (it runs on another replica, or ran on a host that stopped less
    /// than the key's hold ago); nothing changed.
    #[error("a request with this Idempotency-Key is still being processed")]
    KeyInProgress,
    /// The `Idempotency-Key` was used before for another request; nothing
    /// changed.
    #[error("the Idempotency-Key was used for another request")]
    KeyReused,
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

/// What an `Idempotency-Key`'s stored row says about a request with that
/// key: the one judgement behind [`Store::claim_idempotency_key`] and the
/// group commit's own check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum KeyVerdict {
    /// No row: the key is new.
    New,
    /// The same request was committed before, as this cancellation.
    Replay(String),
    /// The same request is being processed, within its hold.
    InProgress,
    /// The same request's holder let its hold run out (it stopped): the
    /// key may be taken over.
    Abandoned,
    /// Another request used the key.
    Reused,
}

/// The row of an `Idempotency-Key`: its request's digest, state,
/// cancellation and hold.
pub(super) type KeyRow = (String, String, Option<String>, i64);

/// Judges `row` (the key's stored row, if any) for a request with digest
/// `request_sha256` at `now` (Unix milliseconds).
pub(super) fn judge_key(
    row: Option<KeyRow>,
    request_sha256: &str,
    now: i64,
) -> Result<KeyVerdict, StoreError> {
    let Some((stored, state, cancellation_id, expires_at)) = row else {
        return Ok(KeyVerdict::New);
    };
    Ok(if stored != request_sha256 {
        KeyVerdict::Reused
    } else if state == "done" {
        KeyVerdict::Replay(cancellation_id.ok_or_else(|| {
            StoreError::Corrupt("an idempotency key done without a cancellation".to_owned())
        })?)
    } else if expires_at > now {
        KeyVerdict::InProgress
    } else {
        KeyVerdict::Abandoned
    })
}

/// How long, from `now`, a new request holds its key.
pub(super) fn key_hold(now: i64) -> i64 {
    now.saturating_add(i64::try_from(IDEMPOTENCY_HOLD.as_millis()).unwrap_or(i64::MAX))
}

impl Store {
    /// Claims an idempotency key for a request whose canonical body has the
    /// digest `request_sha256`: the first step of a keyed cancellation on
    /// PostgreSQL, where replicas share keys (on SQLite the group commit
    /// checks and records the key in the cancellation's own transaction).
    pub async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        request_sha256: &str,
    ) -> Result<IdempotencyClaim, StoreError> {
        let now = now_ms();
        let hold = key_hold(now);
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
            "{}{lock}",
            sql::KEY_ROW
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
        let claim = match judge_key(row, request_sha256, now)? {
            // Deleted (released) since the insert found it: take it now.
            KeyVerdict::New => {
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
            KeyVerdict::Reused => IdempotencyClaim::Reused,
            KeyVerdict::Replay(cancellation_id) => IdempotencyClaim::Replay { cancellation_id },
            KeyVerdict::InProgress => IdempotencyClaim::InProgress,
            KeyVerdict::Abandoned => {
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
    ///
    /// With an `Idempotency-Key`: a key answered before for the same
    /// request replays that cancellation and writes nothing; one used for
    /// another request is [`CancelError::KeyReused`]; one whose first
    /// request is still running is [`CancelError::KeyInProgress`]. A
    /// refused or failed cancellation leaves no trace of its key. On SQLite
    /// the key is checked and recorded in the cancellation's own
    /// transaction, with the rest of its group: a keyed cancellation costs
    /// no write of its own. On PostgreSQL, whose replicas share keys, the
    /// key is claimed first (a row the other replicas see as in progress)
    /// and released if the cancellation does not commit (should that
    /// release fail too, the claim lapses at the end of its hold).
    pub async fn cancel(&self, command: CancelCommand<'_>) -> Result<Cancelled, CancelError> {
        match (&self.cancellations, &self.writer) {
            (Some(batcher), _) => batcher.submit(command).await,
            (None, super::db::Db::Postgres(pool)) => {
                let key = command.idempotency;
                if let Some(key) = key {
                    match self
                        .claim_idempotency_key(key.scope, key.key, key.request_sha256)
                        .await?
                    {
                        IdempotencyClaim::Proceed => {}
                        IdempotencyClaim::Replay { cancellation_id } => {
                            return Ok(Cancelled::Replayed { cancellation_id });
                        }
                        IdempotencyClaim::InProgress => return Err(CancelError::KeyInProgress),
                        IdempotencyClaim::Reused => return Err(CancelError::KeyReused),
                    }
                }
                let result = super::pg_cancel::cancel(pool, &self.postgres_config, command).await;
                if let (Ok(committed), Some(announcer)) = (&result, &self.jobs_announcer)
                    && !committed.jobs.is_empty()
                {
                    announcer.announce();
                }
                if result.is_err()
                    && let Some(key) = key
                    && let Err(error) = self.release_idempotency_key(key.scope, key.key).await
                {
                    tracing::error!(%error, "could not release an idempotency key");
                }
                result.map(Cancelled::Committed)
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

/// The statements of a cancellation's writes on SQLite (the cancellation
/// writer), and the `Idempotency-Key` row read on both databases.
pub(super) mod sql {
    /// The order as the cancellation leaves it: status, approval state,
    /// and its lines, payments and allocations, which SQLite keeps in the
    /// order's row (see `orders::OrderDocuments`).
    pub const UPDATE_ORDER: &str = "UPDATE orders SET status = $1, approval_state = $2,
        lines = $3, payments = $4, allocations = $5, updated_at = $6 WHERE number = $7";
    /// The cancellation's record.
    pub const INSERT_CANCELLATION: &str = "INSERT INTO cancellations
        (id, order_number, customer_number, record, created_at) VALUES ($1, $2, $3, $4, $5)";
    /// An `Idempotency-Key`'s row, for [`super::judge_key`].
    pub const KEY_ROW: &str = "SELECT request_sha256, state, cancellation_id, expires_at
        FROM idempotency_keys WHERE scope = $1 AND key = $2";
    /// The `Idempotency-Key` of the request, answered by the cancellation
    /// in the same transaction that checked it (SQLite's group commit): a
    /// new row, or the row of a holder that gave up.
    pub const RECORD_IDEMPOTENCY_KEY: &str = "INSERT INTO idempotency_keys
        (scope, key, request_sha256, state, cancellation_id, expires_at, created_at)
        VALUES ($1, $2, $3, 'done', $4, $5, $6)
        ON CONFLICT (scope, key) DO UPDATE SET state = 'done',
            cancellation_id = excluded.cancellation_id, expires_at = excluded.expires_at";
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

#[cfg(test)]
mod tests {
    use super::{KeyVerdict, judge_key};

    fn row(digest: &str, state: &str, id: Option<&str>, expires_at: i64) -> Option<super::KeyRow> {
        Some((
            digest.to_owned(),
            state.to_owned(),
            id.map(str::to_owned),
            expires_at,
        ))
    }

    #[test]
    fn a_key_is_judged_by_its_row_the_request_and_the_time() {
        let now = 1_000;
        let cases = [
            (None, KeyVerdict::New),
            (
                row("d", "done", Some("c-1"), 0),
                KeyVerdict::Replay("c-1".to_owned()),
            ),
            // Another request: refused whatever the row's state or hold.
            (row("other", "done", Some("c-1"), 0), KeyVerdict::Reused),
            (
                row("other", "in-progress", None, now + 1),
                KeyVerdict::Reused,
            ),
            (
                row("other", "in-progress", None, now - 1),
                KeyVerdict::Reused,
            ),
            (
                row("d", "in-progress", None, now + 1),
                KeyVerdict::InProgress,
            ),
            // The hold ends at `expires_at`.
            (row("d", "in-progress", None, now), KeyVerdict::Abandoned),
            (
                row("d", "in-progress", None, now - 1),
                KeyVerdict::Abandoned,
            ),
        ];
        for (row, verdict) in cases {
            let what = format!("{row:?}");
            assert_eq!(judge_key(row, "d", now).expect(&what), verdict, "{what}");
        }
        let error = judge_key(row("d", "done", None, 0), "d", now).expect_err("corrupt");
        assert!(
            error.to_string().contains("without a cancellation"),
            "{error}"
        );
    }
}
