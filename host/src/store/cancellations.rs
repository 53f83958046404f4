//! Cancellations: one write transaction each (order and line states, payment
//! voids and refunds, allocation releases, approval, the idempotency record
//! and the outbox jobs), and `Idempotency-Key` bookkeeping.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use std::sync::Arc;

use sqlx::sqlite::SqlitePool;
use sqlx::{Row, SqliteConnection};
use time::Date;
use tokio::sync::{mpsc, oneshot};

use super::config::{ConfigCache, config_snapshot};
use super::jobs::{jobs_of_cancellation, new_job};
use super::orders::{allocation_kind_str, approval_str, channel_str, format_date, load_orders};
use super::{
    AllocationRecord, BankDetailsRecord, CancellationRecord, CancelledLineRecord, Job,
    RefundRecord, Store, StoreError, TrackingRecord, WarningRecord, from_json, now_ms, to_json,
};
use crate::domain::{
    self, Actor, AllocationState, CancelRequest, CancellationPlan, LineKind, LineState, Order,
    RefundDestination, Refusal,
};

/// The warning code of a cancellation that no job definition will tell
/// the ERP about (API.md).
pub const NOT_COMMUNICATED_TO_ERP: &str = "not-communicated-to-erp";

/// How long a first request holds its `Idempotency-Key` before a retry may
/// take it over (a crashed host must not block the key forever).
const IDEMPOTENCY_HOLD: Duration = Duration::from_secs(60);

/// A cancellation to commit.
#[derive(Debug)]
pub struct CancelCommand<'a> {
    /// The order.
    pub order_number: &'a str,
    /// Who asks.
    pub actor: &'a Actor,
    /// What they asked for.
    pub request: &'a CancelRequest,
    /// Today's date (UTC) for the date rules.
    pub today: Date,
    /// `(scope, key)` of an `Idempotency-Key` claimed with
    /// [`Store::claim_idempotency_key`], recorded in the same transaction.
    pub idempotency: Option<(&'a str, &'a str)>,
}

/// A committed cancellation with the jobs it enqueued.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The cancellation.
    pub record: CancellationRecord,
    /// Its jobs (at commit: all queued).
    pub jobs: Vec<Job>,
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
        CancelError::Store(StoreError::Database(e))
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
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "SELECT request_sha256, state, cancellation_id, expires_at
             FROM idempotency_keys WHERE scope = ? AND key = ?",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let claim = match row {
            None => {
                sqlx::query(
                    "INSERT INTO idempotency_keys
                        (scope, key, request_sha256, state, expires_at, created_at)
                     VALUES (?, ?, ?, 'in-progress', ?, ?)",
                )
                .bind(scope)
                .bind(key)
                .bind(request_sha256)
                .bind(hold)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                IdempotencyClaim::Proceed
            }
            Some(row) => {
                let stored: String = row.get("request_sha256");
                let state: String = row.get("state");
                let expires_at: i64 = row.get("expires_at");
                if stored != request_sha256 {
                    IdempotencyClaim::Reused
                } else if state == "done" {
                    match row.get::<Option<String>, _>("cancellation_id") {
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
                    sqlx::query(
                        "UPDATE idempotency_keys SET expires_at = ? WHERE scope = ? AND key = ?",
                    )
                    .bind(hold)
                    .bind(scope)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                    IdempotencyClaim::Proceed
                }
            }
        };
        tx.commit().await?;
        Ok(claim)
    }

    /// Lets go of a claimed key whose request was refused or failed, so that
    /// nothing of it remains (API.md: a refused request changes nothing).
    pub async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND state = 'in-progress'",
        )
        .bind(scope)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Plans and commits a cancellation. The order is read inside the write
    /// transaction, under the write lock, so that of two overlapping
    /// cancellations the second plans against the first's result.
    pub async fn cancel(&self, command: CancelCommand<'_>) -> Result<Committed, CancelError> {
        self.cancellations.submit(command).await
    }

    /// A committed cancellation with its jobs as they are now.
    pub async fn cancellation(&self, id: &str) -> Result<Option<Committed>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let Some(text) =
            sqlx::query_scalar::<_, String>("SELECT record FROM cancellations WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        else {
            return Ok(None);
        };
        let record: CancellationRecord = from_json("cancellation", &text)?;
        let jobs = jobs_of_cancellation(&mut conn, id).await?;
        Ok(Some(Committed { record, jobs }))
    }

    /// The newest cancellation of an order (what a manual job run submits).
    pub async fn latest_cancellation_of(
        &self,
        order_number: &str,
    ) -> Result<Option<CancellationRecord>, StoreError> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT record FROM cancellations WHERE order_number = ?
             ORDER BY created_at DESC, rowid DESC LIMIT 1",
        )
        .bind(order_number)
        .fetch_optional(&self.reader)
        .await?;
        text.map(|t| from_json("cancellation", &t)).transpose()
    }
}

