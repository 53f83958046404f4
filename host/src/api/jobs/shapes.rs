//! The JSON shapes of jobs: a manual run's body, and a job with its
//! attempts, the plugin's log lines and the ERP exchange. The views also
//! read back (`rescind jobs show` reads a job with them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::admin::ConnectionView;
use crate::api::timestamp;
use crate::plugins::{Cancellation, ErpExchange, RecordedBody, RecordedHeader};
use crate::store::{AttemptLogLine, Job, JobAttempt, JobState};

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

/// `POST /v1/admin/jobs/prune` body (admin): delete finished jobs older
/// than an age now, as the host's job retention does every hour.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PruneBody {
    /// How long ago a job must have finished (`succeeded` or `failed`) to
    /// be deleted with its attempts: `30d`, `12h`, `90m`, `0s` (every
    /// finished job). A negative or garbled age is `422
    /// validation-failed` and deletes nothing.
    pub older_than: String,
}

/// What `POST /v1/admin/jobs/prune` deleted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PruneView {
    /// Finished jobs deleted.
    pub pruned_jobs: u64,
    /// Their attempts, deleted with them.
    pub pruned_attempts: u64,
    /// Jobs that finished before this time (RFC 3339) were deleted.
    pub finished_before: String,
    /// False when the call stopped at its time limit (about ten seconds)
    /// with older finished jobs left: call it again.
    pub complete: bool,
}

/// A line a plugin logged or printed during an attempt.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogLineView {
    /// `trace`, `debug`, `info`, `warn` or `error`; printed lines are `info`
    /// (stdout) or `warn` (stderr).
    pub level: String,
    /// The line, at most 1 KiB, with the connection's secrets redacted. An
    /// attempt keeps at most 200 lines and 32 KiB; a last line says how many
    /// were dropped.
    pub message: String,
}

impl From<&AttemptLogLine> for LogLineView {
    fn from(l: &AttemptLogLine) -> Self {
        LogLineView {
            level: l.level.clone(),
            message: l.message.clone(),
        }
    }
}

/// One attempt of a job: one run of the plugin.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    /// Every outbound HTTP request the plugin made in this attempt, in order,
    /// with what the ERP answered: at most 16 (see `exchangeNotRecorded`),
    /// bodies cut at 16 KiB, credentials and the connection's secrets
    /// redacted. Empty when no plugin ran or it sent nothing, and for
    /// attempts made before the host recorded exchanges.
    #[serde(default)]
    pub exchange: Vec<ExchangeView>,
    /// Requests the plugin made past the 16 recorded ones: counted, not
    /// recorded.
    #[serde(default)]
    pub exchange_not_recorded: u32,
}

/// One outbound HTTP request of an attempt and the ERP's answer, as the
/// host's sandbox saw them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeView {
    /// The request method, e.g. `POST`.
    #[schema(example = "POST")]
    pub method: String,
    /// The URL the plugin asked for, the connection's secrets redacted (at
    /// most 4 KiB, longer is cut with a marker).
    #[schema(example = "https://erp.example.com/api/orders/ERP-1001/cancel")]
    pub url: String,
    /// The request's header fields in the order sent, `host` included.
    /// `authorization`, `proxy-authorization`, `cookie` and `set-cookie`
    /// values, and any value holding one of the connection's secrets (plain
    /// or encoded), are `[redacted]`; a value that is not text is
    /// `(N bytes, not text)`. At most 8 KiB of names and values are kept; one
    /// last field named `…` says how many were left out.
    pub request_headers: Vec<HeaderView>,
    /// The request body as far as it was sent.
    pub request_body: BodyView,
    /// The ERP's HTTP status, or `null` when no response came (see `error`).
    #[schema(example = 200)]
    pub status: Option<u16>,
    /// The response's header fields in order, redacted and bounded like
    /// `requestHeaders`; empty when no response came.
    pub response_headers: Vec<HeaderView>,
    /// The response body as far as the plugin read it, or `null` when no
    /// response came.
    pub response_body: Option<BodyView>,
    /// Milliseconds from sending the request to the end of the response body
    /// (to its head when the plugin did not read the body to its end; to the
    /// failure when it failed).
    #[schema(example = 42)]
    pub duration_ms: u64,
    /// Why the request or its response body failed, as the wasi:http error
    /// code the plugin received: e.g. `HTTP-request-denied` (the connection's
    /// `allowedHosts` refused the destination, or the job's lease ran out
    /// before the request went), `destination-IP-prohibited`,
    /// `connection-refused`, `connection-timeout`,
    /// `connection-limit-reached` (more requests than a call may make),
    /// `HTTP-response-body-size`, `TLS-certificate-error`; or
    /// `no-answer-before-the-call-ended` when the call's deadline cut the
    /// request off before an answer came; `null` when it did not fail.
    #[schema(example = json!(null))]
    pub error: Option<String>,
}

