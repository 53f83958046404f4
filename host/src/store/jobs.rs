//! The job outbox: enqueueing (inside the cancellation's transaction or by
//! hand), claiming with a lease, recording attempts, retries.
//!
//! Claiming is one `UPDATE … RETURNING`: on SQLite it runs on the single
//! writer connection, so two workers never claim the same job; on
//! PostgreSQL the candidates are selected `FOR UPDATE SKIP LOCKED`, so
//! workers of several replicas claim side by side, each passing over the
//! rows another is claiming. Every later write of an attempt is fenced by
//! the worker and the attempt number it claimed.

use std::collections::BTreeMap;

use super::config::{DEFINITION_SELECT, definition_from_row};
use super::db::{Db, Link, StoreRow, Tx, on};
use super::{
    AttemptLogLine, CancellationRecord, Connection, Job, JobAttempt, JobDefinition, JobState,
    RetryPolicy, Store, StoreError, from_json, now_ms, to_json,
};
use crate::plugins::RecordedExchanges;

/// A job a worker has claimed: it holds the lease until it records the
/// attempt's result or the lease expires.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// The job as claimed (state running, attempts counting this one).
    pub job: Job,
    /// This attempt's number (1-based, over the job's whole life).
    pub attempt: u32,
    /// Attempts made since the last manual retry, this one included; what
    /// the retry policy counts.
    pub attempt_in_round: u32,
}

/// The result of one attempt and what happens to the job next.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// `accepted`, `rejected`, `misconfigured`, `transient`, `trapped`,
    /// `deadline-exceeded`, `memory-cap-exceeded`, …
    pub outcome: String,
    /// The outcome's message.
    pub message: Option<String>,
    /// ERP reference when accepted.
    pub erp_reference: Option<String>,
    /// Plugin version that ran.
    pub plugin_version: Option<String>,
    /// Plugin log lines.
    pub log: Vec<AttemptLogLine>,
    /// The ERP exchange, when a plugin ran.
    pub exchange: Option<RecordedExchanges>,
    /// The job's next state: `Succeeded`, `Failed`, or `Retrying` at
    /// `retry_at_ms`.
    pub next: JobState,
    /// When a retrying job is due again.
    pub retry_at_ms: i64,
}

/// What an attempt of a job submits, read together in one statement by
/// [`Store::attempt_input`]. `None` where the store has no such thing (a
/// definition deleted since the job was made, a connection it names that
/// does not exist, a job that names no cancellation).
#[derive(Debug, Clone)]
pub struct AttemptInput {
    /// The job's definition.
    pub definition: Option<JobDefinition>,
    /// The definition's connection, its secrets opened.
    pub connection: Option<Connection>,
    /// The committed cancellation the job names.
    pub cancellation: Option<CancellationRecord>,
    /// Whether the definition's plugin (named without a version) has a
    /// shadow run that may still take a job: the worker offers the job to
    /// it after the attempt, and asks the store nothing when not.
    pub shadow_run_wants_jobs: bool,
}

/// One worker's attempt for [`Store::record_attempts`]: its result, and
/// whether to claim the worker's next job with it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The worker that ran the attempt (and holds the lease).
    pub worker: String,
    /// The job as the worker claimed it.
    pub claimed: ClaimedJob,
    /// What to record.
    pub result: AttemptResult,
    /// Whether to claim the worker's next job with the record.
    pub claim_next: bool,
}

/// What one record of [`Store::record_attempts`] came to.
#[derive(Debug, Clone)]
pub struct RecordedAttempt {
    /// False when the worker no longer held the lease (another worker took
    /// the job up after it expired): nothing of the attempt was written.
    pub recorded: bool,
    /// The worker's next job, claimed with the record.
    pub next: Option<ClaimedJob>,
}

/// How the claims of [`Store::record_attempts`] share a pool's workers
/// between the retries of job definitions: each claim passes over the
/// retries of the definitions [`RetryShares::held`] names, and the job it
/// claims [`RetryShares::enter`]s, so that the next claim of the group sees
/// it.
pub trait RetryShares: Send + 'static {
    /// The definitions whose retries hold their whole share.
    fn held(&self) -> Vec<String>;
    /// A job just claimed.
    fn enter(&mut self, job: &ClaimedJob);
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs about this order.
    pub order_number: Option<String>,
    /// Only jobs of this job definition.
    pub definition: Option<String>,
    /// At most this many (newest first).
    pub limit: u32,
    /// Only jobs created at or after this time (Unix ms).
    pub created_from_ms: Option<i64>,
    /// Only jobs created before this time (Unix ms).
    pub created_until_ms: Option<i64>,
}

/// Why a job could not be retried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetryError {
    /// No such job.
    #[error("no job with id {0}")]
    NotFound(String),
    /// Only failed jobs are retried by hand; others are already on their way.
    #[error("job is {}, only failed jobs can be retried", .0.as_str())]
    NotFailed(JobState),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A manual run of a job definition.
#[derive(Debug, Clone)]
pub struct ManualRun {
    /// Parameter values given by the caller.
    pub parameters: BTreeMap<String, String>,
}

/// Why a manual run was not enqueued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// No such job definition.
    #[error("no job definition named {0:?}")]
    UnknownDefinition(String),
    /// A parameter is missing or names something that does not exist.
    #[error("parameter {name}: {message}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RunError {
    fn from(e: sqlx::Error) -> Self {
        RunError::Store(e.into())
    }
}

impl From<sqlx::Error> for RetryError {
    fn from(e: sqlx::Error) -> Self {
        RetryError::Store(e.into())
    }
}

/// Whether job `due` must wait: an earlier job of the same definition for
/// the same order has not settled yet. Jobs of one order reach an ERP in the
/// order their cancellations were committed (ids are time-ordered within a
/// millisecond), so a partial cancellation is never delivered after the one
/// that ended the order, which the ERP would refuse.
///
/// The test of `earlier.state` is, word for word, the rule of SQLite's
/// index of unsettled jobs by order (`jobs_order_unsettled`): that is how
/// SQLite knows the index answers it, and the index holds only the queue,
/// however many finished jobs the store keeps. PostgreSQL indexes every job
/// by order and reads the same text.
const EARLIER_JOB_UNSETTLED: &str = "EXISTS (
    SELECT 1 FROM jobs AS earlier
    WHERE earlier.order_number = due.order_number
      AND earlier.definition = due.definition
      AND (earlier.state = 'queued' OR earlier.state = 'running' OR earlier.state = 'retrying')
      AND (earlier.created_at, earlier.id) < (due.created_at, due.id))";

/// A value [`job_list_sql`] binds.
enum ListValue<'a> {
    Text(&'a str),
    Time(i64),
}

