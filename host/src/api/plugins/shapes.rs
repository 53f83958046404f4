//! The JSON shapes of `/v1/admin/plugins`: a version, a plugin with its
//! versions, guard and activation history, and the activation body.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::plugins::registry::{AuditEntry, PluginSummary, PluginVersionInfo};

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
