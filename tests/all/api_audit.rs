//! The audit log: every admin write of the router's route table leaves one
//! entry saying who, when, what and under which request id, and never a
//! secret; reads and refused writes leave none; `GET /v1/admin/audit` pages
//! newest first.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use rescind_host::api::route_list;
use serde_json::{Value, json};

use crate::api_cancel::configure_job;
use crate::service::{ADMIN, Answer, TestService, webhook_connection};

const SECRET: &str = "audit-test-secret-value-7f3a";

async fn audit(service: &TestService, query: &str) -> Answer {
    let a = service
        .call(
            Method::GET,
            &format!("/v1/admin/audit{query}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a
}

/// The entry written for the request with this id.
async fn entry(service: &TestService, request_id: &str) -> Option<Value> {
    audit(service, "?limit=1000")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["requestId"] == request_id)
        .cloned()
}

/// Polls until the job failed (bounded: 60 s).
async fn failed(service: &TestService, job: &str) {
    let settled = crate::hotload_support::settled_job(service, job).await;
    assert_eq!(settled["state"], "failed", "{settled}");
}

/// An admin write: method, route template, path, body, caller's token, and
/// words its audit summary must have.
type Write<'a> = (Method, &'a str, String, Option<Value>, &'a str, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_write_is_in_the_audit_log_with_who_what_and_the_request_id() {
    let service = TestService::start().await;
    service.configure_insite().await;
    // An ERP that is not there: the job fails at once, so it can be retried.
    configure_job(
        &service,
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        json!({"maxAttempts": 1, "initialBackoffMs": 1, "maxBackoffMs": 1}),
    )
    .await;
    let staff_key = service
        .call(
            Method::POST,
            "/v1/admin/api-keys",
            Some(ADMIN),
            Some(&json!({"name": "cs tool", "role": "service"})),
        )
        .await
        .body;
    let staff = staff_key["token"].as_str().unwrap().to_owned();
    let staff_id = staff_key["id"].as_str().unwrap().to_owned();
    let job = crate::hotload_support::cancel_new_order(&service, "SO-1").await;
    failed(&service, &job).await;
    let doomed = service
        .call(
            Method::POST,
            "/v1/admin/api-keys",
            Some(ADMIN),
            Some(&json!({"name": "doomed", "role": "service"})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let webhook = std::fs::read(rescind_test_artifacts::WEBHOOK).unwrap();
    let webhook_version = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&webhook))
    );
    // An inactive version to shadow-run.
    let shadow = service
        .raw(
            Method::PUT,
            "/v1/admin/plugins/audited?activate=false",
            Some(ADMIN),
            "application/wasm",
            crate::registry_support::same_code_other_bytes(webhook.clone()),
        )
        .await;
    assert!(shadow.status.is_success(), "{}", shadow.body);
    let shadow_version = shadow.body["version"].as_str().unwrap().to_owned();

    let writes: Vec<Write<'_>> = vec![
        (
            Method::POST,
            "/v1/admin/api-keys",
            "/v1/admin/api-keys".into(),
            Some(json!({"name": "storefront", "role": "customer", "customerNumber": "C-1"})),
            ADMIN,
            "created key \"storefront\" (customer of customer C-1)",
        ),
        (
            Method::DELETE,
            "/v1/admin/api-keys/{id}",
            format!("/v1/admin/api-keys/{doomed}"),
            None,
            ADMIN,
            "revoked key \"doomed\" (service)",
        ),
        (
            Method::PUT,
            "/v1/admin/status-mappings",
            "/v1/admin/status-mappings".into(),
            Some(
                json!([{"erpCode": "Submitted", "status": "Submitted", "allowCancellation": true},
                     {"erpCode": "Cancelled", "status": "Cancelled", "allowCancellation": false}]),
            ),
            ADMIN,
            "Submitted → Submitted, cancellable",
        ),
        (
            Method::PUT,
            "/v1/admin/settings",
            "/v1/admin/settings".into(),
            Some(
                json!({"cancellableOrderStatuses": ["Submitted"], "cancelledStatus": "Cancelled"}),
            ),
            ADMIN,
            "cancelledStatus \"Cancelled\"",
        ),
        (
            Method::POST,
            "/v1/admin/presets/{preset}",
            "/v1/admin/presets/websphere".into(),
            None,
            ADMIN,
            "applied the preset \"websphere\"",
        ),
        (
            Method::PUT,
            "/v1/admin/websites/{website}",
            "/v1/admin/websites/outlet".into(),
            Some(json!({"allowCancellationRequest": false})),
            ADMIN,
            "website \"outlet\": allowCancellationRequest false",
        ),
        (
            Method::PUT,
            "/v1/admin/connections/{name}",
            "/v1/admin/connections/erp".into(),
            Some(webhook_connection(
                "http://127.0.0.1:9",
                "127.0.0.1:9",
                SECRET,
            )),
            ADMIN,
            "secrets replaced: [\"signingKey\"]",
        ),
        (
            Method::PUT,
            "/v1/admin/job-definitions/{name}",
            "/v1/admin/job-definitions/Second".into(),
            Some(
                json!({"jobType": "Execution", "connection": "erp", "integrationProcessor": "webhook", "enabled": false}),
            ),
            ADMIN,
            "job definition \"Second\": connection \"erp\", integrationProcessor \"webhook\", enabled false",
        ),
        (
            Method::POST,
            "/v1/admin/job-definitions/{name}/runs",
            "/v1/admin/job-definitions/OrderCancel/runs".into(),
            Some(json!({"parameters": {"OrderNumber": "SO-1"}})),
            &staff,
            "ran the job definition \"OrderCancel\" for order \"SO-1\"",
        ),
        (
            Method::POST,
            "/v1/admin/jobs/{id}/retry",
            format!("/v1/admin/jobs/{job}/retry"),
            None,
            &staff,
            "retried job",
        ),
        (
            Method::POST,
            "/v1/admin/jobs/prune",
            "/v1/admin/jobs/prune".into(),
            Some(json!({"olderThan": "3650d"})),
            ADMIN,
            "pruned 0 finished jobs older than 3650d (0 attempts)",
        ),
        (
            Method::PUT,
            "/v1/admin/plugins/{name}",
            "/v1/admin/plugins/audited".into(),
            None,
            ADMIN,
            "uploaded plugin \"audited\" version sha256:",
        ),
        (
            Method::POST,
            "/v1/admin/plugins/{name}/activate",
            "/v1/admin/plugins/audited/activate".into(),
            Some(json!({"version": webhook_version})),
            ADMIN,
            "activated plugin \"audited\" version sha256:",
        ),
        (
            Method::POST,
            "/v1/admin/plugins/{name}/shadow",
            "/v1/admin/plugins/audited/shadow".into(),
            Some(json!({"version": shadow_version, "jobs": 1})),
            ADMIN,
            "started a shadow run of plugin \"audited\" version sha256:",
        ),
        (
            Method::DELETE,
            "/v1/admin/plugins/{name}/shadow",
            "/v1/admin/plugins/audited/shadow".into(),
            None,
            ADMIN,
            "stopped the shadow run of plugin \"audited\"",
        ),
    ];
    let audited: BTreeSet<(String, &str)> = route_list()
        .iter()
        .filter(|r| r.audited())
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    let covered: BTreeSet<(String, &str)> = writes.iter().map(|w| (w.0.to_string(), w.1)).collect();
    assert_eq!(audited, covered, "one write per audited route");

    for (n, (method, template, path, body, token, words)) in writes.into_iter().enumerate() {
        let request_id = format!("audit-test-{n}");
        let a = if template == "/v1/admin/plugins/{name}" {
            service
                .client
                .put(format!("{}{path}", service.base))
                .bearer_auth(token)
                .header("content-type", "application/wasm")
                .header("x-request-id", &request_id)
                .body(webhook.clone())
                .send()
                .await
                .unwrap()
                .status()
        } else {
            service
                .send(
                    method.clone(),
                    &path,
                    Some(token),
                    body.as_ref(),
                    &[("x-request-id", &request_id)],
                )
                .await
                .status
        };
        assert!(a.is_success(), "{method} {path}: {a}");
        let entry = entry(&service, &request_id)
            .await
            .unwrap_or_else(|| panic!("no audit entry for {method} {path}"));
        assert_eq!(entry["method"], method.as_str(), "{entry}");
        assert_eq!(entry["path"], path, "{entry}");
        assert_eq!(entry["status"], a.as_u16(), "{entry}");
        assert!(
            entry["summary"].as_str().unwrap().contains(words),
            "{words:?} not in {entry}"
        );
        assert!(entry["at"].as_str().is_some_and(|t| t.ends_with('Z')));
        if token == ADMIN {
            assert_eq!(entry["actor"], "admin-token", "{entry}");
            assert_eq!(entry["keyId"], Value::Null);
        } else {
            assert_eq!(entry["actor"], "api-key", "{entry}");
            assert_eq!(entry["keyId"], staff_id, "{entry}");
            assert_eq!(entry["keyName"], "cs tool", "{entry}");
        }
    }

    let log = audit(&service, "?limit=1000").await.body;
    assert!(
        !log.to_string().contains(SECRET),
        "a secret in the audit log: {log}"
    );
    assert!(
        !log.to_string().contains(&staff),
        "a token in the audit log: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_refused_writes_leave_no_entry() {
    let service = TestService::start_without_workers().await;
    let staff = service.key("service", None).await;
    let before = audit(&service, "").await.body.as_array().unwrap().len();
    for (method, path, token, body) in [
        (Method::GET, "/v1/admin/settings", ADMIN, None),
        (Method::GET, "/v1/admin/api-keys", ADMIN, None),
        (
            Method::PUT,
            "/v1/admin/settings",
            staff.as_str(),
            Some(json!({})),
        ),
        (
            Method::PUT,
            "/v1/admin/settings",
            ADMIN,
            Some(json!({"cancellableOrderStatuses": [], "cancelledStatus": ""})),
        ),
        (Method::POST, "/v1/admin/presets/nonsense", ADMIN, None),
        (
            Method::DELETE,
            "/v1/admin/api-keys/no-such-key",
            ADMIN,
            None,
        ),
    ] {
        let a = service.call(method, path, Some(token), body.as_ref()).await;
        assert_ne!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", a.body);
    }
    let after = audit(&service, "").await.body.as_array().unwrap().len();
    assert_eq!(after, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_pages_newest_first() {
    let service = TestService::start_without_workers().await;
    for n in 0..7 {
        let a = service
            .call(
                Method::PUT,
                &format!("/v1/admin/websites/site-{n}"),
                Some(ADMIN),
                Some(&json!({"allowCancellationRequest": true})),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK);
    }
    let mut paths = Vec::new();
    let mut ids: Vec<i64> = Vec::new();
    let mut next = "?limit=3".to_owned();
    for _ in 0..10 {
        let page = audit(&service, &next).await;
        let entries = page.body.as_array().unwrap();
        assert!(entries.len() <= 3);
        paths.extend(
            entries
                .iter()
                .map(|e| e["path"].as_str().unwrap().to_owned()),
        );
        ids.extend(entries.iter().map(|e| e["id"].as_i64().unwrap()));
        let Some(link) = page.headers.get("link") else {
            break;
        };
        let link = link.to_str().unwrap();
        assert!(link.ends_with("; rel=\"next\""), "{link}");
        next = link
            .trim_start_matches("</v1/admin/audit")
            .split('>')
            .next()
            .unwrap()
            .to_owned();
    }
    let expected: Vec<String> = (0..7)
        .rev()
        .map(|n| format!("/v1/admin/websites/site-{n}"))
        .collect();
    assert_eq!(paths, expected, "newest first, each once");
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");

    for query in ["?limit=0", "?limit=1001", "?before=x", "?cursor=1"] {
        let a = service
            .call(
                Method::GET,
                &format!("/v1/admin/audit{query}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(a.code(), "validation-failed");
    }
}
