//! Misbehaving plugins: the runtime stops them, reports why, and carries on.

use std::collections::BTreeMap;
use std::time::Duration;

use rescind_host::plugins::{
    CallLimits, CallOutcome, CallReport, ConnectionContext, LogSource, Plugin,
};
use rescind_tests::plugin_fixtures::{plugin, sample_cancellation};
use std::sync::Arc;

fn trivial() -> Arc<Plugin> {
    plugin("trivial", rescind_test_artifacts::TRIVIAL)
}

fn plain_connection() -> ConnectionContext {
    ConnectionContext {
        base_url: "http://127.0.0.1:9".into(),
        allowed_hosts: vec!["127.0.0.1:9".into()],
        ..Default::default()
    }
}

async fn submit(
    plugin: &Plugin,
    connection: &ConnectionContext,
    limits: &CallLimits,
) -> CallReport {
    plugin
        .submit(sample_cancellation(), connection, limits)
        .await
}

/// The runtime still serves a well-behaved plugin.
async fn assert_still_serving() {
    let report = submit(&trivial(), &plain_connection(), &CallLimits::default()).await;
    assert_eq!(
        report.outcome,
        CallOutcome::Accepted {
            erp_reference: Some("trivial".into()),
            message: None
        }
    );
}

#[tokio::test]
async fn an_endless_loop_is_stopped_at_the_deadline_and_the_host_serves_on() {
    let looper = plugin("looper", rescind_test_artifacts::LOOPER);
    let limits = CallLimits {
        deadline: Duration::from_millis(300),
        ..CallLimits::default()
    };

    let report = submit(&looper, &plain_connection(), &limits).await;

    assert_eq!(
        report.outcome,
        CallOutcome::DeadlineExceeded(Duration::from_millis(300))
    );
    assert!(report.outcome.is_retryable());
    assert_still_serving().await;
    // And the looper itself can be stopped again: nothing leaked.
    let again = submit(&looper, &plain_connection(), &limits).await;
    assert!(matches!(again.outcome, CallOutcome::DeadlineExceeded(_)));
}

#[tokio::test]
async fn an_allocation_bomb_is_stopped_by_the_memory_cap() {
    let bomb = plugin("alloc-bomb", rescind_test_artifacts::ALLOC_BOMB);
    let limits = CallLimits {
        memory_bytes: 32 * 1024 * 1024,
        ..CallLimits::default()
    };

    let report = submit(&bomb, &plain_connection(), &limits).await;

    assert_eq!(
        report.outcome,
        CallOutcome::MemoryCapExceeded(32 * 1024 * 1024)
    );
    assert!(report.outcome.is_retryable());
    assert_still_serving().await;
}

