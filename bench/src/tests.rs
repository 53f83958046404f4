use super::*;

fn row(figure: &str, value: f64, baseline: f64) -> Row {
    Row {
        figure: figure.to_owned(),
        value: Some(value),
        unit: "req/s".to_owned(),
        baseline: "floor".to_owned(),
        baseline_value: Some(baseline),
        ..Row::default()
    }
}

fn outcome(bench: &str, status: Status, rows: Vec<Row>) -> Outcome {
    Outcome {
        bench: bench.to_owned(),
        status,
        seconds: 1.0,
        load_before: "0.50 0.40 0.30".to_owned(),
        load_after: "0.60 0.40 0.30".to_owned(),
        rows,
    }
}

fn summary(benches: Vec<Outcome>) -> Summary {
    Summary {
        machine: serde_json::json!({"cpus": 2, "cpuModel": "Test CPU", "memTotalMiB": 1024}),
        started: "now".to_owned(),
        seconds: 3.0,
        benches,
    }
}

#[test]
fn the_ratio_is_value_over_baseline_whatever_the_file_says() {
    let mut r = row("x", 7_000.0, 20_000.0);
    r.ratio = Some(99.0);
    assert_eq!(r.computed_ratio(), Some(0.35));
    let mut s = summary(vec![outcome("cancel_api", Status::Ok, vec![r])]);
    s.normalise();
    assert_eq!(s.benches[0].rows[0].ratio, Some(0.35));
}

#[test]
fn a_ratio_without_a_usable_baseline_is_none_or_the_files_own() {
    assert_eq!(row("x", 1.0, 0.0).computed_ratio(), None);
    let mut r = row("x", 1.0, 0.0);
    r.baseline_value = None;
    r.ratio = Some(0.5);
    assert_eq!(r.computed_ratio(), Some(0.5));
    r.ratio = Some(f64::NAN);
    assert_eq!(r.computed_ratio(), None);
}

#[test]
fn the_table_shows_figures_and_every_bench_that_did_not_finish() {
    let mut met = row("cancellations, 64 clients", 7_000.0, 20_000.0);
    met.goal = Some("≥ 35 % of the floor".to_owned());
    met.met = Some(true);
    let s = summary(vec![
        outcome("cancel_api", Status::Ok, vec![met]),
        outcome(
            "delivery",
            Status::Failed {
                code: Some(101),
                detail: "panicked at bind".to_owned(),
            },
            vec![],
        ),
        outcome("memory", Status::TimedOut { cap_secs: 300 }, vec![]),
        outcome(
            "scaling",
            Status::Missing {
                detail: "no bench target `scaling`".to_owned(),
            },
            vec![],
        ),
        outcome(
            "start",
            Status::NoResults {
                detail: "start.json: No such file".to_owned(),
            },
            vec![],
        ),
    ]);
    let table = markdown(&s);
    assert!(
        table.contains(
            "| cancel_api | cancellations, 64 clients | 7,000 req/s | floor | 20,000 req/s | 0.350× | ≥ 35 % of the floor | yes |"
        ),
        "{table}"
    );
    assert!(
        table.contains("| delivery | **failed (exit 101)**: panicked at bind |"),
        "{table}"
    );
    assert!(
        table.contains("| memory | **timed out (ended after 300 s)** |"),
        "{table}"
    );
    assert!(
        table.contains("| scaling | **skipped: no such bench target here**"),
        "{table}"
    );
    assert!(
        table.contains("| start | **failed (no results file)**"),
        "{table}"
    );
    assert!(
        table.contains("Goals met: 1, missed: 0; benches that did not run to the end: 4."),
        "{table}"
    );
    assert!(table.contains("2 CPUs (Test CPU)"), "{table}");
}

#[test]
fn a_missed_goal_stands_out_and_is_counted() {
    let mut r = row("p99", 20.0, 5.0);
    r.unit = "ms".to_owned();
    r.goal = Some("p99 ≤ 15 ms".to_owned());
    r.met = Some(false);
    let s = summary(vec![outcome("cancel_api", Status::Ok, vec![r])]);
    let table = markdown(&s);
    assert!(
        table.contains("| 20.0 ms | floor | 5.00 ms | 4.00× | p99 ≤ 15 ms | **no** |"),
        "{table}"
    );
    assert_eq!(s.goals(), (0, 1));
}

#[test]
fn a_pipe_in_a_figure_does_not_break_the_table() {
    let s = summary(vec![outcome("x", Status::Ok, vec![row("a | b", 1.0, 2.0)])]);
    assert!(markdown(&s).contains("| x | a \\| b |"));
}

#[test]
fn numbers_read_as_people_write_them() {
    assert_eq!(number(1_234_567.4), "1,234,567");
    assert_eq!(number(-4_200.0), "-4,200");
    assert_eq!(number(999.6), "1000");
    assert_eq!(number(123.4), "123");
    assert_eq!(number(12.34), "12.3");
    assert_eq!(number(1.234), "1.23");
    assert_eq!(number(0.1234), "0.123");
    assert_eq!(number(0.0), "0");
    assert_eq!(number(f64::NAN), "—");
}

