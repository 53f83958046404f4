//! The retries of one job definition hold at most half of the workers: a
//! definition whose ERP hangs on every retry leaves the other workers to
//! the other definitions' jobs.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rescind_tests::erp_server::{ErpServer, Scripted};
use serde_json::{Value, json};

use crate::service::{ADMIN, TestService, sample_order, webhook_connection};

const SIGNING_KEY: &str = "share-signing-key";

async fn job(service: &TestService, id: &str) -> Value {
    let a = service
        .call(
            Method::GET,
            &format!("/v1/admin/jobs/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body
}

/// Polls until `done` holds (bounded: 60 s).
async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..1200 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never reached: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_of_a_hanging_definition_leave_workers_to_the_others() {
    // Two workers: the retries of one definition may hold one of them.
    let service = TestService::start().await;
    service.configure_insite().await;

    // `OrderCancel`'s ERP answers each job's first request 503 at once,
    // and holds every later one (a retry) without answering.
    let received = Arc::new(AtomicUsize::new(0));
    let stuck = {
        let received = Arc::clone(&received);
        let seen = Mutex::new(BTreeSet::<String>::new());
        ErpServer::start_with(move |request| {
            received.fetch_add(1, Ordering::SeqCst);
            let key = request.header("idempotency-key").unwrap_or_default();
            if seen.lock().unwrap().insert(key.to_owned()) {
                Scripted::json(503, "{}")
            } else {
                Scripted::json(200, "{}").after(Duration::from_secs(600))
            }
        })
        .await
    };
    service
        .configure_erp_job(
            &webhook_connection(&stuck.url(""), &stuck.authority(), SIGNING_KEY),
            "webhook",
            json!({"maxAttempts": 100, "initialBackoffMs": 1, "maxBackoffMs": 5}),
        )
        .await;
    // `Deliver`, on a healthy ERP, added once the cancellations are made:
    // only its manual run below makes a job of it.
    let healthy = ErpServer::signed(SIGNING_KEY).await;

    let mut stuck_jobs = Vec::new();
    for number in ["SHARE-1", "SHARE-2"] {
        service.put_order(number, &sample_order("C-1")).await;
        let a = service
            .cancel(number, &json!({"cancellationReason": "OUT_OF_STOCK"}))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        let jobs = a.body["erpSync"]["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 1, "{}", a.body);
        stuck_jobs.push(jobs[0]["id"].as_str().unwrap().to_owned());
    }
    // Both first attempts got their 503; one retry hangs at the ERP.
    wait_until("both 503s and one hanging retry", async || {
        received.load(Ordering::SeqCst) >= 3
    })
    .await;

    let a = service
        .call(
            Method::PUT,
            "/v1/admin/connections/healthy",
            Some(ADMIN),
            Some(&webhook_connection(
                &healthy.url(""),
                &healthy.authority(),
                SIGNING_KEY,
            )),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/job-definitions/Deliver",
            Some(ADMIN),
            Some(&json!({"jobType": "Execution", "connection": "healthy",
                         "integrationProcessor": "webhook",
                         "parameters": [{"name": "OrderNumber", "valueType": "String",
                                         "defaultValue": "", "prompt": "Order Number"}],
                         "enabled": true})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = service
        .call(
            Method::POST,
            "/v1/admin/job-definitions/Deliver/runs",
            Some(ADMIN),
            Some(&json!({"parameters": {"OrderNumber": "SHARE-1"}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let delivered = a.body["id"].as_str().unwrap().to_owned();

    // The healthy job is delivered by the worker the hanging retries may
    // not take, while the first hanging retry still waits for its answer.
    wait_until("the healthy job delivered", async || {
        job(&service, &delivered).await["state"] == "succeeded"
    })
    .await;
    assert_eq!(healthy.requests().len(), 1);
    assert_eq!(
        received.load(Ordering::SeqCst),
        3,
        "the second retry waited for the first: only one hangs at the ERP"
    );
    let mut states = Vec::new();
    for id in &stuck_jobs {
        let job = job(&service, id).await;
        for attempt in job["attemptHistory"].as_array().unwrap() {
            // No worker was freed by a timed-out call.
            assert!(
                attempt["outcome"].is_null() || attempt["outcome"] == "transient",
                "{job}"
            );
            if let Some(message) = attempt["message"].as_str() {
                assert!(message.contains("503"), "{job}");
            }
        }
        states.push(job["state"].as_str().unwrap().to_owned());
    }
    states.sort();
    assert_eq!(states, ["retrying", "running"]);
}
