//! An ERP outage longer than a few backoff periods: first the ERP refuses
//! connections, then it answers 503, then it recovers. Jobs keep retrying
//! with capped delays and none is dropped; each is applied once after the
//! recovery. A definition whose jobs ran out of attempts during the outage
//! shows them as failed, and a retry by hand delivers them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rescind_tests::erp_server::{ErpServer, Scripted};
use rescind_tests::fakes::ClosedPort;
use serde_json::{Value, json};

use crate::service::{ADMIN, TestService, sample_order};

const SIGNING_KEY: &str = "outage-signing-key";
const ORDERS: usize = 4;
/// The patient definition's backoff cap.
const MAX_BACKOFF_MS: i64 = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_an_erp_outage_and_are_applied_once_after_it() {
    let down = ClosedPort::bind();
    let authority = down.authority().to_owned();
    let service = TestService::start().await;
    service.configure_insite().await;
    service
        .configure_erp_job(
            &json!({"baseUrl": format!("http://{authority}"), "allowedHosts": [authority],
                    "settings": {"path": "/hooks/cancel"},
                    "secrets": {"signingKey": SIGNING_KEY}}),
            "webhook",
            json!({"maxAttempts": 100, "initialBackoffMs": 20, "maxBackoffMs": MAX_BACKOFF_MS}),
        )
        .await;
    // A second definition on the same ERP that gives up after three tries.
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/job-definitions/Impatient",
            Some(ADMIN),
            Some(&json!({"jobType": "Execution", "connection": "erp",
                         "integrationProcessor": "webhook",
                         "retry": {"maxAttempts": 3, "initialBackoffMs": 10, "maxBackoffMs": 20},
                         "enabled": true})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    let mut patient = Vec::new();
    let mut impatient = Vec::new();
    for n in 0..ORDERS {
        let number = format!("OUT-{n}");
        service.put_order(&number, &sample_order("C-1")).await;
        let a = service
            .cancel(&number, &json!({"cancellationReason": "OUT_OF_STOCK"}))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        for job in a.body["erpSync"]["jobs"].as_array().unwrap() {
            let id = job["id"].as_str().unwrap().to_owned();
            match job["definition"].as_str() {
                Some("OrderCancel") => patient.push(id),
                Some("Impatient") => impatient.push(id),
                other => panic!("unexpected definition {other:?}"),
            }
        }
    }
    assert_eq!((patient.len(), impatient.len()), (ORDERS, ORDERS));

    // Refused connections: the patient jobs retry, each delay capped; the
    // impatient ones run out of attempts and fail, visibly.
    for id in &patient {
        wait_for_job(&service, id, "two refused attempts", |job| {
            outcomes(job).iter().filter(|o| *o == "transient").count() >= 2
        })
        .await;
    }
    for id in &impatient {
        let job = wait_for_job(&service, id, "failed", |job| job["state"] == "failed").await;
        assert_eq!(job["attempts"], 3, "{job}");
    }
    let failed = service
        .call(
            Method::GET,
            "/v1/admin/jobs?state=failed",
            Some(ADMIN),
            None,
        )
        .await;
    let failed: BTreeSet<&str> = failed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, impatient.iter().map(String::as_str).collect());

    // The ERP is up again but answers 503 for a while.
    let recovered = Arc::new(AtomicBool::new(false));
    let applied = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let erp = {
        let (recovered, applied) = (Arc::clone(&recovered), Arc::clone(&applied));
        ErpServer::start_on(down.listen(), move |request| {
            if !recovered.load(Ordering::SeqCst) {
                return Scripted::json(503, r#"{"error":"maintenance"}"#);
            }
            let key = request.header("idempotency-key").unwrap_or_default();
            *applied.lock().unwrap().entry(key.to_owned()).or_default() += 1;
            Scripted::json(201, &json!({ "id": key }).to_string())
        })
    };
    for id in &patient {
        wait_for_job(&service, id, "an attempt answered 503", |job| {
            attempts(job)
                .iter()
                .any(|a| a["message"].as_str().is_some_and(|m| m.contains("503")))
        })
        .await;
    }
    // Throughout, a retrying job waits no longer than the cap.
    for id in &patient {
        let job = job(&service, id).await;
        if job["state"] == "retrying" {
            let next = timestamp_ms(&job["nextRunAt"]);
            let last = timestamp_ms(&job["updatedAt"]);
            assert!(next - last <= MAX_BACKOFF_MS, "{job}");
        }
    }

    // Recovery: every patient job is delivered and applied exactly once.
    recovered.store(true, Ordering::SeqCst);
    let mut request_ids = BTreeSet::new();
    for id in &patient {
        let job = wait_for_job(&service, id, "succeeded", |job| job["state"] == "succeeded").await;
        assert_eq!(job["erpReference"], job["requestId"], "{job}");
        request_ids.insert(job["requestId"].as_str().unwrap().to_owned());
    }
    // A failed job is retried by hand and delivered too.
    for id in &impatient {
        let a = service
            .call(
                Method::POST,
                &format!("/v1/admin/jobs/{id}/retry"),
                Some(ADMIN),
                None,
            )
            .await;
        assert!(a.status.is_success(), "{}", a.body);
        let job = wait_for_job(&service, id, "succeeded", |job| job["state"] == "succeeded").await;
        request_ids.insert(job["requestId"].as_str().unwrap().to_owned());
    }
    let applied = applied.lock().unwrap().clone();
    assert_eq!(applied.len(), 2 * ORDERS, "{applied:?}");
    assert!(applied.values().all(|n| *n == 1), "{applied:?}");
    assert_eq!(
        applied.keys().cloned().collect::<BTreeSet<_>>(),
        request_ids
    );
    drop(erp);
}

async fn job(service: &TestService, id: &str) -> Value {
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

/// Polls the job until `done` holds (bounded: 60 s).
async fn wait_for_job(
    service: &TestService,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..1200 {
        let job = job(service, id).await;
        if done(&job) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} never reached: {what}");
}

fn attempts(job: &Value) -> Vec<Value> {
    job["attemptHistory"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn outcomes(job: &Value) -> Vec<String> {
    attempts(job)
        .iter()
        .filter_map(|a| a["outcome"].as_str().map(str::to_owned))
        .collect()
}

/// Milliseconds since the epoch of an RFC 3339 timestamp.
fn timestamp_ms(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a timestamp: {value}"));
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    (parsed.unix_timestamp_nanos() / 1_000_000) as i64
}