/// The statement listing the jobs that match `filter`, newest first, in
/// SQLite's words (`sqlite`) or PostgreSQL's, and the values it binds in
/// order (the limit is bound last, after them). Only the filters given are
/// in the statement, so that the planner can use the index of each (an
/// `OR $1 IS NULL` would hide it).
fn job_list_sql(filter: &JobFilter, sqlite: bool) -> (String, Vec<ListValue<'_>>) {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    if let Some(order) = &filter.order_number {
        values.push(ListValue::Text(order));
        let n = values.len();
        conditions.push(if sqlite {
            // SQLite indexes only the unsettled jobs by order: the order's
            // jobs are found through its cancellations (every job belongs
            // to one), along `cancellations_order` and `jobs_cancellation`.
            format!(
                "order_number = ${n}
                 AND cancellation_id IN (SELECT id FROM cancellations WHERE order_number = ${n})"
            )
        } else {
            format!("order_number = ${n}")
        });
    }
    if let Some(state) = filter.state {
        values.push(ListValue::Text(state.as_str()));
        // With an order given, its few jobs are read first: on SQLite, `+`
        // keeps the planner from reading every job in the state along
        // `jobs_due` instead.
        let unindexed = if sqlite && filter.order_number.is_some() {
            "+"
        } else {
            ""
        };
        conditions.push(format!("{unindexed}state = ${}", values.len()));
    }
    if let Some(definition) = &filter.definition {
        values.push(ListValue::Text(definition));
        conditions.push(format!("definition = ${}", values.len()));
    }
    if let Some(from) = filter.created_from_ms {
        values.push(ListValue::Time(from));
        conditions.push(format!("created_at >= ${}", values.len()));
    }
    if let Some(until) = filter.created_until_ms {
        values.push(ListValue::Time(until));
        conditions.push(format!("created_at < ${}", values.len()));
    }
    let filters = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs {filters}
         ORDER BY created_at DESC, id DESC LIMIT ${}",
        values.len() + 1
    );
    (sql, values)
}

/// One lane of due jobs: the claim takes from the lanes in order, each read
/// along an index (`jobs_due`, `(state, run_at)`) in due order and stopped
/// at the limit, so a claim costs the same with ten queued jobs or a
/// million. One query ordering every due job by "first attempt, then due
/// time" would sort the whole queue at every claim.
struct ClaimLane {
    /// The lane's state.
    state: &'static str,
    /// The column holding the time a job of the lane is due.
    due_at: &'static str,
    /// Whether the lane's jobs hold an attempt left open (their worker
    /// died during it): only a running job does.
    open_attempt: bool,
}

/// Jobs whose worker died holding the lease (the oldest attempts in
/// flight, and few), then first attempts (of a job, or of a round after a
/// manual retry or a rollback: a `queued` job never has attempts in its
/// round), then retries. A plugin that fails every attempt and is retried
/// quickly cannot fill the queue in front of the first attempts of other
/// jobs. The expired lane comes first so that a job the claim itself
/// takes (with a lease that is over at once) is not taken twice.
const CLAIM_LANES: [ClaimLane; 3] = [
    ClaimLane {
        state: "running",
        due_at: "lease_expires_at",
        open_attempt: true,
    },
    ClaimLane {
        state: "queued",
        due_at: "run_at",
        open_attempt: false,
    },
    ClaimLane {
        state: "retrying",
        due_at: "run_at",
        open_attempt: false,
    },
];

const JOB_COLUMNS: &str = "id, definition, order_number, cancellation_id, request_id, parameters,
    state, attempts, attempt_base, max_attempts, initial_backoff_ms, max_backoff_ms, run_at,
    erp_reference, last_error, created_at, updated_at";

fn job_from_row(row: &impl StoreRow) -> Result<Job, StoreError> {
    let state = row.text("state")?;
    Ok(Job {
        id: row.text("id")?,
        definition: row.text("definition")?,
        order_number: row.text("order_number")?,
        cancellation_id: row.opt_text("cancellation_id")?,
        request_id: row.text("request_id")?,
        parameters: from_json("parameters", &row.text("parameters")?)?,
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown job state {state:?}")))?,
        attempts: row.count("attempts")?,
        retry: RetryPolicy {
            max_attempts: row.count("max_attempts")?,
            initial_backoff_ms: row.int("initial_backoff_ms")?.max(0) as u64,
            max_backoff_ms: row.int("max_backoff_ms")?.max(0) as u64,
        },
        run_at_ms: row.int("run_at")?,
        erp_reference: row.opt_text("erp_reference")?,
        last_error: row.opt_text("last_error")?,
        created_at_ms: row.int("created_at")?,
        updated_at_ms: row.int("updated_at")?,
    })
}

/// A new queued job of `definition`, due now: a time-ordered id, and a
/// request id of its own that every attempt sends as the ERP's
/// idempotency key.
pub fn new_job(
    definition: &JobDefinition,
    order_number: &str,
    cancellation_id: Option<&str>,
    parameters: BTreeMap<String, String>,
    now: i64,
) -> Job {
    Job {
        // Time-ordered (v7): inserts land at the end of the id index.
        id: uuid::Uuid::now_v7().to_string(),
        definition: definition.name.clone(),
        order_number: order_number.to_owned(),
        cancellation_id: cancellation_id.map(str::to_owned),
        // The ERP's idempotency key: one per job, the same for every attempt.
        request_id: uuid::Uuid::new_v4().to_string(),
        parameters,
        state: JobState::Queued,
        attempts: 0,
        retry: definition.retry,
        run_at_ms: now,
        erp_reference: None,
        last_error: None,
        created_at_ms: now,
        updated_at_ms: now,
    }
}

/// Inserts a queued job of `definition` (inside the caller's transaction).
pub(super) async fn insert_job(
    mut link: Link<'_>,
    definition: &JobDefinition,
    order_number: &str,
    cancellation_id: Option<&str>,
    parameters: BTreeMap<String, String>,
    now: i64,
) -> Result<Job, StoreError> {
    let job = new_job(definition, order_number, cancellation_id, parameters, now);
    on!(&mut link, |c| sqlx::query(INSERT_JOB)
        .bind(&job.id)
        .bind(&job.definition)
        .bind(&job.order_number)
        .bind(&job.cancellation_id)
        .bind(&job.request_id)
        .bind(to_json(&job.parameters))
        .bind(i64::from(job.retry.max_attempts))
        .bind(i64::try_from(job.retry.initial_backoff_ms).unwrap_or(i64::MAX))
        .bind(i64::try_from(job.retry.max_backoff_ms).unwrap_or(i64::MAX))
        .bind(now)
        .execute(&mut **c)
        .await
        .map(drop)?);
    Ok(job)
}

