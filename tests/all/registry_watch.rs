//! The watched folder: a dropped component is uploaded and activated; a
//! half-written one is never loaded.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rescind_host::plugins::registry::{
    FolderEvent, FolderWatch, FolderWatchConfig, PluginSigningKey, RegistryConfig,
};
use tokio::sync::mpsc::Receiver;

use crate::registry_support::{
    NAME, files_under, open_registry, shared_cache, trivial, version_of,
};

fn quick() -> FolderWatchConfig {
    FolderWatchConfig {
        debounce: Duration::from_millis(100),
        ..FolderWatchConfig::default()
    }
}

/// The next event about `file`, waiting at most 30 s.
async fn next_event_for(events: &mut Receiver<FolderEvent>, file: &Path) -> FolderEvent {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no event about {} within 30 s", file.display()))
            .expect("the watch runs");
        let about = match &event {
            FolderEvent::Loaded { file, .. }
            | FolderEvent::AlreadyStored { file, .. }
            | FolderEvent::Refused { file, .. }
            | FolderEvent::Unsettled { file } => file.clone(),
            other => panic!("unexpected event {other:?}"),
        };
        if about == file {
            return event;
        }
    }
}

/// Waits (at most 30 s per event) until `file` is loaded; refusals of an
/// earlier state of the file may come first.
async fn loaded(
    events: &mut Receiver<FolderEvent>,
    file: &Path,
) -> rescind_host::plugins::registry::PluginVersionInfo {
    loop {
        match next_event_for(events, file).await {
            FolderEvent::Loaded { version, .. } => return *version,
            FolderEvent::Refused { .. } | FolderEvent::Unsettled { .. } => continue,
            other => panic!("expected the plugin loaded, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_dropped_file_is_loaded_and_a_half_written_one_is_not() {
    let data = tempfile::tempdir().unwrap();
    let registry =
        open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let folder = data.path().join("plugins/incoming");
    let (_watch, mut events) = FolderWatch::start(registry.clone(), &folder, quick()).unwrap();
    let file = folder.join(format!("{NAME}.wasm"));
    let bytes = trivial();

    // Half of the component, the file left open as a slow copy would.
    let mut writer = std::fs::File::create(&file).unwrap();
    writer.write_all(&bytes[..bytes.len() / 2]).unwrap();
    writer.flush().unwrap();
    match next_event_for(&mut events, &file).await {
        FolderEvent::Refused { reason, .. } => {
            assert!(
                reason.contains("not a valid WebAssembly component"),
                "{reason}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(registry.get(NAME).is_none());
    assert!(files_under(&data.path().join("plugins/store")).is_empty());

    // The copy completes: the change brings the file back, whole.
    writer.write_all(&bytes[bytes.len() / 2..]).unwrap();
    writer.sync_all().unwrap();
    drop(writer);
    let version = loaded(&mut events, &file).await;
    assert_eq!(version.version, version_of(&bytes));
    assert_eq!(version.uploaded_by, "folder-watch");
    assert_eq!(registry.active(NAME).unwrap().sha256(), version_of(&bytes));
}

#[tokio::test]
async fn files_present_at_start_are_loaded_and_known_ones_are_left_alone() {
    let data = tempfile::tempdir().unwrap();
    let registry =
        open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let folder = data.path().join("plugins/incoming");
    std::fs::create_dir_all(&folder).unwrap();
    let file = folder.join(format!("{NAME}.wasm"));
    std::fs::write(&file, trivial()).unwrap();

    let (watch, mut events) = FolderWatch::start(registry.clone(), &folder, quick()).unwrap();
    assert!(matches!(
        next_event_for(&mut events, &file).await,
        FolderEvent::Loaded { .. }
    ));
    drop(watch);

    // A restart of the watch finds the same bytes: nothing is re-activated.
    let (_watch, mut events) = FolderWatch::start(registry.clone(), &folder, quick()).unwrap();
    assert_eq!(
        next_event_for(&mut events, &file).await,
        FolderEvent::AlreadyStored {
            file: file.clone(),
            version: version_of(&trivial())
        }
    );
    assert_eq!(registry.audit_log().len(), 1);
}

#[tokio::test]
async fn with_trusted_keys_the_file_waits_for_its_signature() {
    let data = tempfile::tempdir().unwrap();
    let operator = PluginSigningKey::parse(&hex::encode([3u8; 32])).unwrap();
    let registry = open_registry(
        data.path(),
        Some(shared_cache()),
        RegistryConfig {
            trusted_keys: vec![operator.public_key()],
            ..RegistryConfig::default()
        },
    )
    .await;
    let folder = data.path().join("plugins/incoming");
    let (_watch, mut events) = FolderWatch::start(registry.clone(), &folder, quick()).unwrap();
    let file = folder.join(format!("{NAME}.wasm"));
    let bytes = trivial();

    std::fs::write(&file, &bytes).unwrap();
    match next_event_for(&mut events, &file).await {
        FolderEvent::Refused { reason, .. } => {
            assert!(reason.contains("is not signed"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A signature of these bytes for another plugin name: refused.
    let signature_file = folder.join(format!("{NAME}.wasm.sig"));
    std::fs::write(&signature_file, operator.sign("webhook", &bytes)).unwrap();
    match next_event_for(&mut events, &file).await {
        FolderEvent::Refused { reason, .. } => {
            assert!(reason.contains("for another plugin name"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(registry.get(NAME).is_none());
    // The signature for this name arrives beside it (raw bytes): the pair
    // is loaded.
    let raw = base64::engine::general_purpose::STANDARD
        .decode(operator.sign(NAME, &bytes))
        .unwrap();
    std::fs::write(&signature_file, raw).unwrap();
    let version = loaded(&mut events, &file).await;
    assert_eq!(version.signed_by, Some(operator.public_key().id()));
}

#[tokio::test]
async fn a_file_is_looked_at_once_per_change_not_again_because_it_was_read() {
    let data = tempfile::tempdir().unwrap();
    let registry =
        open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let folder = data.path().join("plugins/incoming");
    let (_watch, mut events) = FolderWatch::start(registry.clone(), &folder, quick()).unwrap();

    // One file that is stored, then one that is refused, then an unrelated
    // file changed twice, each change one rename into place (a single
    // event, however slowly the machine writes); every event is kept from
    // the first one on. The watch handles paths in the order the debouncer
    // emits them, and the debouncer emits a path no later than any path
    // that changed after it: a look that the reading of a file caused would
    // come before the event of the next file's change, and so before the
    // unrelated file's second event.
    let stored = folder.join(format!("{NAME}.wasm"));
    let refused = folder.join("junk.wasm");
    let unrelated = folder.join("other.wasm");
    let mut seen = Vec::new();
    drop_in(&stored, &trivial());
    events_until(&mut events, &stored, &mut seen).await;
    drop_in(&refused, b"not a component");
    events_until(&mut events, &refused, &mut seen).await;
    drop_in(&unrelated, b"first");
    events_until(&mut events, &unrelated, &mut seen).await;
    drop_in(&unrelated, b"second");
    events_until(&mut events, &unrelated, &mut seen).await;

    let about = |file: &Path| seen.iter().filter(|e| event_file(e) == file).count();
    assert!(matches!(seen[0], FolderEvent::Loaded { .. }), "{seen:?}");
    assert_eq!(about(&stored), 1, "{seen:?}");
    assert_eq!(about(&refused), 1, "{seen:?}");
    assert_eq!(about(&unrelated), 2, "{seen:?}");
    assert_eq!(registry.audit_log().len(), 1);
}

/// Writes `bytes` to `file` in one step: into a hidden file beside it
/// (which the watch ignores), renamed into place.
fn drop_in(file: &Path, bytes: &[u8]) {
    let name = file.file_name().unwrap().to_str().unwrap();
    let hidden = file.with_file_name(format!(".{name}.part"));
    std::fs::write(&hidden, bytes).unwrap();
    std::fs::rename(&hidden, file).unwrap();
}

/// Receives events (at most 30 s each) into `seen` up to the first about
/// `file`.
async fn events_until(
    events: &mut Receiver<FolderEvent>,
    file: &Path,
    seen: &mut Vec<FolderEvent>,
) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .unwrap_or_else(|_| panic!("no event about {} within 30 s", file.display()))
            .expect("the watch runs");
        let done = event_file(&event) == file;
        seen.push(event);
        if done {
            return;
        }
    }
}

fn event_file(event: &FolderEvent) -> std::path::PathBuf {
    match event {
        FolderEvent::Loaded { file, .. }
        | FolderEvent::AlreadyStored { file, .. }
        | FolderEvent::Refused { file, .. }
        | FolderEvent::Unsettled { file } => file.clone(),
        other => panic!("unexpected event {other:?}"),
    }
}

#[tokio::test]
async fn a_file_whose_name_has_capitals_is_refused_with_the_name_to_use() {
    let data = tempfile::tempdir().unwrap();
    let registry =
        open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let folder = data.path().join("plugins/incoming");
    let (_watch, mut events) = FolderWatch::start(registry.clone(), &folder, quick()).unwrap();
    let file = folder.join("Erp.wasm");

    std::fs::write(&file, trivial()).unwrap();

    match next_event_for(&mut events, &file).await {
        FolderEvent::Refused { reason, .. } => assert!(
            reason.contains("plugin names are lowercase: use `erp`"),
            "{reason}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(registry.list().is_empty());
}

#[tokio::test]
async fn sizes_are_checked_from_the_metadata_before_anything_is_read() {
    let data = tempfile::tempdir().unwrap();
    let registry =
        open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let folder = data.path().join("plugins/incoming");
    let (_watch, mut events) = FolderWatch::start(registry.clone(), &folder, quick()).unwrap();
    let limit = registry.config().max_component_bytes as u64;

    // A sparse file of 64 GiB: reading it would take the host's memory.
    let file = folder.join(format!("{NAME}.wasm"));
    std::fs::File::create(&file)
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    match next_event_for(&mut events, &file).await {
        FolderEvent::Refused { reason, .. } => assert!(
            reason.contains(&format!("more than the {limit} bytes")),
            "{reason}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A signature file far larger than a signature: refused, and the
    // component beside it is not uploaded.
    let other = folder.join("other.wasm");
    std::fs::write(folder.join("other.wasm.sig"), vec![b'A'; 4096]).unwrap();
    std::fs::write(&other, trivial()).unwrap();
    loop {
        match next_event_for(&mut events, &other).await {
            FolderEvent::Refused { reason, .. } => {
                assert!(reason.contains("a signature is 64 bytes"), "{reason}");
                break;
            }
            FolderEvent::Unsettled { .. } => continue,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert!(registry.list().is_empty());
}

#[tokio::test]
async fn a_signature_dropped_beside_stored_bytes_is_attached_without_activating() {
    let data = tempfile::tempdir().unwrap();
    let operator = PluginSigningKey::parse(&hex::encode([4u8; 32])).unwrap();
    // Stored unsigned, while the host trusted no key.
    let registry =
        open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let info = registry
        .upload(NAME, trivial(), "ops", false, None)
        .await
        .unwrap();
    drop(registry);
    let registry = open_registry(
        data.path(),
        Some(shared_cache()),
        RegistryConfig {
            trusted_keys: vec![operator.public_key()],
            ..RegistryConfig::default()
        },
    )
    .await;
    assert!(
        registry
            .activate(NAME, &info.version, "ops", None)
            .await
            .is_err()
    );
    let folder = data.path().join("plugins/incoming");
    let (_watch, mut events) = FolderWatch::start(registry.clone(), &folder, quick()).unwrap();
    let file = folder.join(format!("{NAME}.wasm"));
    std::fs::write(
        folder.join(format!("{NAME}.wasm.sig")),
        operator.sign(NAME, &trivial()),
    )
    .unwrap();
    std::fs::write(&file, trivial()).unwrap();
    loop {
        match next_event_for(&mut events, &file).await {
            FolderEvent::AlreadyStored { version, .. } => {
                assert_eq!(version, info.version);
                break;
            }
            FolderEvent::Unsettled { .. } => continue,
            other => panic!("expected the stored version, got {other:?}"),
        }
    }
    let summary = registry.get(NAME).unwrap();
    assert_eq!(summary.active, None, "not activated by the folder");
    assert_eq!(
        summary.versions[0].signed_by,
        Some(operator.public_key().id())
    );
    registry
        .activate(NAME, &info.version, "ops", None)
        .await
        .expect("signed now");
}
