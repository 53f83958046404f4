//! Secret redaction of one long line: the time per byte stays the same as
//! the line grows (one pass of an Aho-Corasick automaton over every form of
//! every secret), with 1 and with 100 secrets. The "repeated replace"
//! contender is the shape redaction had before: one scan of the line per
//! secret, plain values only, so its time grows with the number of secrets.
//!
//! Run: `cargo bench -p rescind-host --bench redaction`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rescind_host::plugins::Redactor;

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

criterion_group!(benches, redaction);
criterion_main!(benches);
