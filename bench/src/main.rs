//! `rescind-bench`: runs rescind's benchmarks, each bounded in count (the
//! knobs it already reads) and in time (a cap, after which it is ended and
//! marked), and merges the figures they write into one table.
//!
//! ```sh
//! cargo run --release -p rescind-bench -- list
//! cargo run --release -p rescind-bench -- all [--with-extism]
//! cargo run --release -p rescind-bench -- cancel_api client_curve
//! ```
//!
//! Writes `target/bench-results/`: each bench's `<bench>.json` and
//! `<bench>.log`, the merged `summary.md` and `summary.json`, and a chart
//! per curve (`curve-*.svg`).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use rescind_bench::{BENCHES, Bench, EXTISM, Outcome, Status, Summary, charts, find, markdown};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "rescind-bench",
    about = "Runs rescind's benchmarks, bounded, and merges their figures into one table"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// Where the results go (default: `bench-results` in the target directory).
    #[arg(long, global = true)]
    results: Option<PathBuf>,
    /// A time cap in seconds for every bench, instead of each one's own.
    #[arg(long, global = true)]
    cap: Option<u64>,
}

#[derive(Subcommand)]
enum Cmd {
    /// The benches, with their knobs and time caps.
    List,
    /// Every bench (the Extism comparison only with `--with-extism`).
    All {
        /// Also the Extism comparison (its own workspace; needs crates.io
        /// the first time).
        #[arg(long)]
        with_extism: bool,
    },
    /// Only the benches named.
    #[command(external_subcommand)]
    Some(Vec<String>),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let results = cli
        .results
        .clone()
        .unwrap_or_else(|| target.join("bench-results"));
    let chosen: Vec<&Bench> = match &cli.command {
        Cmd::List => {
            list();
            return Ok(());
        }
        Cmd::All { with_extism } => BENCHES
            .iter()
            .chain(with_extism.then_some(&EXTISM))
            .collect(),
        Cmd::Some(names) => names
            .iter()
            .map(|name| {
                find(name)
                    .with_context(|| format!("no bench {name:?}; `rescind-bench list` shows them"))
            })
            .collect::<Result<_>>()?,
    };
    std::fs::create_dir_all(&results).with_context(|| format!("creating {}", results.display()))?;

    let started = SystemTime::now();
    let clock = Instant::now();
    let mut executables = build(&root, &target, &chosen)?;
    let mut outcomes = Vec::new();
    for bench in &chosen {
        let cap = cli.cap.map_or(bench.cap, Duration::from_secs);
        let outcome = match executables.remove(bench.name) {
            Some(Ok(exe)) => run(&root, &results, bench, &exe, cap, started)?,
            Some(Err(detail)) => missing(bench, detail),
            None => missing(
                bench,
                format!(
                    "no bench target `{}` in package {} of this checkout",
                    bench.name, bench.package
                ),
            ),
        };
        println!(
            "== {}: {} ({:.0} s)",
            bench.name,
            outcome.status.words(),
            outcome.seconds
        );
        outcomes.push(outcome);
    }

    let mut summary = Summary {
        machine: machine(),
        started: humantime::format_rfc3339_seconds(started).to_string(),
        seconds: clock.elapsed().as_secs_f64(),
        benches: outcomes,
    };
    summary.normalise();
    let table = markdown(&summary);
    std::fs::write(results.join("summary.md"), &table)?;
    std::fs::write(
        results.join("summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    let mut drawn = Vec::new();
    match charts::charts(&summary) {
        Ok(charts) => {
            for chart in charts {
                std::fs::write(results.join(&chart.file), chart.svg)?;
                drawn.push(chart.file);
            }
        }
        Err(e) => eprintln!("charts: {e}"),
    }
    println!("\n{table}");
    println!(
        "Written to {}: summary.md, summary.json{}",
        results.display(),
        drawn.iter().map(|f| format!(", {f}")).collect::<String>()
    );
    let failed = summary
        .benches
        .iter()
        .filter(|o| !matches!(o.status, Status::Ok | Status::Missing { .. }))
        .count();
    if failed > 0 {
        bail!("{failed} bench(es) failed or overran their time cap (see the table)");
    }
    Ok(())
}

fn list() {
    for bench in BENCHES.iter().chain(std::iter::once(&EXTISM)) {
        let knobs: Vec<String> = bench
            .knobs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "{:<16} {} (cap {} s{}{})",
            bench.name,
            bench.about,
            bench.cap.as_secs(),
            if knobs.is_empty() { "" } else { "; " },
            knobs.join(" ")
        );
    }
    println!("\n`all` runs every one but `extism`, which needs `all --with-extism` or its name.");
}

/// The workspace this runner was built in.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the bench crate sits in the workspace")
        .to_owned()
}

