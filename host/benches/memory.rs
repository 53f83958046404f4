//! `memory`: the resident memory of the real `rescind serve` (release),
//! idle, with a queue of 100,000 jobs, and with every plugin slot taken by
//! a plugin holding 32 MiB while its ERP is slow, sampled every second for
//! a soak whose slope is reported.
//!
//! 1. The binary starts without workers on a fresh data directory: RSS
//!    idle, once settled.
//! 2. `RESCIND_BENCH_QUEUED` orders and as many cancellations go in over
//!    HTTP, each cancellation queueing one job: RSS with the queue.
//! 3. The binary starts again on the same store with 16 workers (as many
//!    as plugin slots); each job runs the `hostile` test guest in its
//!    `hold-memory` mode: it fills 32 MiB, then waits for a loopback ERP
//!    that answers after 2 s. RSS is sampled every second for
//!    `RESCIND_BENCH_SOAK_SECS` (60 by default; 600 for the ten-minute
//!    soak); the figure is the median with every slot busy, and the slope
//!    of a least-squares line through the samples.
//!
//! ```sh
//! cargo bench -p rescind-host --bench memory
//! RESCIND_BENCH_SOAK_SECS=600 cargo bench -p rescind-host --bench memory
//! ```
//!
//! Bounded: a fixed number of requests, a fixed soak, a time limit on each
//! start. Servers listen on 127.0.0.1 only.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::routing::get;
use reqwest::StatusCode;
use rescind_tests::rss::resident_bytes_of;
use rescind_tests::serve_process::ServeProcess;
use serde_json::json;
use support::{
    ADMIN, Row, SPAWN_LIMIT, env, load, load_with, median, order, spawn_serve, write_results,
};

mod support;

/// Workers of the delivering phase: as many as the runtime's plugin slots.
const WORKERS: usize = 16;
/// What each plugin holds, and how long its ERP takes to answer.
const HELD_MIB: usize = 32;
const ERP_DELAY: Duration = Duration::from_secs(2);

