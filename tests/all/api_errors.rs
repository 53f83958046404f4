//! Every error code of docs/api.md, reached over HTTP, each a problem+json
//! answer; a refused request changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::service::{ADMIN, Answer, TestService, deposited_order, sample_order};

fn assert_problem(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status.as_u16(), status, "{code}: {}", answer.body);
    assert_eq!(answer.code(), code, "{}", answer.body);
    assert_eq!(
        answer.headers["content-type"], "application/problem+json",
        "{code}"
    );
    assert_eq!(answer.body["status"], status);
    assert_eq!(
        answer.body["type"],
        format!("urn:rescind:problem:{code}"),
        "{code}"
    );
    assert!(answer.body["title"].is_string());
    assert!(
        !answer.body["detail"].as_str().unwrap_or("").is_empty(),
        "{code} has a detail"
    );
}

async fn setup() -> TestService {
    let service = TestService::start().await;
    service.configure_insite().await;
    service.put_order("SO-1", &sample_order("C-1")).await;
    service.put_order("SO-2", &deposited_order("C-1")).await;
    service.put_order("SO-3", &sample_order("C-2")).await;
    service
}

async fn cancel_with(service: &TestService, token: &str, order: &str, body: Value) -> Answer {
    service
        .call(
            Method::POST,
            &format!("/v1/orders/{order}/cancellations"),
            Some(token),
            Some(&body),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_refusals_have_their_codes_and_change_nothing() {
    let service = setup().await;
    let customer = service.key("customer", Some("C-1")).await;
    let before_1 = service.order("SO-1").await;
    let before_2 = service.order("SO-2").await;
    let staff = |extra: Value| {
        let mut body = json!({"cancellationReason": "OUT_OF_STOCK"});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };

    let cases: Vec<(&str, &str, Value, u16, &str)> = vec![
        (ADMIN, "NOPE", staff(json!({})), 404, "order-not-found"),
        (&customer, "SO-3", json!({}), 404, "order-not-found"),
        (
            &customer,
            "SO-1",
            json!({"forUser": "someone@example.com"}),
            403,
            "forbidden",
        ),
        (
            ADMIN,
            "SO-2",
            staff(json!({})),
            409,
            "forced-cancel-required",
        ),
        (
            ADMIN,
            "SO-2",
            staff(json!({"forcedCancelWithRefund": true})),
            422,
            "refund-requires-forced-cancel",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"forcedCancel": true, "forcedCancelWithRefund": true})),
            422,
            "nothing-to-refund",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"items": [{"orderItemReference": 9}]})),
            422,
            "unknown-line",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"items": [{"orderItemReference": 1}, {"orderItemReference": 1}]})),
            422,
            "duplicate-line",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"items": [{"orderItemReference": 1, "quantity": 1}]})),
            422,
            "partial-line-not-supported",
        ),
        (ADMIN, "SO-1", json!({}), 422, "invalid-reason"),
        (
            ADMIN,
            "SO-1",
            json!({"cancellationReason": "BORED"}),
            422,
            "invalid-reason",
        ),
        (
            &customer,
            "SO-1",
            json!({"cancellationReason": "OUT_OF_STOCK"}),
            422,
            "reason-not-allowed",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"cancellationDate": "2024-13-01"})),
            422,
            "invalid-date",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"cancellationDate": "2024-08-31"})),
            422,
            "invalid-date",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"cancellationDate": "2999-01-01"})),
            422,
            "invalid-date",
        ),
        (
            ADMIN,
            "SO-2",
            staff(json!({"forcedCancel": true, "forcedCancelWithRefund": true,
            "bankDetails": {"accountOwner": "Max Mustermann", "iban": "DE89370400440532013001"}})),
            422,
            "invalid-iban",
        ),
        (
            ADMIN,
            "SO-2",
            staff(json!({"forcedCancel": true, "forcedCancelWithRefund": true,
            "bankDetails": {"accountOwner": "Max Mustermann", "iban": "DE89370400440532013000", "bic": "CO"}})),
            422,
            "invalid-bic",
        ),
        (
            ADMIN,
            "SO-2",
            staff(json!({"forcedCancel": true, "forcedCancelWithRefund": true,
            "bankDetails": {"accountOwner": "Ali Veli", "iban": "TR330006100519786457841326"}})),
            422,
            "bic-required",
        ),
        (
            ADMIN,
            "SO-2",
            staff(json!({"forcedCancel": true, "forcedCancelWithRefund": true,
            "bankDetails": {"iban": "DE89370400440532013000"}})),
            422,
            "validation-failed",
        ),
    ];
    for (token, order, body, status, code) in cases {
        let answer = cancel_with(&service, token, order, body.clone()).await;
        assert_problem(&answer, status, code);
        if code == "validation-failed" {
            assert!(
                answer.body["errors"]
                    .as_array()
                    .is_some_and(|e| !e.is_empty()),
                "{}",
                answer.body
            );
        }
    }
    assert_eq!(
        service.order("SO-1").await,
        before_1,
        "refusals changed SO-1"
    );
    assert_eq!(
        service.order("SO-2").await,
        before_2,
        "refusals changed SO-2"
    );

    // Website switch off: a customer's request is refused, staff may cancel.
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/websites/main",
            Some(ADMIN),
            Some(&json!({"allowCancellationRequest": false})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let answer = cancel_with(&service, &customer, "SO-1", json!({})).await;
    assert_problem(&answer, 403, "cancellation-not-allowed");

    // Line already cancelled.
    let answer = cancel_with(
        &service,
        ADMIN,
        "SO-1",
        staff(json!({"items": [{"orderItemReference": 2}]})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let answer = cancel_with(
        &service,
        ADMIN,
        "SO-1",
        staff(json!({"items": [{"orderItemReference": 2}]})),
    )
    .await;
    assert_problem(&answer, 409, "line-already-cancelled");

    // Not cancellable: the ERP reported Shipped; the answer names the status.
    let a = service
        .call(
            Method::POST,
            "/v1/orders/SO-1/status",
            Some(ADMIN),
            Some(&json!({"status": "Shipped"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let answer = cancel_with(&service, ADMIN, "SO-1", staff(json!({}))).await;
    assert_problem(&answer, 409, "order-not-cancellable");
    assert_eq!(answer.body["orderStatus"], "Shipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_level_refusals_are_problems_too() {
    let service = setup().await;

    // No token, unknown token, malformed header.
    let a = service
        .call(Method::GET, "/v1/orders/SO-1", None, None)
        .await;
    assert_problem(&a, 401, "unauthenticated");
    let a = service
        .call(Method::GET, "/v1/orders/SO-1", Some("not-a-key"), None)
        .await;
    assert_problem(&a, 401, "unauthenticated");

    // Not JSON, wrong types, unknown field (a typo must not pass silently).
    let a = service
        .raw(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(ADMIN),
            "application/json",
            b"{\"cancellationReason\": ".to_vec(),
        )
        .await;
    assert_problem(&a, 400, "malformed-request");
    let a = service
        .cancel(
            "SO-1",
            &json!({"cancellationReason": "OUT_OF_STOCK", "forcedCancel": "yes"}),
        )
        .await;
    assert_problem(&a, 400, "malformed-request");
    let a = service
        .cancel(
            "SO-1",
            &json!({"cancellationReason": "OUT_OF_STOCK", "forcedCancle": true}),
        )
        .await;
    assert_problem(&a, 400, "malformed-request");
    assert!(
        a.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("forcedCancle")
    );

    // Over 1 MiB.
    let big = format!(
        "{{\"invoiceReference\": \"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let a = service
        .raw(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(ADMIN),
            "application/json",
            big.into_bytes(),
        )
        .await;
    assert_problem(&a, 413, "payload-too-large");

    // Wrong media type.
    let a = service
        .raw(
            Method::PUT,
            "/v1/admin/websites/main",
            Some(ADMIN),
            "text/plain",
            b"{\"allowCancellationRequest\": true}".to_vec(),
        )
        .await;
    assert_problem(&a, 415, "unsupported-media-type");

    // Unknown route and method.
    let a = service
        .call(Method::GET, "/v1/nothing", Some(ADMIN), None)
        .await;
    assert_problem(&a, 404, "not-found");
    let a = service
        .call(Method::DELETE, "/v1/orders/SO-1", Some(ADMIN), None)
        .await;
    assert_problem(&a, 405, "method-not-allowed");

    // Invalid order and admin bodies list every invalid field.
    let mut order = sample_order("C-1");
    order["lines"][1]["parentLine"] = json!(7);
    order["currency"] = json!("euro");
    let a = service
        .call(Method::PUT, "/v1/orders/SO-9", Some(ADMIN), Some(&order))
        .await;
    assert_problem(&a, 422, "validation-failed");
    let fields: Vec<&str> = a.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(fields.contains(&"currency"), "{fields:?}");
    assert!(fields.contains(&"lines[1].parentLine"), "{fields:?}");
    let a = service
        .call(Method::GET, "/v1/orders/SO-9", Some(ADMIN), None)
        .await;
    assert_problem(&a, 404, "order-not-found");

    let a = service
        .call(
            Method::PUT,
            "/v1/admin/job-definitions/OrderCancel",
            Some(ADMIN),
            Some(&json!({"jobType": "Batch", "connection": "nowhere", "integrationProcessor": "webhook",
                         "retry": {"maxAttempts": 0, "initialBackoffMs": 10, "maxBackoffMs": 5}})),
        )
        .await;
    assert_problem(&a, 422, "validation-failed");
    let fields: Vec<&str> = a.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for field in [
        "jobType",
        "connection",
        "retry.maxAttempts",
        "retry.maxBackoffMs",
    ] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_refusals() {
    let service = setup().await;
    let body = json!({"cancellationReason": "OUT_OF_STOCK", "items": [{"orderItemReference": 2}]});

    // In flight: the key is held by a request that has not committed yet.
    let bytes = serde_json::to_vec(&body).expect("json");
    let digest = rescind_host::api::request_digest("SO-1", &bytes).expect("digest");
    let held = service
        .running
        .as_ref()
        .expect("running")
        .state
        .store
        .claim_idempotency_key(&rescind_host::api::token_digest(ADMIN), "key-held", &digest)
        .await
        .expect("claim");
    assert_eq!(held, rescind_host::store::IdempotencyClaim::Proceed);
    let a = service
        .send(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(ADMIN),
            Some(&body),
            &[("idempotency-key", "key-held")],
        )
        .await;
    assert_problem(&a, 409, "request-in-progress");

    // Reused with another body.
    let a = service
        .send(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(ADMIN),
            Some(&body),
            &[("idempotency-key", "key-1")],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let other =
        json!({"cancellationReason": "CUSTOMER_SERVICE", "items": [{"orderItemReference": 1}]});
    let a = service
        .send(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(ADMIN),
            Some(&other),
            &[("idempotency-key", "key-1")],
        )
        .await;
    assert_problem(&a, 422, "idempotency-key-reused");
    assert_eq!(
        service.order("SO-1").await["cancellations"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // A key that is not visible ASCII.
    let a = service
        .send(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(ADMIN),
            Some(&other),
            &[("idempotency-key", "has space")],
        )
        .await;
    assert_problem(&a, 422, "validation-failed");
}
