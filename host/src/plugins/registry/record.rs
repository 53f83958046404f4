//! What the registry remembers: each accepted version and each switch.

use std::time::Duration;

use time::OffsetDateTime;

/// The world every accepted plugin implements.
pub const WORLD: &str = "integration-processor";

/// One accepted version of a plugin. Its `version` is the SHA-256 of its
/// bytes, so uploading the same bytes again names the same version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginVersionInfo {
    /// The plugin's name.
    pub name: String,
    /// `sha256:<64 hex digits>` of the component's bytes.
    pub version: String,
    /// Position in the plugin's upload order, from 1: activating a version
    /// with a lower sequence than the active one is a rollback.
    pub sequence: u64,
    /// Who uploaded it (the API token's owner, `folder-watch`, …).
    pub uploaded_by: String,
    /// When it was accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub uploaded_at: OffsetDateTime,
    /// The world it implements ([`WORLD`]).
    pub world: String,
    /// The WIT package it was built for, e.g. `rescind:erp@0.1.0`.
    pub wit: String,
    /// The rescind-guest version that built it, when it carries the stamp.
    pub sdk: Option<String>,
    /// The component's size in bytes.
    pub size: u64,
    /// How long validating and compiling it took when it was uploaded (only
    /// loading, if the runtime's cache already held these bytes compiled).
    #[serde(rename = "compileMillis", with = "millis")]
    pub compile_time: Duration,
    /// The trusted key (base64) whose signature it carried, if the host
    /// checks signatures.
    pub signed_by: Option<String>,
    /// Its signature (base64 of 64 bytes) over
    /// `rescind-plugin-v1\n{name}\n{sha256 hex}`, checked again whenever the
    /// version is activated, pinned or restored. Versions stored before the
    /// host kept signatures have none.
    #[serde(default)]
    pub signature: Option<String>,
    /// What the operator should know that did not prevent accepting it.
    pub warnings: Vec<String>,
}

/// A plugin, its versions in upload order and the active one.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginSummary {
    /// The plugin's name.
    pub name: String,
    /// The active version, if any.
    pub active: Option<String>,
    /// Every accepted version, oldest first.
    pub versions: Vec<PluginVersionInfo>,
    /// The guard watching the active version, if one is.
    pub guard: Option<GuardStatus>,
}

/// A guard in progress.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardStatus {
    /// The guarded (newly activated) version.
    pub version: String,
    /// The version it rolls back to.
    pub previous: String,
    /// The guard's bounds.
    pub guard: crate::plugins::registry::Guard,
    /// What the guarded version did so far.
    pub observed: crate::plugins::registry::Tally,
}

/// What happened to the active version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A version newer than the active one (or the first) was activated.
    Activated,
    /// An operator activated an older version.
    RolledBack,
    /// A guard rolled a failing version back by itself.
    AutomaticRollback,
    /// A guarded version got through its observation window.
    GuardPassed,
    /// A guarded version failed beyond the bound, but so did the previous
    /// one: it was kept.
    GuardKept,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Which plugin.
    pub plugin: String,
    /// What happened.
    pub action: AuditAction,
    /// The version active before, if any.
    pub from: Option<String>,
    /// The version active after.
    pub to: String,
    /// Who did it (`guard` for the guard's own decisions).
    pub by: String,
    /// Why, when the registry decided by itself.
    pub reason: Option<String>,
}

/// Counters for metrics, since the registry was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryMetrics {
    /// Versions accepted (new bytes only).
    pub uploads: u64,
    /// Uploads refused.
    pub refused_uploads: u64,
    /// Activations of a newer version.
    pub activations: u64,
    /// Operator rollbacks to an older version.
    pub rollbacks: u64,
    /// Rollbacks decided by a guard.
    pub automatic_rollbacks: u64,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
