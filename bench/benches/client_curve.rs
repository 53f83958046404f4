//! `client_curve`: the cancel API at 1, 16, 64 and 256 clients, the load
//! sent by `rescind-loadgen` from a process of its own (so that the
//! measured server's CPU is its own), each point beside the HTTP floor (a
//! trivial axum handler taking the same request, in the service's process)
//! at the same number of clients; and, once, the same at 64 clients with the
//! clients inside the measured process (as `cancel_api` does), to show the
//! difference.
//!
//! ```sh
//! cargo bench -p rescind-bench --bench client_curve
//! RESCIND_BENCH_CLIENT_COUNTS=1,16,64,256 RESCIND_BENCH_REQUESTS=4000 \
//!   cargo bench -p rescind-bench --bench client_curve
//! ```
//!
//! The store (workers off, an enabled `OrderCancel` definition, so every
//! cancellation also writes its outbox row) is seeded through its own
//! methods with `requests × (points + 1)` orders; each phase cancels orders
//! no other phase touched, spread over the whole table. Bounded: a fixed
//! number of requests per phase and the load generator's time cap.
//! Everything listens on 127.0.0.1.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::routing::post;
use reqwest::StatusCode;
use rescind_host::service::{self, ServiceConfig};
use serde_json::{Value, json};

#[path = "../../host/benches/support/mod.rs"]
mod support;

use support::{ADMIN, Figures, PHASE_LIMIT, Row, env, load, seed_store, write_results};

