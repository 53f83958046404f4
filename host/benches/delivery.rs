//! `delivery`: how many ERP deliveries a host sustains, through a bundled
//! plugin (`aaas`, Accounting as a Service, by default; `webhook` with
//! `RESCIND_BENCH_PLUGIN=webhook`) to a loopback ERP that answers each
//! request after a fixed delay (1 ms: a fast ERP; 50 ms: a real one, where
//! the number of attempts in flight decides the rate).
//!
//! Each phase fills a store with queued jobs first (a service without
//! workers takes `N` cancellations over HTTP, each queueing one job), stops
//! it, and starts the service again on the same data directory with `W`
//! workers. The figure is the rate between the ERP's first and last request:
//! jobs per second, against what the concurrency allows (`min(W, plugin
//! slots) / delay`) as a ratio; beside it, how long the ERP held a request
//! on average: the delay it names and 0.1 to 0.2 ms more (the kernel's
//! timer slack and a thread hop; tokio's own timer held 1 ms requests
//! about 2 ms, see `start_erp`). The service and the ERP share the process
//! (and the machine's two cores). Every job must end `succeeded`: a phase
//! whose plugin failed its jobs fails the bench rather than report how fast
//! it failed them.
//!
//! ```sh
//! cargo bench -p rescind-host --bench delivery
//! RESCIND_BENCH_WORKERS=4,16 RESCIND_BENCH_DELAYS_MS=1,50 cargo bench -p rescind-host --bench delivery
//! ```
//!
//! Bounded: a fixed number of jobs per phase (`RESCIND_BENCH_JOBS` at
//! 1 ms, 40 per worker at longer delays) and a time limit per phase.
//! Servers listen on 127.0.0.1 only.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use reqwest::StatusCode;
use rescind_host::jobs::WorkerConfig;
use rescind_host::plugins::RuntimeConfig;
use rescind_host::service::{self, PluginsConfig, ServiceConfig};
use rescind_host::store::{JobState, Store};
use serde_json::{Value, json};
use support::{ADMIN, PHASE_LIMIT, Row, env, load, seed_store, write_results};

mod support;

/// What the ERP saw: when each request arrived, and how long it held them
/// all before answering.
#[derive(Debug, Default)]
struct ErpLog {
    arrivals: Vec<Instant>,
    held: Duration,
}

type Erp = Arc<Mutex<ErpLog>>;

/// A loopback ERP answering every request `delay` after it arrived, with
/// what both plugins read as an acceptance.
///
/// It waits on a blocking thread (`std::thread::sleep`, the kernel's
/// high-resolution timer), not with `tokio::time::sleep`: tokio's timer
/// counts whole milliseconds and rounds a sleep up to the next tick, so a
/// 1 ms sleep held each request 1.9 to 2.1 ms and the bench measured an
/// ERP twice as slow as the one it names. What it held is reported.
async fn start_erp(delay: Duration) -> (SocketAddr, Erp) {
    async fn receive(State((erp, delay)): State<(Erp, Duration)>) -> Json<Value> {
        let arrived = Instant::now();
        erp.lock().expect("the ERP's log").arrivals.push(arrived);
        let answer_at = arrived + delay;
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(answer_at.saturating_duration_since(Instant::now()));
        })
        .await
        .expect("the ERP's wait");
        erp.lock().expect("the ERP's log").held += arrived.elapsed();
        Json(json!({"id": "ERP-1", "internalRequestId": "ERP-1"}))
    }
    let erp: Erp = Arc::default();
    let app = axum::Router::new()
        .fallback(receive)
        .with_state((Arc::clone(&erp), delay));
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind the ERP");
    let addr = listener.local_addr().expect("the ERP's address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, erp)
}

/// The bundled plugin the jobs go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plugin {
    /// Accounting as a Service: a bearer token, one `POST` per job to the
    /// order's `/businesses/…/cancellations`.
    Aaas,
    /// A signed `POST` to the connection's `path`.
    Webhook,
}

impl Plugin {
    fn from_env() -> Self {
        match std::env::var("RESCIND_BENCH_PLUGIN").as_deref() {
            Err(_) | Ok("aaas") => Plugin::Aaas,
            Ok("webhook") => Plugin::Webhook,
            Ok(other) => panic!("RESCIND_BENCH_PLUGIN: {other:?} (aaas or webhook)"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Plugin::Aaas => "aaas",
            Plugin::Webhook => "webhook",
        }
    }

    /// Points the seeded `OrderCancel` definition at this plugin, with a
    /// connection it accepts (the seed is the webhook's).
    async fn configure(self, store: &Store, erp: SocketAddr) {
        if self == Plugin::Webhook {
            return;
        }
        store
            .put_connection(
                &support::erp_connection(
                    erp,
                    Default::default(),
                    [("apiToken".to_owned(), "bench-api-token".to_owned())].into(),
                ),
                false,
            )
            .await
            .expect("connection");
        let mut definition = store
            .job_definition("OrderCancel")
            .await
            .expect("read")
            .expect("the seeded definition");
        definition.integration_processor = self.name().to_owned();
        store
            .put_job_definition(&definition)
            .await
            .expect("definition");
    }
}

fn config(data: &Path, cache: &Path, workers: Option<usize>) -> ServiceConfig {
    let mut config = ServiceConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), data);
    config.admin_token = Some(ADMIN.to_owned());
    config.workers = workers.map(|workers| WorkerConfig {
        workers,
        lease: Duration::from_secs(60),
        poll_interval: Duration::from_millis(500),
    });
    config.plugins = PluginsConfig {
        cache_dir: Some(cache.to_owned()),
        install_bundled: true,
        ..PluginsConfig::default()
    };
    config
}

