//! The registry shared by replicas: versions, active choices and the audit
//! log in the PostgreSQL database ([`DatabaseStore`]), and
//! [`follow_shared_store`], which brings each replica's registry up to date
//! with what the others changed.
//!
//! Each replica still compiles for itself (its runtime's cache, keyed by
//! the bytes' SHA-256, stays in its own data directory), and holds its own
//! active pointers: a switch made on one replica reaches another when that
//! one next catches up, on the change's notification or at its next
//! periodic check ([`FOLLOW_EVERY`]), whichever comes first. A version
//! uploaded on another replica is compiled as soon as it is seen, so that
//! its activation later is only a switch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::plugins::registry::PluginRegistry;
use crate::plugins::registry::record::{AuditEntry, PluginVersionInfo};
use crate::plugins::registry::store::{DirectoryStore, PluginStore, PluginStoreError};
use crate::store::{PluginTables, Store};

/// How often a replica checks the shared store for changes it was not
/// notified of (a notification lost while its listener reconnected): well
/// within the second in which an activation must reach every replica.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(400);

/// A [`PluginStore`] in the PostgreSQL database the host's store is on,
/// shared by every replica; the statements are the store's
/// ([`PluginTables`]). Every write notifies the other replicas.
#[derive(Debug, Clone)]
pub struct DatabaseStore {
    tables: PluginTables,
}

impl DatabaseStore {
    /// The plugin tables of `store`, when it is on PostgreSQL; `None` on
    /// SQLite, whose host keeps its plugins in a [`DirectoryStore`].
    pub fn of(store: &Store) -> Option<Self> {
        store.plugin_tables().map(|tables| Self { tables })
    }

    /// Copies `directory` (versions in upload order, active versions, the
    /// audit log) into the database, when the database holds no plugin
    /// version yet: the first replica started on a data directory whose
    /// store was moved to PostgreSQL (`rescind migrate-store`) brings its
    /// plugins along. Answers how many versions it copied: none when the
    /// database already had some (another replica brought its own first)
    /// or the directory is empty. Bytes are checked against their hash on
    /// the way; sequence numbers are given again in the same order.
    pub async fn adopt(&self, directory: &DirectoryStore) -> Result<usize, PluginStoreError> {
        if !self.versions().await?.is_empty() {
            return Ok(0);
        }
        let versions = directory.versions().await?;
        for info in &versions {
            let bytes = directory.bytes(&info.name, &info.version).await?;
            self.put_version(info, &bytes).await?;
        }
        for (name, version) in directory.active_versions().await? {
            if versions
                .iter()
                .any(|v| v.name == name && v.version == version)
            {
                self.set_active(&name, &version).await?;
            }
        }
        for entry in directory.audit(usize::MAX).await? {
            self.append_audit(&entry).await?;
        }
        Ok(versions.len())
    }
}

fn backend(error: crate::store::StoreError) -> PluginStoreError {
    PluginStoreError::Backend(Box::new(error))
}

impl PluginStore for DatabaseStore {
    async fn put_version(
        &self,
        info: &PluginVersionInfo,
        bytes: &[u8],
    ) -> Result<PluginVersionInfo, PluginStoreError> {
        self.tables.put_version(info, bytes).await.map_err(backend)
    }

    async fn versions(&self) -> Result<Vec<PluginVersionInfo>, PluginStoreError> {
        self.tables.versions().await.map_err(backend)
    }

    async fn bytes(&self, name: &str, version: &str) -> Result<Vec<u8>, PluginStoreError> {
        let damaged = |reason: String| PluginStoreError::DamagedVersion {
            plugin: name.to_owned(),
            version: version.to_owned(),
            reason,
        };
        let bytes = self
            .tables
            .bytes(name, version)
            .await
            .map_err(backend)?
            .ok_or_else(|| damaged("it is not in the database".to_owned()))?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if actual != version {
            return Err(damaged(format!("its bytes hash to {actual}")));
        }
        Ok(bytes)
    }

