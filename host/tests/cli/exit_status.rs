//! Exit statuses, what goes to stdout and stderr, and no backtrace for an
//! ordinary outcome or error even with `RUST_BACKTRACE=1` set (as it is in
//! many CI environments).

use std::process::{Command, Output};

fn rescind(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rescind"))
        .args(arguments)
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .output()
        .expect("rescind runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_no_backtrace(output: &Output) {
    for stream in [text(&output.stdout), text(&output.stderr)] {
        for marker in ["backtrace", "Backtrace", "at /", "anyhow::"] {
            assert!(!stream.contains(marker), "{marker:?} in:\n{stream}");
        }
    }
}

#[test]
fn plugin_test_outcomes_and_errors_are_plain_text_with_their_exit_status() {
    let webhook = rescind_test_artifacts::WEBHOOK;
    let common = [
        "plugin",
        "test",
        webhook,
        "--setting",
        "path=/hooks/cancel",
        "--secret",
        "signingKey=k",
    ];
    let run = |extra: &[&str]| {
        let mut all = common.to_vec();
        all.extend_from_slice(extra);
        rescind(&all)
    };

    let accepted = run(&[]);
    assert_eq!(
        accepted.status.code(),
        Some(0),
        "{}",
        text(&accepted.stderr)
    );
    assert!(text(&accepted.stdout).contains("outcome: accepted (ERP reference MOCK-1)"));
    assert!(text(&accepted.stdout).contains("as expected: accepted"));
    assert_no_backtrace(&accepted);

    let down = run(&["--erp-status", "503"]);
    assert_eq!(down.status.code(), Some(1));
    let stdout = text(&down.stdout);
    assert!(
        stdout.contains("outcome: transient (the host would retry with backoff)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("expected accepted, got transient"),
        "{stdout}"
    );
    assert_eq!(text(&down.stderr), "");
    assert_no_backtrace(&down);

    let expected_down = run(&["--erp-status", "503", "--expect", "transient"]);
    assert_eq!(expected_down.status.code(), Some(0));

    let missing = rescind(&["plugin", "test", "/nonexistent/acme.wasm"]);
    assert_eq!(missing.status.code(), Some(2));
    let stderr = text(&missing.stderr);
    assert!(
        stderr.starts_with("error: reading /nonexistent/acme.wasm: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_no_backtrace(&missing);

    let sample = rescind(&["plugin", "test", "--print-sample"]);
    assert_eq!(sample.status.code(), Some(0));
    let printed: serde_json::Value = serde_json::from_slice(&sample.stdout).expect("JSON");
    assert_eq!(printed["order-number"], "SO-1001");
}

#[test]
fn push_with_no_host_to_reach_is_one_line() {
    let output = rescind(&[
        "plugin",
        "push",
        "acme",
        rescind_test_artifacts::WEBHOOK,
        "--host",
        "http://127.0.0.1:9",
        "--token",
        "t",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("error: reaching the host at http://127.0.0.1:9"),
        "{stderr}"
    );
    assert_no_backtrace(&output);
}
