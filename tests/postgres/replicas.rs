//! Several replicas on one PostgreSQL database, each a real service with a
//! data directory of its own, reached over loopback HTTP the way a load
//! balancer would spread clients over them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use rescind_tests::erp_server::ErpServer;

use crate::service::{ADMIN, TestService, deposited_order, sample_order};

/// Three replicas; `workers` on each.
async fn replicas(workers: bool) -> Vec<Arc<TestService>> {
    let first = TestService::start_configured(workers, |_| {}).await;
    let second = first.replica(workers).await;
    let third = first.replica(workers).await;
    vec![Arc::new(first), Arc::new(second), Arc::new(third)]
}

/// Overlapping cancellations of one order sent to three replicas at once:
/// no line is cancelled twice and the money adds up, as on one host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_cancelling_one_order_never_cancel_a_line_twice() {
    let replicas = replicas(false).await;
    replicas[0].configure_insite().await;
    replicas[0].put_order("SO-R", &deposited_order("C-1")).await;
    let mut tasks = JoinSet::new();
    for i in 0..60 {
        let replica = Arc::clone(&replicas[i % replicas.len()]);
        tasks.spawn(async move {
            // A third asks for the whole order, the rest for line 2 or 1.
            let mut body = json!({"cancellationReason": "OUT_OF_STOCK", "forcedCancel": true,
                                  "forcedCancelWithRefund": true});
            match i % 3 {
                1 => body["items"] = json!([{"orderItemReference": 2}]),
                2 => body["items"] = json!([{"orderItemReference": 1}]),
                _ => {}
            }
            replica.cancel("SO-R", &body).await
        });
    }
    let (committed, refunded) = crate::api_cancel::overlapping_answers(tasks).await;
    crate::api_cancel::assert_no_line_cancelled_twice(&committed);
    // Every replica reads the same order, with the refunds the answers
    // reported and no more.
    for replica in &replicas {
        let order = replica.order("SO-R").await;
        assert_eq!(
            order["payments"][0]["refundedMinor"].as_i64(),
            Some(refunded)
        );
        assert_eq!(
            order["cancellations"].as_array().map(Vec::len),
            Some(committed.len())
        );
    }
    assert!(refunded <= 42840, "refunded {refunded} of 42840");
}

