//! `replicas`: the store under several replicas. Committed cancellations
//! per second and p50/p99 at N clients (64 by default) with 1, 2 and 3
//! replicas on one PostgreSQL database, beside one host on the embedded
//! SQLite store, in the same run; then jobs per second delivered through
//! the bundled `webhook` plugin to a loopback ERP answering at once, with 1
//! and 3 replicas' workers draining the queue (SQLite: one host).
//!
//! ```sh
//! cargo bench -p rescind-host --bench replicas
//! RESCIND_BENCH_CLIENTS=64 RESCIND_BENCH_REQUESTS=3000 \
//!   RESCIND_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench -p rescind-host --bench replicas
//! ```
//!
//! Every replica runs in this process (each with its own store pools,
//! workers and HTTP listener on 127.0.0.1), so they share this machine's
//! cores with each other, the load generator and PostgreSQL: the figures
//! show what the store costs and how the replicas contend, not how a
//! fleet of machines scales. The bench creates a database of its own on
//! the server and drops it at the end. Every phase is bounded in requests
//! and time.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::routing::post;
use reqwest::StatusCode;
use rescind_host::jobs::WorkerConfig;
use rescind_host::service::{self, RunningService, ServiceConfig};
use rescind_host::store::{JobState, SecretsKey, SecretsKeySource, Store};
use serde_json::json;
use sqlx::Connection;

use support::{ADMIN, Figures, Row, env, load, report, seed_store, write_results};

/// The longest a queue may take to drain.
const DRAIN_LIMIT: Duration = Duration::from_secs(180);

/// An ERP on loopback that accepts every cancellation at once.
async fn erp() -> SocketAddr {
    let app = Router::new().route(
        "/hooks/cancel",
        post(|| async { (axum::http::StatusCode::OK, Json(json!({"id": "ERP-1"}))) }),
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Where a host keeps its store.
#[derive(Clone)]
enum Backend {
    Sqlite(Arc<tempfile::TempDir>),
    Postgres(String),
}

/// A running host.
struct Hosted {
    running: RunningService,
    store: Store,
    /// A replica's own data directory (a SQLite host's is the backend's).
    _data: Option<tempfile::TempDir>,
}

impl Hosted {
    async fn stop(self) {
        self.running
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
    }
}

/// The compile cache every host shares, so that each bundled plugin is
/// compiled once per run.
fn plugin_cache() -> std::path::PathBuf {
    static CACHE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    CACHE
        .get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
        .to_owned()
}

/// Starts a host; `workers` job workers (none: jobs stay queued).
async fn host(backend: &Backend, key: &SecretsKey, workers: usize) -> Hosted {
    let (data, own) = match backend {
        Backend::Sqlite(dir) => (dir.path().to_owned(), None),
        Backend::Postgres(_) => {
            let dir = tempfile::tempdir().expect("temp dir");
            (dir.path().to_owned(), Some(dir))
        }
    };
    let mut config = ServiceConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), data);
    config.plugins.cache_dir = Some(plugin_cache());
    config.admin_token = Some(ADMIN.to_owned());
    config.secrets_key = SecretsKeySource::Given(key.clone());
    if let Backend::Postgres(url) = backend {
        config.database_url = Some(url.clone());
    }
    config.workers = (workers > 0).then(|| WorkerConfig {
        workers,
        ..WorkerConfig::default()
    });
    let running = service::start(config).await.expect("service");
    Hosted {
        store: running.state.store.clone(),
        running,
        _data: own,
    }
}

/// Cancels orders `first..first + requests` from `clients` clients, spread
/// round-robin over `replicas`.
async fn cancel(replicas: &[SocketAddr], clients: usize, first: usize, requests: usize) -> Figures {
    let replicas = replicas.to_vec();
    load(
        clients,
        requests,
        StatusCode::CREATED,
        Arc::new(move |i| {
            let addr = replicas[i % replicas.len()];
            (
                format!("http://{addr}/v1/orders/BO-{:06}/cancellations", first + i),
                json!({"cancellationReason": "OUT_OF_STOCK"}),
            )
        }),
    )
    .await
}

/// Jobs in the store that succeeded and that failed.
async fn settled(store: &Store) -> (i64, i64) {
    let counts = store.job_counts().await.expect("counts");
    let of = |state: JobState| {
        counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    };
    (of(JobState::Succeeded), of(JobState::Failed))
}

