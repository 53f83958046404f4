//! Dispatch cost of a plugin call: instantiate + call + drop of the `trivial`
//! component through rescind's runtime, against the floor: the same
//! component through the smallest wasmtime host that can call it (no WASI,
//! unknown imports trap, pooling allocator, `InstancePre`, a fresh `Store`
//! per call), in the same run. Also: the `webhook` plugin delivering to a
//! loopback ERP (through the host's outbound gate: allow-list,
//! resolved-address check, its own HTTP client; the connection kept alive
//! between calls, as a job worker's deliveries find it); the same plugin to
//! an ERP that closes every connection, over TLS with a CA of its own named
//! in the connection's `caCertificates` beside plain HTTP (what a new TLS
//! connection costs a call); and cold compile of the webhook plugin and its
//! load from the on-disk cache.
//!
//! Rescind's dispatch is timed twice: from a job worker, which runs on the
//! plugin threads (`PluginRuntime::spawn`), so its calls run where it is;
//! and from another thread, whose call is handed to the plugin threads and
//! its answer handed back. The first is a delivery's dispatch, the second
//! what a call from the API (a test call) costs. The goal holds the first
//! against the floor called the same way (in a task on the plugin threads,
//! timed inside it), so that both start on a thread just woken; the floor
//! on the bench's own thread, never handed over, is reported beside.
//!
//! Criterion reports means and medians; the p99 comes from a bounded loop of
//! [`sample_calls`] timed calls per contender, printed at the end. That
//! loop interleaves the contenders call by call, so that the machine's
//! drift falls on all of them alike, and each call finds the caches as the
//! other contenders left them; the goal is held against it. The worker's
//! dispatch and its floor are timed once more in alternating blocks of
//! [`BLOCK_CALLS`] calls, where each call finds the caches as its own last
//! call left them, as a worker delivering job after job through one plugin
//! does.
//!
//! Run: `RUST_BACKTRACE=0 cargo bench -p rescind-host --bench plugin_dispatch`
//!
//! To profile one contender alone (`perf stat`, `perf record`),
//! `RESCIND_BENCH_ONLY=worker` (or `floor-worker`, `other-thread`,
//! `floor-async`, `floor-sync`, `none`) makes [`sample_calls`] calls of it
//! after a warm-up of 200, and nothing else; `none` sets everything up and
//! calls nothing, the run to subtract. Under `valgrind`, which cannot
//! reserve the pooling allocator's address space for the default 16 call
//! slots, `RESCIND_BENCH_SLOTS=2` sizes rescind's runtime and the floor's
//! engine alike for 2.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use rescind_host::plugins::{
    CallLimits, CallOutcome, CallReport, Cancellation, CancellationReason, CancelledLine,
    CancelledLineKind, ConnectionContext, Money, Plugin, PluginRuntime, RuntimeConfig,
};
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};

mod support;

use support::{Row, write_results};

/// Timed calls per contender for the median/p99 summary
/// (`RESCIND_BENCH_CALLS`, 5,000 by default).
fn sample_calls() -> usize {
    support::env("RESCIND_BENCH_CALLS", 5_000).max(1)
}

/// The floor's bindings: the same world, async exports like ours.
mod floor_async {
    wasmtime::component::bindgen!({
        world: "integration-processor",
        path: "../wit/v0.1.0",
        exports: { default: async },
    });
}

/// The floor's bindings without fibers: the cheapest way to call at all.
mod floor_sync {
    wasmtime::component::bindgen!({
        world: "integration-processor",
        path: "../wit/v0.1.0",
    });
}

