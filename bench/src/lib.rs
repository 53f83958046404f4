//! What `rescind-bench` does besides running processes: the benchmarks it
//! knows, the results files they write (`<results>/<bench>.json`), how one
//! run's outcomes merge into one table (markdown and JSON), and the charts.
//!
//! A results file, as `host/benches/support/results.rs` writes it:
//!
//! ```json
//! {"bench": "cancel_api", "machine": {"cpus": 2, ...},
//!  "rows": [{"figure": "...", "value": 6988.0, "unit": "req/s",
//!            "baseline": "HTTP floor", "baselineValue": 21858.0, "ratio": 0.32,
//!            "goal": "≥ 35 % of the floor", "met": false,
//!            "series": "clients", "x": 64}]}
//! ```
//!
//! `series` and `x` are optional: they make a row a point of a curve to
//! chart. A row without them whose figure names a store size ("… 100,000
//! orders", "… 1M orders") is a point of the `orders` curve.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod charts;

/// A benchmark the runner knows: where it lives and how to keep it
/// bounded.
#[derive(Clone, Debug)]
pub struct Bench {
    pub name: &'static str,
    /// The cargo package whose bench target it is.
    pub package: &'static str,
    /// Environment variables that bound it (a value already set in the
    /// runner's environment wins).
    pub knobs: &'static [(&'static str, &'static str)],
    /// Arguments after `--bench` (for the criterion benches: a filter that
    /// skips criterion's own sampling and keeps the bounded loops).
    pub args: &'static [&'static str],
    /// How long it may run before it is ended and marked.
    pub cap: Duration,
    /// What it measures, for `rescind-bench list`.
    pub about: &'static str,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Every benchmark, in the order `all` runs them. The knobs keep the whole
