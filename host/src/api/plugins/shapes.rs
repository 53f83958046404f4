//! The JSON shapes of `/v1/admin/plugins`: a version, a plugin with its
//! versions, guard and activation history, and the activation body.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::api::timestamp;
use crate::plugins::registry::{AuditEntry, PluginSummary, PluginVersionInfo};
use crate::store::{ShadowComparison, ShadowResult, ShadowRun};

/// One stored version of a plugin.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginVersionView {
    /// The plugin's name: 1 to 64 ASCII letters, digits, `-` or `_`.
    pub name: String,
    /// `sha256:<hex>` of the component's bytes.
    pub version: String,
    /// The world it implements: `integration-processor`.
    pub world: String,
    /// Whether this version runs the plugin's new attempts now.
    pub active: bool,
    /// The WIT package it was built for, e.g. `rescind:erp@0.1.0`.
    pub wit: String,
    /// The rescind-guest SDK version that built it, if stamped.
    pub sdk: Option<String>,
    /// The component's size in bytes (at most 32 MiB).
    pub size: u64,
    /// Validation and compilation time at upload, in milliseconds.
    pub compile_millis: u64,
    /// Position in the plugin's upload order, from 1.
    pub sequence: u64,
    /// Who stored it: the caller as the audit log names it (`admin token`, `key
    /// "NAME" (ID)`), or the host's own source for a plugin it loaded by
    /// itself.
    pub uploaded_by: String,
    /// When it was stored (RFC 3339, UTC).
    pub uploaded_at: String,
    /// The trusted key whose signature it carried, if signatures are checked.
    pub signed_by: Option<String>,
    /// What the operator should know that did not prevent accepting it.
    pub warnings: Vec<String>,
}

/// A guard watching a newly activated version.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardView {
    /// The version under watch (`sha256:…`).
    pub version: String,
    /// The version the host switches back to if the watched one fails too
    /// often.
    pub previous: String,
    /// How many attempts on the new version are watched before the guard
    /// passes.
    pub observe_jobs: u32,
    /// The largest share of failed attempts tolerated, 0.0 to 1.0.
    pub max_failure_rate: f64,
    /// Attempts on the new version watched so far.
    pub observed_attempts: u32,
    /// How many of the watched attempts failed.
    pub observed_failures: u32,
}

/// One switch of the active version.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AuditView)]
pub struct ActivationView {
    /// When the switch happened (RFC 3339, UTC).
    pub at: String,
    /// `activated`, `rolled-back`, `automatic-rollback`, `guard-passed` or
    /// `guard-kept`.
    pub action: String,
    /// The version active before the switch, or `null` if none was.
    pub from: Option<String>,
    /// The version active after the switch (`sha256:…`).
    pub to: String,
    /// Who: the uploader, `guard`, `folder-watch`, `bundled`.
    pub by: String,
    /// Why the host switched by itself (a guard's verdict), or `null` for an
    /// operator's switch.
    pub reason: Option<String>,
}

/// A plugin: its versions (oldest first), the active one, a guard in
/// progress and its activation history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginView {
    /// The plugin's name, as job definitions name it in `integrationProcessor`.
    pub name: String,
    /// The version new attempts run (`sha256:…`), or `null` when none is
    /// active.
    pub active: Option<String>,
    /// Every stored version, oldest first; any of them can be activated again
    /// (a rollback).
    pub versions: Vec<PluginVersionView>,
    /// The guard watching the active version, if any.
    pub guard: Option<GuardView>,
    /// Activations and rollbacks, oldest first (the latest kept in memory).
    pub history: Vec<ActivationView>,
}

/// `POST /v1/admin/plugins/{name}/activate` body (admin): switch the active
/// version atomically; attempts already started finish on the old one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivateBody {
    /// The version to activate (`sha256:…`); an older one is a rollback.
    pub version: String,
    /// Watch the new version's first attempts and roll back by itself if
    /// they fail beyond the bound.
    #[serde(default)]
    pub guard: Option<GuardBody>,
}

