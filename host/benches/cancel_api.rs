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
//! floor, the cancellations, the cancellations again with an
//! `Idempotency-Key` on every request, as a commerce platform that retries
//! sends them, and again authenticated with a `service` API key instead of
//! the admin token, as a platform calls (each phase on orders no other
//! phase touched), so that a
//! passing disturbance on a shared machine shows as one odd round instead
//! of deciding the result; the summary gives the median round and the
//! range.
//!
//! Each round also prints the CPU time a cancellation cost (on Linux, from
//! `/proc`): the cancellation writer's thread, and the whole process (the
//! in-process clients included), over the round's cancellations. The
//! writer's share bounds the rate however fast the rest becomes.
//!
//! Every run is bounded: a fixed number of requests per phase and a time
//! limit, whichever comes first. Servers listen on 127.0.0.1 only.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use rescind_host::jobs::WorkerConfig;
use rescind_host::service::{self, ServiceConfig};
use rescind_host::store::Durability;
use serde_json::{Value, json};

mod support;

use support::{
    ADMIN, Figures, Row, cpu_ns, cpu_per, env, load, load_as, load_keyed, median, range, report,
    seed_store, write_results,
};

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

/// Prints the CPU time each of the phase's cancellations cost since
/// `before` (see [`cpu_ns`]).
fn report_cpu(before: Option<(u64, u64)>, figures: &Figures) {
    match cpu_per(before, figures.ok) {
        Some((writer, all)) => println!(
            "  CPU per cancellation: writer thread {writer:.1} µs, whole process {all:.1} µs"
        ),
        None => println!(
            "  CPU per cancellation: not measured (no /proc/self/task, or no writer thread in it)"
        ),
    }
}

/// A new `service` API key's token, made through the admin API at `addr`.
async fn service_key(addr: SocketAddr) -> String {
    let created: Value = reqwest::Client::new()
        .post(format!("http://{addr}/v1/admin/api-keys"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "bench platform", "role": "service"}))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("create an API key")
        .json()
        .await
        .expect("the key's answer");
    created["token"].as_str().expect("a token").to_owned()
}

fn main() {
    support::as_served();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let orders: usize = env("RESCIND_BENCH_ORDERS", 180_000);
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
    // The connection's ERP never answers: workers are off.
    seed_store(&store, SocketAddr::from((Ipv4Addr::LOCALHOST, 9)), orders).await;
    println!(
        "cancel_api: {orders} orders seeded in {:.1} s; {clients} clients; {requests} requests; \
         synchronous={durability:?}; {} CPUs",
        seeding.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let floor = floor_server().await;
    let addr = running.addr;
    let platform_token = service_key(addr).await;
    // Spread each phase's orders over the whole table: the phase in slot s
    // takes the orders s, s + stride, s + 2 stride, ... (round r's
    // cancellations slot 3r, its keyed cancellations slot 3r + 1, its
    // cancellations with the API key slot 3r + 2).
    let stride = (orders / requests.max(1)).max(1);
    let rounds: usize = env::<usize>("RESCIND_BENCH_ROUNDS", 3).clamp(1, (stride / 3).max(1));
    // The i-th cancellation of the phase in `slot`.
    let in_slot = |slot: usize| -> Arc<dyn Fn(usize) -> (String, Value) + Send + Sync> {
        Arc::new(move |i| {
            (
                format!(
                    "http://{addr}/v1/orders/BO-{:06}/cancellations",
                    i * stride + slot
                ),
                json!({"cancellationReason": "OUT_OF_STOCK"}),
            )
        })
    };
    let mut floors = Vec::new();
    let mut cancels = Vec::new();
    let mut keyed = Vec::new();
    let mut platform = Vec::new();
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
        let cpu_before = cpu_ns();
        let cancel_figures = load(clients, requests, StatusCode::CREATED, in_slot(3 * round)).await;
        report("  committed cancellations", &cancel_figures);
        report_cpu(cpu_before, &cancel_figures);
        println!(
            "  ratio: cancellations reach {:.1} % of the HTTP floor's throughput",
            100.0 * cancel_figures.per_second() / floor_figures.per_second()
        );
        if stride < 3 {
            println!(
                "  with an Idempotency-Key, with an API key: not measured \
                 (too few orders for phases of their own)"
            );
        } else {
            let cpu_before = cpu_ns();
            let figures = load_keyed(
                clients,
                requests,
                StatusCode::CREATED,
                in_slot(3 * round + 1),
                &format!("round-{round}"),
            )
            .await;
            report("  with an Idempotency-Key", &figures);
            report_cpu(cpu_before, &figures);
            println!(
                "  ratio: keyed cancellations make {:.2}x the unkeyed ones",
                figures.per_second() / cancel_figures.per_second()
            );
            keyed.push(figures);
            let cpu_before = cpu_ns();
            let figures = load_as(
                &platform_token,
                clients,
                requests,
                StatusCode::CREATED,
                in_slot(3 * round + 2),
            )
            .await;
            report("  with a service API key", &figures);
            report_cpu(cpu_before, &figures);
            println!(
                "  ratio: cancellations with an API key make {:.2}x those with the admin token",
                figures.per_second() / cancel_figures.per_second()
            );
            platform.push(figures);
        }
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
    let floor_p99: Vec<f64> = floors
        .iter()
        .map(|f| f.p99.as_secs_f64() * 1000.0)
        .collect();
    let (throughput, floor_throughput) = (median(per_second), median(floor_per_second));
    let (p99, floor_p99) = (median(p99), median(floor_p99));
    let durability = format!("{durability:?}");
    // Each variant beside the plain cancellations of the same rounds.
    let mut variant_rows = Vec::new();
    for (phases, what, baseline) in [
        (&keyed, "with an Idempotency-Key", "the same without a key"),
        (
            &platform,
            "with a service API key",
            "the same with the admin token",
        ),
    ] {
        if phases.is_empty() {
            continue;
        }
        let per_second: Vec<f64> = phases.iter().map(Figures::per_second).collect();
        let p99s: Vec<f64> = phases
            .iter()
            .map(|f| f.p99.as_secs_f64() * 1000.0)
            .collect();
        let (lo, hi) = range(&per_second);
        let (variant_throughput, variant_p99) = (median(per_second), median(p99s));
        println!(
            "  {what}: {variant_throughput:.0} req/s ({lo:.0}-{hi:.0}), p99 {variant_p99:.2} ms"
        );
        variant_rows.push(Row::new(
            format!("committed cancellations {what}, {clients} clients, {durability}"),
            variant_throughput,
            "req/s",
            baseline,
            throughput,
        ));
        variant_rows.push(Row::new(
            format!("cancellation p99 {what}, {clients} clients, {durability}"),
            variant_p99,
            "ms",
            baseline,
            p99,
        ));
    }
    write_results(
        "cancel_api",
        &[
            Row::new(
                format!("committed cancellations, {clients} clients, {durability}"),
                throughput,
                "req/s",
                "HTTP floor (trivial axum handler), same clients",
                floor_throughput,
            )
            .goal("≥ 35 % of the floor", throughput >= 0.35 * floor_throughput),
            Row::new(
                format!("cancellation p99, {clients} clients, {durability}"),
                p99,
                "ms",
                "HTTP floor p99",
                floor_p99,
            )
            .goal("p99 ≤ 15 ms", p99 <= 15.0),
        ]
        .into_iter()
        .chain(variant_rows)
        .collect::<Vec<_>>(),
    );
    running
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
}