/// suite to about an hour on two cores, ten minutes of it the memory soak
/// the goal names; each bench alone (`cargo bench`) has defaults of its own.
pub const BENCHES: &[Bench] = &[
    Bench {
        name: "plugin_dispatch",
        package: "rescind-host",
        knobs: &[("RESCIND_BENCH_CALLS", "2000")],
        args: &["zzz-no-criterion"],
        cap: secs(240),
        about: "plugin instantiate + call + drop vs the bare-wasmtime floor; compile cache",
    },
    Bench {
        name: "redaction",
        package: "rescind-host",
        knobs: &[("RESCIND_BENCH_RUNS", "15")],
        args: &["zzz-no-criterion"],
        cap: secs(120),
        about: "secret redaction: one automaton vs a scan per secret",
    },
    Bench {
        name: "cancel_api",
        package: "rescind-host",
        knobs: &[
            ("RESCIND_BENCH_ORDERS", "45000"),
            ("RESCIND_BENCH_REQUESTS", "5000"),
            ("RESCIND_BENCH_ROUNDS", "3"),
        ],
        args: &[],
        cap: secs(300),
        about: "committed cancellations over loopback HTTP vs the HTTP floor, in-process clients",
    },
    Bench {
        name: "client_curve",
        package: "rescind-bench",
        knobs: &[
            ("RESCIND_BENCH_REQUESTS", "4000"),
            ("RESCIND_BENCH_CLIENT_COUNTS", "1,16,64,256"),
        ],
        args: &[],
        cap: secs(360),
        about: "cancel API at 1/16/64/256 clients, load from a separate process, vs the floor",
    },
    Bench {
        name: "busy_plugins",
        package: "rescind-host",
        knobs: &[
            ("RESCIND_BENCH_REQUESTS", "300"),
            ("RESCIND_BENCH_ROUNDS", "1"),
        ],
        args: &[],
        cap: secs(360),
        about: "the API's p99 while plugins loop, vs idle",
    },
    Bench {
        name: "delivery",
        package: "rescind-host",
        knobs: &[
            ("RESCIND_BENCH_JOBS", "1000"),
            ("RESCIND_BENCH_WORKERS", "2,8"),
            ("RESCIND_BENCH_DELAYS_MS", "1,50"),
        ],
        args: &[],
        cap: secs(300),
        about: "ERP deliveries per second vs what the concurrency allows",
    },
    Bench {
        name: "poison_plugin",
        package: "rescind-host",
        knobs: &[
            ("RESCIND_BENCH_REQUESTS", "300"),
            ("RESCIND_BENCH_ROUNDS", "1"),
        ],
        args: &[],
        cap: secs(240),
        about: "201 → ERP at 100/s, clean and beside a plugin that always traps",
    },
    Bench {
        name: "start",
        package: "rescind-host",
        knobs: &[
            ("RESCIND_BENCH_STARTS", "5"),
            ("RESCIND_BENCH_ACTIVATIONS", "20"),
        ],
        args: &[],
        cap: secs(240),
        about: "process start to ready with 20 plugins cached; activation",
    },
    Bench {
        name: "hotload",
        package: "rescind-host",
        knobs: &[
            ("RESCIND_BENCH_SAMPLES", "3"),
            ("RESCIND_BENCH_JOBS", "500"),
        ],
        args: &[],
        cap: secs(300),
        about: "activation from the compile cache vs cold; job latency while swapping",
    },
    Bench {
        name: "memory",
        package: "rescind-host",
        knobs: &[
            ("RESCIND_BENCH_QUEUED", "100000"),
            ("RESCIND_BENCH_SOAK_SECS", "600"),
        ],
        args: &[],
        cap: secs(1200),
        about: "resident memory idle, with a queue, at full plugin concurrency; soak slope",
    },
    Bench {
        name: "replicas",
        package: "rescind-host",
        knobs: &[("RESCIND_BENCH_REQUESTS", "1500")],
        args: &[],
        cap: secs(360),
        about: "the store on PostgreSQL, 1 to 3 replicas, vs one SQLite host",
    },
    Bench {
        name: "scaling",
        package: "rescind-host",
        knobs: &[
            ("RESCIND_BENCH_SCALES", "10000,100000,1000000"),
            // The bench's own defaults: at 1M orders, two rounds of 2,000
            // were too few for a steady p99.
            ("RESCIND_BENCH_REQUESTS", "3000"),
            ("RESCIND_BENCH_ROUNDS", "3"),
            ("RESCIND_BENCH_LOAD_LIMIT", "400"),
            ("RESCIND_BENCH_JOBS", "1000000"),
        ],
        args: &[],
        // The prune of the 1M finished jobs alone takes two to three
        // minutes: it rests seven times as long as each batch took.
        cap: secs(1500),
        about: "cancel throughput and p99 as the store grows",
    },
];

/// The Extism comparison: its own workspace (`bench/extism`), run only
/// with `--with-extism`.
pub const EXTISM: Bench = Bench {
    name: "extism_dispatch",
    package: "rescind-bench-extism",
    knobs: &[("RESCIND_BENCH_CALLS", "2000")],
    args: &[],
    cap: secs(600),
    about: "Extism fresh plugin + call vs rescind's dispatch (separate workspace)",
};

/// The bench called `name`, the Extism one included.
pub fn find(name: &str) -> Option<&'static Bench> {
    BENCHES
        .iter()
        .chain(std::iter::once(&EXTISM))
        .find(|b| b.name == name)
}

/// One figure, as a results file has it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub figure: String,
    pub value: Option<f64>,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub baseline: String,
    pub baseline_value: Option<f64>,
    #[serde(default)]
    pub ratio: Option<f64>,
    #[serde(default)]
    pub goal: Option<String>,
    #[serde(default)]
    pub met: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
}

impl Row {
    /// The ratio of value to baseline, computed again from the two (a file's
    /// own `ratio` is used only when one of them is missing).
    pub fn computed_ratio(&self) -> Option<f64> {
        match (self.value, self.baseline_value) {
            (Some(v), Some(b)) if v.is_finite() && b.is_finite() && b != 0.0 => Some(v / b),
            _ => self.ratio.filter(|r| r.is_finite()),
        }
    }
}

/// A results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchFile {
    pub bench: String,
    #[serde(default)]
    pub machine: Value,
    pub rows: Vec<Row>,
}

/// Why a results file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a results file: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: written by bench {found:?}, expected {expected:?}")]
    WrongBench {
        path: String,
        found: String,
        expected: String,
    },
}