#[test]
fn results_files_round_trip_and_a_wrong_one_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let text = r#"{"bench": "cancel_api", "machine": {"cpus": 2},
        "rows": [{"figure": "f", "value": 3.0, "unit": "ms", "baseline": "b",
                  "baselineValue": 6.0, "ratio": 0.5, "goal": null, "met": null}]}"#;
    std::fs::write(dir.path().join("cancel_api.json"), text).expect("write");
    let file = read_results(dir.path(), "cancel_api").expect("read");
    assert_eq!(file.rows[0].computed_ratio(), Some(0.5));
    assert_eq!(file.rows[0].series, None);

    std::fs::write(dir.path().join("memory.json"), text).expect("write");
    let err = read_results(dir.path(), "memory").expect_err("another bench's file");
    assert!(matches!(err, ResultsError::WrongBench { .. }), "{err}");

    std::fs::write(dir.path().join("start.json"), "{\"bench\": \"start\"").expect("write");
    let err = read_results(dir.path(), "start").expect_err("cut short");
    assert!(matches!(err, ResultsError::Parse { .. }), "{err}");

    let err = read_results(dir.path(), "delivery").expect_err("absent");
    assert!(matches!(err, ResultsError::Read { .. }), "{err}");
}

#[test]
fn the_summary_json_says_how_each_bench_ended() {
    let s = summary(vec![
        outcome("memory", Status::TimedOut { cap_secs: 300 }, vec![]),
        outcome("cancel_api", Status::Ok, vec![row("f", 1.0, 4.0)]),
    ]);
    let json = serde_json::to_value(&s).expect("json");
    assert_eq!(json["benches"][0]["status"], "timedOut");
    assert_eq!(json["benches"][0]["capSecs"], 300);
    assert_eq!(json["benches"][1]["status"], "ok");
    assert_eq!(json["benches"][1]["rows"][0]["baselineValue"], 4.0);
    let back: Summary = serde_json::from_value(json).expect("back");
    assert_eq!(back, s);
}

#[test]
fn store_sizes_are_read_from_figures() {
    assert_eq!(orders_in("cancellations/s, 10,000 orders"), Some(10_000.0));
    assert_eq!(orders_in("p99 with 1M orders in the store"), Some(1e6));
    assert_eq!(orders_in("p99 (100k orders)"), Some(1e5));
    assert_eq!(orders_in("10_000_000 orders, p99"), Some(1e7));
    assert_eq!(orders_in("cancellations, 64 clients"), None);
    assert_eq!(orders_in("many orders"), None);
}

#[test]
fn curves_group_points_by_series_and_unit_in_order_of_x() {
    let point = |clients: f64, unit: &str, value: f64| Row {
        figure: format!("cancellations, {clients} clients"),
        unit: unit.to_owned(),
        value: Some(value),
        baseline: "HTTP floor, same clients".to_owned(),
        baseline_value: Some(value * 3.0),
        series: Some("clients".to_owned()),
        x: Some(clients),
        ..Row::default()
    };
    let s = summary(vec![
        outcome(
            "client_curve",
            Status::Ok,
            vec![
                point(64.0, "req/s", 7_000.0),
                point(1.0, "req/s", 900.0),
                point(64.0, "ms", 20.0),
                point(1.0, "ms", 1.0),
                row("not on a curve", 1.0, 1.0),
            ],
        ),
        outcome(
            "scaling",
            Status::Ok,
            vec![
                row("cancellations/s, 1M orders", 5_000.0, 6_000.0),
                row("cancellations/s, 10,000 orders", 6_000.0, 6_000.0),
            ],
        ),
    ]);
    let found = curves(&s);
    assert_eq!(found.len(), 3, "{found:?}");
    let throughput = found
        .iter()
        .find(|c| c.series == "clients" && c.unit == "req/s")
        .expect("throughput curve");
    assert_eq!(
        throughput.points,
        vec![(1.0, 900.0, Some(2_700.0)), (64.0, 7_000.0, Some(21_000.0))]
    );
    assert_eq!(throughput.label, "cancellations");
    assert_eq!(throughput.baseline_label, "HTTP floor");
    let orders = found
        .iter()
        .find(|c| c.series == "orders")
        .expect("store-size curve");
    assert_eq!(orders.points[0].0, 10_000.0);

    let drawn = charts::charts(&s).expect("charts");
    let files: Vec<&str> = drawn.iter().map(|c| c.file.as_str()).collect();
    assert_eq!(files, ["curve-clients.svg", "curve-orders.svg"]);
    assert!(drawn[0].svg.starts_with("<svg"), "{}", &drawn[0].svg[..80]);
    assert!(drawn[0].svg.contains("HTTP floor"));
}
