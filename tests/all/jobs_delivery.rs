//! Jobs delivered for real: the service's workers run the bundled `webhook`
//! plugin in the plugin runtime against a loopback ERP.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rescind_host::store::JobState;
use rescind_tests::erp_server::{ErpServer, Scripted};
use serde_json::{Value, json};

use crate::hotload_support::cancel_new_order;
use crate::service::{ADMIN, TestService, sample_order};

const SIGNING_KEY: &str = "test-signing-key-for-the-webhook";

async fn configure(service: &TestService, erp: &ErpServer, max_attempts: u32) {
    crate::hotload_support::configure_with_key(service, erp, "webhook", max_attempts, SIGNING_KEY)
        .await;
}

/// Cancels SO-1 and returns (cancellation id, job id).
async fn cancel(service: &TestService) -> (String, String) {
    service.put_order("SO-1", &sample_order("C-1")).await;
    let a = service
        .cancel(
            "SO-1",
            &json!({"cancellationReason": "OUT_OF_STOCK", "invoiceReference": "IDE12345678901"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["erpSync"]["state"], "queued");
    (
        a.body["internalRequestId"].as_str().expect("id").to_owned(),
        a.body["erpSync"]["jobs"][0]["id"]
            .as_str()
            .expect("job")
            .to_owned(),
    )
}

/// Waits until the ERP got the job's one request (bounded: 12 s): its
/// attempt is under way.
async fn attempt_under_way(erp: &ErpServer) {
    for _ in 0..600 {
        if !erp.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(erp.requests().len(), 1, "the attempt is under way");
}

/// Polls the job until it reaches a final state (bounded: 30 s).
async fn settled_job(service: &TestService, job: &str) -> Value {
    for _ in 0..600 {
        let a = service
            .call(
                Method::GET,
                &format!("/v1/admin/jobs/{job}"),
                Some(ADMIN),
                None,
            )
            .await;
        if ["succeeded", "failed"].contains(&a.body["state"].as_str().unwrap_or("")) {
            return a.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {job} did not settle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_reaches_the_erp_once_and_the_job_succeeds() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    erp.script([Scripted::json(201, r#"{"id": "ERP-CXL-77"}"#)]);
    let service = TestService::start().await;
    configure(&service, &erp, 3).await;
    let (id, job) = cancel(&service).await;

    let settled = settled_job(&service, &job).await;
    assert_eq!(settled["state"], "succeeded", "{settled}");
    assert_eq!(settled["erpReference"], "ERP-CXL-77");
    let history = settled["attemptHistory"].as_array().expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["outcome"], "accepted");
    assert!(
        history[0]["pluginVersion"]
            .as_str()
            .unwrap_or("")
            .starts_with("sha256:")
    );

    let requests = erp.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/hooks/cancel");
    assert_eq!(
        request.header("idempotency-key"),
        settled["requestId"].as_str()
    );
    let body: Value = serde_json::from_slice(&request.body).expect("json body");
    assert_eq!(body["orderNumber"], "SO-1");
    assert_eq!(body["erpOrderNumber"], "ERP-1001");
    assert_eq!(body["full"], true);
    assert_eq!(body["cancellationReason"], "OUT_OF_STOCK");
    assert_eq!(body["invoiceReference"], "IDE12345678901");
    assert_eq!(body["allLineNumbers"], json!([1, 2, 3]));
    assert_eq!(body["parameters"]["OrderNumber"], "SO-1");
    // The secret is used to sign, never sent nor logged.
    assert!(!String::from_utf8_lossy(&request.body).contains(SIGNING_KEY));
    assert!(!settled.to_string().contains(SIGNING_KEY));

    let c = service.cancellation(&id).await;
    assert_eq!(c.body["erpSync"]["state"], "succeeded");
    assert_eq!(c.body["erpSync"]["jobs"][0]["erpReference"], "ERP-CXL-77");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_answering_503_then_200_is_retried_and_succeeds() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    erp.script([
        Scripted::json(503, r#"{"message": "maintenance"}"#),
        Scripted::json(200, r#"{"reference": "ERP-2"}"#),
    ]);
    let service = TestService::start().await;
    configure(&service, &erp, 5).await;
    let (_, job) = cancel(&service).await;
    let settled = settled_job(&service, &job).await;
    assert_eq!(settled["state"], "succeeded", "{settled}");
    assert_eq!(settled["attempts"], 2);
    assert_eq!(settled["erpReference"], "ERP-2");
    let history = settled["attemptHistory"].as_array().expect("history");
    assert_eq!(history[0]["outcome"], "transient");
    assert_eq!(history[1]["outcome"], "accepted");
    let requests = erp.requests();
    assert_eq!(requests.len(), 2);
    // The same idempotency key and body on both attempts.
    assert_eq!(
        requests[0].header("idempotency-key"),
        requests[1].header("idempotency-key")
    );
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_fails_the_job_at_once_with_the_erps_message() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    erp.script([Scripted::json(
        422,
        r#"{"message": "order ERP-1001 is already invoiced"}"#,
    )]);
    let service = TestService::start().await;
    configure(&service, &erp, 5).await;
    let (id, job) = cancel(&service).await;
    let settled = settled_job(&service, &job).await;
    assert_eq!(settled["state"], "failed", "{settled}");
    assert_eq!(settled["attempts"], 1);
    assert!(
        settled["lastError"]
            .as_str()
            .unwrap_or("")
            .contains("order ERP-1001 is already invoiced"),
        "{settled}"
    );
    assert_eq!(erp.requests().len(), 1);
    let c = service.cancellation(&id).await;
    assert_eq!(c.body["erpSync"]["state"], "failed");

    // Retried by hand, it reaches the ERP again (which now accepts).
    erp.script([Scripted::json(200, r#"{"id": "ERP-3"}"#)]);
    let r = service
        .call(
            Method::POST,
            &format!("/v1/admin/jobs/{job}/retry"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let settled = settled_job(&service, &job).await;
    assert_eq!(settled["state"], "succeeded", "{settled}");
    assert_eq!(erp.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_signed_with_a_stale_key_is_refused_by_the_erp_and_fails() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    erp.script([Scripted::json(
        201,
        r#"{"id": "never-for-a-bad-signature"}"#,
    )]);
    let service = TestService::start().await;
    crate::hotload_support::configure_with_key(&service, &erp, "webhook", 3, "a-stale-key").await;
    let (_, job) = cancel(&service).await;
    let settled = settled_job(&service, &job).await;
    // 401 is a rejection: failed at once, not retried.
    assert_eq!(settled["state"], "failed", "{settled}");
    assert_eq!(settled["attempts"], 1);
    assert!(
        settled["lastError"]
            .as_str()
            .unwrap_or("")
            .contains("signature refused"),
        "{settled}"
    );
    assert_eq!(erp.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_host_died_is_resumed_at_once_when_it_restarts() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    erp.script([Scripted::json(200, r#"{"id": "ERP-4"}"#)]);
    let service = TestService::start_without_workers().await;
    configure(&service, &erp, 3).await;
    let (_, job) = cancel(&service).await;
    // A worker claims the job for a minute and its host dies. On
    // PostgreSQL, a restarting replica cannot tell a dead replica's jobs
    // from a live one's: the job waits for its lease (two seconds there),
    // then the attempt is recorded as cut short by the lease.
    let (lease_ms, cut_short) = if crate::service::on_postgres() {
        (2_000, "lease-expired")
    } else {
        (60_000, "interrupted")
    };
    let claimed = service
        .running
        .as_ref()
        .expect("running")
        .state
        .store
        .claim_due_jobs("worker-that-died", 1, lease_ms)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);

    // The restarted host takes it up without waiting for the lease (a
    // lease that expires while the host runs is `jobs_queue`'s case).
    let mut service = service;
    service.workers = true;
    let service = service.restart().await;
    let settled = settled_job(&service, &job).await;
    assert_eq!(settled["state"], "succeeded", "{settled}");
    let history = settled["attemptHistory"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["worker"], "worker-that-died");
    assert_eq!(history[0]["outcome"], cut_short);
    assert_eq!(history[1]["outcome"], "accepted");
    assert_ne!(history[1]["worker"], "worker-that-died");
    assert_eq!(erp.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_cancellation_with_an_unknown_reason_is_never_sent_as_another_reason() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    let service = TestService::start_without_workers().await;
    configure(&service, &erp, 3).await;
    let (cancellation, job) = cancel(&service).await;
    // Someone edits the database by hand: the reason is one no ERP knows.
    let changed = service
        .edit_database(
            "UPDATE cancellations SET record = json_set(record, '$.reason', 'OUT_OF_STOCKS') \
             WHERE id = $1",
            "UPDATE cancellations \
             SET record = jsonb_set(record::jsonb, '{reason}', '\"OUT_OF_STOCKS\"')::text \
             WHERE id = $1",
            &cancellation,
        )
        .await;
    assert_eq!(changed, 1);

    let mut service = service;
    service.workers = true;
    let service = service.restart().await;
    let settled = settled_job(&service, &job).await;
    assert_eq!(settled["state"], "failed", "{settled}");
    let history = settled["attemptHistory"].as_array().expect("history");
    assert_eq!(history.len(), 1, "not retried: {settled}");
    assert_eq!(history[0]["outcome"], "misconfigured");
    let error = settled["lastError"].as_str().expect("an error");
    assert!(
        error.contains("unknown cancellation reason \"OUT_OF_STOCKS\""),
        "{error}"
    );
    assert!(
        erp.requests().is_empty(),
        "the ERP was told: {:?}",
        erp.requests()
    );
    // The API does not answer a guess either.
    let view = service.cancellation(&cancellation).await;
    assert_eq!(
        view.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        view.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_enabled_definition_nothing_is_sent() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    let service = TestService::start().await;
    configure(&service, &erp, 3).await;
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/job-definitions/OrderCancel",
            Some(ADMIN),
            Some(&json!({"jobType": "Execution", "connection": "erp",
                         "integrationProcessor": "webhook", "enabled": false})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    service.put_order("SO-1", &sample_order("C-1")).await;
    let a = service
        .cancel("SO-1", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(a.body["erpSync"]["state"], "not-configured");
    assert_eq!(a.body["warnings"][0]["code"], "not-communicated-to-erp");
    // Readiness: the workers run.
    let r = service.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(erp.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_cancels_an_order_and_its_erp_receives_a_signed_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = rescind_host::service::ServiceConfig::new(
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
        dir.path(),
    );
    config.plugins = crate::service::plugins_config();
    rescind_host::demo::enable(&mut config);
    let running = rescind_host::service::start(config)
        .await
        .expect("demo starts");
    let token = running.admin_token.clone().expect("a demo admin token");
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let answer: Value = client
        .post(format!("{base}/v1/orders/SO-1001/cancellations"))
        .bearer_auth(&token)
        .json(&json!({"cancellationReason": "OUT_OF_STOCK"}))
        .send()
        .await
        .expect("cancel")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["erpSync"]["state"], "queued", "{answer}");
    let id = answer["internalRequestId"].as_str().expect("id");
    let mut state = Value::Null;
    for _ in 0..600 {
        let c: Value = client
            .get(format!("{base}/v1/cancellations/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        state = c["erpSync"].clone();
        if state["state"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state["state"], "succeeded", "{state}");
    let received: Value = client
        .get(format!("{base}/demo/erp/requests"))
        .send()
        .await
        .expect("ledger")
        .json()
        .await
        .expect("json");
    // One cancellation fans out to two job definitions: the ERP webhook and
    // the personalization service (SO-1001 is an online order).
    let received = received.as_array().expect("a list");
    assert_eq!(received.len(), 2, "{received:?}");
    let erp = received
        .iter()
        .find(|r| r["path"] == "/erp/cancellations")
        .expect("the ERP got the webhook");
    assert_eq!(erp["signatureValid"], true);
    assert_eq!(erp["body"]["orderNumber"], "SO-1001");
    let tracker = received
        .iter()
        .find(|r| r["path"] == "/tracker/api/v1_4/demo-site/order/cancel.pagex")
        .expect("the personalization service got the online cancellation");
    let form = tracker["body"].as_str().expect("a form body");
    assert!(form.contains("orderNo=SO-1001"), "{form}");
    let jobs = state["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 2, "{state}");
    let webhook_job = jobs
        .iter()
        .find(|j| j["definition"] == "OrderCancel")
        .expect("the OrderCancel job");
    assert_eq!(webhook_job["erpReference"], erp["erpReference"]);
    assert!(
        jobs.iter()
            .any(|j| j["definition"] == "PersonalizationCancel"),
        "{state}"
    );
    running
        .shutdown(Duration::from_secs(5))
        .await
        .expect("shutdown");
}

/// `rescind serve --demo` on a fresh data directory: the running service,
/// its admin token, base URL and a client.
async fn start_demo() -> (
    rescind_host::service::RunningService,
    String,
    String,
    reqwest::Client,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = rescind_host::service::ServiceConfig::new(
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
        dir.path(),
    );
    config.plugins = crate::service::plugins_config();
    rescind_host::demo::enable(&mut config);
    let running = rescind_host::service::start(config)
        .await
        .expect("demo starts");
    let token = running.admin_token.clone().expect("a demo admin token");
    let base = format!("http://{}", running.addr);
    (running, token, base, reqwest::Client::new(), dir)
}

/// Polls the cancellation until every job of it settled (bounded: 30 s);
/// answers its `erpSync`.
async fn settled_erp_sync(client: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    let mut sync = Value::Null;
    for _ in 0..600 {
        let c: Value = client
            .get(format!("{base}/v1/cancellations/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        sync = c["erpSync"].clone();
        if ["succeeded", "failed"].contains(&sync["state"].as_str().unwrap_or("")) {
            return sync;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the jobs of cancellation {id} did not settle: {sync}");
}

/// The requests the demo's personalization service received.
async fn tracker_requests(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let received: Value = client
        .get(format!("{base}/demo/erp/requests"))
        .send()
        .await
        .expect("ledger")
        .json()
        .await
        .expect("json");
    received
        .as_array()
        .expect("a list")
        .iter()
        .filter(|r| {
            let path = r["path"].as_str().unwrap_or("");
            path.starts_with("/tracker/") || path.starts_with("/smart-api/")
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_tells_the_personalization_service_only_of_the_cancellation_that_ends_an_order() {
    let (running, token, base, client, _dir) = start_demo().await;
    let cancel = |body: Value| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let answer: Value = client
                .post(format!("{base}/v1/orders/SO-1003/cancellations"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .expect("cancel")
                .json()
                .await
                .expect("json");
            answer
        }
    };

    // SO-1003 has two independent lines: cancelling one is partial, and
    // Optimizely, which cancels whole orders, must not hear of it.
    let first = cancel(json!({"items": [{"orderItemReference": 1}],
                              "cancellationReason": "CUSTOMER_SERVICE"}))
    .await;
    assert_eq!(first["full"], false, "{first}");
    assert_eq!(first["cancelledLines"], json!([1]));
    let jobs = first["erpSync"]["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 1, "{first}");
    assert_eq!(jobs[0]["definition"], "OrderCancel");
    assert_eq!(first["warnings"], json!([]));
    let id = first["internalRequestId"].as_str().expect("id");
    let sync = settled_erp_sync(&client, &base, &token, id).await;
    assert_eq!(sync["state"], "succeeded", "{sync}");
    assert_eq!(tracker_requests(&client, &base).await, Vec::<Value>::new());

    // The rest ends the order: both definitions apply, and the offline
    // order is deleted at Optimizely once.
    let rest = cancel(json!({"cancellationReason": "CUSTOMER_SERVICE"})).await;
    assert_eq!(rest["full"], true, "{rest}");
    assert_eq!(rest["cancelledLines"], json!([2]));
    let id = rest["internalRequestId"].as_str().expect("id");
    let sync = settled_erp_sync(&client, &base, &token, id).await;
    assert_eq!(sync["state"], "succeeded", "{sync}");
    let mut definitions: Vec<&str> = sync["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["definition"].as_str())
        .collect();
    definitions.sort_unstable();
    assert_eq!(definitions, ["OrderCancel", "PersonalizationCancel"]);
    let tracker = tracker_requests(&client, &base).await;
    assert_eq!(tracker.len(), 1, "{tracker:?}");
    assert_eq!(tracker[0]["method"], "DELETE");
    assert_eq!(tracker[0]["path"], "/smart-api/orders/offline/SO-1003");
    running
        .shutdown(Duration::from_secs(5))
        .await
        .expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_unfinished_attempts_back_to_the_queue() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    // The ERP takes longer than the shutdown's grace period.
    erp.script([Scripted::json(200, r#"{"id": "late"}"#).after(Duration::from_secs(8))]);
    let service = TestService::start().await;
    configure(&service, &erp, 3).await;
    let (_, job) = cancel(&service).await;
    attempt_under_way(&erp).await;

    let mut service = service;
    let running = service.running.take().expect("running");
    running
        .shutdown(Duration::from_millis(200))
        .await
        .expect("shutdown");
    service.workers = false;
    let service = service.restart().await;
    let j = service
        .call(
            Method::GET,
            &format!("/v1/admin/jobs/{job}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(j.body["state"], "retrying", "{}", j.body);
    let history = j.body["attemptHistory"].as_array().expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["outcome"], "released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_dropped_without_shutdown_stops_its_workers_as_a_crash_would() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    // The ERP answers only after 3 s: time to drop the host mid-attempt.
    erp.script([Scripted::json(200, r#"{"id": "late"}"#).after(Duration::from_secs(3))]);
    let mut service = TestService::start().await;
    configure(&service, &erp, 3).await;
    let (_, job) = cancel(&service).await;
    attempt_under_way(&erp).await;

    // The workers run on the plugin threads (on SQLite), which outlive
    // whatever started them unless the pool stops them.
    let store = service.store().clone();
    drop(service.running.take());
    // Past the ERP's answer: a worker still alive would have recorded it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let left = store.job(&job).await.expect("read").expect("the job");
    assert_eq!(left.state, JobState::Running, "{left:?}");
    assert_eq!(left.attempts, 1);
    assert_eq!(erp.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_workers_deliver_many_jobs_each_once_with_one_recorded_attempt() {
    const ORDERS: usize = 40;
    let erp = ErpServer::signed(SIGNING_KEY).await;
    // Every answer a little late, so that attempts end together and their
    // records are written in groups.
    erp.script((0..ORDERS).map(|n| {
        Scripted::json(201, &format!(r#"{{"id": "ERP-{n}"}}"#)).after(Duration::from_millis(5))
    }));
    let service = TestService::start_configured(true, |config| {
        if let Some(workers) = &mut config.workers {
            workers.workers = 8;
        }
    })
    .await;
    configure(&service, &erp, 3).await;
    let mut jobs = Vec::new();
    for n in 0..ORDERS {
        jobs.push(cancel_new_order(&service, &format!("SO-{n}")).await);
    }

    let mut request_ids = Vec::new();
    for job in &jobs {
        let settled = settled_job(&service, job).await;
        assert_eq!(settled["state"], "succeeded", "{settled}");
        let history = settled["attemptHistory"].as_array().expect("history");
        assert_eq!(history.len(), 1, "{settled}");
        assert_eq!(history[0]["outcome"], "accepted", "{settled}");
        request_ids.push(
            settled["requestId"]
                .as_str()
                .expect("request id")
                .to_owned(),
        );
    }
    let mut received: Vec<String> = erp
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").expect("key").to_owned())
        .collect();
    received.sort();
    request_ids.sort();
    assert_eq!(received, request_ids, "each job reached the ERP once");
    assert!(erp.overlapping().is_empty());
    let queue = service
        .call(
            Method::GET,
            "/v1/admin/jobs?state=running",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    assert_eq!(queue.body, json!([]), "no job is left running");
}

/// What a worker reads before an attempt, in one statement: the job's
/// definition, its connection with every secret opened, the cancellation,
/// and whether a shadow run wants the job; each piece `None` where the
/// store has no such thing, so that the worker can fail the job saying
/// which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_reads_its_definition_connection_secrets_and_cancellation_together() {
    let (service, _) = crate::jobs_records::service_with_jobs(0).await;
    // The job's connection `erp`, with `secrets`.
    let put_connection = async |secrets: Value| {
        let a = service
            .call(
                Method::PUT,
                "/v1/admin/connections/erp",
                Some(ADMIN),
                Some(
                    &json!({"baseUrl": "http://127.0.0.1:9", "allowedHosts": ["127.0.0.1:9"],
                             "settings": {"path": "/hooks/cancel"}, "secrets": secrets}),
                ),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    };
    put_connection(json!({"signingKey": SIGNING_KEY, "apiToken": "token-2"})).await;
    let (cancellation, job) = cancel(&service).await;
    let store = service.store();
    let job = store.job(&job).await.expect("read").expect("job");

    let input = store.attempt_input(&job).await.expect("input");
    let definition = input.definition.expect("definition");
    assert_eq!(definition.name, "OrderCancel");
    assert_eq!(definition.integration_processor, "webhook");
    let connection = input.connection.expect("connection");
    assert_eq!(connection.name, "erp");
    assert_eq!(connection.base_url, "http://127.0.0.1:9");
    assert_eq!(
        connection
            .secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        [("apiToken", "token-2"), ("signingKey", SIGNING_KEY)],
        "both secrets, opened"
    );
    let record = input.cancellation.expect("cancellation");
    assert_eq!(record.id, cancellation);
    assert_eq!(record.order_number, "SO-1");
    assert!(!input.shadow_run_wants_jobs, "no shadow run");

    // A connection without secrets: one row, no secret.
    put_connection(json!({})).await;
    let input = store.attempt_input(&job).await.expect("input");
    assert!(input.definition.is_some());
    assert!(input.connection.expect("connection").secrets.is_empty());
    assert!(input.cancellation.is_some());

    // A job whose definition is gone, and one that names no cancellation.
    let mut orphan = job.clone();
    orphan.definition = "Deleted".to_owned();
    orphan.cancellation_id = None;
    let input = store.attempt_input(&orphan).await.expect("input");
    assert!(input.definition.is_none());
    assert!(input.connection.is_none());
    assert!(input.cancellation.is_none());
    assert!(!input.shadow_run_wants_jobs);
}