/// Reads `<dir>/<bench>.json`.
pub fn read_results(dir: &Path, bench: &str) -> Result<BenchFile, ResultsError> {
    let path = dir.join(format!("{bench}.json"));
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| ResultsError::Read {
        path: shown.clone(),
        source,
    })?;
    let file: BenchFile = serde_json::from_str(&text).map_err(|source| ResultsError::Parse {
        path: shown.clone(),
        source,
    })?;
    if file.bench != bench {
        return Err(ResultsError::WrongBench {
            path: shown,
            found: file.bench,
            expected: bench.to_owned(),
        });
    }
    Ok(file)
}

/// How one bench's run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "status",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Status {
    /// It ran and wrote its results file.
    Ok,
    /// It exited with an error (or was killed by a signal: no code).
    Failed { code: Option<i32>, detail: String },
    /// It overran its time cap and was ended.
    TimedOut { cap_secs: u64 },
    /// It exited cleanly but its results file is missing or unreadable.
    NoResults { detail: String },
    /// There is no such bench target in this checkout (or it did not build).
    Missing { detail: String },
}

impl Status {
    /// The status in a few words, for the table.
    pub fn words(&self) -> String {
        match self {
            Status::Ok => "ok".to_owned(),
            Status::Failed {
                code: Some(code), ..
            } => format!("failed (exit {code})"),
            Status::Failed { code: None, .. } => "failed (killed by a signal)".to_owned(),
            Status::TimedOut { cap_secs } => format!("timed out (ended after {cap_secs} s)"),
            Status::NoResults { .. } => "failed (no results file)".to_owned(),
            Status::Missing { .. } => "skipped: no such bench target here".to_owned(),
        }
    }

    fn detail(&self) -> Option<&str> {
        match self {
            Status::Failed { detail, .. }
            | Status::NoResults { detail }
            | Status::Missing { detail } => Some(detail),
            _ => None,
        }
    }
}

/// One bench's run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub bench: String,
    #[serde(flatten)]
    pub status: Status,
    pub seconds: f64,
    /// `/proc/loadavg`'s three figures before and after it ran.
    pub load_before: String,
    pub load_after: String,
    pub rows: Vec<Row>,
}

/// One run of the suite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub machine: Value,
    pub started: String,
    pub seconds: f64,
    pub benches: Vec<Outcome>,
}

impl Summary {
    /// Every row of every bench that ran, with its ratio computed again.
    pub fn normalise(&mut self) {
        for outcome in &mut self.benches {
            for row in &mut outcome.rows {
                row.ratio = row.computed_ratio();
            }
        }
    }

    /// Goals met and goals missed, over every bench that ran.
    pub fn goals(&self) -> (usize, usize) {
        let mets = self
            .benches
            .iter()
            .flat_map(|o| &o.rows)
            .filter_map(|r| r.met);
        mets.fold(
            (0, 0),
            |(yes, no), met| {
                if met { (yes + 1, no) } else { (yes, no + 1) }
            },
        )
    }
}

