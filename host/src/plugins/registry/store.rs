//! Where plugin versions, the active choice and the audit log are kept.
//!
//! [`PluginStore`] is the seam, with two implementations chosen by where
//! the host's store is ([`RegistryStore`]): [`DirectoryStore`] keeps
//! everything in the data directory (one host, on SQLite);
//! [`DatabaseStore`](super::DatabaseStore) keeps it in the PostgreSQL
//! database that several replicas share.
//!
//! Directory layout, under the store's root (`<data-dir>/plugins/store`):
//!
//! ```text
//! <name>/<hex>.wasm    the component's bytes (hex = its SHA-256)
//! <name>/<hex>.json    its PluginVersionInfo; present only once the bytes are
//! <name>/active        the active version, `sha256:<hex>`
//! audit.jsonl          one AuditEntry per line, appended
//! ```
//!
//! Every file but the audit log is written whole to a temporary file, synced
//! and renamed, so a crash leaves the old file or the new one, never a torn
//! one; a version counts only once its `.json` exists, which is written
//! after its bytes.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::plugins::registry::record::{AuditEntry, PluginVersionInfo};

/// Why the plugin store could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginStoreError {
    /// A file could not be read or written.
    #[error("plugin store: {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A stored file is damaged: its content does not match what was
    /// written (hash mismatch, unreadable JSON).
    #[error("plugin store: {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A version kept in the database is missing or its bytes do not
    /// hash to its name.
    #[error("plugin store: version {version} of {plugin} is damaged: {reason}")]
    DamagedVersion {
        /// The plugin.
        plugin: String,
        /// The version (`sha256:…`).
        version: String,
        /// What is wrong.
        reason: String,
    },
    /// Another store implementation failed (a database, say).
    #[error("plugin store: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// Persistence of the registry: versions (bytes and metadata), the active
/// version of each plugin, and the audit log.
///
/// A store may be shared by several hosts (replicas on one database): what
/// one of them writes, the others read back through
/// [`PluginRegistry::catch_up`](super::PluginRegistry::catch_up), which
/// compares [`Self::versions`] and [`Self::active_versions`] with what the
/// registry holds. Such a store answers each write with what it stored,
/// which may differ from what was asked (see [`Self::put_version`]).
///
/// Names and versions reaching a store were validated by the registry
/// (names are `[A-Za-z0-9_-]{1,64}`, versions `sha256:<64 hex>`).
pub trait PluginStore: Send + Sync + 'static {
    /// Keeps a version, or for a version already stored replaces its
    /// signature, and answers the version as stored, which the registry
    /// keeps. A store shared by replicas may answer another sequence
    /// number than `info`'s (a replica stored another version meanwhile)
    /// or, for bytes another replica stored first, that replica's metadata.
    /// Called before the version becomes visible; on error the upload fails
    /// and nothing is registered.
    fn put_version(
        &self,
        info: &PluginVersionInfo,
        bytes: &[u8],
    ) -> impl Future<Output = Result<PluginVersionInfo, PluginStoreError>> + Send;

    /// Every stored version's metadata.
    fn versions(
        &self,
    ) -> impl Future<Output = Result<Vec<PluginVersionInfo>, PluginStoreError>> + Send;

    /// A stored version's bytes, checked against its hash.
    fn bytes(
        &self,
        name: &str,
        version: &str,
    ) -> impl Future<Output = Result<Vec<u8>, PluginStoreError>> + Send;

    /// Records the active version of a plugin.
    fn set_active(
        &self,
        name: &str,
        version: &str,
    ) -> impl Future<Output = Result<(), PluginStoreError>> + Send;

    /// The active version of each plugin that has one.
    fn active_versions(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, PluginStoreError>> + Send;

    /// Appends one entry to the audit log.
    fn append_audit(
        &self,
        entry: &AuditEntry,
    ) -> impl Future<Output = Result<(), PluginStoreError>> + Send;

    /// The latest `limit` entries of the audit log, oldest first.
    fn audit(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, PluginStoreError>> + Send;
}

/// A [`PluginStore`] in a directory of the host's file system.
#[derive(Debug, Clone)]
pub struct DirectoryStore {
    root: PathBuf,
}

impl DirectoryStore {
    /// Uses (and creates) `root`, conventionally `<data-dir>/plugins/store`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, PluginStoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        Ok(Self { root })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn file(&self, name: &str, version: &str, extension: &str) -> PathBuf {
        let hex = version.strip_prefix("sha256:").unwrap_or(version);
        self.root.join(name).join(format!("{hex}.{extension}"))
    }

    fn audit_path(&self) -> PathBuf {
        self.root.join("audit.jsonl")
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(Self) -> Result<T, PluginStoreError> + Send + 'static,
    ) -> Result<T, PluginStoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(store))
            .await
            .map_err(|e| PluginStoreError::Backend(Box::new(e)))?
    }
}