fn cancellation() -> Cancellation {
    let eur = |amount_minor| Money {
        amount_minor,
        currency: "EUR".into(),
    };
    Cancellation {
        request_id: "6f1d2c3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f".into(),
        attempt: 1,
        order_number: "1001".into(),
        erp_order_number: Some("ERP-1001".into()),
        business_code: "B1".into(),
        customer_number: "C-1".into(),
        website: "main".into(),
        order_date: "2024-09-01".into(),
        full: true,
        lines: vec![CancelledLine {
            line_number: 1,
            sku: "CHAIR".into(),
            quantity: 2,
            kind: CancelledLineKind::Product,
            amount: eur(20000),
            tax: eur(3800),
            parent_line: None,
            erp_line_ref: None,
        }],
        all_line_numbers: vec![1],
        reason: CancellationReason::CustomerCancellation,
        date: "2024-09-09".into(),
        invoice_reference: None,
        forced_cancel: false,
        forced_cancel_with_refund: false,
        refund: None,
        bank_details: None,
        for_user: None,
        tracking: None,
        parameters: vec![("OrderNumber".into(), "1001".into())],
    }
}

/// Rescind's default runtime, with `RESCIND_BENCH_SLOTS` call slots when set.
fn runtime_config() -> RuntimeConfig {
    let defaults = RuntimeConfig::default();
    RuntimeConfig {
        max_concurrent_calls: support::env("RESCIND_BENCH_SLOTS", defaults.max_concurrent_calls),
        ..defaults
    }
}

/// The floor's engine: pooling allocator with the same instance limits as
/// rescind's default configuration, and the same slot reuse (pages a call
/// touched stay mapped where the kernel can scan for them), nothing else.
fn floor_engine() -> Engine {
    let defaults = runtime_config();
    let slots = defaults.max_concurrent_calls;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots * 32)
        .max_core_instances_per_component(32)
        .total_memories(slots * 2)
        .max_memories_per_component(2)
        .total_tables(slots * 8)
        .max_tables_per_component(8)
        .total_stacks(slots)
        .max_memory_size(defaults.max_memory_bytes as usize);
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(64 << 10);
    }
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).expect("floor engine")
}

/// The floor's pre-instantiated component: unknown imports trap, which the
/// trivial guest never calls.
fn floor_pre(engine: &Engine, bytes: &[u8]) -> wasmtime::component::InstancePre<()> {
    let component = Component::new(engine, bytes).expect("compile trivial");
    let mut linker = Linker::<()>::new(engine);
    linker
        .define_unknown_imports_as_traps(&component)
        .expect("trap imports");
    linker.instantiate_pre(&component).expect("instantiate_pre")
}

/// Checks that the plugin accepted the call, and keeps its report from
/// being optimised away.
fn accepted(report: CallReport) {
    assert!(
        matches!(report.outcome, CallOutcome::Accepted { .. }),
        "{:?}",
        report.outcome
    );
    black_box(report);
}

struct Contenders {
    tokio: tokio::runtime::Runtime,
    ours: std::sync::Arc<Plugin>,
    webhook: std::sync::Arc<Plugin>,
    erp: ConnectionContext,
    floor_async: floor_async::IntegrationProcessorPre<()>,
    floor_sync: floor_sync::IntegrationProcessorPre<()>,
    floor_engine: Engine,
    ours_input: Cancellation,
    floor_async_input: floor_async::rescind::erp::types::Cancellation,
    floor_sync_input: floor_sync::rescind::erp::types::Cancellation,
    connection: ConnectionContext,
    limits: CallLimits,
    /// Holds the engine and its epoch ticker; runs the job worker's calls.
    runtime: PluginRuntime,
}

impl Contenders {
    fn new() -> Self {
        let bytes = std::fs::read(rescind_test_artifacts::TRIVIAL).expect("trivial component");
        let runtime = PluginRuntime::new(runtime_config()).expect("runtime");
        let ours = runtime.load("trivial", &bytes).expect("load trivial");
        let floor_engine = floor_engine();
        let pre = floor_pre(&floor_engine, &bytes);
        let floor_async =
            floor_async::IntegrationProcessorPre::new(pre.clone()).expect("async bindings");
        let floor_sync = floor_sync::IntegrationProcessorPre::new(pre).expect("sync bindings");
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        let webhook_bytes = std::fs::read(rescind_test_artifacts::WEBHOOK).expect("webhook");
        let webhook = runtime
            .load("webhook", &webhook_bytes)
            .expect("load webhook");
        let erp = tokio.block_on(loopback_erp());
        Self {
            tokio,
            ours,
            webhook,
            erp,
            floor_async,
            floor_sync,
            floor_engine,
            ours_input: cancellation(),
            floor_async_input: floor_async_input(),
            floor_sync_input: floor_sync_input(),
            connection: ConnectionContext::default(),
            limits: CallLimits::default(),
            runtime,
        }
    }

