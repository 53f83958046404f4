//! `start`: how long the real `rescind serve` takes from process start to
//! ready with 20 plugins in its store and compile cache, and how long an
//! activation takes when the version is compiled already, against the
//! goals (500 ms and 20 ms).
//!
//! The plugins are the four bundled ones and the test guests, uploaded
//! under 20 names (some components under two names: the compile cache is
//! keyed by the component's SHA-256, so a start loads 13 distinct compiled
//! components for 20 plugins). Each start is the binary spawned on the same
//! data directory until `/readyz` answers `200`, then stopped with
//! `SIGTERM`; each activation is the `POST …/activate` call's round trip,
//! switching between two compiled versions.
//!
//! ```sh
//! cargo bench -p rescind-host --bench start
//! RESCIND_BENCH_STARTS=10 RESCIND_BENCH_ACTIVATIONS=50 cargo bench -p rescind-host --bench start
//! ```
//!
//! Bounded: a fixed number of starts and activations, each with a time
//! limit. The server listens on 127.0.0.1 only.

use std::time::{Duration, Instant};

use sha2::Digest;
use support::{ADMIN, Row, SPAWN_LIMIT, env, median, range, spawn_serve, write_results};

mod support;

/// The components uploaded, each under the names given.
const COMPONENTS: &[(&str, &[&str])] = &[
    (rescind_test_artifacts::TRIVIAL, &["trivial", "trivial-2"]),
    (rescind_test_artifacts::NOISY, &["noisy", "noisy-2"]),
    (rescind_test_artifacts::LOOPER, &["looper", "looper-2"]),
    (
        rescind_test_artifacts::PANICKER,
        &["panicker", "panicker-2"],
    ),
    (rescind_test_artifacts::HOSTILE, &["hostile", "hostile-2"]),
    (
        rescind_test_artifacts::EGRESS_PROBE,
        &["egress-probe", "egress-probe-2"],
    ),
    (
        rescind_test_artifacts::SANDBOX_PROBE,
        &["sandbox-probe", "sandbox-probe-2"],
    ),
    (rescind_test_artifacts::TABLE_GROWER, &["table-grower"]),
    (rescind_test_artifacts::ALLOC_BOMB, &["alloc-bomb"]),
];

/// Polls `/readyz` until it answers 200 (bounded).
async fn ready(client: &reqwest::Client, base: &str, since: Instant) {
    loop {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(
            since.elapsed() < SPAWN_LIMIT,
            "not ready within {SPAWN_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn upload(client: &reqwest::Client, base: &str, name: &str, bytes: &[u8], activate: bool) {
    let query = if activate { "" } else { "?activate=false" };
    let response = client
        .put(format!("{base}/v1/admin/plugins/{name}{query}"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/wasm")
        .body(bytes.to_vec())
        .send()
        .await
        .expect("upload");
    assert!(
        response.status().is_success(),
        "{name}: {}",
        response.status()
    );
}

async fn plugins(client: &reqwest::Client, base: &str) -> usize {
    let listed: serde_json::Value = client
        .get(format!("{base}/v1/admin/plugins"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("plugins")
        .json()
        .await
        .expect("plugins json");
    listed.as_array().map_or(0, Vec::len)
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
    let starts: usize = env("RESCIND_BENCH_STARTS", 5);
    let activations: usize = env("RESCIND_BENCH_ACTIVATIONS", 20);
    let client = reqwest::Client::new();
    let dir = tempfile::tempdir().expect("data dir");

    // The store: the bundled plugins and 16 more names.
    let server = spawn_serve(dir.path(), 2);
    ready(&client, &server.base, Instant::now()).await;
    let mut uploads = Vec::new();
    for (path, names) in COMPONENTS {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for (n, name) in names.iter().enumerate() {
            let started = Instant::now();
            upload(&client, &server.base, name, &bytes, true).await;
            // The first upload of a component compiles it; a second name
            // finds it in the compile cache.
            if n == 0 {
                uploads.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    let count = plugins(&client, &server.base).await;
    server.terminate();

    // Starts on the data directory, its compile cache warm.
    let mut ready_ms = Vec::new();
    for _ in 0..starts {
        let spawned = Instant::now();
        let server = spawn_serve(dir.path(), 2);
        ready(&client, &server.base, spawned).await;
        ready_ms.push(spawned.elapsed().as_secs_f64() * 1000.0);
        server.terminate();
    }

    // Activations between two compiled versions.
    let server = spawn_serve(dir.path(), 2);
    ready(&client, &server.base, Instant::now()).await;
    let versions: Vec<(String, Vec<u8>)> = [
        rescind_test_artifacts::TRIVIAL,
        rescind_test_artifacts::NOISY,
    ]
    .into_iter()
    .map(|path| {
        let bytes = std::fs::read(path).expect("component");
        let version = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
        (version, bytes)
    })
    .collect();
    upload(&client, &server.base, "switch", &versions[0].1, true).await;
    upload(&client, &server.base, "switch", &versions[1].1, false).await;
    let mut activation_ms = Vec::new();
    for n in 0..activations {
        let version = &versions[(n + 1) % 2].0;
        let started = Instant::now();
        let response = client
            .post(format!("{}/v1/admin/plugins/switch/activate", server.base))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({ "version": version }))
            .send()
            .await
            .expect("activate");
        assert!(response.status().is_success(), "{}", response.status());
        activation_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    server.terminate();

    let (ready_low, ready_high) = range(&ready_ms);
    let ready_median = median(ready_ms);
    let (act_low, act_high) = range(&activation_ms);
    let act_median = median(activation_ms);
    let upload_median = median(uploads);
    println!(
        "start: {count} plugins in the store; {} CPUs; load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!("| figure | median | range | goal | ratio to goal |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| process start to ready ({starts} starts) | {ready_median:.0} ms | {ready_low:.0}–{ready_high:.0} ms | 500 ms | {:.2} |",
        ready_median / 500.0
    );
    println!(
        "| activation of a compiled version ({activations}) | {act_median:.1} ms | {act_low:.1}–{act_high:.1} ms | 20 ms | {:.2} |",
        act_median / 20.0
    );
    println!("| upload and compile of a new component (cold) | {upload_median:.0} ms | | | |");
    write_results(
        "start",
        &[
            Row::new(
                format!("process start to ready, {count} plugins cached"),
                ready_median,
                "ms",
                "the goal (no baseline to measure)",
                500.0,
            )
            .goal("≤ 500 ms", ready_median <= 500.0),
            Row::new(
                "activation of a compiled version (from the cache)",
                act_median,
                "ms",
                "upload of a new component, compiled cold",
                upload_median,
            )
            .goal("≤ 20 ms", act_median <= 20.0),
        ],
    );
}
