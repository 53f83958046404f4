//! The job lease while an attempt is alive: renewed by a heartbeat, so a
//! slow attempt is never run twice at once; and an attempt whose lease was
//! lost records nothing, not even toward an activation guard.

use std::time::Duration;

use reqwest::StatusCode;
use rescind_host::jobs::WorkerConfig;
use rescind_host::plugins::CallLimits;
use serde_json::json;

use crate::hotload_support::{activate, cancel_new_order, job, plugin, settled_job, upload};
use crate::service::TestService;

/// A service whose plugin calls may last `deadline`, with `workers`
/// workers holding leases of `lease`.
async fn service(workers: usize, lease: Duration, deadline: Duration) -> TestService {
    TestService::start_configured(true, move |config| {
        config.workers = Some(WorkerConfig {
            workers,
            lease,
            poll_interval: Duration::from_millis(20),
        });
        config.plugins.limits = CallLimits {
            deadline,
            ..CallLimits::default()
        };
    })
    .await
}

/// Connection `erp` and an enabled `OrderCancel` running plugin `erp`,
/// one attempt per job.
async fn configure(service: &TestService) {
    service.configure_insite().await;
    service
        .configure_erp_job(
            &json!({"baseUrl": "http://127.0.0.1:9", "allowedHosts": ["127.0.0.1:9"]}),
            "erp",
            json!({"maxAttempts": 1, "initialBackoffMs": 10, "maxBackoffMs": 20}),
        )
        .await;
}

async fn upload_component(service: &TestService, path: &str, activate: bool) -> String {
    let a = upload(service, "erp", std::fs::read(path).unwrap(), activate).await;
    assert!(a.status.is_success(), "{}", a.body);
    a.body["version"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_longer_than_the_lease_keeps_its_job_and_is_the_only_one() {
    // The plugin runs until its 6 s deadline, twice the lease; a second
    // worker stands by, and would take the job up if the lease expired.
    let service = service(2, Duration::from_secs(3), Duration::from_secs(6)).await;
    upload_component(&service, rescind_test_artifacts::LOOPER, true).await;
    configure(&service).await;

    let id = cancel_new_order(&service, "SO-1").await;
    // Until the job settles, or a second attempt starts (bounded: 60 s).
    let mut settled = job(&service, &id).await;
    for _ in 0..1200 {
        let state = settled["state"].as_str().unwrap_or_default();
        if settled["attempts"].as_u64() > Some(1) || ["succeeded", "failed"].contains(&state) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        settled = job(&service, &id).await;
    }

    let attempts = settled["attemptHistory"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{settled}");
    assert_eq!(attempts[0]["outcome"], "deadline-exceeded", "{settled}");
    assert_eq!(settled["attempts"], 1);
    assert_eq!(settled["state"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_whose_lease_was_lost_does_not_count_toward_the_guard() {
    // One worker, so that attempts run one after the other; each runs for
    // 5 s, the time the test has to take the first one's lease.
    let service = service(1, Duration::from_secs(60), Duration::from_secs(5)).await;
    let v1 = upload_component(&service, rescind_test_artifacts::TRIVIAL, true).await;
    let looper = upload_component(&service, rescind_test_artifacts::LOOPER, false).await;
    let a = activate(
        &service,
        "erp",
        &looper,
        Some(json!({"observeJobs": 50, "maxFailureRate": 1.0})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    configure(&service).await;

    // The first job's lease is taken from its worker while it runs (as if
    // the lease had expired and another worker had claimed the job).
    let first = cancel_new_order(&service, "SO-1").await;
    for _ in 0..1200 {
        if job(&service, &first).await["state"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let taken = service
        .edit_database(
            "UPDATE jobs SET lease_owner = 'another-worker' WHERE id = $1 AND state = 'running'",
            "UPDATE jobs SET lease_owner = 'another-worker' WHERE id = $1 AND state = 'running'",
            &first,
        )
        .await;
    assert_eq!(taken, 1, "the first job was running");

    // The worker takes the second job only once the first attempt is over
    // and reported (or not) to the guard.
    let second = cancel_new_order(&service, "SO-2").await;
    let settled = settled_job(&service, &second).await;
    assert_eq!(settled["attemptHistory"][0]["outcome"], "deadline-exceeded");
    let mut observed = 0;
    for _ in 0..1200 {
        let view = plugin(&service, "erp").await;
        observed = view.body["guard"]["observedAttempts"].as_u64().unwrap_or(0);
        if observed >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(observed, 1, "only the second job's attempt was recorded");
    // The first job's attempt was never recorded by the worker that lost it.
    let first = job(&service, &first).await;
    assert_eq!(first["state"], "running", "{first}");
    assert_eq!(
        first["attemptHistory"][0]["outcome"],
        serde_json::Value::Null
    );
    // Nothing rolled back: the looper is still the active version.
    let view = plugin(&service, "erp").await;
    assert_eq!(view.body["active"], looper.as_str(), "{}", view.body);
    assert_eq!(view.body["guard"]["previous"], v1.as_str(), "{}", view.body);
}