/// Resident memory of `server` now, in MiB (`VmRSS`).
fn rss_mib(server: &ServeProcess) -> f64 {
    resident_bytes_of(server.child.id()) as f64 / (1024.0 * 1024.0)
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) {
    let response = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

/// A loopback ERP answering every request after [`ERP_DELAY`]; counts them.
async fn start_erp() -> (SocketAddr, Arc<AtomicUsize>) {
    let received = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/",
        get(move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(ERP_DELAY).await;
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind the ERP");
    let addr = listener.local_addr().expect("the ERP's address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, received)
}

/// The slope of the least-squares line through `(second, MiB)` samples,
/// in MiB per minute.
fn slope_per_minute(samples: &[f64]) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = samples.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in samples.iter().enumerate() {
        let dx = x as f64 - mean_x;
        num += dx * (y - mean_y);
        den += dx * dx;
    }
    num / den * 60.0
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
    let queued: usize = env("RESCIND_BENCH_QUEUED", 100_000);
    let soak_secs: usize = env("RESCIND_BENCH_SOAK_SECS", 60);
    let client = reqwest::Client::new();
    let dir = tempfile::tempdir().expect("data dir");
    let (erp, received) = start_erp().await;

    // 1. Idle, no workers.
    let server = spawn_serve(dir.path(), 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_mib(&server);

    // 2. The queue.
    let base = server.base.clone();
    for (method, path, body) in [
        (reqwest::Method::POST, "/v1/admin/presets/insite", json!({})),
        (
            reqwest::Method::PUT,
            "/v1/admin/websites/main",
            json!({"allowCancellationRequest": true}),
        ),
        (
            reqwest::Method::PUT,
            "/v1/admin/connections/erp",
            json!({"baseUrl": format!("http://{erp}/"), "allowedHosts": [erp.to_string()],
                   "settings": {"attack": "hold-memory", "mib": HELD_MIB.to_string()}}),
        ),
    ] {
        send(&client, &base, method, path, body).await;
    }
    let bytes = std::fs::read(rescind_test_artifacts::HOSTILE).expect("the hostile guest");
    let response = client
        .put(format!("{base}/v1/admin/plugins/hostile"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    assert!(response.status().is_success(), "{}", response.status());
    send(
        &client,
        &base,
        reqwest::Method::PUT,
        "/v1/admin/job-definitions/Hold",
        json!({"jobType": "Execution", "connection": "erp", "integrationProcessor": "hostile",
               "parameters": [{"name": "OrderNumber", "valueType": "String",
                               "defaultValue": "", "prompt": "Order Number"}],
               "enabled": true}),
    )
    .await;
    let filling = Instant::now();
    let orders = load_with(
        reqwest::Method::PUT,
        16,
        queued,
        StatusCode::CREATED,
        Arc::new(move |i| (format!("{base}/v1/orders/MO-{i:06}"), order())),
    )
    .await;
    let base = server.base.clone();
    let cancellations = load(
        16,
        queued,
        StatusCode::CREATED,
        Arc::new(move |i| {
            (
                format!("{base}/v1/orders/MO-{i:06}/cancellations"),
                json!({"cancellationReason": "OUT_OF_STOCK"}),
            )
        }),
    )
    .await;
    assert_eq!(orders.failed + cancellations.failed, 0);
    let filled_in = filling.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_queue = rss_mib(&server);
    server.terminate();

    // 3. Every plugin slot holding 32 MiB, for the soak.
    let server = spawn_serve(dir.path(), WORKERS);
    let busy_from = Instant::now();
    while received.load(Ordering::Relaxed) < WORKERS && busy_from.elapsed() < SPAWN_LIMIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut samples = Vec::with_capacity(soak_secs);
    for _ in 0..soak_secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(rss_mib(&server));
    }
    let delivered = received.load(Ordering::Relaxed);
    server.terminate();

    let busy = median(samples.clone());
    let budget = 150.0 + (WORKERS * HELD_MIB) as f64;
    println!(
        "memory: {queued} jobs queued in {:.0} s; {} CPUs; load average {}",
        filled_in.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!("| state | RSS | goal | ratio to goal |");
    println!("|---|---:|---:|---:|");
    println!("| idle | {idle:.0} MiB | | |");
    println!("| {queued} jobs queued | {with_queue:.0} MiB | | |");
    println!(
        "| {WORKERS} plugins holding {HELD_MIB} MiB each, queue behind them (median of {soak_secs} s) | {busy:.0} MiB | {budget:.0} MiB (150 + {WORKERS} × {HELD_MIB}) | {:.2} |",
        busy / budget
    );
    println!(
        "| the same, host's own share ({busy:.0} − {} MiB held) | {:.0} MiB | 150 MiB | {:.2} |",
        WORKERS * HELD_MIB,
        busy - (WORKERS * HELD_MIB) as f64,
        (busy - (WORKERS * HELD_MIB) as f64) / 150.0
    );
    println!(
        "soak: {} samples, slope {:+.2} MiB/min, {delivered} ERP requests",
        samples.len(),
        slope_per_minute(&samples)
    );
    let slope = slope_per_minute(&samples);
    write_results(
        "memory",
        &[
            Row::new(
                format!("RSS with {queued} jobs queued"),
                with_queue,
                "MiB",
                "RSS idle, same process",
                idle,
            ),
            Row::new(
                format!(
                    "RSS, {WORKERS} plugins holding {HELD_MIB} MiB each (median of {soak_secs} s)"
                ),
                busy,
                "MiB",
                format!("goal: 150 MiB + {WORKERS} × {HELD_MIB} MiB"),
                budget,
            )
            .goal(format!("≤ {budget:.0} MiB"), busy <= budget),
            Row::new(
                format!("RSS slope over the {soak_secs} s soak"),
                slope,
                "MiB/min",
                "median RSS of the soak",
                busy,
            )
            .goal("no growth (≤ +1 MiB/min)", slope <= 1.0),
        ],
    );
}