/// One phase: `jobs` jobs queued, then delivered by `workers` workers to
/// an ERP answering after `delay`. Answers the rate (jobs/s) between the
/// first and the last request the ERP received, how many arrived, and
/// how long the ERP held each on average.
async fn phase(
    cache: &Path,
    plugin: Plugin,
    delay: Duration,
    workers: usize,
    jobs: usize,
) -> (f64, usize, Duration) {
    let (erp, erp_log) = start_erp(delay).await;
    let data = tempfile::tempdir().expect("data dir");

    // Queue the jobs: a service without workers takes the cancellations.
    let filling = service::start(config(data.path(), cache, None))
        .await
        .expect("service");
    seed_store(&filling.state.store, erp, jobs).await;
    plugin.configure(&filling.state.store, erp).await;
    let addr = filling.addr;
    let queued = load(
        16,
        jobs,
        StatusCode::CREATED,
        Arc::new(move |i| {
            (
                format!("http://{addr}/v1/orders/BO-{i:06}/cancellations"),
                json!({"cancellationReason": "OUT_OF_STOCK"}),
            )
        }),
    )
    .await;
    assert_eq!(queued.failed, 0, "every cancellation is committed");
    filling
        .shutdown(Duration::from_secs(5))
        .await
        .expect("shutdown");

    // Deliver them.
    let delivering = service::start(config(data.path(), cache, Some(workers)))
        .await
        .expect("service");
    let limit = Instant::now() + PHASE_LIMIT;
    while erp_log.lock().expect("the ERP's log").arrivals.len() < jobs && Instant::now() < limit {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let arrived = erp_log.lock().expect("the ERP's log").arrivals.clone();
    // Each delivery must have been an acceptance (its record follows the
    // ERP's answer by a moment).
    let mut succeeded = 0;
    let settle_by = Instant::now() + Duration::from_secs(10);
    while Instant::now() < settle_by {
        succeeded = delivering
            .state
            .store
            .job_counts()
            .await
            .expect("job counts")
            .iter()
            .find(|(state, _)| *state == JobState::Succeeded)
            .map_or(0, |(_, n)| *n);
        if succeeded >= arrived.len() as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        succeeded,
        arrived.len() as i64,
        "every job the ERP received succeeded, through {}",
        plugin.name()
    );
    delivering
        .shutdown(Duration::from_secs(5))
        .await
        .expect("shutdown");
    let rate = match (arrived.first(), arrived.last()) {
        (Some(first), Some(last)) if arrived.len() > 1 => {
            (arrived.len() - 1) as f64 / last.duration_since(*first).as_secs_f64()
        }
        _ => 0.0,
    };
    // Every request that arrived was answered (its job succeeded, as
    // checked above), so its hold is counted.
    let held = erp_log.lock().expect("the ERP's log").held;
    let mean_held = held / u32::try_from(arrived.len().max(1)).unwrap_or(u32::MAX);
    (rate, arrived.len(), mean_held)
}

fn list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|n| n.trim().parse().unwrap_or_else(|_| panic!("{name}: {n:?}")))
        .collect()
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
    let fast_jobs: usize = env("RESCIND_BENCH_JOBS", 2_000);
    let delays = list("RESCIND_BENCH_DELAYS_MS", "1,50");
    let worker_counts = list("RESCIND_BENCH_WORKERS", "2,8,32");
    let slots = RuntimeConfig::default().max_concurrent_calls as usize;
    let plugin = Plugin::from_env();
    let cache = tempfile::tempdir().expect("cache dir");
    println!(
        "delivery: the {} plugin to a loopback ERP; {slots} plugin slots; {} CPUs; load \
         average {}",
        plugin.name(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!(
        "| ERP delay | ERP held (mean) | workers | jobs | delivered | jobs/s | concurrency allows \
         | ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for delay_ms in delays {
        let delay = Duration::from_millis(delay_ms);
        for &workers in &worker_counts {
            let workers = workers as usize;
            let jobs = if delay_ms <= 1 {
                fast_jobs
            } else {
                (40 * workers.min(slots)).max(100)
            };
            let (rate, delivered, held) = phase(cache.path(), plugin, delay, workers, jobs).await;
            let allowed = workers.min(slots) as f64 / delay.as_secs_f64();
            println!(
                "| {delay_ms} ms | {:.2} ms | {workers} | {jobs} | {delivered} | {rate:.0} | \
                 {allowed:.0} | {:.2} |",
                held.as_secs_f64() * 1e3,
                rate / allowed
            );
            let row = Row::new(
                format!(
                    "deliveries through {}, ERP answering in {delay_ms} ms, {workers} workers",
                    plugin.name()
                ),
                rate,
                "jobs/s",
                format!("what the concurrency allows (min({workers}, {slots}) / {delay_ms} ms)"),
                allowed,
            );
            // The issue's goals: ≥ 2,000 jobs/s with a fast ERP, for a pool
            // whose concurrency allows more than that (two workers at 1 ms
            // allow 2,000 at best: that row carries no goal); with a slow
            // ERP, limited only by the concurrency (taken as ≥ 0.8 of what
            // it allows).
            rows.push(if delay_ms <= 1 {
                if allowed > 2_000.0 {
                    row.goal("≥ 2,000 jobs/s", rate >= 2_000.0)
                } else {
                    row
                }
            } else {
                row.goal(
                    "≥ 0.8 of what the concurrency allows",
                    rate >= 0.8 * allowed,
                )
            });
        }
    }
    write_results("delivery", &rows);
}
