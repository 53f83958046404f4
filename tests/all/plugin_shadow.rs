//! Shadow runs (`/v1/admin/plugins/{name}/shadow`): an inactive version run
//! beside the active one on the plugin's next real jobs, in a capture-only
//! sandbox. The ERP receives the active version's requests only; the report
//! says per job whether the shadow version's requests were the same, or how
//! they differ. On both stores.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rescind_tests::erp_server::ErpServer;
use serde_json::{Value, json};

use crate::hotload_support::{
    PLUGIN, cancel_new_order, configure, echoing_erp, settled_job, upload,
};
use crate::registry_support::{component, same_code_other_bytes, webhook};
use crate::service::{ADMIN, Answer, TestService};

pub(crate) async fn shadow(service: &TestService, method: Method, body: Option<Value>) -> Answer {
    service
        .call(
            method,
            &format!("/v1/admin/plugins/{PLUGIN}/shadow"),
            Some(ADMIN),
            body.as_ref(),
        )
        .await
}

/// Polls the shadow run until it compared `count` jobs (bounded: 60 s).
/// The shadow version runs after the job settled, on the same worker.
pub(crate) async fn compared(service: &TestService, count: u64) -> Value {
    for _ in 0..1200 {
        let a = shadow(service, Method::GET, None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        if a.body["compared"].as_u64() == Some(count) {
            return a.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the shadow run did not compare {count} jobs within 60 s");
}

/// Cancels `count` new orders and waits for each job to succeed.
pub(crate) async fn deliver(service: &TestService, prefix: &str, count: usize) -> Vec<String> {
    let mut jobs = Vec::new();
    for n in 1..=count {
        let job = cancel_new_order(service, &format!("{prefix}-{n}")).await;
        let settled = settled_job(service, &job).await;
        assert_eq!(settled["state"], "succeeded", "{settled}");
        jobs.push(job);
    }
    jobs
}

fn received(erp: &ErpServer) -> usize {
    erp.requests().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_version_is_compared_on_real_jobs_and_never_reaches_the_erp() {
    let service = TestService::start().await;
    let erp = echoing_erp().await;
    let active = upload(&service, PLUGIN, webhook(), true).await;
    assert_eq!(active.status, StatusCode::CREATED, "{}", active.body);
    let active = active.body["version"].as_str().unwrap().to_owned();
    configure(&service, &erp, PLUGIN, 1).await;

    // The same code in other bytes: every request identical.
    let same = upload(&service, PLUGIN, same_code_other_bytes(webhook()), false).await;
    assert_eq!(same.status, StatusCode::CREATED, "{}", same.body);
    let same = same.body["version"].as_str().unwrap().to_owned();
    assert_ne!(same, active);
    let started = shadow(
        &service,
        Method::POST,
        Some(json!({"version": same, "jobs": 2})),
    )
    .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    assert_eq!(started.body["state"], "running");
    assert_eq!(started.body["compared"], 0);

    // One job at a time, each compared before the next is made, so that
    // the run's two jobs are the first two.
    let mut jobs = Vec::new();
    for n in 1..=2 {
        jobs.extend(deliver(&service, &format!("SHADOW-SAME-{n}"), 1).await);
        compared(&service, n).await;
        if n == 1 {
            // The run wants its second job: the next attempt reads so.
            let store = service.store();
            let job = store.job(&jobs[0]).await.expect("read").expect("job");
            let input = store.attempt_input(&job).await.expect("input");
            assert!(input.shadow_run_wants_jobs, "the run wants one more job");
        }
    }
    // The run has its two jobs: the next attempt reads that it wants none.
    let store = service.store();
    let job = store.job(&jobs[0]).await.expect("read").expect("job");
    let input = store.attempt_input(&job).await.expect("input");
    assert!(!input.shadow_run_wants_jobs, "the run has its jobs");
    jobs.extend(deliver(&service, "SHADOW-SAME-3", 1).await);
    let report = shadow(&service, Method::GET, None).await.body;
    assert_eq!(report["state"], "complete", "{report:#}");
    assert_eq!(report["version"], same.as_str());
    assert_eq!(report["jobs"], 2);
    assert_eq!(
        (
            &report["compared"],
            &report["identical"],
            &report["different"]
        ),
        (&json!(2), &json!(2), &json!(0)),
        "{report:#}"
    );
    let results = report["results"].as_array().unwrap();
    // The next two jobs, not the third: the run wanted two.
    let taken: Vec<&str> = results
        .iter()
        .map(|r| r["jobId"].as_str().unwrap())
        .collect();
    assert_eq!(taken, [jobs[0].as_str(), jobs[1].as_str()]);
    for result in results {
        assert_eq!(result["state"], "compared");
        assert_eq!(result["identical"], true, "{result:#}");
        assert_eq!(result["activeVersion"], active.as_str());
        assert_eq!(result["activeOutcome"], "accepted");
        // Answered with the ERP's own recorded answer, the shadow version
        // accepted too.
        assert_eq!(result["shadowOutcome"], "accepted", "{result:#}");
        assert_eq!(result["requests"].as_array().unwrap().len(), 1);
        assert_eq!(result["requests"][0]["differences"], json!([]));
    }
    // The ERP heard each job once, from the active version.
    assert_eq!(received(&erp), 3);

    // A version that sends something else: each difference named.
    let other = upload(
        &service,
        PLUGIN,
        component(rescind_test_artifacts::PERSONALIZATION),
        false,
    )
    .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
    let other = other.body["version"].as_str().unwrap().to_owned();
    let started = shadow(
        &service,
        Method::POST,
        Some(json!({"version": other, "jobs": 5})),
    )
    .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    // It replaced the last run and its results.
    assert_eq!(started.body["results"], json!([]));
    deliver(&service, "SHADOW-OTHER", 5).await;
    let report = compared(&service, 5).await;
    assert_eq!(report["state"], "complete", "{report:#}");
    assert_eq!(report["version"], other.as_str());
    assert_eq!(
        (
            &report["compared"],
            &report["identical"],
            &report["different"]
        ),
        (&json!(5), &json!(0), &json!(5)),
        "{report:#}"
    );
    for result in report["results"].as_array().unwrap() {
        assert_eq!(result["identical"], false, "{result:#}");
        let requests = result["requests"].as_array().unwrap();
        assert!(
            requests.iter().any(
                |r| r["active"].as_str().is_some_and(|a| a.starts_with("POST "))
                    && !r["differences"].as_array().unwrap().is_empty()
                    || r["shadow"].is_null()
            ),
            "{result:#}"
        );
    }
    assert_eq!(
        received(&erp),
        8,
        "the ERP received the active version's requests only"
    );
    for request in erp.requests() {
        assert!(
            request.header("x-rescind-signature").is_some(),
            "a request that did not come from the active webhook version: {request:?}"
        );
    }

    // The audit log names who started each run.
    let audit = service
        .call(Method::GET, "/v1/admin/audit", Some(ADMIN), None)
        .await;
    assert!(
        audit.body.to_string().contains("started a shadow run"),
        "{}",
        audit.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_shadow_run_takes_no_more_jobs_and_bad_requests_change_nothing() {
    let service = TestService::start().await;
    let erp = echoing_erp().await;

    // No plugin, no run.
    let none = shadow(&service, Method::GET, None).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert_eq!(none.body["code"], "plugin-not-found");

    let active = upload(&service, PLUGIN, webhook(), true).await;
    let active = active.body["version"].as_str().unwrap().to_owned();
    configure(&service, &erp, PLUGIN, 1).await;
    let none = shadow(&service, Method::GET, None).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert_eq!(none.body["code"], "shadow-run-not-found");
    let stop_none = shadow(&service, Method::DELETE, None).await;
    assert_eq!(stop_none.body["code"], "shadow-run-not-found");

    let same = upload(&service, PLUGIN, same_code_other_bytes(webhook()), false).await;
    let same = same.body["version"].as_str().unwrap().to_owned();
    let unknown = format!("sha256:{}", "0".repeat(64));
    for (body, field) in [
        (json!({"version": active, "jobs": 5}), "version"),
        (json!({"version": unknown, "jobs": 5}), "version"),
        (json!({"version": "not-a-version", "jobs": 5}), "version"),
        (json!({"version": same, "jobs": 0}), "jobs"),
        (json!({"version": same, "jobs": 1001}), "jobs"),
    ] {
        let refused = shadow(&service, Method::POST, Some(body.clone())).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            refused.body
        );
        assert_eq!(
            refused.body["errors"][0]["field"], field,
            "{}",
            refused.body
        );
    }
    let malformed = shadow(&service, Method::POST, Some(json!({"version": same}))).await;
    assert_eq!(
        malformed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        malformed.body
    );
    // Nothing was started by any of them.
    assert_eq!(
        shadow(&service, Method::GET, None).await.body["code"],
        "shadow-run-not-found"
    );
    // Not for customer service.
    let service_key = service.key("service", None).await;
    let forbidden = service
        .call(
            Method::POST,
            &format!("/v1/admin/plugins/{PLUGIN}/shadow"),
            Some(&service_key),
            Some(&json!({"version": same, "jobs": 1})),
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    let started = shadow(
        &service,
        Method::POST,
        Some(json!({"version": same, "jobs": 3})),
    )
    .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    deliver(&service, "SHADOW-STOP", 1).await;
    compared(&service, 1).await;
    let stopped = shadow(&service, Method::DELETE, None).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.body);
    assert_eq!(stopped.body["state"], "stopped");
    assert!(stopped.body["stoppedAt"].is_string());
    deliver(&service, "SHADOW-AFTER", 2).await;
    let report = shadow(&service, Method::GET, None).await.body;
    assert_eq!(report["state"], "stopped");
    assert_eq!(report["results"].as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(report["identical"], 1, "{report:#}");
    let again = shadow(&service, Method::DELETE, None).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["state"], "stopped");
}