/// An activation guard: the host watches the new version's first attempts and
/// switches back by itself when more fail than allowed while the previous
/// version did not.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardBody {
    /// How many attempts on the new version to observe (at least 1).
    pub observe_jobs: u32,
    /// The largest share of them that may fail (0.0 to 1.0).
    pub max_failure_rate: f64,
}

pub(super) fn version_view(info: &PluginVersionInfo, active: Option<&str>) -> PluginVersionView {
    PluginVersionView {
        name: info.name.clone(),
        version: info.version.clone(),
        world: info.world.clone(),
        active: active == Some(info.version.as_str()),
        wit: info.wit.clone(),
        sdk: info.sdk.clone(),
        size: info.size,
        compile_millis: info.compile_time.as_millis() as u64,
        sequence: info.sequence,
        uploaded_by: info.uploaded_by.clone(),
        uploaded_at: rfc3339(info.uploaded_at),
        signed_by: info.signed_by.clone(),
        warnings: info.warnings.clone(),
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn audit_view(entry: &AuditEntry) -> ActivationView {
    ActivationView {
        at: rfc3339(entry.at),
        action: serde_json::to_value(entry.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        from: entry.from.clone(),
        to: entry.to.clone(),
        by: entry.by.clone(),
        reason: entry.reason.clone(),
    }
}

pub(super) fn plugin_view(summary: &PluginSummary, audit: &[AuditEntry]) -> PluginView {
    let active = summary.active.as_deref();
    PluginView {
        name: summary.name.clone(),
        active: summary.active.clone(),
        versions: summary
            .versions
            .iter()
            .map(|v| version_view(v, active))
            .collect(),
        guard: summary.guard.as_ref().map(|g| GuardView {
            version: g.version.clone(),
            previous: g.previous.clone(),
            observe_jobs: g.guard.observe_jobs,
            max_failure_rate: g.guard.max_failure_rate,
            observed_attempts: g.observed.attempts,
            observed_failures: g.observed.failures,
        }),
        history: audit
            .iter()
            .filter(|e| e.plugin == summary.name)
            .map(audit_view)
            .collect(),
    }
}

/// `POST /v1/admin/plugins/{name}/shadow` body (admin): run an inactive
/// version beside the active one on the plugin's next real jobs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShadowBody {
    /// The stored, inactive version to run in the shadow (`sha256:…`); signed
    /// by a trusted key when the host requires signatures.
    #[schema(example = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    pub version: String,
    /// On how many jobs, 1 to 1,000: the next jobs of job definitions that
    /// name the plugin (not a pinned version) whose attempt ran the active
    /// version, one comparison per job.
    #[schema(example = 50, minimum = 1, maximum = 1000)]
    pub jobs: u32,
}

/// A shadow run: an inactive version run beside the active one on real
/// jobs, in a capture-only sandbox. Its outbound requests pass the same
/// checks as the active version's, are recorded, and are answered with the
/// active version's recorded ERP answers, in order, instead of being sent:
/// the ERP never sees them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShadowRunView {
    /// The plugin.
    pub plugin: String,
    /// The version run in the shadow (`sha256:…`).
    pub version: String,
    /// How many jobs the run compares.
    pub jobs: u32,
    /// `running` (taking jobs), `complete` (every job compared) or
    /// `stopped` (stopped before; the jobs it took still report).
    #[schema(example = "running")]
    pub state: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// Who started it, as the audit log names the caller.
    pub started_by: String,
    /// When it was stopped, or `null`.
    pub stopped_at: Option<String>,
    /// Jobs compared so far.
    pub compared: u32,
    /// Of those, how many sent the same requests in both versions.
    pub identical: u32,
    /// Of those, how many differ.
    pub different: u32,
    /// Each job taken, in the order taken.
    pub results: Vec<ShadowResultView>,
}

/// One job of a shadow run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShadowResultView {
    /// The job (see `GET /v1/admin/jobs/{id}` for the active version's
    /// attempt and its recorded exchange).
    pub job_id: String,
    /// The attempt the shadow version ran beside.
    pub attempt: u32,
    /// The active version that ran that attempt.
    pub active_version: String,
    /// When the job was taken (RFC 3339, UTC).
    pub taken_at: String,
    /// `running` while the shadow version runs, then `compared`.
    #[schema(example = "compared")]
    pub state: String,
    /// Whether the shadow version sent the same requests as the active one
    /// (values recorded as `[redacted]` or cut are not compared); `null`
    /// while it runs.
    pub identical: Option<bool>,
    /// The active version's outcome: `accepted`, `rejected`, `transient`, …
    pub active_outcome: Option<String>,
    /// The shadow version's outcome, given the active version's answers;
    /// `not-run` when the version could not be loaded.
    pub shadow_outcome: Option<String>,
    /// The shadow version's message (a rejection's reason, a failure), if
    /// its outcome has one.
    pub shadow_message: Option<String>,
    /// Request by request: the n-th request of each version.
    pub requests: Vec<ShadowRequestView>,
    /// What could not be answered as the ERP answered (a redacted header, a
    /// cut body), or was not compared.
    pub notes: Vec<String>,
    /// The shadow version's log lines (bounded and redacted like an
    /// attempt's).
    pub shadow_log: Vec<crate::api::LogLineView>,
    /// How long the shadow call took, in milliseconds.
    pub shadow_ms: Option<u64>,
}

