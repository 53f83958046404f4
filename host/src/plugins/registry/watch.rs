//! The watched folder: dropping `NAME.wasm` (and, when signatures are
//! required, `NAME.wasm.sig`) there uploads and activates it.
//!
//! The folder is watched only when the operator names it (`rescind serve
//! --plugins-dir`, or `--demo`). A file is read only once it has stopped
//! changing: the debouncer waits for a quiet window after the last
//! file-system event, then its size and modification time must stay the
//! same over one more window, and the bytes read must be as long as the
//! file was. A file larger than the upload limit, or a signature file
//! larger than [`MAX_SIGNATURE_BYTES`], is refused from its metadata
//! without being read. A file that still fails validation
//! (a half-written component is malformed) is logged, reported as
//! [`FolderEvent::Refused`] and left alone until it changes again.
//!
//! Files already stored under their name are not uploaded again, so a
//! restart does not undo a rollback done through the API; a `.sig` beside
//! them is attached to the stored version without activating it. Names starting
//! with `.` are ignored: write `.NAME.wasm` and rename it for an atomic drop.
//!
//! A file is looked at once per change. Reading it is not a change: the
//! watcher drops the open and read events that the look itself causes
//! (inotify reports them), or every look would trigger the next. Nor is an
//! event about a file whose size and modification time (and its
//! signature's) are what they were at its last look.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use notify_debouncer_mini::notify::event::{AccessKind, AccessMode};
use notify_debouncer_mini::notify::{
    self, Event, EventHandler, EventKind, RecommendedWatcher, RecursiveMode, Watcher, WatcherKind,
};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer_opt};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::plugins::registry::{
    MAX_SIGNATURE_BYTES, PluginRegistry, PluginStore, PluginVersionInfo, RegistryError,
};

/// How the folder is watched.
#[derive(Debug, Clone)]
pub struct FolderWatchConfig {
    /// The quiet time after the last change before a file is looked at, and
    /// again the time its size and modification time must stay unchanged.
    /// Default 500 ms.
    pub debounce: Duration,
    /// How many windows to wait for a file that keeps changing before giving
    /// up on it (its next change brings it back). Default 10.
    pub settle_windows: u32,
    /// Recorded as the uploader. Default `folder-watch`.
    pub uploaded_by: String,
}

impl Default for FolderWatchConfig {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(500),
            settle_windows: 10,
            uploaded_by: "folder-watch".to_owned(),
        }
    }
}

/// What the watch did with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FolderEvent {
    /// Uploaded and activated.
    Loaded {
        /// The `.wasm` file.
        file: PathBuf,
        /// The new version.
        version: Box<PluginVersionInfo>,
    },
    /// These bytes are already a version of the plugin: nothing done.
    AlreadyStored {
        /// The `.wasm` file.
        file: PathBuf,
        /// The version they are.
        version: String,
    },
    /// Refused; the file is tried again when it changes.
    Refused {
        /// The `.wasm` file.
        file: PathBuf,
        /// Why, as the API would say it.
        reason: String,
    },
    /// The file kept changing; it is tried again when it changes.
    Unsettled {
        /// The `.wasm` file.
        file: PathBuf,
    },
}

/// The folder could not be watched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The folder could not be created.
    #[error("cannot create the plugins folder {path}: {source}")]
    CreateFolder {
        /// The folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The operating system refused to watch it.
    #[error("cannot watch the plugins folder {path}: {reason}")]
    Watch {
        /// The folder.
        path: PathBuf,
        /// What the watcher reported.
        reason: String,
    },
}

