//! Cancellations over HTTP: the committed answer, idempotent replays,
//! concurrency, and durability across a restart.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use rescind_tests::erp_server::{ErpServer, Scripted};

use crate::service::{
    ADMIN, Answer, Backend, TestService, deposited_order, sample_order, webhook_connection,
};

/// The webhook signing key of [`configure_job`]'s connection.
pub const SIGNING_KEY: &str = "s3cret-signing-key";

/// A webhook connection to `base_url` signing with [`SIGNING_KEY`] and an
/// enabled `OrderCancel` definition (so cancellations enqueue a job).
/// `a_configured_job_is_delivered_signed` runs it for real.
pub async fn configure_job(service: &TestService, base_url: &str, host: &str, retry: Value) {
    service
        .configure_erp_job(
            &webhook_connection(base_url, host, SIGNING_KEY),
            "webhook",
            retry,
        )
        .await;
}

/// The fixture above is what the auth matrix and the queue tests use
/// without workers; here its job runs against a receiver that checks the
/// signature, so a secret under the wrong name (the plugin reads
/// `signingKey`) or a wrong key fails this test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_job_is_delivered_signed() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    erp.script([Scripted::json(201, r#"{"id": "ERP-SIGNED"}"#)]);
    let service = TestService::start().await;
    service.configure_insite().await;
    configure_job(
        &service,
        &erp.url(""),
        &erp.authority(),
        json!({"maxAttempts": 1, "initialBackoffMs": 1, "maxBackoffMs": 1}),
    )
    .await;
    let job = crate::hotload_support::cancel_new_order(&service, "SO-1").await;
    let settled = crate::hotload_support::settled_job(&service, &job).await;
    assert_eq!(settled["state"], "succeeded", "{settled}");
    assert_eq!(settled["erpReference"], "ERP-SIGNED");
    let requests = erp.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/hooks/cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cancellation_without_job_definition_says_not_communicated() {
    let service = TestService::start().await;
    service.configure_insite().await;
    service.put_order("SO-1", &sample_order("C-1")).await;
    let customer = service.key("customer", Some("C-1")).await;

    let a = service
        .call(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(&customer),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let id = a.body["internalRequestId"].as_str().expect("id").to_owned();
    assert_eq!(
        a.headers["location"].to_str().expect("location"),
        format!("/v1/cancellations/{id}")
    );
    assert_eq!(a.body["full"], true);
    assert_eq!(a.body["cancelledLines"], json!([1, 2, 3]));
    assert_eq!(a.body["orderStatus"], "Cancelled");
    assert_eq!(a.body["voidedMinor"], 23205);
    assert_eq!(a.body["refund"], Value::Null);
    assert_eq!(a.body["approvalCancelled"], true);
    assert_eq!(a.body["cancellationReason"], "CUSTOMER_CANCELLATION");
    assert_eq!(
        a.body["releasedAllocations"],
        json!([{"lineNumber": 1, "warehouse": "W1", "quantity": 2, "kind": "existing"},
               {"lineNumber": 2, "warehouse": "W1", "quantity": 1, "kind": "expected"}])
    );
    assert_eq!(
        a.body["erpSync"],
        json!({"state": "not-configured", "jobs": []})
    );
    assert!(
        a.body["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w["code"] == "not-communicated-to-erp"),
        "{}",
        a.body
    );

    let order = service.order("SO-1").await;
    assert_eq!(order["status"], "Cancelled");
    assert!(
        order["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .all(|l| l["state"] == "cancelled")
    );
    assert!(
        order["allocations"]
            .as_array()
            .expect("allocations")
            .iter()
            .all(|l| l["state"] == "released")
    );
    assert_eq!(order["payments"][0]["voidedMinor"], 23205);
    assert_eq!(order["approval"]["state"], "cancelled");
    assert_eq!(order["cancellations"], json!([id]));

    // The customer may read their own cancellation; another customer may not.
    let a = service
        .call(
            Method::GET,
            &format!("/v1/cancellations/{id}"),
            Some(&customer),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["internalRequestId"], id.as_str());
    let other = service.key("customer", Some("C-2")).await;
    let a = service
        .call(
            Method::GET,
            &format!("/v1/cancellations/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "cancellation-not-found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_cancel_with_refund_to_a_bank_account_in_two_steps_adds_up() {
    let service = TestService::start().await;
    service.configure_insite().await;
    service.put_order("SO-2", &deposited_order("C-1")).await;
    let bank = json!({"accountOwner": "Max Mustermann", "iban": "DE89 3704 0044 0532 0130 00"});
    let first = service
        .cancel(
            "SO-2",
            &json!({"cancellationReason": "CUSTOMER_SERVICE", "forcedCancel": true,
                    "forcedCancelWithRefund": true, "bankDetails": bank,
                    "items": [{"orderItemReference": 2, "quantity": 3}]}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["full"], false);
    assert_eq!(
        first.body["refund"],
        json!({"amountMinor": 7140, "currency": "EUR", "to": "bankAccount"})
    );
    let second = service
        .cancel(
            "SO-2",
            &json!({"cancellationReason": "CUSTOMER_SERVICE", "forcedCancel": true,
                    "forcedCancelWithRefund": true}),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(second.body["full"], true);
    assert_eq!(second.body["refund"]["to"], "original");
    let total = first.body["refund"]["amountMinor"].as_i64().unwrap_or(0)
        + second.body["refund"]["amountMinor"].as_i64().unwrap_or(0);
    assert_eq!(total, 42840);
    let order = service.order("SO-2").await;
    assert_eq!(order["payments"][0]["refundedMinor"], 42840);
    assert_eq!(order["status"], "Cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_and_body_replays_the_first_answer() {
    let service = TestService::start().await;
    service.configure_insite().await;
    service.put_order("SO-1", &sample_order("C-1")).await;
    let body = json!({"cancellationReason": "OUT_OF_STOCK"});
    let first = service
        .send(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(ADMIN),
            Some(&body),
            &[("idempotency-key", "abc-1")],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    // Same body with another key order and spacing: still the same request.
    let again = service
        .raw(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(ADMIN),
            "application/json",
            b"{ \"cancellationReason\" :\"OUT_OF_STOCK\" }".to_vec(),
        )
        .await;
    // Without the key it is a new request, and the order is cancelled now.
    assert_eq!(again.code(), "order-not-cancellable");
    let replay = service
        .send(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(ADMIN),
            Some(&body),
            &[("idempotency-key", "abc-1")],
        )
        .await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body, first.body);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.headers["location"], first.headers["location"]);

    // Keys are per caller: another key holder using "abc-1" is a new request.
    let service_key = service.key("service", None).await;
    let other = service
        .send(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(&service_key),
            Some(&body),
            &[("idempotency-key", "abc-1")],
        )
        .await;
    assert_eq!(other.code(), "order-not-cancellable", "{}", other.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_commit_once() {
    let service = Arc::new(TestService::start().await);
    service.configure_insite().await;
    service.put_order("SO-1", &sample_order("C-1")).await;
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let service = Arc::clone(&service);
        tasks.spawn(async move {
            service
                .send(
                    Method::POST,
                    "/v1/orders/SO-1/cancellations",
                    Some(ADMIN),
                    Some(&json!({"cancellationReason": "OUT_OF_STOCK"})),
                    &[("idempotency-key", "same-key")],
                )
                .await
        });
    }
    let mut ids = Vec::new();
    let mut first_answers = 0;
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.expect("task");
        match answer.status {
            StatusCode::CREATED => {
                ids.push(answer.body["internalRequestId"].clone());
                if !answer.headers.contains_key("idempotent-replayed") {
                    first_answers += 1;
                }
            }
            // PostgreSQL: replicas share keys, so a key is claimed before
            // its cancellation and held while it runs.
            StatusCode::CONFLICT if crate::BACKEND == Backend::Postgres => {
                assert_eq!(answer.code(), "request-in-progress")
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert_eq!(
        first_answers, 1,
        "one answer is the first, the others replay it"
    );
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    // SQLite checks the key in the cancellation's own transaction: no
    // request waits on another's claim, every one is answered.
    if crate::BACKEND == Backend::Sqlite {
        assert_eq!(ids.len(), 20);
    }
    let order = service.order("SO-1").await;
    assert_eq!(order["cancellations"], json!([ids[0]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_reusing_one_key_for_other_orders_commit_only_the_first() {
    let service = Arc::new(TestService::start().await);
    service.configure_insite().await;
    for n in 0..8 {
        service
            .put_order(&format!("SO-{n}"), &sample_order("C-1"))
            .await;
    }
    let mut tasks = JoinSet::new();
    for n in 0..8 {
        let service = Arc::clone(&service);
        tasks.spawn(async move {
            let answer = service
                .send(
                    Method::POST,
                    &format!("/v1/orders/SO-{n}/cancellations"),
                    Some(ADMIN),
                    Some(&json!({"cancellationReason": "OUT_OF_STOCK"})),
                    &[("idempotency-key", "one-key")],
                )
                .await;
            (n, answer)
        });
    }
    let mut committed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (n, answer) = joined.expect("task");
        match answer.status {
            StatusCode::CREATED => committed.push(n),
            // Another body under a known key is refused whatever state the
            // key is in, on either store.
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(answer.code(), "idempotency-key-reused", "{}", answer.body)
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert_eq!(committed.len(), 1, "{committed:?}");
    for n in 0..8 {
        let order = service.order(&format!("SO-{n}")).await;
        let cancellations = order["cancellations"].as_array().expect("a list").len();
        assert_eq!(cancellations, usize::from(committed == [n]), "SO-{n}");
    }
}

/// The answers to overlapping cancellations of one order: the committed
/// ones (`201`) and the refunds they reported. Every other answer must be
/// the refusal of an order or a line already cancelled.
pub async fn overlapping_answers(mut tasks: JoinSet<Answer>) -> (Vec<Value>, i64) {
    let mut refunded = 0;
    let mut committed = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.expect("task");
        match answer.status {
            StatusCode::CREATED => {
                refunded += answer.body["refund"]["amountMinor"].as_i64().unwrap_or(0);
                committed.push(answer.body);
            }
            StatusCode::CONFLICT => assert!(
                ["order-not-cancellable", "line-already-cancelled"].contains(&answer.code()),
                "{}",
                answer.body
            ),
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    (committed, refunded)
}

/// Asserts that `answer` committed a cancellation of order `number` and
/// that the order is now cancelled by it and no other.
async fn assert_cancelled_by(service: &TestService, number: &str, answer: &Answer) {
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{number}: {}",
        answer.body
    );
    let order = service.order(number).await;
    assert_eq!(order["status"], "Cancelled", "{number}");
    assert_eq!(
        order["cancellations"],
        json!([answer.body["internalRequestId"]])
    );
}

/// Asserts that no line is in two of the committed cancellations.
pub fn assert_no_line_cancelled_twice(committed: &[Value]) {
    let mut lines: Vec<u64> = committed
        .iter()
        .flat_map(|c| c["cancelledLines"].as_array().cloned().unwrap_or_default())
        .filter_map(|l| l.as_u64())
        .collect();
    let cancelled = lines.len();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(
        lines.len(),
        cancelled,
        "a line cancelled twice: {committed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_cancellations_of_one_order_commit_exactly_one() {
    let service = Arc::new(TestService::start().await);
    service.configure_insite().await;
    service.put_order("SO-2", &deposited_order("C-1")).await;
    let mut tasks = JoinSet::new();
    for i in 0..100 {
        let service = Arc::clone(&service);
        tasks.spawn(async move {
            // Half ask for the whole order, half for line 2 only: they overlap.
            let body = if i % 2 == 0 {
                json!({"cancellationReason": "OUT_OF_STOCK", "forcedCancel": true, "forcedCancelWithRefund": true})
            } else {
                json!({"cancellationReason": "OUT_OF_STOCK", "forcedCancel": true, "forcedCancelWithRefund": true,
                       "items": [{"orderItemReference": 2}]})
            };
            service.cancel("SO-2", &body).await
        });
    }
    let (committed, refunded) = overlapping_answers(tasks).await;
    // Either one full cancellation won, or line 2 went first and then one
    // full cancellation took the rest; never more, never a double refund.
    assert!(
        (1..=2).contains(&committed.len()),
        "{} committed",
        committed.len()
    );
    assert_no_line_cancelled_twice(&committed);
    let order = service.order("SO-2").await;
    assert_eq!(
        order["payments"][0]["refundedMinor"].as_i64(),
        Some(refunded)
    );
    assert!(refunded <= 42840);
    assert_eq!(
        order["cancellations"].as_array().map(Vec::len),
        Some(committed.len())
    );
    if committed.iter().any(|c| c["full"] == true) {
        assert_eq!(refunded, 42840);
        assert_eq!(order["status"], "Cancelled");
    }
}

/// Cancellations arriving together are committed together, each against
/// its own order: every one of an order the store holds commits and cancels
/// that order, every one of an order it never held is `404
/// order-not-found`, whichever others shared its group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellations_arriving_together_each_meet_their_own_order() {
    let service = Arc::new(TestService::start_without_workers().await);
    service.configure_insite().await;
    for i in 0..12 {
        service
            .put_order(&format!("SO-T{i}"), &sample_order("C-1"))
            .await;
    }
    let mut tasks = JoinSet::new();
    for i in 0..24 {
        let service = Arc::clone(&service);
        tasks.spawn(async move {
            let number = if i % 2 == 0 {
                format!("SO-T{}", i / 2)
            } else {
                format!("SO-NONE{i}")
            };
            let answer = service
                .cancel(&number, &json!({"cancellationReason": "OUT_OF_STOCK"}))
                .await;
            (number, answer)
        });
    }
    let mut committed = 0;
    while let Some(joined) = tasks.join_next().await {
        let (number, answer) = joined.expect("task");
        if number.starts_with("SO-NONE") {
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
            assert_eq!(answer.code(), "order-not-found", "{number}");
            continue;
        }
        assert_cancelled_by(&service, &number, &answer).await;
        assert_eq!(answer.body["orderNumber"], number.as_str());
        committed += 1;
    }
    assert_eq!(committed, 12);
}

/// Cancellations are committed in groups; one whose writes fail (a trigger
/// in the database stands in for a full disk) fails alone: those arriving
/// with it commit with their jobs, and nothing of the failed one remains.
/// Two job definitions are enabled and the failure strikes at the second
/// one's outbox row, the last write of the cancellation: its first job, its
/// cancellation, order, lines, payment and allocations were written by then
/// and must all go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_whose_writes_fail_fails_alone() {
    let service = Arc::new(TestService::start_without_workers().await);
    service.configure_insite().await;
    configure_job(
        &service,
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        json!({"maxAttempts": 1, "initialBackoffMs": 1, "maxBackoffMs": 1}),
    )
    .await;
    // Definitions make jobs in name order: AuditCancel's before OrderCancel's.
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/job-definitions/AuditCancel",
            Some(ADMIN),
            Some(&json!({"jobType": "Execution", "connection": "erp",
                         "integrationProcessor": "webhook"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    for i in 0..16 {
        service
            .put_order(&format!("SO-W{i}"), &sample_order("C-1"))
            .await;
    }
    service
        .edit_database(
            "CREATE TRIGGER fail_w7 AFTER INSERT ON jobs
               WHEN NEW.order_number = 'SO-W7' AND NEW.definition = 'OrderCancel'
             BEGIN SELECT RAISE(ABORT, 'the disk is full'); END;",
            "CREATE FUNCTION fail_w7() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'the disk is full'; END $$;
             CREATE TRIGGER fail_w7 AFTER INSERT ON jobs FOR EACH ROW
               WHEN (NEW.order_number = 'SO-W7' AND NEW.definition = 'OrderCancel')
               EXECUTE FUNCTION fail_w7();",
            "",
        )
        .await;
    let before = service.order("SO-W7").await;

    let mut tasks = JoinSet::new();
    for i in 0..16 {
        let service = Arc::clone(&service);
        tasks.spawn(async move {
            let number = format!("SO-W{i}");
            let answer = service
                .cancel(&number, &json!({"cancellationReason": "OUT_OF_STOCK"}))
                .await;
            (number, answer)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (number, answer) = joined.expect("task");
        if number == "SO-W7" {
            assert_eq!(
                answer.status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{}",
                answer.body
            );
            continue;
        }
        assert_cancelled_by(&service, &number, &answer).await;
        // Its two jobs, both of its cancellation.
        let jobs = service
            .call(
                Method::GET,
                &format!("/v1/admin/jobs?orderNumber={number}"),
                Some(ADMIN),
                None,
            )
            .await;
        let mut made: Vec<(&str, &str)> = jobs
            .body
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| {
                (
                    j["definition"].as_str().unwrap_or(""),
                    j["cancellationId"].as_str().unwrap_or(""),
                )
            })
            .collect();
        made.sort_unstable();
        let id = answer.body["internalRequestId"].as_str().unwrap_or("?");
        assert_eq!(made, [("AuditCancel", id), ("OrderCancel", id)], "{number}");
    }
    let orphans = service
        .call(
            Method::GET,
            "/v1/admin/jobs?orderNumber=SO-W7",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(orphans.body, json!([]), "a job of the failed cancellation");
    assert_eq!(
        service.order("SO-W7").await,
        before,
        "the failed cancellation left traces"
    );
    let cancellations = service
        .count_rows("SELECT COUNT(*) FROM cancellations")
        .await;
    let jobs = service.count_rows("SELECT COUNT(*) FROM jobs").await;
    assert_eq!((cancellations, jobs), (15, 30));

    // Once the cause is gone the order can be cancelled, with both jobs.
    service
        .edit_database("DROP TRIGGER fail_w7", "DROP TRIGGER fail_w7 ON jobs", "")
        .await;
    let answer = service
        .cancel("SO-W7", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(
        answer.body["erpSync"]["jobs"].as_array().map(Vec::len),
        Some(2)
    );
}

/// A row of the order that the cancellation plans to change and the
/// database leaves alone (here a trigger skips the update, as a row
/// deleted behind the host's back would be: on PostgreSQL of the order's
/// second allocation, on SQLite of the order's own row, which holds its
/// allocations) fails the cancellation whole: no order status, line,
/// payment, cancellation or job of it is committed, and other orders are
/// cancelled as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_the_database_leaves_alone_fails_the_cancellation_whole() {
    let service = TestService::start_without_workers().await;
    service.configure_insite().await;
    configure_job(
        &service,
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        json!({"maxAttempts": 1, "initialBackoffMs": 1, "maxBackoffMs": 1}),
    )
    .await;
    service.put_order("SO-S1", &sample_order("C-1")).await;
    service.put_order("SO-S2", &sample_order("C-1")).await;
    service
        .edit_database(
            "CREATE TRIGGER skip_s1 BEFORE UPDATE ON orders
               WHEN OLD.number = 'SO-S1'
             BEGIN SELECT RAISE(IGNORE); END;",
            "CREATE FUNCTION skip_s1() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RETURN NULL; END $$;
             CREATE TRIGGER skip_s1 BEFORE UPDATE ON allocations FOR EACH ROW
               WHEN (OLD.order_number = 'SO-S1' AND OLD.position = 1)
               EXECUTE FUNCTION skip_s1();",
            "",
        )
        .await;
    let before = service.order("SO-S1").await;

    let answer = service
        .cancel("SO-S1", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(
        answer.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        answer.body
    );
    assert_eq!(
        service.order("SO-S1").await,
        before,
        "the cancellation was committed in part"
    );
    let traces = service
        .count_rows(
            "SELECT (SELECT COUNT(*) FROM cancellations WHERE order_number = 'SO-S1')
                  + (SELECT COUNT(*) FROM jobs WHERE order_number = 'SO-S1')",
        )
        .await;
    assert_eq!(
        traces, 0,
        "a cancellation or job of the failed cancellation"
    );
    let other = service
        .cancel("SO-S2", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_cancelled_by(&service, "SO-S2", &other).await;

    // The trigger gone, the same request cancels the order.
    service
        .edit_database(
            "DROP TRIGGER skip_s1",
            "DROP TRIGGER skip_s1 ON allocations",
            "",
        )
        .await;
    let answer = service
        .cancel("SO-S1", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_cancelled_by(&service, "SO-S1", &answer).await;
    let order = service.order("SO-S1").await;
    let states: Vec<&str> = order["allocations"]
        .as_array()
        .expect("allocations")
        .iter()
        .map(|a| a["state"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(states, ["released", "released"], "{order}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_orders_cancellations_and_queued_jobs() {
    let service = TestService::start_without_workers().await;
    service.configure_insite().await;
    // No workers run, so the job stays queued across the restart.
    configure_job(
        &service,
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        json!({"maxAttempts": 3, "initialBackoffMs": 10, "maxBackoffMs": 20}),
    )
    .await;
    service.put_order("SO-1", &sample_order("C-1")).await;
    let a = service
        .cancel(
            "SO-1",
            &json!({"cancellationReason": "OUT_OF_STOCK", "items": [{"orderItemReference": 1}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["erpSync"]["state"], "queued");
    assert_eq!(a.body["warnings"], json!([]));
    let id = a.body["internalRequestId"].as_str().expect("id").to_owned();
    let job = a.body["erpSync"]["jobs"][0]["id"]
        .as_str()
        .expect("job")
        .to_owned();
    let order_before = service.order("SO-1").await;

    let service = service.restart().await;
    assert_eq!(service.order("SO-1").await, order_before);
    let c = service.cancellation(&id).await;
    assert_eq!(c.status, StatusCode::OK);
    assert_eq!(c.body["cancelledLines"], json!([1, 2, 3]));
    assert_eq!(c.body["erpSync"]["jobs"][0]["id"], job.as_str());
    let j = service
        .call(
            Method::GET,
            &format!("/v1/admin/jobs/{job}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(j.status, StatusCode::OK, "{}", j.body);
    assert_eq!(j.body["parameters"]["OrderNumber"], "SO-1");
    assert_eq!(j.body["state"], "queued");
    // Settings and the connection survive too; secrets never come back.
    let conn = service
        .call(Method::GET, "/v1/admin/connections/erp", Some(ADMIN), None)
        .await;
    assert_eq!(conn.body["secrets"], json!(["signingKey"]));
    assert!(!conn.body.to_string().contains(SIGNING_KEY));
}
