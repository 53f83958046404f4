//! Cancellations on PostgreSQL: one transaction each, on whichever replica
//! the request reached.
//!
//! The transaction first locks the order's row (`SELECT … FOR UPDATE`).
//! A second cancellation of the same order, on this replica or another,
//! waits there until the first commits or rolls back; the order, its lines,
//! payments and allocations are read only after the lock is held, in a
//! statement of their own, so the second plans against what the first left
//! (under `READ COMMITTED` each statement sees every commit before it).
//! Cancellations of different orders do not wait for each other. The
//! configuration is checked in the same transaction under the shared
//! configuration lock, so it is one configuration, never half of an admin's
//! write: one read of its version, and the cached snapshot unless another
//! write (on any replica) moved the version on.
//!
//! Once planned, everything the cancellation writes goes to the server as
//! one statement ([`WRITE`]), so a cancellation is six round trips
//! (`BEGIN`, the two locks ([`LOCK`]), the order, the configuration's
//! version, the writes, `COMMIT`) whatever its order holds, not one more
//! per line, payment, allocation, job and key.

use sqlx::PgPool;

use super::cancellations::{
    CancelCommand, CancelError, Committed, IdempotencyKey, Planned, RowChanges,
};
use super::config::{VersionedConfigCache, current_snapshot};
use super::db::{Db, WRITE_LOCK_CONFIG};
use super::orders::{approval_str, load_order};
use super::{StoreError, now_ms, to_json};
use crate::domain::{Order, Refusal};

/// Locks the order's row, then takes the configuration's lock (shared
/// with every other cancellation, exclusive for an admin's write), in one
/// round trip and in that order, as every cancellation takes them. A
/// subquery with `FOR UPDATE` is never merged into the query around it, so
/// the outer select runs on the row its lock returned: no row (no such
/// order), no configuration lock. The order and the configuration are read
/// in statements after it, which see every commit before the locks.
///
/// It also has the server run the transaction's statements on the plans it
/// keeps for them (`plan_cache_mode`, for this transaction only): each
/// finds its rows by key, whatever the parameters, and the server
/// otherwise plans [`WRITE`] anew on many executions.
const LOCK: &str = "SELECT pg_advisory_xact_lock_shared($2),
        set_config('plan_cache_mode', 'force_generic_plan', true)
    FROM (SELECT 1 FROM orders WHERE number = $1 FOR UPDATE) AS locked";

/// Plans and commits one cancellation.
pub(super) async fn cancel(
    pool: &PgPool,
    config: &VersionedConfigCache,
    command: CancelCommand<'_>,
) -> Result<Committed, CancelError> {
    let mut tx = pool.begin().await?;
    let locked = sqlx::query(LOCK)
        .bind(command.order_number)
        .bind(WRITE_LOCK_CONFIG)
        .fetch_optional(&mut *tx)
        .await?;
    if locked.is_none() {
        return Err(Refusal::OrderNotFound.into());
    }
    let Some(order) = load_order(Db::Postgres(&mut tx), command.order_number).await? else {
        return Err(Refusal::OrderNotFound.into());
    };
    let config = current_snapshot(config, &mut tx).await?;
    // A refusal writes nothing: dropping the transaction rolls it back and
    // lets go of the order's lock.
    let Planned { after, committed } = (command.planner)(
        &config,
        &order,
        command.actor,
        command.request,
        command.today,
        now_ms(),
    )?;
    write(&mut tx, &order, &after, &committed, command.idempotency).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(committed)
}

