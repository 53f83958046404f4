//! Starts the real service (store, router, workers) on a real 127.0.0.1
//! socket with a temporary data directory, and talks to it over HTTP.
//!
//! The store is the one the test binary names in its `BACKEND`: the
//! embedded SQLite file (binary `all`) or a PostgreSQL database of the
//! service's own (binary `postgres`, the same test bodies).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rescind_host::jobs::WorkerConfig;
use rescind_host::service::{self, PluginsConfig, RunningService, ServiceConfig};
use rescind_host::store::{SECRETS_KEY_FILE, Store};
use serde_json::{Value, json};

pub use rescind_tests::test_database::TestDatabase;

/// The store a test binary's services run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code, reason = "each test binary names one")]
pub enum Backend {
    /// The data directory's SQLite file.
    Sqlite,
    /// A PostgreSQL database created for the service.
    Postgres,
}

/// Whether this binary's services run on PostgreSQL.
#[allow(dead_code, reason = "for tests whose expectations differ by store")]
pub fn on_postgres() -> bool {
    crate::BACKEND == Backend::Postgres
}

/// A database for a new test service when the binary runs on PostgreSQL.
pub async fn test_database() -> Option<Arc<TestDatabase>> {
    match crate::BACKEND {
        Backend::Sqlite => None,
        Backend::Postgres => Some(Arc::new(TestDatabase::create().await)),
    }
}

/// The bootstrap admin token of every test service.
pub const ADMIN: &str = "test-admin-token-0123456789abcdef0123456789";

/// A running service under test.
pub struct TestService {
    /// The running service (taken on restart).
    pub running: Option<RunningService>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// Keeps the data directory alive.
    pub dir: tempfile::TempDir,
    /// Whether job workers run.
    pub workers: bool,
    /// The service's PostgreSQL database, when it runs on one (kept across
    /// restarts, dropped with the service).
    pub database: Option<Arc<TestDatabase>>,
    /// The test's changes to the default configuration.
    configure: Arc<dyn Fn(&mut ServiceConfig) + Send + Sync>,
}

/// An answer: status, headers and JSON body (`Value::Null` when empty or
/// not JSON).
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body.
    pub body: Value,
}

impl Answer {
    /// The problem `code`, if the answer is a problem.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// A compile cache shared by every service this test binary starts, so
/// that each bundled plugin is compiled once (a debug host takes seconds
/// per component) and every later start loads it from the cache.
pub fn shared_plugin_cache() -> PathBuf {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    CACHE
        .get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
        .to_owned()
}

/// The plugin settings of a test service: the shared compile cache, and no
/// folder watch unless a test names one.
pub fn plugins_config() -> PluginsConfig {
    PluginsConfig {
        cache_dir: Some(shared_plugin_cache()),
        ..PluginsConfig::default()
    }
}

/// Points a test service's configuration at its PostgreSQL database, if it
/// has one.
fn on_database(config: &mut ServiceConfig, database: Option<&TestDatabase>) {
    config.database_url = database.map(|d| d.url.clone());
}

/// The configuration of a test service on `dir`.
pub fn config(dir: PathBuf, workers: bool) -> ServiceConfig {
    let mut config = ServiceConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), dir);
    config.admin_token = Some(ADMIN.to_owned());
    config.plugins = plugins_config();
    if workers {
        config.workers = Some(WorkerConfig {
            workers: 2,
            lease: Duration::from_secs(60),
            // Tests wait for jobs: look often.
            poll_interval: Duration::from_millis(20),
        });
    } else {
        config.workers = None;
    }
    config
}

impl TestService {
    /// The running service's store, for tests that drive it directly.
    pub fn store(&self) -> &Store {
        &self.running.as_ref().expect("running").state.store
    }

    /// Starts a service with job workers on a fresh data directory.
    pub async fn start() -> TestService {
        Self::start_with(true).await
    }

    /// Starts a service without job workers: jobs stay queued.
    pub async fn start_without_workers() -> TestService {
        Self::start_with(false).await
    }

    async fn start_with(workers: bool) -> TestService {
        Self::start_configured(workers, |_| {}).await
    }

    /// Starts a service on a fresh data directory with the test defaults
    /// changed by `configure`; a restart keeps the changes.
    pub async fn start_configured(
        workers: bool,
        configure: impl Fn(&mut ServiceConfig) + Send + Sync + 'static,
    ) -> TestService {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = test_database().await;
        Self::start_on(dir, database, workers, configure).await
    }

