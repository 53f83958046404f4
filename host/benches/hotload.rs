//! `hotload`: what hot-loading costs, measured through the running service
//! over loopback HTTP.
//!
//! 1. Activation time of a new version: from the start of its upload
//!    (`PUT /v1/admin/plugins/{name}`) to the end of the first job that
//!    ran on it, **cold** (bytes never compiled: the host validates and
//!    compiles them) and **from the cache** (bytes compiled before, by
//!    this or another host sharing the compile cache: only loaded).
//! 2. Job latency (cancellation committed → job succeeded, from the job's
//!    own timestamps) while the active version is swapped every
//!    `RESCIND_BENCH_SWAP_MS` ms, against the same load without swaps, in
//!    the same run: `RESCIND_BENCH_RATE` cancellations per second (below
//!    what the workers deliver, so that queueing does not hide the swap),
//!    two rounds of each, alternating.
//!
//! The versions swapped behave identically: the webhook plugin, and the
//! same component with one extra custom section (another version, the
//! same code), so that only the swap itself can make a difference.
//!
//! ```sh
//! cargo bench -p rescind-host --bench hotload
//! RESCIND_BENCH_JOBS=2000 RESCIND_BENCH_SWAP_MS=25 cargo bench -p rescind-host --bench hotload
//! ```
//!
//! Bounded: a fixed number of samples and jobs per phase, and a time limit
//! per phase. Servers listen on 127.0.0.1 only.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use rescind_host::jobs::WorkerConfig;
use rescind_host::service::{self, PluginsConfig, RunningService, ServiceConfig};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

mod support;

use support::{Row, write_results};

