//! The outbox queue itself, driven through the real store of a running
//! service (no workers): claims, leases, attempts, retries, releases.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use rescind_host::store::{AttemptResult, JobState, Store, now_ms};
use serde_json::json;

use crate::api_cancel::configure_job;
use crate::hotload_support::cancel_new_order;
use crate::jobs_records::result;
use crate::service::{ADMIN, TestService, sample_order};

async fn service_with_job() -> (TestService, String) {
    // No workers: this test claims jobs itself.
    let service = TestService::start_without_workers().await;
    service.configure_insite().await;
    configure_job(
        &service,
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        json!({"maxAttempts": 2, "initialBackoffMs": 1, "maxBackoffMs": 1}),
    )
    .await;
    let job = cancel_new_order(&service, "SO-1").await;
    (service, job)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_up_by_another_worker() {
    let (service, job) = service_with_job().await;
    let store = service.store();

    // Worker A claims with a lease that is over at once, and "dies".
    let claimed = store
        .claim_due_jobs("worker-a", 10, 0)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job.id, job);
    assert_eq!(claimed[0].attempt, 1);
    let request_id = claimed[0].job.request_id.clone();

    // Worker B takes it up; the dead attempt is recorded as lease-expired.
    let again = store
        .claim_due_jobs("worker-b", 10, 60_000)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    assert_eq!(again[0].job.request_id, request_id, "request id is stable");
    // A third worker finds nothing while B holds a live lease.
    assert!(
        store
            .claim_due_jobs("worker-c", 10, 60_000)
            .await
            .expect("claim")
            .is_empty()
    );

    // A late result from A is ignored; B's counts.
    assert!(
        !store
            .finish_attempt(
                &claimed[0],
                "worker-a",
                &result("accepted", JobState::Succeeded)
            )
            .await
            .expect("finish")
    );
    assert!(
        store
            .finish_attempt(
                &again[0],
                "worker-b",
                &result("accepted", JobState::Succeeded)
            )
            .await
            .expect("finish")
    );

    let a = service
        .call(
            Method::GET,
            &format!("/v1/admin/jobs/{job}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.body["state"], "succeeded", "{}", a.body);
    assert_eq!(a.body["erpReference"], "ERP-REF-1");
    let history = a.body["attemptHistory"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["outcome"], "lease-expired");
    assert_eq!(history[0]["worker"], "worker-a");
    assert_eq!(history[1]["outcome"], "accepted");
    assert_eq!(history[1]["worker"], "worker-b");
    assert_eq!(history[1]["pluginVersion"], "sha256:test");
    assert_eq!(
        history[1]["log"],
        json!([{"level": "info", "message": "posted"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_jobs_can_be_retried_and_listed_by_state() {
    let (service, job) = service_with_job().await;
    let store = service.store();
    let c = store.claim_due_jobs("w", 1, 60_000).await.expect("claim");
    assert!(
        store
            .finish_attempt(&c[0], "w", &result("rejected", JobState::Failed))
            .await
            .expect("finish")
    );

    let a = service
        .call(
            Method::GET,
            "/v1/admin/jobs?state=failed&orderNumber=SO-1",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let ids: BTreeSet<&str> = a
        .body
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    assert_eq!(ids, BTreeSet::from([job.as_str()]));
    assert_eq!(a.body[0]["lastError"], "rejected: rejected for the test");
    let a = service
        .call(Method::GET, "/v1/admin/jobs?state=bogus", Some(ADMIN), None)
        .await;
    assert_eq!(a.code(), "validation-failed");
    let a = service
        .call(Method::GET, "/v1/admin/jobs?stat=failed", Some(ADMIN), None)
        .await;
    assert_eq!(a.code(), "validation-failed");

    // The cancellation shows the failure.
    let order = service.order("SO-1").await;
    let cid = order["cancellations"][0].as_str().expect("id");
    let c = service.cancellation(cid).await;
    assert_eq!(c.body["erpSync"]["state"], "failed");
    assert_eq!(c.body["erpSync"]["jobs"][0]["attempts"], 1);

    let r = service
        .call(
            Method::POST,
            &format!("/v1/admin/jobs/{job}/retry"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "queued");
    // A retried job has a full round again: two transient failures before
    // it fails (maxAttempts 2), numbered on from the first round.
    let c = store.claim_due_jobs("w", 1, 60_000).await.expect("claim");
    assert_eq!((c[0].attempt, c[0].attempt_in_round), (2, 1));
    let a = service
        .call(
            Method::POST,
            &format!("/v1/admin/jobs/{job}/retry"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.code(), "job-not-retryable");
    let a = service
        .call(Method::POST, "/v1/admin/jobs/nope/retry", Some(ADMIN), None)
        .await;
    assert_eq!(a.code(), "job-not-found");

    // Shutdown releases what a worker still holds.
    assert_eq!(store.release_jobs("w").await.expect("release"), 1);
    let j = store.job(&job).await.expect("job").expect("exists");
    assert_eq!(j.state, JobState::Retrying);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_runs_submit_the_orders_newest_cancellation_again() {
    let (service, _) = service_with_job().await;
    let a = service
        .call(
            Method::POST,
            "/v1/admin/job-definitions/OrderCancel/runs",
            Some(ADMIN),
            Some(&json!({"parameters": {"OrderNumber": "SO-1"}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["state"], "queued");
    assert_eq!(a.body["parameters"]["OrderNumber"], "SO-1");
    let order = service.order("SO-1").await;
    assert_eq!(a.body["cancellationId"], order["cancellations"][0]);

    for (body, field) in [
        (json!({"parameters": {}}), "parameters.OrderNumber"),
        (
            json!({"parameters": {"OrderNumber": "NOPE"}}),
            "parameters.OrderNumber",
        ),
        (
            json!({"parameters": {"OrderNumber": "SO-1", "Colour": "red"}}),
            "parameters.Colour",
        ),
    ] {
        let a = service
            .call(
                Method::POST,
                "/v1/admin/job-definitions/OrderCancel/runs",
                Some(ADMIN),
                Some(&body),
            )
            .await;
        assert_eq!(a.code(), "validation-failed", "{}", a.body);
        assert_eq!(a.body["errors"][0]["field"], field);
    }
    let a = service
        .call(
            Method::POST,
            "/v1/admin/job-definitions/Nope/runs",
            Some(ADMIN),
            Some(&json!({})),
        )
        .await;
    assert_eq!(a.code(), "job-definition-not-found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_jobs_are_claimed_in_the_order_their_cancellations_were_committed() {
    let service = TestService::start_without_workers().await;
    service.configure_insite().await;
    configure_job(
        &service,
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        json!({"maxAttempts": 3, "initialBackoffMs": 60000, "maxBackoffMs": 60000}),
    )
    .await;
    let store = service.store();
    // Two partial cancellations of one order (line 2 alone, then line 1
    // with the discount that goes with it), and one of another order.
    service.put_order("SO-1", &sample_order("C-1")).await;
    service.put_order("SO-2", &sample_order("C-2")).await;
    let mut jobs = Vec::new();
    for (order, line) in [("SO-1", 2), ("SO-1", 1), ("SO-2", 2)] {
        let body = json!({"cancellationReason": "OUT_OF_STOCK",
                          "items": [{"orderItemReference": line}]});
        let a = service.cancel(order, &body).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        jobs.push(
            a.body["erpSync"]["jobs"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let ids = |claimed: &[rescind_host::store::ClaimedJob]| -> BTreeSet<String> {
        claimed.iter().map(|c| c.job.id.clone()).collect()
    };

    // The second job of SO-1 waits for the first, even though it is due.
    let claimed = store.claim_due_jobs("worker-a", 10, 60_000).await.unwrap();
    assert_eq!(
        ids(&claimed),
        BTreeSet::from([jobs[0].clone(), jobs[2].clone()])
    );
    // The first fails for now and waits a minute to retry: the second still
    // waits, and an idle worker is not told it is due.
    let other = claimed.iter().find(|c| c.job.id == jobs[2]).unwrap();
    let done = result("accepted", JobState::Succeeded);
    assert!(
        store
            .finish_attempt(other, "worker-a", &done)
            .await
            .unwrap()
    );
    let first = claimed.iter().find(|c| c.job.id == jobs[0]).unwrap();
    let retry_at = now_ms() + 60_000;
    let retrying = AttemptResult {
        retry_at_ms: retry_at,
        ..result("transient", JobState::Retrying)
    };
    assert!(
        store
            .finish_attempt(first, "worker-a", &retrying)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_due_jobs("worker-b", 10, 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due_ms().await.unwrap(), Some(retry_at));

    // Once the first has settled (here: failed for good), the second goes.
    let job = store.job(&jobs[0]).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Retrying);
    let requeued = store
        .requeue_jobs(std::slice::from_ref(&jobs[0]))
        .await
        .unwrap();
    assert_eq!(requeued, 1);
    let claimed = store.claim_due_jobs("worker-b", 10, 60_000).await.unwrap();
    assert_eq!(ids(&claimed), BTreeSet::from([jobs[0].clone()]));
    assert!(
        store
            .finish_attempt(
                &claimed[0],
                "worker-b",
                &result("rejected", JobState::Failed)
            )
            .await
            .unwrap()
    );
    let claimed = store.claim_due_jobs("worker-b", 10, 60_000).await.unwrap();
    assert_eq!(ids(&claimed), BTreeSet::from([jobs[1].clone()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_reopened_after_a_crash_takes_back_what_was_in_flight_and_a_second_process_is_refused()
 {
    let dir = tempfile::tempdir().unwrap();
    let options = rescind_host::store::StoreOptions::new(dir.path());
    let store = Store::open(&options).await.unwrap();
    // A second process on the same data directory is refused, by name.
    let error = Store::open(&options).await.unwrap_err();
    assert!(
        matches!(error, rescind_host::store::StoreError::DataDirInUse { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("another rescind process"),
        "{error}"
    );

    // A request holds its key and a worker its job when the process dies.
    let claim = store
        .claim_idempotency_key("admin", "key-1", "digest")
        .await
        .unwrap();
    assert_eq!(claim, rescind_host::store::IdempotencyClaim::Proceed);
    let again = store
        .claim_idempotency_key("admin", "key-1", "digest")
        .await
        .unwrap();
    assert_eq!(again, rescind_host::store::IdempotencyClaim::InProgress);
    store.close().await;

    let store = Store::open(&options).await.unwrap();
    let retried = store
        .claim_idempotency_key("admin", "key-1", "digest")
        .await
        .unwrap();
    assert_eq!(
        retried,
        rescind_host::store::IdempotencyClaim::Proceed,
        "the client's retry goes ahead at once"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_host_takes_up_the_jobs_its_previous_run_left_running_at_once() {
    let (service, job) = service_with_job().await;
    // A worker of this run claims the job for a minute, and the run ends
    // before it records anything (as a killed process would).
    let claimed = service
        .store()
        .claim_due_jobs("worker-of-a-dead-run", 10, 60_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let service = service.restart().await;

    let again = service
        .store()
        .claim_due_jobs("worker-b", 10, 60_000)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "due at once, not after the lease");
    assert_eq!(again[0].job.id, job);
    assert_eq!(again[0].attempt, 2);
    let attempts = service.store().job_attempts(&job).await.unwrap();
    assert_eq!(attempts[0].outcome.as_deref(), Some("interrupted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_attempts_are_claimed_before_retries_that_were_due_earlier() {
    let (service, retried) = service_with_job().await;
    let store = service.store();
    // The first job fails once and is due again at once.
    let claimed = store
        .claim_due_jobs("worker-a", 1, 60_000)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert!(
        store
            .finish_attempt(
                &claimed[0],
                "worker-a",
                &result("transient", JobState::Retrying)
            )
            .await
            .expect("finish")
    );
    // A later cancellation's job, not tried yet, is due after it.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let fresh = cancel_new_order(&service, "SO-2").await;

    // One worker slot: the untried job goes first, then the retry.
    let first = store
        .claim_due_jobs("worker-b", 1, 60_000)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].job.id, fresh);
    let second = store
        .claim_due_jobs("worker-b", 1, 60_000)
        .await
        .expect("claim");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].job.id, retried);
    assert_eq!(second[0].attempt, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_of_a_definition_holding_its_share_are_passed_over_but_not_its_first_attempts() {
    let (service, retried) = service_with_job().await;
    let store = service.store();
    let held = ["OrderCancel".to_owned()];
    // The job fails once and is due again at once.
    let claimed = store.claim_due_jobs("w", 1, 60_000).await.expect("claim");
    let retrying = result("transient", JobState::Retrying);
    assert!(
        store
            .finish_attempt(&claimed[0], "w", &retrying)
            .await
            .expect("finish")
    );

    // Its definition holds its share: the retry is neither claimed nor
    // reported due, so an idle worker sleeps instead of spinning.
    assert!(
        store
            .claim_due_jobs_passing_over("w", 10, 60_000, &held)
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(store.next_due_ms_passing_over(&held).await.unwrap(), None);
    // Another definition's name changes nothing.
    let other = ["Deliver".to_owned()];
    assert!(
        store
            .next_due_ms_passing_over(&other)
            .await
            .unwrap()
            .is_some()
    );

    // A first attempt of the same definition is still claimed.
    let fresh = cancel_new_order(&service, "SO-2").await;
    let claimed = store
        .claim_due_jobs_passing_over("w", 10, 60_000, &held)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job.id, fresh);

    // Once the share is free again, the retry goes.
    let claimed = store.claim_due_jobs("w", 10, 60_000).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job.id, retried);
    assert_eq!(claimed[0].attempt_in_round, 2);
}