    /// Starts another replica on this service's PostgreSQL database, with
    /// a data directory of its own and the same configuration changes:
    /// what several `rescind serve` processes behind a balancer are.
    #[allow(dead_code, reason = "the postgres binary's replica tests")]
    pub async fn replica(&self, workers: bool) -> TestService {
        assert!(
            self.database.is_some(),
            "replicas share a PostgreSQL database; this service runs on SQLite"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        // Replicas share the store, so they share the key sealing its
        // secrets: the operator copies the key file (or sets
        // RESCIND_SECRETS_KEY on each).
        std::fs::copy(
            self.dir.path().join(SECRETS_KEY_FILE),
            dir.path().join(SECRETS_KEY_FILE),
        )
        .expect("copy the secrets key file");
        let configure = Arc::clone(&self.configure);
        Self::start_on(dir, self.database.clone(), workers, move |config| {
            configure(config)
        })
        .await
    }

    /// Starts a service on `dir` (which may hold an earlier service's data
    /// directory) and, if given, a PostgreSQL database.
    pub async fn start_on(
        dir: tempfile::TempDir,
        database: Option<Arc<TestDatabase>>,
        workers: bool,
        configure: impl Fn(&mut ServiceConfig) + Send + Sync + 'static,
    ) -> TestService {
        let configure: Arc<dyn Fn(&mut ServiceConfig) + Send + Sync> = Arc::new(configure);
        let mut first = config(dir.path().to_owned(), workers);
        on_database(&mut first, database.as_deref());
        configure(&mut first);
        let running = service::start(first).await.expect("service starts");
        TestService {
            database,
            configure,
            base: format!("http://{}", running.addr),
            running: Some(running),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            dir,
            workers,
        }
    }

    /// Stops the service (cleanly) and answers its data directory.
    #[allow(dead_code, reason = "the postgres binary's migration test")]
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(running) = self.running.take() {
            running
                .shutdown(Duration::from_secs(10))
                .await
                .expect("clean shutdown");
        }
        self.dir
    }

    /// Stops the service and starts a new one on the same data directory.
    pub async fn restart(mut self) -> TestService {
        if let Some(running) = self.running.take() {
            running
                .shutdown(Duration::from_secs(10))
                .await
                .expect("clean shutdown");
        }
        let mut again = config(self.dir.path().to_owned(), self.workers);
        on_database(&mut again, self.database.as_deref());
        (self.configure)(&mut again);
        let running = service::start(again).await.expect("service restarts");
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
        self
    }

    /// Edits the service's database behind its back, the way an operator or
    /// a failing disk would: `sqlite` on the data directory's file, or
    /// `postgres` on the service's PostgreSQL database (each a batch of
    /// statements in its dialect, `$1` bound to `param`). Answers the rows
    /// the last statement changed.
    pub async fn edit_database(&self, sqlite: &str, postgres: &str, param: &str) -> u64 {
        match &self.database {
            None => {
                let db = rusqlite::Connection::open(self.dir.path().join("rescind.db"))
                    .expect("open the database");
                db.busy_timeout(Duration::from_secs(10))
                    .expect("busy timeout");
                if sqlite.contains("$1") {
                    db.execute(sqlite, [param]).expect("edit the database") as u64
                } else {
                    db.execute_batch(sqlite).expect("edit the database");
                    0
                }
            }
            Some(database) => {
                use sqlx::Connection;
                let mut db = sqlx::PgConnection::connect(&database.url)
                    .await
                    .expect("connect to the database");
                if postgres.contains("$1") {
                    sqlx::query(postgres)
                        .bind(param)
                        .execute(&mut db)
                        .await
                        .expect("edit the database")
                        .rows_affected()
                } else {
                    sqlx::raw_sql(postgres)
                        .execute(&mut db)
                        .await
                        .expect("edit the database");
                    0
                }
            }
        }
    }

    /// The single number a `SELECT COUNT(*) …` (the same text on either
    /// store) reads from the service's database.
    pub async fn count_rows(&self, query: &str) -> i64 {
        match &self.database {
            None => rusqlite::Connection::open(self.dir.path().join("rescind.db"))
                .expect("open the database")
                .query_row(query, [], |row| row.get(0))
                .expect("count"),
            Some(database) => {
                use sqlx::Connection;
                let mut db = sqlx::PgConnection::connect(&database.url)
                    .await
                    .expect("connect to the database");
                sqlx::query_scalar(query)
                    .fetch_one(&mut db)
                    .await
                    .expect("count")
            }
        }
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        self.send(method, path, token, body, &[]).await
    }

    /// `GET /v1/cancellations/{id}` with the admin token.
    pub async fn cancellation(&self, id: &str) -> Answer {
        self.call(
            Method::GET,
            &format!("/v1/cancellations/{id}"),
            Some(ADMIN),
            None,
        )
        .await
    }