    /// A call from a job worker: timed on the plugin threads, where the
    /// worker runs (what the bench thread does to start and await it is
    /// not timed).
    fn ours_from_worker(&self) -> Duration {
        let (plugin, input, connection, limits) = (
            std::sync::Arc::clone(&self.ours),
            self.ours_input.clone(),
            self.connection.clone(),
            self.limits,
        );
        let (elapsed, report) = self
            .tokio
            .block_on(self.runtime.spawn(async move {
                let start = Instant::now();
                let report = plugin.submit(input, &connection, &limits).await;
                (start.elapsed(), report)
            }))
            .expect("the call's task");
        accepted(report);
        elapsed
    }

    /// A call from another thread than the plugin threads.
    fn ours(&self) {
        self.call(&self.ours, &self.connection, &self.limits);
    }

    fn webhook(&self) {
        self.webhook_to(&self.erp);
    }

    /// The webhook plugin's call of the ERP behind `connection`.
    fn webhook_to(&self, connection: &ConnectionContext) {
        self.call(&self.webhook, connection, &self.limits);
    }

    /// [`Self::webhook`] with the ERP exchange not recorded: what
    /// recording costs a call.
    fn webhook_unrecorded(&self) {
        let limits = CallLimits {
            recorded_exchanges: 0,
            ..self.limits
        };
        self.call(&self.webhook, &self.erp, &limits);
    }

    /// `plugin`'s call with the bench's cancellation, from the bench's
    /// thread.
    fn call(&self, plugin: &Plugin, connection: &ConnectionContext, limits: &CallLimits) {
        let report =
            self.tokio
                .block_on(plugin.submit(self.ours_input.clone(), connection, limits));
        accepted(report);
    }

    fn floor_async(&self) {
        self.tokio.block_on(async {
            let mut store = Store::new(&self.floor_engine, ());
            let instance = self
                .floor_async
                .instantiate_async(&mut store)
                .await
                .expect("instantiate");
            let answer = instance
                .rescind_erp_processor()
                .call_submit_cancellation(&mut store, &self.floor_async_input)
                .await
                .expect("call");
            assert!(answer.is_ok());
            black_box(&answer);
        });
    }

    /// The floor called where rescind's call from a job worker runs: in a
    /// task on the plugin threads, timed inside it, so that both start on
    /// a thread just woken (caches, migrations) and only what rescind does
    /// beyond the floor tells them apart.
    fn floor_async_from_worker(&self) -> Duration {
        let (engine, pre, input) = (
            self.floor_engine.clone(),
            self.floor_async.clone(),
            self.floor_async_input.clone(),
        );
        self.tokio
            .block_on(self.runtime.spawn(async move {
                let start = Instant::now();
                let mut store = Store::new(&engine, ());
                let instance = pre
                    .instantiate_async(&mut store)
                    .await
                    .expect("instantiate");
                let answer = instance
                    .rescind_erp_processor()
                    .call_submit_cancellation(&mut store, &input)
                    .await
                    .expect("call");
                assert!(answer.is_ok());
                black_box(&answer);
                drop(store);
                start.elapsed()
            }))
            .expect("the floor's task")
    }

    fn floor_sync(&self) {
        let mut store = Store::new(&self.floor_engine, ());
        let instance = self
            .floor_sync
            .instantiate(&mut store)
            .expect("instantiate");
        let answer = instance
            .rescind_erp_processor()
            .call_submit_cancellation(&mut store, &self.floor_sync_input)
            .expect("call");
        assert!(answer.is_ok());
        black_box(&answer);
    }
}

