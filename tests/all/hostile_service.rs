//! The hostile-plugin matrix through the running service: an attacking
//! plugin runs as a job, and while it runs `/healthz` answers, a normal
//! cancellation commits, and another job delivered beside it succeeds. The
//! attack's job ends with a clear outcome and message, the process's
//! resident memory stays under [`RSS_BOUND_BYTES`], and what a plugin
//! returns reaches the API bounded and with the connection's secrets
//! redacted.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rescind_host::plugins::{CallLimits, MAX_RETURNED_TEXT_BYTES};
use rescind_tests::raw_erp::{RawAnswer, RawErp};
use rescind_tests::rss::{RSS_BOUND_BYTES, RssSampler};
use serde_json::{Value, json};

use crate::hotload_support::{job, settled_job, upload};
use crate::service::{ADMIN, TestService, sample_order};

const TOKEN: &str = "tok-service-9a8b7c6d5e";

/// A service with two workers and plugin calls bounded by `limits`.
async fn service_with(limits: CallLimits) -> TestService {
    TestService::start_configured(true, move |config| config.plugins.limits = limits).await
}

/// Uploads `component` as plugin `name` and defines job `definition`
/// running it on a connection of its own with `settings`: disabled, so that
/// it runs only when asked (a manual run), one attempt.
async fn define(
    service: &TestService,
    definition: &str,
    name: &str,
    component: &str,
    settings: Value,
) {
    define_with_attempts(service, definition, name, component, settings, 1, TOKEN).await;
}

/// [`define`] with `attempts` attempts per job, 10–20 ms apart, and the
/// connection's secret `apiToken`.
async fn define_with_attempts(
    service: &TestService,
    definition: &str,
    name: &str,
    component: &str,
    settings: Value,
    attempts: u32,
    secret: &str,
) {
    let bytes = std::fs::read(component).expect("the component");
    let a = upload(service, name, bytes, true).await;
    assert!(a.status.is_success(), "{}", a.body);
    put_job(
        service,
        definition,
        name,
        json!({"baseUrl": "http://127.0.0.1:9", "allowedHosts": ["127.0.0.1:9"],
               "settings": settings, "secrets": {"apiToken": secret}}),
        attempts,
    )
    .await;
}

