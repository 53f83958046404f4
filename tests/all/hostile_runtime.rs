//! The hostile-plugin matrix, host-resource rows, through the real plugin
//! runtime: each attack ends with a clear outcome that names the bound that
//! stopped it, a well-behaved plugin is served while it runs and after, the
//! process's resident memory stays under [`RSS_BOUND_BYTES`], and no secret
//! leaves the plugin in anything the host keeps.
//!
//! (The network rows, and the rows also run through the service with a job,
//! are elsewhere: `hostile_service.rs`.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rescind_host::plugins::{
    CallLimits, CallOutcome, CallReport, ConnectionContext, LogSource, MAX_RETURNED_TEXT_BYTES,
    MAX_TABLE_ELEMENTS, Plugin, REDACTED,
};
use rescind_tests::plugin_fixtures::{plugin, sample_cancellation};
use rescind_tests::rss::{RSS_BOUND_BYTES, RssSampler};

const TOKEN: &str = "tok-hostile-5e4d3c2b1a";

fn hostile() -> Arc<Plugin> {
    plugin("hostile", rescind_test_artifacts::HOSTILE)
}

fn trivial() -> Arc<Plugin> {
    plugin("trivial", rescind_test_artifacts::TRIVIAL)
}

fn connection(settings: &[(&str, &str)]) -> ConnectionContext {
    ConnectionContext {
        base_url: "http://127.0.0.1:9".into(),
        allowed_hosts: vec!["127.0.0.1:9".into()],
        settings: settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        secrets: BTreeMap::from([("apiToken".to_owned(), TOKEN.to_owned())]),
        ..ConnectionContext::default()
    }
}

/// Runs `plugin` under `limits` while a well-behaved plugin is called
/// beside it; checks the well-behaved call succeeded, the resident memory
/// stayed under the bound, and nothing kept holds the secret.
async fn attack(plugin: &Plugin, settings: &[(&str, &str)], limits: &CallLimits) -> CallReport {
    let sampler = RssSampler::start();
    let bystander_connection = connection(&[]);
    let attacker_connection = connection(settings);
    let cancellation = sample_cancellation();
    let bystander = trivial();
    let bystander_limits = CallLimits::default();
    let (report, beside) = tokio::join!(
        plugin.submit(cancellation.clone(), &attacker_connection, limits),
        bystander.submit(
            cancellation.clone(),
            &bystander_connection,
            &bystander_limits
        ),
    );
    let highest = sampler.stop();
    // Shown with `--nocapture`: the figures of SECURITY.md.
    println!(
        "{settings:?}: highest resident memory {} MiB",
        highest / (1024 * 1024)
    );
    assert!(
        beside.outcome.is_accepted(),
        "a plugin called during the attack: {:?}",
        beside.outcome
    );
    assert!(
        highest < RSS_BOUND_BYTES,
        "resident memory reached {highest} bytes during the attack"
    );
    let after = bystander
        .submit(
            cancellation.clone(),
            &bystander_connection,
            &bystander_limits,
        )
        .await;
    assert!(after.outcome.is_accepted(), "after: {:?}", after.outcome);
    assert_no_secret(&report);
    report
}

fn assert_no_secret(report: &CallReport) {
    let outcome = format!("{:?} / {}", report.outcome, report.outcome);
    assert!(!outcome.contains(TOKEN), "{outcome}");
    for line in &report.log {
        assert!(!line.message.contains(TOKEN), "{line:?}");
    }
}

