//! The attempts of a pool's workers recorded in groups
//! (`Store::record_attempts`): each record followed by its worker's claim,
//! in one transaction, all or nothing; a claim passes over the retries of
//! the definitions that hold their share. On both stores (on SQLite the
//! group runs on the writer thread's own connection).

use rescind_host::store::{
    AttemptLogLine, AttemptRecord, AttemptResult, ClaimedJob, JobState, RetryShares, Store, now_ms,
};
use serde_json::json;

use crate::hotload_support::{cancel_new_order, job};
use crate::service::TestService;

/// A service without workers (the test claims and records itself) and
/// `count` queued jobs of `OrderCancel`, oldest first.
pub(crate) async fn service_with_jobs(count: usize) -> (TestService, Vec<String>) {
    let service = TestService::start_without_workers().await;
    service.configure_insite().await;
    crate::api_cancel::configure_job(
        &service,
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        json!({"maxAttempts": 3, "initialBackoffMs": 1, "maxBackoffMs": 1}),
    )
    .await;
    let mut jobs = Vec::new();
    for n in 1..=count {
        jobs.push(cancel_new_order(&service, &format!("SO-{n}")).await);
    }
    (service, jobs)
}

/// An attempt's result: `outcome`, moving the job on to `next`.
pub(crate) fn result(outcome: &str, next: JobState) -> AttemptResult {
    AttemptResult {
        outcome: outcome.to_owned(),
        message: Some(format!("{outcome} for the test")),
        erp_reference: (next == JobState::Succeeded).then(|| "ERP-REF-1".to_owned()),
        plugin_version: Some("sha256:test".to_owned()),
        log: vec![AttemptLogLine {
            level: "info".to_owned(),
            message: "posted".to_owned(),
        }],
        exchange: None,
        next,
        retry_at_ms: now_ms(),
    }
}

fn record(worker: &str, claimed: &ClaimedJob, result: &AttemptResult, next: bool) -> AttemptRecord {
    AttemptRecord {
        worker: worker.to_owned(),
        claimed: claimed.clone(),
        result: result.clone(),
        claim_next: next,
    }
}

/// Shares that hold the definitions given, and keep the ids of the jobs
/// the claims entered.
struct Holding {
    held: Vec<String>,
    entered: Vec<String>,
}

impl Holding {
    fn nothing() -> Self {
        Holding {
            held: Vec::new(),
            entered: Vec::new(),
        }
    }
}

impl RetryShares for Holding {
    fn held(&self) -> Vec<String> {
        self.held.clone()
    }

    fn enter(&mut self, job: &ClaimedJob) {
        self.entered.push(job.job.id.clone());
    }
}