/// An ERP on 127.0.0.1 answering every request `200 {}`, served on the
/// calling runtime; the connection the webhook plugin needs to reach it.
async fn loopback_erp() -> ConnectionContext {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let app = axum::Router::new().fallback(|| async { axum::Json(serde_json::json!({})) });
    tokio::spawn(async move { axum::serve(listener, app).await });
    webhook_connection(format!("http://{addr}"), addr.to_string())
}

/// The webhook plugin's connection to the ERP at `base_url`, which
/// `allowed_host` lets it reach.
fn webhook_connection(base_url: String, allowed_host: String) -> ConnectionContext {
    ConnectionContext {
        base_url,
        allowed_hosts: vec![allowed_host],
        settings: [("path".to_owned(), "/hooks/cancel".to_owned())].into(),
        secrets: [("signingKey".to_owned(), "bench-key".to_owned())].into(),
        ..ConnectionContext::default()
    }
}

/// A loopback ERP that answers every request `200 {}` and closes the
/// connection, so that each call opens a new one: over plain HTTP, or over
/// TLS with a certificate for `127.0.0.1` from a CA of its own, which the
/// connection names in `caCertificates`. The server is returned to be kept
/// running.
async fn closing_erp(tls: bool) -> (rescind_tests::raw_erp::RawErp, ConnectionContext) {
    use rescind_tests::raw_erp::{RawAnswer, RawErp};
    let answer = RawAnswer::Bytes(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\
          connection: close\r\n\r\n{}"
            .to_vec(),
    );
    let (erp, scheme, ca_certificates) = if tls {
        let (config, ca) = rescind_tests::raw_erp::private_ca_tls("127.0.0.1");
        let erp = RawErp::start_tls(answer, config).await;
        (erp, "https", Some(ca))
    } else {
        (RawErp::start(answer).await, "http", None)
    };
    let connection = ConnectionContext {
        ca_certificates,
        ..webhook_connection(format!("{scheme}://{}", erp.authority()), erp.authority())
    };
    (erp, connection)
}

macro_rules! floor_input {
    ($name:ident, $m:ident) => {
        fn $name() -> $m::rescind::erp::types::Cancellation {
            use $m::rescind::erp::types as t;
            let c = cancellation();
            let line = &c.lines[0];
            t::Cancellation {
                request_id: c.request_id,
                attempt: c.attempt,
                order_number: c.order_number,
                erp_order_number: c.erp_order_number,
                business_code: c.business_code,
                customer_number: c.customer_number,
                website: c.website,
                order_date: c.order_date,
                full: c.full,
                lines: vec![t::CancelledLine {
                    line_number: line.line_number,
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                    kind: t::LineKind::Product,
                    amount: t::Money {
                        amount_minor: line.amount.amount_minor,
                        currency: line.amount.currency.clone(),
                    },
                    tax: t::Money {
                        amount_minor: line.tax.amount_minor,
                        currency: line.tax.currency.clone(),
                    },
                    parent_line: None,
                    erp_line_ref: None,
                }],
                all_line_numbers: c.all_line_numbers,
                reason: t::CancellationReason::CustomerCancellation,
                date: c.date,
                invoice_reference: None,
                forced_cancel: false,
                forced_cancel_with_refund: false,
                refund: None,
                bank_details: None,
                for_user: None,
                tracking: None,
                parameters: c.parameters,
            }
        }
    };
}
floor_input!(floor_async_input, floor_async);
floor_input!(floor_sync_input, floor_sync);

/// How long `call` took.
fn timed(call: impl FnOnce()) -> Duration {
    let start = Instant::now();
    call();
    start.elapsed()
}

/// Median and p99 of [`sample_calls`] timed runs of each contender (each
/// answers the time it took). The runs are interleaved (one call of each
/// in turn) so that a busy machine slows every contender alike instead of
/// whichever ran during the noise.
fn percentiles(contenders: &[&dyn Fn() -> Duration]) -> Vec<(Duration, Duration)> {
    for _ in 0..200 {
        for call in contenders {
            call(); // warm the pool's slots and caches
        }
    }
    let calls = sample_calls();
    let mut samples = vec![Vec::with_capacity(calls); contenders.len()];
    for _ in 0..calls {
        for (call, samples) in contenders.iter().zip(&mut samples) {
            samples.push(call());
        }
    }
    median_and_p99(samples)
}