/// The HTTP floor: the same route, answering at once.
async fn floor_server() -> SocketAddr {
    let app = Router::new().route(
        "/v1/orders/{n}/cancellations",
        post(|Json(body): Json<Value>| async move {
            (
                axum::http::StatusCode::CREATED,
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

/// What the load generator measured.
struct Measured {
    per_second: f64,
    p50: f64,
    p99: f64,
}

impl From<&Figures> for Measured {
    fn from(f: &Figures) -> Measured {
        Measured {
            per_second: f.per_second(),
            p50: f.p50.as_secs_f64() * 1000.0,
            p99: f.p99.as_secs_f64() * 1000.0,
        }
    }
}

/// `requests` cancellations from `clients` clients in a separate process,
/// to `addr`, of orders `first`, `first + stride`, ...
async fn loadgen(
    addr: SocketAddr,
    clients: usize,
    requests: usize,
    first: usize,
    stride: usize,
) -> Measured {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rescind-loadgen"));
    command
        .arg("--url")
        .arg(format!("http://{addr}/v1/orders/BO-{{n}}/cancellations"))
        .args(["--pad", "6"])
        .args(["--first", &first.to_string()])
        .args(["--stride", &stride.to_string()])
        .args(["--clients", &clients.to_string()])
        .args(["--requests", &requests.to_string()])
        .args(["--time-cap", &PHASE_LIMIT.as_secs().to_string()])
        .args(["--body", r#"{"cancellationReason":"OUT_OF_STOCK"}"#])
        .args(["--bearer", ADMIN])
        .args(["--expect", "201"])
        .kill_on_drop(true);
    let output = tokio::time::timeout(PHASE_LIMIT + Duration::from_secs(30), command.output())
        .await
        .expect("the load generator overran its own time cap")
        .expect("the load generator");
    assert!(
        output.status.success(),
        "rescind-loadgen: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: Value = serde_json::from_slice(&output.stdout).expect("the load generator's JSON");
    let ok = figures["ok"].as_u64().unwrap_or(0) as usize;
    let failed = figures["failed"].as_u64().unwrap_or(0);
    println!(
        "  {clients:>3} clients, separate process: {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  \
         ({ok} ok, {failed} failed, {:.1} s)",
        figures["perSecond"].as_f64().unwrap_or(f64::NAN),
        figures["p50Ms"].as_f64().unwrap_or(f64::NAN),
        figures["p99Ms"].as_f64().unwrap_or(f64::NAN),
        figures["elapsedSecs"].as_f64().unwrap_or(f64::NAN),
    );
    assert!(
        failed == 0 && ok == requests,
        "{failed} requests failed, {ok} of {requests} answered: {}",
        figures["firstError"]
    );
    Measured {
        per_second: figures["perSecond"].as_f64().unwrap_or(f64::NAN),
        p50: figures["p50Ms"].as_f64().unwrap_or(f64::NAN),
        p99: figures["p99Ms"].as_f64().unwrap_or(f64::NAN),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let counts: Vec<usize> = env("RESCIND_BENCH_CLIENT_COUNTS", "1,16,64,256".to_owned())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("RESCIND_BENCH_CLIENT_COUNTS: numbers")
        })
        .collect();
    let requests: usize = env("RESCIND_BENCH_REQUESTS", 4_000);
    let in_process_clients: usize = env("RESCIND_BENCH_CLIENTS", 64);
    // One phase per point, and one with the clients in this process.
    let phases = counts.len() + 1;
    let orders = requests * phases;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServiceConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), dir.path());
    config.admin_token = Some(ADMIN.to_owned());
    // Workers off: the API and the commit, outbox row included.
    config.workers = None;
    let running = service::start(config).await.expect("service");
    let seeding = Instant::now();
    // The connection's ERP never answers: workers are off.
    seed_store(
        &running.state.store,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 9)),
        orders,
    )
    .await;
    println!(
        "client_curve: {orders} orders seeded in {:.1} s; {requests} requests per phase; clients \
         {counts:?}; {} CPUs; load average {}",
        seeding.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let floor = floor_server().await;
    let addr = running.addr;

    // Once, the clients inside this process (phase 0).
    let request = |base: SocketAddr, phase: usize| {
        Arc::new(move |i: usize| {
            (
                format!(
                    "http://{base}/v1/orders/BO-{:06}/cancellations",
                    i * phases + phase
                ),
                json!({"cancellationReason": "OUT_OF_STOCK"}),
            )
        }) as Arc<dyn Fn(usize) -> (String, Value) + Send + Sync>
    };
    let floor_in = load(
        in_process_clients,
        requests,
        StatusCode::CREATED,
        request(floor, 0),
    )
    .await;
    support::report("  HTTP floor, in-process load", &floor_in);
    let cancel_in = load(
        in_process_clients,
        requests,
        StatusCode::CREATED,
        request(addr, 0),
    )
    .await;
    support::report("  cancellations, in-process", &cancel_in);
    assert_eq!(cancel_in.failed, 0, "cancellations failed");
    let (floor_in, cancel_in) = (Measured::from(&floor_in), Measured::from(&cancel_in));

    let mut rows = Vec::new();
    let mut at_in_process_clients = None;
    for (k, &clients) in counts.iter().enumerate() {
        println!("{clients} clients");
        let floor_out = loadgen(floor, clients, requests, 0, phases).await;
        let cancel_out = loadgen(addr, clients, requests, k + 1, phases).await;
        let mut throughput = Row::new(
            format!("cancellations/s, {clients} clients, load from a separate process"),
            cancel_out.per_second,
            "req/s",
            format!("HTTP floor, {clients} clients, load from a separate process"),
            floor_out.per_second,
        )
        .at("clients", clients as f64);
        let mut p99 = Row::new(
            format!("cancellation p99, {clients} clients, load from a separate process"),
            cancel_out.p99,
            "ms",
            format!("HTTP floor p99, {clients} clients, load from a separate process"),
            floor_out.p99,
        )
        .at("clients", clients as f64);
        if clients == 64 {
            let met = cancel_out.per_second >= 0.35 * floor_out.per_second;
            throughput = throughput.goal("≥ 35 % of the floor", met);
            p99 = p99.goal("p99 ≤ 15 ms", cancel_out.p99 <= 15.0);
        }
        println!(
            "  cancellations reach {:.1} % of the floor; p50 {:.2} ms (floor {:.2} ms)",
            100.0 * cancel_out.per_second / floor_out.per_second,
            cancel_out.p50,
            floor_out.p50
        );
        rows.push(throughput);
        rows.push(p99);
        if clients == in_process_clients {
            at_in_process_clients = Some((floor_out, cancel_out));
        }
    }

    let c = in_process_clients;
    rows.push(Row::new(
        format!("cancellations/s, {c} clients, clients in the server's process"),
        cancel_in.per_second,
        "req/s",
        format!("HTTP floor, {c} clients in its process"),
        floor_in.per_second,
    ));
    rows.push(Row::new(
        format!("cancellation p99, {c} clients, clients in the server's process"),
        cancel_in.p99,
        "ms",
        format!("HTTP floor p99, {c} clients in its process"),
        floor_in.p99,
    ));
    if let Some((floor_out, cancel_out)) = at_in_process_clients {
        rows.push(Row::new(
            format!("cancellations/s, {c} clients, load from a separate process"),
            cancel_out.per_second,
            "req/s",
            "the same, clients in the server's process",
            cancel_in.per_second,
        ));
        rows.push(Row::new(
            format!("HTTP floor, {c} clients, load from a separate process"),
            floor_out.per_second,
            "req/s",
            "the same, clients in the server's process",
            floor_in.per_second,
        ));
    }
    write_results("client_curve", &rows);
    running
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
}