/// One header field of a recorded request or response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HeaderView {
    /// The field name, lower-case; `…` for the summary of fields past the
    /// bound.
    #[schema(example = "content-type")]
    pub name: String,
    /// The value as sent or received, `[redacted]`, or `(N bytes, not
    /// text)`.
    #[schema(example = "application/json")]
    pub value: String,
}

/// A recorded request or response body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BodyView {
    /// The body as UTF-8 text with the connection's secrets redacted, at most
    /// 16 KiB: a longer one is cut and ends with `… [cut: N bytes in the
    /// body, 16384 kept]`. A body that is not UTF-8 text is only described:
    /// `(N bytes, not text)`.
    #[schema(example = r#"{"orderNumber":"SO-1001","full":true}"#)]
    pub text: String,
    /// How many bytes the body had: sent in all, or read by the plugin.
    #[schema(example = 38)]
    pub bytes: u64,
}

impl From<&RecordedHeader> for HeaderView {
    fn from(h: &RecordedHeader) -> Self {
        HeaderView {
            name: h.name.clone(),
            value: h.value.clone(),
        }
    }
}

impl From<&RecordedBody> for BodyView {
    fn from(b: &RecordedBody) -> Self {
        BodyView {
            text: b.text.clone(),
            bytes: b.bytes,
        }
    }
}

impl From<&ErpExchange> for ExchangeView {
    fn from(e: &ErpExchange) -> Self {
        ExchangeView {
            method: e.method.clone(),
            url: e.url.clone(),
            request_headers: e.request_headers.iter().map(HeaderView::from).collect(),
            request_body: BodyView::from(&e.request_body),
            status: e.status,
            response_headers: e.response_headers.iter().map(HeaderView::from).collect(),
            response_body: e.response_body.as_ref().map(BodyView::from),
            duration_ms: e.duration_ms,
            error: e.error.clone(),
        }
    }
}

/// Back to the host's own record: what a replay compares and answers from.
impl From<&ExchangeView> for ErpExchange {
    fn from(e: &ExchangeView) -> Self {
        let header = |h: &HeaderView| RecordedHeader {
            name: h.name.clone(),
            value: h.value.clone(),
        };
        let body = |b: &BodyView| RecordedBody {
            text: b.text.clone(),
            bytes: b.bytes,
        };
        ErpExchange {
            method: e.method.clone(),
            url: e.url.clone(),
            request_headers: e.request_headers.iter().map(header).collect(),
            request_body: body(&e.request_body),
            status: e.status,
            response_headers: e.response_headers.iter().map(header).collect(),
            response_body: e.response_body.as_ref().map(body),
            duration_ms: e.duration_ms,
            error: e.error.clone(),
        }
    }
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
            log: a.log.iter().map(LogLineView::from).collect(),
            exchange: a
                .exchange
                .iter()
                .flat_map(|recorded| recorded.exchanges.iter().map(ExchangeView::from))
                .collect(),
            exchange_not_recorded: a.exchange.as_ref().map_or(0, |r| r.not_recorded),
        }
    }
}

/// A job (service, admin): the delivery of one cancellation to one ERP through
/// one job definition. States: `queued` → `running` → `succeeded`, or
/// `retrying` (→ `running` …) → `failed`; `rejected` and `misconfigured`
/// answers fail it at once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    /// Every attempt with outcome, plugin log and ERP exchange (job detail
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// What one attempt of a job handed its plugin (admin): the cancellation as
/// submitted and the connection's settings, so that the attempt can be
/// replayed against another build of the plugin (`rescind plugin test FILE
/// --replay JOB_ID`). Secrets are never returned, only their names.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptInputView {
    /// The job's id.
    pub job: String,
    /// The attempt's number, as in the job's `attemptHistory`.
    pub attempt: u32,
    /// The cancellation the attempt submitted, as the plugin received it:
    /// JSON in the WIT's shape (field and case names as in the WIT file,
    /// e.g. `request-id`, `erp-order-number`), the format `rescind plugin
    /// test --cancellation FILE` reads. `attempt` is this attempt's number;
    /// `parameters` are the job's.
    #[schema(value_type = Object)]
    pub cancellation: Cancellation,
    /// The integration processor the job definition names now (a plugin
    /// name, or `name@sha256:…` pinning a version), or `null` when the
    /// definition no longer exists.
    pub integration_processor: Option<String>,
    /// The connection the job definition names, as it is now (settings in
    /// full, secrets by name only), or `null` when the definition or the
    /// connection no longer exists.
    pub connection: Option<ConnectionView>,
}