/// Calls per block in [`in_blocks`].
const BLOCK_CALLS: usize = 250;

/// Like [`percentiles`], but each contender makes [`BLOCK_CALLS`] calls in a
/// row before the next one takes over, the blocks alternating until each
/// has made [`sample_calls`]: a call then finds the caches as its own last
/// call left them, as a worker delivering job after job through one plugin
/// does, while the machine's drift still falls on every contender alike.
fn in_blocks(contenders: &[&dyn Fn() -> Duration]) -> Vec<(Duration, Duration)> {
    let calls = sample_calls();
    let mut samples = vec![Vec::with_capacity(calls); contenders.len()];
    while samples[0].len() < calls {
        for (call, samples) in contenders.iter().zip(&mut samples) {
            call(); // the first call of a block follows the other contender's
            for _ in 0..BLOCK_CALLS.min(calls - samples.len()) {
                samples.push(call());
            }
        }
    }
    median_and_p99(samples)
}

/// Each contender's median and p99.
fn median_and_p99(samples: Vec<Vec<Duration>>) -> Vec<(Duration, Duration)> {
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_unstable();
            (s[s.len() / 2], s[s.len() * 99 / 100])
        })
        .collect()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn dispatch(c: &mut Criterion) -> Vec<Row> {
    let contenders = Contenders::new();
    let mut group = c.benchmark_group("dispatch_trivial");
    // Only the call is timed, on the plugin threads, not the bench
    // thread's hand-over to them.
    group.bench_function("rescind_runtime_from_worker", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| contenders.ours_from_worker()).sum())
    });
    group.bench_function("rescind_runtime", |b| b.iter(|| contenders.ours()));
    group.bench_function("floor_async", |b| b.iter(|| contenders.floor_async()));
    group.bench_function("floor_sync", |b| b.iter(|| contenders.floor_sync()));
    group.finish();
    let mut group = c.benchmark_group("erp_call");
    group.bench_function("webhook_loopback", |b| b.iter(|| contenders.webhook()));
    group.finish();

    let figures = percentiles(&[
        &|| contenders.ours_from_worker(),
        &|| contenders.floor_async_from_worker(),
        &|| timed(|| contenders.ours()),
        &|| timed(|| contenders.floor_async()),
        &|| timed(|| contenders.floor_sync()),
        &|| timed(|| contenders.webhook()),
        &|| timed(|| contenders.webhook_unrecorded()),
    ]);
    let (ours, floor_worker, handed_over, floor_async, floor_sync, webhook, unrecorded) = (
        figures[0], figures[1], figures[2], figures[3], figures[4], figures[5], figures[6],
    );
    println!(
        "\ninstantiate + call + drop of `trivial`, {} timed calls each (interleaved):",
        sample_calls()
    );
    println!("{:<30} {:>12} {:>12}", "host", "median µs", "p99 µs");
    for (name, (median, p99)) in [
        ("rescind, from a job worker", ours),
        ("floor (async), the same way", floor_worker),
        ("rescind, from another thread", handed_over),
        ("floor (async)", floor_async),
        ("floor (sync)", floor_sync),
    ] {
        println!("{name:<30} {:>12.1} {:>12.1}", micros(median), micros(p99));
    }
    println!(
        "ratio rescind (worker) / floor (async, the same way): median {:.2}x, p99 {:.2}x",
        micros(ours.0) / micros(floor_worker.0),
        micros(ours.1) / micros(floor_worker.1)
    );
    println!(
        "ratio rescind (worker) / floor (async, bench thread): median {:.2}x, p99 {:.2}x",
        micros(ours.0) / micros(floor_async.0),
        micros(ours.1) / micros(floor_async.1)
    );
    println!(
        "ratio rescind (worker) / floor (sync):  median {:.2}x, p99 {:.2}x",
        micros(ours.0) / micros(floor_sync.0),
        micros(ours.1) / micros(floor_sync.1)
    );
    println!(
        "ratio rescind (other thread) / (worker): median {:.2}x, p99 {:.2}x",
        micros(handed_over.0) / micros(ours.0),
        micros(handed_over.1) / micros(ours.1)
    );
    println!(
        "webhook -> loopback ERP (connection kept alive): median {:.1} µs, p99 {:.1} µs\n",
        micros(webhook.0),
        micros(webhook.1)
    );
    println!(
        "the same without recording the ERP exchange: median {:.1} µs, p99 {:.1} µs; recording \
         costs median {:.2}x, p99 {:.2}x\n",
        micros(unrecorded.0),
        micros(unrecorded.1),
        micros(webhook.0) / micros(unrecorded.0),
        micros(webhook.1) / micros(unrecorded.1)
    );
    let warm = in_blocks(&[&|| contenders.ours_from_worker(), &|| {
        contenders.floor_async_from_worker()
    }]);
    let (ours_warm, floor_warm) = (warm[0], warm[1]);
    println!(
        "the same in blocks of {BLOCK_CALLS} calls each: rescind, from a job worker: median \
         {:.1} µs, p99 {:.1} µs; floor (async), the same way: median {:.1} µs, p99 {:.1} µs; \
         ratio median {:.2}x\n",
        micros(ours_warm.0),
        micros(ours_warm.1),
        micros(floor_warm.0),
        micros(floor_warm.1),
        micros(ours_warm.0) / micros(floor_warm.0)
    );
    // Apart from the interleaved calls above, so that these calls' TLS does
    // not change what those measure.
    let ((_plain_erp, plain), (_tls_erp, private_ca)) = contenders
        .tokio
        .block_on(async { (closing_erp(false).await, closing_erp(true).await) });
    let new_connections = percentiles(&[&|| timed(|| contenders.webhook_to(&private_ca)), &|| {
        timed(|| contenders.webhook_to(&plain))
    }]);
    let (tls, http) = (new_connections[0], new_connections[1]);
    println!(
        "webhook -> loopback ERP over TLS with its own CA, a new connection each call: median \
         {:.1} µs, p99 {:.1} µs; over plain HTTP: median {:.1} µs, p99 {:.1} µs\n",
        micros(tls.0),
        micros(tls.1),
        micros(http.0),
        micros(http.1)
    );
    let ratio = micros(ours.0) / micros(floor_worker.0);
    vec![
        Row::new(
            "rescind dispatch of `trivial` from a job worker (instantiate + call + drop), median",
            micros(ours.0),
            "µs",
            "bare-wasmtime floor (async) timed the same way, on the plugin threads, median",
            micros(floor_worker.0),
        )
        .goal("≤ 1.2× the floor", ratio <= 1.2),
        Row::new(
            format!(
                "rescind dispatch of `trivial` from a job worker, in blocks of {BLOCK_CALLS} \
                 calls (caches as its last call left them), median"
            ),
            micros(ours_warm.0),
            "µs",
            "bare-wasmtime floor (async) on the plugin threads, in blocks the same way, median",
            micros(floor_warm.0),
        ),
        Row::new(
            "rescind dispatch of `trivial` from a job worker, p99",
            micros(ours.1),
            "µs",
            "bare-wasmtime floor (async) on the plugin threads, p99",
            micros(floor_worker.1),
        ),
        Row::new(
            "rescind dispatch of `trivial` from a job worker, median",
            micros(ours.0),
            "µs",
            "bare-wasmtime floor (async) on the bench's own thread, never handed over, median",
            micros(floor_async.0),
        ),
        Row::new(
            "rescind dispatch of `trivial` from another thread (handed to the plugin threads), median",
            micros(handed_over.0),
            "µs",
            "the same from a job worker, median",
            micros(ours.0),
        ),
        Row::new(
            "rescind dispatch of `trivial` from another thread, p99",
            micros(handed_over.1),
            "µs",
            "the same from a job worker, p99",
            micros(ours.1),
        ),
        Row::new(
            "bare-wasmtime floor (async), median",
            micros(floor_async.0),
            "µs",
            "bare-wasmtime floor (sync), median",
            micros(floor_sync.0),
        ),
        Row::new(
            "webhook → loopback ERP, recording the exchange, median",
            micros(webhook.0),
            "µs",
            "the same call recording nothing",
            micros(unrecorded.0),
        ),
        Row::new(
            "webhook → loopback ERP over TLS, its own CA (`caCertificates`), a new connection each call, median",
            micros(tls.0),
            "µs",
            "the same over plain HTTP, median",
            micros(http.0),
        ),
    ]
}

