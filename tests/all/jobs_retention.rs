//! Job retention: finished jobs older than the retention go with their
//! attempts; young, queued, running and retrying jobs stay, and so does
//! every cancellation, whose `erpSync.state` reads as before. Run on both
//! stores (the binary `postgres` includes this file).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use rescind_host::jobs::retention::JobRetention;
use rescind_host::store::{AttemptResult, JobState, Store, now_ms};
use serde_json::{Value, json};

use crate::api_cancel::configure_job;
use crate::service::{ADMIN, TestService, sample_order};

/// Forty days, in milliseconds: past the 30-day retention.
const FORTY_DAYS_MS: i64 = 40 * 24 * 3600 * 1000;

fn result(next: JobState) -> AttemptResult {
    AttemptResult {
        outcome: if next == JobState::Succeeded {
            "accepted"
        } else {
            "rejected"
        }
        .to_owned(),
        message: None,
        erp_reference: (next == JobState::Succeeded).then(|| "ERP-1".to_owned()),
        plugin_version: None,
        log: Vec::new(),
        exchange: None,
        next,
        retry_at_ms: now_ms(),
    }
}

/// Commits a cancellation of a fresh order `number`; answers its id and
/// its job's id.
async fn cancel(service: &TestService, number: &str) -> (String, String) {
    service.put_order(number, &sample_order("C-1")).await;
    let answer = service
        .cancel(number, &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    (
        answer.body["internalRequestId"]
            .as_str()
            .expect("id")
            .to_owned(),
        answer.body["erpSync"]["jobs"][0]["id"]
            .as_str()
            .expect("job")
            .to_owned(),
    )
}

/// Claims the one due job and records `next` as its result.
async fn finish(store: &Store, job: &str, next: JobState) {
    let claimed = store.claim_due_jobs("w", 1, 60_000).await.expect("claim");
    assert_eq!(claimed.len(), 1, "one job due");
    assert_eq!(claimed[0].job.id, job);
    assert!(
        store
            .finish_attempt(&claimed[0], "w", &result(next))
            .await
            .expect("finish")
    );
}

/// Moves every time of job `id` forty days back, as if it had run then.
async fn age(service: &TestService, id: &str) {
    let statement = format!(
        "UPDATE jobs SET run_at = run_at - {FORTY_DAYS_MS}, updated_at = updated_at - \
         {FORTY_DAYS_MS}, created_at = created_at - {FORTY_DAYS_MS} WHERE id = $1"
    );
    let changed = service.edit_database(&statement, &statement, id).await;
    assert_eq!(changed, 1, "job {id} aged");
}

async fn prune(service: &TestService, body: &Value) -> crate::service::Answer {
    service
        .call(
            Method::POST,
            "/v1/admin/jobs/prune",
            Some(ADMIN),
            Some(body),
        )
        .await
}

async fn service() -> TestService {
    // No workers: the test moves the jobs itself. The periodic retention is
    // off, so only the calls below prune.
    let service = TestService::start_configured(false, |config| {
        config.job_retention = JobRetention::Off;
    })
    .await;
    service.configure_insite().await;
    configure_job(
        &service,
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        json!({"maxAttempts": 1, "initialBackoffMs": 1, "maxBackoffMs": 1}),
    )
    .await;
    service
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_past_the_age_go_with_their_attempts_and_the_rest_stay() {
    let service = service().await;
    let store = service.store();

    // Old and succeeded, old and failed: to go.
    let (old_ok_cancellation, old_ok) = cancel(&service, "SO-1").await;
    finish(store, &old_ok, JobState::Succeeded).await;
    let (old_failed_cancellation, old_failed) = cancel(&service, "SO-2").await;
    finish(store, &old_failed, JobState::Failed).await;
    // Young and succeeded: stays.
    let (_, young_ok) = cancel(&service, "SO-3").await;
    finish(store, &young_ok, JobState::Succeeded).await;
    // Old but retrying, old and running (claimed, no result yet): stay.
    let (_, old_retrying) = cancel(&service, "SO-4").await;
    finish(store, &old_retrying, JobState::Retrying).await;
    let (_, old_running) = cancel(&service, "SO-5").await;
    let claimed = store.claim_due_jobs("w", 1, 60_000).await.expect("claim");
    assert_eq!(claimed[0].job.id, old_running);
    // Old but queued: stays.
    let (_, old_queued) = cancel(&service, "SO-6").await;
    for job in [
        &old_ok,
        &old_failed,
        &old_retrying,
        &old_running,
        &old_queued,
    ] {
        age(&service, job).await;
    }
    let attempts_before = service
        .count_rows("SELECT COUNT(*) FROM job_attempts")
        .await;

    let answer = prune(&service, &json!({"olderThan": "30d"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["prunedJobs"], 2, "{}", answer.body);
    assert_eq!(answer.body["prunedAttempts"], 2, "{}", answer.body);
    assert_eq!(answer.body["complete"], true, "{}", answer.body);

    for gone in [&old_ok, &old_failed] {
        assert!(store.job(gone).await.expect("read").is_none(), "{gone}");
        assert!(store.job_attempts(gone).await.expect("read").is_empty());
    }
    for kept in [&young_ok, &old_retrying, &old_running, &old_queued] {
        assert!(store.job(kept).await.expect("read").is_some(), "{kept}");
    }
    assert_eq!(
        service
            .count_rows("SELECT COUNT(*) FROM job_attempts")
            .await,
        attempts_before - 2
    );
    assert_eq!(
        service
            .count_rows("SELECT COUNT(*) FROM cancellations")
            .await,
        6,
        "no cancellation is deleted"
    );
    // The cancellations read as before their jobs went.
    for (cancellation, state) in [
        (&old_ok_cancellation, "succeeded"),
        (&old_failed_cancellation, "failed"),
    ] {
        let read = service.cancellation(cancellation).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.body);
        assert_eq!(read.body["erpSync"]["state"], state, "{}", read.body);
        assert_eq!(read.body["erpSync"]["jobs"], json!([]), "{}", read.body);
    }
    let metrics = service.metrics_text().await;
    assert!(metrics.contains("rescind_jobs_pruned_total 2"), "{metrics}");
    assert!(
        metrics.contains("rescind_job_attempts_pruned_total 2"),
        "{metrics}"
    );

    // Again: nothing older is left. With `0s` every finished job goes.
    let again = prune(&service, &json!({"olderThan": "30d"})).await;
    assert_eq!(again.body["prunedJobs"], 0, "{}", again.body);
    let all = prune(&service, &json!({"olderThan": "0s"})).await;
    assert_eq!(all.body["prunedJobs"], 1, "{}", all.body);
    assert!(store.job(&young_ok).await.expect("read").is_none());
    for kept in [&old_retrying, &old_running, &old_queued] {
        assert!(store.job(kept).await.expect("read").is_some(), "{kept}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_whose_transaction_fails_deletes_and_counts_nothing() {
    let service = service().await;
    let store = service.store();
    let (cancellation, job) = cancel(&service, "SO-1").await;
    finish(store, &job, JobState::Succeeded).await;
    age(&service, &job).await;
    // The store refuses to delete a job: the batch's last statement fails,
    // after the cancellation's count and the attempt's delete have run.
    service
        .edit_database(
            "CREATE TRIGGER keep BEFORE DELETE ON jobs
             BEGIN SELECT RAISE(ABORT, 'the disk is full'); END;",
            "CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'the disk is full'; END $$;
             CREATE TRIGGER keep BEFORE DELETE ON jobs FOR EACH ROW EXECUTE FUNCTION keep();",
            "",
        )
        .await;
    // Cancellations that count a deleted job.
    let pruned_count =
        "SELECT COUNT(*) FROM cancellations WHERE jobs_pruned_succeeded + jobs_pruned_failed > 0";

    let refused = prune(&service, &json!({"olderThan": "30d"})).await;
    assert!(refused.status.is_server_error(), "{}", refused.body);
    assert!(store.job(&job).await.expect("read").is_some());
    assert_eq!(store.job_attempts(&job).await.expect("read").len(), 1);
    assert_eq!(service.count_rows(pruned_count).await, 0, "nothing counted");

    // Once the store takes deletes again, the same prune goes through, and
    // the job is counted once.
    service
        .edit_database(
            "DROP TRIGGER keep;",
            "DROP TRIGGER keep ON jobs; DROP FUNCTION keep();",
            "",
        )
        .await;
    let answer = prune(&service, &json!({"olderThan": "30d"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["prunedJobs"], 1, "{}", answer.body);
    assert_eq!(answer.body["prunedAttempts"], 1, "{}", answer.body);
    assert!(store.job(&job).await.expect("read").is_none());
    assert_eq!(service.count_rows(pruned_count).await, 1);
    let read = service.cancellation(&cancellation).await;
    assert_eq!(read.body["erpSync"]["state"], "succeeded", "{}", read.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_age_is_refused_and_deletes_nothing() {
    let service = service().await;
    let store = service.store();
    let (_, job) = cancel(&service, "SO-1").await;
    finish(store, &job, JobState::Succeeded).await;
    age(&service, &job).await;

    for (body, expected) in [
        (
            json!({"olderThan": "-5d"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"olderThan": "soon"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"olderThan": "30"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"olderThan": ""}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"olderThan": 30}), StatusCode::BAD_REQUEST),
        (json!({}), StatusCode::BAD_REQUEST),
        (
            json!({"olderThan": "30d", "state": "queued"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let answer = prune(&service, &body).await;
        assert_eq!(answer.status, expected, "{body}: {}", answer.body);
        if expected == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(answer.code(), "validation-failed", "{}", answer.body);
            assert!(
                answer.body.to_string().contains("olderThan"),
                "the problem names the field: {}",
                answer.body
            );
        }
    }
    let negative = prune(&service, &json!({"olderThan": "-5d"})).await;
    assert!(
        negative.body.to_string().contains("negative"),
        "{}",
        negative.body
    );
    assert!(store.job(&job).await.expect("read").is_some());
    // A service key may not prune.
    let staff = service.key("service", None).await;
    let refused = service
        .call(
            Method::POST,
            "/v1/admin/jobs/prune",
            Some(&staff),
            Some(&json!({"olderThan": "0s"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(store.job(&job).await.expect("read").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_prunes_by_its_retention_on_its_own() {
    let service = TestService::start_configured(false, |config| {
        config.job_retention = JobRetention::Keep(Duration::from_secs(30 * 24 * 3600));
        config.job_retention_every = Duration::from_millis(50);
    })
    .await;
    service.configure_insite().await;
    configure_job(
        &service,
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        json!({"maxAttempts": 1, "initialBackoffMs": 1, "maxBackoffMs": 1}),
    )
    .await;
    let store = service.store();
    let (_, old) = cancel(&service, "SO-1").await;
    finish(store, &old, JobState::Succeeded).await;
    let (_, young) = cancel(&service, "SO-2").await;
    finish(store, &young, JobState::Succeeded).await;
    age(&service, &old).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    while store.job(&old).await.expect("read").is_some() {
        assert!(
            Instant::now() < deadline,
            "the periodic retention never pruned the old job"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store.job(&young).await.expect("read").is_some());
    assert!(
        service
            .metrics_text()
            .await
            .contains("rescind_jobs_pruned_total 1")
    );
}
