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

use sqlx::PgPool;

use super::cancellations::{CancelCommand, CancelError, Committed, Planned, RowChanges, sql};
use super::config::{VersionedConfigCache, current_snapshot};
use super::db::{Db, WRITE_LOCK_CONFIG};
use super::jobs::INSERT_JOB;
use super::orders::{approval_str, load_order};
use super::{StoreError, now_ms, to_json};
use crate::domain::Refusal;

/// Plans and commits one cancellation.
pub(super) async fn cancel(
    pool: &PgPool,
    config: &VersionedConfigCache,
    command: CancelCommand<'_>,
) -> Result<Committed, CancelError> {
    let mut tx = pool.begin().await?;
    let locked = sqlx::query("SELECT 1 FROM orders WHERE number = $1 FOR UPDATE")
        .bind(command.order_number)
        .fetch_optional(&mut *tx)
        .await?;
    if locked.is_none() {
        return Err(Refusal::OrderNotFound.into());
    }
    let Some(order) = load_order(Db::Postgres(&mut tx), command.order_number).await? else {
        return Err(Refusal::OrderNotFound.into());
    };
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(WRITE_LOCK_CONFIG)
        .execute(&mut *tx)
        .await?;
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
    let record = &committed.record;
    let number = order.number.as_str();
    let now = record.created_at_ms;
    sqlx::query(sql::UPDATE_ORDER)
        .bind(&after.status)
        .bind(after.approval.as_ref().map(|a| approval_str(&a.state)))
        .bind(now)
        .bind(number)
        .execute(&mut *tx)
        .await?;
    let changes = RowChanges::between(&order, &after);
    for line in changes.cancelled_lines {
        sqlx::query(sql::CANCEL_LINE)
            .bind(number)
            .bind(line)
            .execute(&mut *tx)
            .await?;
    }
    for (position, voided, refunded) in changes.payments {
        sqlx::query(sql::UPDATE_PAYMENT)
            .bind(voided)
            .bind(refunded)
            .bind(number)
            .bind(position)
            .execute(&mut *tx)
            .await?;
    }
    for position in changes.released_allocations {
        sqlx::query(sql::RELEASE_ALLOCATION)
            .bind(number)
            .bind(position)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(sql::INSERT_CANCELLATION)
        .bind(&record.id)
        .bind(number)
        .bind(&record.customer_number)
        .bind(to_json(record))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    for job in &committed.jobs {
        sqlx::query(INSERT_JOB)
            .bind(&job.id)
            .bind(&job.definition)
            .bind(number)
            .bind(&record.id)
            .bind(&job.request_id)
            .bind(to_json(&job.parameters))
            .bind(i64::from(job.retry.max_attempts))
            .bind(i64::try_from(job.retry.initial_backoff_ms).unwrap_or(i64::MAX))
            .bind(i64::try_from(job.retry.max_backoff_ms).unwrap_or(i64::MAX))
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(key) = command.idempotency {
        sqlx::query(sql::COMPLETE_IDEMPOTENCY_KEY)
            .bind(&record.id)
            .bind(key.scope)
            .bind(key.key)
            .execute(&mut *tx)
            .await?;
    }
    if !committed.jobs.is_empty() {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(super::JOBS_CHANNEL)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(committed)
}
