//! `poison_plugin`: whether a plugin that always traps slows the delivery
//! of the other jobs.
//!
//! Each phase starts a fresh service (store in a temporary directory, four
//! workers) with a `Deliver` job definition: the bundled `webhook` plugin
//! posting to a loopback ERP that records when each order's request
//! arrives. The *poisoned* phases add a `Poison` definition on the
//! `panicker` test guest: it traps on every attempt and is retried every
//! few milliseconds, up to the 100 attempts a definition may have, so every
//! cancellation leaves a job
//! that keeps the workers and the plugin threads busy trapping. One client,
//! on a thread and runtime of its own (as another process would be), sends
//! `RESCIND_BENCH_REQUESTS` cancellations, one every
//! `RESCIND_BENCH_PACE_MS`, and the figure is the time from each `201` to
//! the ERP receiving that order's request. Clean and poisoned phases
//! alternate for `RESCIND_BENCH_ROUNDS` rounds; the poisoned p99 is
//! reported as a ratio of the clean p99 of the same run.
//!
//! ```sh
//! cargo bench -p rescind-host --bench poison_plugin
//! RESCIND_BENCH_REQUESTS=500 RESCIND_BENCH_ROUNDS=3 cargo bench -p rescind-host --bench poison_plugin
//! ```
//!
//! Bounded: a fixed number of cancellations per phase and a time limit per
//! phase. Servers listen on 127.0.0.1 only.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use rescind_host::jobs::WorkerConfig;
use rescind_host::service::PluginsConfig;
use serde_json::{Value, json};
use support::{ADMIN, Host, Row, env, percentile, write_results};

mod support;

/// The longest one phase may take, its deliveries included.
const PHASE_LIMIT: Duration = Duration::from_secs(120);
/// Workers of every phase.
const WORKERS: usize = 4;

/// When the ERP received each order's request.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// A loopback ERP that accepts every request and notes when each order's
/// first one arrived.
async fn start_erp() -> (SocketAddr, Arrivals) {
    async fn receive(State(arrivals): State<Arrivals>, Json(body): Json<Value>) -> Json<Value> {
        let now = Instant::now();
        if let Some(order) = body["orderNumber"].as_str() {
            arrivals
                .lock()
                .expect("arrivals")
                .entry(order.to_owned())
                .or_insert(now);
        }
        Json(json!({"id": "ERP-1"}))
    }
    let arrivals: Arrivals = Arc::default();
    let app = axum::Router::new()
        .route("/hooks/cancel", post(receive))
        .with_state(Arc::clone(&arrivals));
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind the ERP");
    let addr = listener.local_addr().expect("the ERP's address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, arrivals)
}

/// A service with [`WORKERS`] workers delivering to `erp`, with the
/// `Poison` definition when `poisoned`.
async fn start(cache: &Path, erp: SocketAddr, poisoned: bool) -> Host {
    let host = Host::start(|config| {
        config.workers = Some(WorkerConfig {
            workers: WORKERS,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
        });
        config.plugins = PluginsConfig {
            cache_dir: Some(cache.to_owned()),
            install_bundled: true,
            ..PluginsConfig::default()
        };
    })
    .await;
    let base = format!("http://{erp}");
    host.send(
        reqwest::Method::PUT,
        "/v1/admin/connections/erp",
        Some(json!({"baseUrl": base, "allowedHosts": [base],
                    "settings": {"path": "/hooks/cancel"},
                    "secrets": {"signingKey": "bench-signing-key"}})),
    )
    .await;
    define(&host, "Deliver", "webhook", 5, 10).await;
    if poisoned {
        host.upload("panicker", rescind_test_artifacts::PANICKER)
            .await;
        define(&host, "Poison", "panicker", 100, 1).await;
    }
    host
}

/// An enabled definition running `plugin` for every cancellation.
async fn define(host: &Host, name: &str, plugin: &str, attempts: u32, backoff_ms: u64) {
    host.send(
        reqwest::Method::PUT,
        &format!("/v1/admin/job-definitions/{name}"),
        Some(json!({"jobType": "Execution", "connection": "erp",
                    "integrationProcessor": plugin, "enabled": true,
                    "parameters": [{"name": "OrderNumber", "valueType": "String",
                                    "defaultValue": "", "prompt": "Order Number"}],
                    "retry": {"maxAttempts": attempts, "initialBackoffMs": backoff_ms,
                              "maxBackoffMs": backoff_ms * 5}})),
    )
    .await;
}

/// The client: on a thread and runtime of its own, one cancellation of
/// each order, `pace` apart; answers when each `201` arrived.
fn cancel_all(base: String, orders: Vec<String>, pace: Duration) -> Vec<(String, Instant)> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        runtime.block_on(async move {
            let client = reqwest::Client::new();
            let limit = Instant::now() + PHASE_LIMIT;
            let mut answered = Vec::with_capacity(orders.len());
            let mut next = tokio::time::Instant::now();
            for number in orders {
                if Instant::now() > limit {
                    break;
                }
                tokio::time::sleep_until(next).await;
                next += pace;
                let response = client
                    .post(format!("{base}/v1/orders/{number}/cancellations"))
                    .bearer_auth(ADMIN)
                    .json(&json!({"cancellationReason": "OUT_OF_STOCK"}))
                    .send()
                    .await
                    .expect("cancel");
                let status = response.status();
                response.bytes().await.expect("body");
                assert_eq!(status, reqwest::StatusCode::CREATED);
                answered.push((number, Instant::now()));
            }
            answered
        })
    })
    .join()
    .expect("the client thread")
}

