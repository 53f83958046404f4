//! Named API keys: listed without their tokens, revoked for the very next
//! request, expired at their time, last use recorded at most once a minute;
//! and what a customer key sees of the jobs of its cancellations.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use reqwest::{Method, StatusCode};
use rescind_host::api::{AppState, Auth, LAST_USED_INTERVAL, router};
use rescind_host::store::{Store, StoreOptions};
use serde_json::{Value, json};

use rescind_tests::erp_server::{ErpServer, Scripted};

use crate::api_cancel::{SIGNING_KEY, configure_job};
use crate::service::{ADMIN, TestService, sample_order};

async fn create(service: &TestService, body: Value) -> Value {
    let a = service
        .call(Method::POST, "/v1/admin/api-keys", Some(ADMIN), Some(&body))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body
}

async fn listed(service: &TestService, id: &str) -> Option<Value> {
    let a = service
        .call(Method::GET, "/v1/admin/api-keys", Some(ADMIN), None)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body
        .as_array()
        .expect("a list")
        .iter()
        .find(|k| k["id"] == id)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_by_the_very_next_request() {
    let service = TestService::start_without_workers().await;
    let key = create(&service, json!({"name": "ci", "role": "service"})).await;
    let token = key["token"].as_str().unwrap().to_owned();
    let id = key["id"].as_str().unwrap().to_owned();
    // Used many times first, so that the keys the host keeps in memory
    // (on SQLite) hold it when it is revoked.
    for _ in 0..5 {
        let a = service
            .call(Method::GET, "/v1/admin/jobs", Some(&token), None)
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    let a = service
        .call(
            Method::DELETE,
            &format!("/v1/admin/api-keys/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    let a = service
        .call(Method::GET, "/v1/admin/jobs", Some(&token), None)
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(a.code(), "unauthenticated");
    assert_eq!(listed(&service, &id).await, None, "gone from the list");
    let a = service
        .call(
            Method::DELETE,
            &format!("/v1/admin/api-keys/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    assert_eq!(a.code(), "api-key-not-found");
    // Still refused after a restart: revocation is in the database.
    let service = service.restart().await;
    let a = service
        .call(Method::GET, "/v1/admin/jobs", Some(&token), None)
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
}

/// The keys a host keeps in memory are dropped by every key write: a key
/// created after others were used signs in at once, and revoking one of
/// two keys leaves the other working, each answered from the table read
/// again after the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_created_and_revoked_between_requests_are_seen_by_the_next_one() {
    let service = TestService::start_without_workers().await;
    let token = |key: &Value| key["token"].as_str().unwrap().to_owned();
    let jobs = |token: String| {
        let service = &service;
        async move {
            service
                .call(Method::GET, "/v1/admin/jobs", Some(&token), None)
                .await
                .status
        }
    };
    let first = create(&service, json!({"name": "first", "role": "service"})).await;
    assert_eq!(jobs(token(&first)).await, StatusCode::OK);
    let second = create(&service, json!({"name": "second", "role": "service"})).await;
    assert_eq!(
        jobs(token(&second)).await,
        StatusCode::OK,
        "a new key at once"
    );
    assert_eq!(jobs(token(&first)).await, StatusCode::OK);
    let a = service
        .call(
            Method::DELETE,
            &format!("/v1/admin/api-keys/{}", first["id"].as_str().unwrap()),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(jobs(token(&first)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        jobs(token(&second)).await,
        StatusCode::OK,
        "the other key stays"
    );
    // A token no key has, after the table is kept: refused too.
    let unknown = rescind_host::keys::new_token();
    assert_eq!(jobs(unknown).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_listed_by_name_and_prefix_never_by_token() {
    let service = TestService::start_without_workers().await;
    let expires = "2999-01-01T00:00:00Z";
    let key = create(
        &service,
        json!({"name": "storefront", "role": "customer", "customerNumber": "C-1", "expiresAt": expires}),
    )
    .await;
    let token = key["token"].as_str().unwrap();
    assert!(token.starts_with("rsk_") && token.len() == 68, "{token}");
    assert_eq!(key["expiresAt"], expires);
    let a = service
        .call(Method::GET, "/v1/admin/api-keys", Some(ADMIN), None)
        .await;
    assert!(!a.body.to_string().contains(token), "{}", a.body);
    assert!(!a.body.to_string().contains(&token[8..]), "{}", a.body);
    let shown = listed(&service, key["id"].as_str().unwrap())
        .await
        .expect("listed");
    assert_eq!(shown["name"], "storefront");
    assert_eq!(shown["role"], "customer");
    assert_eq!(shown["customerNumber"], "C-1");
    assert_eq!(shown["tokenPrefix"], format!("{}…", &token[..8]));
    assert_eq!(shown["createdBy"], "admin token");
    assert_eq!(shown["expiresAt"], expires);
    assert_eq!(shown["lastUsedAt"], Value::Null, "never used yet");
    assert!(
        shown["createdAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(shown.get("token").is_none());

    // A key made by a key says which.
    let admin_key = create(&service, json!({"name": "ops", "role": "admin"})).await;
    let a = service
        .call(
            Method::POST,
            "/v1/admin/api-keys",
            Some(admin_key["token"].as_str().unwrap()),
            Some(&json!({"name": "made by ops", "role": "service"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let made = listed(&service, a.body["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        made["createdBy"],
        format!("key \"ops\" ({})", admin_key["id"].as_str().unwrap())
    );
}

/// Last use is written when a key is first used, and not again by the next
/// requests within the minute (checked without waiting a minute; the test
/// below moves a clock instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_use_is_recorded_once_not_per_request() {
    let service = TestService::start_without_workers().await;
    let key = create(&service, json!({"name": "ci", "role": "service"})).await;
    let (token, id) = (key["token"].as_str().unwrap(), key["id"].as_str().unwrap());
    let a = service
        .call(Method::GET, "/v1/admin/jobs", Some(token), None)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let first = listed(&service, id).await.unwrap()["lastUsedAt"].clone();
    assert!(first.is_string(), "set by the first use: {first}");
    for _ in 0..3 {
        let a = service
            .call(Method::GET, "/v1/admin/jobs", Some(token), None)
            .await;
        assert_eq!(a.status, StatusCode::OK);
    }
    assert_eq!(listed(&service, id).await.unwrap()["lastUsedAt"], first);
}

/// The service's API on a loopback socket over a real store, with a clock
/// the test moves.
struct ClockedApi {
    base: String,
    clock: Arc<AtomicI64>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl ClockedApi {
    async fn start() -> ClockedApi {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
        let clock = Arc::new(AtomicI64::new(rescind_host::store::now_ms()));
        let reading = Arc::clone(&clock);
        let state = AppState::new(store, Some(ADMIN)).with_auth(Arc::new(
            Auth::new(Some(ADMIN)).with_clock(Arc::new(move || reading.load(Ordering::SeqCst))),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        ClockedApi {
            base,
            clock,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn last_used(&self, id: &str) -> Value {
        let (_, keys) = self
            .call(Method::GET, "/v1/admin/api-keys", ADMIN, None)
            .await;
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .map(|k| k["lastUsedAt"].clone())
            .unwrap_or(Value::Null)
    }
}

fn rfc3339(ms: i64) -> String {
    rescind_host::keys::format_time(ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_use_moves_at_most_once_a_minute_and_expiry_is_to_the_millisecond() {
    let api = ClockedApi::start().await;
    let interval = LAST_USED_INTERVAL.as_millis() as i64;
    assert_eq!(interval, 60_000);
    let start = api.clock.load(Ordering::SeqCst);
    let expires = start + 10 * interval;
    let (status, key) = api
        .call(
            Method::POST,
            "/v1/admin/api-keys",
            ADMIN,
            Some(json!({"name": "ci", "role": "service", "expiresAt": rfc3339(expires)})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let (token, id) = (key["token"].as_str().unwrap(), key["id"].as_str().unwrap());
    let (status, _) = api.call(Method::GET, "/v1/admin/jobs", token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(api.last_used(id).await, rfc3339(start));

    api.advance(interval - 1);
    api.call(Method::GET, "/v1/admin/jobs", token, None).await;
    assert_eq!(api.last_used(id).await, rfc3339(start), "within the minute");

    api.advance(1);
    api.call(Method::GET, "/v1/admin/jobs", token, None).await;
    assert_eq!(
        api.last_used(id).await,
        rfc3339(start + interval),
        "a minute on"
    );

    let now = api.clock.load(Ordering::SeqCst);
    api.advance(expires - now - 1);
    let (status, _) = api.call(Method::GET, "/v1/admin/jobs", token, None).await;
    assert_eq!(status, StatusCode::OK, "a millisecond before its expiry");
    api.advance(1);
    let (status, problem) = api.call(Method::GET, "/v1/admin/jobs", token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert_eq!(problem["code"], "unauthenticated");
}

/// A customer sees each of its cancellation's jobs by definition and state;
/// what the plugin or the ERP wrote (attempts, the ERP's reference, the
/// error text) is for staff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_sees_the_state_of_its_jobs_and_nothing_the_erp_wrote() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    let service = TestService::start().await;
    service.configure_insite().await;
    configure_job(
        &service,
        &erp.url(""),
        &erp.authority(),
        json!({"maxAttempts": 1, "initialBackoffMs": 1, "maxBackoffMs": 1}),
    )
    .await;
    let customer = service.key("customer", Some("C-1")).await;
    let staff = service.key("service", None).await;

    // One job accepted (with a reference), one rejected (with an error).
    let mut ids = Vec::new();
    for (number, answer) in [
        ("SO-1", Scripted::json(201, r#"{"id": "ERP-SIGNED"}"#)),
        (
            "SO-2",
            Scripted::json(422, r#"{"error": "order SO-2 is already shipped"}"#),
        ),
    ] {
        erp.script([answer]);
        service.put_order(number, &sample_order("C-1")).await;
        let a = service
            .call(
                Method::POST,
                &format!("/v1/orders/{number}/cancellations"),
                Some(&customer),
                Some(&json!({})),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        let job = &a.body["erpSync"]["jobs"][0];
        assert_eq!(job["state"], "queued");
        for field in ["attempts", "erpReference", "lastError"] {
            assert_eq!(job[field], Value::Null, "{field} in the customer's answer");
        }
        let id = a.body["internalRequestId"].as_str().unwrap().to_owned();
        let job = job["id"].as_str().unwrap().to_owned();
        crate::hotload_support::settled_job(&service, &job).await;
        ids.push(id);
    }
    for (id, state) in ids.iter().zip(["succeeded", "failed"]) {
        let path = format!("/v1/cancellations/{id}");
        let mine = service
            .call(Method::GET, &path, Some(&customer), None)
            .await;
        assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
        let job = &mine.body["erpSync"]["jobs"][0];
        assert_eq!(job["state"], state, "{}", mine.body);
        assert_eq!(job["definition"], "OrderCancel");
        for field in ["attempts", "erpReference", "lastError"] {
            assert!(job.get(field).is_some(), "{field} is there, as null");
            assert_eq!(job[field], Value::Null, "{field}: {}", mine.body);
        }
        for token in [staff.as_str(), ADMIN] {
            let theirs = service.call(Method::GET, &path, Some(token), None).await;
            let job = &theirs.body["erpSync"]["jobs"][0];
            assert_eq!(job["attempts"], 1, "{}", theirs.body);
            match state {
                "succeeded" => assert_eq!(job["erpReference"], "ERP-SIGNED"),
                _ => assert!(job["lastError"].is_string(), "{}", theirs.body),
            }
        }
    }
}

/// A key made before keys had names keeps working after the upgrade, listed
/// under a name that says so and without a token prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_made_before_names_still_work_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let token = rescind_host::keys::new_token();
    {
        // The schema before named keys: migrations 0001 to 0003.
        let old = crate::store_schema::database_as_of(dir.path(), 3);
        old.execute(
            "INSERT INTO api_keys (token_sha256, role, customer_number, created_at)
             VALUES (?1, 'customer', 'C-1', 1725000000000)",
            [rescind_host::keys::token_digest(&token)],
        )
        .unwrap();
    }
    let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
    let keys = store.api_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].name, "unnamed (created before key names)");
    assert_eq!(keys[0].token_prefix, None);
    assert_eq!(keys[0].customer_number.as_deref(), Some("C-1"));
    assert_eq!(keys[0].created_at_ms, 1_725_000_000_000);
    let caller = Auth::new(None)
        .authenticate(&store, &token)
        .await
        .unwrap()
        .expect("the old key still signs in");
    assert_eq!(caller.customer_number.as_deref(), Some("C-1"));
    store.close().await;
}