/// Puts connection `{definition}-erp` as `connection` and job `definition`
/// running plugin `name` on it: disabled, so that it runs only when asked (a
/// manual run), `attempts` attempts per job, 10–20 ms apart.
async fn put_job(
    service: &TestService,
    definition: &str,
    name: &str,
    connection: Value,
    attempts: u32,
) {
    let connection_name = format!("{definition}-erp");
    let a = service
        .call(
            Method::PUT,
            &format!("/v1/admin/connections/{connection_name}"),
            Some(ADMIN),
            Some(&connection),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = service
        .call(
            Method::PUT,
            &format!("/v1/admin/job-definitions/{definition}"),
            Some(ADMIN),
            Some(&json!({"jobType": "Execution", "connection": connection_name,
                         "integrationProcessor": name,
                         "parameters": [{"name": "OrderNumber", "valueType": "String", "defaultValue": "", "prompt": "Order Number"}],
                         "retry": {"maxAttempts": attempts, "initialBackoffMs": 10, "maxBackoffMs": 20},
                         "enabled": false})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

/// Stores order `number`, cancels it (committed at once: every definition
/// is disabled) and answers the cancellation's id.
async fn cancelled_order(service: &TestService, number: &str) -> String {
    service.put_order(number, &sample_order("C-1")).await;
    let a = service
        .cancel(number, &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body["internalRequestId"]
        .as_str()
        .expect("an id")
        .to_owned()
}

/// Runs `definition` for order `number` by hand; answers the job's id.
async fn run(service: &TestService, definition: &str, number: &str) -> String {
    let a = service
        .call(
            Method::POST,
            &format!("/v1/admin/job-definitions/{definition}/runs"),
            Some(ADMIN),
            Some(&json!({"parameters": {"OrderNumber": number}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body["id"].as_str().expect("a job id").to_owned()
}

/// Polls until job `id` made its first attempt (bounded: 60 s).
async fn wait_for_first_attempt(service: &TestService, id: &str) {
    for _ in 0..1200 {
        if job(service, id).await["attempts"].as_u64() >= Some(1) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} made no attempt within 60 s");
}

/// What must hold while an attack runs: `/healthz` answers, a normal
/// cancellation commits, and a job of the harmless `Deliver` definition
/// succeeds.
async fn service_keeps_serving(service: &TestService, order: &str) {
    let health = service.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.body);
    cancelled_order(service, order).await;
    let delivered = settled_job(service, &run(service, "Deliver", order).await).await;
    assert_eq!(delivered["state"], "succeeded", "{delivered}");
    assert_eq!(delivered["erpReference"], "harmless", "{delivered}");
}

/// Sets up the attack (a job of `attempts` attempts) and the harmless
/// `Deliver` definition, starts the attack, checks the service serves while
/// it runs, and answers the attack's settled job.
async fn attack_through_a_job(
    limits: CallLimits,
    name: &str,
    component: &str,
    attempts: u32,
    still_running_after: bool,
) -> Value {
    let service = service_with(limits).await;
    service.configure_insite().await;
    define_with_attempts(
        &service,
        "Attack",
        name,
        component,
        json!({}),
        attempts,
        TOKEN,
    )
    .await;
    watch_the_attack(&service, name, || async { still_running_after }).await
}

/// Defines the harmless `Deliver` definition beside an `Attack` definition
/// already in place, runs `Attack` for a cancelled order, checks the service
/// serves while it runs (and, when `still_running` answers true once that
/// check is over, that the attack's job is still running then), checks the
/// process's resident memory stayed under the bound, and answers the
/// attack's settled job.
async fn watch_the_attack<F, Fut>(service: &TestService, name: &str, still_running: F) -> Value
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    define(
        service,
        "Deliver",
        "hostile",
        rescind_test_artifacts::HOSTILE,
        json!({}),
    )
    .await;
    cancelled_order(service, "SO-A").await;

    let sampler = RssSampler::start();
    let attack = run(service, "Attack", "SO-A").await;
    wait_for_first_attempt(service, &attack).await;
    service_keeps_serving(service, "SO-B").await;
    if still_running().await {
        // All of that happened during the attack, not after it.
        assert_eq!(job(service, &attack).await["state"], "running");
    }
    let settled = settled_job(service, &attack).await;
    let highest = sampler.stop();
    // Shown with `--nocapture`: the figures of SECURITY.md.
    println!(
        "{name} as a job: highest resident memory {} MiB",
        highest / (1024 * 1024)
    );
    assert!(
        highest < RSS_BOUND_BYTES,
        "resident memory reached {highest} bytes during the attack"
    );
    // And after it, too.
    service_keeps_serving(service, "SO-C").await;
    settled
}

/// Defines `Attack` as the bundled webhook plugin delivering to `erp` (a
/// loopback ERP listed by its address), `attempts` attempts per job.
async fn define_webhook_attack(service: &TestService, erp: &RawErp, attempts: u32) {
    let base = format!("http://{}", erp.authority());
    put_job(
        service,
        "Attack",
        "webhook",
        json!({"baseUrl": base, "allowedHosts": [base],
               "settings": {"path": "/cancel"}, "secrets": {"signingKey": TOKEN}}),
        attempts,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_as_a_job_ends_at_its_deadline_while_the_service_serves() {
    let limits = CallLimits {
        deadline: Duration::from_secs(10),
        ..CallLimits::default()
    };
    let settled =
        attack_through_a_job(limits, "looper", rescind_test_artifacts::LOOPER, 1, true).await;

    assert_eq!(settled["state"], "failed", "{settled}");
    assert_eq!(
        settled["lastError"],
        "deadline-exceeded: the plugin ran past its deadline of 10s"
    );
    assert_eq!(settled["attemptHistory"][0]["outcome"], "deadline-exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_growth_as_a_job_ends_at_the_memory_cap_while_the_service_serves() {
    // Each attempt is over in a blink: twenty of them in a row keep the
    // attack going while the service is checked.
    let settled = attack_through_a_job(
        CallLimits::default(),
        "alloc-bomb",
        rescind_test_artifacts::ALLOC_BOMB,
        20,
        false,
    )
    .await;

    assert_eq!(settled["state"], "failed", "{settled}");
    let attempts = settled["attemptHistory"].as_array().unwrap();
    assert_eq!(attempts.len(), 20, "{settled}");
    assert!(
        attempts
            .iter()
            .all(|a| a["outcome"] == "memory-cap-exceeded"),
        "{settled}"
    );
    assert_eq!(
        settled["lastError"],
        "memory-cap-exceeded: the plugin tried to use more than its memory cap of 67108864 bytes"
    );
    assert_eq!(
        settled["attemptHistory"][0]["outcome"],
        "memory-cap-exceeded"
    );
}

/// Everything the API shows about a cancellation and its job, as text.
async fn shown(service: &TestService, cancellation: &str, job_id: &str) -> String {
    let view = service.cancellation(cancellation).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    let jobs = service
        .call(Method::GET, "/v1/admin/jobs", Some(ADMIN), None)
        .await;
    format!(
        "{}\n{}\n{}",
        view.body,
        job(service, job_id).await,
        jobs.body
    )
}

#[tokio::test]
async fn a_secret_in_what_a_plugin_returns_is_never_shown() {
    let service = service_with(CallLimits::default()).await;
    service.configure_insite().await;
    for (definition, reply) in [("Accepts", "accepted"), ("Rejects", "rejected")] {
        define(
            &service,
            definition,
            "hostile",
            rescind_test_artifacts::HOSTILE,
            json!({"attack": "echo-secret", "reply": reply}),
        )
        .await;
    }
    let cancellation = cancelled_order(&service, "SO-S").await;

    let accepted = settled_job(&service, &run(&service, "Accepts", "SO-S").await).await;
    assert_eq!(accepted["state"], "succeeded", "{accepted}");
    assert_eq!(accepted["erpReference"], "ref-[redacted]");
    let rejected = settled_job(&service, &run(&service, "Rejects", "SO-S").await).await;
    assert_eq!(rejected["state"], "failed", "{rejected}");
    assert_eq!(
        rejected["lastError"],
        "rejected: the ERP answered 401 for token [redacted]"
    );

    for job_id in [&accepted["id"], &rejected["id"]] {
        let text = shown(&service, &cancellation, job_id.as_str().unwrap()).await;
        assert!(!text.contains(TOKEN), "{text}");
    }
}

/// A secret whose encoded forms all differ from it and from each other.
const ENCODED_SECRET: &str = "p@ss w/rd\"Zq9-forms";

/// Every form the `hostile` guest can echo [`ENCODED_SECRET`] in, as it
/// would appear in text, and the setting that asks for it.
fn encoded_forms() -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let percent = |plus: bool| {
        let mut out = String::new();
        for &b in ENCODED_SECRET.as_bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    out.push(char::from(b))
                }
                b' ' if plus => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    let json = serde_json::to_string(ENCODED_SECRET).unwrap();
    vec![
        ("plain", ENCODED_SECRET.to_owned()),
        ("base64", STANDARD.encode(ENCODED_SECRET)),
        ("base64url", URL_SAFE_NO_PAD.encode(ENCODED_SECRET)),
        (
            "basic",
            STANDARD.encode(format!("svc-user:{ENCODED_SECRET}")),
        ),
        ("url", percent(false)),
        ("form", percent(true)),
        ("json", json.trim_matches('"').to_owned()),
    ]
}

#[tokio::test]
async fn a_secret_echoed_in_any_encoding_is_never_shown() {
    let service = service_with(CallLimits::default()).await;
    service.configure_insite().await;
    let cancellation = cancelled_order(&service, "SO-E").await;
    let forms = encoded_forms();
    for (form, encoded) in &forms {
        let definition = format!("Echo-{form}");
        define_with_attempts(
            &service,
            &definition,
            "hostile",
            rescind_test_artifacts::HOSTILE,
            json!({"attack": "echo-secret", "reply": "rejected", "form": form, "log": "all"}),
            1,
            ENCODED_SECRET,
        )
        .await;
        let settled = settled_job(&service, &run(&service, &definition, "SO-E").await).await;
        assert_eq!(settled["state"], "failed", "{settled}");
        let error = settled["lastError"].as_str().unwrap();
        assert!(
            error.starts_with("rejected: the ERP answered 401 for token ")
                && error.contains("[redacted]"),
            "{form}: {error}"
        );
        // The log has a line per form, each redacted.
        let log = settled["attemptHistory"][0]["log"].as_array().unwrap();
        assert_eq!(log.len(), forms.len(), "{settled}");
        for line in log {
            let message = line["message"].as_str().unwrap();
            assert!(message.contains("[redacted]"), "{form}: {message}");
        }
        let text = shown(&service, &cancellation, settled["id"].as_str().unwrap()).await;
        for (other, encoded) in &forms {
            assert!(
                !text.contains(encoded.as_str()),
                "{form}: {other} form shown"
            );
        }
        assert!(!text.contains(encoded.as_str()));
    }
}

#[tokio::test]
async fn a_five_megabyte_answer_is_shown_as_four_kibibytes() {
    let service = service_with(CallLimits::default()).await;
    service.configure_insite().await;
    define(
        &service,
        "Big",
        "hostile",
        rescind_test_artifacts::HOSTILE,
        json!({"attack": "big-reply"}),
    )
    .await;
    let cancellation = cancelled_order(&service, "SO-L").await;

    let settled = settled_job(&service, &run(&service, "Big", "SO-L").await).await;

    assert_eq!(settled["state"], "succeeded", "{settled}");
    let reference = settled["erpReference"].as_str().unwrap();
    assert!(
        reference.len() <= MAX_RETURNED_TEXT_BYTES,
        "{}",
        reference.len()
    );
    assert!(reference.ends_with("… [cut: 5000000 bytes returned, 4096 kept]"));
    let message = settled["attemptHistory"][0]["message"].as_str().unwrap();
    assert!(
        message.len() <= MAX_RETURNED_TEXT_BYTES,
        "{}",
        message.len()
    );
    // The whole admin view of the job stays small.
    let text = shown(&service, &cancellation, settled["id"].as_str().unwrap()).await;
    assert!(text.len() < 64 * 1024, "{} bytes shown", text.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_erp_answer_as_a_job_is_cut_at_the_body_limit_while_the_service_serves() {
    const GIB: u64 = 1024 * 1024 * 1024;
    let limit = CallLimits::default().response_body_bytes;
    // The ERP answers with a gibibyte in 64 KiB writes 50 ms apart: the
    // host reaches the 8 MiB limit after about six seconds, long enough
    // for the service to be checked while the body streams in.
    let erp = RawErp::start(RawAnswer::body(GIB, 64 * 1024, Duration::from_millis(50))).await;
    let service = service_with(CallLimits::default()).await;
    service.configure_insite().await;
    define_webhook_attack(&service, &erp, 3).await;

    let settled = watch_the_attack(&service, "a 1 GiB ERP answer", || async {
        assert_eq!(erp.hangups(), 0, "the body was cut before the check ended");
        true
    })
    .await;

    assert_eq!(settled["state"], "failed", "{settled}");
    let attempts = settled["attemptHistory"].as_array().unwrap();
    assert_eq!(
        attempts.len(),
        1,
        "a host limit is a rejection, not retried: {settled}"
    );
    assert_eq!(
        settled["lastError"],
        format!(
            "rejected: the answer's body exceeds the host's limit of response body bytes per call \
             (request to `{}`): retrying would not change it",
            erp.authority()
        )
    );
    assert!(
        attempts[0]["log"].to_string().contains(&format!(
            "a call may read at most {limit} bytes of response bodies (limit: response body bytes)"
        )),
        "the attempt's log names the limit: {settled}"
    );
    // The host hung up once the limit was crossed: the ERP wrote the limit
    // plus what the socket buffers hold, never the gibibyte.
    assert_eq!(erp.connections(), 1);
    assert!(
        erp.written() < limit + 32 * 1024 * 1024,
        "the ERP wrote {} bytes",
        erp.written()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_erp_as_a_job_ends_at_the_deadline_while_the_service_serves() {
    // One byte every 100 ms: never long enough between bytes to time out,
    // but the megabyte it announces would take a day.
    let erp = RawErp::start(RawAnswer::body(1024 * 1024, 1, Duration::from_millis(100))).await;
    let deadline = Duration::from_secs(10);
    let service = service_with(CallLimits {
        deadline,
        ..CallLimits::default()
    })
    .await;
    service.configure_insite().await;
    define_webhook_attack(&service, &erp, 1).await;

    // The ERP has not hung up while the service was checked: the attack
    // was going on all along.
    let settled = watch_the_attack(&service, "a trickling ERP", || async {
        assert_eq!(erp.hangups(), 0, "the trickle ended before the check");
        true
    })
    .await;

    assert_eq!(settled["state"], "failed", "{settled}");
    assert_eq!(
        settled["lastError"],
        "deadline-exceeded: the plugin ran past its deadline of 10s"
    );
    assert_eq!(settled["attemptHistory"][0]["outcome"], "deadline-exceeded");
    // The host hung up on the ERP at the deadline.
    for _ in 0..600 {
        if erp.hangups() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the ERP saw no hang-up within 30 s of the deadline");
}
