//! `rescind jobs show` as an operator runs it: this build's `rescind serve`
//! delivers a cancellation through the bundled `aaas` plugin to a loopback
//! fake of the ERP, and `rescind jobs show` prints the job with what the
//! plugin sent and what the ERP answered, the token redacted. The host,
//! the calls and the binary's runs are shared with `replay.rs`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rescind_tests::fakes::aaas::{AaasAuth, AaasFake};
use rescind_tests::serve_process::ServeProcess;
use serde_json::{Value, json};

pub(crate) const ADMIN: &str = "jobs-show-admin-token-0123456789abcdef";
const AAAS_TOKEN: &str = "jobs-show-aaas-t0ken-s3cret";
/// A generous ceiling for starting the host and settling the job on a
/// loaded machine; a run that works ends far earlier.
pub(crate) const CEILING: Duration = Duration::from_secs(120);

/// Starts the binary with one worker on `dir`: a running `rescind serve`,
/// stopped when dropped.
pub(crate) fn start_host(dir: &Path) -> ServeProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rescind"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
        .arg("--data-dir")
        .arg(dir)
        .env("RESCIND_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "error");
    ServeProcess::spawn(command, CEILING)
}

pub(crate) async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> Value {
    let mut request = client.request(method, &url).bearer_auth(ADMIN);
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the host answers");
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or_default();
    assert!(status.is_success(), "{url}: {status} {answer}");
    answer
}

pub(crate) fn rescind(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rescind"))
        .args(arguments)
        .env("RUST_BACKTRACE", "1")
        .env_remove("RESCIND_ADMIN_TOKEN")
        .env_remove("RESCIND_HOST")
        .output()
        .expect("rescind runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_show_prints_each_attempt_with_what_was_sent_and_answered() {
    let erp = AaasFake::start(AaasAuth::Bearer(AAAS_TOKEN.to_owned())).await;
    erp.add_order("B1", "C-1", "ERP-1001", &[1]);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let host = start_host(dir.path());
    let base = host.base.clone();
    let client = reqwest::Client::new();
    use reqwest::Method;
    for (method, path, body) in [
        (Method::POST, "/v1/admin/presets/insite", Value::Null),
        (
            Method::PUT,
            "/v1/admin/websites/main",
            json!({"allowCancellationRequest": true}),
        ),
        (
            Method::PUT,
            "/v1/admin/connections/erp",
            json!({"baseUrl": erp.base_url(), "allowedHosts": [erp.authority()],
                   "secrets": {"apiToken": AAAS_TOKEN}}),
        ),
        (
            Method::PUT,
            "/v1/admin/job-definitions/OrderCancel",
            json!({"jobType": "Execution", "connection": "erp", "integrationProcessor": "aaas",
                   "parameters": [{"name": "OrderNumber", "valueType": "String",
                                   "defaultValue": "", "prompt": "Order Number"}],
                   "retry": {"maxAttempts": 3, "initialBackoffMs": 10, "maxBackoffMs": 20},
                   "enabled": true}),
        ),
        (
            Method::PUT,
            "/v1/orders/SO-1",
            json!({"businessCode": "B1", "customerNumber": "C-1", "website": "main",
                   "status": "Submitted", "orderDate": "2024-09-01", "currency": "EUR",
                   "erpOrderNumber": "ERP-1001",
                   "lines": [{"lineNumber": 1, "sku": "CHAIR", "quantity": 1,
                              "amountMinor": 10000, "taxMinor": 1900}]}),
        ),
    ] {
        call(&client, method, format!("{base}{path}"), body).await;
    }
    let cancelled = call(
        &client,
        Method::POST,
        format!("{base}/v1/orders/SO-1/cancellations"),
        json!({"cancellationReason": "OUT_OF_STOCK"}),
    )
    .await;
    let job = cancelled["erpSync"]["jobs"][0]["id"]
        .as_str()
        .expect("a job")
        .to_owned();
    let deadline = Instant::now() + CEILING;
    loop {
        let answer = call(
            &client,
            Method::GET,
            format!("{base}/v1/admin/jobs/{job}"),
            Value::Null,
        )
        .await;
        if answer["state"] == "succeeded" {
            break;
        }
        assert_ne!(answer["state"], "failed", "{answer}");
        assert!(Instant::now() < deadline, "the job never settled: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let shown = rescind(&["jobs", "show", &job, "--host", &base, "--token", ADMIN]);
    let stdout = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let url = erp.base_url() + "/businesses/B1/customers/C-1/orders/ERP-1001/cancellations";
    for expected in [
        format!("job {job} (OrderCancel for order SO-1): succeeded after 1 attempt\n"),
        "attempt 1: accepted (".to_owned(),
        "  request 1 of 1, ".to_owned(),
        format!("    > POST {url}\n"),
        "    > authorization: [redacted]\n".to_owned(),
        "    > content-type: application/json\n".to_owned(),
        "    < 201 Created\n".to_owned(),
        "    < content-type: application/json\n".to_owned(),
        "internalRequestId".to_owned(),
    ] {
        assert!(stdout.contains(&expected), "{expected:?} not in:\n{stdout}");
    }
    assert!(!stdout.contains(AAAS_TOKEN), "{stdout}");

    // A wrong token or job: a plain error and exit status 1.
    let refused = rescind(&["jobs", "show", &job, "--host", &base, "--token", "wrong"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with("error: the host refused the token (HTTP 401"),
        "{stderr}"
    );
    let missing = rescind(&[
        "jobs",
        "show",
        "no-such-job",
        "--host",
        &base,
        "--token",
        ADMIN,
    ]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("HTTP 404 Not Found (job-not-found): no job with id no-such-job"),
        "{stderr}"
    );
    assert!(!stderr.contains("acktrace"), "{stderr}");
}

/// `rescind jobs prune` refuses a negative or garbled age itself, with a
/// reason, before it calls any host (none listens at the address given).
#[test]
fn jobs_prune_refuses_a_bad_age_before_calling_the_host() {
    for (age, reason) in [
        ("-5d", "is negative"),
        ("soon", "is not a duration"),
        ("30", "is not a duration"),
    ] {
        let refused = rescind(&[
            "jobs",
            "prune",
            "--older-than",
            age,
            "--host",
            "http://127.0.0.1:9",
            "--token",
            ADMIN,
        ]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{age}: {stderr}");
        assert!(stderr.contains(reason), "{age}: {stderr}");
        assert!(!stderr.contains("reaching the host"), "{age}: {stderr}");
    }
}

/// `rescind serve --job-retention` refuses a bad period at start.
#[test]
fn serve_refuses_a_bad_job_retention() {
    let dir = tempfile::tempdir().expect("temp dir");
    for retention in ["-1d", "forever"] {
        let refused = Command::new(env!("CARGO_BIN_EXE_rescind"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--job-retention",
                retention,
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .env("RESCIND_ADMIN_TOKEN", ADMIN)
            .output()
            .expect("rescind runs");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{retention}: {stderr}");
        assert!(stderr.contains("--job-retention"), "{retention}: {stderr}");
    }
}
