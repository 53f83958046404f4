//! Extism beside rescind's plugin dispatch: what a user who picked Extism
//! instead would pay for the same trivial call.
//!
//! The equivalent of the `trivial` test guest that `plugin_dispatch`
//! measures: a plugin that takes a cancellation (the same fields, as JSON,
//! as an Extism host would pass it) and answers the acknowledgement
//! `{"erpReference":"trivial"}` without reading the input or calling the
//! host beyond writing its output through Extism's kernel. Each timed call
//! is a fresh plugin instantiated from its compiled form
//! (`CompiledPlugin` → `Plugin::new_from_compiled`), the call, the answer
//! parsed, and the plugin dropped: the shape of rescind's instantiate +
//! call + drop. Also timed, once per call likewise: `Plugin::new` from the
//! module's bytes, which compiles it again.
//!
//! rescind's side of the ratio comes from `plugin_dispatch.json` of the
//! same `rescind-bench` run (written minutes earlier on the same machine,
//! not interleaved call by call: the two cannot share a process, each
//! linking its own wasmtime).
//!
//! Run: `cargo run --release -p rescind-bench -- all --with-extism`, or
//! `cargo bench` in this directory (then with no rescind figure unless a
//! fresh `plugin_dispatch.json` is in `$RESCIND_BENCH_RESULTS`).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use extism::{CompiledPlugin, Plugin, PluginBuilder};
use serde::Deserialize;
use serde_json::{Value, json};

/// The acknowledgement the plugin answers, as the `trivial` guest does.
const ACK: &str = r#"{"erpReference":"trivial"}"#;