/// Most cancellations committed in one transaction.
const MAX_GROUP: usize = 64;

/// A cancellation waiting for the writer.
struct Pending {
    order_number: String,
    actor: Actor,
    request: CancelRequest,
    today: Date,
    idempotency: Option<(String, String)>,
    reply: oneshot::Sender<Result<Committed, CancelError>>,
}

/// Group commit: one task takes the cancellations waiting for the writer
/// and commits them together, one savepoint each, in a single `BEGIN
/// IMMEDIATE` transaction. Each is still planned against the order as the
/// ones before it in the group left it, and a refused or failed one rolls
/// back to its savepoint without touching the others. Under load this
/// amortises the transaction and the trips to SQLite's connection thread;
/// alone, a cancellation is a group of one.
#[derive(Debug, Clone)]
pub(super) struct Batcher {
    queue: mpsc::Sender<Pending>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Batcher {
    pub(super) fn start(writer: SqlitePool, config: ConfigCache) -> Batcher {
        let (queue, mut waiting) = mpsc::channel::<Pending>(4 * MAX_GROUP);
        let task = tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match waiting.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                commit_group(&writer, &config, group).await;
            }
        });
        Batcher {
            queue,
            task: Arc::new(task),
        }
    }

    pub(super) fn stop(&self) {
        self.task.abort();
    }

    async fn submit(&self, command: CancelCommand<'_>) -> Result<Committed, CancelError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending {
                order_number: command.order_number.to_owned(),
                actor: command.actor.clone(),
                request: command.request.clone(),
                today: command.today,
                idempotency: command
                    .idempotency
                    .map(|(scope, key)| (scope.to_owned(), key.to_owned())),
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn commit_group(writer: &SqlitePool, config: &ConfigCache, group: Vec<Pending>) {
    let outcome = async {
        let mut conn = writer.acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        // Every order of the group in one read, under the write lock; each
        // cancellation then plans against the order as the ones before it
        // left it (kept up to date here as they commit their savepoints).
        let mut numbers: Vec<&str> = group.iter().map(|p| p.order_number.as_str()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let mut orders = match load_orders(&mut conn, &numbers).await {
            Ok(orders) => orders,
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                return Err(e);
            }
        };
        let mut results = Vec::with_capacity(group.len());
        for pending in &group {
            match plan_and_write(&mut conn, config, &mut orders, pending).await {
                Ok(result) => results.push(result),
                Err(e) => {
                    // Rolling back to the savepoint failed: give up the group.
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    return Err(e);
                }
            }
        }
        if let Err(e) = sqlx::query("COMMIT").execute(&mut *conn).await {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return Err(StoreError::from(e));
        }
        Ok::<_, StoreError>(results)
    }
    .await;
    match outcome {
        Ok(results) => {
            for (pending, result) in group.into_iter().zip(results) {
                let _ = pending.reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, cancellations = group.len(), "group commit failed");
            let message = e.to_string();
            for pending in group {
                let _ = pending
                    .reply
                    .send(Err(StoreError::GroupCommit(message.clone()).into()));
            }
        }
    }
}

/// Plans one cancellation and writes it under its own savepoint. The outer
/// error means the group's transaction is unusable; the inner result is
/// this cancellation's answer.
async fn plan_and_write(
    conn: &mut SqliteConnection,
    config: &ConfigCache,
    orders: &mut HashMap<String, Order>,
    pending: &Pending,
) -> Result<Result<Committed, CancelError>, StoreError> {
    let Some(order) = orders.get(&pending.order_number) else {
        return Ok(Err(Refusal::OrderNotFound.into()));
    };
    let config = match config_snapshot(config, &mut *conn).await {
        Ok(config) => config,
        Err(e) => return Ok(Err(e.into())),
    };
    // An unconfigured website keeps the InsiteCommerce default: off.
    let website = config
        .websites
        .get(&order.website)
        .copied()
        .unwrap_or_default();
    let plan = match domain::plan_cancellation(
        order,
        &config.settings,
        &website,
        &pending.actor,
        &pending.request,
        pending.today,
    ) {
        Ok(plan) => plan,
        Err(refusal) => return Ok(Err(refusal.into())),
    };
    let after = plan.apply(order);
    let now = now_ms();
    let record = cancellation_record(order, &plan, now, !config.definitions.is_empty());
    let jobs: Vec<Job> = config
        .definitions
        .iter()
        .map(|definition| {
            let mut parameters: BTreeMap<String, String> = definition
                .parameters
                .iter()
                .map(|p| (p.name.clone(), p.default_value.clone()))
                .collect();
            parameters.insert("OrderNumber".to_owned(), order.number.clone());
            new_job(definition, &order.number, Some(&record.id), parameters, now)
        })
        .collect();
    let idempotency = pending
        .idempotency
        .as_ref()
        .map(|(scope, key)| (scope.as_str(), key.as_str()));
    match write_cancellation(&mut *conn, order, &after, &record, &jobs, idempotency).await {
        Ok(()) => {
            orders.insert(after.number.clone(), after);
            Ok(Ok(Committed { record, jobs }))
        }
        Err(e) => {
            // Undo this cancellation's partial writes, keep the group's.
            sqlx::query("ROLLBACK TO cancellation; RELEASE cancellation")
                .execute(&mut *conn)
                .await?;
            Ok(Err(e.into()))
        }
    }
}

/// Every write of a cancellation, as one multi-statement query (one trip
/// to SQLite's connection thread instead of one per statement): the order's
/// status and approval, its newly cancelled lines, payment voids and
/// refunds, released allocations, the cancellation, its outbox jobs and the
/// idempotency record. Positions line up because `apply` keeps the order's
/// shape. Parameters are plain `?`, bound in the order they appear (sqlx
/// binds numbered parameters of multi-statement queries unreliably).
const WRITE_CANCELLATION: &str = "
SAVEPOINT cancellation;
UPDATE orders SET status = ?, approval_state = ?, updated_at = ? WHERE number = ?;
UPDATE order_lines SET state = 'cancelled'
 WHERE order_number = ? AND line_number IN (SELECT value FROM json_each(?));
UPDATE payments SET voided_minor = json_extract(p.value, '$[1]'),
                    refunded_minor = json_extract(p.value, '$[2]')
  FROM json_each(?) AS p
 WHERE payments.order_number = ? AND payments.position = json_extract(p.value, '$[0]');
UPDATE allocations SET state = 'released'
 WHERE order_number = ? AND position IN (SELECT value FROM json_each(?));
INSERT INTO cancellations (id, order_number, customer_number, record, created_at)
VALUES (?, ?, ?, ?, ?);
INSERT INTO jobs (id, definition, order_number, cancellation_id, request_id, parameters, state,
                  max_attempts, initial_backoff_ms, max_backoff_ms, run_at, created_at, updated_at)
SELECT json_extract(j.value, '$.id'), json_extract(j.value, '$.definition'), ?, ?,
       json_extract(j.value, '$.requestId'), json_extract(j.value, '$.parameters'), 'queued',
       json_extract(j.value, '$.maxAttempts'), json_extract(j.value, '$.initialBackoffMs'),
       json_extract(j.value, '$.maxBackoffMs'), ?, ?, ?
  FROM json_each(?) AS j;
UPDATE idempotency_keys SET state = 'done', cancellation_id = ? WHERE scope = ? AND key = ?;
RELEASE cancellation;
";

async fn write_cancellation(
    conn: &mut SqliteConnection,
    before: &Order,
    after: &Order,
    record: &CancellationRecord,
    jobs: &[Job],
    idempotency: Option<(&str, &str)>,
) -> Result<(), StoreError> {
    let newly_cancelled: Vec<u32> = after
        .lines
        .iter()
        .filter(|line| {
            line.state == LineState::Cancelled
                && before
                    .lines
                    .iter()
                    .any(|l| l.number == line.number && l.state != LineState::Cancelled)
        })
        .map(|line| line.number)
        .collect();
    let payments: Vec<(usize, i64, i64)> = before
        .payments
        .iter()
        .zip(&after.payments)
        .enumerate()
        .filter(|(_, (was, now))| {
            was.voided_minor != now.voided_minor || was.refunded_minor != now.refunded_minor
        })
        .map(|(position, (_, now))| (position, now.voided_minor, now.refunded_minor))
        .collect();
    let released: Vec<usize> = before
        .allocations
        .iter()
        .zip(&after.allocations)
        .enumerate()
        .filter(|(_, (was, now))| was.state != now.state && now.state == AllocationState::Released)
        .map(|(position, _)| position)
        .collect();
    let jobs: Vec<serde_json::Value> = jobs
        .iter()
        .map(|job| {
            serde_json::json!({
                "id": job.id,
                "definition": job.definition,
                "requestId": job.request_id,
                "parameters": to_json(&job.parameters),
                "maxAttempts": job.retry.max_attempts,
                "initialBackoffMs": job.retry.initial_backoff_ms,
                "maxBackoffMs": job.retry.max_backoff_ms,
            })
        })
        .collect();
    let number = after.number.as_str();
    let now = record.created_at_ms;
    sqlx::query(WRITE_CANCELLATION)
        // orders
        .bind(&after.status)
        .bind(after.approval.as_ref().map(|a| approval_str(&a.state)))
        .bind(now)
        .bind(number)
        // order_lines
        .bind(number)
        .bind(to_json(&newly_cancelled))
        // payments
        .bind(to_json(&payments))
        .bind(number)
        // allocations
        .bind(number)
        .bind(to_json(&released))
        // cancellations
        .bind(&record.id)
        .bind(number)
        .bind(&record.customer_number)
        .bind(to_json(record))
        .bind(now)
        // jobs
        .bind(number)
        .bind(&record.id)
        .bind(now)
        .bind(now)
        .bind(now)
        .bind(to_json(&jobs))
        // idempotency_keys
        .bind(&record.id)
        .bind(idempotency.map(|(scope, _)| scope))
        .bind(idempotency.map(|(_, key)| key))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn cancellation_record(
    order: &Order,
    plan: &CancellationPlan,
    now: i64,
    erp_configured: bool,
) -> CancellationRecord {
    let mut warnings: Vec<WarningRecord> = plan
        .warnings
        .iter()
        .map(|w| WarningRecord {
            code: w.code.to_owned(),
            message: w.message.clone(),
        })
        .collect();
    if !erp_configured {
        warnings.push(WarningRecord {
            code: NOT_COMMUNICATED_TO_ERP.to_owned(),
            message: "no enabled job definition: this cancellation was committed here but \
                      not communicated to the ERP"
                .to_owned(),
        });
    }
    let lines = order
        .lines
        .iter()
        .filter(|l| plan.cancelled_lines.contains(&l.number))
        .map(|l| CancelledLineRecord {
            line_number: l.number,
            sku: l.sku.clone(),
            quantity: l.quantity,
            kind: match l.kind {
                LineKind::Product => "product",
                LineKind::Discount { .. } => "discount",
            }
            .to_owned(),
            amount_minor: l.amount_minor,
            tax_minor: l.tax_minor,
            parent_line: l.parent_line,
            erp_line_ref: l.erp_line_ref.clone(),
        })
        .collect();
    CancellationRecord {
        id: uuid::Uuid::new_v4().to_string(),
        order_number: order.number.clone(),
        created_at_ms: now,
        full: plan.full,
        cancelled_lines: plan.cancelled_lines.clone(),
        order_status: plan.new_order_status.clone(),
        voided_minor: plan.voided_minor,
        refund: plan.refund.as_ref().map(|r| RefundRecord {
            amount_minor: r.amount_minor,
            currency: r.currency.as_str().to_owned(),
            to: match r.to {
                RefundDestination::Original => "original",
                RefundDestination::BankAccount => "bankAccount",
            }
            .to_owned(),
        }),
        released_allocations: plan
            .released_allocations
            .iter()
            .map(|a| AllocationRecord {
                line_number: a.line_number,
                warehouse: a.warehouse.clone(),
                quantity: a.quantity,
                kind: allocation_kind_str(&a.kind).to_owned(),
            })
            .collect(),
        approval_cancelled: plan.approval_cancelled,
        warnings,
        erp_configured,
        reason: plan.reason.code().to_owned(),
        date: format_date(plan.date),
        invoice_reference: plan.invoice_reference.clone(),
        bank_details: plan.bank_details.as_ref().map(|b| BankDetailsRecord {
            account_owner: b.account_owner.clone(),
            iban: b.iban.clone(),
            bic: b.bic.clone(),
        }),
        forced_cancel: plan.forced_cancel,
        forced_cancel_with_refund: plan.forced_cancel_with_refund,
        for_user: plan.for_user.clone(),
        erp_order_number: order.erp_order_number.clone(),
        business_code: order.business_code.clone(),
        customer_number: order.customer_number.clone(),
        website: order.website.clone(),
        order_date: format_date(order.order_date),
        currency: order.currency.as_str().to_owned(),
        all_line_numbers: order.lines.iter().map(|l| l.number).collect(),
        lines,
        tracking: order.tracking.as_ref().map(|t| TrackingRecord {
            channel: channel_str(&t.channel).to_owned(),
            session: t.session.clone(),
            cuid: t.cuid.clone(),
            offline_channel: t.offline_channel.clone(),
        }),
    }
}
