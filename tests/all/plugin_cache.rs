//! Compiled plugins cached on disk: a restart loads instead of compiling.

use std::path::{Path, PathBuf};

use rescind_host::plugins::{
    CallLimits, CallOutcome, ConnectionContext, PluginRuntime, RuntimeConfig,
};
use rescind_tests::plugin_fixtures::sample_cancellation;

fn runtime_with_cache(dir: &Path) -> PluginRuntime {
    PluginRuntime::new(RuntimeConfig {
        max_concurrent_calls: 2,
        cache_dir: Some(dir.to_owned()),
        ..RuntimeConfig::default()
    })
    .expect("the runtime starts")
}

fn cached_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    files.sort();
    files
}

async fn accepts(runtime: &PluginRuntime, bytes: &[u8]) {
    let trivial = runtime.load("trivial", bytes).expect("loads");
    let report = trivial
        .submit(
            sample_cancellation(),
            &ConnectionContext::default(),
            &CallLimits::default(),
        )
        .await;
    assert!(
        matches!(report.outcome, CallOutcome::Accepted { .. }),
        "{:?}",
        report.outcome
    );
}

#[tokio::test]
async fn a_second_runtime_loads_from_the_cache_and_a_damaged_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(rescind_test_artifacts::TRIVIAL).unwrap();

    let first = runtime_with_cache(dir.path());
    accepts(&first, &bytes).await;
    assert_eq!(first.compilations(), 1);
    let files = cached_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.ends_with(".cwasm"));
    assert_eq!(name.split('-').next().unwrap().len(), 64, "{name}");

    // A restart: same directory, nothing compiled.
    let second = runtime_with_cache(dir.path());
    accepts(&second, &bytes).await;
    assert_eq!(second.compilations(), 0);

    // A damaged entry is compiled again and replaced.
    std::fs::write(&files[0], b"not a compiled component").unwrap();
    let third = runtime_with_cache(dir.path());
    accepts(&third, &bytes).await;
    assert_eq!(third.compilations(), 1);
    assert_ne!(
        std::fs::read(&files[0]).unwrap(),
        b"not a compiled component"
    );

    // The replacement is good: the next restart loads it.
    let fourth = runtime_with_cache(dir.path());
    accepts(&fourth, &bytes).await;
    assert_eq!(fourth.compilations(), 0);
}

#[tokio::test]
async fn a_truncated_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(rescind_test_artifacts::TRIVIAL).unwrap();
    let first = runtime_with_cache(dir.path());
    accepts(&first, &bytes).await;
    let file = cached_files(dir.path()).remove(0);
    let cached = std::fs::read(&file).unwrap();
    std::fs::write(&file, &cached[..cached.len() / 2]).unwrap();

    let second = runtime_with_cache(dir.path());
    accepts(&second, &bytes).await;
    assert_eq!(second.compilations(), 1);
}
