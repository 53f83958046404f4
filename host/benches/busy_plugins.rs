//! `busy_plugins`: how responsive the HTTP API stays while plugins burn CPU.
//!
//! Each phase starts a fresh service (store in a temporary directory, the
//! `looper` test guest uploaded as a plugin) and makes N jobs run it: each
//! loops until its deadline (longer than the phase), so N plugin calls are
//! busy for the whole measurement. Meanwhile one client, on a thread and
//! runtime of its own (as another process would be), sends
//! `RESCIND_BENCH_REQUESTS` rounds of two `GET /healthz` and one
//! cancellation (`POST /v1/orders/{n}/cancellations`), one request at a
//! time, and records each latency. N = 0 is the idle baseline; the other
//! phases are compared with it as ratios of p99.
//!
//! ```sh
//! cargo bench -p rescind-host --bench busy_plugins
//! RESCIND_BENCH_LOOPERS=0,2,16 RESCIND_BENCH_ROUNDS=3 cargo bench -p rescind-host --bench busy_plugins
//! ```
//!
//! Bounded: a fixed number of requests per phase and a time limit per
//! phase. Servers listen on 127.0.0.1 only.

use std::path::Path;
use std::time::{Duration, Instant};

use rescind_host::jobs::WorkerConfig;
use rescind_host::plugins::CallLimits;
use rescind_host::service::PluginsConfig;
use serde_json::json;
use support::{ADMIN, Host, Row, env, percentile, write_results};

mod support;

/// The longest the requests of one phase may take; a phase that reaches it
/// reports the requests it made.
const PHASE_LIMIT: Duration = Duration::from_secs(90);
/// The loopers' deadline: longer than any phase.
const LOOPER_DEADLINE: Duration = Duration::from_secs(300);

/// A service with `loopers` workers (at least one), the looper plugin and a
/// disabled `Loop` definition running it.
async fn start(cache: &Path, loopers: usize) -> Host {
    let host = Host::start(|config| {
        config.workers = Some(WorkerConfig {
            workers: loopers.max(1),
            lease: Duration::from_secs(600),
            poll_interval: Duration::from_millis(100),
        });
        config.plugins = PluginsConfig {
            cache_dir: Some(cache.to_owned()),
            install_bundled: false,
            limits: CallLimits {
                deadline: LOOPER_DEADLINE,
                ..CallLimits::default()
            },
            ..PluginsConfig::default()
        };
    })
    .await;
    host.upload("looper", rescind_test_artifacts::LOOPER).await;
    host.send(
        reqwest::Method::PUT,
        "/v1/admin/connections/erp",
        Some(json!({"baseUrl": "http://127.0.0.1:9", "allowedHosts": ["127.0.0.1:9"]})),
    )
    .await;
    host.send(
        reqwest::Method::PUT,
        "/v1/admin/job-definitions/Loop",
        Some(json!({"jobType": "Execution", "connection": "erp",
                    "integrationProcessor": "looper", "enabled": false,
                    "parameters": [{"name": "OrderNumber", "valueType": "String",
                                    "defaultValue": "", "prompt": "Order Number"}],
                    "retry": {"maxAttempts": 1, "initialBackoffMs": 10, "maxBackoffMs": 20}})),
    )
    .await;
    host
}

