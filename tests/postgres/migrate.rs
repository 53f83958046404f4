//! `rescind migrate-store`: a populated SQLite data directory moved into
//! PostgreSQL, then used there as it was used before.

use clap::Parser;
use reqwest::{Method, StatusCode};
use serde_json::json;

use rescind_host::cli::{Cli, Exit};
use rescind_tests::erp_server::{ErpServer, Scripted};

use crate::api_cancel::{SIGNING_KEY, configure_job};
use crate::service::{ADMIN, TestDatabase, TestService, sample_order};

/// Runs `rescind migrate-store` in-process; answers its exit status.
pub(crate) async fn migrate_store(from: &std::path::Path, to: &str) -> Exit {
    let line = vec![
        "rescind".to_owned(),
        "migrate-store".to_owned(),
        "--from".to_owned(),
        from.display().to_string(),
        "--to".to_owned(),
        to.to_owned(),
    ];
    tokio::task::spawn_blocking(move || Cli::try_parse_from(line).expect("valid arguments").run())
        .await
        .expect("the command ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_store_answers_as_before_and_delivers_its_queued_jobs() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    // A host on SQLite, used for a while: configuration, a key, orders,
    // cancellations (one behind an Idempotency-Key) and a queued job.
    let before =
        TestService::start_on(tempfile::tempdir().expect("dir"), None, false, |_| {}).await;
    before.configure_insite().await;
    configure_job(
        &before,
        &erp.url(""),
        &erp.authority(),
        json!({"maxAttempts": 3, "initialBackoffMs": 10, "maxBackoffMs": 20}),
    )
    .await;
    let platform = before.key("service", None).await;
    before.put_order("SO-M1", &sample_order("C-1")).await;
    before.put_order("SO-M2", &sample_order("C-2")).await;
    let partial = before
        .send(
            Method::POST,
            "/v1/orders/SO-M1/cancellations",
            Some(&platform),
            Some(&json!({"cancellationReason": "OUT_OF_STOCK", "items": [{"orderItemReference": 2}]})),
            &[("idempotency-key", "before-the-move")],
        )
        .await;
    assert_eq!(partial.status, StatusCode::CREATED, "{}", partial.body);
    let full = before
        .cancel("SO-M2", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(full.status, StatusCode::CREATED, "{}", full.body);
    let queued: Vec<String> = [&partial, &full]
        .iter()
        .flat_map(|a| {
            a.body["erpSync"]["jobs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|job| job["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(queued.len(), 2, "both cancellations queued a job");
    let audit_before = before
        .call(Method::GET, "/v1/admin/audit", Some(ADMIN), None)
        .await
        .body;
    let order_before = before.order("SO-M1").await;
    let dir = before.stop().await;

    let database = std::sync::Arc::new(TestDatabase::create().await);
    assert_eq!(
        migrate_store(dir.path(), &database.url).await,
        Exit::SUCCESS
    );
    // A second run finds the target in use and changes nothing.
    assert_eq!(
        migrate_store(dir.path(), &database.url).await,
        Exit::FAILURE
    );

    // The first replica runs on the old data directory (its key file and
    // plugins), now on PostgreSQL, with workers.
    erp.script([
        Scripted::json(201, r#"{"id": "ERP-M1"}"#),
        Scripted::json(201, r#"{"id": "ERP-M2"}"#),
    ]);
    let after = TestService::start_on(dir, Some(database), true, |_| {}).await;
    assert_eq!(after.order("SO-M1").await, order_before);
    for job in &queued {
        let settled = crate::hotload_support::settled_job(&after, job).await;
        assert_eq!(settled["state"], "succeeded", "{settled}");
    }
    // Delivered signed with the migrated (still sealed) secret: the ERP
    // checks every signature.
    assert_eq!(erp.requests().len(), 2);
    // The key made before the move still works; the retry of a request
    // made before the move replays its answer.
    let replay = after
        .send(
            Method::POST,
            "/v1/orders/SO-M1/cancellations",
            Some(&platform),
            Some(&json!({"cancellationReason": "OUT_OF_STOCK", "items": [{"orderItemReference": 2}]})),
            &[("idempotency-key", "before-the-move")],
        )
        .await;
    assert_eq!(replay.status, StatusCode::CREATED, "{}", replay.body);
    assert_eq!(
        replay.body["internalRequestId"],
        partial.body["internalRequestId"]
    );
    // The audit log carries on after its copied entries.
    let a = after
        .call(
            Method::PUT,
            "/v1/admin/websites/outlet",
            Some(ADMIN),
            Some(&json!({ "allowCancellationRequest": true })),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let audit_after = after
        .call(Method::GET, "/v1/admin/audit", Some(ADMIN), None)
        .await
        .body;
    let entries = |log: &serde_json::Value| log.as_array().cloned().unwrap_or_default();
    assert_eq!(
        entries(&audit_after).len(),
        entries(&audit_before).len() + 1
    );
    assert_eq!(&entries(&audit_after)[1..], &entries(&audit_before)[..]);
    // And a new cancellation goes through.
    let rest = after
        .cancel("SO-M1", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(rest.status, StatusCode::CREATED, "{}", rest.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_without_a_store_is_refused() {
    let empty = tempfile::tempdir().expect("dir");
    let database = TestDatabase::create().await;
    assert_eq!(
        migrate_store(empty.path(), &database.url).await,
        Exit::FAILURE
    );
}

/// The ERP exchange an attempt recorded on SQLite is the same on
/// PostgreSQL after the move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_erp_exchange_of_an_attempt_moves_with_its_job() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    erp.script([Scripted::json(201, r#"{"id": "ERP-X1"}"#)]);
    let before = TestService::start_on(tempfile::tempdir().expect("dir"), None, true, |_| {}).await;
    before.configure_insite().await;
    configure_job(
        &before,
        &erp.url(""),
        &erp.authority(),
        json!({"maxAttempts": 1, "initialBackoffMs": 10, "maxBackoffMs": 20}),
    )
    .await;
    let job = crate::hotload_support::cancel_new_order(&before, "SO-X1").await;
    let settled = crate::hotload_support::settled_job(&before, &job).await;
    assert_eq!(settled["state"], "succeeded", "{settled}");
    assert_eq!(settled["attemptHistory"][0]["exchange"][0]["status"], 201);
    let dir = before.stop().await;

    let database = std::sync::Arc::new(TestDatabase::create().await);
    assert_eq!(
        migrate_store(dir.path(), &database.url).await,
        Exit::SUCCESS
    );
    let after = TestService::start_on(dir, Some(database), false, |_| {}).await;
    assert_eq!(crate::hotload_support::job(&after, &job).await, settled);
}
