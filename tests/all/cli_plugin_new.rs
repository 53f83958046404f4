//! `rescind plugin new`: the crate it writes passes its own tests, builds
//! as a component this host loads, and gets a cancellation accepted by
//! `rescind plugin test`'s mock ERP: the path a new plugin author follows.

use std::path::{Path, PathBuf};
use std::process::Command;

use rescind_host::cli::plugin::{NewArgs, TestArgs, new_plugin, test_plugin};
use rescind_host::plugins::CallOutcome;

/// Where the test guests are built: the nested builds below share its
/// compiled dependencies.
fn components_dir() -> PathBuf {
    Path::new(rescind_test_artifacts::WEBHOOK)
        .ancestors()
        .nth(3)
        .expect("<target>/wasm-components")
        .to_owned()
}

fn cargo(dir: &Path, args: &[&str]) {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(dir)
        .args(args)
        // Only what the workspace already downloaded: no network needed.
        .arg("--offline")
        .env("CARGO_TARGET_DIR", components_dir());
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_crate_tests_builds_and_is_accepted_by_the_mock_erp() {
    let dir = tempfile::tempdir().unwrap();
    let args = NewArgs {
        name: "acme-erp".to_owned(),
        dir: dir.path().to_owned(),
        sdk: None,
    };
    let root = new_plugin(&args).expect("created");
    assert_eq!(root, dir.path().join("acme-erp"));
    // The workspace's lock: the same dependency versions, already compiled.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"),
        root.join("Cargo.lock"),
    )
    .unwrap();

    cargo(&root, &["test", "--quiet"]);
    cargo(
        &root,
        &[
            "build",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "plugin",
        ],
    );
    let component = components_dir().join("wasm32-wasip2/plugin/acme_erp.wasm");
    let report = test_plugin(&TestArgs {
        file: component,
        settings: Vec::new(),
        secrets: vec![("apiToken".to_owned(), "t0k".to_owned())],
        erp_status: 201,
        erp_body: r#"{"id":"ACME-1"}"#.to_owned(),
        lines: Vec::new(),
    })
    .await
    .expect("the host loads it");
    match &report.outcome {
        CallOutcome::Accepted { erp_reference, .. } => {
            assert_eq!(erp_reference.as_deref(), Some("ACME-1"));
        }
        other => panic!("expected accepted, got {other:?}"),
    }
    let request = &report.requests[0];
    assert_eq!(request.path, "/cancellations");
    assert!(
        request
            .headers
            .iter()
            .any(|(n, v)| n == "authorization" && v == "Bearer t0k")
    );

    // Never over an existing crate, never a name cargo would refuse.
    let again = new_plugin(&args).expect_err("exists");
    assert!(again.to_string().contains("already exists"), "{again}");
    let bad = new_plugin(&NewArgs {
        name: "Acme ERP".to_owned(),
        ..args.clone()
    })
    .expect_err("bad name");
    assert!(bad.to_string().contains("lower-case"), "{bad}");
}