impl PluginStore for DirectoryStore {
    async fn put_version(
        &self,
        info: &PluginVersionInfo,
        bytes: &[u8],
    ) -> Result<PluginVersionInfo, PluginStoreError> {
        let info = info.clone();
        let bytes = bytes.to_vec();
        self.blocking(move |store| {
            let dir = store.root.join(&info.name);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            write_atomically(&store.file(&info.name, &info.version, "wasm"), &bytes)?;
            let json = serde_json::to_vec_pretty(&info).expect("version info serializes");
            write_atomically(&store.file(&info.name, &info.version, "json"), &json)?;
            Ok(info)
        })
        .await
    }

    async fn versions(&self) -> Result<Vec<PluginVersionInfo>, PluginStoreError> {
        self.blocking(|store| {
            let mut versions = Vec::new();
            for dir in read_dir(&store.root)?.into_iter().filter(|p| p.is_dir()) {
                for path in read_dir(&dir)? {
                    if path.extension().is_none_or(|e| e != "json") {
                        continue;
                    }
                    let text = std::fs::read(&path).map_err(io(&path))?;
                    let info: PluginVersionInfo =
                        serde_json::from_slice(&text).map_err(|e| PluginStoreError::Damaged {
                            path: path.clone(),
                            reason: e.to_string(),
                        })?;
                    versions.push(info);
                }
            }
            versions.sort_by(|a, b| (&a.name, a.sequence).cmp(&(&b.name, b.sequence)));
            Ok(versions)
        })
        .await
    }

    async fn bytes(&self, name: &str, version: &str) -> Result<Vec<u8>, PluginStoreError> {
        let path = self.file(name, version, "wasm");
        let expected = version.to_owned();
        self.blocking(move |_| {
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
            if actual != expected {
                return Err(PluginStoreError::Damaged {
                    path,
                    reason: format!("its content hashes to {actual}"),
                });
            }
            Ok(bytes)
        })
        .await
    }

    async fn set_active(&self, name: &str, version: &str) -> Result<(), PluginStoreError> {
        let path = self.root.join(name).join("active");
        let version = version.to_owned();
        self.blocking(move |_| write_atomically(&path, version.as_bytes()))
            .await
    }

    async fn active_versions(&self) -> Result<BTreeMap<String, String>, PluginStoreError> {
        self.blocking(|store| {
            let mut active = BTreeMap::new();
            for dir in read_dir(&store.root)?.into_iter().filter(|p| p.is_dir()) {
                let path = dir.join("active");
                match std::fs::read_to_string(&path) {
                    Ok(version) => {
                        let name = dir
                            .file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or_default()
                            .to_owned();
                        active.insert(name, version.trim().to_owned());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&path)(e)),
                }
            }
            Ok(active)
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), PluginStoreError> {
        let mut line = serde_json::to_vec(entry).expect("audit entries serialize");
        line.push(b'\n');
        self.blocking(move |store| {
            let path = store.audit_path();
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io(&path))?;
            // One write of a whole line: appends of concurrent writers do not
            // interleave within it.
            file.write_all(&line)
                .and_then(|()| file.sync_data())
                .map_err(io(&path))
        })
        .await
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, PluginStoreError> {
        self.blocking(move |store| {
            let path = store.audit_path();
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io(&path)(e)),
            };
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            lines[lines.len().saturating_sub(limit)..]
                .iter()
                .map(|line| {
                    serde_json::from_str(line).map_err(|e| PluginStoreError::Damaged {
                        path: path.clone(),
                        reason: e.to_string(),
                    })
                })
                .collect()
        })
        .await
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PluginStoreError + '_ {
    move |source| PluginStoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, PluginStoreError> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        paths.push(entry.map_err(io(dir))?.path());
    }
    paths.sort();
    Ok(paths)
}

