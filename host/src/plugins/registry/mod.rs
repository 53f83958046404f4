//! Hot-loading: every accepted version of every plugin, which one is
//! active, and switching between them while calls are in flight.
//!
//! ```no_run
//! # async fn demo(bytes: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
//! use rescind_host::plugins::{PluginRuntime, RuntimeConfig};
//! use rescind_host::plugins::registry::{DirectoryStore, PluginRegistry, RegistryConfig};
//!
//! let data_dir = std::path::Path::new("data");
//! let runtime = PluginRuntime::new(RuntimeConfig {
//!     cache_dir: Some(data_dir.join("plugins/cache")),
//!     ..RuntimeConfig::default()
//! })?;
//! let store = DirectoryStore::open(data_dir.join("plugins/store"))?;
//! let registry = PluginRegistry::open(runtime, store, RegistryConfig::default()).await?;
//! let v2 = registry.upload("aaas", bytes, "ops", true, None).await?;
//! // A job attempt holds its plugin until it ends, whatever is activated meanwhile.
//! let plugin = registry.resolve("aaas").await?;
//! assert_eq!(plugin.sha256(), v2.version);
//! # Ok(()) }
//! ```
//!
//! How a swap stays safe: [`PluginRegistry::active`] hands out an
//! `Arc<Plugin>`; activating swaps the registry's pointer under a lock, so an
//! attempt that started on version N finishes on N, later attempts get N+1,
//! and N's compiled code is freed when its last attempt drops its `Arc`. The
//! registry holds compiled code for active versions only (plus the version a
//! guard may roll back to); another version is loaded again from the store
//! and the runtime's on-disk cache when it is activated or pinned.
//!
//! Replicas sharing one store: each holds its own registry (its own active
//! pointers and compiled code) over a [`DatabaseStore`], and
//! [`PluginRegistry::catch_up`] brings it up to date with what the others
//! stored and activated ([`follow_shared_store`] calls it on every change's
//! notification and periodically). A guard watches the attempts of the
//! replica whose operator activated the guarded version; its rollback
//! reaches the others like any activation.
//!
//! Bounds of an upload: its size ([`RegistryConfig::max_component_bytes`]);
//! compile wall-clock time ([`RegistryConfig::compile_timeout`]): the
//! upload is refused when it runs out; one compilation at a time, so a
//! compile bomb occupies at most one thread. Not bounded: a compilation that
//! ran out of time cannot be cancelled, it keeps its thread (and the single
//! compile slot) until it ends; the compiler's memory is bounded only
//! indirectly, by the size limit and wasmparser's limits on function size
//! and count.

mod error;
mod guard;
mod record;
mod shared;
mod signature;
mod store;
mod watch;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::{MutexGuard, Semaphore};

use crate::plugins::compat::SUPPORTED_WIT;
use crate::plugins::{Plugin, PluginError, PluginRuntime};

pub use error::RegistryError;
pub use guard::{Guard, Tally, Verdict, judge};
pub use record::{
    AuditAction, AuditEntry, GuardStatus, PluginSummary, PluginVersionInfo, RegistryMetrics, WORLD,
};
pub use shared::{DatabaseStore, FOLLOW_EVERY, RegistryStore, follow_shared_store};
pub use signature::{
    MAX_SIGNATURE_BYTES, PluginSigningKey, SIGNATURE_SCHEME, TrustedKey, signed_message,
};
pub use store::{DirectoryStore, PluginStore, PluginStoreError};
pub use watch::{FolderEvent, FolderWatch, FolderWatchConfig, WatchError};

/// Limits and trust of a [`PluginRegistry`].
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The largest component accepted, in bytes. Default 32 MiB.
    pub max_component_bytes: usize,
    /// How long validating and compiling one upload may take. Default 60 s
    /// (a release host compiles a 300 KB plugin in a fraction of a second,
    /// a debug host in about two).
    pub compile_timeout: Duration,
    /// When not empty, every path to active code (upload, activation,
    /// a pinned reference, the folder watch, the restore at start) needs a
    /// signature by one of these keys for the plugin's name and bytes.
    pub trusted_keys: Vec<TrustedKey>,
    /// Versions the host binary itself carries, as (name, `sha256:…`):
    /// as trusted as the host, so they need no signature.
    pub builtin_versions: Vec<(String, String)>,
    /// How many recent outcomes are kept per version: the "previous
    /// version's recent rate" a guard compares with. Default 100.
    pub recent_outcomes: usize,
    /// How many audit entries are kept in memory (all are in the store).
    /// Default 1000.
    pub audit_in_memory: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            max_component_bytes: 32 * 1024 * 1024,
            compile_timeout: Duration::from_secs(60),
            trusted_keys: Vec::new(),
            builtin_versions: Vec::new(),
            recent_outcomes: 100,
            audit_in_memory: 1000,
        }
    }
}

/// Recorded as the uploader of the plugins the host binary carries.
pub const BUNDLED_BY: &str = "bundled";

/// Where an upload's trust comes from.
enum Trust<'a> {
    /// The host checks the signature (when it has trusted keys).
    Verify(Option<&'a [u8]>),
    /// Carried by the host binary itself.
    Bundled,
}

