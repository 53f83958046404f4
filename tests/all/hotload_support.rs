//! What the hot-loading tests of the running service share: uploads over
//! HTTP, a job definition bound to an uploaded plugin, cancellations that
//! make jobs, and waiting for jobs to settle.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rescind_tests::erp_server::{ErpServer, Scripted};
use serde_json::{Value, json};

use crate::service::{ADMIN, Answer, TestService, sample_order, webhook_connection};

/// The plugin name the tests upload under.
pub const PLUGIN: &str = "erp-plugin";

/// The webhook signing key of [`configure`]'s connection, which
/// [`echoing_erp`] checks.
pub const SIGNING_KEY: &str = "hot-load-test-key";

/// A loopback ERP that accepts every webhook delivery signed with
/// [`SIGNING_KEY`] (401 otherwise) and answers its `Idempotency-Key` as the
/// reference: a job's reference then says that the ERP received that very
/// request.
pub async fn echoing_erp() -> ErpServer {
    ErpServer::signed_with(SIGNING_KEY, |request| {
        let key = request.header("idempotency-key").unwrap_or_default();
        Scripted::json(201, &json!({ "id": key }).to_string())
    })
    .await
}

/// Uploads `bytes` as plugin `name` (`?activate=false` unless `activate`).
pub async fn upload(service: &TestService, name: &str, bytes: Vec<u8>, activate: bool) -> Answer {
    upload_with(service, name, bytes, activate, &[]).await
}

/// Uploads with extra headers (a signature).
pub async fn upload_with(
    service: &TestService,
    name: &str,
    bytes: Vec<u8>,
    activate: bool,
    headers: &[(&str, &str)],
) -> Answer {
    let query = if activate { "" } else { "?activate=false" };
    let mut request = service
        .client
        .put(format!("{}/v1/admin/plugins/{name}{query}", service.base))
        .bearer_auth(ADMIN)
        .header("content-type", "application/wasm")
        .body(bytes);
    for (header, value) in headers {
        request = request.header(*header, *value);
    }
    let response = request.send().await.expect("upload sent");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body");
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
}

/// Activates `version` of `name`, optionally guarded.
pub async fn activate(
    service: &TestService,
    name: &str,
    version: &str,
    guard: Option<Value>,
) -> Answer {
    let mut body = json!({ "version": version });
    if let Some(guard) = guard {
        body["guard"] = guard;
    }
    service
        .call(
            Method::POST,
            &format!("/v1/admin/plugins/{name}/activate"),
            Some(ADMIN),
            Some(&body),
        )
        .await
}

/// `GET /v1/admin/plugins/{name}`.
pub async fn plugin(service: &TestService, name: &str) -> Answer {
    service
        .call(
            Method::GET,
            &format!("/v1/admin/plugins/{name}"),
            Some(ADMIN),
            None,
        )
        .await
}

/// The insite preset, connection `erp` to `erp`, and an `OrderCancel`
/// definition running `processor`, retrying after 10–20 ms.
pub async fn configure(service: &TestService, erp: &ErpServer, processor: &str, attempts: u32) {
    configure_with_key(service, erp, processor, attempts, SIGNING_KEY).await;
}

/// [`configure`], with the webhook's signing key.
pub async fn configure_with_key(
    service: &TestService,
    erp: &ErpServer,
    processor: &str,
    attempts: u32,
    signing_key: &str,
) {
    service.configure_insite().await;
    service
        .configure_erp_job(
            &webhook_connection(&erp.url(""), &erp.authority(), signing_key),
            processor,
            json!({"maxAttempts": attempts, "initialBackoffMs": 10, "maxBackoffMs": 20}),
        )
        .await;
}

/// Stores order `number` and cancels it; answers its job's id.
pub async fn cancel_new_order(service: &TestService, number: &str) -> String {
    service.put_order(number, &sample_order("C-1")).await;
    let a = service
        .cancel(number, &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body["erpSync"]["jobs"][0]["id"]
        .as_str()
        .expect("a job")
        .to_owned()
}

/// The job with its attempts.
pub async fn job(service: &TestService, id: &str) -> Value {
    let a = service
        .call(
            Method::GET,
            &format!("/v1/admin/jobs/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body
}

/// Polls until the job succeeded or failed (bounded: 60 s).
pub async fn settled_job(service: &TestService, id: &str) -> Value {
    for _ in 0..1200 {
        let job = job(service, id).await;
        if ["succeeded", "failed"].contains(&job["state"].as_str().unwrap_or("")) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not settle within 60 s");
}

/// The plugin version of the job's last attempt.
pub fn last_version(job: &Value) -> String {
    job["attemptHistory"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|a| a["pluginVersion"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The value of a Prometheus sample line starting with `prefix`.
pub async fn metric(service: &TestService, prefix: &str) -> Option<f64> {
    let text = service.metrics_text().await;
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
