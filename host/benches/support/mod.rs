//! What the service benchmarks share: a service on loopback with a
//! temporary store, the admin calls that set it up, a sample order, and
//! the knobs and percentiles of the reports.

// Each benchmark uses a different subset.
#![allow(dead_code, unused_imports)]

pub mod results;
pub use results::{Row, write_results};

/// The allocator of the `rescind` binary (`host/src/main.rs`): the
/// benchmarks that run the service in their own process measure it with the
/// allocator it ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What `rescind serve` sets for its whole process before it starts
/// anything (transparent huge pages off, see
/// [`rescind_host::service::without_huge_pages`]; the C library's heap
/// trimming steady, [`rescind_host::service::steady_c_heap`]): each
/// benchmark calls it first, so that what it runs in its own process runs
/// as it ships.
pub fn as_served() {
    rescind_host::service::without_huge_pages();
    rescind_host::service::steady_c_heap();
}

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rescind_host::domain::Preset;
use rescind_host::domain::{
    Allocation, AllocationKind, AllocationState, Currency, Line, LineKind, LineState, Order,
    Payment,
};
use rescind_host::service::{self, RunningService, ServiceConfig};
use rescind_host::store::{AppliesTo, Connection, JobDefinition, JobParameter, RetryPolicy, Store};
use rescind_tests::serve_process::ServeProcess;
use serde_json::{Value, json};

/// The longest any load phase may run.
pub const PHASE_LIMIT: Duration = Duration::from_secs(120);

/// The admin token of every benchmarked service.
pub const ADMIN: &str = "bench-admin-token-0123456789abcdef0123";

/// The longest the real binary may take to print its address.
pub const SPAWN_LIMIT: Duration = Duration::from_secs(60);