/// What recording an attempt's outcome asks of the job layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum OutcomeEffect {
    /// Nothing beyond the job layer's usual handling of the outcome.
    Counted,
    /// This outcome made a guard roll the plugin back: re-queue every
    /// attempt it lists, so the restored version delivers them.
    RolledBack(AutomaticRollback),
    /// The attempt failed on a version a guard already rolled back (it was
    /// in flight during the switch): re-queue it.
    Requeue,
}

/// A guard's rollback: what was switched, why, and which attempts failed on
/// the withdrawn version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutomaticRollback {
    /// The plugin.
    pub plugin: String,
    /// The withdrawn version.
    pub from: String,
    /// The restored version.
    pub to: String,
    /// Why, as written to the audit log.
    pub reason: String,
    /// The attempts (as passed to [`PluginRegistry::record_outcome`]) that
    /// failed on the withdrawn version while it was guarded.
    pub failed_attempts: Vec<String>,
}

/// What [`PluginRegistry::catch_up`] took over from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaughtUp {
    /// Versions newly registered, as (plugin, `sha256:…`).
    pub versions: Vec<(String, String)>,
    /// Plugins switched to another active version, as (plugin, the version
    /// now active).
    pub switched: Vec<(String, String)>,
}

/// A plugin whose recorded active version was not restored at start: it
/// carries no signature by a trusted key (see
/// [`RegistryError::UntrustedVersion`]). The plugin has no active version
/// until one is activated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithheldVersion {
    /// The plugin.
    pub plugin: String,
    /// The version that was active before the restart.
    pub version: String,
    /// Why, and how to fix it.
    pub reason: String,
}

/// Every plugin's versions and their active choice; see the module docs.
/// Cheap to clone.
pub struct PluginRegistry<S: PluginStore = RegistryStore> {
    inner: Arc<Inner<S>>,
}

