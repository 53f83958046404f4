//! The served OpenAPI document against the running service, checked by
//! Schemathesis (a property-based API tester, run as its own process from a
//! Python virtual environment this test makes once under the target
//! directory): for an admin, a service and a customer key, every operation
//! is called with the document's examples and with the values its
//! *coverage* phase derives from each parameter and field (boundaries,
//! missing and wrong-typed values, unknown fields), and every answer must
//! be no server error, a documented status, of the documented content type,
//! with a body of the documented schema and the documented headers.
//!
//! Both phases are deterministic for a seed, so the run is the same on a
//! fast or a slow machine. Random fuzzing is left to a longer run:
//! `RESCIND_SCHEMATHESIS_FUZZ_SECS=600` adds Schemathesis' fuzzing phase
//! with that time budget per role.
//!
//! `PUT /v1/admin/plugins/{name}` takes a WebAssembly component
//! (`application/wasm`), which Schemathesis cannot generate; the plugin
//! upload tests cover it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::service::{ADMIN, TestService, sample_order};

/// The Schemathesis release the checks were written against.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// What every answer must satisfy.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";

/// The seed of every run: the same cases every time.
const SEED: &str = "20261202";

/// The virtual environment with Schemathesis installed, made on first use
/// (a `pip install` from PyPI) and kept under the target directory.
fn schemathesis() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("schemathesis-4.32.5");
    let st = venv.join("bin").join("st");
    // Written last: a virtual environment without it is an interrupted
    // install, made again (a venv cannot be moved into place: its scripts
    // name their interpreter by path).
    let installed = venv.join("installed");
    if installed.exists() {
        return st;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let run = |program: &Path, args: &[&str]| {
        let output = std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} (the schema test needs Python 3 with venv and pip): {e}",
                    program.display()
                )
            });
        assert!(
            output.status.success(),
            "{} {args:?} failed:\n{}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(
        Path::new("python3"),
        &["-m", "venv", venv.to_str().expect("a UTF-8 path")],
    );
    run(
        &venv.join("bin").join("pip"),
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            SCHEMATHESIS,
        ],
    );
    std::fs::write(&installed, SCHEMATHESIS).expect("the install is marked");
    st
}

/// Runs Schemathesis against `service` with `token`; panics with its report
/// when it found a failure.
async fn check(st: &Path, service: &TestService, role: &str, token: &str) {
    let mut args: Vec<String> = vec![
        "run".into(),
        format!("{}/openapi.json", service.base),
        "--header".into(),
        format!("Authorization: Bearer {token}"),
        "--checks".into(),
        CHECKS.into(),
        "--seed".into(),
        SEED.into(),
        "--generation-deterministic".into(),
        "--exclude-path".into(),
        "/v1/admin/plugins/{name}".into(),
        "--request-timeout".into(),
        "30".into(),
        "--no-color".into(),
        "--warnings".into(),
        "off".into(),
    ];
    let fuzz_secs = std::env::var("RESCIND_SCHEMATHESIS_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    match fuzz_secs {
        Some(secs) => args.extend([
            "--phases".into(),
            "examples,coverage,fuzzing".into(),
            "--max-time".into(),
            secs.to_string(),
        ]),
        None => args.extend(["--phases".into(), "examples,coverage".into()]),
    }
    // Schemathesis keeps a cache in the folder it runs in: the target
    // directory's, not the repository's.
    let cwd = st
        .parent()
        .and_then(Path::parent)
        .expect("the venv's folder");
    let child = tokio::process::Command::new(st)
        .args(&args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("schemathesis starts");
    let limit = Duration::from_secs(600 + fuzz_secs.unwrap_or(0));
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ran longer than {limit:?} as {role}"))
        .expect("schemathesis ran");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found answers that break the document, as {role}:\n{report}"
    );
    // It really ran: every operation but the upload, both phases.
    let summary = report
        .lines()
        .rev()
        .find(|l| l.contains("generated") && l.contains("passed"))
        .unwrap_or_else(|| panic!("no summary in the report as {role}:\n{report}"));
    let cases: u64 = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no case count in {summary:?}"));
    println!("schemathesis as {role}: {summary}");
    assert!(
        cases >= 500,
        "only {cases} cases as {role}: the phases did not run\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_served_document_for_each_role() {
    let st = tokio::task::spawn_blocking(schemathesis)
        .await
        .expect("the install ran");
    let service = TestService::start().await;
    service.configure_insite().await;
    service.put_order("SO-1", &sample_order("C-1")).await;
    let answer = service
        .cancel("SO-1", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert!(answer.status.is_success(), "{}", answer.body);
    let service_key = service.key("service", None).await;
    let customer_key = service.key("customer", Some("C-1")).await;

    for (role, token) in [
        ("admin", ADMIN),
        ("service", service_key.as_str()),
        ("customer", customer_key.as_str()),
    ] {
        check(&st, &service, role, token).await;
    }
    // And the service still serves.
    let health = service
        .call(reqwest::Method::GET, "/healthz", None, None)
        .await;
    assert_eq!(health.status, reqwest::StatusCode::OK);
}
