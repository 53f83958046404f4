//! `scaling`: whether a cancellation costs more as the store grows.
//!
//! 1. **Orders**: committed cancellations per second and p99 over loopback
//!    HTTP (the client load of `cancel_api`: N concurrent clients, a fixed
//!    number of requests per round) with 10k, 100k, 1M and 10M orders in
//!    the SQLite store. One store grows from size to size: the orders are
//!    added by a bulk loader (SQL `INSERT … SELECT` in large transactions,
//!    straight into the file the product's own migrations made), not
//!    through the API; the service is started on it for each size and
//!    cancels orders of the range just added, spread over it in an order
//!    that jumps about (neighbours one after the other would flatter the
//!    small stores); it reports the bytes written to disk per cancellation
//!    and the CPU each one cost the cancellation writer's thread (what
//!    bounds the rate when that thread is busy) and the whole process.
//! 2. **Jobs**: the same cancellations, and a claim of due jobs, with an
//!    empty job table and with 1,000,000 finished jobs (each with an
//!    attempt and a cancellation) in it: two stores of the same 100,000
//!    orders served side by side, their rounds (five of 6,000 at least)
//!    and their claims taken in turns; then the time the job retention takes to prune those
//!    1M, and the cancellations while it does.
//!
//! The baseline of every ratio is measured in the same run: the smallest
//! size, or the empty job table.
//!
//! ```sh
//! cargo bench -p rescind-host --bench scaling
//! RESCIND_BENCH_SCALES=10000,100000,1000000,10000000 RESCIND_BENCH_LOAD_LIMIT=1200 \
//!   cargo bench -p rescind-host --bench scaling
//! ```
//!
//! Knobs: `RESCIND_BENCH_SCALES` (order counts), `RESCIND_BENCH_CLIENTS`
//! (64), `RESCIND_BENCH_REQUESTS` (per round, 3000), `RESCIND_BENCH_ROUNDS`
//! (3; the job part takes five of 6,000 when its orders hold them),
//! `RESCIND_BENCH_LOAD_LIMIT` (seconds the order loader may take in all,
//! 900: a size it cannot reach in time is reported as not measured),
//! `RESCIND_BENCH_JOBS` (finished jobs, 1,000,000; 0 skips part 2),
//! `RESCIND_BENCH_CLAIMS` (claims timed per phase, 300).
//!
//! Writes `scaling.json` where every bench writes its figures
//! (`target/bench-results/`, or `$RESCIND_BENCH_RESULTS`). Every phase is bounded in
//! requests and time; servers listen on 127.0.0.1 only.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rescind_host::jobs::retention;
use rescind_host::service::{self, RunningService, ServiceConfig};
use rescind_host::store::{AttemptResult, JobState, Store, StoreOptions, now_ms};
use serde_json::{Value, json};

mod support;

use support::{ADMIN, Figures, cpu_ns, cpu_per, env, load, median, report, seed_store};

/// Orders loaded per transaction.
const LOAD_CHUNK: usize = 250_000;

/// Requests sent before each measurement, not counted.
const WARMUP: usize = 300;

/// Jobs one timed claim asks for.
const CLAIM_BATCH: u32 = 10;

/// An old time: 40 days ago, past the 30-day retention.
fn forty_days_ago() -> i64 {
    now_ms() - 40 * 24 * 3600 * 1000
}