impl<S: PluginStore> Clone for PluginRegistry<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: PluginStore> std::fmt::Debug for PluginRegistry<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRegistry")
            .field("plugins", &self.read().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

struct Inner<S> {
    runtime: PluginRuntime,
    store: S,
    config: RegistryConfig,
    plugins: RwLock<BTreeMap<String, PluginState>>,
    /// Serialises changes (upload, activation, rollback) so that the store
    /// and memory change in the same order; reads never wait for it.
    writes: tokio::sync::Mutex<()>,
    /// One compilation at a time; see the module docs.
    compiler: Arc<Semaphore>,
    audit: Mutex<VecDeque<AuditEntry>>,
    metrics: Mutex<RegistryMetrics>,
    /// (name, version) of the versions the host binary carries.
    builtin: Mutex<BTreeSet<(String, String)>>,
    /// Active versions not restored at start, by plugin.
    withheld: Mutex<BTreeMap<String, WithheldVersion>>,
}

#[derive(Default)]
struct PluginState {
    /// Oldest first.
    versions: Vec<VersionSlot>,
    active: Option<Arc<Plugin>>,
    guard: Option<GuardWatch>,
    /// Versions a guard rolled back: failures still arriving from them are
    /// re-queued.
    withdrawn: HashSet<String>,
}

impl PluginState {
    fn slot(&self, version: &str) -> Option<&VersionSlot> {
        self.versions.iter().find(|s| s.info.version == version)
    }

    fn slot_mut(&mut self, version: &str) -> Option<&mut VersionSlot> {
        self.versions.iter_mut().find(|s| s.info.version == version)
    }

    /// Registers a version in sequence order (a replica may learn of a
    /// version another one uploaded after one of its own with a higher
    /// sequence).
    fn insert_slot(&mut self, slot: VersionSlot) {
        let at = self
            .versions
            .partition_point(|s| s.info.sequence <= slot.info.sequence);
        self.versions.insert(at, slot);
    }

    fn active_version(&self) -> Option<&str> {
        self.active.as_deref().map(Plugin::sha256)
    }
}

struct VersionSlot {
    info: PluginVersionInfo,
    /// The compiled plugin while anyone still holds it.
    loaded: Weak<Plugin>,
    /// The latest outcomes on this version (`true` = failed).
    recent: VecDeque<bool>,
}

struct GuardWatch {
    guard: Guard,
    version: String,
    /// Kept compiled, so that rolling back is a pointer swap.
    previous: Arc<Plugin>,
    previous_tally: Tally,
    tally: Tally,
    failed_attempts: Vec<String>,
}

impl<S: PluginStore> PluginRegistry<S> {
    /// Opens the registry over `store`: registers every stored version and
    /// loads each plugin's active version, from the runtime's compile cache
    /// when it has one (configure [`crate::plugins::RuntimeConfig::cache_dir`]
    /// so that a restart does not compile). Fails when the store cannot be
    /// read or an active version no longer loads (damaged bytes): a host
    /// must not start without the plugins its jobs name.
    pub async fn open(
        runtime: PluginRuntime,
        store: S,
        config: RegistryConfig,
    ) -> Result<Self, RegistryError> {
        let versions = store.versions().await?;
        let active = store.active_versions().await?;
        let audit: VecDeque<AuditEntry> = store.audit(config.audit_in_memory).await?.into();
        let mut plugins: BTreeMap<String, PluginState> = BTreeMap::new();
        for info in versions {
            plugins
                .entry(info.name.clone())
                .or_default()
                .versions
                .push(VersionSlot {
                    info,
                    loaded: Weak::new(),
                    recent: VecDeque::new(),
                });
        }
        let builtin = config.builtin_versions.iter().cloned().collect();
        let registry = Self {
            inner: Arc::new(Inner {
                runtime,
                store,
                config,
                plugins: RwLock::new(plugins),
                writes: tokio::sync::Mutex::new(()),
                compiler: Arc::new(Semaphore::new(1)),
                audit: Mutex::new(audit),
                metrics: Mutex::new(RegistryMetrics::default()),
                builtin: Mutex::new(builtin),
                withheld: Mutex::new(BTreeMap::new()),
            }),
        };
        for (name, version) in active {
            // The restore is a path to active code too: a version without a
            // trusted signature stays stored but inactive, and the host
            // says so (log, `/readyz`) rather than refusing to start, so
            // that the operator can attach the signature through the API.
            let trusted = match registry.version_info(&name, &version) {
                Some(info) => registry.check_trusted(&info),
                // Recorded as active, but no version of this name has
                // those bytes: nothing vouches for them.
                None if registry.signatures_required() => Err(RegistryError::UntrustedVersion {
                    plugin: name.clone(),
                    version: version.clone(),
                }),
                None => Ok(()),
            };
            if let Err(error) = trusted {
                tracing::error!(plugin = %name, %version, "active version not restored: {error}");
                lock(&registry.inner.withheld).insert(
                    name.clone(),
                    WithheldVersion {
                        plugin: name.clone(),
                        version: version.clone(),
                        reason: error.to_string(),
                    },
                );
                continue;
            }
            let plugin = registry.loaded_or_load(&name, &version).await?;
            if let Some(state) = registry.write().get_mut(&name) {
                state.active = Some(plugin);
            }
        }
        Ok(registry)
    }

    /// Whether signatures are checked: the host trusts at least one key.
    pub fn signatures_required(&self) -> bool {
        !self.inner.config.trusted_keys.is_empty()
    }

    /// The plugins whose active version was not restored at start because
    /// it carries no trusted signature, until one of their versions is
    /// activated.
    pub fn withheld(&self) -> Vec<WithheldVersion> {
        lock(&self.inner.withheld).values().cloned().collect()
    }

    /// Whether `info` may become active code: always when no key is
    /// trusted; otherwise when the host binary carries it, or its stored
    /// signature verifies for its name and hash with a trusted key.
    fn check_trusted(&self, info: &PluginVersionInfo) -> Result<(), RegistryError> {
        let keys = &self.inner.config.trusted_keys;
        if keys.is_empty()
            || lock(&self.inner.builtin).contains(&(info.name.clone(), info.version.clone()))
        {
            return Ok(());
        }
        let digest = info
            .version
            .strip_prefix("sha256:")
            .unwrap_or(&info.version);
        let signature = info.signature.as_deref().map(str::as_bytes);
        signature::verify(keys, &info.name, digest, signature)
            .map(drop)
            .map_err(|_| RegistryError::UntrustedVersion {
                plugin: info.name.clone(),
                version: info.version.clone(),
            })
    }

    /// The runtime plugins are loaded into.
    pub fn runtime(&self) -> &PluginRuntime {
        &self.inner.runtime
    }

    /// The registry's configuration.
    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// Validates and keeps a new version of plugin `name`, and activates it
    /// when `activate` is set.
    ///
    /// Refused (nothing stored, [`RegistryError::is_refusal`]): larger than
    /// the limit; unsigned or badly signed when trusted keys are configured
    /// (`signature`: 64 raw bytes or their base64); not a component of a
    /// supported world and SDK version (the runtime's checks); not compiled
    /// within the time limit. Uploading bytes already stored under `name`
    /// answers the existing version (and activates it if asked).
    pub async fn upload(
        &self,
        name: &str,
        bytes: Vec<u8>,
        uploaded_by: &str,
        activate: bool,
        signature: Option<&[u8]>,
    ) -> Result<PluginVersionInfo, RegistryError> {
        let result = self
            .try_upload(name, bytes, uploaded_by, activate, Trust::Verify(signature))
            .await;
        match &result {
            Ok(_) => {}
            Err(error) if error.is_refusal() => {
                tracing::warn!(plugin = name, "upload refused: {error}");
                self.metrics_mut().refused_uploads += 1;
            }
            Err(error) => tracing::error!(plugin = name, "upload failed: {error}"),
        }
        result
    }

    /// Stores a plugin the host binary carries (it needs no signature and
    /// is not held to the upload size limit: it is as trusted as the host
    /// itself) and activates it when the plugin
    /// has no active version, or when the active one is an earlier bundled
    /// version. A version an operator activated stays active: a new host
    /// binary does not undo their choice. Answers the version and whether
    /// it is now active.
    pub async fn install_bundled(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(PluginVersionInfo, bool), RegistryError> {
        let version = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let activate = match self.get(name) {
            None => true,
            Some(summary) => match summary.active {
                None => true,
                Some(active) => {
                    let stored = |v: &str| summary.versions.iter().find(|i| i.version == v);
                    // Earlier: uploaded before this one, or this one is new.
                    // Replicas running two host binaries during an upgrade
                    // then agree on the later one instead of taking turns.
                    stored(&active).is_some_and(|active| {
                        active.uploaded_by == BUNDLED_BY
                            && stored(&version).is_none_or(|this| this.sequence > active.sequence)
                    })
                }
            },
        };
        lock(&self.inner.builtin).insert((name.to_owned(), version));
        let info = self
            .try_upload(name, bytes, BUNDLED_BY, activate, Trust::Bundled)
            .await?;
        let active = self.get(name).and_then(|s| s.active) == Some(info.version.clone());
        Ok((info, active))
    }

    async fn try_upload(
        &self,
        name: &str,
        bytes: Vec<u8>,
        uploaded_by: &str,
        activate: bool,
        trust: Trust<'_>,
    ) -> Result<PluginVersionInfo, RegistryError> {
        crate::plugins::validate_plugin_name(name)?;
        let plugin = name.to_owned();
        let limit = self.inner.config.max_component_bytes;
        // The binary's own plugins are not uploads: no upload limit.
        if bytes.len() > limit && matches!(trust, Trust::Verify(_)) {
            return Err(RegistryError::TooLarge {
                plugin,
                size: bytes.len(),
                limit,
            });
        }
        let digest = hex::encode(Sha256::digest(&bytes));
        let version = format!("sha256:{digest}");
        let (signed_by, signature) = match trust {
            Trust::Bundled => (None, None),
            Trust::Verify(signature) => {
                let keys = &self.inner.config.trusted_keys;
                match signature::verify(keys, name, &digest, signature) {
                    // Kept even when no key is trusted yet: it is checked
                    // whenever the version is to run.
                    Ok(signed_by) => (signed_by, signature.and_then(signature::normalized)),
                    Err(problem) => {
                        return Err(match problem {
                            signature::SignatureProblem::Missing => {
                                RegistryError::SignatureMissing { plugin }
                            }
                            signature::SignatureProblem::Unreadable => {
                                RegistryError::SignatureUnreadable { plugin }
                            }
                            signature::SignatureProblem::NotByTrustedKey
                                if signature.is_some_and(|signature| {
                                    signature::signs_bytes_only(keys, &bytes, signature)
                                }) =>
                            {
                                RegistryError::SignatureOverBytesOnly { plugin }
                            }
                            signature::SignatureProblem::NotByTrustedKey => {
                                RegistryError::SignatureNotTrusted { plugin }
                            }
                        });
                    }
                }
            }
        };
        if self.version_info(name, &version).is_some() {
            return self
                .upload_existing(
                    name,
                    &version,
                    &bytes,
                    uploaded_by,
                    activate,
                    signature,
                    signed_by,
                )
                .await;
        }

        let (loaded, compile_time, bytes) = self.compile(name, bytes).await?;
        let writes = self.inner.writes.lock().await;
        // The same bytes may have been accepted while this one compiled.
        if self.version_info(name, &version).is_some() {
            drop(writes);
            return self
                .upload_existing(
                    name,
                    &version,
                    &bytes,
                    uploaded_by,
                    activate,
                    signature,
                    signed_by,
                )
                .await;
        }
        let sequence = self
            .read()
            .get(name)
            .and_then(|state| state.versions.last())
            .map_or(1, |slot| slot.info.sequence + 1);
        let info = PluginVersionInfo {
            name: name.to_owned(),
            version,
            sequence,
            uploaded_by: uploaded_by.to_owned(),
            uploaded_at: OffsetDateTime::now_utc(),
            world: WORLD.to_owned(),
            wit: loaded.wit_version().unwrap_or(SUPPORTED_WIT).to_owned(),
            sdk: loaded.sdk_version().map(str::to_owned),
            size: bytes.len() as u64,
            compile_time,
            signed_by,
            signature,
            warnings: loaded.warnings().to_vec(),
        };
        let info = self.inner.store.put_version(&info, &bytes).await?;
        self.write()
            .entry(name.to_owned())
            .or_default()
            .insert_slot(VersionSlot {
                info: info.clone(),
                loaded: Arc::downgrade(&loaded),
                recent: VecDeque::new(),
            });
        self.metrics_mut().uploads += 1;
        tracing::info!(plugin = name, version = %info.version, "plugin version accepted");
        if activate {
            self.switch(name, loaded, uploaded_by, None, &writes)
                .await?;
        }
        Ok(info)
    }

    /// An upload of bytes already stored under `name`: a signature it
    /// carries is attached to the version (how a version stored before the
    /// host trusted keys is signed), then it is activated if asked.
    #[allow(clippy::too_many_arguments)]
    async fn upload_existing(
        &self,
        name: &str,
        version: &str,
        bytes: &[u8],
        uploaded_by: &str,
        activate: bool,
        signature: Option<String>,
        signed_by: Option<String>,
    ) -> Result<PluginVersionInfo, RegistryError> {
        if let Some(signature) = signature {
            let _writes = self.inner.writes.lock().await;
            let stored = self.known_version(name, version)?;
            // Unverified (no key trusted) signatures never replace one.
            let replace = stored.signature.as_deref() != Some(signature.as_str())
                && (signed_by.is_some() || stored.signature.is_none());
            if replace {
                let info = PluginVersionInfo {
                    signature: Some(signature),
                    signed_by,
                    ..stored
                };
                let info = self.inner.store.put_version(&info, bytes).await?;
                if let Some(slot) = self
                    .write()
                    .get_mut(name)
                    .and_then(|state| state.slot_mut(version))
                {
                    slot.info = info;
                }
                tracing::info!(
                    plugin = name,
                    version,
                    by = uploaded_by,
                    "signature attached"
                );
            }
        }
        if activate {
            self.activate(name, version, uploaded_by, None).await?;
        }
        self.known_version(name, version)
    }

    /// Makes `version` (`sha256:…`) the active version of `name`: attempts
    /// starting from now on run it; attempts in flight finish on the
    /// version they started with. Activating an older version is a
    /// rollback. With a `guard`, the registry watches the new version's
    /// first attempts (see [`Self::record_outcome`]) and rolls back by
    /// itself if they fail beyond the bound. Activating replaces a guard in
    /// progress. Activating the active version changes nothing.
    pub async fn activate(
        &self,
        name: &str,
        version: &str,
        activated_by: &str,
        guard: Option<Guard>,
    ) -> Result<PluginVersionInfo, RegistryError> {
        if let Some(guard) = &guard {
            guard
                .check()
                .map_err(|reason| RegistryError::BadGuard { reason })?;
        }
        let writes = self.inner.writes.lock().await;
        let info = self.known_version(name, version)?;
        self.check_trusted(&info)?;
        let plugin = self.loaded_or_load(name, version).await?;
        self.switch(name, plugin, activated_by, guard, &writes)
            .await?;
        Ok(info)
    }

    /// The active version of `name`: hold the `Arc` for the whole attempt.
    pub fn active(&self, name: &str) -> Result<Arc<Plugin>, RegistryError> {
        let plugins = self.read();
        let state = plugins
            .get(name)
            .ok_or_else(|| RegistryError::UnknownPlugin {
                name: name.to_owned(),
            })?;
        state
            .active
            .clone()
            .ok_or_else(|| RegistryError::NoActiveVersion {
                name: name.to_owned(),
            })
    }

    /// The plugin a job definition names: `name` (its active version) or
    /// `name@sha256:<hex>` (that version, pinned, loaded from the store and
    /// the compile cache if nobody holds it).
    pub async fn resolve(&self, reference: &str) -> Result<Arc<Plugin>, RegistryError> {
        match parse_reference(reference)? {
            (name, None) => self.active(name),
            (name, Some(version)) => {
                self.check_trusted(&self.known_version(name, version)?)?;
                self.loaded_or_load(name, version).await
            }
        }
    }

    /// Checks, without loading anything, that a job definition's plugin
    /// reference names something that can run now: `name` a plugin with an
    /// active version, `name@sha256:<hex>` a stored version of it (signed
    /// by a trusted key, when the host trusts keys).
    pub fn check_reference(&self, reference: &str) -> Result<(), RegistryError> {
        match parse_reference(reference)? {
            (name, None) => self.active(name).map(drop),
            (name, Some(version)) => self.check_trusted(&self.known_version(name, version)?),
        }
    }

    /// Every plugin, by name.
    pub fn list(&self) -> Vec<PluginSummary> {
        self.read()
            .iter()
            .map(|(name, state)| summary(name, state))
            .collect()
    }

    /// One plugin, if it exists.
    pub fn get(&self, name: &str) -> Option<PluginSummary> {
        self.read().get(name).map(|state| summary(name, state))
    }

    /// The latest audit entries, oldest first (the store has them all).
    pub fn audit_log(&self) -> Vec<AuditEntry> {
        lock(&self.inner.audit).iter().cloned().collect()
    }

    /// Counters since the registry was opened.
    pub fn metrics(&self) -> RegistryMetrics {
        *self.metrics_mut()
    }

    /// Brings the registry up to date with its store, when other replicas
    /// share it: registers the versions they stored (and signatures they
    /// attached), and switches every plugin whose stored active version
    /// differs from this registry's to the stored one, loaded from the
    /// runtime's compile cache or compiled, exactly as a local activation
    /// would switch (attempts in flight finish on their version). A guard
    /// this registry ran on a version another replica replaced ends, as
    /// activating replaces a guard. Nothing is written back or audited: the
    /// replica that made the change did both. A stored active version that
    /// lacks a trusted signature is withheld, as at start ([`Self::withheld`]);
    /// one that fails to load is logged and tried again at the next call.
    pub async fn catch_up(&self) -> Result<CaughtUp, RegistryError> {
        let _writes = self.inner.writes.lock().await;
        let stored = self.inner.store.versions().await?;
        let active = self.inner.store.active_versions().await?;
        let mut caught = CaughtUp::default();
        {
            let mut plugins = self.write();
            for info in stored {
                let state = plugins.entry(info.name.clone()).or_default();
                match state.slot_mut(&info.version) {
                    Some(slot) => slot.info = info,
                    None => {
                        caught
                            .versions
                            .push((info.name.clone(), info.version.clone()));
                        state.insert_slot(VersionSlot {
                            info,
                            loaded: Weak::new(),
                            recent: VecDeque::new(),
                        });
                    }
                }
            }
        }
        for (name, version) in active {
            let current = self
                .read()
                .get(&name)
                .and_then(|state| state.active_version().map(str::to_owned));
            let withheld = lock(&self.inner.withheld)
                .get(&name)
                .is_some_and(|w| w.version == version);
            if current.as_deref() == Some(version.as_str()) || withheld {
                continue;
            }
            let Some(info) = self.version_info(&name, &version) else {
                // The database's foreign key makes this a damaged store.
                tracing::error!(plugin = %name, %version, "the stored active version is not stored");
                continue;
            };
            if let Err(error) = self.check_trusted(&info) {
                tracing::error!(plugin = %name, %version, "active version not followed: {error}");
                lock(&self.inner.withheld).insert(
                    name.clone(),
                    WithheldVersion {
                        plugin: name.clone(),
                        version: version.clone(),
                        reason: error.to_string(),
                    },
                );
                continue;
            }
            let plugin = match self.loaded_or_load(&name, &version).await {
                Ok(plugin) => plugin,
                Err(error) => {
                    tracing::error!(plugin = %name, %version, "cannot load the version another replica activated: {error}");
                    continue;
                }
            };
            {
                let mut plugins = self.write();
                let state = plugins.get_mut(&name).expect("the version was found");
                state.active = Some(plugin);
                state.guard.take_if(|watch| watch.version != version);
                state.withdrawn.remove(&version);
            }
            lock(&self.inner.withheld).remove(&name);
            tracing::info!(plugin = %name, from = ?current, to = %version, "plugin version switched on another replica");
            caught.switched.push((name, version));
        }
        Ok(caught)
    }

    /// Reads the latest audit entries ([`RegistryConfig::audit_in_memory`])
    /// from the store again, with those other replicas sharing it appended.
    pub async fn reload_audit(&self) -> Result<(), RegistryError> {
        let entries = self
            .inner
            .store
            .audit(self.inner.config.audit_in_memory)
            .await?;
        *lock(&self.inner.audit) = entries.into();
        Ok(())
    }

    /// Records how an attempt on `version` of `name` ended: `failed` for a
    /// transient failure, a trap, a deadline, the memory cap or a
    /// misconfiguration; `attempt` is the job layer's id for it (reported
    /// back on a rollback). The job worker calls this after every attempt;
    /// the answer says whether to re-queue anything.
    pub async fn record_outcome(
        &self,
        name: &str,
        version: &str,
        attempt: &str,
        failed: bool,
    ) -> Result<OutcomeEffect, RegistryError> {
        {
            let mut plugins = self.write();
            let Some(state) = plugins.get_mut(name) else {
                return Ok(OutcomeEffect::Counted);
            };
            if let Some(slot) = state.slot_mut(version) {
                slot.recent.push_back(failed);
                while slot.recent.len() > self.inner.config.recent_outcomes {
                    slot.recent.pop_front();
                }
            }
            if state.withdrawn.contains(version) {
                return Ok(if failed {
                    OutcomeEffect::Requeue
                } else {
                    OutcomeEffect::Counted
                });
            }
            let Some(watch) = state.guard.as_mut().filter(|w| w.version == version) else {
                return Ok(OutcomeEffect::Counted);
            };
            watch.tally = watch.tally.record(failed);
            if failed {
                watch.failed_attempts.push(attempt.to_owned());
            }
            match judge(&watch.guard, watch.tally, watch.previous_tally) {
                Verdict::Observing => return Ok(OutcomeEffect::Counted),
                verdict @ (Verdict::Passed | Verdict::KeptBothFailing) => {
                    let watch = state.guard.take().expect("the guard is there");
                    drop(plugins);
                    self.guard_ended(name, &watch, verdict);
                    return Ok(OutcomeEffect::Counted);
                }
                // Marked now, under the lock: failures recorded from here on
                // are re-queued by their own callers, not listed twice.
                Verdict::RollBack => {
                    state.withdrawn.insert(version.to_owned());
                }
            }
        }
        self.roll_back(name, version, failed).await
    }

    async fn roll_back(
        &self,
        name: &str,
        version: &str,
        failed: bool,
    ) -> Result<OutcomeEffect, RegistryError> {
        let _writes = self.inner.writes.lock().await;
        let watch = {
            let mut plugins = self.write();
            let state = plugins.get_mut(name).expect("plugins are never removed");
            match state.guard.take_if(|w| w.version == version) {
                Some(watch) => watch,
                // The operator switched meanwhile: their choice stands.
                None if failed => return Ok(OutcomeEffect::Requeue),
                None => return Ok(OutcomeEffect::Counted),
            }
        };
        let to = watch.previous.sha256().to_owned();
        if let Err(error) = self.inner.store.set_active(name, &to).await {
            let mut plugins = self.write();
            let state = plugins.get_mut(name).expect("plugins are never removed");
            state.withdrawn.remove(version);
            state.guard = Some(watch);
            return Err(error.into());
        }
        let reason = format!(
            "the new version failed beyond the guard's bound of {:.0}% over {} jobs: {}; the \
             previous version recently: {}",
            watch.guard.max_failure_rate * 100.0,
            watch.guard.observe_jobs,
            watch.tally,
            watch.previous_tally
        );
        {
            let mut plugins = self.write();
            let state = plugins.get_mut(name).expect("plugins are never removed");
            state.active = Some(Arc::clone(&watch.previous));
        }
        self.metrics_mut().automatic_rollbacks += 1;
        tracing::warn!(plugin = name, from = version, to = %to, "automatic rollback: {reason}");
        self.record_audit(AuditEntry {
            at: OffsetDateTime::now_utc(),
            plugin: name.to_owned(),
            action: AuditAction::AutomaticRollback,
            from: Some(version.to_owned()),
            to: to.clone(),
            by: "guard".to_owned(),
            reason: Some(reason.clone()),
        })
        .await;
        Ok(OutcomeEffect::RolledBack(AutomaticRollback {
            plugin: name.to_owned(),
            from: version.to_owned(),
            to,
            reason,
            failed_attempts: watch.failed_attempts,
        }))
    }

    fn guard_ended(&self, name: &str, watch: &GuardWatch, verdict: Verdict) {
        let (action, reason) = match verdict {
            Verdict::KeptBothFailing => (
                AuditAction::GuardKept,
                format!(
                    "the new version failed beyond the bound ({}), but so did the previous one \
                     recently ({}): kept",
                    watch.tally, watch.previous_tally
                ),
            ),
            _ => (
                AuditAction::GuardPassed,
                format!("within the bound: {}", watch.tally),
            ),
        };
        let entry = AuditEntry {
            at: OffsetDateTime::now_utc(),
            plugin: name.to_owned(),
            action,
            from: Some(watch.previous.sha256().to_owned()),
            to: watch.version.clone(),
            by: "guard".to_owned(),
            reason: Some(reason),
        };
        // Not awaited by the attempt that happened to complete the window.
        let registry = self.clone();
        tokio::spawn(async move { registry.record_audit(entry).await });
    }

    /// Switches the active pointer, persists the choice and audits it.
    /// The caller holds the write lock.
    async fn switch(
        &self,
        name: &str,
        plugin: Arc<Plugin>,
        by: &str,
        guard: Option<Guard>,
        _writes: &MutexGuard<'_, ()>,
    ) -> Result<(), RegistryError> {
        let version = plugin.sha256().to_owned();
        let (previous, previous_tally, action) = {
            let plugins = self.read();
            let state = plugins.get(name).expect("the version was found");
            let previous = state.active.clone();
            if previous.as_deref().map(Plugin::sha256) == Some(version.as_str()) {
                return Ok(());
            }
            let sequence = |v: &str| state.slot(v).map_or(0, |s| s.info.sequence);
            let action = match previous.as_deref() {
                Some(old) if sequence(&version) < sequence(old.sha256()) => AuditAction::RolledBack,
                _ => AuditAction::Activated,
            };
            let previous_tally = previous
                .as_deref()
                .and_then(|old| state.slot(old.sha256()))
                .map(|slot| Tally::of(slot.recent.iter().copied()))
                .unwrap_or_default();
            (previous, previous_tally, action)
        };
        let guard = match (guard, &previous) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(RegistryError::NothingToRollBackTo {
                    name: name.to_owned(),
                });
            }
            (Some(guard), Some(previous)) => Some(GuardWatch {
                guard,
                version: version.clone(),
                previous: Arc::clone(previous),
                previous_tally,
                tally: Tally::default(),
                failed_attempts: Vec::new(),
            }),
        };
        self.inner.store.set_active(name, &version).await?;
        {
            let mut plugins = self.write();
            let state = plugins.get_mut(name).expect("the version was found");
            state.active = Some(plugin);
            state.guard = guard;
            state.withdrawn.remove(&version);
        }
        lock(&self.inner.withheld).remove(name);
        {
            let mut metrics = self.metrics_mut();
            match action {
                AuditAction::RolledBack => metrics.rollbacks += 1,
                _ => metrics.activations += 1,
            }
        }
        let from = previous.as_deref().map(|p| p.sha256().to_owned());
        tracing::info!(plugin = name, ?from, to = %version, ?action, by, "plugin version switched");
        self.record_audit(AuditEntry {
            at: OffsetDateTime::now_utc(),
            plugin: name.to_owned(),
            action,
            from,
            to: version,
            by: by.to_owned(),
            reason: None,
        })
        .await;
        Ok(())
    }

    /// The compiled plugin for a stored version: the one someone holds, or
    /// loaded again from the store (the compile cache spares compiling).
    async fn loaded_or_load(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Arc<Plugin>, RegistryError> {
        let held = {
            let plugins = self.read();
            plugins.get(name).and_then(|state| {
                state
                    .active
                    .clone()
                    .filter(|p| p.sha256() == version)
                    .or_else(|| state.slot(version).and_then(|s| s.loaded.upgrade()))
            })
        };
        if let Some(plugin) = held {
            return Ok(plugin);
        }
        let bytes = self.inner.store.bytes(name, version).await?;
        let (plugin, _, _) = self.compile(name, bytes).await?;
        if let Some(slot) = self
            .write()
            .get_mut(name)
            .and_then(|state| state.slot_mut(version))
        {
            slot.loaded = Arc::downgrade(&plugin);
        }
        Ok(plugin)
    }

    /// Compiles a version another replica uploaded into this replica's
    /// compile cache, so that activating it later here is a switch, not a
    /// compilation. A version that is not trusted, or no longer stored, is
    /// left alone; a failure only costs the activation its compile time.
    pub async fn prewarm(&self, name: &str, version: &str) {
        let Some(info) = self.version_info(name, version) else {
            return;
        };
        if self.check_trusted(&info).is_err() {
            return;
        }
        if let Err(error) = self.loaded_or_load(name, version).await {
            tracing::warn!(plugin = %name, %version, "cannot compile a version another replica uploaded: {error}");
        }
    }

    /// Validates and compiles on a blocking thread, within the time limit
    /// and one at a time (see the module docs for what is bounded).
    async fn compile(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(Arc<Plugin>, Duration, Vec<u8>), RegistryError> {
        let limit = self.inner.config.compile_timeout;
        let permit = tokio::time::timeout(limit, Arc::clone(&self.inner.compiler).acquire_owned())
            .await
            .map_err(|_| RegistryError::CompilerBusy)?
            .expect("the compiler semaphore is never closed");
        let runtime = self.inner.runtime.clone();
        let plugin = name.to_owned();
        let compiling = tokio::task::spawn_blocking(move || {
            // Released when the compilation really ends, even after the
            // caller stopped waiting.
            let _permit = permit;
            let started = Instant::now();
            let loaded = runtime.load(&plugin, &bytes);
            // Whole milliseconds: what the store keeps.
            let took = Duration::from_millis(started.elapsed().as_millis() as u64);
            (loaded, took, bytes)
        });
        match tokio::time::timeout(limit, compiling).await {
            Err(_) => Err(RegistryError::CompileTimeout {
                plugin: name.to_owned(),
                limit,
            }),
            Ok(Err(crash)) => Err(RegistryError::CompileCrashed {
                plugin: name.to_owned(),
                reason: crash.to_string(),
            }),
            Ok(Ok((Err(refusal), _, _))) => Err(refusal.into()),
            Ok(Ok((Ok(plugin), took, bytes))) => Ok((plugin, took, bytes)),
        }
    }

    fn version_info(&self, name: &str, version: &str) -> Option<PluginVersionInfo> {
        self.read()
            .get(name)
            .and_then(|state| state.slot(version))
            .map(|slot| slot.info.clone())
    }

    fn known_version(&self, name: &str, version: &str) -> Result<PluginVersionInfo, RegistryError> {
        let plugins = self.read();
        let state = plugins
            .get(name)
            .ok_or_else(|| RegistryError::UnknownPlugin {
                name: name.to_owned(),
            })?;
        state
            .slot(version)
            .map(|slot| slot.info.clone())
            .ok_or_else(|| RegistryError::UnknownVersion {
                name: name.to_owned(),
                version: version.to_owned(),
            })
    }

    async fn record_audit(&self, entry: AuditEntry) {
        {
            let mut audit = lock(&self.inner.audit);
            audit.push_back(entry.clone());
            while audit.len() > self.inner.config.audit_in_memory {
                audit.pop_front();
            }
        }
        // The switch already happened; a lost audit line must not undo it.
        if let Err(error) = self.inner.store.append_audit(&entry).await {
            tracing::error!("cannot append to the plugin audit log: {error}");
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, PluginState>> {
        self.inner.plugins.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, PluginState>> {
        self.inner
            .plugins
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn metrics_mut(&self) -> std::sync::MutexGuard<'_, RegistryMetrics> {
        lock(&self.inner.metrics)
    }
}

/// Splits a job definition's plugin reference into the plugin's name and
/// the pinned version: `aaas` → (`aaas`, none), `aaas@sha256:<64 hex>` →
/// (`aaas`, `sha256:<64 hex>`). Anything else is
/// [`RegistryError::BadReference`].
pub fn parse_reference(reference: &str) -> Result<(&str, Option<&str>), RegistryError> {
    let bad = |reason: String| RegistryError::BadReference {
        reference: reference.to_owned(),
        reason,
    };
    let shape = || "write `name` or `name@sha256:<64 hex digits>`".to_owned();
    let (name, version) = match reference.split_once('@') {
        None => (reference, None),
        Some((name, version)) => {
            let hex = version
                .strip_prefix("sha256:")
                .ok_or_else(|| bad(shape()))?;
            let well_formed = hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !well_formed {
                return Err(bad(shape()));
            }
            (name, Some(version))
        }
    };
    match crate::plugins::validate_plugin_name(name) {
        Ok(()) => Ok((name, version)),
        Err(PluginError::InvalidName { hint, .. }) => Err(bad(hint)),
        Err(_) => Err(bad(shape())),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn summary(name: &str, state: &PluginState) -> PluginSummary {
    PluginSummary {
        name: name.to_owned(),
        active: state.active_version().map(str::to_owned),
        versions: state.versions.iter().map(|s| s.info.clone()).collect(),
        guard: state.guard.as_ref().map(|watch| GuardStatus {
            version: watch.version.clone(),
            previous: watch.previous.sha256().to_owned(),
            guard: watch.guard,
            observed: watch.tally,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_table() {
        let pinned = format!("aaas@sha256:{}", "ab".repeat(32));
        assert_eq!(parse_reference("aaas").unwrap(), ("aaas", None));
        assert_eq!(
            parse_reference(&pinned).unwrap(),
            ("aaas", Some(&pinned["aaas@".len()..]))
        );
        for (reference, says) in [
            ("Aaas", "plugin names are lowercase: use `aaas`"),
            (
                "aaas@sha256:beef",
                "write `name` or `name@sha256:<64 hex digits>`",
            ),
            ("aaas@1.0", "write `name` or `name@sha256:<64 hex digits>`"),
            ("", "lowercase ASCII letters"),
        ] {
            let error = parse_reference(reference).unwrap_err().to_string();
            assert!(error.contains(says), "{reference:?}: {error}");
        }
        let upper_pin = format!("AAAS@sha256:{}", "ab".repeat(32));
        let error = parse_reference(&upper_pin).unwrap_err().to_string();
        assert!(error.contains("use `aaas`"), "{error}");
    }
}