/// A running watch of one folder; stops when dropped.
pub struct FolderWatch {
    dir: PathBuf,
    _debouncer: Debouncer<ChangesOnly>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FolderWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderWatch")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FolderWatch {
    /// Watches `dir` (created if missing) on the current tokio runtime.
    /// Files already there are looked at first. What happens to each file
    /// is logged and sent to the returned receiver (the latest 256 events
    /// are kept when nobody reads them).
    pub fn start<S: PluginStore>(
        registry: PluginRegistry<S>,
        dir: impl Into<PathBuf>,
        config: FolderWatchConfig,
    ) -> Result<(Self, mpsc::Receiver<FolderEvent>), WatchError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| WatchError::CreateFolder {
            path: dir.clone(),
            source,
        })?;
        let watch_error = |e: notify_debouncer_mini::notify::Error| WatchError::Watch {
            path: dir.clone(),
            reason: e.to_string(),
        };
        let (changed, mut changes) = mpsc::unbounded_channel::<PathBuf>();
        let from_watcher = changed.clone();
        let mut debouncer = new_debouncer_opt::<_, ChangesOnly>(
            notify_debouncer_mini::Config::default().with_timeout(config.debounce),
            move |result: DebounceEventResult| match result {
                Ok(events) => {
                    for event in events {
                        let _ = from_watcher.send(event.path);
                    }
                }
                Err(error) => tracing::warn!("plugins folder watch: {error}"),
            },
        )
        .map_err(watch_error)?;
        debouncer
            .watcher()
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(watch_error)?;
        // After the watch is set, so that nothing dropped meanwhile is missed.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let _ = changed.send(entry.path());
            }
        }

        let (events, receiver) = mpsc::channel(256);
        let task = tokio::spawn(async move {
            // The file and signature each file was last looked at with: one
            // change can reach the watch as more than one debounced event
            // (a rename is reported for both of its ends, and a busy
            // machine may split them over two windows), and the second must
            // not be a second look.
            let mut looked: HashMap<PathBuf, Fingerprint> = HashMap::new();
            while let Some(path) = changes.recv().await {
                let Some((file, name)) = plugin_file(&path) else {
                    continue;
                };
                let before = fingerprint(&file).await;
                if looked.get(&file) == Some(&before) {
                    continue;
                }
                let Some(event) = look_at(&registry, &file, &name, &config).await else {
                    looked.remove(&file);
                    continue;
                };
                // Taken before the look: a change made while it ran has
                // another fingerprint, so its event is looked at too.
                if matches!(event, FolderEvent::Unsettled { .. }) {
                    looked.remove(&file);
                } else {
                    looked.insert(file.clone(), before);
                }
                match &event {
                    FolderEvent::Loaded { version, .. } => tracing::info!(
                        file = %file.display(), version = %version.version,
                        "plugin loaded from the watched folder"
                    ),
                    FolderEvent::Refused { reason, .. } => {
                        tracing::warn!(file = %file.display(), "plugin file refused: {reason}")
                    }
                    FolderEvent::Unsettled { .. } => tracing::info!(
                        file = %file.display(), "plugin file still changing; waiting for its next change"
                    ),
                    _ => {}
                }
                let _ = events.try_send(event);
            }
        });
        Ok((
            Self {
                dir,
                _debouncer: debouncer,
                task,
            },
            receiver,
        ))
    }

    /// The watched folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The platform's watcher, passing on changes only: opening, reading and
/// closing a file without writing it are dropped.
struct ChangesOnly(RecommendedWatcher);

impl Watcher for ChangesOnly {
    fn new<F: EventHandler>(mut handler: F, config: notify::Config) -> notify::Result<Self> {
        let changes = move |event: notify::Result<Event>| {
            if !event.as_ref().is_ok_and(|event| is_read_only(&event.kind)) {
                handler.handle_event(event);
            }
        };
        RecommendedWatcher::new(changes, config).map(Self)
    }

    fn watch(&mut self, path: &Path, recursive_mode: RecursiveMode) -> notify::Result<()> {
        self.0.watch(path, recursive_mode)
    }

    fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
        self.0.unwatch(path)
    }

    fn kind() -> WatcherKind {
        RecommendedWatcher::kind()
    }
}

/// Whether an event only says that a file was accessed: opened, read, or
/// closed without writing. Closing after writing is a change (the end of
/// a copy).
fn is_read_only(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => false,
        EventKind::Access(_) => true,
        _ => false,
    }
}

/// The `.wasm` file a changed path concerns (itself, or the component a
/// `.wasm.sig` signs), and the plugin's name.
fn plugin_file(path: &Path) -> Option<(PathBuf, String)> {
    let file_name = path.file_name()?.to_str()?;
    if file_name.starts_with('.') {
        return None;
    }
    let wasm_name = file_name.strip_suffix(".sig").unwrap_or(file_name);
    let name = wasm_name.strip_suffix(".wasm")?;
    Some((path.with_file_name(wasm_name), name.to_owned()))
}