/// Inserts a queued job, due at `$10` (also its creation time). The same
/// text serves sqlx on either database and SQLite's cancellation writer.
pub(super) const INSERT_JOB: &str = "INSERT INTO jobs (id, definition, order_number,
        cancellation_id, request_id, parameters, state, max_attempts, initial_backoff_ms,
        max_backoff_ms, run_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8, $9, $10, $10, $10)";

/// The jobs of a cancellation, oldest first.
pub(super) async fn jobs_of_cancellation(
    conn: &mut super::db::Conn,
    cancellation_id: &str,
) -> Result<Vec<Job>, StoreError> {
    on!(conn, |conn| sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE cancellation_id = $1 ORDER BY created_at, definition"
    ))
    .bind(cancellation_id)
    .fetch_all(&mut **conn)
    .await?
    .iter()
    .map(job_from_row)
    .collect())
}

impl Store {
    /// A job.
    pub async fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        on!(&self.reader, |pool| sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(job_from_row)
        .transpose())
    }

    /// A job's attempts, first first.
    pub async fn job_attempts(&self, id: &str) -> Result<Vec<JobAttempt>, StoreError> {
        on!(&self.reader, |pool| sqlx::query(
            "SELECT number, worker, started_at, ended_at, outcome, message, erp_reference,
                    plugin_version, log, exchange
             FROM job_attempts WHERE job_id = $1 ORDER BY number",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            let log: Vec<AttemptLogLine> = from_json("attempt log", &row.text("log")?)?;
            let exchange: Option<RecordedExchanges> = row
                .opt_text("exchange")?
                .map(|text| from_json("attempt exchange", &text))
                .transpose()?;
            Ok(JobAttempt {
                number: row.count("number")?,
                worker: row.text("worker")?,
                started_at_ms: row.int("started_at")?,
                ended_at_ms: row.opt_int("ended_at")?,
                outcome: row.opt_text("outcome")?,
                message: row.opt_text("message")?,
                erp_reference: row.opt_text("erp_reference")?,
                plugin_version: row.opt_text("plugin_version")?,
                log,
                exchange,
            })
        })
        .collect())
    }

    /// Jobs matching the filter, newest first.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let (sql, values) = job_list_sql(filter, matches!(self.reader, Db::Sqlite(_)));
        on!(&self.reader, |pool| {
            let mut query = sqlx::query(&sql);
            for value in &values {
                query = match value {
                    ListValue::Text(text) => query.bind(*text),
                    ListValue::Time(ms) => query.bind(*ms),
                };
            }
            query
                .bind(i64::from(filter.limit.max(1)))
                .fetch_all(pool)
                .await?
                .iter()
                .map(job_from_row)
                .collect()
        })
    }

    /// Number of jobs in each state (for metrics).
    pub async fn job_counts(&self) -> Result<Vec<(JobState, i64)>, StoreError> {
        let counts: BTreeMap<String, i64> = on!(&self.reader, |pool| sqlx::query(
            "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state"
        )
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| Ok((row.text("state")?, row.int("n")?)))
        .collect::<Result<_, StoreError>>()?);
        Ok(JobState::ALL
            .into_iter()
            .map(|s| (s, counts.get(s.as_str()).copied().unwrap_or(0)))
            .collect())
    }

    /// How many jobs failed for good (state `failed`) at or after
    /// `since_ms`: the jobs whose last change, at that time or later, was
    /// their failure. A failed job retried since is not counted.
    pub async fn jobs_failed_since(&self, since_ms: i64) -> Result<i64, StoreError> {
        on!(&self.reader, |pool| {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM jobs WHERE state = 'failed' AND updated_at >= $1",
            )
            .bind(since_ms)
            .fetch_one(pool)
            .await?;
            row.int("n")
        })
    }

    /// Enqueues a manual run of a definition: it submits the newest
    /// cancellation of the order named by the `OrderNumber` parameter again.
    pub async fn run_job_definition(&self, name: &str, run: &ManualRun) -> Result<Job, RunError> {
        let mut tx = self.write().await.map_err(RunError::Store)?;
        let definition = on!(&mut tx, |tx| sqlx::query(&format!(
            "{DEFINITION_SELECT} WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?
        .map(|row| definition_from_row(&row))
        .transpose()?);
        let Some(definition) = definition else {
            return Err(RunError::UnknownDefinition(name.to_owned()));
        };
        let parameters = definition.parameters.clone();
        let mut values: BTreeMap<String, String> = parameters
            .iter()
            .map(|p| (p.name.clone(), p.default_value.clone()))
            .collect();
        for (key, value) in &run.parameters {
            if !parameters.iter().any(|p| &p.name == key) && key != "OrderNumber" {
                return Err(RunError::InvalidParameter {
                    name: key.clone(),
                    message: format!("the job definition has no parameter {key:?}"),
                });
            }
            values.insert(key.clone(), value.clone());
        }
        let order_number = values
            .get("OrderNumber")
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| RunError::InvalidParameter {
                name: "OrderNumber".to_owned(),
                message: "required: the order whose cancellation to submit".to_owned(),
            })?;
        let newest: Option<String> = on!(&mut tx, |tx| sqlx::query_scalar(
            super::cancellations::LATEST_CANCELLATION
        )
        .bind(&order_number)
        .fetch_optional(&mut **tx)
        .await?);
        let Some(newest) = newest else {
            return Err(RunError::InvalidParameter {
                name: "OrderNumber".to_owned(),
                message: format!("order {order_number:?} has no cancellation to submit"),
            });
        };
        let newest: super::CancellationRecord = from_json("cancellation", &newest)?;
        if !definition.applies_to.applies(newest.full) {
            return Err(RunError::InvalidParameter {
                name: "OrderNumber".to_owned(),
                message: format!(
                    "the newest cancellation of order {order_number:?} is {}, and job definition \
                     {name:?} applies to {} cancellations only",
                    if newest.full { "full" } else { "partial" },
                    definition.applies_to.as_str()
                ),
            });
        }
        let cancellation = newest.id;
        super::notify_jobs(&mut tx).await?;
        let job = insert_job(
            tx.link(),
            &definition,
            &order_number,
            Some(&cancellation),
            values,
            now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Puts a failed job back in the queue with a full round of attempts.
    pub async fn retry_job(&self, id: &str) -> Result<Job, RetryError> {
        let mut tx = self.write().await.map_err(RetryError::Store)?;
        let state: Option<String> = on!(&mut tx, |tx| sqlx::query_scalar(
            "SELECT state FROM jobs WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?);
        let Some(state) = state else {
            return Err(RetryError::NotFound(id.to_owned()));
        };
        let state = JobState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown job state {state:?}")))?;
        if state != JobState::Failed {
            return Err(RetryError::NotFailed(state));
        }
        let now = now_ms();
        let job = on!(&mut tx, |tx| job_from_row(
            &sqlx::query(&format!(
                "UPDATE jobs SET state = 'queued', attempt_base = attempts, run_at = $1,
                     updated_at = $1
                 WHERE id = $2 AND state = 'failed' RETURNING {JOB_COLUMNS}"
            ))
            .bind(now)
            .bind(id)
            .fetch_one(&mut **tx)
            .await?
        )?);
        super::notify_jobs(&mut tx).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Puts jobs whose failures came from a plugin version that was rolled
    /// back into the queue again, due now, with a fresh round of attempts
    /// (the withdrawn version's failures do not count against them). Only
    /// `retrying` and `failed` jobs move: a job that succeeded meanwhile, or
    /// runs again, is left alone. Answers how many moved.
    pub async fn requeue_jobs(&self, ids: &[String]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let mut tx = self.write().await?;
        let mut moved = 0;
        for id in ids {
            moved += on!(&mut tx, |tx| sqlx::query(
                "UPDATE jobs SET state = 'queued', attempt_base = attempts, run_at = $1,
                     updated_at = $1
                 WHERE id = $2 AND state IN ('retrying', 'failed')",
            )
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected());
        }
        if moved > 0 {
            super::notify_jobs(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Claims up to `limit` due jobs for `worker` with a lease of `lease_ms`:
    /// queued and retrying jobs whose time has come, and running jobs whose
    /// lease expired (their worker died). Starts an attempt for each.
    ///
    /// Jobs whose lease expired go first, then the jobs that have not been
    /// tried yet (in this round of attempts), then the retries, each by due
    /// time: a plugin that fails every attempt and is retried quickly
    /// cannot fill the queue in front of the first attempts of other jobs.
    pub async fn claim_due_jobs(
        &self,
        worker: &str,
        limit: u32,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        self.claim_due_jobs_passing_over(worker, limit, lease_ms, &[])
            .await
    }

    /// [`Store::claim_due_jobs`], passing over the retries of the job
    /// definitions in `retries_held`: their first attempts are still
    /// claimed. The worker pool names the definitions whose retries hold
    /// their share of its workers, so that one definition failing every
    /// attempt never holds them all.
    pub async fn claim_due_jobs_passing_over(
        &self,
        worker: &str,
        limit: u32,
        lease_ms: i64,
        retries_held: &[String],
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let mut tx = self.write_rows().await?;
        let claimed = claim_in(&mut tx, worker, limit, lease_ms, retries_held).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// What an attempt of `job` submits, read in one statement: its
    /// definition, that definition's connection with its secrets opened,
    /// the committed cancellation the job names, and whether the
    /// definition's plugin has a shadow run that may still take a job.
    pub async fn attempt_input(&self, job: &Job) -> Result<AttemptInput, StoreError> {
        let cipher = self.secrets_cipher();
        on!(&self.reader, |pool| attempt_input_from_rows(
            &cipher,
            &sqlx::query(ATTEMPT_INPUT)
                .bind(&job.definition)
                .bind(job.cancellation_id.as_deref())
                .fetch_all(pool)
                .await?,
        ))
    }

    /// Extends the lease on a claimed job to `lease_ms` from now, if
    /// `worker` still holds it for this attempt: the heartbeat of a running
    /// attempt, so that a slow one is never taken up by a second worker.
    /// False when the lease is lost (another worker took the job up after it
    /// expired, or the job is no longer running); then nothing changes.
    pub async fn renew_lease(
        &self,
        claimed: &ClaimedJob,
        worker: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.write_rows().await?;
        let renewed = on!(&mut tx, |tx| sqlx::query(
            "UPDATE jobs SET lease_expires_at = $1
             WHERE id = $2 AND lease_owner = $3 AND state = 'running' AND attempts = $4",
        )
        .bind(now.saturating_add(lease_ms))
        .bind(&claimed.job.id)
        .bind(worker)
        .bind(i64::from(claimed.attempt))
        .execute(&mut **tx)
        .await?
        .rows_affected());
        tx.commit().await?;
        Ok(renewed == 1)
    }

    /// Records an attempt's result and moves the job on. False when the
    /// worker no longer held the lease (another worker took the job up after
    /// the lease expired); then nothing is recorded.
    pub async fn finish_attempt(
        &self,
        claimed: &ClaimedJob,
        worker: &str,
        result: &AttemptResult,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_rows().await?;
        let recorded = finish_in(&mut tx, claimed, worker, result).await?;
        if recorded {
            tx.commit().await?;
        }
        Ok(recorded)
    }

    /// Records the attempts of several workers in one transaction, each
    /// followed by the claim of its worker's next job where the record asks
    /// for one (the claim passes over the retries `shares` says hold their
    /// share, and the job it claims enters `shares`). All or nothing: after
    /// an error none of it is written, and `shares` is dropped. Answers each
    /// record's outcome, in order, and `shares` as the claims left it.
    ///
    /// On SQLite the transaction runs on the writer thread's own connection
    /// as plain calls, one trip there and back for the whole group rather
    /// than two thread wake-ups per statement through sqlx; on PostgreSQL
    /// it is a transaction of the pool.
    pub async fn record_attempts<S: RetryShares>(
        &self,
        records: &[AttemptRecord],
        lease_ms: i64,
        mut shares: S,
    ) -> Result<(Vec<RecordedAttempt>, S), StoreError> {
        if let Some(writer) = &self.cancellations {
            let records = records.to_vec();
            return writer
                .run(move |connection| {
                    let answers =
                        on_writer::record_attempts(connection, &records, lease_ms, &mut shares)?;
                    Ok((answers, shares))
                })
                .await;
        }
        let mut writes = self.job_writes().await?;
        let mut answers = Vec::with_capacity(records.len());
        for record in records {
            let recorded = writes
                .finish(&record.claimed, &record.worker, &record.result)
                .await?;
            let mut next = None;
            if record.claim_next {
                next = writes
                    .claim(&record.worker, 1, lease_ms, &shares.held())
                    .await?
                    .into_iter()
                    .next();
                if let Some(job) = &next {
                    shares.enter(job);
                }
            }
            answers.push(RecordedAttempt { recorded, next });
        }
        writes.commit().await?;
        Ok((answers, shares))
    }

    /// Opens one write transaction in which a worker pool records the
    /// attempts of several workers and claims their next jobs: the pool's
    /// deliveries share one commit. See [`JobWrites`].
    pub(super) async fn job_writes(&self) -> Result<JobWrites, StoreError> {
        Ok(JobWrites {
            tx: self.write_rows().await?,
        })
    }

    /// Gives back the leases of jobs a stopping worker could not finish:
    /// they are due again at once, and the open attempt is marked released.
    pub async fn release_jobs(&self, worker: &str) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut tx = self.write_rows().await?;
        on!(&mut tx, |tx| sqlx::query(
            "UPDATE job_attempts SET ended_at = $1, outcome = 'released',
                 message = 'the host shut down before the attempt finished'
             WHERE ended_at IS NULL AND job_id IN
                 (SELECT id FROM jobs WHERE lease_owner = $2 AND state = 'running')",
        )
        .bind(now)
        .bind(worker)
        .execute(&mut **tx)
        .await
        .map(drop)?);
        let released = on!(&mut tx, |tx| sqlx::query(
            "UPDATE jobs SET state = 'retrying', run_at = $1, lease_owner = NULL,
                 lease_expires_at = NULL, updated_at = $1
             WHERE lease_owner = $2 AND state = 'running'",
        )
        .bind(now)
        .bind(worker)
        .execute(&mut **tx)
        .await?
        .rows_affected());
        if released > 0 {
            super::notify_jobs(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(released)
    }

    /// The earliest time a queued or retrying job is due (for the workers'
    /// sleep), if any.
    pub async fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        self.next_due_ms_passing_over(&[]).await
    }

    /// [`Store::next_due_ms`] of the jobs that
    /// [`Store::claim_due_jobs_passing_over`] would claim with the same
    /// `retries_held`.
    pub async fn next_due_ms_passing_over(
        &self,
        retries_held: &[String],
    ) -> Result<Option<i64>, StoreError> {
        let statement = next_due_sql(&passing_over(&self.reader, retries_held, 1));
        Ok(on!(&self.reader, |pool| {
            let query = sqlx::query_scalar(&statement);
            if retries_held.is_empty() {
                query
            } else {
                query.bind(definitions_json(retries_held))
            }
            .fetch_one(pool)
            .await?
        }))
    }
}

/// What one batch of the job retention deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Finished jobs deleted.
    pub jobs: u64,
    /// Their attempts, deleted with them.
    pub attempts: u64,
}

impl Store {
    /// Deletes up to `limit` finished jobs (`succeeded` or `failed`) that
    /// finished before `finished_before_ms`, with their attempts, in one
    /// short write transaction; answers what it deleted (fewer than `limit`
    /// jobs: none older is left). Queued, running and retrying jobs are
    /// never deleted, nor is any cancellation: each keeps how many of its
    /// jobs were deleted in each state, so its `erpSync.state` stays what
    /// it was.
    ///
    /// A finished job's `run_at` is the time it finished (no later attempt
    /// is due), so the batch is a range of the `(state, run_at)` index,
    /// whatever the table's size; `updated_at` is checked as well.
    pub async fn prune_finished_jobs(
        &self,
        finished_before_ms: i64,
        limit: u32,
    ) -> Result<Pruned, StoreError> {
        let limit = i64::from(limit.max(1));
        // SQLite: on the writer thread, between groups of cancellations,
        // with no round trip to a connection thread per statement.
        if let Some(writer) = &self.cancellations {
            return writer
                .run(move |connection| on_writer::prune(connection, finished_before_ms, limit))
                .await;
        }
        // Only PostgreSQL gets here. Its advisory write lock: a manual
        // retry (the only write that moves a finished job) waits for it, so
        // the batch's jobs stay finished until it commits.
        let mut tx = self.write().await?;
        let ids: Vec<String> = on!(&mut tx, |tx| sqlx::query_scalar(PRUNE_PICK)
            .bind(finished_before_ms)
            .bind(limit)
            .fetch_all(&mut **tx)
            .await?);
        if ids.is_empty() {
            return Ok(Pruned::default());
        }
        let ids_json = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".to_owned());
        let mut affected = [0u64; 3];
        for (statement, count) in prune_statements("SELECT json_array_elements_text($1::json)")
            .iter()
            .zip(&mut affected)
        {
            *count = on!(&mut tx, |tx| sqlx::query(statement)
                .bind(&ids_json)
                .execute(&mut **tx)
                .await?
                .rows_affected());
        }
        tx.commit().await?;
        Ok(Pruned {
            jobs: affected[2],
            attempts: affected[1],
        })
    }
}

/// A batch of the job retention: finished jobs before `$1`, at most `$2`.
const PRUNE_PICK: &str = "SELECT id FROM jobs
     WHERE state IN ('succeeded', 'failed') AND run_at < $1 AND updated_at < $1
     LIMIT $2";

/// What a prune batch writes, given `batch`, a query of the batch's job ids
/// from the JSON array `$1`: the counts the cancellations read in place of
/// their deleted jobs, then the attempts, then the jobs.
fn prune_statements(batch: &str) -> [String; 3] {
    [
        format!(
            "UPDATE cancellations SET
                 jobs_pruned_succeeded = jobs_pruned_succeeded + (SELECT COUNT(*) FROM jobs
                     WHERE jobs.cancellation_id = cancellations.id
                       AND jobs.state = 'succeeded' AND jobs.id IN ({batch})),
                 jobs_pruned_failed = jobs_pruned_failed + (SELECT COUNT(*) FROM jobs
                     WHERE jobs.cancellation_id = cancellations.id
                       AND jobs.state = 'failed' AND jobs.id IN ({batch}))
             WHERE id IN (SELECT cancellation_id FROM jobs WHERE id IN ({batch}))"
        ),
        format!("DELETE FROM job_attempts WHERE job_id IN ({batch})"),
        format!("DELETE FROM jobs WHERE id IN ({batch})"),
    ]
}

/// A write transaction of the job queue: [`JobWrites::finish`] and
/// [`JobWrites::claim`] as [`Store::finish_attempt`] and
/// [`Store::claim_due_jobs_passing_over`] do them, for any number of
/// workers, until [`JobWrites::commit`]. Dropped without a commit, none of
/// it is written. After an error the transaction is no longer usable (on
/// PostgreSQL a failed statement aborts it): drop it and write again.
pub(super) struct JobWrites {
    tx: Tx,
}

impl std::fmt::Debug for JobWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobWrites")
    }
}

impl JobWrites {
    /// Records an attempt's result and moves the job on, as
    /// [`Store::finish_attempt`] (false: `worker` no longer held the lease,
    /// and nothing of the attempt is written).
    pub(super) async fn finish(
        &mut self,
        claimed: &ClaimedJob,
        worker: &str,
        result: &AttemptResult,
    ) -> Result<bool, StoreError> {
        finish_in(&mut self.tx, claimed, worker, result).await
    }

    /// Claims up to `limit` due jobs for `worker`, as
    /// [`Store::claim_due_jobs_passing_over`]; it sees what this
    /// transaction wrote before it.
    pub(super) async fn claim(
        &mut self,
        worker: &str,
        limit: u32,
        lease_ms: i64,
        retries_held: &[String],
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        claim_in(&mut self.tx, worker, limit, lease_ms, retries_held).await
    }

    /// Commits everything written.
    pub(super) async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

async fn claim_in(
    tx: &mut Tx,
    worker: &str,
    limit: u32,
    lease_ms: i64,
    retries_held: &[String],
) -> Result<Vec<ClaimedJob>, StoreError> {
    let now = now_ms();
    // On PostgreSQL, rows another replica is claiming are passed over
    // rather than waited for.
    let skip_locked = match &*tx {
        Db::Sqlite(_) => "",
        Db::Postgres(_) => "FOR UPDATE OF due SKIP LOCKED",
    };
    let passed_over = passing_over(&*tx, retries_held, 5);
    let mut claimed_rows = Vec::new();
    for lane in CLAIM_LANES {
        let wanted = i64::from(limit) - claimed_rows.len() as i64;
        if wanted <= 0 {
            break;
        }
        claimed_rows.extend(on!(&mut *tx, |tx| with_definitions(
            sqlx::query(&claim_lane_sql(&lane, &passed_over, skip_locked))
                .bind(worker)
                .bind(now + lease_ms)
                .bind(now)
                .bind(wanted),
            retries_held
        )
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| {
            Ok((
                job_from_row(row)?,
                row.count::<u32>("attempt_base")?,
                lane.open_attempt,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?));
    }
    let mut claimed = Vec::with_capacity(claimed_rows.len());
    for (job, base, open_attempt) in claimed_rows {
        // An attempt left open belonged to a worker that died holding
        // the lease.
        if open_attempt {
            on!(&mut *tx, |tx| sqlx::query(CLOSE_EXPIRED_ATTEMPT)
                .bind(now)
                .bind(&job.id)
                .execute(&mut **tx)
                .await
                .map(drop)?);
        }
        on!(&mut *tx, |tx| sqlx::query(START_ATTEMPT)
            .bind(&job.id)
            .bind(i64::from(job.attempts))
            .bind(worker)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map(drop)?);
        claimed.push(claimed_job(job, base));
    }
    Ok(claimed)
}

/// The record of [`Store::finish_attempt`], inside `tx`: false (and
/// nothing written) when `worker` no longer holds the job's lease.
async fn finish_in(
    tx: &mut Tx,
    claimed: &ClaimedJob,
    worker: &str,
    result: &AttemptResult,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let (run_at, last_error) = moved_on(result, now);
    let updated = on!(&mut *tx, |tx| {
        sqlx::query(FINISH_JOB)
            .bind(result.next.as_str())
            .bind(run_at)
            .bind(&result.erp_reference)
            .bind(last_error)
            .bind(now)
            .bind(&claimed.job.id)
            .bind(worker)
            .bind(i64::from(claimed.attempt))
            .execute(&mut **tx)
            .await?
            .rows_affected()
    });
    if updated == 0 {
        return Ok(false);
    }
    on!(&mut *tx, |tx| sqlx::query(FINISH_ATTEMPT)
        .bind(now)
        .bind(&result.outcome)
        .bind(&result.message)
        .bind(&result.erp_reference)
        .bind(&result.plugin_version)
        .bind(to_json(&result.log))
        .bind(result.exchange.as_ref().map(to_json))
        .bind(&claimed.job.id)
        .bind(i64::from(claimed.attempt))
        .execute(&mut **tx)
        .await
        .map(drop)?);
    Ok(true)
}

/// The condition that passes over the retries of the definitions bound as
/// a JSON array to parameter `$n`, or nothing when there are none, so that
/// the common statement stays as simple as it can be (and binds nothing
/// more: see [`with_definitions`]).
fn passing_over<S, P>(db: &Db<S, P>, retries_held: &[String], n: u8) -> String {
    passing_over_on(matches!(db, Db::Sqlite(_)), retries_held, n)
}

/// [`passing_over`] in SQLite's words (`sqlite`) or PostgreSQL's.
fn passing_over_on(sqlite: bool, retries_held: &[String], n: u8) -> String {
    if retries_held.is_empty() {
        return String::new();
    }
    let names = if sqlite {
        format!("SELECT value FROM json_each(${n})")
    } else {
        format!("SELECT json_array_elements_text(${n}::json)")
    };
    format!("AND NOT (due.attempts > due.attempt_base AND due.definition IN ({names}))")
}

/// The statement answering the earliest due time of the jobs a claim with
/// `passed_over` (from [`passing_over`], binding `$1`) would take: the
/// first due time of each lane, read along the lane's index like the claim.
fn next_due_sql(passed_over: &str) -> String {
    let firsts: Vec<String> = CLAIM_LANES
        .iter()
        .map(|lane| {
            format!(
                "SELECT (SELECT due.{due_at} FROM jobs AS due
                     WHERE due.state = '{state}' AND NOT {EARLIER_JOB_UNSETTLED} {passed_over}
                     ORDER BY due.{due_at} LIMIT 1) AS t",
                due_at = lane.due_at,
                state = lane.state,
            )
        })
        .collect();
    format!(
        "SELECT MIN(t) FROM ({}) AS due_times",
        firsts.join(" UNION ALL ")
    )
}

/// The claim of up to `$4` due jobs of `lane` for worker `$1`, leased until
/// `$2`, at `$3` (now); `passed_over` from [`passing_over`] binds `$5`.
fn claim_lane_sql(lane: &ClaimLane, passed_over: &str, skip_locked: &str) -> String {
    format!(
        "UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires_at = $2,
             attempts = attempts + 1, updated_at = $3
         WHERE id IN (
             SELECT id FROM jobs AS due
             WHERE due.state = '{state}' AND due.{due_at} <= $3
               AND NOT {EARLIER_JOB_UNSETTLED} {passed_over}
             ORDER BY due.{due_at} LIMIT $4 {skip_locked})
         RETURNING {JOB_COLUMNS}",
        state = lane.state,
        due_at = lane.due_at,
    )
}

/// Closes the attempt left open by a worker that died holding job `$2`'s
/// lease, at `$1`.
const CLOSE_EXPIRED_ATTEMPT: &str = "UPDATE job_attempts SET ended_at = $1,
        outcome = 'lease-expired',
        message = 'the worker stopped before recording a result; the lease expired'
    WHERE job_id = $2 AND ended_at IS NULL";

/// Opens attempt `$2` of job `$1` by worker `$3` at `$4`.
const START_ATTEMPT: &str = "INSERT INTO job_attempts (job_id, number, worker, started_at)
    VALUES ($1, $2, $3, $4)";

/// Moves job `$6` on to state `$1`, due at `$2`, if worker `$7` still holds
/// its lease for attempt `$8`.
const FINISH_JOB: &str = "UPDATE jobs SET state = $1, run_at = $2, lease_owner = NULL,
        lease_expires_at = NULL, erp_reference = COALESCE($3, erp_reference),
        last_error = $4, updated_at = $5
    WHERE id = $6 AND lease_owner = $7 AND state = 'running' AND attempts = $8";

/// Records how attempt `$9` of job `$8` ended.
const FINISH_ATTEMPT: &str = "UPDATE job_attempts SET ended_at = $1, outcome = $2, message = $3,
        erp_reference = $4, plugin_version = $5, log = $6, exchange = $7
    WHERE job_id = $8 AND number = $9";

/// When a job recorded with `result` at `now` is due again, and its last
/// error (none once it succeeded).
fn moved_on(result: &AttemptResult, now: i64) -> (i64, Option<String>) {
    let run_at = if result.next == JobState::Retrying {
        result.retry_at_ms
    } else {
        now
    };
    let last_error = (result.next != JobState::Succeeded).then(|| describe(result));
    (run_at, last_error)
}

/// A job as claimed, its attempt counted in its round from `base`.
fn claimed_job(job: Job, base: u32) -> ClaimedJob {
    ClaimedJob {
        attempt: job.attempts,
        attempt_in_round: job.attempts.saturating_sub(base),
        job,
    }
}

/// `query` with `retries_held` bound as the JSON array [`passing_over`]
/// reads, when there are any.
fn with_definitions<'q, DB: sqlx::Database>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    retries_held: &[String],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    if retries_held.is_empty() {
        query
    } else {
        query.bind(definitions_json(retries_held))
    }
}

/// `retries_held` as a JSON array of names.
fn definitions_json(retries_held: &[String]) -> String {
    serde_json::to_string(retries_held).unwrap_or_else(|_| "[]".to_owned())
}

fn describe(result: &AttemptResult) -> String {
    match &result.message {
        Some(message) => format!("{}: {message}", result.outcome),
        None => result.outcome.clone(),
    }
}

/// What an attempt submits, in one statement for either store: one row per
/// secret of the definition's connection (one row with NULL secret columns
/// when it has none, and NULL columns for whatever does not exist). The
/// shadow-run check matches the definition's processor as written, so a
/// pinned `name@sha256:…` never matches a plugin's run, as it must not.
const ATTEMPT_INPUT: &str = "SELECT d.name AS name, d.job_type AS job_type,
        d.connection AS connection, d.preprocessor AS preprocessor,
        d.integration_processor AS integration_processor,
        d.post_processor AS post_processor, d.parameters AS parameters,
        d.max_attempts AS max_attempts, d.initial_backoff_ms AS initial_backoff_ms,
        d.max_backoff_ms AS max_backoff_ms, d.enabled AS enabled,
        d.applies_to AS applies_to,
        c.name AS connection_name, c.base_url AS base_url,
        c.allowed_hosts AS allowed_hosts,
        c.allow_private_network AS allow_private_network,
        c.ca_certificates AS ca_certificates, c.settings AS settings,
        s.name AS secret_name, s.nonce AS nonce, s.ciphertext AS ciphertext,
        x.record AS record,
        EXISTS (SELECT 1 FROM shadow_runs r
                WHERE r.plugin = d.integration_processor AND r.stopped_at IS NULL
                  AND r.jobs > (SELECT COUNT(*) FROM shadow_results t
                                WHERE t.plugin = r.plugin)) AS shadow_wanted
    FROM (SELECT 1 AS one) AS one
    LEFT JOIN job_definitions d ON d.name = $1
    LEFT JOIN connections c ON c.name = d.connection
    LEFT JOIN connection_secrets s ON s.connection = c.name
    LEFT JOIN cancellations x ON x.id = $2
    ORDER BY s.name";

/// Reads [`ATTEMPT_INPUT`]'s rows.
fn attempt_input_from_rows(
    cipher: &super::secrets::SecretsCipher,
    rows: &[impl StoreRow],
) -> Result<AttemptInput, StoreError> {
    let Some(first) = rows.first() else {
        return Err(StoreError::Corrupt(
            "the attempt's input read no row".to_owned(),
        ));
    };
    let definition = match first.opt_text("name")? {
        Some(_) => Some(definition_from_row(first)?),
        None => None,
    };
    let connection = match first.opt_text("connection_name")? {
        Some(name) => {
            let mut connection = super::config::connection_from_row(first)?;
            connection.secrets = super::secrets::open_rows(cipher, &name, rows)?;
            Some(connection)
        }
        None => None,
    };
    let cancellation = first
        .opt_text("record")?
        .map(|t| from_json("cancellation", &t))
        .transpose()?;
    Ok(AttemptInput {
        definition,
        connection,
        cancellation,
        shadow_run_wants_jobs: first.flag("shadow_wanted")?,
    })
}

/// The job queue's grouped writes on the SQLite writer thread's own
/// connection (rusqlite, prepared statements kept): the same statements as
/// [`finish_in`] and [`claim_in`], as plain calls.
mod on_writer {
    use rusqlite::types::ToSql;
    use rusqlite::{Connection, params};

    use super::{
        AttemptRecord, AttemptResult, CLAIM_LANES, CLOSE_EXPIRED_ATTEMPT, ClaimedJob,
        FINISH_ATTEMPT, FINISH_JOB, PRUNE_PICK, Pruned, RecordedAttempt, RetryShares,
        START_ATTEMPT, StoreError, StoreRow, claim_lane_sql, claimed_job, definitions_json,
        job_from_row, moved_on, passing_over_on, prune_statements,
    };
    use crate::store::{now_ms, to_json};

    /// [`crate::store::Store::record_attempts`] in one transaction on
    /// `connection`. An error leaves the transaction open: the writer
    /// thread rolls it back.
    pub(super) fn record_attempts(
        connection: &mut Connection,
        records: &[AttemptRecord],
        lease_ms: i64,
        shares: &mut impl RetryShares,
    ) -> Result<Vec<RecordedAttempt>, StoreError> {
        connection.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let mut answers = Vec::with_capacity(records.len());
        for record in records {
            let recorded = finish(connection, &record.claimed, &record.worker, &record.result)?;
            let mut next = None;
            if record.claim_next {
                next = claim_one(connection, &record.worker, lease_ms, &shares.held())?;
                if let Some(job) = &next {
                    shares.enter(job);
                }
            }
            answers.push(RecordedAttempt { recorded, next });
        }
        connection.prepare_cached("COMMIT")?.execute([])?;
        Ok(answers)
    }

    /// [`crate::store::Store::prune_finished_jobs`] in one transaction on
    /// `connection`. An error leaves the transaction open: the writer
    /// thread rolls it back.
    pub(super) fn prune(
        connection: &mut Connection,
        finished_before_ms: i64,
        limit: i64,
    ) -> Result<Pruned, StoreError> {
        connection.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let ids = connection
            .prepare_cached(PRUNE_PICK)?
            .query_map(params![finished_before_ms, limit], |row| {
                row.get::<_, String>(0)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut affected = [0u64; 3];
        if !ids.is_empty() {
            let ids_json = to_json(&ids);
            for (statement, count) in prune_statements("SELECT value FROM json_each($1)")
                .iter()
                .zip(&mut affected)
            {
                *count = connection
                    .prepare_cached(statement)?
                    .execute(params![ids_json])? as u64;
            }
        }
        connection.prepare_cached("COMMIT")?.execute([])?;
        Ok(Pruned {
            jobs: affected[2],
            attempts: affected[1],
        })
    }

    /// Records an attempt's result and moves the job on; false (nothing
    /// written) when `worker` no longer holds the lease.
    fn finish(
        connection: &Connection,
        claimed: &ClaimedJob,
        worker: &str,
        result: &AttemptResult,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let (run_at, last_error) = moved_on(result, now);
        let updated = connection.prepare_cached(FINISH_JOB)?.execute(params![
            result.next.as_str(),
            run_at,
            result.erp_reference,
            last_error,
            now,
            claimed.job.id,
            worker,
            i64::from(claimed.attempt),
        ])?;
        if updated == 0 {
            return Ok(false);
        }
        connection.prepare_cached(FINISH_ATTEMPT)?.execute(params![
            now,
            result.outcome,
            result.message,
            result.erp_reference,
            result.plugin_version,
            to_json(&result.log),
            result.exchange.as_ref().map(to_json),
            claimed.job.id,
            i64::from(claimed.attempt),
        ])?;
        Ok(true)
    }

    /// Claims one due job for `worker`, lane by lane.
    fn claim_one(
        connection: &Connection,
        worker: &str,
        lease_ms: i64,
        retries_held: &[String],
    ) -> Result<Option<ClaimedJob>, StoreError> {
        let now = now_ms();
        let leased_until = now.saturating_add(lease_ms);
        let passed_over = passing_over_on(true, retries_held, 5);
        let held = definitions_json(retries_held);
        for lane in &CLAIM_LANES {
            // Named: `$5` comes before `$4` in the statement, and is there
            // only when definitions are passed over.
            let mut bound: Vec<(&str, &dyn ToSql)> = vec![
                ("$1", &worker),
                ("$2", &leased_until),
                ("$3", &now),
                ("$4", &1_i64),
            ];
            if !passed_over.is_empty() {
                bound.push(("$5", &held));
            }
            let sql = claim_lane_sql(lane, &passed_over, "");
            let mut statement = connection.prepare_cached(&sql)?;
            let mut rows = statement.query(bound.as_slice())?;
            let mut claimed = None;
            while let Some(row) = rows.next()? {
                claimed = Some((job_from_row(row)?, row.count::<u32>("attempt_base")?));
            }
            drop(rows);
            let Some((job, base)) = claimed else {
                continue;
            };
            if lane.open_attempt {
                connection
                    .prepare_cached(CLOSE_EXPIRED_ATTEMPT)?
                    .execute(params![now, job.id])?;
            }
            connection.prepare_cached(START_ATTEMPT)?.execute(params![
                job.id,
                i64::from(job.attempts),
                worker,
                now
            ])?;
            return Ok(Some(claimed_job(job, base)));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::super::query_plans::{migrated, plan};
    use super::*;

    /// No step of `plan` reads the whole of the jobs or cancellations
    /// table (under any of the names the statements give them).
    fn reads_no_whole_table(plan: &str) {
        for step in plan.lines() {
            let scanned = step.strip_prefix("SCAN ").and_then(|s| s.split(' ').next());
            assert!(
                !matches!(scanned, Some("jobs" | "due" | "earlier" | "cancellations")),
                "a step reads a whole table: {step}\nin\n{plan}"
            );
        }
    }

    #[test]
    fn the_claim_reads_only_the_queue_of_an_order() {
        let db = migrated();
        let held = ["aaas".to_owned()];
        for retries_held in [&[][..], &held[..]] {
            for lane in &CLAIM_LANES {
                let plan = plan(
                    &db,
                    &claim_lane_sql(lane, &passing_over_on(true, retries_held, 5), ""),
                );
                assert!(
                    plan.contains(
                        "SEARCH earlier USING INDEX jobs_order_unsettled (order_number=?)"
                    ),
                    "the {} lane's test of an earlier job reads the unsettled jobs' index:\n{plan}",
                    lane.state
                );
                assert!(
                    plan.contains("SEARCH due USING INDEX jobs_due (state=?"),
                    "the {} lane is read along the due jobs' index:\n{plan}",
                    lane.state
                );
                reads_no_whole_table(&plan);
            }
            let plan = plan(&db, &next_due_sql(&passing_over_on(true, retries_held, 1)));
            assert_eq!(
                plan.matches("USING INDEX jobs_order_unsettled").count(),
                CLAIM_LANES.len(),
                "each lane's first due time tests earlier jobs along the index:\n{plan}"
            );
            reads_no_whole_table(&plan);
        }
    }

    #[test]
    fn an_order_s_jobs_are_listed_through_its_cancellations() {
        let db = migrated();
        let mut filter = JobFilter {
            state: None,
            order_number: Some("SO-1".to_owned()),
            definition: Some("aaas".to_owned()),
            limit: 10,
            created_from_ms: Some(0),
            created_until_ms: None,
        };
        for state in [None, Some(JobState::Succeeded), Some(JobState::Queued)] {
            filter.state = state;
            let plan = plan(&db, &job_list_sql(&filter, true).0);
            assert!(
                plan.contains("SEARCH jobs USING INDEX jobs_cancellation (cancellation_id=?)")
                    && plan.contains(
                        "SEARCH cancellations USING INDEX cancellations_order (order_number=?)"
                    ),
                "with state {state:?}, the order's jobs are read through its cancellations:\n{plan}"
            );
            reads_no_whole_table(&plan);
        }
        let index: Option<String> = db
            .query_row(
                "SELECT name FROM sqlite_schema WHERE type = 'index' AND name = 'jobs_order'",
                [],
                |row| row.get(0),
            )
            .ok();
        assert_eq!(index, None, "no index of every job by order is kept");
    }
}