/// The n-th request of both versions compared.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShadowRequestView {
    /// `METHOD /path?query` of the active version's request, or `null` when
    /// only the shadow version made one.
    #[schema(example = "POST /api/orders/ERP-1001/cancel")]
    pub active: Option<String>,
    /// `METHOD /path?query` of the shadow version's request, or `null` when
    /// it made fewer.
    pub shadow: Option<String>,
    /// What differs, one entry per field: method, URL path, each header
    /// field, the body (a unified diff, JSON compared with sorted keys; at
    /// most 4 KiB per entry). Empty when the request is the same.
    pub differences: Vec<String>,
    /// What was not compared and why (redacted or cut values).
    pub skipped: Vec<String>,
}

pub(super) fn shadow_view(run: &ShadowRun) -> ShadowRunView {
    let compared: Vec<&ShadowComparison> = run
        .results
        .iter()
        .filter_map(|r| r.report.as_ref())
        .collect();
    let identical = compared.iter().filter(|c| c.identical).count();
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    ShadowRunView {
        plugin: run.plugin.clone(),
        version: run.version.clone(),
        jobs: run.jobs,
        state: run.state().to_owned(),
        started_at: timestamp(run.started_at_ms),
        started_by: run.started_by.clone(),
        stopped_at: run.stopped_at_ms.map(timestamp),
        compared: count(compared.len()),
        identical: count(identical),
        different: count(compared.len() - identical),
        results: run.results.iter().map(shadow_result_view).collect(),
    }
}

fn shadow_result_view(result: &ShadowResult) -> ShadowResultView {
    let report = result.report.as_ref();
    ShadowResultView {
        job_id: result.job_id.clone(),
        attempt: result.attempt,
        active_version: result.active_version.clone(),
        taken_at: timestamp(result.taken_at_ms),
        state: if report.is_some() {
            "compared"
        } else {
            "running"
        }
        .to_owned(),
        identical: report.map(|r| r.identical),
        active_outcome: report.map(|r| r.active_outcome.clone()),
        shadow_outcome: report.map(|r| r.shadow_outcome.clone()),
        shadow_message: report.and_then(|r| r.shadow_message.clone()),
        requests: report
            .map(|r| {
                r.requests
                    .iter()
                    .map(|q| ShadowRequestView {
                        active: q.active.clone(),
                        shadow: q.shadow.clone(),
                        differences: q.differences.clone(),
                        skipped: q.skipped.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        notes: report.map(|r| r.notes.clone()).unwrap_or_default(),
        shadow_log: report
            .map(|r| {
                r.shadow_log
                    .iter()
                    .map(crate::api::LogLineView::from)
                    .collect()
            })
            .unwrap_or_default(),
        shadow_ms: report.map(|r| r.shadow_ms),
    }
}