/// A figure as people read it: thousands separated, three significant
/// digits for small ones.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return "—".to_owned();
    }
    let magnitude = value.abs();
    if magnitude >= 1000.0 {
        let whole = format!("{:.0}", magnitude);
        let mut grouped = String::new();
        for (i, digit) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        if value < 0.0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else if magnitude == 0.0 {
        "0".to_owned()
    } else {
        format!("{value:.3}")
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The merged table, in markdown: one line per figure, one per bench that
/// did not run to the end.
pub fn markdown(summary: &Summary) -> String {
    let mut out = String::new();
    let machine = &summary.machine;
    let _ = writeln!(
        out,
        "Run of {} ({:.0} s): {} CPUs ({}), {} MiB memory; load average {} at the start, {} at the end.\n",
        summary.started,
        summary.seconds,
        machine["cpus"],
        machine["cpuModel"].as_str().unwrap_or("unknown CPU"),
        machine["memTotalMiB"],
        summary
            .benches
            .first()
            .map_or("?", |o| o.load_before.as_str()),
        summary
            .benches
            .last()
            .map_or("?", |o| o.load_after.as_str()),
    );
    let _ = writeln!(
        out,
        "| bench | figure | value | baseline (same run) | baseline value | ratio | goal | met |"
    );
    let _ = writeln!(out, "|---|---|---:|---|---:|---:|---|---|");
    for outcome in &summary.benches {
        if outcome.status != Status::Ok || outcome.rows.is_empty() {
            let detail = outcome
                .status
                .detail()
                .map(|d| format!(": {}", cell(d)))
                .unwrap_or_default();
            let words = if outcome.status == Status::Ok {
                "ran, but wrote no figures".to_owned()
            } else {
                outcome.status.words()
            };
            let _ = writeln!(
                out,
                "| {} | **{words}**{detail} | | | | | | |",
                outcome.bench
            );
        }
        for row in &outcome.rows {
            let unit = if row.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", row.unit)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {}{unit} | {} | {}{unit} | {} | {} | {} |",
                outcome.bench,
                cell(&row.figure),
                row.value.map_or("—".to_owned(), number),
                cell(&row.baseline),
                row.baseline_value.map_or("—".to_owned(), number),
                row.computed_ratio()
                    .map_or("—".to_owned(), |r| format!("{}×", number(r))),
                cell(row.goal.as_deref().unwrap_or("")),
                match row.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "",
                },
            );
        }
    }
    let (met, missed) = summary.goals();
    let not_run = summary
        .benches
        .iter()
        .filter(|o| o.status != Status::Ok)
        .count();
    let _ = writeln!(
        out,
        "\nGoals met: {met}, missed: {missed}; benches that did not run to the end: {not_run}."
    );
    out
}

/// A curve to chart: the points of one series, per unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub series: String,
    pub unit: String,
    /// What the values are (the first point's figure, up to its first
    /// comma) and what the baselines are.
    pub label: String,
    pub baseline_label: String,
    /// (x, value, baseline value), sorted by x.
    pub points: Vec<(f64, f64, Option<f64>)>,
}

/// The store size a figure names ("10,000 orders", "1M orders", "100k
/// orders"), if any.
pub fn orders_in(figure: &str) -> Option<f64> {
    let words: Vec<&str> = figure.split_whitespace().collect();
    words.windows(2).find_map(|pair| {
        if !pair[1]
            .trim_end_matches([',', ';', ')', '.'])
            .eq_ignore_ascii_case("orders")
        {
            return None;
        }
        let token = pair[0].trim_start_matches('(').replace(['_', ','], "");
        let (digits, scale) = match token.chars().last()? {
            'k' | 'K' => (&token[..token.len() - 1], 1e3),
            'M' | 'm' => (&token[..token.len() - 1], 1e6),
            _ => (token.as_str(), 1.0),
        };
        digits.parse::<f64>().ok().map(|n| n * scale)
    })
}

/// The curves in a run's rows, grouped by series and unit.
pub fn curves(summary: &Summary) -> Vec<Curve> {
    let mut grouped: BTreeMap<(String, String), Vec<&Row>> = BTreeMap::new();
    for outcome in &summary.benches {
        for row in &outcome.rows {
            let series = match (&row.series, row.x) {
                (Some(series), Some(_)) => series.clone(),
                _ if orders_in(&row.figure).is_some() => "orders".to_owned(),
                _ => continue,
            };
            grouped
                .entry((series, row.unit.clone()))
                .or_default()
                .push(row);
        }
    }
    grouped
        .into_iter()
        .filter_map(|((series, unit), rows)| {
            let mut points: Vec<(f64, f64, Option<f64>)> = rows
                .iter()
                .filter_map(|r| {
                    let x = r.x.or_else(|| orders_in(&r.figure))?;
                    Some((x, r.value?, r.baseline_value))
                })
                .collect();
            if points.len() < 2 {
                return None;
            }
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let first = rows[0];
            let stem = |text: &str| text.split(',').next().unwrap_or(text).trim().to_owned();
            Some(Curve {
                series,
                unit,
                label: stem(&first.figure),
                baseline_label: stem(&first.baseline),
                points,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