/// What the machine is, and how busy.
fn machine() -> Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_owned());
    let mem = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib / 1024);
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpuModel": model,
        "memTotalMiB": mem,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "rustc": rustc,
        "loadAverage": load_average(),
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Builds the chosen benches (release) and answers each one's executable,
/// or why it has none.
fn build(
    root: &Path,
    target: &Path,
    chosen: &[&Bench],
) -> Result<HashMap<String, Result<PathBuf, String>>> {
    let mut found = HashMap::new();
    let mut packages: Vec<&str> = chosen
        .iter()
        .filter(|b| b.name != EXTISM.name)
        .map(|b| b.package)
        .collect();
    packages.sort_unstable();
    packages.dedup();
    if !packages.is_empty() {
        let mut command = Command::new(cargo());
        command.current_dir(root).args([
            "bench",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ]);
        for package in &packages {
            command.args(["-p", package]);
        }
        found.extend(artifacts(command).context("building the benches")?);
    }
    if chosen.iter().any(|b| b.name == EXTISM.name) {
        let mut command = Command::new(cargo());
        command
            .current_dir(root.join("bench/extism"))
            .env("CARGO_TARGET_DIR", target.join("extism"))
            .args([
                "bench",
                "--no-run",
                "--message-format=json-render-diagnostics",
            ]);
        match artifacts(command) {
            Ok(built) => found.extend(built),
            Err(e) => {
                found.insert(
                    EXTISM.name.to_owned(),
                    Err(format!("the Extism workspace did not build: {e:#}")),
                );
            }
        }
    }
    Ok(found)
}

/// The cargo to build the benches with. Under rustup, its proxy (`cargo`
/// on the path, which reads the workspace's `rust-toolchain.toml`): `$CARGO`
/// is the resolved binary, and a toolchain reached by another path (a
/// symlinked one) makes cargo see another sysroot and rebuild everything.
fn cargo() -> String {
    if std::env::var_os("RUSTUP_TOOLCHAIN").is_some() {
        return "cargo".to_owned();
    }
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Runs a `cargo bench --no-run --message-format=json…` and answers the
/// bench executables it reports, by target name.
fn artifacts(mut command: Command) -> Result<HashMap<String, Result<PathBuf, String>>> {
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !output.status.success() {
        bail!("cargo exited with {}", output.status);
    }
    let mut found = HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let is_bench = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "bench"));
        if message["reason"] == "compiler-artifact"
            && is_bench
            && let (Some(name), Some(exe)) = (
                message["target"]["name"].as_str(),
                message["executable"].as_str(),
            )
        {
            found.insert(name.to_owned(), Ok(PathBuf::from(exe)));
        }
    }
    Ok(found)
}

fn missing(bench: &Bench, detail: String) -> Outcome {
    Outcome {
        bench: bench.name.to_owned(),
        status: Status::Missing { detail },
        seconds: 0.0,
        load_before: load_average(),
        load_after: load_average(),
        rows: Vec::new(),
    }
}