/// Everything a cancellation writes, in one statement: the order's status
/// and approval, its lines cancelled, payments voided or refunded and
/// allocations released, the cancellation's record, its jobs and the
/// request's `Idempotency-Key` answered. The other replicas hear of its
/// jobs after the commit, from the store's announcer: a `NOTIFY` in here
/// would make every cancellation's commit wait for the one before.
///
/// One round trip instead of one per row: on a server a network hop away,
/// and on one sharing the host's cores, each statement costs its own
/// exchange and its own turn of the server's executor. The sub-statements
/// of a `WITH` run on one snapshot and do not see each other's rows, which
/// none of them needs; the foreign keys of the jobs and of the key to the
/// new cancellation are checked at the end of the statement, when it is
/// there. Each part answers how many rows it changed, so that a row of
/// the order the plan expected and the database no longer has is an
/// error, not a cancellation committed in part.
const WRITE: &str = "WITH
    changed_order AS (
        UPDATE orders SET status = $2, approval_state = $3, updated_at = $4
        WHERE number = $1
        RETURNING 1),
    cancelled_lines AS (
        UPDATE order_lines SET state = 'cancelled'
        WHERE order_number = $1 AND line_number = ANY($5::BIGINT[])
        RETURNING 1),
    changed_payments AS (
        UPDATE payments SET voided_minor = change.voided, refunded_minor = change.refunded
        FROM UNNEST($6::BIGINT[], $7::BIGINT[], $8::BIGINT[])
            AS change (position, voided, refunded)
        WHERE payments.order_number = $1 AND payments.position = change.position
        RETURNING 1),
    released_allocations AS (
        UPDATE allocations SET state = 'released'
        WHERE order_number = $1 AND position = ANY($9::BIGINT[])
        RETURNING 1),
    cancellation AS (
        INSERT INTO cancellations (id, order_number, customer_number, record, created_at)
        VALUES ($10, $1, $11, $12, $4)
        RETURNING 1),
    queued AS (
        INSERT INTO jobs (id, definition, order_number, cancellation_id, request_id,
            parameters, state, max_attempts, initial_backoff_ms, max_backoff_ms,
            run_at, created_at, updated_at)
        SELECT job.id, job.definition, $1, $10, job.request_id, job.parameters, 'queued',
            job.max_attempts, job.initial_backoff_ms, job.max_backoff_ms, $4, $4, $4
        FROM UNNEST($13::TEXT[], $14::TEXT[], $15::TEXT[], $16::TEXT[], $17::BIGINT[],
                $18::BIGINT[], $19::BIGINT[])
            AS job (id, definition, request_id, parameters, max_attempts,
                initial_backoff_ms, max_backoff_ms)
        RETURNING 1),
    answered_key AS (
        UPDATE idempotency_keys SET state = 'done', cancellation_id = $10
        WHERE scope = $20 AND key = $21
        RETURNING 1)
SELECT (SELECT COUNT(*) FROM changed_order), (SELECT COUNT(*) FROM cancelled_lines),
    (SELECT COUNT(*) FROM changed_payments), (SELECT COUNT(*) FROM released_allocations),
    (SELECT COUNT(*) FROM cancellation), (SELECT COUNT(*) FROM queued),
    (SELECT COUNT(*) FROM answered_key)";

/// The rows [`WRITE`] changed, part by part, in its answer's order.
type Written = (i64, i64, i64, i64, i64, i64, i64);

/// Sends [`WRITE`] for the cancellation `committed` of `order` (which it
/// leaves as `after`) and checks that every row it planned to change was
/// there to change.
async fn write(
    tx: &mut sqlx::PgConnection,
    order: &Order,
    after: &Order,
    committed: &Committed,
    idempotency: Option<IdempotencyKey<'_>>,
) -> Result<(), StoreError> {
    let record = &committed.record;
    let now = record.created_at_ms;
    let changes = RowChanges::between(order, after);
    let (positions, (voided, refunded)): (Vec<i64>, (Vec<i64>, Vec<i64>)) = changes
        .payments
        .iter()
        .map(|&(position, voided, refunded)| (position, (voided, refunded)))
        .unzip();
    let jobs = &committed.jobs;
    let column = |field: fn(&super::Job) -> String| jobs.iter().map(field).collect::<Vec<_>>();
    let number = |field: fn(&super::Job) -> i64| jobs.iter().map(field).collect::<Vec<_>>();
    let written: Written = sqlx::query_as(WRITE)
        .bind(order.number.as_str())
        .bind(&after.status)
        .bind(after.approval.as_ref().map(|a| approval_str(&a.state)))
        .bind(now)
        .bind(&changes.cancelled_lines)
        .bind(&positions)
        .bind(&voided)
        .bind(&refunded)
        .bind(&changes.released_allocations)
        .bind(&record.id)
        .bind(&record.customer_number)
        .bind(to_json(record))
        .bind(column(|job| job.id.clone()))
        .bind(column(|job| job.definition.clone()))
        .bind(column(|job| job.request_id.clone()))
        .bind(column(|job| to_json(&job.parameters)))
        .bind(number(|job| i64::from(job.retry.max_attempts)))
        .bind(number(|job| {
            i64::try_from(job.retry.initial_backoff_ms).unwrap_or(i64::MAX)
        }))
        .bind(number(|job| {
            i64::try_from(job.retry.max_backoff_ms).unwrap_or(i64::MAX)
        }))
        .bind(idempotency.map(|key| key.scope))
        .bind(idempotency.map(|key| key.key))
        .fetch_one(&mut *tx)
        .await?;
    let expected: Written = (
        1,
        count(changes.cancelled_lines.len()),
        count(positions.len()),
        count(changes.released_allocations.len()),
        1,
        count(jobs.len()),
        // The key's row was claimed in a transaction before this one; as
        // before, its answer is written where the row still is.
        written.6,
    );
    if written != expected {
        return Err(StoreError::Corrupt(format!(
            "a cancellation of order {} changed rows {written:?} where it planned {expected:?}",
            order.number
        )));
    }
    Ok(())
}

/// A count of rows as PostgreSQL answers it.
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