async fn look_at<S: PluginStore>(
    registry: &PluginRegistry<S>,
    file: &Path,
    name: &str,
    config: &FolderWatchConfig,
) -> Option<FolderEvent> {
    let unsettled = || {
        Some(FolderEvent::Unsettled {
            file: file.to_owned(),
        })
    };
    // A deleted file is no news.
    let mut last = stat(file).await?;
    let mut settled = false;
    for _ in 0..config.settle_windows.max(1) {
        tokio::time::sleep(config.debounce).await;
        let now = stat(file).await?;
        if now == last {
            settled = true;
            break;
        }
        last = now;
    }
    if !settled {
        return unsettled();
    }
    let refused = |reason: String| {
        Some(FolderEvent::Refused {
            file: file.to_owned(),
            reason,
        })
    };
    // Sizes come from the metadata, before anything is read.
    let limit = registry.config().max_component_bytes;
    if last.0 > limit as u64 {
        return refused(
            RegistryError::TooLarge {
                plugin: name.to_owned(),
                size: usize::try_from(last.0).unwrap_or(usize::MAX),
                limit,
            }
            .to_string(),
        );
    }
    let mut signature_file = file.as_os_str().to_owned();
    signature_file.push(".sig");
    let signature_file = PathBuf::from(signature_file);
    let signature = match stat(&signature_file).await {
        None => None,
        Some((size, _)) if size > MAX_SIGNATURE_BYTES => {
            return refused(format!(
                "{} is {size} bytes: a signature is 64 bytes, or 88 characters of base64 \
                 (at most {MAX_SIGNATURE_BYTES} bytes are read)",
                signature_file.display()
            ));
        }
        Some(_) => tokio::fs::read(&signature_file).await.ok(),
    };
    let bytes = tokio::fs::read(file).await.ok()?;
    if bytes.len() as u64 != last.0 {
        return unsettled();
    }
    let version = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    let stored = registry
        .get(name)
        .is_some_and(|p| p.versions.iter().any(|v| v.version == version));
    if stored {
        // A signature beside stored bytes is attached to them (a version
        // stored before the host trusted keys), without activating: a
        // restart must not undo a rollback done through the API.
        if signature.is_some()
            && let Err(error) = registry
                .upload(
                    name,
                    bytes,
                    &config.uploaded_by,
                    false,
                    signature.as_deref(),
                )
                .await
        {
            return refused(error.to_string());
        }
        return Some(FolderEvent::AlreadyStored {
            file: file.to_owned(),
            version,
        });
    }
    Some(
        match registry
            .upload(name, bytes, &config.uploaded_by, true, signature.as_deref())
            .await
        {
            Ok(version) => FolderEvent::Loaded {
                file: file.to_owned(),
                version: Box::new(version),
            },
            Err(error) => FolderEvent::Refused {
                file: file.to_owned(),
                reason: error.to_string(),
            },
        },
    )
}

/// A file's size, modification time and inode (a file renamed into place
/// is a new inode, whatever its size and time), and its signature's, when
/// they exist.
type Fingerprint = (Option<FileIdentity>, Option<FileIdentity>);
type FileIdentity = (u64, Option<SystemTime>, u64);

async fn fingerprint(file: &Path) -> Fingerprint {
    async fn identity(file: &Path) -> Option<FileIdentity> {
        let metadata = tokio::fs::metadata(file).await.ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
        #[cfg(not(unix))]
        let inode = 0;
        metadata
            .is_file()
            .then(|| (metadata.len(), metadata.modified().ok(), inode))
    }
    let mut signature = file.as_os_str().to_owned();
    signature.push(".sig");
    (identity(file).await, identity(Path::new(&signature)).await)
}

async fn stat(file: &Path) -> Option<(u64, Option<SystemTime>)> {
    let metadata = tokio::fs::metadata(file).await.ok()?;
    metadata
        .is_file()
        .then(|| (metadata.len(), metadata.modified().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_not_changes() {
        use notify::event::{CreateKind, DataChange, ModifyKind};
        for (kind, read_only) in [
            (EventKind::Access(AccessKind::Open(AccessMode::Any)), true),
            (EventKind::Access(AccessKind::Read), true),
            (EventKind::Access(AccessKind::Close(AccessMode::Read)), true),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                false,
            ),
            (EventKind::Create(CreateKind::File), false),
            (EventKind::Modify(ModifyKind::Data(DataChange::Any)), false),
            (EventKind::Remove(notify::event::RemoveKind::File), false),
        ] {
            assert_eq!(is_read_only(&kind), read_only, "{kind:?}");
        }
    }

    #[test]
    fn which_files_are_plugins() {
        for (path, expected) in [
            ("/p/aaas.wasm", Some(("/p/aaas.wasm", "aaas"))),
            ("/p/aaas.wasm.sig", Some(("/p/aaas.wasm", "aaas"))),
            ("/p/.aaas.wasm", None),
            ("/p/aaas.wasm.tmp", None),
            ("/p/readme.md", None),
            ("/p/aaas.sig", None),
        ] {
            let got = plugin_file(Path::new(path));
            let expected = expected.map(|(f, n)| (PathBuf::from(f), n.to_owned()));
            assert_eq!(got, expected, "{path}");
        }
    }
}