/// Starts `n` looper jobs and waits (bounded) until all of them run.
async fn start_loopers(host: &Host, n: usize) {
    for i in 0..n {
        let number = format!("L-{i}");
        host.put_order(&number).await;
        host.send(
            reqwest::Method::POST,
            &format!("/v1/orders/{number}/cancellations"),
            Some(json!({"cancellationReason": "OUT_OF_STOCK"})),
        )
        .await;
        host.send(
            reqwest::Method::POST,
            "/v1/admin/job-definitions/Loop/runs",
            Some(json!({"parameters": {"OrderNumber": number}})),
        )
        .await;
    }
    let limit = Instant::now() + Duration::from_secs(120);
    loop {
        let running = host
            .send(reqwest::Method::GET, "/v1/admin/jobs?state=running", None)
            .await;
        let count = running.as_array().map_or(0, Vec::len);
        if count == n {
            return;
        }
        assert!(Instant::now() < limit, "{count} of {n} loopers running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Latencies of one phase, in milliseconds.
#[derive(Default)]
struct Latencies {
    healthz: Vec<f64>,
    cancel: Vec<f64>,
}

/// The client: on a thread and runtime of its own, `rounds` times two
/// `/healthz` and one cancellation of `orders[i]`, one at a time.
fn measure(base: String, orders: Vec<String>) -> Latencies {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        runtime.block_on(async move {
            let client = reqwest::Client::new();
            let mut latencies = Latencies::default();
            let limit = Instant::now() + PHASE_LIMIT;
            for number in orders {
                if Instant::now() > limit {
                    break;
                }
                for _ in 0..2 {
                    let started = Instant::now();
                    let response = client
                        .get(format!("{base}/healthz"))
                        .send()
                        .await
                        .expect("healthz");
                    assert!(response.status().is_success());
                    response.bytes().await.expect("body");
                    latencies.healthz.push(millis(started));
                }
                let started = Instant::now();
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
                latencies.cancel.push(millis(started));
            }
            latencies
        })
    })
    .join()
    .expect("the client thread")
}

fn millis(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

async fn phase(cache: &Path, loopers: usize, requests: usize, round: usize) -> Latencies {
    let host = start(cache, loopers).await;
    let orders: Vec<String> = (0..requests).map(|i| format!("M-{round}-{i}")).collect();
    for number in &orders {
        host.put_order(number).await;
    }
    start_loopers(&host, loopers).await;
    let base = host.base.clone();
    let latencies = tokio::task::spawn_blocking(move || measure(base, orders))
        .await
        .expect("measure");
    host.running
        .shutdown(Duration::from_secs(1))
        .await
        .expect("shutdown");
    latencies
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
    let requests: usize = env("RESCIND_BENCH_REQUESTS", 500);
    let rounds: usize = env("RESCIND_BENCH_ROUNDS", 2);
    let loopers: Vec<usize> = env("RESCIND_BENCH_LOOPERS", "0,2,16".to_owned())
        .split(',')
        .map(|n| n.trim().parse().expect("RESCIND_BENCH_LOOPERS: numbers"))
        .collect();
    let cache = tempfile::tempdir().expect("cache dir");
    println!(
        "busy_plugins: {requests} rounds of 2 healthz + 1 cancellation per phase, looping \
         plugins {loopers:?}, {rounds} rounds; {} CPUs; load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let mut pooled: Vec<Latencies> = loopers.iter().map(|_| Latencies::default()).collect();
    for round in 0..rounds {
        for (slot, &n) in loopers.iter().enumerate() {
            let latencies = phase(cache.path(), n, requests, round).await;
            println!(
                "round {round}, {n:>2} looping plugins: healthz p50 {:.2} ms p99 {:.2} ms \
                 ({} samples); cancellation p50 {:.2} ms p99 {:.2} ms ({} samples)",
                percentile(&latencies.healthz, 50.0),
                percentile(&latencies.healthz, 99.0),
                latencies.healthz.len(),
                percentile(&latencies.cancel, 50.0),
                percentile(&latencies.cancel, 99.0),
                latencies.cancel.len(),
            );
            pooled[slot].healthz.extend(latencies.healthz);
            pooled[slot].cancel.extend(latencies.cancel);
        }
    }
    println!("\nall rounds pooled (ratio: p99 against the first phase)");
    println!(
        "| looping plugins | healthz p50 | healthz p99 | ratio | cancellation p50 | cancellation p99 | ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let idle_h = percentile(&pooled[0].healthz, 99.0);
    let idle_c = percentile(&pooled[0].cancel, 99.0);
    for (&n, latencies) in loopers.iter().zip(&pooled) {
        let h99 = percentile(&latencies.healthz, 99.0);
        let c99 = percentile(&latencies.cancel, 99.0);
        println!(
            "| {n} | {:.2} ms | {h99:.2} ms | {:.2}× | {:.2} ms | {c99:.2} ms | {:.2}× |",
            percentile(&latencies.healthz, 50.0),
            h99 / idle_h,
            percentile(&latencies.cancel, 50.0),
            c99 / idle_c,
        );
    }
    // The goal: p99 within 2× of idle at the concurrency limit; every
    // phase after the first is held to it.
    let first = loopers.first().copied().unwrap_or(0);
    let mut rows = Vec::new();
    for (&n, latencies) in loopers.iter().zip(&pooled).skip(1) {
        for (what, samples, idle) in [
            ("healthz", &latencies.healthz, idle_h),
            ("cancellation", &latencies.cancel, idle_c),
        ] {
            let p99 = percentile(samples, 99.0);
            rows.push(
                Row::new(
                    format!("{what} p99, {n} looping plugins"),
                    p99,
                    "ms",
                    format!("{what} p99, {first} looping plugins"),
                    idle,
                )
                .goal("≤ 2× idle", p99 <= 2.0 * idle),
            );
        }
    }
    write_results("busy_plugins", &rows);
}