fn main() {
    support::as_served();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

struct Knobs {
    clients: usize,
    requests: usize,
    rounds: usize,
}

/// One row of the JSON report.
struct Row {
    figure: String,
    value: f64,
    unit: &'static str,
    baseline: String,
    baseline_value: f64,
    goal: String,
    /// Whether the goal holds, given the ratio; `None` for no goal.
    met: Option<bool>,
}

impl Row {
    fn to_json(&self) -> Value {
        let ratio = if self.baseline_value > 0.0 {
            self.value / self.baseline_value
        } else {
            f64::NAN
        };
        json!({
            "figure": self.figure, "value": finite(self.value), "unit": self.unit,
            "baseline": self.baseline, "baselineValue": finite(self.baseline_value),
            "ratio": finite(ratio), "goal": self.goal, "met": self.met,
        })
    }
}

fn finite(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

/// The median round of a measurement: throughput and p99 in ms.
#[derive(Clone, Copy)]
struct Measured {
    throughput: f64,
    p99_ms: f64,
    p50_ms: f64,
}

fn summarize(rounds: &[Figures]) -> Measured {
    Measured {
        throughput: median(rounds.iter().map(Figures::per_second).collect()),
        p99_ms: median(
            rounds
                .iter()
                .map(|f| f.p99.as_secs_f64() * 1000.0)
                .collect(),
        ),
        p50_ms: median(
            rounds
                .iter()
                .map(|f| f.p50.as_secs_f64() * 1000.0)
                .collect(),
        ),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

async fn start_service(dir: &Path) -> RunningService {
    let mut config = ServiceConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), dir);
    config.admin_token = Some(ADMIN.to_owned());
    // Workers off: the API and its commit (outbox row included) are
    // measured; the claims below are made by hand. The retention is off:
    // part 2 prunes when it means to.
    config.workers = None;
    config.job_retention = retention::JobRetention::Off;
    config.plugins.install_bundled = false;
    service::start(config).await.expect("service")
}

/// A store made by the product (migrations, the insite settings, an ERP
/// connection and an enabled `OrderCancel` definition), without orders.
async fn create_store(dir: &Path) {
    let store = Store::open(&StoreOptions::new(dir)).await.expect("store");
    seed_store(&store, SocketAddr::from((Ipv4Addr::LOCALHOST, 9)), 0).await;
    store.close().await;
}

/// Distinct positions in `0..span`, the `k`-th answered for `k < span`,
/// each far from the one before: `k` times a step near the golden section
/// of `span` and coprime with it, modulo `span`.
fn spread(span: usize) -> impl Fn(usize) -> usize + Send + Sync + 'static {
    let span = span.max(1) as u64;
    let gcd = |mut a: u64, mut b: u64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut step = ((span as f64 * 0.618_034) as u64).max(1);
    while gcd(step, span) != 1 {
        step += 1;
    }
    move |k| ((k as u64 * step) % span) as usize
}

/// Bytes this process has caused to be written to the disk so far
/// (`write_bytes` of `/proc/self/io`: the WAL, and the checkpoints' copies
/// into the database file); `None` where the kernel does not say.
fn disk_writes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Order `i`'s number: `BO-00000042`.
fn order_number(i: usize) -> String {
    format!("BO-{i:08}")
}

/// Adds the orders `from..to` to the store in `dir` (stopped), each like
/// the benches' `seed_order` (a chair and its warranty, an authorized card
/// payment, an allocation), `LOAD_CHUNK` a transaction. Stops after the
/// chunk that passes `deadline`; answers how many orders the store holds.
fn load_orders(dir: &Path, from: usize, to: usize, deadline: Instant) -> usize {
    let db = bulk_connection(dir);
    let now = now_ms();
    let mut at = from;
    while at < to {
        if Instant::now() >= deadline {
            break;
        }
        let end = (at + LOAD_CHUNK).min(to);
        let range = format!(
            "WITH RECURSIVE n(i) AS (SELECT {at} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {end})"
        );
        let tx = db.unchecked_transaction().expect("begin");
        tx.execute_batch(&format!(
            "{range}
             INSERT INTO orders (number, business_code, customer_number, website, status,
                 order_date, currency, erp_order_number, approval_state, tracking, updated_at,
                 lines, payments, allocations)
             SELECT printf('BO-%08d', i), 'B1', 'C-' || (i % 5000), 'main', 'Submitted',
                 '2024-09-01', 'EUR', 'ERP-' || i, NULL, NULL, {now},
                 json_array(
                     json_array(1, 'CHAIR', 1, 20000, 3800, NULL, 'product', '[]', 'active',
                         NULL),
                     json_array(2, 'WARRANTY', 1, 1500, 285, 1, 'product', '[]', 'active',
                         NULL)),
                 json_array(json_array(0, 'pay-' || i, 'card', 25585, 0, 0, 0)),
                 json_array(json_array(0, 1, 'W1', 1, 'existing', 'allocated'))
             FROM n;"
        ))
        .expect("load orders");
        tx.commit().expect("commit");
        db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
        at = end;
    }
    at
}

/// A connection for bulk loading into the stopped store's file.
fn bulk_connection(dir: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(dir.join("rescind.db")).expect("open the database");
    db.execute_batch(
        "PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000; PRAGMA foreign_keys = ON;",
    )
    .expect("pragmas");
    db
}

/// Adds `count` finished jobs (nine in ten succeeded, one failed), 40 days
/// old, each with one attempt and a cancellation of its own, to the stopped
/// store in `dir`; and marks every queued job of the run so far succeeded,
/// so that the phases claim from alike queues. The cancellations and jobs
/// belong to the store's `orders` orders, spread over them as a store that
/// kept its deliveries holds them (ten each for 1M jobs over 100k orders),
/// so that the indexes by order are as large and as mixed as a real
/// store's: a new cancellation's entries land among old ones, and one after
/// the other they land far apart.
fn load_finished_jobs(dir: &Path, count: usize, orders: usize) {
    let db = bulk_connection(dir);
    let old = forty_days_ago();
    db.execute_batch(&format!(
        "UPDATE jobs SET state = 'succeeded', updated_at = {old}, run_at = {old}
             WHERE state = 'queued';"
    ))
    .expect("prepare");
    // The order of job `i`: `i` times a step near the golden section of
    // the orders, as `spread` picks them.
    let step = spread(orders)(1);
    let order = format!("printf('BO-%08d', (i * {step}) % {orders})");
    let mut at = 0;
    while at < count {
        let end = (at + LOAD_CHUNK).min(count);
        let range = format!(
            "WITH RECURSIVE n(i) AS (SELECT {at} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {end})"
        );
        let tx = db.unchecked_transaction().expect("begin");
        tx.execute_batch(&format!(
            "{range}
             INSERT INTO cancellations (id, order_number, customer_number, record, created_at)
             SELECT printf('bulk-c-%08d', i), {order}, 'C-0', '{{}}', {old} + i FROM n;
             {range}
             INSERT INTO jobs (id, definition, order_number, cancellation_id, request_id,
                 parameters, state, attempts, attempt_base, max_attempts, initial_backoff_ms,
                 max_backoff_ms, run_at, lease_owner, lease_expires_at, erp_reference,
                 last_error, created_at, updated_at)
             SELECT printf('bulk-j-%08d', i), 'OrderCancel', {order},
                 printf('bulk-c-%08d', i), 'bulk-r-' || i,
                 json_object('OrderNumber', {order}),
                 CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'succeeded' END, 1, 0, 8, 1000,
                 300000, {old} + i, NULL, NULL,
                 CASE WHEN i % 10 = 0 THEN NULL ELSE 'ERP-' || i END,
                 CASE WHEN i % 10 = 0 THEN 'rejected: no such order' ELSE NULL END,
                 {old} + i, {old} + i FROM n;
             {range}
             INSERT INTO job_attempts (job_id, number, worker, started_at, ended_at, outcome,
                 message, erp_reference, plugin_version, log, exchange)
             SELECT printf('bulk-j-%08d', i), 1, 'bulk', {old} + i, {old} + i,
                 CASE WHEN i % 10 = 0 THEN 'rejected' ELSE 'accepted' END, NULL, NULL,
                 'sha256:bulk', '[]', NULL FROM n;"
        ))
        .expect("load jobs");
        tx.commit().expect("commit");
        db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
        at = end;
    }
}

/// Where the cancellations of one phase go: a service and the orders it
/// cancels, the `k`-th being `slot(k)`.
type Phase = (SocketAddr, Arc<dyn Fn(usize) -> usize + Send + Sync>);

/// The cancellation of the phase's orders from the `offset`-th on, as the
/// load sends them.
fn cancellations(
    phase: &Phase,
    offset: usize,
) -> Arc<dyn Fn(usize) -> (String, Value) + Send + Sync> {
    let (addr, slot) = (phase.0, Arc::clone(&phase.1));
    Arc::new(move |i: usize| {
        (
            format!(
                "http://{addr}/v1/orders/{}/cancellations",
                order_number(slot(offset + i))
            ),
            json!({"cancellationReason": "OUT_OF_STOCK"}),
        )
    })
}

/// The phase's warm-up: cancellations sent first and not counted.
async fn warm_up(knobs: &Knobs, phase: &Phase) {
    let warm = load(
        knobs.clients,
        WARMUP,
        StatusCode::CREATED,
        cancellations(phase, 0),
    )
    .await;
    assert_eq!(warm.failed, 0, "the warm-up cancellations failed");
}

/// The phase's round `round` (after its warm-up).
async fn cancel_round(knobs: &Knobs, phase: &Phase, round: usize, name: &str) -> Figures {
    let figures = load(
        knobs.clients,
        knobs.requests,
        StatusCode::CREATED,
        cancellations(phase, WARMUP + round * knobs.requests),
    )
    .await;
    report(&format!("    round {}{name}", round + 1), &figures);
    figures
}

/// Rounds of cancellations of the orders `slot(k)` (warm-up first, not
/// counted); answers each round's figures.
async fn cancel_rounds(
    addr: SocketAddr,
    knobs: &Knobs,
    slot: Arc<dyn Fn(usize) -> usize + Send + Sync>,
) -> Vec<Figures> {
    let phase: Phase = (addr, slot);
    warm_up(knobs, &phase).await;
    let mut rounds = Vec::new();
    for round in 0..knobs.rounds {
        rounds.push(cancel_round(knobs, &phase, round, "").await);
    }
    rounds
}

/// The rounds of two phases taken in turns (a b, b a, a b, …), so that a
/// change in the machine's speed while they run falls on both alike and
/// neither always goes first; answers each phase's rounds.
async fn alternate_rounds(
    knobs: &Knobs,
    a: (&Phase, &str),
    b: (&Phase, &str),
) -> (Vec<Figures>, Vec<Figures>) {
    warm_up(knobs, a.0).await;
    warm_up(knobs, b.0).await;
    let (mut of_a, mut of_b) = (Vec::new(), Vec::new());
    for round in 0..knobs.rounds {
        if round % 2 == 0 {
            of_a.push(cancel_round(knobs, a.0, round, a.1).await);
            of_b.push(cancel_round(knobs, b.0, round, b.1).await);
        } else {
            of_b.push(cancel_round(knobs, b.0, round, b.1).await);
            of_a.push(cancel_round(knobs, a.0, round, a.1).await);
        }
    }
    (of_a, of_b)
}

/// The median time of `GET /metrics` (which counts the jobs in each
/// state), in ms, over a few scrapes.
async fn time_scrapes(addr: SocketAddr) -> f64 {
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let answer = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("scrape");
        assert!(answer.status().is_success());
        let _ = answer.bytes().await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(times)
}

/// Times one claim of up to [`CLAIM_BATCH`] due jobs from `store`, then
/// finishes every claimed job (untimed); answers the claim's time in ms,
/// or `None` when nothing was due.
async fn time_claim(store: &Store) -> Option<f64> {
    let t = Instant::now();
    let claimed = store
        .claim_due_jobs("bench", CLAIM_BATCH, 60_000)
        .await
        .expect("claim");
    let took = t.elapsed().as_secs_f64() * 1000.0;
    if claimed.is_empty() {
        return None;
    }
    for job in &claimed {
        let result = AttemptResult {
            outcome: "accepted".to_owned(),
            message: None,
            erp_reference: Some("ERP".to_owned()),
            plugin_version: None,
            log: Vec::new(),
            exchange: None,
            next: JobState::Succeeded,
            retry_at_ms: 0,
        };
        store
            .finish_attempt(job, "bench", &result)
            .await
            .expect("finish");
    }
    Some(took)
}

/// Times `claims` claims from each of `a` and `b`, taken in turns (a b,
/// b a, a b, …) so that a passing slowdown of the machine falls on both;
/// answers each store's (p50, p99) in ms.
async fn time_claims_in_turns(a: &Store, b: &Store, claims: usize) -> ((f64, f64), (f64, f64)) {
    let mut times = (Vec::with_capacity(claims), Vec::with_capacity(claims));
    let limit = Instant::now() + support::PHASE_LIMIT;
    for turn in 0..claims {
        if Instant::now() > limit {
            break;
        }
        let (first, second) = if turn % 2 == 0 { (a, b) } else { (b, a) };
        let (Some(x), Some(y)) = (time_claim(first).await, time_claim(second).await) else {
            break;
        };
        let (for_a, for_b) = if turn % 2 == 0 { (x, y) } else { (y, x) };
        times.0.push(for_a);
        times.1.push(for_b);
    }
    let p50_p99 = |samples: &[f64]| {
        (
            support::percentile(samples, 50.0),
            support::percentile(samples, 99.0),
        )
    };
    (p50_p99(&times.0), p50_p99(&times.1))
}

async fn run() {
    let mut scales: Vec<usize> = std::env::var("RESCIND_BENCH_SCALES")
        .ok()
        .map(|s| {
            s.split(',')
                .filter_map(|n| n.trim().replace('_', "").parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000, 10_000_000]);
    scales.sort_unstable();
    scales.dedup();
    let knobs = Knobs {
        clients: env("RESCIND_BENCH_CLIENTS", 64),
        requests: env("RESCIND_BENCH_REQUESTS", 3000),
        rounds: env::<usize>("RESCIND_BENCH_ROUNDS", 3).max(1),
    };
    let load_limit = Duration::from_secs(env("RESCIND_BENCH_LOAD_LIMIT", 900));
    let jobs: usize = env("RESCIND_BENCH_JOBS", 1_000_000);
    let claims: usize = env("RESCIND_BENCH_CLAIMS", 300);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load_at_start = load_average();
    println!(
        "scaling: sizes {scales:?}; {} clients, {} requests x {} rounds per size; {cpus} CPUs; \
         load average {load_at_start}",
        knobs.clients, knobs.requests, knobs.rounds
    );

    let mut rows: Vec<Row> = Vec::new();
    let mut curve: Vec<Value> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    // Part 1: the order table.
    let dir = bench_dir("orders");
    create_store(&dir).await;
    let deadline = Instant::now() + load_limit;
    let mut loaded = 0;
    let mut baseline: Option<(usize, Measured)> = None;
    let mut base_written: Option<Option<f64>> = None;
    let mut base_cpu: Option<Option<f64>> = None;
    for &size in &scales {
        let needed = WARMUP + knobs.requests * knobs.rounds;
        if size - loaded < needed {
            notes.push(format!(
                "{size} orders: skipped, the range added ({}) is smaller than the {needed} orders \
                 a measurement cancels",
                size - loaded
            ));
            continue;
        }
        let t = Instant::now();
        let reached = load_orders(&dir, loaded, size, deadline);
        let took = t.elapsed().as_secs_f64();
        println!(
            "  loaded orders {loaded}..{reached} in {took:.1} s ({:.0} orders/s)",
            (reached - loaded) as f64 / took.max(1e-9)
        );
        if reached < size {
            notes.push(format!(
                "{size} orders: not measured: the loader reached {reached} orders when its \
                 time limit ({} s, RESCIND_BENCH_LOAD_LIMIT) ran out",
                load_limit.as_secs()
            ));
            println!("  {}", notes.last().unwrap());
            break;
        }
        let from = loaded;
        loaded = reached;
        let running = start_service(&dir).await;
        println!("  {size} orders:");
        // Distinct orders of the range just added, in an order that jumps
        // all over it, as customers' cancellations do: each size's
        // cancellations touch as few neighbouring rows as the range allows.
        // (Cancelling neighbours one after the other would let the smallest
        // store write one page for many cancellations and flatter it.)
        let span = size - from;
        let before = disk_writes();
        let cpu_before = cpu_ns();
        let rounds = cancel_rounds(
            running.addr,
            &knobs,
            Arc::new({
                let position = spread(span);
                move |k: usize| from + position(k)
            }),
        )
        .await;
        let written = disk_writes()
            .zip(before)
            .map(|(after, before)| after - before);
        let cancellations = WARMUP + knobs.requests * knobs.rounds;
        // Microseconds of CPU per cancellation: the writer thread's, and
        // the whole process's (the in-process clients included); read
        // before the service stops, while its writer thread still counts.
        let cpu_per_cancel = cpu_per(cpu_before, cancellations);
        let writer_cpu = cpu_per_cancel.map(|(writer, _)| writer);
        running
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
        let m = summarize(&rounds);
        println!(
            "    median: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            m.throughput, m.p50_ms, m.p99_ms
        );
        let written_per_cancel = written.map(|bytes| bytes as f64 / cancellations as f64);
        if let Some(bytes) = written_per_cancel {
            println!(
                "    written to disk: {:.1} KiB per cancellation",
                bytes / 1024.0
            );
        }
        if let Some((writer, all)) = cpu_per_cancel {
            println!(
                "    CPU per cancellation: writer thread {writer:.1} µs, whole process {all:.1} µs"
            );
        }
        curve.push(
            json!({"orders": size, "throughput": m.throughput, "p99Ms": m.p99_ms,
            "diskBytesPerCancellation": written_per_cancel,
            "writerCpuUsPerCancellation": writer_cpu,
            "processCpuUsPerCancellation": cpu_per_cancel.map(|(_, all)| all)}),
        );
        let (base_size, base) = *baseline.get_or_insert((size, m));
        let base_name = format!("{} orders, same run", thousands(base_size));
        rows.push(Row {
            figure: format!("cancel throughput, {} orders", thousands(size)),
            value: m.throughput,
            unit: "req/s",
            baseline: base_name.clone(),
            baseline_value: base.throughput,
            goal: "≥ 0.8× the smallest size".to_owned(),
            met: Some(m.throughput >= 0.8 * base.throughput),
        });
        rows.push(Row {
            figure: format!("cancel p99, {} orders", thousands(size)),
            value: m.p99_ms,
            unit: "ms",
            baseline: base_name.clone(),
            baseline_value: base.p99_ms,
            goal: "≤ 1.5× the smallest size".to_owned(),
            met: Some(m.p99_ms <= 1.5 * base.p99_ms),
        });
        let base_written = *base_written.get_or_insert(written_per_cancel);
        if let (Some(value), Some(baseline_value)) = (written_per_cancel, base_written) {
            rows.push(Row {
                figure: format!(
                    "written to disk per cancellation (WAL and checkpoints), {} orders",
                    thousands(size)
                ),
                value: value / 1024.0,
                unit: "KiB",
                baseline: base_name.clone(),
                baseline_value: baseline_value / 1024.0,
                goal: "none: what a cancellation costs the disk".to_owned(),
                met: None,
            });
        }
        let base_cpu = *base_cpu.get_or_insert(writer_cpu);
        if let (Some(value), Some(baseline_value)) = (writer_cpu, base_cpu) {
            rows.push(Row {
                figure: format!(
                    "cancellation writer's CPU per cancellation, {} orders",
                    thousands(size)
                ),
                value,
                unit: "µs",
                baseline: base_name,
                baseline_value,
                goal: "none: what bounds the rate on a busy writer".to_owned(),
                met: None,
            });
        }
    }
    let order_db_bytes = std::fs::metadata(dir.join("rescind.db")).map_or(0, |m| m.len());
    println!("  order store: {:.2} GB", order_db_bytes as f64 / 1e9);
    let _ = std::fs::remove_dir_all(&dir);

    // Part 2: the job table.
    if jobs > 0 {
        job_part(&knobs, jobs, claims, &mut rows, &mut notes).await;
    }

    let machine = json!({"cpus": cpus, "load": format!(
        "load average {load_at_start} at the start, {} at the end", load_average())});
    let out = json!({
        "bench": "scaling",
        "machine": machine,
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "curve": curve,
        "notes": notes,
    });
    println!("\n| figure | value | baseline | ratio | goal | met |\n|---|---:|---|---:|---|---|");
    for row in &rows {
        println!(
            "| {} | {:.2} {} | {} ({:.2}) | {:.2}× | {} | {} |",
            row.figure,
            row.value,
            row.unit,
            row.baseline,
            row.baseline_value,
            row.value / row.baseline_value,
            row.goal,
            match row.met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "",
            }
        );
    }
    for note in &notes {
        println!("note: {note}");
    }
    // Where every bench writes its figures (`$RESCIND_BENCH_RESULTS`, which
    // `rescind-bench` sets, or `bench-results` beside the binary's build).
    let dir = support::results::results_dir();
    std::fs::create_dir_all(&dir).expect("results directory");
    let path = dir.join("scaling.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&out).expect("json") + "\n",
    )
    .expect("write the results");
    println!("wrote {}", path.display());
}

async fn job_part(
    knobs: &Knobs,
    jobs: usize,
    claims: usize,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) {
    let orders: usize = 100_000;
    // Three phases, each cancelling orders of its own third.
    let third = orders / 3;
    // Rounds of 6,000 cancellations at least (3,000 take a fraction of a
    // second on a fast machine): as many as a third of the orders holds,
    // up to five, or more if asked for.
    let requests = knobs.requests.max(6_000);
    let fit = third.saturating_sub(WARMUP) / requests;
    let knobs = &Knobs {
        clients: knobs.clients,
        requests,
        rounds: knobs.rounds.max(fit.min(5)),
    };
    let needed = WARMUP + knobs.requests * knobs.rounds;
    assert!(
        needed <= third,
        "RESCIND_BENCH_REQUESTS x RESCIND_BENCH_ROUNDS must leave room in {third} orders"
    );
    // Two stores of the same orders, one of them with the finished jobs
    // too, served side by side: their rounds alternate, so that the
    // comparison holds on a machine whose speed moves within minutes
    // (one store measured before the other, rounds of a fraction of a
    // second each, did not).
    let empty_dir = bench_dir("jobs-empty");
    let dir = bench_dir("jobs");
    for dir in [&empty_dir, &dir] {
        create_store(dir).await;
        load_orders(dir, 0, orders, Instant::now() + Duration::from_secs(3600));
    }
    let stride = third / needed;
    let slot = |phase: usize| -> Arc<dyn Fn(usize) -> usize + Send + Sync> {
        Arc::new(move |k: usize| phase * third + k * stride)
    };
    println!("  jobs, {} orders:", thousands(orders));
    let t = Instant::now();
    load_finished_jobs(&dir, jobs, orders);
    println!(
        "  loaded {} finished jobs with attempts and cancellations in {:.1} s",
        thousands(jobs),
        t.elapsed().as_secs_f64()
    );

    let empty_service = start_service(&empty_dir).await;
    let running = start_service(&dir).await;
    println!(
        "  an empty job table and {} finished jobs, in turns:",
        thousands(jobs)
    );
    let (empty, full) = alternate_rounds(
        knobs,
        (&(empty_service.addr, slot(0)), ", empty job table"),
        (
            &(running.addr, slot(1)),
            &format!(", {} finished jobs", thousands(jobs)),
        ),
    )
    .await;
    let (empty, full) = (summarize(&empty), summarize(&full));
    let ((empty_claim_p50, empty_claim_p99), (full_claim_p50, full_claim_p99)) =
        time_claims_in_turns(&empty_service.state.store, &running.state.store, claims).await;
    let empty_scrape = time_scrapes(empty_service.addr).await;
    let full_scrape = time_scrapes(running.addr).await;
    empty_service
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
    let _ = std::fs::remove_dir_all(&empty_dir);
    println!(
        "    empty job table: median {:.0} req/s, p99 {:.2} ms; claim p50 {empty_claim_p50:.2} \
         ms, p99 {empty_claim_p99:.2} ms",
        empty.throughput, empty.p99_ms
    );
    println!(
        "    {} finished jobs: median {:.0} req/s, p99 {:.2} ms; claim p50 {full_claim_p50:.2} \
         ms, p99 {full_claim_p99:.2} ms",
        thousands(jobs),
        full.throughput,
        full.p99_ms
    );
    println!("    /metrics scrape: {full_scrape:.2} ms (empty job table: {empty_scrape:.2} ms)");

    // The prune of the 1M, and cancellations while it runs.
    let store = running.state.store.clone();
    let metrics = Arc::clone(&running.state.metrics);
    let t = Instant::now();
    let pruning = tokio::spawn(async move {
        let started = Instant::now();
        let report = retention::prune(
            &store,
            &metrics,
            Duration::from_secs(30 * 24 * 3600),
            Duration::from_secs(1800),
        )
        .await
        .expect("prune");
        (report, started.elapsed())
    });
    println!("  cancellations while pruning:");
    let during = summarize(&cancel_rounds(running.addr, knobs, slot(2)).await);
    let (pruned, prune_time) = pruning.await.expect("prune task");
    println!(
        "    median {:.0} req/s, p99 {:.2} ms; pruned {} jobs and {} attempts in {:.1} s \
         (complete: {})",
        during.throughput,
        during.p99_ms,
        pruned.pruned.jobs,
        pruned.pruned.attempts,
        prune_time.as_secs_f64(),
        pruned.complete
    );
    let _ = t;
    if !pruned.complete {
        notes.push("the prune of the finished jobs stopped at its 30-minute limit".to_owned());
    }
    running
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
    let _ = std::fs::remove_dir_all(&dir);

    let n = thousands(jobs);
    let empty_name = "empty job table, same run".to_owned();
    rows.push(Row {
        figure: format!("cancel throughput, {n} finished jobs"),
        value: full.throughput,
        unit: "req/s",
        baseline: empty_name.clone(),
        baseline_value: empty.throughput,
        goal: "≥ 0.8× the empty job table".to_owned(),
        met: Some(full.throughput >= 0.8 * empty.throughput),
    });
    rows.push(Row {
        figure: format!("cancel p99, {n} finished jobs"),
        value: full.p99_ms,
        unit: "ms",
        baseline: empty_name.clone(),
        baseline_value: empty.p99_ms,
        goal: "≤ 1.5× the empty job table".to_owned(),
        met: Some(full.p99_ms <= 1.5 * empty.p99_ms),
    });
    rows.push(Row {
        figure: format!("claim of {CLAIM_BATCH} due jobs p50, {n} finished jobs"),
        value: full_claim_p50,
        unit: "ms",
        baseline: empty_name.clone(),
        baseline_value: empty_claim_p50,
        goal: "≤ 1.5× the empty job table".to_owned(),
        met: Some(full_claim_p50 <= 1.5 * empty_claim_p50),
    });
    rows.push(Row {
        figure: format!("claim of {CLAIM_BATCH} due jobs p99, {n} finished jobs"),
        value: full_claim_p99,
        unit: "ms",
        baseline: empty_name.clone(),
        baseline_value: empty_claim_p99,
        goal: "≤ 1.5× the empty job table".to_owned(),
        met: Some(full_claim_p99 <= 1.5 * empty_claim_p99),
    });
    rows.push(Row {
        figure: format!("GET /metrics (counts jobs by state), {n} finished jobs"),
        value: full_scrape,
        unit: "ms",
        baseline: empty_name.clone(),
        baseline_value: empty_scrape,
        goal: "none: what the retention bounds".to_owned(),
        met: None,
    });
    rows.push(Row {
        figure: format!("prune of {n} finished jobs (with their attempts)"),
        value: prune_time.as_secs_f64(),
        unit: "s",
        baseline: "none (jobs/s in the notes)".to_owned(),
        baseline_value: f64::NAN,
        goal: String::new(),
        met: None,
    });
    notes.push(format!(
        "prune: {} jobs and {} attempts in {:.1} s = {:.0} jobs/s, in batches of {}, each \
         followed by a rest {} times as long as it took ({} ms at least)",
        pruned.pruned.jobs,
        pruned.pruned.attempts,
        prune_time.as_secs_f64(),
        pruned.pruned.jobs as f64 / prune_time.as_secs_f64(),
        retention::BATCH,
        retention::REST_PER_BATCH,
        retention::PAUSE.as_millis()
    ));
    rows.push(Row {
        figure: format!("cancel p99 while pruning {n} finished jobs"),
        value: during.p99_ms,
        unit: "ms",
        baseline: empty_name.clone(),
        baseline_value: empty.p99_ms,
        goal: "≤ 1.5× the empty job table".to_owned(),
        met: Some(during.p99_ms <= 1.5 * empty.p99_ms),
    });
    rows.push(Row {
        figure: format!("cancel throughput while pruning {n} finished jobs"),
        value: during.throughput,
        unit: "req/s",
        baseline: empty_name,
        baseline_value: empty.throughput,
        goal: "≥ 0.8× the empty job table".to_owned(),
        met: Some(during.throughput >= 0.8 * empty.throughput),
    });
}

/// `1000000` as `1,000,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `target/` of the workspace, where the large stores are made (whatever
/// `CARGO_TARGET_DIR` the build used).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// A fresh directory for a store, under `target/` (the stores are large:
/// 10M orders take several GB), removed when the part ends.
fn bench_dir(name: &str) -> PathBuf {
    let dir = target_dir()
        .join("bench-scaling")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench directory");
    dir
}