fn loading(c: &mut Criterion) -> Vec<Row> {
    let bytes = std::fs::read(rescind_test_artifacts::WEBHOOK).expect("webhook component");
    let cache_dir =
        std::env::temp_dir().join(format!("rescind-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache_dir);

    let uncached = PluginRuntime::new(RuntimeConfig::default()).expect("runtime");
    let cached = PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(cache_dir.clone()),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    cached.load("webhook", &bytes).expect("fill the cache");

    let mut group = c.benchmark_group("load_webhook");
    group.sample_size(10);
    group.bench_function("cold_compile", |b| {
        b.iter(|| black_box(uncached.load("webhook", &bytes).expect("load")))
    });
    group.bench_function("from_disk_cache", |b| {
        b.iter(|| black_box(cached.load("webhook", &bytes).expect("load")))
    });
    group.finish();
    assert_eq!(cached.compilations(), 1, "cache loads must not compile");

    let time = |runtime: &PluginRuntime, runs: usize| {
        let mut samples: Vec<Duration> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                black_box(runtime.load("webhook", &bytes).expect("load"));
                start.elapsed()
            })
            .collect();
        samples.sort_unstable();
        samples[samples.len() / 2]
    };
    let (cold, from_cache) = (millis(time(&uncached, 10)), millis(time(&cached, 200)));
    println!(
        "\nwebhook ({} KiB): cold compile median {cold:.1} ms, load from disk cache median \
         {from_cache:.2} ms\n",
        bytes.len() / 1024,
    );
    let _ = std::fs::remove_dir_all(&cache_dir);
    vec![Row::new(
        "webhook component loaded from the on-disk compile cache, median",
        from_cache,
        "ms",
        "cold compile of the same component, median",
        cold,
    )]
}