fn trap_message(report: &CallReport) -> &str {
    match &report.outcome {
        CallOutcome::Trapped(message) => message,
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn table_growth_traps_at_the_table_limit() {
    let grower = plugin("table-grower", rescind_test_artifacts::TABLE_GROWER);

    let report = attack(&grower, &[], &CallLimits::default()).await;

    let message = trap_message(&report);
    assert!(
        message.starts_with("table limit exceeded: the plugin grew a table to"),
        "{message}"
    );
    assert!(
        message.contains(&MAX_TABLE_ELEMENTS.to_string()),
        "{message}"
    );
    assert!(report.outcome.is_retryable());
}

#[tokio::test]
async fn a_table_grows_up_to_the_limit_and_not_past_it() {
    let grower = plugin("table-grower", rescind_test_artifacts::TABLE_GROWER);
    let step = MAX_TABLE_ELEMENTS / 4;

    let report = attack(
        &grower,
        &[("step", &step.to_string())],
        &CallLimits::default(),
    )
    .await;

    // The growth that trapped asked for more than the limit; the one
    // before it, a step smaller, was allowed.
    let message = trap_message(&report);
    let asked: usize = message
        .split("a table to ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in {message}"));
    assert!(asked > MAX_TABLE_ELEMENTS, "{message}");
    assert!(asked - step <= MAX_TABLE_ELEMENTS, "{message}");
}

#[tokio::test]
async fn deep_recursion_traps_with_call_stack_exhausted() {
    let report = attack(
        &hostile(),
        &[("attack", "recursion")],
        &CallLimits::default(),
    )
    .await;

    let message = trap_message(&report);
    assert!(
        message.starts_with("call stack exhausted: the plugin recursed deeper than its 512 KiB"),
        "{message}"
    );
    // A recursion that fits is fine.
    let shallow = attack(
        &hostile(),
        &[("attack", "recursion"), ("depth", "1000")],
        &CallLimits::default(),
    )
    .await;
    assert!(shallow.outcome.is_accepted(), "{:?}", shallow.outcome);
}

#[tokio::test]
async fn a_million_log_lines_and_a_million_stdout_lines_keep_a_bounded_log() {
    // Room to write all of it: the bound that matters here is the log's.
    let limits = CallLimits {
        deadline: Duration::from_secs(300),
        ..CallLimits::default()
    };

    let report = attack(&hostile(), &[("attack", "log-flood")], &limits).await;

    assert_eq!(
        report.outcome,
        CallOutcome::Accepted {
            erp_reference: Some("flooded".into()),
            message: None
        }
    );
    assert!(
        report.log.len() <= limits.log_lines + 1,
        "{}",
        report.log.len()
    );
    let kept_bytes: usize = report.log.iter().map(|l| l.message.len()).sum();
    assert!(kept_bytes <= limits.log_bytes + 64, "{kept_bytes}");
    let marker = report.log.last().unwrap();
    assert_eq!(marker.source, LogSource::Runtime);
    let kept = report.log.len() - 1;
    assert_eq!(
        marker.message,
        format!("… {} lines dropped", 2_000_000 - kept)
    );
}

#[tokio::test]
async fn a_five_megabyte_reference_and_message_are_cut_to_four_kibibytes() {
    let report = attack(
        &hostile(),
        &[("attack", "big-reply")],
        &CallLimits::default(),
    )
    .await;

    let CallOutcome::Accepted {
        erp_reference: Some(reference),
        message: Some(message),
    } = &report.outcome
    else {
        panic!("expected an ack, got {:?}", report.outcome);
    };
    for (text, starts) in [(reference, "reference:xxx"), (message, "message:xxx")] {
        assert!(text.len() <= MAX_RETURNED_TEXT_BYTES, "{}", text.len());
        assert!(text.starts_with(starts), "{}", &text[..40]);
        assert!(
            text.ends_with("… [cut: 5000000 bytes returned, 4096 kept]"),
            "{}",
            &text[text.len() - 60..]
        );
    }
}

#[tokio::test]
async fn a_five_megabyte_rejection_is_cut_to_four_kibibytes() {
    let report = attack(
        &hostile(),
        &[("attack", "big-rejection")],
        &CallLimits::default(),
    )
    .await;

    let CallOutcome::Rejected(text) = &report.outcome else {
        panic!("expected a rejection, got {:?}", report.outcome);
    };
    assert!(text.len() <= MAX_RETURNED_TEXT_BYTES, "{}", text.len());
    assert!(text.starts_with("rejection:xxx"));
    assert!(text.ends_with("… [cut: 5000000 bytes returned, 4096 kept]"));
}

#[tokio::test]
async fn a_secret_echoed_in_any_answer_is_redacted() {
    let said = format!("the ERP answered 401 for token {REDACTED}");
    for reply in [
        "accepted",
        "rejected",
        "transient",
        "misconfigured",
        "panic",
    ] {
        let report = attack(
            &hostile(),
            &[("attack", "echo-secret"), ("reply", reply)],
            &CallLimits::default(),
        )
        .await;

        let text = match &report.outcome {
            CallOutcome::Accepted {
                erp_reference,
                message,
            } => {
                assert_eq!(
                    erp_reference.as_deref(),
                    Some(format!("ref-{REDACTED}").as_str())
                );
                message.clone().unwrap_or_default()
            }
            CallOutcome::Rejected(m)
            | CallOutcome::Transient(m)
            | CallOutcome::Misconfigured(m)
            | CallOutcome::Trapped(m) => m.clone(),
            other => panic!("{reply}: unexpected {other:?}"),
        };
        assert!(text.contains(&said), "{reply}: {text}");
    }
}

#[tokio::test]
async fn holding_wasi_resources_traps_at_the_resource_limit() {
    let report = attack(
        &hostile(),
        &[("attack", "resources")],
        &CallLimits::default(),
    )
    .await;

    let message = trap_message(&report);
    assert!(
        message.starts_with(
            "resource limit exceeded: the plugin held more than 1024 WASI resources at once"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn resources_up_to_the_limit_are_allowed() {
    let limits = CallLimits {
        resources: 64,
        ..CallLimits::default()
    };
    // Half the limit leaves room for what the SDK itself holds.
    let fits = attack(
        &hostile(),
        &[("attack", "resources"), ("count", "32")],
        &limits,
    )
    .await;
    assert_eq!(
        fits.outcome,
        CallOutcome::Accepted {
            erp_reference: Some("holding 32 resources".into()),
            message: None
        }
    );
    let over = attack(
        &hostile(),
        &[("attack", "resources"), ("count", "64")],
        &limits,
    )
    .await;
    let message = trap_message(&over);
    assert!(
        message.starts_with("resource limit exceeded: the plugin held more than 64"),
        "{message}"
    );
}