    async fn set_active(&self, name: &str, version: &str) -> Result<(), PluginStoreError> {
        self.tables.set_active(name, version).await.map_err(backend)
    }

    async fn active_versions(&self) -> Result<BTreeMap<String, String>, PluginStoreError> {
        self.tables.active_versions().await.map_err(backend)
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), PluginStoreError> {
        self.tables.append_audit(entry).await.map_err(backend)
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, PluginStoreError> {
        self.tables.audit(limit).await.map_err(backend)
    }
}

/// The plugin store a host uses: its data directory's on SQLite, the
/// shared database on PostgreSQL. An enum rather than a type parameter all
/// the way up, so that the API, the job workers and the folder watch name
/// one registry type whichever store the host runs on.
#[derive(Debug, Clone)]
pub enum RegistryStore {
    /// One host: the data directory.
    Directory(DirectoryStore),
    /// Replicas on one PostgreSQL database.
    Database(DatabaseStore),
}

impl From<DirectoryStore> for RegistryStore {
    fn from(store: DirectoryStore) -> Self {
        RegistryStore::Directory(store)
    }
}

impl From<DatabaseStore> for RegistryStore {
    fn from(store: DatabaseStore) -> Self {
        RegistryStore::Database(store)
    }
}

/// Runs the same call on whichever store it is.
macro_rules! either {
    ($store:expr, |$s:ident| $body:expr) => {
        match $store {
            RegistryStore::Directory($s) => $body,
            RegistryStore::Database($s) => $body,
        }
    };
}

impl PluginStore for RegistryStore {
    async fn put_version(
        &self,
        info: &PluginVersionInfo,
        bytes: &[u8],
    ) -> Result<PluginVersionInfo, PluginStoreError> {
        either!(self, |s| s.put_version(info, bytes).await)
    }

    async fn versions(&self) -> Result<Vec<PluginVersionInfo>, PluginStoreError> {
        either!(self, |s| s.versions().await)
    }

    async fn bytes(&self, name: &str, version: &str) -> Result<Vec<u8>, PluginStoreError> {
        either!(self, |s| s.bytes(name, version).await)
    }

    async fn set_active(&self, name: &str, version: &str) -> Result<(), PluginStoreError> {
        either!(self, |s| s.set_active(name, version).await)
    }

    async fn active_versions(&self) -> Result<BTreeMap<String, String>, PluginStoreError> {
        either!(self, |s| s.active_versions().await)
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), PluginStoreError> {
        either!(self, |s| s.append_audit(entry).await)
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, PluginStoreError> {
        either!(self, |s| s.audit(limit).await)
    }
}

/// Keeps `registry` up to date with a store other replicas change: catches
/// up whenever `changes` is notified (see
/// [`Store::wake_on_plugin_changes`]) and every [`FOLLOW_EVERY`] besides,
/// until the task is aborted. A failed catch-up (the database unreachable)
/// is logged and tried again at the next wake-up.
pub fn follow_shared_store<S: PluginStore>(
    registry: PluginRegistry<S>,
    changes: Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let notified = tokio::select! {
                () = changes.notified() => true,
                () = tokio::time::sleep(FOLLOW_EVERY) => false,
            };
            let caught = match registry.catch_up().await {
                Ok(caught) => caught,
                Err(error) => {
                    tracing::warn!(%error, "catching up with the shared plugin store failed");
                    continue;
                }
            };
            // Versions uploaded elsewhere are compiled here at once, in the
            // background, so that their activation reaches this replica as
            // fast as a switch does.
            if !caught.versions.is_empty() {
                let registry = registry.clone();
                tokio::spawn(async move {
                    for (name, version) in caught.versions {
                        registry.prewarm(&name, &version).await;
                    }
                });
            }
            // The audit log changes only with a notification: its entries
            // are read again then rather than every period.
            if notified && let Err(error) = registry.reload_audit().await {
                tracing::warn!(%error, "reading the shared plugin audit log failed");
            }
        }
    })
}
