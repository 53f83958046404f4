//! Every benchmark's figures as one JSON file, `<results>/<bench>.json`, so
//! that `rescind-bench` can merge them into one table. Each figure is a
//! ratio against a baseline measured in the same run (or, where there is
//! none to measure, the goal it is held to), so that it holds on a noisy
//! machine.
//!
//! `<results>` is `$RESCIND_BENCH_RESULTS`, or `bench-results` in the
//! target directory the benchmark binary was built in
//! (`target/release/deps/<bench>-<hash>` → `target/bench-results`).

use std::path::PathBuf;

use serde_json::{Value, json};

/// One figure of a benchmark against its baseline.
#[derive(Clone, Debug)]
pub struct Row {
    pub figure: String,
    pub value: f64,
    pub unit: String,
    pub baseline: String,
    pub baseline_value: f64,
    pub goal: Option<String>,
    pub met: Option<bool>,
    /// For a chart: the curve this figure is a point of, and its x.
    pub curve: Option<(String, f64)>,
}

impl Row {
    /// `figure` is `value` `unit`, measured beside `baseline`, which was
    /// `baseline_value` in the same unit; the ratio is `value / baseline_value`.
    pub fn new(
        figure: impl Into<String>,
        value: f64,
        unit: impl Into<String>,
        baseline: impl Into<String>,
        baseline_value: f64,
    ) -> Row {
        Row {
            figure: figure.into(),
            value,
            unit: unit.into(),
            baseline: baseline.into(),
            baseline_value,
            goal: None,
            met: None,
            curve: None,
        }
    }

    /// The goal this figure is held to, in words, and whether it was met.
    pub fn goal(mut self, goal: impl Into<String>, met: bool) -> Row {
        self.goal = Some(goal.into());
        self.met = Some(met);
        self
    }

    /// Marks this figure as the point at `x` of curve `series` (e.g. the
    /// client curve, x = clients), for the charts `rescind-bench` draws.
    pub fn at(mut self, series: impl Into<String>, x: f64) -> Row {
        self.curve = Some((series.into(), x));
        self
    }

    /// `value / baseline_value`; NaN (written as `null`) when either is not
    /// a finite number or the baseline is zero.
    pub fn ratio(&self) -> f64 {
        if self.value.is_finite() && self.baseline_value.is_finite() && self.baseline_value != 0.0 {
            self.value / self.baseline_value
        } else {
            f64::NAN
        }
    }

    fn to_json(&self) -> Value {
        let number = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
        let mut row = json!({
            "figure": self.figure,
            "value": number(self.value),
            "unit": self.unit,
            "baseline": self.baseline,
            "baselineValue": number(self.baseline_value),
            "ratio": number(self.ratio()),
            "goal": self.goal,
            "met": self.met,
        });
        if let Some((series, x)) = &self.curve {
            row["series"] = json!(series);
            row["x"] = json!(x);
        }
        row
    }
}

/// What the figures were measured on.
pub fn machine() -> Value {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        });
    let mem_total_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
                .map(|kib| kib / 1024)
        });
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpuModel": cpu_model,
        "memTotalMiB": mem_total_mib,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "loadAverage": load_average,
    })
}

/// The directory the results go to (see the module's documentation).
pub fn results_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RESCIND_BENCH_RESULTS") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the benchmark's own path");
    // target/<profile>/deps/<bench>-<hash>
    exe.ancestors()
        .nth(3)
        .map(|target| target.join("bench-results"))
        .unwrap_or_else(|| PathBuf::from("bench-results"))
}

/// Writes `rows` as `<results>/<bench>.json` and says where.
pub fn write_results(bench: &str, rows: &[Row]) {
    let dir = results_dir();
    let document = json!({
        "bench": bench,
        "machine": machine(),
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    });
    let path = dir.join(format!("{bench}.json"));
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&document).expect("JSON of numbers and strings"),
        )
    });
    match written {
        Ok(()) => println!(
            "{bench}: {} figures written to {}",
            rows.len(),
            path.display()
        ),
        Err(e) => panic!("{bench}: cannot write {}: {e}", path.display()),
    }
}