/// One phase: the latencies from each `201` to its ERP request (ms), and
/// how many of the requests the ERP had not received by the phase's end.
async fn phase(
    cache: &Path,
    poisoned: bool,
    requests: usize,
    pace: Duration,
    round: usize,
) -> (Vec<f64>, usize) {
    let (erp, arrivals) = start_erp().await;
    let host = start(cache, erp, poisoned).await;
    let orders: Vec<String> = (0..requests).map(|i| format!("P-{round}-{i}")).collect();
    for number in &orders {
        host.put_order(number).await;
    }
    let base = host.base.clone();
    let answered = tokio::task::spawn_blocking(move || cancel_all(base, orders, pace))
        .await
        .expect("the client");
    // Wait (bounded) for the ERP to hear of every cancellation.
    let limit = Instant::now() + PHASE_LIMIT;
    while arrivals.lock().expect("arrivals").len() < answered.len() && Instant::now() < limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrived = arrivals.lock().expect("arrivals").clone();
    let mut latencies = Vec::with_capacity(answered.len());
    let mut missing = 0;
    for (number, answered_at) in &answered {
        match arrived.get(number) {
            Some(at) => {
                latencies.push(at.saturating_duration_since(*answered_at).as_secs_f64() * 1000.0)
            }
            None => missing += 1,
        }
    }
    host.running
        .shutdown(Duration::from_secs(1))
        .await
        .expect("shutdown");
    (latencies, missing)
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
    let requests: usize = env("RESCIND_BENCH_REQUESTS", 300);
    let rounds: usize = env("RESCIND_BENCH_ROUNDS", 2);
    let pace = Duration::from_millis(env("RESCIND_BENCH_PACE_MS", 10));
    let cache = tempfile::tempdir().expect("cache dir");
    println!(
        "poison_plugin: {requests} cancellations per phase, one every {pace:?}, {WORKERS} \
         workers, {rounds} rounds; {} CPUs; load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let mut pooled: [Vec<f64>; 2] = Default::default();
    let mut missing = [0usize; 2];
    for round in 0..rounds {
        for (slot, poisoned) in [false, true].into_iter().enumerate() {
            let (latencies, lost) = phase(cache.path(), poisoned, requests, pace, round).await;
            println!(
                "round {round}, {}: delivery p50 {:.2} ms p99 {:.2} ms ({} delivered, {lost} \
                 not delivered within the phase)",
                if poisoned { "poisoned" } else { "clean" },
                percentile(&latencies, 50.0),
                percentile(&latencies, 99.0),
                latencies.len(),
            );
            pooled[slot].extend(latencies);
            missing[slot] += lost;
        }
    }
    let clean99 = percentile(&pooled[0], 99.0);
    println!("\nall rounds pooled (ratio: p99 against the clean phases)");
    println!("| phase | delivered | not delivered | p50 | p99 | p99 ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (slot, name) in ["clean", "a poisoned definition beside it"]
        .into_iter()
        .enumerate()
    {
        let p99 = percentile(&pooled[slot], 99.0);
        println!(
            "| {name} | {} | {} | {:.2} ms | {p99:.2} ms | {:.2}× |",
            pooled[slot].len(),
            missing[slot],
            percentile(&pooled[slot], 50.0),
            p99 / clean99,
        );
    }
    let poisoned99 = percentile(&pooled[1], 99.0);
    let rate = 1.0 / pace.as_secs_f64();
    write_results(
        "poison_plugin",
        &[
            Row::new(
                format!("201 → ERP receipt p99, clean, {rate:.0} cancellations/s"),
                clean99,
                "ms",
                "the goal (no baseline to measure)",
                20.0,
            )
            .goal(
                "≤ 20 ms, every request delivered",
                clean99 <= 20.0 && missing[0] == 0,
            ),
            Row::new(
                "201 → ERP receipt p99, a poisoned definition beside",
                poisoned99,
                "ms",
                "the same, clean phases",
                clean99,
            )
            .goal(
                "no slowdown (≤ 2× clean), every request delivered",
                poisoned99 <= 2.0 * clean99 && missing[1] == 0,
            ),
        ],
    );
}
