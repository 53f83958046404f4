//! Job runs, the job list, job details and retries (admin and service).

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::AppState;
use super::admin::ConnectionView;
use super::error::{AppError, Problem};
use super::extract::ApiJson;
use super::routes::noted;
use crate::domain::FieldError;
use crate::store::{Job, JobFilter, JobState, ManualRun, RetryError};

mod shapes;

use shapes::RunBody;
pub use shapes::{
    AttemptInputView, AttemptView, BodyView, ExchangeView, HeaderView, JobView, LogLineView,
    PruneBody, PruneView,
};

/// The longest one prune call deletes before it answers (`complete:
/// false` when older finished jobs are left).
const PRUNE_CALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Most jobs one list answer holds.
const MAX_LIST: u32 = 1000;

fn job_not_found(id: &str) -> AppError {
    AppError::NotFound {
        code: "job-not-found",
        detail: format!("no job with id {id}"),
    }
}

/// Runs a job definition by hand: submits the newest cancellation of the
/// order named by the `OrderNumber` parameter again.
#[utoipa::path(post, path = "/v1/admin/job-definitions/{name}/runs", tag = "jobs",
    params(("name" = String, Path, description = "The job definition's name", example = "OrderCancel")),
    request_body(content = RunBody, example = json!({"parameters": {"OrderNumber": "SO-1001"}})),
    responses(
        (status = 201, description = "Job enqueued", body = JobView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn run_definition(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RunBody>,
) -> Result<Response, AppError> {
    let job = state
        .store
        .run_job_definition(
            &name,
            &ManualRun {
                parameters: body.parameters,
            },
        )
        .await?;
    state.job_wakeup.notify_waiters();
    let note = format!(
        "ran the job definition {name:?} for order {:?}: job {}",
        job.order_number, job.id
    );
    Ok(noted(
        note,
        (StatusCode::CREATED, Json(JobView::new(&job, None))),
    ))
}

/// Lists jobs, newest first: `?state=failed&orderNumber=…&limit=…`.
#[utoipa::path(get, path = "/v1/admin/jobs", tag = "jobs",
    params(
        ("state" = Option<String>, Query, description = "queued, running, succeeded, retrying or failed"),
        ("orderNumber" = Option<String>, Query, description = "Only jobs of this order number"),
        ("limit" = Option<u32>, Query, description = "At most this many (default 100, at most 1000)"),
    ),
    responses(
        (status = 200, description = "Jobs, newest first", body = Vec<JobView>),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_jobs(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Vec<JobView>>, AppError> {
    let Query(query) = query.map_err(|e| AppError::Malformed(e.body_text()))?;
    let mut errors = Vec::new();
    let mut filter = JobFilter {
        limit: 100,
        ..JobFilter::default()
    };
    for (key, value) in &query {
        match key.as_str() {
            "state" => match JobState::parse(value) {
                Some(s) => filter.state = Some(s),
                None => errors.push(FieldError::new(
                    "state",
                    "expected queued, running, succeeded, retrying or failed",
                )),
            },
            "orderNumber" => filter.order_number = Some(value.clone()),
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_LIST).contains(&n) => filter.limit = n,
                _ => errors.push(FieldError::new("limit", "expected 1 to 1000")),
            },
            other => errors.push(FieldError::new(
                other,
                "unknown query parameter (use state, orderNumber, limit)",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let jobs = state.store.jobs(&filter).await?;
    Ok(Json(jobs.iter().map(|j| JobView::new(j, None)).collect()))
}

/// A job with every attempt: outcome, plugin log lines and ERP exchange.
#[utoipa::path(get, path = "/v1/admin/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job with its attempt history", body = JobView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, AppError> {
    let job = state
        .store
        .job(&id)
        .await?
        .ok_or_else(|| job_not_found(&id))?;
    let attempts = state.store.job_attempts(&id).await?;
    Ok(Json(JobView::new(&job, Some(&attempts))))
}

/// What an attempt handed its plugin: the cancellation as submitted (in the
/// WIT's JSON shape) and the connection's settings, secrets by name only.
#[utoipa::path(get, path = "/v1/admin/jobs/{id}/attempts/{number}/input", tag = "jobs",
    params(
        ("id" = String, Path, description = "The job's id"),
        ("number" = u32, Path, description = "The attempt's number, from the job's `attemptHistory`"),
    ),
    responses(
        (status = 200, description = "The attempt's cancellation and connection settings", body = AttemptInputView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_attempt_input(
    State(state): State<AppState>,
    Path((id, number)): Path<(String, String)>,
) -> Result<Json<AttemptInputView>, AppError> {
    let job = state
        .store
        .job(&id)
        .await?
        .ok_or_else(|| job_not_found(&id))?;
    let attempt_not_found = || AppError::NotFound {
        code: "attempt-not-found",
        detail: format!("job {id} has no attempt {number}"),
    };
    let number: u32 = number.parse().map_err(|_| attempt_not_found())?;
    let attempts = state.store.job_attempts(&id).await?;
    if !attempts.iter().any(|a| a.number == number) {
        return Err(attempt_not_found());
    }
    let record = match &job.cancellation_id {
        Some(cancellation) => state.store.cancellation_record(cancellation).await?,
        None => None,
    }
    .ok_or_else(|| AppError::NotFound {
        code: "cancellation-not-found",
        detail: format!("job {id} names no committed cancellation"),
    })?;
    let cancellation =
        crate::jobs::wit_cancellation(&record, &job.request_id, number, &job.parameters);
    let definition = state.store.job_definition(&job.definition).await?;
    let connection = match &definition {
        Some(definition) => state.store.connection(&definition.connection).await?,
        None => None,
    };
    Ok(Json(AttemptInputView {
        job: job.id.clone(),
        attempt: number,
        cancellation,
        integration_processor: definition.map(|d| d.integration_processor),
        connection: connection.as_ref().map(ConnectionView::from),
    }))
}

/// Puts a failed job back in the queue with a full round of attempts.
#[utoipa::path(post, path = "/v1/admin/jobs/{id}/retry", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Job queued again", body = JobView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn retry_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let job = retry(&state, &id).await?;
    Ok(noted(retried_note(&job), Json(JobView::new(&job, None))))
}

/// Puts a failed job back in the queue and wakes the workers: what
/// `POST /v1/admin/jobs/{id}/retry` and the console's Retry button do.
pub async fn retry(state: &AppState, id: &str) -> Result<Job, RetryError> {
    let job = state.store.retry_job(id).await?;
    state.job_wakeup.notify_waiters();
    Ok(job)
}

/// What a retry changed, in the audit log's words.
pub fn retried_note(job: &Job) -> String {
    format!(
        "retried job {} ({:?} for order {:?})",
        job.id, job.definition, job.order_number
    )
}

/// Deletes finished jobs (`succeeded`, `failed`) older than `olderThan`
/// with their attempts, in small batches, for at most about ten seconds.
#[utoipa::path(post, path = "/v1/admin/jobs/prune", tag = "jobs",
    request_body(content = PruneBody, example = json!({"olderThan": "30d"})),
    responses(
        (status = 200, description = "What was deleted", body = PruneView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn prune_jobs(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PruneBody>,
) -> Result<Response, AppError> {
    let older_than = crate::jobs::retention::parse_age(&body.older_than)
        .map_err(|e| AppError::Validation(vec![FieldError::new("olderThan", e.to_string())]))?;
    let report =
        crate::jobs::retention::prune(&state.store, &state.metrics, older_than, PRUNE_CALL_LIMIT)
            .await?;
    let view = PruneView {
        pruned_jobs: report.pruned.jobs,
        pruned_attempts: report.pruned.attempts,
        finished_before: super::timestamp(report.finished_before_ms),
        complete: report.complete,
    };
    let note = format!(
        "pruned {} finished jobs older than {} ({} attempts)",
        view.pruned_jobs,
        body.older_than.trim(),
        view.pruned_attempts
    );
    Ok(noted(note, Json(view)))
}