/// What `criterion_main!` would do, keeping the figures of the bounded
/// loops for the results file.
fn main() {
    support::as_served();
    if let Ok(only) = std::env::var("RESCIND_BENCH_ONLY") {
        return only_one(&only);
    }
    let mut criterion = Criterion::default().configure_from_args();
    let mut rows = dispatch(&mut criterion);
    rows.extend(loading(&mut criterion));
    criterion.final_summary();
    write_results("plugin_dispatch", &rows);
}

/// `RESCIND_BENCH_ONLY`: warms up and then makes [`sample_calls`] calls of
/// one contender, for a profiler to count what one call costs.
fn only_one(name: &str) {
    let contenders = Contenders::new();
    let call: &dyn Fn() = match name {
        "worker" => &|| {
            contenders.ours_from_worker();
        },
        "other-thread" => &|| contenders.ours(),
        "floor-async" => &|| contenders.floor_async(),
        "floor-worker" => &|| {
            contenders.floor_async_from_worker();
        },
        "floor-sync" => &|| contenders.floor_sync(),
        "none" => &|| {},
        other => panic!(
            "RESCIND_BENCH_ONLY={other:?}: say worker, floor-worker, other-thread, floor-async, \
             floor-sync or none"
        ),
    };
    for _ in 0..200 {
        call();
    }
    let calls = sample_calls();
    let start = Instant::now();
    for _ in 0..calls {
        call();
    }
    println!(
        "{name}: {calls} calls, {:.1} µs each on average",
        micros(start.elapsed()) / calls as f64
    );
}
