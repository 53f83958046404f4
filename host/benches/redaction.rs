//! Secret redaction of one long line: the time per byte stays the same as
//! the line grows (one pass of an Aho-Corasick automaton over every form of
//! every secret), with 1 and with 100 secrets. The "repeated replace"
//! contender is the shape redaction had before: one scan of the line per
//! secret, plain values only, so its time grows with the number of secrets.
//!
//! And what a plugin call pays for its redactor: building it for the
//! connection's secret (every form, one automaton) against taking the one
//! the runtime's cache built for an earlier call.
//!
//! Run: `cargo bench -p rescind-host --bench redaction`

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput};
use rescind_host::plugins::{Redactor, RedactorCache};

mod support;

use support::{Row, median, write_results};

/// A line of `len` bytes with one secret every 4 KiB or so.
fn line(len: usize, secrets: &[String]) -> String {
    let mut text = String::with_capacity(len + 64);
    let mut i = 0;
    while text.len() < len {
        text.push_str("GET /api/orders?page=2 HTTP/1.1 answered 200 in 12 ms; ");
        if i % 64 == 0 {
            text.push_str(&secrets[i % secrets.len()]);
        }
        i += 1;
    }
    text
}

fn secrets(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("sk_live_{i:04}_Zm9vYmFyYmF6cXV4"))
        .collect()
}

fn redaction(c: &mut Criterion) {
    let mut group = c.benchmark_group("redact");
    for count in [1, 100] {
        let secrets = secrets(count);
        let redactor = Redactor::new(secrets.iter().cloned());
        for len in [64 * 1024, 1024 * 1024, 4 * 1024 * 1024] {
            let text = line(len, &secrets);
            group.throughput(Throughput::Bytes(text.len() as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{count} secrets"), len),
                &text,
                |b, text| b.iter(|| black_box(redactor.redact(black_box(text))).len()),
            );
        }
        let text = line(1024 * 1024, &secrets);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(
            BenchmarkId::new(format!("{count} secrets, repeated replace"), text.len()),
            &text,
            |b, text| {
                b.iter(|| {
                    let mut out = text.clone();
                    for secret in &secrets {
                        out = out.replace(secret.as_str(), "[redacted]");
                    }
                    black_box(out).len()
                })
            },
        );
    }
    group.finish();
}

/// The median of `runs` timed runs of `f`, in microseconds.
fn time(runs: usize, f: impl Fn() -> usize) -> f64 {
    let samples = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    median(samples)
}

/// Bounded loops for the results file (`RESCIND_BENCH_RUNS` timed runs of
/// each contender, 21 by default): the automaton against repeated replace
/// with 100 secrets, and the time per byte at 4 MiB against 64 KiB.
fn summary() -> Vec<Row> {
    let runs = support::env("RESCIND_BENCH_RUNS", 21).max(1);
    let secrets = secrets(100);
    let redactor = Redactor::new(secrets.iter().cloned());
    let mib = line(1024 * 1024, &secrets);
    let ours = time(runs, || redactor.redact(black_box(&mib)).len());
    let replace = time(runs, || {
        let mut out = mib.clone();
        for secret in &secrets {
            out = out.replace(secret.as_str(), "[redacted]");
        }
        out.len()
    });
    let small = line(64 * 1024, &secrets);
    let large = line(4 * 1024 * 1024, &secrets);
    let per_byte = |text: &String| {
        time(runs, || redactor.redact(black_box(text)).len()) * 1000.0 / text.len() as f64
    };
    let (small_ns, large_ns) = (per_byte(&small), per_byte(&large));
    // A connection's one secret, as a call gets its redactor: built, or
    // from the cache (1,000 per timed run, the time is per call).
    let secret = [String::from("whsec_Zm9vYmFyYmF6cXV4cXV1eA")];
    let cache = RedactorCache::new(64);
    let per_call =
        |f: &dyn Fn() -> usize| time(runs, || (0..1000).map(|_| f()).sum::<usize>()) / 1000.0;
    let built = per_call(&|| Redactor::new(black_box(&secret).iter().cloned()).longest());
    let cached = per_call(&|| cache.redactor(black_box(&secret).iter().cloned()).longest());
    println!(
        "redaction, 100 secrets, 1 MiB: Redactor {ours:.1} µs, repeated replace {replace:.1} µs; \
         per byte: 64 KiB {small_ns:.4} ns, 4 MiB {large_ns:.4} ns; \
         a call's redactor: built {built:.2} µs, from the cache {cached:.2} µs"
    );
    vec![
        Row::new(
            "Redactor, 100 secrets, 1 MiB line, median",
            ours,
            "µs",
            "repeated replace, 100 secrets, same line",
            replace,
        ),
        Row::new(
            "Redactor, 100 secrets, time per byte at 4 MiB",
            large_ns,
            "ns/B",
            "the same at 64 KiB",
            small_ns,
        )
        .goal(
            "linear in the line (≤ 2× per byte)",
            large_ns <= 2.0 * small_ns,
        ),
        Row::new(
            "a call's redactor for one secret, from the runtime's cache, median",
            cached,
            "µs",
            "the same redactor built for the call",
            built,
        ),
    ]
}

fn main() {
    support::as_served();
    let mut criterion = Criterion::default().configure_from_args();
    redaction(&mut criterion);
    criterion.final_summary();
    write_results("redaction", &summary());
}