    /// Sends a request with extra headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request sent");
        Self::answer(response).await
    }

    /// Sends raw bytes with a content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(bytes);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Self::answer(request.send().await.expect("request sent")).await
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Creates an API key (named after its role and customer) and returns
    /// its token.
    pub async fn key(&self, role: &str, customer: Option<&str>) -> String {
        let name = format!("{role} {}", customer.unwrap_or("key"));
        let mut body = json!({ "name": name, "role": role });
        if let Some(c) = customer {
            body["customerNumber"] = json!(c);
        }
        let answer = self
            .call(Method::POST, "/v1/admin/api-keys", Some(ADMIN), Some(&body))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body["token"].as_str().expect("token").to_owned()
    }

    /// Applies the insite preset and lets customers cancel on website `main`.
    pub async fn configure_insite(&self) {
        let a = self
            .call(Method::POST, "/v1/admin/presets/insite", Some(ADMIN), None)
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let a = self
            .call(
                Method::PUT,
                "/v1/admin/websites/main",
                Some(ADMIN),
                Some(&json!({ "allowCancellationRequest": true })),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }

    /// Connection `erp` (`connection` is its body) and an enabled
    /// `OrderCancel` definition running `processor` with `retry`.
    pub async fn configure_erp_job(&self, connection: &Value, processor: &str, retry: Value) {
        let a = self
            .call(
                Method::PUT,
                "/v1/admin/connections/erp",
                Some(ADMIN),
                Some(connection),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let a = self
            .call(
                Method::PUT,
                "/v1/admin/job-definitions/OrderCancel",
                Some(ADMIN),
                Some(&json!({"jobType": "Execution", "connection": "erp",
                             "integrationProcessor": processor,
                             "parameters": [{"name": "OrderNumber", "valueType": "String", "defaultValue": "", "prompt": "Order Number"}],
                             "retry": retry, "enabled": true})),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }

    /// Stores an order.
    pub async fn put_order(&self, number: &str, order: &Value) {
        let a = self
            .call(
                Method::PUT,
                &format!("/v1/orders/{number}"),
                Some(ADMIN),
                Some(order),
            )
            .await;
        assert!(a.status.is_success(), "{}", a.body);
    }

    /// Reads an order.
    pub async fn order(&self, number: &str) -> Value {
        let a = self
            .call(
                Method::GET,
                &format!("/v1/orders/{number}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        a.body
    }

    /// Cancels as the admin.
    pub async fn cancel(&self, number: &str, body: &Value) -> Answer {
        self.call(
            Method::POST,
            &format!("/v1/orders/{number}/cancellations"),
            Some(ADMIN),
            Some(body),
        )
        .await
    }
}

/// The body of a connection for the `webhook` plugin: it posts to
/// `base_url` + `/hooks/cancel` and signs with `signing_key`, under the
/// secret name the plugin reads (`signingKey`).
pub fn webhook_connection(base_url: &str, host: &str, signing_key: &str) -> Value {
    json!({"baseUrl": base_url, "allowedHosts": [host],
           "settings": {"path": "/hooks/cancel"},
           "secrets": {"signingKey": signing_key}})
}

/// The docs/api.md sample order: chair, warranty, discount; authorized card
/// payment; existing and expected stock; a pending approval.
pub fn sample_order(customer: &str) -> Value {
    json!({
        "businessCode": "B1", "customerNumber": customer, "website": "main",
        "status": "Submitted", "orderDate": "2024-09-01", "currency": "EUR",
        "erpOrderNumber": "ERP-1001",
        "lines": [
            {"lineNumber": 1, "sku": "CHAIR", "quantity": 2, "amountMinor": 20000, "taxMinor": 3800},
            {"lineNumber": 2, "sku": "WARRANTY", "quantity": 1, "amountMinor": 1500, "taxMinor": 285, "parentLine": 1},
            {"lineNumber": 3, "sku": "PROMO10", "quantity": 1, "amountMinor": -2000, "taxMinor": -380, "kind": "discount", "appliesTo": [1]}
        ],
        "payments": [{"id": "pay-1", "method": "card", "authorizedMinor": 23205, "depositedMinor": 0}],
        "allocations": [
            {"lineNumber": 1, "warehouse": "W1", "quantity": 2, "kind": "existing"},
            {"lineNumber": 2, "warehouse": "W1", "quantity": 1, "kind": "expected"}
        ],
        "approval": {"state": "pending"},
        "tracking": {"channel": "online", "session": "123|abc", "cuid": "09|Z0"}
    })
}

/// A two-product order paid in full by a deposited (captured) payment.
pub fn deposited_order(customer: &str) -> Value {
    json!({
        "businessCode": "B1", "customerNumber": customer, "website": "main",
        "status": "Submitted", "orderDate": "2024-09-01", "currency": "EUR",
        "lines": [
            {"lineNumber": 1, "sku": "DESK", "quantity": 1, "amountMinor": 30000, "taxMinor": 5700},
            {"lineNumber": 2, "sku": "LAMP", "quantity": 3, "amountMinor": 6000, "taxMinor": 1140}
        ],
        "payments": [{"id": "pay-9", "method": "card", "authorizedMinor": 42840, "depositedMinor": 42840}]
    })
}