/// Runs one bench executable as `cargo bench` would (in its package's
/// directory, with `--bench`), its output to `<results>/<bench>.log`,
/// within `cap`.
fn run(
    root: &Path,
    results: &Path,
    bench: &Bench,
    exe: &Path,
    cap: Duration,
    run_started: SystemTime,
) -> Result<Outcome> {
    let json = results.join(format!("{}.json", bench.name));
    let _ = std::fs::remove_file(&json); // an earlier run's figures must not pass for this one's
    let log_path = results.join(format!("{}.log", bench.name));
    let log = File::create(&log_path).with_context(|| format!("{}", log_path.display()))?;
    let package_dir = match bench.package {
        "rescind-host" => root.join("host"),
        "rescind-bench" => root.join("bench"),
        _ => root.join("bench/extism"),
    };
    let mut command = Command::new(exe);
    command
        .arg("--bench")
        .args(bench.args)
        .current_dir(package_dir)
        .env("RESCIND_BENCH_RESULTS", results)
        .env("RESCIND_BENCH_WORKSPACE", root)
        .env(
            "RESCIND_BENCH_RUN_STARTED",
            run_started
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .to_string(),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    for (name, value) in bench.knobs {
        if std::env::var_os(name).is_none() {
            command.env(name, value);
        }
    }
    println!(
        "== {}: running (cap {} s, log {})",
        bench.name,
        cap.as_secs(),
        log_path.display()
    );
    let load_before = load_average();
    let clock = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if clock.elapsed() > cap {
            end(&mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let seconds = clock.elapsed().as_secs_f64();
    let last_lines = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(2)..].join(" / ")
    };
    let (status, rows) = match status {
        None => (
            Status::TimedOut {
                cap_secs: cap.as_secs(),
            },
            Vec::new(),
        ),
        Some(exit) if !exit.success() => (
            Status::Failed {
                code: exit.code(),
                detail: last_lines(),
            },
            Vec::new(),
        ),
        Some(_) => match rescind_bench::read_results(results, bench.name) {
            Ok(file) => (Status::Ok, file.rows),
            Err(e) => (
                Status::NoResults {
                    detail: e.to_string(),
                },
                Vec::new(),
            ),
        },
    };
    Ok(Outcome {
        bench: bench.name.to_owned(),
        status,
        seconds,
        load_before,
        load_after: load_average(),
        rows,
    })
}

/// Ends a bench that overran its cap, and every process it started (the
/// `rescind serve` children of some benches), each by its own pid.
fn end(child: &mut Child) {
    let descendants = descendants(child.id());
    let _ = child.kill();
    let _ = child.wait();
    for pid in descendants {
        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// The processes below `pid`, children before grandchildren, read from
/// `/proc/<pid>/task/<tid>/children`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if !found.contains(&child) {
                    found.push(child);
                    queue.push(child);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A fake bench: a shell script standing in for a bench binary.
    fn fake(name: &'static str) -> Bench {
        Bench {
            name,
            package: "rescind-host",
            knobs: &[("RESCIND_BENCH_FAKE_KNOB", "7")],
            args: &[],
            cap: Duration::from_secs(60),
            about: "a test",
        }
    }

    /// A workspace-like directory (`host/` is where benches run) and the
    /// script `body` as an executable.
    fn setup(body: &str) -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(root.path().join("host")).expect("host dir");
        std::fs::create_dir_all(root.path().join("results")).expect("results dir");
        let exe = root.path().join("bench.sh");
        std::fs::write(&exe, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        (root, exe)
    }

    fn run_fake(body: &str, name: &'static str, cap: Duration) -> (Outcome, tempfile::TempDir) {
        let (root, exe) = setup(body);
        let results = root.path().join("results");
        let outcome = run(
            root.path(),
            &results,
            &fake(name),
            &exe,
            cap,
            SystemTime::now(),
        )
        .expect("run");
        (outcome, root)
    }

    #[test]
    fn a_bench_that_writes_its_figures_is_ok_with_them() {
        let body = r#"[ "$1" = --bench ] || exit 9
[ "$RESCIND_BENCH_FAKE_KNOB" = 7 ] || exit 8
cat > "$RESCIND_BENCH_RESULTS/good.json" <<JSON
{"bench": "good", "machine": {}, "rows": [{"figure": "f", "value": 2.0, "unit": "ms",
 "baseline": "b", "baselineValue": 8.0, "ratio": 0.25, "goal": null, "met": null}]}
JSON"#;
        let (outcome, _dir) = run_fake(body, "good", Duration::from_secs(60));
        assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
        assert_eq!(outcome.rows.len(), 1);
        assert_eq!(outcome.rows[0].computed_ratio(), Some(0.25));
    }

    #[test]
    fn a_bench_that_fails_is_marked_with_its_last_words() {
        let (outcome, _dir) = run_fake(
            "echo 'thread main panicked at bind' >&2; exit 3",
            "bad",
            Duration::from_secs(60),
        );
        match outcome.status {
            Status::Failed { code, detail } => {
                assert_eq!(code, Some(3));
                assert!(detail.contains("panicked at bind"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        assert!(outcome.rows.is_empty());
    }

    #[test]
    fn a_bench_that_exits_cleanly_without_figures_is_not_ok() {
        let (outcome, _dir) = run_fake("exit 0", "silent", Duration::from_secs(60));
        assert!(
            matches!(outcome.status, Status::NoResults { .. }),
            "{outcome:?}"
        );
    }

    #[test]
    fn an_earlier_runs_figures_do_not_pass_for_a_failed_run() {
        let (root, exe) = setup("exit 1");
        let results = root.path().join("results");
        std::fs::write(
            results.join("stale.json"),
            r#"{"bench": "stale", "machine": {}, "rows": []}"#,
        )
        .expect("stale file");
        let outcome = run(
            root.path(),
            &results,
            &fake("stale"),
            &exe,
            Duration::from_secs(60),
            SystemTime::now(),
        )
        .expect("run");
        assert!(matches!(outcome.status, Status::Failed { .. }));
        assert!(!results.join("stale.json").exists());
    }

    /// Whether `pid` is gone (or a zombie nobody reaped yet).
    fn gone(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        }
    }

    #[test]
    fn a_bench_that_overruns_its_cap_is_ended_with_what_it_started() {
        // The "bench" starts a child of its own and waits far past the cap.
        let body = r#"sleep 300 &
echo $! > "$RESCIND_BENCH_RESULTS/child.pid"
wait"#;
        // A cap long enough for the script to have started its child.
        let (outcome, root) = run_fake(body, "slow", Duration::from_secs(5));
        assert_eq!(outcome.status, Status::TimedOut { cap_secs: 5 });
        let pid: u32 = std::fs::read_to_string(root.path().join("results/child.pid"))
            .expect("the child's pid")
            .trim()
            .parse()
            .expect("a pid");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !gone(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(gone(pid), "the bench's own child {pid} survived");
        let table = markdown(&Summary {
            machine: machine(),
            started: "now".to_owned(),
            seconds: outcome.seconds,
            benches: vec![outcome],
        });
        assert!(
            table.contains("| slow | **timed out (ended after 5 s)** |"),
            "{table}"
        );
    }
}
