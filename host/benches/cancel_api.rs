//! `cancel_api`: committed cancellations per second and p50/p99 latency over
//! loopback HTTP, N concurrent clients, against a database of 100,000
//! orders; next to a trivial axum handler on the same machine in the same
//! run (the HTTP floor).
//!
//! ```sh
//! cargo bench -p rescind-host --bench cancel_api            # defaults
//! RESCIND_BENCH_CLIENTS=64 RESCIND_BENCH_REQUESTS=20000 RESCIND_BENCH_ROUNDS=3 \
//!   RESCIND_BENCH_DURABILITY=full cargo bench -p rescind-host --bench cancel_api
//! ```
//!
//! A run seeds the database once and then measures several rounds, each the
//! floor and then the cancellations (of orders no earlier round touched), so
//! that a passing disturbance on a shared machine shows as one odd round
//! instead of deciding the result; the summary gives the median round and
//! the range.
//!
//! Every run is bounded: a fixed number of requests per phase and a time
//! limit, whichever comes first. Servers listen on 127.0.0.1 only.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use rescind_host::domain::{
    Allocation, AllocationKind, AllocationState, Currency, Line, LineKind, LineState, Order,
    Payment, Preset,
};
use rescind_host::jobs::WorkerConfig;
use rescind_host::service::{self, ServiceConfig};
use rescind_host::store::{AppliesTo, Durability, JobDefinition, JobParameter, RetryPolicy};
use serde_json::{Value, json};

const ADMIN: &str = "bench-admin-token-0123456789abcdef0123";
/// The longest any phase may run.
const PHASE_LIMIT: Duration = Duration::from_secs(120);

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn order(n: usize) -> Order {
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
struct Figures {
    ok: usize,
    failed: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `total` requests from `clients` concurrent clients; `make(i)` gives
/// the i-th request's URL and body.
async fn load(
    clients: usize,
    total: usize,
    expect: StatusCode,
    make: Arc<dyn Fn(usize) -> (String, Value) + Send + Sync>,
) -> Figures {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let next = Arc::clone(&next);
        let make = Arc::clone(&make);
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
                let answer = client.post(url).bearer_auth(ADMIN).json(&body).send().await;
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
    }
}

/// The median of some values (the upper one of the middle two).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Smallest and largest of some values.
fn range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        })
}

fn report(name: &str, f: &Figures) {
    println!(
        "{name:<28} {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} ok, {} failed, {:.1} s)",
        f.per_second(),
        f.p50.as_secs_f64() * 1000.0,
        f.p99.as_secs_f64() * 1000.0,
        f.ok,
        f.failed,
        f.elapsed.as_secs_f64()
    );
}

async fn floor_server() -> SocketAddr {
    let app = Router::new().route(
        "/v1/orders/{n}/cancellations",
        post(|Json(body): Json<Value>| async move {
            (
                StatusCode::CREATED,
                Json(json!({"internalRequestId": "x", "echo": body})),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let orders: usize = env("RESCIND_BENCH_ORDERS", 100_000);
    let clients: usize = env("RESCIND_BENCH_CLIENTS", 64);
    let requests: usize = env::<usize>("RESCIND_BENCH_REQUESTS", 20_000).min(orders);
    let durability: Durability = env("RESCIND_BENCH_DURABILITY", Durability::Normal);
    let dir = tempfile::tempdir().expect("temp dir");

    let mut config = ServiceConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), dir.path());
    config.admin_token = Some(ADMIN.to_owned());
    config.durability = durability;
    // Workers off: the benchmark measures the API and the commit, outbox
    // row included; delivery to an ERP is measured elsewhere.
    config.workers = None::<WorkerConfig>;
    let running = service::start(config).await.expect("service");
    let store = running.state.store.clone();

    let seeding = Instant::now();
    store
        .put_settings(&Preset::Insite.settings())
        .await
        .expect("settings");
    store
        .put_connection(
            &rescind_host::store::Connection {
                name: "erp".to_owned(),
                base_url: "http://127.0.0.1:9".to_owned(),
                allowed_hosts: vec!["127.0.0.1:9".to_owned()],
                allow_private_network: false,
                ca_certificates: None,
                settings: Default::default(),
                secrets: Default::default(),
            },
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
    let all: Vec<Order> = (0..orders).map(order).collect();
    for chunk in all.chunks(5_000) {
        store.put_orders(chunk).await.expect("orders");
    }
    println!(
        "cancel_api: {orders} orders seeded in {:.1} s; {clients} clients; {requests} requests; \
         synchronous={durability:?}; {} CPUs",
        seeding.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let floor = floor_server().await;
    let addr = running.addr;
    // Spread each round's orders over the whole table; round r takes the
    // orders r, r + stride, r + 2 stride, ...
    let stride = (orders / requests.max(1)).max(1);
    let rounds: usize = env::<usize>("RESCIND_BENCH_ROUNDS", 3).clamp(1, stride);
    let mut floors = Vec::new();
    let mut cancels = Vec::new();
    for round in 0..rounds {
        println!("round {} of {rounds}", round + 1);
        let floor_figures = load(
            clients,
            requests,
            StatusCode::CREATED,
            Arc::new(move |i| {
                (
                    format!("http://{floor}/v1/orders/BO-{i:06}/cancellations"),
                    json!({"cancellationReason": "OUT_OF_STOCK"}),
                )
            }),
        )
        .await;
        report("  HTTP floor (trivial axum)", &floor_figures);
        let cancel_figures = load(
            clients,
            requests,
            StatusCode::CREATED,
            Arc::new(move |i| {
                (
                    format!(
                        "http://{addr}/v1/orders/BO-{:06}/cancellations",
                        i * stride + round
                    ),
                    json!({"cancellationReason": "OUT_OF_STOCK"}),
                )
            }),
        )
        .await;
        report("  committed cancellations", &cancel_figures);
        println!(
            "  ratio: cancellations reach {:.1} % of the HTTP floor's throughput",
            100.0 * cancel_figures.per_second() / floor_figures.per_second()
        );
        floors.push(floor_figures);
        cancels.push(cancel_figures);
    }

    let per_second: Vec<f64> = cancels.iter().map(Figures::per_second).collect();
    let p50: Vec<f64> = cancels
        .iter()
        .map(|f| f.p50.as_secs_f64() * 1000.0)
        .collect();
    let p99: Vec<f64> = cancels
        .iter()
        .map(|f| f.p99.as_secs_f64() * 1000.0)
        .collect();
    let floor_per_second: Vec<f64> = floors.iter().map(Figures::per_second).collect();
    let ratios: Vec<f64> = cancels
        .iter()
        .zip(&floors)
        .map(|(c, f)| 100.0 * c.per_second() / f.per_second())
        .collect();
    let (lo, hi) = range(&per_second);
    println!(
        "median of {rounds} rounds: committed cancellations {:.0} req/s ({lo:.0}-{hi:.0})",
        median(per_second.clone())
    );
    let (lo, hi) = range(&p50);
    println!("  p50 {:.2} ms ({lo:.2}-{hi:.2})", median(p50.clone()));
    let (lo, hi) = range(&p99);
    println!("  p99 {:.2} ms ({lo:.2}-{hi:.2})", median(p99.clone()));
    let (lo, hi) = range(&floor_per_second);
    println!(
        "  HTTP floor {:.0} req/s ({lo:.0}-{hi:.0}); cancellations reach {:.1} % of it",
        median(floor_per_second.clone()),
        median(ratios)
    );
    running
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
}
