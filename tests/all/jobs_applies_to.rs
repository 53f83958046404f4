//! A job definition's `appliesTo`: which cancellations make a job of it,
//! what the cancel answer says when a partial cancellation reaches no ERP,
//! and what is refused.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::service::{ADMIN, Answer, TestService, deposited_order, webhook_connection};

/// A service without workers (jobs stay queued), the insite preset,
/// connection `erp` and order SO-2 (two independent lines, paid in full).
async fn setup() -> TestService {
    let service = TestService::start_without_workers().await;
    service.configure_insite().await;
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/connections/erp",
            Some(ADMIN),
            Some(&webhook_connection(
                "http://127.0.0.1:9",
                "127.0.0.1:9",
                "applies-to-test-key",
            )),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    service.put_order("SO-2", &deposited_order("C-1")).await;
    service
}

async fn put_definition(service: &TestService, name: &str, applies_to: Option<&str>) -> Answer {
    let mut body = json!({"jobType": "Execution", "connection": "erp",
                          "integrationProcessor": "webhook"});
    if let Some(applies_to) = applies_to {
        body["appliesTo"] = json!(applies_to);
    }
    service
        .call(
            Method::PUT,
            &format!("/v1/admin/job-definitions/{name}"),
            Some(ADMIN),
            Some(&body),
        )
        .await
}