/// A client retrying with its `Idempotency-Key` may reach another
/// replica: it gets the first answer again, and nothing is cancelled twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_on_another_replica_replays_the_first_answer() {
    let replicas = replicas(false).await;
    replicas[0].configure_insite().await;
    replicas[0].put_order("SO-I", &sample_order("C-1")).await;
    let body = json!({"cancellationReason": "OUT_OF_STOCK", "items": [{"orderItemReference": 2}]});
    let mut ids = Vec::new();
    for replica in &replicas {
        let answer = replica
            .send(
                Method::POST,
                "/v1/orders/SO-I/cancellations",
                Some(ADMIN),
                Some(&body),
                &[("idempotency-key", "retry-across-replicas")],
            )
            .await;
        assert!(
            [StatusCode::CREATED, StatusCode::OK].contains(&answer.status),
            "{}: {}",
            answer.status,
            answer.body
        );
        ids.push(
            answer.body["internalRequestId"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let order = replicas[2].order("SO-I").await;
    assert_eq!(order["cancellations"], json!([ids[0]]));
    // The same key with another body is refused on any replica.
    let other = replicas[1]
        .send(
            Method::POST,
            "/v1/orders/SO-I/cancellations",
            Some(ADMIN),
            Some(&json!({"cancellationReason": "OUT_OF_STOCK", "items": [{"orderItemReference": 1}]})),
            &[("idempotency-key", "retry-across-replicas")],
        )
        .await;
    assert_eq!(other.code(), "idempotency-key-reused", "{}", other.body);
}

/// A key created on one replica is accepted by the others, and once it is
/// revoked on one, every replica refuses its next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_replica_is_refused_by_all() {
    let replicas = replicas(false).await;
    replicas[0].put_order("SO-K", &sample_order("C-7")).await;
    let created = replicas[0]
        .call(
            Method::POST,
            "/v1/admin/api-keys",
            Some(ADMIN),
            Some(&json!({"name": "platform", "role": "service"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = created.body["token"].as_str().expect("token").to_owned();
    let id = created.body["id"].as_str().expect("id").to_owned();
    for replica in &replicas {
        let answer = replica
            .call(Method::GET, "/v1/orders/SO-K", Some(&token), None)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let revoked = replicas[1]
        .call(
            Method::DELETE,
            &format!("/v1/admin/api-keys/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert!(revoked.status.is_success(), "{}", revoked.body);
    for replica in &replicas {
        let answer = replica
            .call(Method::GET, "/v1/orders/SO-K", Some(&token), None)
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    }
}

/// Three replicas' workers claim from one queue: every job reaches the ERP,
/// and none twice (each job's `Idempotency-Key` arrives once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_deliver_every_job_once() {
    let erp = ErpServer::signed(crate::api_cancel::SIGNING_KEY).await;
    let replicas = replicas(true).await;
    crate::api_cancel::configure_job(
        &replicas[0],
        &erp.url(""),
        &erp.authority(),
        json!({"maxAttempts": 3, "initialBackoffMs": 10, "maxBackoffMs": 20}),
    )
    .await;
    replicas[0].configure_insite().await;
    let mut jobs = Vec::new();
    for i in 0..30 {
        let replica = &replicas[i % replicas.len()];
        let number = format!("SO-J{i}");
        replica.put_order(&number, &sample_order("C-1")).await;
        let answer = replica
            .cancel(&number, &json!({"cancellationReason": "OUT_OF_STOCK"}))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        jobs.push(
            answer.body["erpSync"]["jobs"][0]["id"]
                .as_str()
                .expect("a job")
                .to_owned(),
        );
    }
    for (i, job) in jobs.iter().enumerate() {
        let settled = crate::hotload_support::settled_job(&replicas[i % 3], job).await;
        assert_eq!(settled["state"], "succeeded", "{settled}");
    }
    let mut deliveries: BTreeMap<String, usize> = BTreeMap::new();
    for request in erp.requests() {
        let key = request.header("idempotency-key").expect("a key").to_owned();
        *deliveries.entry(key).or_default() += 1;
    }
    assert_eq!(deliveries.len(), jobs.len(), "{deliveries:?}");
    let twice: Vec<_> = deliveries.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
}

/// A cancellation on a replica without workers queues a job that another
/// replica's workers deliver as soon as it commits: the first tells the
/// others (its announcement after the commit), so they do not wait for
/// their next look at the queue, here an hour away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_queued_on_one_replica_wakes_the_workers_of_another() {
    let erp = ErpServer::signed(crate::api_cancel::SIGNING_KEY).await;
    let api = TestService::start_configured(false, |config| {
        if let Some(workers) = config.workers.as_mut() {
            workers.poll_interval = Duration::from_secs(3600);
        }
    })
    .await;
    let worker = api.replica(true).await;
    crate::api_cancel::configure_job(
        &api,
        &erp.url(""),
        &erp.authority(),
        json!({"maxAttempts": 3, "initialBackoffMs": 10, "maxBackoffMs": 20}),
    )
    .await;
    api.configure_insite().await;
    // Each cancellation while the workers sleep: the second after the
    // first was delivered, so that the workers are asleep again.
    for number in ["SO-N1", "SO-N2"] {
        let job = crate::hotload_support::cancel_new_order(&api, number).await;
        // Bounded at 60 s: far below the workers' hour, whatever the
        // machine's speed.
        let settled = crate::hotload_support::settled_job(&worker, &job).await;
        assert_eq!(settled["state"], "succeeded", "{settled}");
    }
    assert_eq!(erp.requests().len(), 2);
}

/// Settings changed on one replica are what the next cancellation on
/// another is planned with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_changed_on_one_replica_holds_on_the_next_request_to_another() {
    let replicas = replicas(false).await;
    replicas[0].configure_insite().await;
    replicas[0].put_order("SO-S", &sample_order("C-1")).await;
    let customer = replicas[0].key("customer", Some("C-1")).await;
    // Customers may no longer cancel on website `main`.
    let off = replicas[0]
        .call(
            Method::PUT,
            "/v1/admin/websites/main",
            Some(ADMIN),
            Some(&json!({ "allowCancellationRequest": false })),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let refused = replicas[1]
        .call(
            Method::POST,
            "/v1/orders/SO-S/cancellations",
            Some(&customer),
            None,
        )
        .await;
    assert_eq!(
        refused.code(),
        "cancellation-not-allowed",
        "{}",
        refused.body
    );
    let order: Value = replicas[2].order("SO-S").await;
    assert_eq!(order["cancellations"], json!([]));
}

/// A replica dies holding a job: another replica takes the job up once the
/// lease expires, and the ERP hears of it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_held_by_a_dead_replica_is_taken_up_by_another_after_its_lease() {
    let erp = ErpServer::signed(crate::api_cancel::SIGNING_KEY).await;
    let dying = TestService::start_configured(false, |_| {}).await;
    crate::api_cancel::configure_job(
        &dying,
        &erp.url(""),
        &erp.authority(),
        json!({"maxAttempts": 3, "initialBackoffMs": 10, "maxBackoffMs": 20}),
    )
    .await;
    dying.configure_insite().await;
    let job = crate::hotload_support::cancel_new_order(&dying, "SO-D").await;
    // Its worker claims the job for two seconds, and the replica dies.
    let claimed = dying
        .running
        .as_ref()
        .expect("running")
        .state
        .store
        .claim_due_jobs("worker-of-a-dead-replica", 1, 2_000)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let survivor = dying.replica(true).await;
    let mut dying = dying;
    if let Some(running) = dying.running.take() {
        // Its workers never ran: nothing is given back on the way down.
        running
            .shutdown(std::time::Duration::from_secs(5))
            .await
            .expect("stops");
    }
    let settled = crate::hotload_support::settled_job(&survivor, &job).await;
    assert_eq!(settled["state"], "succeeded", "{settled}");
    let history = settled["attemptHistory"].as_array().expect("history");
    assert_eq!(history.len(), 2, "{settled}");
    assert_eq!(history[0]["worker"], "worker-of-a-dead-replica");
    assert_eq!(history[0]["outcome"], "lease-expired");
    assert_eq!(history[1]["outcome"], "accepted");
    assert_eq!(erp.requests().len(), 1);
}
