//! The webhook plugin against a loopback ERP, through the real runtime.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rescind_host::plugins::{CallLimits, CallOutcome, ConnectionContext, LogSource};
use rescind_tests::erp_server::{ErpServer, Scripted};
use rescind_tests::fakes::ClosedPort;
use rescind_tests::plugin_fixtures::{plugin, sample_cancellation};
use serde_json::json;
use sha2::Sha256;

const SIGNING_KEY: &str = "wh-signing-key-s3cret";

fn webhook() -> std::sync::Arc<rescind_host::plugins::Plugin> {
    plugin("webhook", rescind_test_artifacts::WEBHOOK)
}

fn connection(base_url: String, allowed_hosts: Vec<String>) -> ConnectionContext {
    ConnectionContext {
        name: "erp".to_owned(),
        base_url,
        allowed_hosts,
        settings: BTreeMap::new(),
        secrets: BTreeMap::from([("signingKey".to_owned(), SIGNING_KEY.to_owned())]),
        ..ConnectionContext::default()
    }
}

fn erp_connection(erp: &ErpServer) -> ConnectionContext {
    connection(erp.url("/hooks/cancel"), vec![erp.authority()])
}

#[tokio::test]
async fn delivers_the_exact_request_and_is_accepted() {
    let erp = ErpServer::start().await;
    erp.script([Scripted::json(201, r#"{"id": "wh-42"}"#)]);

    let report = webhook()
        .submit(
            sample_cancellation(),
            &erp_connection(&erp),
            &CallLimits::default(),
        )
        .await;

    assert_eq!(
        report.outcome,
        CallOutcome::Accepted {
            erp_reference: Some("wh-42".into()),
            message: Some(format!(
                "delivered to {}: HTTP 201",
                erp.url("/hooks/cancel")
            )),
        }
    );
    let requests = erp.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.method, http::Method::POST);
    assert_eq!(request.path, "/hooks/cancel");
    assert_eq!(request.header("host"), Some(erp.authority().as_str()));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("idempotency-key"),
        Some("6f1d2c3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f")
    );
    assert_eq!(request.header("x-rescind-attempt"), Some("1"));

    // What a receiver does with the signature: recompute it over the raw
    // body with the shared key.
    let signature = request
        .header("x-rescind-signature")
        .and_then(|s| s.strip_prefix("sha256="))
        .expect("an X-Rescind-Signature: sha256=… header");
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_KEY.as_bytes()).unwrap();
    mac.update(&request.body);
    mac.verify_slice(&hex::decode(signature).unwrap())
        .expect("the signature verifies with the connection's signing key");

    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({
            "requestId": "6f1d2c3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f",
            "orderNumber": "1001",
            "erpOrderNumber": "ERP-1001",
            "businessCode": "B1",
            "customerNumber": "C-1",
            "website": "main",
            "orderDate": "2024-09-01",
            "full": true,
            "lines": [
                {"lineNumber": 1, "sku": "CHAIR", "quantity": 2, "kind": "product",
                 "amountMinor": 20000, "taxMinor": 3800, "currency": "EUR",
                 "parentLine": null, "erpLineRef": "ERP-1001-1"},
                {"lineNumber": 2, "sku": "WARRANTY", "quantity": 1, "kind": "product",
                 "amountMinor": 1500, "taxMinor": 285, "currency": "EUR",
                 "parentLine": 1, "erpLineRef": null},
                {"lineNumber": 3, "sku": "PROMO10", "quantity": 1, "kind": "discount",
                 "amountMinor": -2000, "taxMinor": -380, "currency": "EUR",
                 "parentLine": null, "erpLineRef": null}
            ],
            "allLineNumbers": [1, 2, 3],
            "cancellationReason": "OUT_OF_STOCK",
            "cancellationDate": "2024-09-09",
            "invoiceReference": "IDE12345678901",
            "forcedCancel": true,
            "forcedCancelWithRefund": true,
            "refund": {"amountMinor": 23205, "currency": "EUR", "to": "bankAccount"},
            "bankDetails": {"accountOwner": "Max Mustermann",
                            "iban": "DE89370400440532013000", "bic": "COBADEFFXXX"},
            "forUser": null,
            "trackingData": {"channel": "online", "session": "123|abc",
                             "cuid": "09|Z0", "offlineChannel": null},
            "parameters": {"OrderNumber": "1001"}
        })
    );

    assert!(
        report.log.iter().any(|l| l.source == LogSource::Plugin
            && l.message.contains("posting the cancellation of order 1001")),
        "{:?}",
        report.log
    );
    assert!(
        report.log.iter().all(|l| !l.message.contains(SIGNING_KEY)),
        "{:?}",
        report.log
    );
}