/// Cancels line 2 of SO-2 (partial), or with `None` the rest (full).
async fn cancel(service: &TestService, line: Option<u32>) -> Value {
    let mut body = json!({"cancellationReason": "CUSTOMER_SERVICE", "forcedCancel": true});
    if let Some(line) = line {
        body["items"] = json!([{"orderItemReference": line}]);
    }
    let a = service.cancel("SO-2", &body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body
}

fn definitions(answer: &Value) -> Vec<String> {
    answer["erpSync"]["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["definition"].as_str().expect("definition").to_owned())
        .collect()
}

fn warning_codes(answer: &Value) -> Vec<String> {
    answer["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w["code"].as_str().expect("code").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_cancellation_makes_jobs_of_the_definitions_that_apply_to_it() {
    let service = setup().await;
    for (name, applies_to) in [
        ("Everything", None),
        ("WholeOrders", Some("full")),
        ("Lines", Some("partial")),
    ] {
        let a = put_definition(&service, name, applies_to).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.body["appliesTo"], applies_to.unwrap_or("any"));
    }
    let a = service
        .call(
            Method::GET,
            "/v1/admin/job-definitions/Everything",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.body["appliesTo"], "any", "the default");

    let partial = cancel(&service, Some(2)).await;
    assert_eq!(partial["full"], false);
    assert_eq!(definitions(&partial), ["Everything", "Lines"]);
    assert_eq!(partial["erpSync"]["state"], "queued");
    assert_eq!(warning_codes(&partial), ["not-refunded"]);

    // The rest ends the order: the whole-order definition applies now.
    let full = cancel(&service, None).await;
    assert_eq!(full["full"], true);
    assert_eq!(definitions(&full), ["Everything", "WholeOrders"]);

    let jobs = service
        .call(
            Method::GET,
            "/v1/admin/jobs?orderNumber=SO-2",
            Some(ADMIN),
            None,
        )
        .await;
    let mut made: Vec<(String, String)> = jobs
        .body
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["definition"].as_str().unwrap_or("").to_owned(),
                j["cancellationId"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    made.sort();
    let (p, f) = (
        partial["internalRequestId"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        full["internalRequestId"].as_str().unwrap_or("").to_owned(),
    );
    let mut expected = vec![
        ("Everything".to_owned(), p.clone()),
        ("Lines".to_owned(), p),
        ("Everything".to_owned(), f.clone()),
        ("WholeOrders".to_owned(), f),
    ];
    expected.sort();
    assert_eq!(
        made, expected,
        "no job for a definition that does not apply"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_cancellation_that_reaches_no_erp_says_so() {
    let service = setup().await;
    assert_eq!(
        put_definition(&service, "OrderCancel", Some("full"))
            .await
            .status,
        StatusCode::OK
    );
    let partial = cancel(&service, Some(2)).await;
    assert_eq!(
        partial["erpSync"],
        json!({"state": "not-configured", "jobs": []})
    );
    assert_eq!(
        warning_codes(&partial),
        ["not-refunded", "partial-not-communicated-to-erp"]
    );
    let message = partial["warnings"][1]["message"].as_str().unwrap_or("");
    assert!(message.contains("OrderCancel"), "{message}");
    // Read back later, it says the same.
    let id = partial["internalRequestId"].as_str().expect("id");
    let again = service.cancellation(id).await;
    assert_eq!(again.body["erpSync"], partial["erpSync"]);
    assert_eq!(again.body["warnings"], partial["warnings"]);

    // A manual run of the whole-order definition for that partial
    // cancellation is refused: it would send it as the order's.
    let run = service
        .call(
            Method::POST,
            "/v1/admin/job-definitions/OrderCancel/runs",
            Some(ADMIN),
            Some(&json!({"parameters": {"OrderNumber": "SO-2"}})),
        )
        .await;
    assert_eq!(run.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", run.body);
    assert_eq!(run.code(), "validation-failed");
    assert_eq!(run.body["errors"][0]["field"], "parameters.OrderNumber");
    let jobs = service
        .call(Method::GET, "/v1/admin/jobs", Some(ADMIN), None)
        .await;
    assert_eq!(jobs.body, json!([]));

    // The cancellation that ends the order reaches it, without a warning.
    let full = cancel(&service, None).await;
    assert_eq!(definitions(&full), ["OrderCancel"]);
    assert!(
        !warning_codes(&full)
            .iter()
            .any(|c| c.ends_with("not-communicated-to-erp")),
        "{full}"
    );
    let run = service
        .call(
            Method::POST,
            "/v1/admin/job-definitions/OrderCancel/runs",
            Some(ADMIN),
            Some(&json!({"parameters": {"OrderNumber": "SO-2"}})),
        )
        .await;
    assert_eq!(run.status, StatusCode::CREATED, "{}", run.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cancellation_no_definition_applies_to_is_not_communicated() {
    let service = setup().await;
    assert_eq!(
        put_definition(&service, "LineSync", Some("partial"))
            .await
            .status,
        StatusCode::OK
    );
    let full = cancel(&service, None).await;
    assert_eq!(
        full["erpSync"],
        json!({"state": "not-configured", "jobs": []})
    );
    assert!(
        warning_codes(&full).contains(&"not-communicated-to-erp".to_owned()),
        "{full}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_applies_to_is_refused_and_nothing_is_stored() {
    let service = setup().await;
    assert_eq!(
        put_definition(&service, "OrderCancel", Some("full"))
            .await
            .status,
        StatusCode::OK
    );
    for wrong in ["whole", "Full", "", "any "] {
        let a = put_definition(&service, "OrderCancel", Some(wrong)).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{wrong:?}: {}",
            a.body
        );
        assert_eq!(a.code(), "validation-failed");
        assert_eq!(a.body["errors"][0]["field"], "appliesTo", "{}", a.body);
        let a = put_definition(&service, "Other", Some(wrong)).await;
        assert_eq!(a.code(), "validation-failed");
    }
    // A wrong type is a malformed body, as for every field.
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/job-definitions/OrderCancel",
            Some(ADMIN),
            Some(&json!({"jobType": "Execution", "connection": "erp",
                         "integrationProcessor": "webhook", "appliesTo": 1})),
        )
        .await;
    assert_eq!(a.code(), "malformed-request", "{}", a.body);
    let a = service
        .call(
            Method::GET,
            "/v1/admin/job-definitions/OrderCancel",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.body["appliesTo"], "full");
    let a = service
        .call(
            Method::GET,
            "/v1/admin/job-definitions/Other",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}