/// Starts `replicas` hosts with workers and waits until `target` jobs in
/// all have succeeded; answers jobs per second (of the jobs drained now).
async fn drain(backend: &Backend, key: &SecretsKey, replicas: usize, target: i64) -> f64 {
    let probe = host(backend, key, 0).await;
    let (before, _) = settled(&probe.store).await;
    probe.stop().await;
    let started = Instant::now();
    let mut hosts = Vec::new();
    for _ in 0..replicas {
        hosts.push(host(backend, key, 2).await);
    }
    let store = hosts[0].store.clone();
    loop {
        let (succeeded, failed) = settled(&store).await;
        assert_eq!(failed, 0, "jobs failed");
        if succeeded >= target || started.elapsed() > DRAIN_LIMIT {
            let rate = (succeeded - before) as f64 / started.elapsed().as_secs_f64();
            for hosted in hosts {
                hosted.stop().await;
            }
            return rate;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create_database(server: &str) -> (String, String) {
    let name = format!("rescind_bench_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("the replicas bench needs PostgreSQL at {server}: {e}"));
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("create the bench database");
    let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
    (name.clone(), format!("{base}/{name}"))
}

async fn drop_database(server: &str, name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(server).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await;
    }
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
    let clients: usize = env("RESCIND_BENCH_CLIENTS", 64);
    let requests: usize = env("RESCIND_BENCH_REQUESTS", 3_000);
    let server: String = env(
        "RESCIND_BENCH_POSTGRES",
        "postgres://postgres@127.0.0.1:5432/postgres".to_owned(),
    );
    let key = SecretsKey::generate();
    let erp = erp().await;
    println!(
        "replicas: {clients} clients, {requests} cancellations per phase, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // SQLite: one host, the baseline.
    let sqlite = Backend::Sqlite(Arc::new(tempfile::tempdir().expect("dir")));
    let first = host(&sqlite, &key, 0).await;
    seed_store(&first.store, erp, requests).await;
    let baseline = cancel(&[first.running.addr], clients, 0, requests).await;
    report("SQLite, 1 host", &baseline);
    first.stop().await;
    let sqlite_jobs = drain(&sqlite, &key, 1, requests as i64).await;

    // PostgreSQL: 1, 2 and 3 replicas on one database; each phase cancels
    // orders no other phase touched.
    let (name, url) = create_database(&server).await;
    let postgres = Backend::Postgres(url);
    let seeder = host(&postgres, &key, 0).await;
    seed_store(&seeder.store, erp, 4 * requests).await;
    seeder.stop().await;
    let mut rows = Vec::new();
    for replicas in 1..=3 {
        let mut hosts = Vec::new();
        for _ in 0..replicas {
            hosts.push(host(&postgres, &key, 0).await);
        }
        let addrs: Vec<SocketAddr> = hosts.iter().map(|h| h.running.addr).collect();
        let figures = cancel(&addrs, clients, (replicas - 1) * requests, requests).await;
        report(&format!("PostgreSQL, {replicas} replicas"), &figures);
        rows.push((replicas, figures));
        for hosted in hosts {
            hosted.stop().await;
        }
    }
    // The three phases queued 3 × requests jobs: one replica drains them,
    // then a fourth batch is queued and three replicas drain it.
    let one_replica_jobs = drain(&postgres, &key, 1, 3 * requests as i64).await;
    let queuing = host(&postgres, &key, 0).await;
    let fourth = cancel(&[queuing.running.addr], clients, 3 * requests, requests).await;
    assert_eq!(
        fourth.ok, requests,
        "the fourth batch was not all committed"
    );
    queuing.stop().await;
    let three_replicas_jobs = drain(&postgres, &key, 3, 4 * requests as i64).await;
    drop_database(&server, &name).await;

    println!();
    println!("| store | replicas | cancellations/s | p50 ms | p99 ms | vs SQLite |");
    println!("|---|---|---|---|---|---|");
    let line = |store: &str, replicas: usize, f: &Figures| {
        println!(
            "| {store} | {replicas} | {:.0} | {:.1} | {:.1} | {:.2}× |",
            f.per_second(),
            f.p50.as_secs_f64() * 1000.0,
            f.p99.as_secs_f64() * 1000.0,
            f.per_second() / baseline.per_second()
        );
    };
    line("SQLite", 1, &baseline);
    for (replicas, figures) in &rows {
        line("PostgreSQL", *replicas, figures);
    }
    println!();
    println!("| store | replicas | jobs/s | vs SQLite |");
    println!("|---|---|---|---|");
    println!("| SQLite | 1 | {sqlite_jobs:.0} | 1.00× |");
    println!(
        "| PostgreSQL | 1 | {one_replica_jobs:.0} | {:.2}× |",
        one_replica_jobs / sqlite_jobs
    );
    println!(
        "| PostgreSQL | 3 | {three_replicas_jobs:.0} | {:.2}× |",
        three_replicas_jobs / sqlite_jobs
    );
    let mut results: Vec<Row> = rows
        .iter()
        .map(|(replicas, figures)| {
            Row::new(
                format!("PostgreSQL cancellations, {replicas} replicas, {clients} clients"),
                figures.per_second(),
                "req/s",
                "SQLite, one host",
                baseline.per_second(),
            )
        })
        .collect();
    for (replicas, jobs) in [(1, one_replica_jobs), (3, three_replicas_jobs)] {
        results.push(Row::new(
            format!("PostgreSQL deliveries, {replicas} replicas"),
            jobs,
            "jobs/s",
            "SQLite, one host",
            sqlite_jobs,
        ));
    }
    write_results("replicas", &results);
}