#[tokio::test]
async fn a_host_outside_allowed_hosts_is_denied_and_logged() {
    let erp = ErpServer::start().await;
    // The URL points at the loopback ERP, but the connection only allows
    // another host.
    let connection = connection(
        erp.url("/hooks/cancel"),
        vec!["erp.example.com:443".to_owned()],
    );

    let report = webhook()
        .submit(sample_cancellation(), &connection, &CallLimits::default())
        .await;

    match &report.outcome {
        CallOutcome::Misconfigured(message) => {
            assert!(message.contains("allowedHosts"), "{message}");
            assert!(message.contains(&erp.authority()), "{message}");
        }
        other => panic!("expected a misconfiguration, got {other:?}"),
    }
    assert!(erp.requests().is_empty(), "the request must not go out");
    let denial = format!(
        "egress refused: http://{} is not in the allowedHosts of connection \"erp\"; add it \
         there if the plugin should reach it",
        erp.authority()
    );
    assert!(
        report
            .log
            .iter()
            .any(|l| l.source == LogSource::Runtime && l.message == denial),
        "{:?}",
        report.log
    );
}

#[tokio::test]
async fn an_unavailable_erp_is_a_transient_failure() {
    let erp = ErpServer::start().await;
    erp.script([Scripted::json(503, r#"{"message": "maintenance"}"#)]);

    let report = webhook()
        .submit(
            sample_cancellation(),
            &erp_connection(&erp),
            &CallLimits::default(),
        )
        .await;

    assert!(
        matches!(&report.outcome, CallOutcome::Transient(m) if m.contains("503")),
        "{:?}",
        report.outcome
    );
    assert!(report.outcome.is_retryable());
    assert_eq!(erp.requests().len(), 1);
}

#[tokio::test]
async fn an_erp_refusal_is_rejected_with_its_message() {
    let erp = ErpServer::start().await;
    erp.script([Scripted::json(400, r#"{"message": "order 1001 unknown"}"#)]);

    let report = webhook()
        .submit(
            sample_cancellation(),
            &erp_connection(&erp),
            &CallLimits::default(),
        )
        .await;

    assert_eq!(
        report.outcome,
        CallOutcome::Rejected("the ERP answered 400 Bad Request: order 1001 unknown".into())
    );
    assert!(!report.outcome.is_retryable());
}

#[tokio::test]
async fn a_refused_connection_is_a_transient_failure() {
    let closed = ClosedPort::bind();
    let connection = connection(
        format!("http://{}/hooks/cancel", closed.authority()),
        vec![closed.authority().to_owned()],
    );

    let report = webhook()
        .submit(sample_cancellation(), &connection, &CallLimits::default())
        .await;

    assert!(
        matches!(report.outcome, CallOutcome::Transient(_)),
        "{:?}",
        report.outcome
    );
}

#[tokio::test]
async fn the_deadline_covers_a_slow_erp() {
    let erp = ErpServer::start().await;
    erp.script([Scripted::json(200, "{}").after(Duration::from_secs(30))]);
    let limits = CallLimits {
        deadline: Duration::from_secs(2),
        ..CallLimits::default()
    };

    let report = webhook()
        .submit(sample_cancellation(), &erp_connection(&erp), &limits)
        .await;

    assert_eq!(
        report.outcome,
        CallOutcome::DeadlineExceeded(Duration::from_secs(2))
    );
    assert_eq!(erp.requests().len(), 1, "the request went out and hung");
}
