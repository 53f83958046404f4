//! `rescind plugin test`: a component run once against a cancellation (the
//! sample or a file) and a mock ERP on loopback that answers the same to
//! everything or follows a script, as a plugin author runs it before
//! uploading; `--expect` turns the outcome into the exit status.

use rescind_host::cli::plugin::{TestArgs, sample_cancellation, sample_json, test_plugin};
use rescind_host::cli::{Cli, Exit};
use rescind_host::plugins::CallOutcome;

use clap::Parser as _;

fn args(file: &str) -> TestArgs {
    TestArgs {
        file: Some(file.into()),
        settings: vec![("path".to_owned(), "/hooks/cancel".to_owned())],
        secrets: vec![("signingKey".to_owned(), "very-secret-key".to_owned())],
        erp_status: 201,
        erp_body: r#"{"id":"ERP-REF-9"}"#.to_owned(),
        ..TestArgs::default()
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_reaches_the_mock_erp_and_is_accepted() {
    let report = test_plugin(&args(rescind_test_artifacts::WEBHOOK))
        .await
        .expect("runs");
    match &report.outcome {
        CallOutcome::Accepted { erp_reference, .. } => {
            assert_eq!(erp_reference.as_deref(), Some("ERP-REF-9"));
        }
        other => panic!("expected accepted, got {other:?}"),
    }
    assert_eq!(report.requests.len(), 1);
    let request = &report.requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/hooks/cancel")
    );
    assert_eq!(request.status, 201);
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        header("idempotency-key"),
        Some(sample_cancellation().request_id.as_str())
    );
    assert!(header("x-rescind-signature").is_some_and(|s| s.starts_with("sha256=")));
    assert!(
        request.body.contains("\"orderNumber\":\"SO-1001\""),
        "{}",
        request.body
    );
    // The secret signs; it is neither sent nor logged.
    assert!(!request.body.contains("very-secret-key"));
    assert!(
        report
            .log
            .iter()
            .all(|l| !l.message.contains("very-secret-key"))
    );
    assert_eq!(report.verdict(None), Ok("as expected: accepted".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_erps_answer_and_the_connection_decide_the_outcome() {
    let unavailable = test_plugin(&TestArgs {
        erp_status: 503,
        ..args(rescind_test_artifacts::WEBHOOK)
    })
    .await
    .expect("runs");
    assert!(
        matches!(unavailable.outcome, CallOutcome::Transient(_)),
        "{:?}",
        unavailable.outcome
    );
    let no_secret = test_plugin(&TestArgs {
        secrets: Vec::new(),
        ..args(rescind_test_artifacts::WEBHOOK)
    })
    .await
    .expect("runs");
    match &no_secret.outcome {
        CallOutcome::Misconfigured(m) => assert!(m.contains("signingKey"), "{m}"),
        other => panic!("expected misconfigured, got {other:?}"),
    }
    assert!(no_secret.requests.is_empty());
    let one_line = test_plugin(&TestArgs {
        lines: vec![2],
        ..args(rescind_test_artifacts::WEBHOOK)
    })
    .await
    .expect("runs");
    assert!(
        one_line.requests[0].body.contains("\"full\":false"),
        "{}",
        one_line.requests[0].body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_file_is_what_the_plugin_gets() {
    let dir = tempfile::tempdir().unwrap();
    let mut cancellation: serde_json::Value = serde_json::from_str(&sample_json()).unwrap();
    cancellation["order-number"] = "WEB-77".into();
    cancellation["erp-order-number"] = "ERP-4711".into();
    cancellation["reason"] = "customer-cancellation".into();
    let file = write(&dir, "cancellation.json", &cancellation.to_string());
    let report = test_plugin(&TestArgs {
        cancellation: Some(file),
        ..args(rescind_test_artifacts::WEBHOOK)
    })
    .await
    .expect("runs");
    let body: serde_json::Value = serde_json::from_str(&report.requests[0].body).unwrap();
    assert_eq!(body["orderNumber"], "WEB-77", "{body}");
    assert_eq!(body["erpOrderNumber"], "ERP-4711", "{body}");
    assert_eq!(
        body["cancellationReason"], "CUSTOMER_CANCELLATION",
        "{body}"
    );

    // A file that is not a cancellation says where and why, and runs nothing.
    cancellation["reason"] = "OUT_OF_STOCK".into();
    let bad = write(&dir, "bad.json", &cancellation.to_string());
    let error = test_plugin(&TestArgs {
        cancellation: Some(bad.clone()),
        ..args(rescind_test_artifacts::WEBHOOK)
    })
    .await
    .expect_err("refused");
    let error = format!("{error:#}");
    assert!(error.contains("bad.json"), "{error}");
    assert!(error.contains("unknown variant `OUT_OF_STOCK`"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_answers_in_order_and_reports_what_did_not_follow_it() {
    let dir = tempfile::tempdir().unwrap();
    // Two steps; the webhook makes one request: the second is reported unused.
    let steps = write(
        &dir,
        "steps.json",
        r#"{"steps": [
            {"request": {"method": "POST", "path": "/hooks/cancel", "headers": {"x-rescind-attempt": "1"}},
             "status": 202, "headers": {"X-Request-Id": "REQ-5"}},
            {"request": {"method": "DELETE", "path": "/session"}, "status": 204}
        ]}"#,
    );
    let report = test_plugin(&TestArgs {
        script: Some(steps),
        ..args(rescind_test_artifacts::WEBHOOK)
    })
    .await
    .expect("runs");
    match &report.outcome {
        // The webhook takes the reference from X-Request-Id when the body has none.
        CallOutcome::Accepted { erp_reference, .. } => {
            assert_eq!(erp_reference.as_deref(), Some("REQ-5"));
        }
        other => panic!("expected accepted, got {other:?}"),
    }
    assert_eq!(report.requests[0].answered_by, Some(1));
    assert!(report.off_script().is_empty());
    let unused = report.unused_steps.clone().expect("a step is unused");
    assert!(unused.contains("2 (DELETE /session)"), "{unused}");
    assert!(report.verdict(None).is_ok());

    // Routes: none matches the plugin's request, so it is answered 404 and
    // the verdict fails even though the outcome is the expected one.
    let routes = write(
        &dir,
        "routes.json",
        r#"{"routes": [{"request": {"path": "/other"}, "status": 201}]}"#,
    );
    let report = test_plugin(&TestArgs {
        script: Some(routes),
        ..args(rescind_test_artifacts::WEBHOOK)
    })
    .await
    .expect("runs");
    assert_eq!(report.requests[0].status, 404);
    assert!(
        matches!(report.outcome, CallOutcome::Rejected(_)),
        "{:?}",
        report.outcome
    );
    let verdict = report
        .verdict(Some(rescind_host::cli::plugin::Expect::Rejected))
        .unwrap_err();
    assert!(
        verdict.contains("request 1 (POST /hooks/cancel): no route of the script matches it"),
        "{verdict}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_answer_meets_the_connections_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let slow = write(
        &dir,
        "slow.json",
        r#"{"routes": [{"status": 201, "body": {"id": "late"}, "delayMs": 5000}]}"#,
    );
    let mut settings = args(rescind_test_artifacts::WEBHOOK).settings;
    settings.push(("timeoutMs".to_owned(), "100".to_owned()));
    let report = test_plugin(&TestArgs {
        script: Some(slow),
        settings,
        ..args(rescind_test_artifacts::WEBHOOK)
    })
    .await
    .expect("runs");
    match &report.outcome {
        CallOutcome::Transient(message) => assert!(message.contains("in time"), "{message}"),
        other => panic!("expected transient, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_before_any_request_is_the_plugins_own() {
    // The websphere plugin cancels whole orders only: a partial cancellation
    // is refused before anything is sent.
    let report = test_plugin(&TestArgs {
        file: Some(rescind_test_artifacts::WEBSPHERE.into()),
        lines: vec![3],
        ..TestArgs::default()
    })
    .await
    .expect("runs");
    assert!(
        matches!(report.outcome, CallOutcome::Rejected(_)),
        "{:?}",
        report.outcome
    );
    assert!(report.requests.is_empty());
    let printed = report.render();
    assert!(
        printed.contains("the plugin sent nothing to the ERP"),
        "{printed}"
    );
    assert!(
        printed.contains("outcome: rejected by the plugin before it sent anything"),
        "{printed}"
    );
    assert!(!printed.contains("rejected by the ERP"), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_the_host_would_refuse_is_refused_with_the_hosts_reason() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"not a component").unwrap();
    let error = test_plugin(&args(garbage.to_str().unwrap()))
        .await
        .expect_err("refused");
    assert!(
        error.to_string().contains("not a WebAssembly binary"),
        "{error}"
    );
    let error = test_plugin(&TestArgs {
        lines: vec![9],
        ..args(rescind_test_artifacts::WEBHOOK)
    })
    .await
    .expect_err("no line 9");
    assert!(error.to_string().contains("[1, 2, 3]"), "{error}");
}

/// `rescind plugin test …` as the command line parses and runs it.
fn exit_of(arguments: &[&str]) -> Exit {
    let mut line = vec!["rescind", "plugin", "test"];
    line.extend_from_slice(arguments);
    Cli::try_parse_from(line).expect("valid arguments").run()
}

#[test]
fn expect_sets_the_exit_status() {
    let webhook = rescind_test_artifacts::WEBHOOK;
    let common = [webhook, "--setting", "path=/h", "--secret", "signingKey=k"];
    let with = |extra: &[&str]| {
        let mut all = common.to_vec();
        all.extend_from_slice(extra);
        exit_of(&all)
    };
    assert_eq!(with(&[]), Exit::SUCCESS);
    assert_eq!(with(&["--expect", "accepted"]), Exit::SUCCESS);
    assert_eq!(with(&["--expect", "rejected"]), Exit::FAILURE);
    assert_eq!(with(&["--erp-status", "422"]), Exit::FAILURE);
    assert_eq!(
        with(&["--erp-status", "422", "--expect", "rejected"]),
        Exit::SUCCESS
    );
    assert_eq!(
        with(&["--erp-status", "503", "--expect", "transient"]),
        Exit::SUCCESS
    );
    assert_eq!(
        with(&["--erp-status", "503", "--expect", "rejected"]),
        Exit::FAILURE
    );
    assert_eq!(
        exit_of(&[webhook, "--setting", "path=/h", "--expect", "misconfigured"]),
        Exit::SUCCESS
    );
    // What cannot run is neither outcome.
    assert_eq!(
        with(&["--script", "/nonexistent/script.json"]),
        Exit::UNUSABLE
    );
    assert_eq!(exit_of(&["/nonexistent/plugin.wasm"]), Exit::UNUSABLE);
    assert_eq!(exit_of(&["--print-sample"]), Exit::SUCCESS);
    // clap refuses what does not go together.
    for refused in [
        vec!["rescind", "plugin", "test"],
        vec![
            "rescind",
            "plugin",
            "test",
            webhook,
            "--script",
            "s.json",
            "--erp-status",
            "500",
        ],
        vec!["rescind", "plugin", "test", webhook, "--expect", "maybe"],
    ] {
        assert!(Cli::try_parse_from(&refused).is_err(), "{refused:?}");
    }
}
