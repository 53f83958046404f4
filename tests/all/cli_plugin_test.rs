//! `rescind plugin test`: a component run once against the sample
//! cancellation and a mock ERP on loopback, as a plugin author runs it
//! before uploading.

use rescind_host::cli::plugin::{TestArgs, sample_cancellation, test_plugin};
use rescind_host::plugins::CallOutcome;

fn args(file: &str) -> TestArgs {
    TestArgs {
        file: file.into(),
        settings: vec![("path".to_owned(), "/hooks/cancel".to_owned())],
        secrets: vec![("signingKey".to_owned(), "very-secret-key".to_owned())],
        erp_status: 201,
        erp_body: r#"{"id":"ERP-REF-9"}"#.to_owned(),
        lines: Vec::new(),
    }
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