/// Starts this build's `rescind serve` binary on `dir` with `workers`
/// workers and [`ADMIN`]; answers it once it printed its address.
pub fn spawn_serve(dir: &std::path::Path, workers: usize) -> ServeProcess {
    // Defined for the rescind-host benches; the support module is shared
    // with benches of other packages, which do not start the binary.
    let Some(binary) = option_env!("CARGO_BIN_EXE_rescind") else {
        panic!("only the rescind-host benches start the rescind binary");
    };
    let mut command = std::process::Command::new(binary);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--workers", &workers.to_string()])
        .arg("--data-dir")
        .arg(dir)
        .env("RESCIND_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "error");
    ServeProcess::spawn(command, SPAWN_LIMIT)
}

/// The value of environment variable `name`, or `default` when it is unset
/// or does not parse.
pub fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p`-th percentile of `samples` (nearest rank); NaN when empty.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// A one-line order of customer `C-1` on website `main`, cancellable under
/// the insite preset.
pub fn order() -> Value {
    json!({
        "businessCode": "B1", "customerNumber": "C-1", "website": "main",
        "status": "Submitted", "orderDate": "2024-09-01", "currency": "EUR",
        "lines": [{"lineNumber": 1, "sku": "CHAIR", "quantity": 1,
                   "amountMinor": 10000, "taxMinor": 1900}],
        "payments": [{"id": "p", "method": "card", "authorizedMinor": 11900,
                      "depositedMinor": 0}]
    })
}

/// A running service on a temporary store.
pub struct Host {
    pub running: RunningService,
    pub base: String,
    pub client: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Host {
    /// Starts a service on loopback with the admin token and the settings
    /// `configure` makes, applies the insite preset and lets customers of
    /// website `main` cancel.
    pub async fn start(configure: impl FnOnce(&mut ServiceConfig)) -> Host {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config =
            ServiceConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), data.path());
        config.admin_token = Some(ADMIN.to_owned());
        configure(&mut config);
        let running = service::start(config).await.expect("service");
        let host = Host {
            base: format!("http://{}", running.addr),
            running,
            client: reqwest::Client::new(),
            _data: data,
        };
        host.send(reqwest::Method::POST, "/v1/admin/presets/insite", None)
            .await;
        host.send(
            reqwest::Method::PUT,
            "/v1/admin/websites/main",
            Some(json!({"allowCancellationRequest": true})),
        )
        .await;
        host
    }

    /// An admin call that must succeed; answers its JSON body.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// Uploads and activates the component at `path` as plugin `name`.
    pub async fn upload(&self, name: &str, path: &str) {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let response = self
            .client
            .put(format!("{}/v1/admin/plugins/{name}", self.base))
            .bearer_auth(ADMIN)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .expect("upload");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// Stores order `number` as [`order`].
    pub async fn put_order(&self, number: &str) {
        self.send(
            reqwest::Method::PUT,
            &format!("/v1/orders/{number}"),
            Some(order()),
        )
        .await;
    }
}

/// Order `n` of a seeded store (`BO-000042`): a chair and its warranty, an
/// authorized card payment, an allocation; cancellable under the insite
/// preset. Seeded through the store, not the API.
pub fn seed_order(n: usize) -> Order {
    let line = |number: u32, sku: &str, amount: i64, tax: i64| Line {
        number,
        sku: sku.to_owned(),
        quantity: 1,
        amount_minor: amount,
        tax_minor: tax,
        parent_line: None,
        kind: LineKind::Product,
        state: LineState::Active,
        erp_line_ref: None,
    };
    let mut warranty = line(2, "WARRANTY", 1500, 285);
    warranty.parent_line = Some(1);
    Order {
        number: format!("BO-{n:06}"),
        business_code: "B1".to_owned(),
        customer_number: format!("C-{}", n % 5000),
        website: "main".to_owned(),
        status: "Submitted".to_owned(),
        order_date: time::macros::date!(2024 - 09 - 01),
        currency: Currency::parse("EUR").expect("EUR"),
        erp_order_number: Some(format!("ERP-{n}")),
        lines: vec![line(1, "CHAIR", 20000, 3800), warranty],
        payments: vec![Payment {
            id: format!("pay-{n}"),
            method: "card".to_owned(),
            authorized_minor: 25585,
            deposited_minor: 0,
            voided_minor: 0,
            refunded_minor: 0,
        }],
        allocations: vec![Allocation {
            line_number: 1,
            warehouse: "W1".to_owned(),
            quantity: 1,
            kind: AllocationKind::Existing,
            state: AllocationState::Allocated,
        }],
        approval: None,
        tracking: None,
    }
}

/// Latency figures of one phase.
pub struct Figures {
    pub ok: usize,
    pub failed: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    /// The slowest request's latency.
    pub max: Duration,
}

impl Figures {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `total` requests from `clients` concurrent clients; `make(i)` gives
/// the i-th request's URL and body.
pub async fn load(
    clients: usize,
    total: usize,
    expect: StatusCode,
    make: Arc<dyn Fn(usize) -> (String, Value) + Send + Sync>,
) -> Figures {
    load_with(reqwest::Method::POST, clients, total, expect, make).await
}

/// [`load`] with `method` instead of `POST`.
pub async fn load_with(
    method: reqwest::Method,
    clients: usize,
    total: usize,
    expect: StatusCode,
    make: Arc<dyn Fn(usize) -> (String, Value) + Send + Sync>,
) -> Figures {
    load_inner(method, clients, total, expect, make, ADMIN.into(), None).await
}

/// [`load`] authenticated with `token` instead of the admin token, as a
/// commerce platform with its API key calls.
pub async fn load_as(
    token: &str,
    clients: usize,
    total: usize,
    expect: StatusCode,
    make: Arc<dyn Fn(usize) -> (String, Value) + Send + Sync>,
) -> Figures {
    let method = reqwest::Method::POST;
    load_inner(method, clients, total, expect, make, token.into(), None).await
}

/// [`load`] with an `Idempotency-Key` on every request, as a commerce
/// platform that retries sends them: `{prefix}-{i}` for the i-th.
pub async fn load_keyed(
    clients: usize,
    total: usize,
    expect: StatusCode,
    make: Arc<dyn Fn(usize) -> (String, Value) + Send + Sync>,
    prefix: &str,
) -> Figures {
    let prefix = Some(Arc::<str>::from(prefix));
    let method = reqwest::Method::POST;
    load_inner(method, clients, total, expect, make, ADMIN.into(), prefix).await
}

async fn load_inner(
    method: reqwest::Method,
    clients: usize,
    total: usize,
    expect: StatusCode,
    make: Arc<dyn Fn(usize) -> (String, Value) + Send + Sync>,
    token: Arc<str>,
    key_prefix: Option<Arc<str>>,
) -> Figures {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let next = Arc::clone(&next);
        let make = Arc::clone(&make);
        let method = method.clone();
        let key_prefix = key_prefix.clone();
        let token = Arc::clone(&token);
        tasks.spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client");
            let mut latencies = Vec::new();
            let mut failed = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || started.elapsed() > PHASE_LIMIT {
                    break;
                }
                let (url, body) = make(i);
                let t = Instant::now();
                let mut request = client.request(method.clone(), url).bearer_auth(&token);
                if let Some(prefix) = &key_prefix {
                    request = request.header("idempotency-key", format!("{prefix}-{i}"));
                }
                let answer = request.json(&body).send().await;
                match answer {
                    Ok(r) if r.status() == expect => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    Ok(r) => {
                        failed += 1;
                        if failed < 3 {
                            eprintln!("unexpected {}: {:?}", r.status(), r.text().await);
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        if failed < 3 {
                            eprintln!("request failed: {e}");
                        }
                    }
                }
            }
            (latencies, failed)
        });
    }
    let mut all = Vec::new();
    let mut failed = 0;
    while let Some(joined) = tasks.join_next().await {
        let (latencies, f) = joined.expect("client task");
        all.extend(latencies);
        failed += f;
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Figures {
        ok: all.len(),
        failed,
        elapsed,
        p50: pick(0.50),
        p99: pick(0.99),
        max: all.last().copied().unwrap_or_default(),
    }
}

/// On-CPU time so far, in nanoseconds, of the cancellation writer's
/// thread and of all the process's live threads (from each thread's
/// `/proc/self/task/*/schedstat`; a thread that ends between two readings
/// takes its time with it); `None` where `/proc` does not say or names
/// no writer thread.
pub fn cpu_ns() -> Option<(u64, u64)> {
    let mut writer = None;
    let mut all = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = task.path();
        // A thread may end between the listing and the reads: skip it.
        let Ok(schedstat) = std::fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        let on_cpu: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
        all += on_cpu;
        // Linux keeps the first 15 bytes of a thread's name.
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if "rescind-cancel-writer".get(..15) == Some(name.trim_end()) {
            writer = Some(on_cpu);
        }
    }
    Some((writer?, all))
}

/// Microseconds of CPU each of `count` operations cost since `before` (a
/// reading of [`cpu_ns`]): the writer thread's and the whole process's;
/// `None` where either reading is missing or nothing was counted.
pub fn cpu_per(before: Option<(u64, u64)>, count: usize) -> Option<(f64, f64)> {
    let ((writer_0, all_0), (writer_1, all_1)) = before.zip(cpu_ns())?;
    if count == 0 {
        return None;
    }
    let per = |ns: u64| ns as f64 / 1000.0 / count as f64;
    Some((
        per(writer_1.saturating_sub(writer_0)),
        per(all_1.saturating_sub(all_0)),
    ))
}

/// The median of some values (the upper one of the middle two).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Smallest and largest of some values.
pub fn range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        })
}

pub fn report(name: &str, f: &Figures) {
    println!(
        "{name:<28} {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} ok, {} failed, {:.1} s)",
        f.per_second(),
        f.p50.as_secs_f64() * 1000.0,
        f.p99.as_secs_f64() * 1000.0,
        f.max.as_secs_f64() * 1000.0,
        f.ok,
        f.failed,
        f.elapsed.as_secs_f64()
    );
}

/// The connection `erp` to a loopback ERP at `erp`, allowed there and
/// nowhere else, with a plugin's `settings` and `secrets`.
pub fn erp_connection(
    erp: SocketAddr,
    settings: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
) -> Connection {
    Connection {
        name: "erp".to_owned(),
        base_url: format!("http://{erp}"),
        allowed_hosts: vec![erp.to_string()],
        allow_private_network: false,
        ca_certificates: None,
        settings,
        secrets,
    }
}

/// Seeds a store through its own methods, not the API: the insite settings,
/// a `webhook` connection `erp` to the ERP at `erp`, an enabled
/// `OrderCancel` definition (so every cancellation queues a job), and the
/// orders `0..orders` ([`seed_order`]).
pub async fn seed_store(store: &Store, erp: SocketAddr, orders: usize) {
    store
        .put_settings(&Preset::Insite.settings())
        .await
        .expect("settings");
    store
        .put_connection(
            &erp_connection(
                erp,
                [("path".to_owned(), "/hooks/cancel".to_owned())].into(),
                [("signingKey".to_owned(), "bench-signing-key".to_owned())].into(),
            ),
            false,
        )
        .await
        .expect("connection");
    store
        .put_job_definition(&JobDefinition {
            name: "OrderCancel".to_owned(),
            job_type: "Execution".to_owned(),
            connection: "erp".to_owned(),
            preprocessor: None,
            integration_processor: "webhook".to_owned(),
            post_processor: None,
            parameters: vec![JobParameter {
                name: "OrderNumber".to_owned(),
                value_type: "String".to_owned(),
                default_value: String::new(),
                prompt: "Order Number".to_owned(),
            }],
            retry: RetryPolicy::default(),
            enabled: true,
            applies_to: AppliesTo::Any,
        })
        .await
        .expect("definition");
    let all: Vec<Order> = (0..orders).map(seed_order).collect();
    for chunk in all.chunks(2_000) {
        store.put_orders(chunk).await.expect("orders");
    }
}