#[tokio::test]
async fn a_panic_is_reported_with_its_message() {
    let panicker = plugin("panicker", rescind_test_artifacts::PANICKER);

    let report = submit(&panicker, &plain_connection(), &CallLimits::default()).await;

    match &report.outcome {
        CallOutcome::Trapped(message) => {
            assert!(
                message.contains("plugin panicked on purpose: order 1001"),
                "{message}"
            );
            // The guest's stack by function name, from the name section.
            let (_, backtrace) = message
                .split_once("\nguest backtrace:\n")
                .unwrap_or_else(|| panic!("no backtrace: {message}"));
            let frames: Vec<&str> = backtrace.lines().collect();
            assert!(
                (2..=rescind_host::plugins::MAX_BACKTRACE_FRAMES).contains(&frames.len()),
                "{message}"
            );
            assert!(frames[0].starts_with("   0: "), "{message}");
            assert!(
                frames
                    .iter()
                    .any(|f| f.contains("core::panicking::panic_fmt")),
                "{message}"
            );
            assert!(
                frames
                    .iter()
                    .any(|f| f.contains("::submit_cancellation @ 0x")),
                "{message}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(
        report
            .log
            .iter()
            .any(|l| l.source == LogSource::Stderr && l.message.contains("panicked on purpose")),
        "{:?}",
        report.log
    );
    assert_still_serving().await;
}

const TOKEN: &str = "tok-9f8e7d6c5b4a";

fn noisy_connection() -> ConnectionContext {
    ConnectionContext {
        secrets: BTreeMap::from([("apiToken".to_owned(), TOKEN.to_owned())]),
        ..plain_connection()
    }
}

#[tokio::test]
async fn a_noisy_plugin_gets_a_bounded_log() {
    let noisy = plugin("noisy", rescind_test_artifacts::NOISY);
    let limits = CallLimits::default();

    let report = submit(&noisy, &noisy_connection(), &limits).await;

    assert_eq!(
        report.outcome,
        CallOutcome::Accepted {
            erp_reference: Some("noisy".into()),
            message: None
        }
    );
    // The kept lines plus the marker telling how many were dropped.
    assert!(
        report.log.len() <= limits.log_lines + 1,
        "{}",
        report.log.len()
    );
    let kept_bytes: usize = report.log.iter().map(|l| l.message.len()).sum();
    assert!(kept_bytes <= limits.log_bytes + 64, "{kept_bytes}");
    assert_eq!(report.log[0].message, "apiToken is [redacted]");
    let marker = report.log.last().unwrap();
    assert_eq!(marker.source, LogSource::Runtime);
    // 10,000 log lines + 10,000 stdout lines + 1 stderr line were written.
    let kept = report.log.len() - 1;
    assert_eq!(marker.message, format!("… {} lines dropped", 20_001 - kept));
    assert!(report.log.iter().all(|l| !l.message.contains(TOKEN)));
}

#[tokio::test]
async fn secrets_are_redacted_from_every_stream() {
    let noisy = plugin("noisy", rescind_test_artifacts::NOISY);
    // Room for everything, so that stdout and stderr lines are kept too.
    let limits = CallLimits {
        log_lines: 30_000,
        log_bytes: 4 * 1024 * 1024,
        ..CallLimits::default()
    };

    let report = submit(&noisy, &noisy_connection(), &limits).await;

    assert!(report.outcome.is_accepted(), "{:?}", report.outcome);
    assert_eq!(report.log.len(), 20_001);
    let line = |source, text: &str| {
        report
            .log
            .iter()
            .any(|l| l.source == source && l.message == text)
    };
    assert!(line(LogSource::Plugin, "apiToken is [redacted]"));
    assert!(line(LogSource::Stdout, "stdout: apiToken is [redacted]"));
    assert!(line(LogSource::Stderr, "stderr: apiToken is [redacted]"));
    assert!(line(LogSource::Stdout, "stdout line 9999"));
    assert!(report.log.iter().all(|l| !l.message.contains(TOKEN)));
}

#[tokio::test]
async fn the_sandbox_has_no_environment_files_or_sockets() {
    let probe = plugin("sandbox-probe", rescind_test_artifacts::SANDBOX_PROBE);
    // A listener the guest is told to connect to: nothing may arrive.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let connection = ConnectionContext {
        settings: BTreeMap::from([("probeAddress".to_owned(), target.clone())]),
        // Even an allowed host is reachable through wasi:http only.
        allowed_hosts: vec![target],
        ..plain_connection()
    };

    let report = submit(&probe, &connection, &CallLimits::default()).await;

    let CallOutcome::Accepted {
        message: Some(found),
        ..
    } = &report.outcome
    else {
        panic!("expected the probe's findings, got {:?}", report.outcome);
    };
    let found: serde_json::Value = serde_json::from_str(found).unwrap();
    assert_eq!(found["env"]["count"], 0, "{found}");
    assert_eq!(found["args"], serde_json::json!([]), "{found}");
    for door in ["fsRoot", "fileRead", "tcp", "udp", "dns"] {
        assert!(
            found[door].get("error").is_some(),
            "{door} should have failed: {found}"
        );
    }
    assert_eq!(
        listener.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "no TCP connection may reach the listener"
    );
}

#[tokio::test]
async fn calls_beyond_the_pool_wait_for_a_slot_instead_of_failing() {
    // One instance slot; two loopers that yield at every epoch tick, so that
    // without the wait the second would be instantiated while the first runs.
    let runtime = rescind_host::plugins::PluginRuntime::new(rescind_host::plugins::RuntimeConfig {
        max_concurrent_calls: 1,
        ..Default::default()
    })
    .unwrap();
    let looper = runtime
        .load(
            "looper",
            &std::fs::read(rescind_test_artifacts::LOOPER).unwrap(),
        )
        .unwrap();
    let limits = CallLimits {
        deadline: Duration::from_millis(200),
        ..CallLimits::default()
    };
    let connection = plain_connection();

    let (first, second) = tokio::join!(
        submit(&looper, &connection, &limits),
        submit(&looper, &connection, &limits)
    );

    for report in [first, second] {
        assert_eq!(
            report.outcome,
            CallOutcome::DeadlineExceeded(Duration::from_millis(200))
        );
    }
}