async fn claim(store: &Store, worker: &str) -> ClaimedJob {
    let mut claimed = store
        .claim_due_jobs(worker, 1, 60_000)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "{worker} claims one job");
    claimed.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_records_each_attempt_and_claims_its_workers_next_job() {
    let (service, jobs) = service_with_jobs(4).await;
    let store = service.store();
    let a = claim(store, "worker-a").await;
    let b = claim(store, "worker-b").await;
    assert_eq!((&a.job.id, &b.job.id), (&jobs[0], &jobs[1]));
    let accepted = result("accepted", JobState::Succeeded);
    let rejected = result("rejected", JobState::Failed);

    let (answers, shares) = store
        .record_attempts(
            &[
                record("worker-a", &a, &accepted, true),
                record("worker-b", &b, &rejected, true),
            ],
            60_000,
            Holding::nothing(),
        )
        .await
        .expect("record");
    assert!(answers.iter().all(|answer| answer.recorded));
    let next: Vec<&str> = answers
        .iter()
        .map(|answer| answer.next.as_ref().expect("next").job.id.as_str())
        .collect();
    assert_eq!(next, [jobs[2].as_str(), jobs[3].as_str()], "each its own");
    assert_eq!(shares.entered, [jobs[2].clone(), jobs[3].clone()]);
    let done = job(&service, &jobs[0]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["erpReference"], "ERP-REF-1");
    assert_eq!(done["attemptHistory"][0]["outcome"], "accepted");
    let failed = job(&service, &jobs[1]).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["attemptHistory"][0]["outcome"], "rejected");
    for (id, worker) in [(&jobs[2], "worker-a"), (&jobs[3], "worker-b")] {
        let running = job(&service, id).await;
        assert_eq!(running["state"], "running", "{running}");
        assert_eq!(running["attemptHistory"][0]["worker"], worker);
        assert!(running["attemptHistory"][0]["endedAt"].is_null());
    }

    // A record that comes too late (the job's lease is no longer this
    // attempt's) records nothing; nothing is left to claim.
    let (answers, _) = store
        .record_attempts(
            &[record("worker-a", &a, &rejected, true)],
            60_000,
            Holding::nothing(),
        )
        .await
        .expect("record");
    assert!(!answers[0].recorded);
    assert!(answers[0].next.is_none());
    let done = job(&service, &jobs[0]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["attemptHistory"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_transaction_fails_writes_nothing_of_any_record() {
    let (service, jobs) = service_with_jobs(3).await;
    let store = service.store();
    let a = claim(store, "worker-a").await;
    let b = claim(store, "worker-b").await;
    // The store refuses the record of an attempt whose outcome is `poison`.
    service
        .edit_database(
            "CREATE TRIGGER poison AFTER UPDATE ON job_attempts
               WHEN NEW.outcome = 'poison'
             BEGIN SELECT RAISE(ABORT, 'the disk is full'); END;",
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'the disk is full'; END $$;
             CREATE TRIGGER poison AFTER UPDATE ON job_attempts FOR EACH ROW
               WHEN (NEW.outcome = 'poison') EXECUTE FUNCTION poison();",
            "",
        )
        .await;
    let accepted = result("accepted", JobState::Succeeded);
    let poison = result("poison", JobState::Failed);

    let refused = store
        .record_attempts(
            &[
                record("worker-a", &a, &accepted, true),
                record("worker-b", &b, &poison, true),
            ],
            60_000,
            Holding::nothing(),
        )
        .await;
    assert!(refused.is_err(), "the group fails");
    // Neither the first record nor its claim was kept.
    let first = job(&service, &jobs[0]).await;
    assert_eq!(first["state"], "running", "{first}");
    assert!(first["attemptHistory"][0]["endedAt"].is_null());
    assert_eq!(job(&service, &jobs[2]).await["state"], "queued");

    // Alone, the record the store takes is written, with its claim.
    let (answers, _) = store
        .record_attempts(
            &[record("worker-a", &a, &accepted, true)],
            60_000,
            Holding::nothing(),
        )
        .await
        .expect("record");
    assert!(answers[0].recorded);
    assert_eq!(answers[0].next.as_ref().expect("next").job.id, jobs[2]);
    assert_eq!(job(&service, &jobs[0]).await["state"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_passes_over_the_retries_of_a_definition_that_holds_its_share() {
    let (service, jobs) = service_with_jobs(3).await;
    let store = service.store();
    let a = claim(store, "worker-a").await;
    let b = claim(store, "worker-b").await;
    let c = claim(store, "worker-c").await;
    let accepted = result("accepted", JobState::Succeeded);

    // The first job's attempt failed for now: a retry, due at once.
    let (answers, _) = store
        .record_attempts(
            &[record(
                "worker-a",
                &a,
                &result("unreachable", JobState::Retrying),
                false,
            )],
            60_000,
            Holding::nothing(),
        )
        .await
        .expect("record");
    assert!(answers[0].recorded && answers[0].next.is_none());
    assert_eq!(job(&service, &jobs[0]).await["state"], "retrying");

    // Its definition holds its share: the claim passes its retry over.
    let holding = Holding {
        held: vec!["OrderCancel".to_owned()],
        entered: Vec::new(),
    };
    let (answers, shares) = store
        .record_attempts(&[record("worker-b", &b, &accepted, true)], 60_000, holding)
        .await
        .expect("record");
    assert!(answers[0].recorded);
    assert!(answers[0].next.is_none(), "the retry waits");
    assert!(shares.entered.is_empty());

    // Once the share is free, the retry goes: the round's second attempt.
    let (answers, shares) = store
        .record_attempts(
            &[record("worker-c", &c, &accepted, true)],
            60_000,
            Holding::nothing(),
        )
        .await
        .expect("record");
    let next = answers[0].next.as_ref().expect("the retry");
    assert_eq!(next.job.id, jobs[0]);
    assert_eq!((next.attempt, next.attempt_in_round), (2, 2));
    assert_eq!(shares.entered, [jobs[0].clone()]);
    let retried = job(&service, &jobs[0]).await;
    assert_eq!(retried["state"], "running", "{retried}");
    assert_eq!(retried["attemptHistory"][1]["worker"], "worker-c");
}