const ADMIN: &str = "bench-admin-token-0123456789abcdef0123";
const PLUGIN: &str = "erp";
/// The longest any phase may run.
const PHASE_LIMIT: Duration = Duration::from_secs(180);

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `bytes` with a custom section appended: a valid component of the same
/// code under another version (sha256).
fn salted(bytes: &[u8], salt: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"rescind-bench-salt";
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(salt.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0); // custom section
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

/// A loopback ERP answering every webhook delivery with its idempotency key.
async fn erp() -> SocketAddr {
    let app = Router::new().route(
        "/hooks/cancel",
        post(|headers: HeaderMap| async move {
            let key = headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            (StatusCode::CREATED, Json(json!({ "id": key })))
        }),
    );
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct Host {
    running: RunningService,
    base: String,
    client: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Host {
    /// A fresh host with the ERP's connection and a job definition naming
    /// the plugin, on which a bootstrap version (the webhook under its own
    /// salt, compiled once into the shared cache) is active: a job
    /// definition names a plugin that exists, and what is measured is the
    /// hot load of a version over another, as an operator does it.
    async fn start(cache: &Path, erp: SocketAddr, webhook: &[u8]) -> Host {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config =
            ServiceConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), data.path());
        config.admin_token = Some(ADMIN.to_owned());
        config.workers = Some(WorkerConfig {
            workers: 2,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(100),
        });
        config.plugins = PluginsConfig {
            cache_dir: Some(cache.to_owned()),
            install_bundled: false,
            ..PluginsConfig::default()
        };
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
        host.send(
            reqwest::Method::PUT,
            "/v1/admin/connections/erp",
            Some(
                json!({"baseUrl": format!("http://{erp}"), "allowedHosts": [erp.to_string()],
                        "settings": {"path": "/hooks/cancel"}, "secrets": {"signingKey": "k"}}),
            ),
        )
        .await;
        host.upload(salted(webhook, "bootstrap"), true).await;
        host.send(
            reqwest::Method::PUT,
            "/v1/admin/job-definitions/OrderCancel",
            Some(json!({"jobType": "Execution", "connection": "erp",
                        "integrationProcessor": PLUGIN, "enabled": true,
                        "retry": {"maxAttempts": 3, "initialBackoffMs": 10, "maxBackoffMs": 20}})),
        )
        .await;
        host
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
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

    async fn upload(&self, bytes: Vec<u8>, activate: bool) -> Value {
        let query = if activate { "" } else { "?activate=false" };
        let response = self
            .client
            .put(format!("{}/v1/admin/plugins/{PLUGIN}{query}", self.base))
            .bearer_auth(ADMIN)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .expect("upload");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.expect("json")
    }

    /// Stores order `number` and cancels it: the job's id.
    async fn cancel(&self, number: &str) -> String {
        self.send(
            reqwest::Method::PUT,
            &format!("/v1/orders/{number}"),
            Some(json!({
                "businessCode": "B1", "customerNumber": "C-1", "website": "main",
                "status": "Submitted", "orderDate": "2024-09-01", "currency": "EUR",
                "lines": [{"lineNumber": 1, "sku": "CHAIR", "quantity": 1,
                           "amountMinor": 10000, "taxMinor": 1900}],
                "payments": [{"id": "p", "method": "card", "authorizedMinor": 11900,
                              "depositedMinor": 0}]
            })),
        )
        .await;
        let answer = self
            .send(
                reqwest::Method::POST,
                &format!("/v1/orders/{number}/cancellations"),
                Some(json!({"cancellationReason": "OUT_OF_STOCK"})),
            )
            .await;
        answer["erpSync"]["jobs"][0]["id"]
            .as_str()
            .expect("a job")
            .to_owned()
    }

    /// Waits (every millisecond, bounded) for the job to end; answers it.
    async fn settled(&self, job: &str) -> Value {
        let limit = Instant::now() + PHASE_LIMIT;
        loop {
            let job = self
                .send(reqwest::Method::GET, &format!("/v1/admin/jobs/{job}"), None)
                .await;
            match job["state"].as_str() {
                Some("succeeded") => return job,
                Some("failed") => panic!("a job failed: {job}"),
                _ if Instant::now() > limit => panic!("a job did not settle: {job}"),
                _ => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
}

fn millis_between(from: &Value, to: &Value) -> f64 {
    let at = |v: &Value| {
        OffsetDateTime::parse(v.as_str().expect("a timestamp"), &Rfc3339).expect("RFC 3339")
    };
    (at(to) - at(from)).as_seconds_f64() * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        *samples.last().unwrap_or(&f64::NAN),
    )
}

/// Upload → first job on the new version, `samples` times, each on a fresh
/// host whose only version is the bootstrap one. `cold`: bytes never
/// compiled before.
async fn activation(
    webhook: &[u8],
    cache: &Path,
    erp: SocketAddr,
    samples: usize,
    cold: bool,
) -> (Vec<f64>, Vec<f64>) {
    let (mut put_ms, mut first_job_ms) = (Vec::new(), Vec::new());
    for n in 0..samples {
        let host = Host::start(cache, erp, webhook).await;
        let bytes = if cold {
            salted(webhook, &format!("cold-{n}-{}", uuid::Uuid::new_v4()))
        } else {
            // Compiled into the shared cache by an earlier host.
            salted(webhook, "cached")
        };
        let compiled_before = host.running.plugins.runtime().compilations();
        let started = Instant::now();
        let info = host.upload(bytes, true).await;
        put_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let job = host.settled(&host.cancel(&format!("ACT-{n}")).await).await;
        first_job_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let version = job["attemptHistory"][0]["pluginVersion"].clone();
        assert_eq!(
            version, info["version"],
            "the first job ran the new version"
        );
        let compiled = host.running.plugins.runtime().compilations() - compiled_before;
        assert_eq!(compiled, u64::from(cold), "cold compiles, cached does not");
        host.running
            .shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");
    }
    (put_ms, first_job_ms)
}

/// Sends `jobs` cancellations from `clients` clients; while it runs,
/// swaps the active version every `swap_every` (if any). Answers each job's
/// latency (committed → succeeded, ms) and how many swaps happened.
async fn job_latencies(
    host: &Arc<Host>,
    versions: &[String; 2],
    jobs: usize,
    clients: usize,
    rate: f64,
    swap_every: Option<Duration>,
    phase: &str,
) -> (Vec<f64>, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let swapper = swap_every.map(|every| {
        let (host, done, versions) = (Arc::clone(host), Arc::clone(&done), versions.clone());
        tokio::spawn(async move {
            let mut swaps = 0;
            while !done.load(Ordering::Relaxed) && started.elapsed() < PHASE_LIMIT {
                tokio::time::sleep(every).await;
                let version = &versions[(swaps + 1) % 2];
                host.send(
                    reqwest::Method::POST,
                    &format!("/v1/admin/plugins/{PLUGIN}/activate"),
                    Some(json!({ "version": version })),
                )
                .await;
                swaps += 1;
            }
            swaps
        })
    });
    // An open, paced flow (job n is sent at n / rate), below what the
    // workers can deliver, so that the latency is the job's own and not
    // the queue's.
    let start = tokio::time::Instant::now();
    let producers: Vec<_> = (0..clients)
        .map(|_| {
            let (host, next) = (Arc::clone(host), Arc::clone(&next));
            let phase = phase.to_owned();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= jobs || started.elapsed() > PHASE_LIMIT {
                        return ids;
                    }
                    tokio::time::sleep_until(start + Duration::from_secs_f64(n as f64 / rate))
                        .await;
                    ids.push(host.cancel(&format!("{phase}-{n}")).await);
                }
            })
        })
        .collect();
    let mut ids = Vec::new();
    for producer in producers {
        ids.extend(producer.await.expect("producer"));
    }
    let mut latencies = Vec::with_capacity(ids.len());
    for id in &ids {
        let job = host.settled(id).await;
        let attempts = job["attemptHistory"].as_array().expect("attempts");
        assert!(
            attempts.iter().all(|a| a["outcome"] == "accepted"),
            "no attempt may fail: {job}"
        );
        let last = attempts.last().expect("an attempt");
        latencies.push(millis_between(&job["createdAt"], &last["endedAt"]));
    }
    done.store(true, Ordering::Relaxed);
    let swaps = match swapper {
        Some(task) => task.await.expect("swapper"),
        None => 0,
    };
    (latencies, swaps)
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
    let samples: usize = env("RESCIND_BENCH_SAMPLES", 5);
    let jobs: usize = env("RESCIND_BENCH_JOBS", 1000);
    let clients: usize = env("RESCIND_BENCH_CLIENTS", 4);
    let swap_ms: u64 = env("RESCIND_BENCH_SWAP_MS", 50);
    let rate: f64 = env("RESCIND_BENCH_RATE", 100.0);
    let webhook = std::fs::read(rescind_test_artifacts::WEBHOOK).expect("the webhook component");
    let cache = tempfile::tempdir().expect("cache dir");
    let erp = erp().await;
    println!(
        "hotload: webhook plugin {} bytes; {samples} activation samples; {jobs} jobs per latency \
         phase from {clients} clients at {rate} jobs/s; swap every {swap_ms} ms; {} CPUs",
        webhook.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let (cold_put, cold_first) = activation(&webhook, cache.path(), erp, samples, true).await;
    // Compile the "cached" bytes once, into the shared cache.
    {
        let host = Host::start(cache.path(), erp, &webhook).await;
        host.upload(salted(&webhook, "cached"), false).await;
        host.running
            .shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");
    }
    let (cached_put, cached_first) = activation(&webhook, cache.path(), erp, samples, false).await;
    for (name, put, first) in [
        ("cold (validate + compile)", cold_put, cold_first.clone()),
        ("from the compile cache", cached_put, cached_first.clone()),
    ] {
        let (put50, _, put_max) = summary(put);
        let (first50, _, first_max) = summary(first);
        println!(
            "activation {name:<26} upload answered: median {put50:>7.1} ms (max {put_max:>7.1}); \
             upload → first job done: median {first50:>7.1} ms (max {first_max:>7.1})"
        );
    }

    let host = Arc::new(Host::start(cache.path(), erp, &webhook).await);
    let v1 = host.upload(webhook.clone(), true).await["version"]
        .as_str()
        .expect("version")
        .to_owned();
    let v2 = host.upload(salted(&webhook, "swap"), false).await["version"]
        .as_str()
        .expect("version")
        .to_owned();
    let versions = [v1, v2];
    // Warm-up: connections, instance pool, SQLite pages.
    job_latencies(&host, &versions, 100, clients, rate, None, "warm").await;
    // Alternating phases, so that neither side gets the quieter moment.
    let (mut steady, mut swapping, mut swaps) = (Vec::new(), Vec::new(), 0);
    for round in 0..2 {
        let (latencies, _) = job_latencies(
            &host,
            &versions,
            jobs,
            clients,
            rate,
            None,
            &format!("steady{round}"),
        )
        .await;
        steady.extend(latencies);
        let (latencies, n) = job_latencies(
            &host,
            &versions,
            jobs,
            clients,
            rate,
            Some(Duration::from_millis(swap_ms)),
            &format!("swap{round}"),
        )
        .await;
        swapping.extend(latencies);
        swaps += n;
    }
    let (s50, s99, smax) = summary(steady.clone());
    let (w50, w99, wmax) = summary(swapping.clone());
    println!(
        "job latency without swaps: {:>5} jobs  p50 {s50:>6.1} ms  p99 {s99:>6.1} ms  max {smax:>6.1} ms",
        steady.len()
    );
    println!(
        "job latency with {swaps:>3} swaps: {:>5} jobs  p50 {w50:>6.1} ms  p99 {w99:>6.1} ms  max {wmax:>6.1} ms",
        swapping.len()
    );
    println!(
        "ratio (swapping / steady): p50 {:.2}×, p99 {:.2}×",
        w50 / s50,
        w99 / s99
    );
    let (cold50, _, _) = summary(cold_first);
    let (cached50, _, _) = summary(cached_first);
    write_results(
        "hotload",
        &[
            Row::new(
                "activation from the compile cache, upload → first job done (median)",
                cached50,
                "ms",
                "the same, cold (validate + compile)",
                cold50,
            )
            .goal("≤ 20 ms", cached50 <= 20.0),
            Row::new(
                format!("job latency p99, active version swapped every {swap_ms} ms"),
                w99,
                "ms",
                "job latency p99 without swaps",
                s99,
            ),
        ],
    );
}
