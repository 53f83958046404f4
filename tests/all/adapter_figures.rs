//! The figures of BENCHMARKS.md's "Plugin sizes and compile times": each
//! example plugin's component size and how long the host takes to compile
//! it cold. A measurement rather than a test, so it is ignored by default;
//! run it in a release build:
//!
//! ```sh
//! cargo test --release -p rescind-tests --test all adapter_figures -- --ignored --nocapture
//! ```

use std::time::{Duration, Instant};

use rescind_host::plugins::{PluginRuntime, RuntimeConfig};

/// Timed compilations per plugin (after one untimed warm-up of the engine).
const ROUNDS: usize = 5;

#[test]
#[ignore = "a measurement: run it in release with --ignored --nocapture"]
fn plugin_sizes_and_cold_compile_times() {
    // No cache directory: every load compiles (Component::new), as the
    // first upload of a plugin does.
    let runtime = PluginRuntime::new(RuntimeConfig::default()).expect("the runtime starts");
    println!("| plugin | component (bytes) | cold load, median of {ROUNDS} | fastest | slowest |");
    println!("|---|---:|---:|---:|---:|");
    for (name, path) in rescind_test_artifacts::PLUGINS {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        runtime
            .load(name, &bytes)
            .unwrap_or_else(|e| panic!("load {name}: {e}"));
        let mut times: Vec<Duration> = (0..ROUNDS)
            .map(|_| {
                let compilations = runtime.compilations();
                let start = Instant::now();
                runtime
                    .load(name, &bytes)
                    .unwrap_or_else(|e| panic!("load {name}: {e}"));
                let elapsed = start.elapsed();
                assert_eq!(
                    runtime.compilations(),
                    compilations + 1,
                    "{name} was not compiled afresh"
                );
                elapsed
            })
            .collect();
        times.sort();
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| {name} | {} | {} | {} | {} |",
            bytes.len(),
            ms(times[ROUNDS / 2]),
            ms(times[0]),
            ms(times[ROUNDS - 1])
        );
    }
}
