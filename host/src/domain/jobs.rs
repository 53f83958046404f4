//! The job model: job definitions (what a committed cancellation tells
//! which ERP, and how a failing delivery is retried), the jobs of the
//! outbox, their states and attempts. Plain values; the store keeps them
//! and the workers move them along.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::plugins::RecordedExchanges;

/// One parameter of a job definition (the seeds' `OrderNumber`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobParameter {
    /// Parameter name.
    pub name: String,
    /// Value type, e.g. `String`.
    pub value_type: String,
    /// Value used when a run does not give one.
    pub default_value: String,
    /// Label shown to an operator.
    pub prompt: String,
}

/// How often and how fast a failing job is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Ceiling of the first backoff.
    pub initial_backoff_ms: u64,
    /// Largest ceiling of any backoff.
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 300_000,
        }
    }
}

/// An integration job definition (Optimizely / InsiteCommerce seeds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDefinition {
    /// Name, e.g. `OrderCancel`.
    pub name: String,
    /// `Execution`.
    pub job_type: String,
    /// Name of the ERP connection.
    pub connection: String,
    /// Optional preprocessor plugin.
    pub preprocessor: Option<String>,
    /// The plugin that talks to the ERP.
    pub integration_processor: String,
    /// Optional post-processor plugin.
    pub post_processor: Option<String>,
    /// Parameters with their defaults.
    pub parameters: Vec<JobParameter>,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Whether committed cancellations enqueue a job of this definition.
    pub enabled: bool,
    /// Which cancellations enqueue a job of it: all, only those that end
    /// the order, or only those that leave lines active.
    pub applies_to: AppliesTo,
}

/// Which cancellations a job definition tells its ERP about. An ERP API
/// that can only cancel whole orders (WebSphere's `OrderCancel`,
/// Optimizely's order cancellation) is bound with [`AppliesTo::Full`], so
/// that a cancellation of some lines is not sent to it as the cancellation
/// of the order.
///
/// "Full" is the plan's `full`: the cancellation leaves no active line,
/// however it was asked for. The partial cancellation that cancels an
/// order's last active lines is full, so a full-only definition hears of
/// every order that ends cancelled, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AppliesTo {
    /// Every cancellation (the default).
    #[default]
    Any,
    /// Only cancellations that leave no active line.
    Full,
    /// Only cancellations that leave some line active.
    Partial,
}

impl AppliesTo {
    /// Every value, in the order the API lists them.
    pub const ALL: [AppliesTo; 3] = [AppliesTo::Any, AppliesTo::Full, AppliesTo::Partial];

    /// The value's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AppliesTo::Any => "any",
            AppliesTo::Full => "full",
            AppliesTo::Partial => "partial",
        }
    }

    /// Parses a name; `None` for anything else (names are exact, lower case).
    pub fn parse(s: &str) -> Option<AppliesTo> {
        AppliesTo::ALL.into_iter().find(|value| value.as_str() == s)
    }

    /// Whether a cancellation gets a job of a definition with this value;
    /// `full` is whether it leaves no active line.
    pub fn applies(self, full: bool) -> bool {
        match self {
            AppliesTo::Any => true,
            AppliesTo::Full => full,
            AppliesTo::Partial => !full,
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for its first attempt.
    Queued,
    /// A worker holds its lease.
    Running,
    /// The ERP accepted it.
    Succeeded,
    /// Failed passingly; waiting for the next attempt.
    Retrying,
    /// Failed for good.
    Failed,
}

impl JobState {
    /// Every state, for metrics.
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Retrying,
        JobState::Failed,
    ];

    /// The state's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Retrying => "retrying",
            JobState::Failed => "failed",
        }
    }

    /// Parses a state name.
    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

/// A job of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Job id (UUID).
    pub id: String,
    /// The job definition's name.
    pub definition: String,
    /// The order it is about.
    pub order_number: String,
    /// The cancellation it submits.
    pub cancellation_id: Option<String>,
    /// Idempotency key for the ERP, stable across attempts.
    pub request_id: String,
    /// Parameter values.
    pub parameters: BTreeMap<String, String>,
    /// Current state.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: u32,
    /// The retry policy copied from the definition when the job was made.
    pub retry: RetryPolicy,
    /// When it is due next (ms since the epoch).
    pub run_at_ms: i64,
    /// The ERP's reference once accepted.
    pub erp_reference: Option<String>,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// Creation time (ms).
    pub created_at_ms: i64,
    /// Last change (ms).
    pub updated_at_ms: i64,
}

/// A plugin log line kept with an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptLogLine {
    /// `trace` … `error`, or `stdout` / `stderr`.
    pub level: String,
    /// The (redacted) message.
    pub message: String,
}

/// One attempt of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobAttempt {
    /// 1-based attempt number.
    pub number: u32,
    /// The worker that ran it.
    pub worker: String,
    /// Start (ms).
    pub started_at_ms: i64,
    /// End (ms); none while running or when its worker died.
    pub ended_at_ms: Option<i64>,
    /// `accepted`, `rejected`, `transient`, `misconfigured`, `trapped`,
    /// `deadline-exceeded`, `memory-cap-exceeded`, `lease-expired`,
    /// `interrupted`, `released`, …
    pub outcome: Option<String>,
    /// The outcome's message.
    pub message: Option<String>,
    /// ERP reference, when accepted.
    pub erp_reference: Option<String>,
    /// The plugin version that ran.
    pub plugin_version: Option<String>,
    /// Plugin log lines.
    pub log: Vec<AttemptLogLine>,
    /// What the plugin sent to the ERP and what it answered; `None` when no
    /// plugin ran (or the attempt was recorded by a host that did not
    /// record exchanges).
    pub exchange: Option<RecordedExchanges>,
}