/// The plugin: writes [`ACK`] to its output with Extism's kernel
/// (`alloc`, `store_u8`, `output_set`) and returns 0.
fn plugin_wat() -> String {
    let escaped: String = ACK.bytes().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{escaped}")
  (func (export "submit_cancellation") (result i32)
    (local $out i64) (local $i i64)
    (local.set $out (call $alloc (i64.const {len})))
    (block $done
      (loop $copy
        (br_if $done (i64.ge_u (local.get $i) (i64.const {len})))
        (call $store_u8
          (i64.add (local.get $out) (local.get $i))
          (i32.load8_u (i32.wrap_i64 (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $copy)))
    (call $output_set (local.get $out) (i64.const {len}))
    (i32.const 0)))"#,
        len = ACK.len()
    )
}

/// The cancellation `plugin_dispatch` sends, as JSON.
fn cancellation() -> Value {
    let eur = |amount_minor: i64| json!({"amountMinor": amount_minor, "currency": "EUR"});
    json!({
        "requestId": "6f1d2c3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f", "attempt": 1,
        "orderNumber": "1001", "erpOrderNumber": "ERP-1001", "businessCode": "B1",
        "customerNumber": "C-1", "website": "main", "orderDate": "2024-09-01", "full": true,
        "lines": [{"lineNumber": 1, "sku": "CHAIR", "quantity": 2, "kind": "product",
                   "amount": eur(20000), "tax": eur(3800), "parentLine": null,
                   "erpLineRef": null}],
        "allLineNumbers": [1], "reason": "customer-cancellation", "date": "2024-09-09",
        "invoiceReference": null, "forcedCancel": false, "forcedCancelWithRefund": false,
        "refund": null, "bankDetails": null, "forUser": null, "tracking": null,
        "parameters": [["OrderNumber", "1001"]]
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ack {
    erp_reference: Option<String>,
}

/// One call on `plugin`: the input serialised, the call, the answer parsed.
fn call(mut plugin: Plugin, input: &Value) {
    let bytes = serde_json::to_vec(input).expect("JSON");
    let output: &[u8] = plugin
        .call("submit_cancellation", bytes.as_slice())
        .expect("the plugin's call");
    let ack: Ack = serde_json::from_slice(output).expect("the plugin's answer");
    assert_eq!(ack.erp_reference.as_deref(), Some("trivial"));
    drop(black_box(plugin));
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Median and p99 of `samples` timed runs of each contender, interleaved.
fn percentiles(samples: usize, contenders: &[&dyn Fn()]) -> Vec<(Duration, Duration)> {
    for _ in 0..100 {
        for c in contenders {
            c();
        }
    }
    let mut times = vec![Vec::with_capacity(samples); contenders.len()];
    for _ in 0..samples {
        for (c, t) in contenders.iter().zip(&mut times) {
            let start = Instant::now();
            c();
            t.push(start.elapsed());
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort_unstable();
            (t[t.len() / 2], t[t.len() * 99 / 100])
        })
        .collect()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn results_dir() -> PathBuf {
    std::env::var_os("RESCIND_BENCH_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench-results"))
}

/// rescind's figures of `plugin_dispatch.json`, when that file was written
/// in this run (after `$RESCIND_BENCH_RUN_STARTED`, seconds since the epoch)
/// or, outside a run, at most an hour ago.
fn rescind_figures() -> Option<(f64, f64, f64)> {
    let path = results_dir().join("plugin_dispatch.json");
    let written = std::fs::metadata(&path).ok()?.modified().ok()?;
    let since: u64 = std::env::var("RESCIND_BENCH_RUN_STARTED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs().saturating_sub(3600))
        });
    let written = written
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs();
    if written < since {
        eprintln!("{}: from an earlier run, not used", path.display());
        return None;
    }
    let file: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let rows = file["rows"].as_array()?;
    let find = |prefix: &str| {
        rows.iter()
            .find(|r| r["figure"].as_str().is_some_and(|f| f.starts_with(prefix)))
    };
    let median = find(
        "rescind dispatch of `trivial` from a job worker (instantiate + call + drop), median",
    )?;
    let p99 = find("rescind dispatch of `trivial` from a job worker, p99")?;
    Some((
        median["value"].as_f64()?,
        p99["value"].as_f64()?,
        median["baselineValue"].as_f64()?,
    ))
}

fn row(
    figure: &str,
    value: f64,
    baseline: &str,
    baseline_value: f64,
    goal: Option<(&str, bool)>,
) -> Value {
    let ratio = value / baseline_value;
    json!({
        "figure": figure, "value": value, "unit": "µs",
        "baseline": baseline, "baselineValue": baseline_value,
        "ratio": if ratio.is_finite() { json!(ratio) } else { Value::Null },
        "goal": goal.map(|g| g.0), "met": goal.map(|g| g.1),
    })
}

fn main() {
    let samples = env("RESCIND_BENCH_CALLS", 5_000).max(1);
    let wasm = wat::parse_str(plugin_wat()).expect("the plugin's WAT");
    let compiled: CompiledPlugin = PluginBuilder::new(wasm.as_slice())
        .with_wasi(false)
        .compile()
        .expect("compile the plugin");
    let input = cancellation();
    let fresh = || {
        call(
            Plugin::new_from_compiled(&compiled).expect("instantiate"),
            &input,
        )
    };
    let from_bytes = || {
        call(
            Plugin::new(wasm.as_slice(), [], false).expect("plugin from bytes"),
            &input,
        )
    };
    let figures = percentiles(samples, &[&fresh]);
    let (median, p99) = figures[0];
    let recompiling = percentiles((samples / 20).max(10), &[&from_bytes])[0];
    println!(
        "Extism {}: fresh plugin from CompiledPlugin + call + drop, {samples} calls: median \
         {:.1} µs, p99 {:.1} µs; Plugin::new from bytes + call: median {:.1} µs",
        extism::extism_version(),
        micros(median),
        micros(p99),
        micros(recompiling.0)
    );
    let (extism_median, extism_p99) = (micros(median), micros(p99));
    let mut rows = vec![row(
        "Extism: fresh plugin from its compiled form + call + drop, median",
        extism_median,
        "Extism: Plugin::new from the module's bytes + call, median",
        micros(recompiling.0),
        None,
    )];
    match rescind_figures() {
        Some((ours_median, ours_p99, floor)) => {
            println!(
                "rescind (plugin_dispatch of this run): median {ours_median:.1} µs, p99 \
                 {ours_p99:.1} µs; its bare-wasmtime floor {floor:.1} µs"
            );
            rows.push(row(
                "rescind dispatch of `trivial` from a job worker (instantiate + call + drop), median",
                ours_median,
                "Extism fresh plugin + call of an equivalent plugin, median",
                extism_median,
                Some((
                    "≥ 5× faster than Extism (ratio ≤ 0.2)",
                    ours_median * 5.0 <= extism_median,
                )),
            ));
            rows.push(row(
                "rescind dispatch of `trivial` from a job worker, p99",
                ours_p99,
                "Extism fresh plugin + call, p99",
                extism_p99,
                None,
            ));
            rows.push(row(
                "Extism fresh plugin + call, median",
                extism_median,
                "rescind's bare-wasmtime floor (async), median",
                floor,
                None,
            ));
        }
        None => println!(
            "no plugin_dispatch.json of this run in {}: Extism's figures only",
            results_dir().display()
        ),
    }
    let document = json!({
        "bench": "extism_dispatch",
        "machine": {
            "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "loadAverage": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
            "extism": extism::extism_version(),
        },
        "rows": rows,
    });
    let dir = results_dir();
    std::fs::create_dir_all(&dir).expect("results dir");
    let path = dir.join("extism_dispatch.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&document).expect("JSON"))
        .expect("results file");
    println!(
        "extism_dispatch: {} figures written to {}",
        rows.len(),
        path.display()
    );
}