/// Temporary file beside the target, synced, then renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PluginStoreError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = path.with_file_name(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::registry::record::AuditAction;
    use std::time::Duration;
    use time::OffsetDateTime;

    fn info(name: &str, bytes: &[u8], sequence: u64) -> PluginVersionInfo {
        PluginVersionInfo {
            name: name.into(),
            version: format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
            sequence,
            uploaded_by: "ops".into(),
            uploaded_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            world: "integration-processor".into(),
            wit: "rescind:erp@0.1.0".into(),
            sdk: Some("0.1.0".into()),
            size: bytes.len() as u64,
            compile_time: Duration::from_millis(1234),
            signed_by: None,
            signature: None,
            warnings: vec![],
        }
    }

    #[tokio::test]
    async fn round_trips_versions_active_choice_and_audit() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirectoryStore::open(dir.path().join("store")).unwrap();
        let v1 = info("erp", b"one", 1);
        let v2 = info("erp", b"two", 2);
        store.put_version(&v2, b"two").await.unwrap();
        store.put_version(&v1, b"one").await.unwrap();
        store.set_active("erp", &v2.version).await.unwrap();
        let entry = AuditEntry {
            at: OffsetDateTime::from_unix_timestamp(1_700_000_100).unwrap(),
            plugin: "erp".into(),
            action: AuditAction::Activated,
            from: None,
            to: v2.version.clone(),
            by: "ops".into(),
            reason: None,
        };
        store.append_audit(&entry).await.unwrap();
        store.append_audit(&entry).await.unwrap();

        // A second store over the same directory sees it all: a restart.
        let reopened = DirectoryStore::open(dir.path().join("store")).unwrap();
        assert_eq!(
            reopened.versions().await.unwrap(),
            vec![v1.clone(), v2.clone()]
        );
        assert_eq!(reopened.bytes("erp", &v1.version).await.unwrap(), b"one");
        assert_eq!(
            reopened.active_versions().await.unwrap(),
            BTreeMap::from([("erp".to_owned(), v2.version.clone())])
        );
        assert_eq!(
            reopened.audit(10).await.unwrap(),
            vec![entry.clone(), entry.clone()]
        );
        assert_eq!(reopened.audit(1).await.unwrap(), vec![entry]);
        // No temporary file is left behind.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("store/erp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[tokio::test]
    async fn damaged_bytes_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirectoryStore::open(dir.path()).unwrap();
        let v1 = info("erp", b"one", 1);
        store.put_version(&v1, b"one").await.unwrap();
        std::fs::write(store.file("erp", &v1.version, "wasm"), b"oNe").unwrap();
        let error = store.bytes("erp", &v1.version).await.unwrap_err();
        assert!(matches!(error, PluginStoreError::Damaged { .. }), "{error}");
    }

    #[tokio::test]
    async fn bytes_without_metadata_are_not_a_version() {
        // What a crash between the two writes leaves behind.
        let dir = tempfile::tempdir().unwrap();
        let store = DirectoryStore::open(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("erp")).unwrap();
        std::fs::write(dir.path().join("erp/abc.wasm"), b"orphan").unwrap();
        assert!(store.versions().await.unwrap().is_empty());
    }
}
