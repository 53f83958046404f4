//! `rescind plugin test FILE --replay JOB_ID` as a plugin author runs it:
//! this build's `rescind serve` delivers a cancellation through the bundled
//! `webhook` plugin to a loopback receiver (a 503, retried, then a 201) and
//! through `aaas` to a loopback fake of that ERP, and each job's last
//! attempt is replayed with local builds: the same build sends the same
//! request (exit 0; the recorded token skipped, not compared), a changed
//! one is shown how it differs (exit 1). A trapping plugin names its
//! functions.

use std::time::{Duration, Instant};

use reqwest::Method;
use rescind_tests::erp_server::{ErpServer, Scripted};
use rescind_tests::fakes::aaas::{AaasAuth, AaasFake};
use serde_json::{Value, json};

use crate::jobs_show::{ADMIN, CEILING, call, rescind, start_host};

const SIGNING_KEY: &str = "replay-webhook-signing-k3y";
const AAAS_TOKEN: &str = "replay-aaas-t0ken-s3cret";

fn stdout_of(output: &std::process::Output) -> String {
    format!(
        "{}\n--- stderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Sets up the host to deliver every cancellation through `webhook` to
/// `erp` and through `aaas` to `aaas`, cancels an order and waits for both
/// jobs to succeed; answers the jobs' ids, webhook's first.
async fn deliver(base: &str, erp: &ErpServer, aaas: &AaasFake) -> (String, String) {
    let client = reqwest::Client::new();
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
            json!({"baseUrl": erp.url("/hooks"), "allowedHosts": [erp.authority()],
                   "settings": {"note": "replayed"},
                   "secrets": {"signingKey": SIGNING_KEY}}),
        ),
        (
            Method::PUT,
            "/v1/admin/job-definitions/OrderCancel",
            json!({"jobType": "Execution", "connection": "erp", "integrationProcessor": "webhook",
                   "parameters": [{"name": "OrderNumber", "valueType": "String",
                                   "defaultValue": "", "prompt": "Order Number"}],
                   "retry": {"maxAttempts": 3, "initialBackoffMs": 10, "maxBackoffMs": 20},
                   "enabled": true}),
        ),
        (
            Method::PUT,
            "/v1/admin/connections/aaas",
            json!({"baseUrl": aaas.base_url(), "allowedHosts": [aaas.authority()],
                   "secrets": {"apiToken": AAAS_TOKEN}}),
        ),
        (
            Method::PUT,
            "/v1/admin/job-definitions/AaasCancel",
            json!({"jobType": "Execution", "connection": "aaas", "integrationProcessor": "aaas",
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
                   "tracking": {"channel": "online", "session": "123|abc", "cuid": "09|Z0"},
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
    let job_of = |definition: &str| {
        cancelled["erpSync"]["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .find(|j| j["definition"] == definition)
            .and_then(|j| j["id"].as_str())
            .unwrap_or_else(|| panic!("no {definition} job: {cancelled}"))
            .to_owned()
    };
    let jobs = (job_of("OrderCancel"), job_of("AaasCancel"));
    let deadline = Instant::now() + CEILING;
    for (job, attempts) in [(&jobs.0, 2), (&jobs.1, 1)] {
        loop {
            let answer = call(
                &client,
                Method::GET,
                format!("{base}/v1/admin/jobs/{job}"),
                Value::Null,
            )
            .await;
            if answer["state"] == "succeeded" {
                assert_eq!(answer["attempts"], attempts, "{answer}");
                break;
            }
            assert_ne!(answer["state"], "failed", "{answer}");
            assert!(Instant::now() < deadline, "the job never settled: {answer}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_replayed_with_the_same_build_is_identical_and_with_another_shows_the_difference() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    erp.script([
        Scripted::json(503, r#"{"message":"maintenance"}"#),
        Scripted::json(201, r#"{"id":"ERP-7"}"#),
    ]);
    let aaas = AaasFake::start(AaasAuth::Bearer(AAAS_TOKEN.to_owned())).await;
    aaas.add_order("B1", "C-1", "ERP-1001", &[1]);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let host = start_host(dir.path());
    let base = host.base.clone();
    let (job, aaas_job) = deliver(&base, &erp, &aaas).await;

    // What the attempt handed its plugin: the cancellation in the WIT's
    // shape, the settings, the secrets by name only.
    let client = reqwest::Client::new();
    let input = call(
        &client,
        Method::GET,
        format!("{base}/v1/admin/jobs/{job}/attempts/2/input"),
        Value::Null,
    )
    .await;
    assert_eq!(input["cancellation"]["attempt"], 2, "{input}");
    assert_eq!(input["cancellation"]["order-number"], "SO-1", "{input}");
    assert_eq!(input["connection"]["settings"]["note"], "replayed");
    assert_eq!(input["connection"]["secrets"], json!(["signingKey"]));
    assert!(!input.to_string().contains(SIGNING_KEY), "{input}");
    let missing = client
        .get(format!("{base}/v1/admin/jobs/{job}/attempts/9/input"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("the host answers");
    assert_eq!(missing.status(), 404);
    let problem: Value = missing.json().await.expect("a problem");
    assert_eq!(problem["code"], "attempt-not-found", "{problem}");

    let webhook = rescind_test_artifacts::WEBHOOK;
    let replay = |file: &str, extra: &[&str]| {
        let mut arguments = vec![
            "plugin", "test", file, "--replay", &job, "--host", &base, "--token", ADMIN,
        ];
        arguments.extend_from_slice(extra);
        let owned: Vec<String> = arguments.iter().map(|a| (*a).to_owned()).collect();
        owned
    };
    let run = |arguments: Vec<String>| {
        let refs: Vec<&str> = arguments.iter().map(String::as_str).collect();
        rescind(&refs)
    };

    // (a) The same build, the secret given locally: the same request.
    let secret = format!("signingKey={SIGNING_KEY}");
    let same = run(replay(webhook, &["--secret", &secret]));
    let shown = stdout_of(&same);
    assert_eq!(same.status.code(), Some(0), "{shown}");
    for expected in [
        format!(
            "replaying attempt 2 of job {job} (OrderCancel for order SO-1): recorded outcome accepted"
        ),
        "connection \"erp\": settings note\n".to_owned(),
        "answering as the ERP did (1 recorded answer)".to_owned(),
        "outcome: accepted (ERP reference ERP-7)".to_owned(),
        "request 1: POST /hooks: identical\n".to_owned(),
        "identical: the new build sent the same 1 request as the recorded attempt".to_owned(),
    ] {
        assert!(shown.contains(&expected), "{expected:?} not in:\n{shown}");
    }
    assert!(!shown.contains("secrets the host keeps"), "{shown}");

    // An earlier attempt by its number: the first one, which the ERP
    // answered 503, is answered 503 again and sent the same request.
    let first = run(replay(webhook, &["--secret", &secret, "--attempt", "1"]));
    let shown = stdout_of(&first);
    assert_eq!(first.status.code(), Some(0), "{shown}");
    for expected in [
        format!("replaying attempt 1 of job {job} (OrderCancel for order SO-1)"),
        "request 1: POST /hooks: identical
"
        .to_owned(),
    ] {
        assert!(shown.contains(&expected), "{expected:?} not in:\n{shown}");
    }
    assert!(shown.contains("503"), "{shown}");
    let none = run(replay(webhook, &["--attempt", "9"]));
    let shown = stdout_of(&none);
    assert_eq!(none.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains(&format!("job {job} has no attempt 9 (it has 2 attempt(s))")),
        "{shown}"
    );

    // (b) A changed build: the webhook sending to another path, signed
    // with another key: each difference named, exit status 1.
    let changed = run(replay(
        webhook,
        &[
            "--secret",
            "signingKey=another-key",
            "--setting",
            "path=/v2",
        ],
    ));
    let shown = stdout_of(&changed);
    assert_eq!(changed.status.code(), Some(1), "{shown}");
    for expected in [
        "request 1: POST /hooks: differs\n",
        "    URL path: recorded /hooks, new build /hooks/v2\n",
        "    header x-rescind-signature: recorded \"sha256=",
        "differs: 1 of 1 request differs from the recorded attempt",
    ] {
        assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
    }
    assert!(!shown.contains("header idempotency-key"), "{shown}");
    assert!(!shown.contains("body"), "the body is the same:\n{shown}");

    // Another plugin altogether: another path, a form instead of the JSON
    // document (shown pretty in the diff), other headers.
    let other = run(replay(
        rescind_test_artifacts::PERSONALIZATION,
        &["--setting", "siteName=shop"],
    ));
    let shown = stdout_of(&other);
    assert_eq!(other.status.code(), Some(1), "{shown}");
    for expected in [
        "request 1: POST /hooks: differs\n",
        "    URL path: recorded /hooks, new build /hooks/tracker/api/v1_4/shop/order/cancel.pagex\n",
        "    body:\n      --- recorded\n      +++ new build\n      @@ ",
        "      -  \"orderNumber\": \"SO-1\",\n",
        "      +session=123%7Cabc&cuid=09%7CZ0&orderNo=SO-1\n",
        "    header content-type: recorded \"application/json\", new build \"application/x-www-form-urlencoded\"\n",
        "    header x-rescind-attempt: sent by the recorded attempt only: \"2\"\n",
        "differs: 1 of 1 request differs from the recorded attempt",
    ] {
        assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
    }

    // A build that sends nothing at all, without the secret.
    let silent = run(replay(rescind_test_artifacts::TRIVIAL, &[]));
    let shown = stdout_of(&silent);
    assert_eq!(silent.status.code(), Some(1), "{shown}");
    for expected in [
        "secrets the host keeps and were not given with --secret NAME=VALUE (the plugin runs without them): signingKey",
        "request 1: POST /hooks: sent by the recorded attempt only\n",
        "differs: 1 of 1 request differs from the recorded attempt",
    ] {
        assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
    }
    assert!(!shown.contains(SIGNING_KEY), "{shown}");

    // The aaas job: its bearer token was recorded as `[redacted]`; the
    // same build with a local token sends the same request, the header
    // skipped, not compared.
    let same = run(vec![
        "plugin".into(),
        "test".into(),
        rescind_test_artifacts::AAAS.into(),
        "--replay".into(),
        aaas_job.clone(),
        "--host".into(),
        base.clone(),
        "--token".into(),
        ADMIN.into(),
        "--secret".into(),
        "apiToken=a-local-token".into(),
    ]);
    let shown = stdout_of(&same);
    assert_eq!(same.status.code(), Some(0), "{shown}");
    for expected in [
        "request 1: POST /api/v1/businesses/B1/customers/C-1/orders/ERP-1001/cancellations: identical\n",
        "    skipped: header authorization (redacted in the record)\n",
        "identical: the new build sent the same 1 request as the recorded attempt; 1 recorded \
         value redacted or cut, skipped (not counted as differences)",
    ] {
        assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
    }
    assert!(!shown.contains(AAAS_TOKEN), "{shown}");
    assert!(!shown.contains("a-local-token"), "{shown}");

    // A job the host does not have: the host's reason, exit status 2.
    let unknown = rescind(&[
        "plugin",
        "test",
        webhook,
        "--replay",
        "no-such-job",
        "--host",
        &base,
        "--token",
        ADMIN,
    ]);
    let shown = stdout_of(&unknown);
    assert_eq!(unknown.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("HTTP 404 Not Found (job-not-found): no job with id no-such-job"),
        "{shown}"
    );
    assert!(!shown.contains("acktrace"), "{shown}");
}

#[test]
fn a_trapping_plugin_names_its_functions() {
    let run = rescind(&[
        "plugin",
        "test",
        rescind_test_artifacts::PANICKER,
        "--expect",
        "transient",
    ]);
    let shown = stdout_of(&run);
    // A trap is not one of the four answers a plugin gives.
    assert_eq!(run.status.code(), Some(1), "{shown}");
    let outcome = shown
        .split("outcome: plugin trapped: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no trapped outcome in:\n{shown}"));
    assert!(outcome.starts_with("plugin panicked at "), "{outcome}");
    assert!(outcome.contains("guest backtrace:\n"), "{outcome}");
    assert!(outcome.contains("submit_cancellation"), "{outcome}");
    let frames = outcome
        .lines()
        .skip_while(|l| !l.starts_with("guest backtrace:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .count();
    assert!((1..=21).contains(&frames), "{frames}: {outcome}");
}
