//! The JSON shapes of jobs: a manual run's body, and a job with its
//! attempts and the plugin's log lines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::timestamp;
use crate::store::{Job, JobAttempt, JobState};

/// `POST /v1/admin/job-definitions/{name}/runs` body (service, admin): run a
/// definition by hand, submitting an order's newest cancellation again.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// Parameter values by name, e.g. `{"OrderNumber": "SO-1001"}`, over the
    /// definition's defaults. `OrderNumber` is required and must name an order
    /// with a cancellation the definition's `appliesTo` includes; a name the
    /// definition does not have is `422 validation-failed`.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// A line a plugin logged or printed during an attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogLineView {
    /// `trace`, `debug`, `info`, `warn` or `error`; printed lines are `info`
    /// (stdout) or `warn` (stderr).
    pub level: String,
    /// The line, at most 1 KiB, with the connection's secrets redacted. An
    /// attempt keeps at most 200 lines and 32 KiB; a last line says how many
    /// were dropped.
    pub message: String,
}

/// One attempt of a job: one run of the plugin.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// The attempt's number, from 1, counted across retry rounds.
    pub number: u32,
    /// The job worker that ran it, e.g. `worker-3f2a9c1b-1` (host instance and
    /// worker).
    pub worker: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended (RFC 3339, UTC), or `null` while it runs.
    pub ended_at: Option<String>,
    /// `accepted`, `rejected`, `transient`, `misconfigured`, `trapped`,
    /// `deadline-exceeded`, `memory-cap-exceeded`, `unknown-processor` (no such
    /// plugin, or none active), `lease-expired` (its worker died) or
    /// `interrupted` (the host stopped); `null` while it runs.
    pub outcome: Option<String>,
    /// Message: the plugin's own text is at most 4 KiB (longer is cut with
    /// a marker), the connection's secrets redacted.
    pub message: Option<String>,
    /// ERP reference, bounded and redacted like `message`.
    pub erp_reference: Option<String>,
    /// The plugin version (`sha256:…`) that ran it, or `null` when none could
    /// be loaded.
    pub plugin_version: Option<String>,
    /// The plugin's log lines in order, bounded and redacted.
    pub log: Vec<LogLineView>,
}

impl From<&JobAttempt> for AttemptView {
    fn from(a: &JobAttempt) -> Self {
        AttemptView {
            number: a.number,
            worker: a.worker.clone(),
            started_at: timestamp(a.started_at_ms),
            ended_at: a.ended_at_ms.map(timestamp),
            outcome: a.outcome.clone(),
            message: a.message.clone(),
            erp_reference: a.erp_reference.clone(),
            plugin_version: a.plugin_version.clone(),
            log: a
                .log
                .iter()
                .map(|l| LogLineView {
                    level: l.level.clone(),
                    message: l.message.clone(),
                })
                .collect(),
        }
    }
}

/// A job (service, admin): the delivery of one cancellation to one ERP through
/// one job definition. States: `queued` → `running` → `succeeded`, or
/// `retrying` (→ `running` …) → `failed`; `rejected` and `misconfigured`
/// answers fail it at once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// The job's id.
    pub id: String,
    /// The name of its job definition.
    pub definition: String,
    /// The order whose cancellation it delivers.
    pub order_number: String,
    /// The `internalRequestId` of the cancellation it delivers, or `null`.
    pub cancellation_id: Option<String>,
    /// The idempotency key the ERP receives, the same for every attempt, so an
    /// ERP that honours it sees each cancellation once.
    pub request_id: String,
    /// The parameter values it runs with, e.g. `{"OrderNumber": "SO-1001"}`.
    pub parameters: BTreeMap<String, String>,
    /// `queued`, `running`, `succeeded`, `retrying` or `failed`.
    pub state: String,
    /// Attempts started so far, over every round.
    pub attempts: u32,
    /// Attempts allowed per round, from the definition's retry policy.
    pub max_attempts: u32,
    /// When a `queued` or `retrying` job is due (RFC 3339, UTC); `null` in
    /// other states.
    pub next_run_at: Option<String>,
    /// The ERP's reference once accepted, as the plugin returned it: at
    /// most 4 KiB (longer is cut with a marker), the connection's secrets
    /// redacted.
    pub erp_reference: Option<String>,
    /// Last failure; what the plugin said in it is bounded and redacted
    /// like `erpReference`.
    pub last_error: Option<String>,
    /// When it was made (RFC 3339, UTC), with its cancellation or by a run.
    pub created_at: String,
    /// When its state last changed (RFC 3339, UTC).
    pub updated_at: String,
    /// Every attempt with outcome and plugin log (job detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_history: Option<Vec<AttemptView>>,
}

impl JobView {
    /// Renders a job, with its attempts when given.
    pub fn new(job: &Job, attempts: Option<&[JobAttempt]>) -> Self {
        JobView {
            id: job.id.clone(),
            definition: job.definition.clone(),
            order_number: job.order_number.clone(),
            cancellation_id: job.cancellation_id.clone(),
            request_id: job.request_id.clone(),
            parameters: job.parameters.clone(),
            state: job.state.as_str().to_owned(),
            attempts: job.attempts,
            max_attempts: job.retry.max_attempts,
            next_run_at: matches!(job.state, JobState::Queued | JobState::Retrying)
                .then(|| timestamp(job.run_at_ms)),
            erp_reference: job.erp_reference.clone(),
            last_error: job.last_error.clone(),
            created_at: timestamp(job.created_at_ms),
            updated_at: timestamp(job.updated_at_ms),
            attempt_history: attempts.map(|a| a.iter().map(AttemptView::from).collect()),
        }
    }
}
