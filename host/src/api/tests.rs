//! The API in-process: the OpenAPI document's snapshot, and one router
//! test per error code (`Router` + `oneshot`, no socket) with a snapshot of
//! its problem+json body. Each test builds a fresh store in a temporary
//! directory and sends the requests that lead to its error.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;
use utoipa::OpenApi;

use super::{ApiDoc, AppState, BODY_LIMIT, request_digest, router, token_digest};
use crate::store::{ApiKey, IdempotencyClaim, Role, Store, StoreOptions};

/// The OpenAPI document is generated from the handlers and DTOs; this
/// snapshot makes every change to the API's shape visible in review.
#[test]
fn openapi_document_matches_the_snapshot() {
    let document = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the document serialises");
    insta::assert_snapshot!("openapi", document);
}

/// The router is built from the route table, and the OpenAPI document
/// names exactly its routes, each with the table's roles.
#[test]
fn the_openapi_document_has_the_route_tables_routes_and_roles() {
    let document = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("operations").keys() {
            documented.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let routed: std::collections::BTreeSet<_> = super::route_list()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, routed);
    for route in super::route_list() {
        let operation = &document["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        let expected = match route.access {
            super::Access::Public => Value::Null,
            super::Access::Roles(roles) => {
                json!(roles.iter().map(|r| r.as_str()).collect::<Vec<_>>())
            }
        };
        assert_eq!(
            operation["x-rescind-roles"], expected,
            "{} {}",
            route.method, route.path
        );
    }
}

const ADMIN: &str = "router-test-admin-token-0123456789abcdef";
const CUSTOMER: &str = "router-test-customer-token-0123456789abcdef";

/// A service in-process over a fresh store: the admin token, a customer key
/// of C-1, the insite preset, website `main` open to customers, and the
/// contract's sample order as SO-1 (C-1) and, paid in full, SO-2.
struct Api {
    app: Router,
    state: AppState,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn new() -> Api {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(&StoreOptions::new(dir.path()))
            .await
            .expect("the store opens");
        store
            .insert_api_key(&ApiKey {
                id: "customer-key".to_owned(),
                token_sha256: token_digest(CUSTOMER),
                token_prefix: None,
                name: "customer C-1".to_owned(),
                role: Role::Customer,
                customer_number: Some("C-1".to_owned()),
                created_by: "test".to_owned(),
                created_at_ms: 0,
                last_used_at_ms: None,
                expires_at_ms: None,
            })
            .await
            .expect("a customer key");
        let state = AppState::new(store, Some(ADMIN));
        let api = Api {
            app: router(state.clone()),
            state,
            _dir: dir,
        };
        api.ok(Method::POST, "/v1/admin/presets/insite", None).await;
        api.ok(
            Method::PUT,
            "/v1/admin/websites/main",
            Some(json!({"allowCancellationRequest": true})),
        )
        .await;
        api.ok(Method::PUT, "/v1/orders/SO-1", Some(order(0))).await;
        api.ok(Method::PUT, "/v1/orders/SO-2", Some(order(23205)))
            .await;
        api
    }

    /// Sends a request; `body` goes as JSON.
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Body>,
    ) -> (StatusCode, String, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let has_body = body.is_some();
        if has_body {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .app
            .clone()
            .oneshot(
                request
                    .body(body.unwrap_or_else(Body::empty))
                    .expect("a request"),
            )
            .await
            .expect("the router answers");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, content_type, body)
    }

    /// As the admin, expecting success.
    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, _, answer) = self
            .send(
                method,
                path,
                Some(ADMIN),
                &[],
                body.map(|b| Body::from(b.to_string())),
            )
            .await;
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    /// Sends and checks the answer is the problem `code` with `status`;
    /// answers its body.
    async fn problem(
        &self,
        status: u16,
        code: &str,
        (method, path, token): (Method, &str, Option<&str>),
        headers: &[(&str, &str)],
        body: Option<Body>,
    ) -> Value {
        let (got, content_type, answer) = self.send(method, path, token, headers, body).await;
        assert_eq!(got.as_u16(), status, "{code}: {answer}");
        assert_eq!(content_type, "application/problem+json", "{code}");
        assert_eq!(answer["code"], code, "{answer}");
        assert_eq!(answer["status"], status);
        assert_eq!(answer["type"], format!("urn:rescind:problem:{code}"));
        answer
    }

    /// A cancellation of `order` by `token` with `body`, expecting the
    /// problem `code`; snapshots its body under the code's name.
    async fn refused(&self, token: &str, order: &str, body: Value, status: u16, code: &str) {
        let answer = self
            .problem(
                status,
                code,
                (
                    Method::POST,
                    &format!("/v1/orders/{order}/cancellations"),
                    Some(token),
                ),
                &[],
                Some(Body::from(body.to_string())),
            )
            .await;
        insta::assert_json_snapshot!(format!("problem-{code}"), answer);
    }
}

/// The contract's sample order (chair, warranty, discount), with
/// `deposited` of its card payment captured.
fn order(deposited: i64) -> Value {
    json!({
        "businessCode": "B1", "customerNumber": "C-1", "website": "main",
        "status": "Submitted", "orderDate": "2024-09-01", "currency": "EUR",
        "lines": [
            {"lineNumber": 1, "sku": "CHAIR", "quantity": 2, "amountMinor": 20000, "taxMinor": 3800},
            {"lineNumber": 2, "sku": "WARRANTY", "quantity": 1, "amountMinor": 1500, "taxMinor": 285, "parentLine": 1},
            {"lineNumber": 3, "sku": "PROMO10", "quantity": 1, "amountMinor": -2000, "taxMinor": -380, "kind": "discount", "appliesTo": [1]}
        ],
        "payments": [{"id": "pay-1", "method": "card", "authorizedMinor": 23205, "depositedMinor": deposited}]
    })
}

fn staff(extra: Value) -> Value {
    let mut body = json!({"cancellationReason": "OUT_OF_STOCK"});
    for (key, value) in extra.as_object().expect("an object") {
        body[key] = value.clone();
    }
    body
}

fn bank(iban: &str, bic: Option<&str>) -> Value {
    json!({"forcedCancel": true, "forcedCancelWithRefund": true,
           "bankDetails": {"accountOwner": "Max Mustermann", "iban": iban, "bic": bic}})
}

#[tokio::test]
async fn malformed_request() {
    Api::new()
        .await
        .refused(
            ADMIN,
            "SO-1",
            json!({"cancellationReason": "OUT_OF_STOCK", "forcedCancle": true}),
            400,
            "malformed-request",
        )
        .await;
}

#[tokio::test]
async fn unauthenticated() {
    let api = Api::new().await;
    let answer = api
        .problem(
            401,
            "unauthenticated",
            (Method::GET, "/v1/orders/SO-1", Some("not-a-known-token")),
            &[],
            None,
        )
        .await;
    insta::assert_json_snapshot!("problem-unauthenticated", answer);
}

#[tokio::test]
async fn forbidden() {
    Api::new()
        .await
        .refused(
            CUSTOMER,
            "SO-1",
            json!({"forUser": "someone@example.com"}),
            403,
            "forbidden",
        )
        .await;
}

#[tokio::test]
async fn cancellation_not_allowed() {
    let api = Api::new().await;
    api.ok(
        Method::PUT,
        "/v1/admin/websites/main",
        Some(json!({"allowCancellationRequest": false})),
    )
    .await;
    api.refused(CUSTOMER, "SO-1", json!({}), 403, "cancellation-not-allowed")
        .await;
}

#[tokio::test]
async fn order_not_found() {
    Api::new()
        .await
        .refused(ADMIN, "SO-404", staff(json!({})), 404, "order-not-found")
        .await;
}

#[tokio::test]
async fn order_not_cancellable() {
    let api = Api::new().await;
    api.ok(
        Method::POST,
        "/v1/orders/SO-1/status",
        Some(json!({"status": "Shipped"})),
    )
    .await;
    api.refused(
        ADMIN,
        "SO-1",
        staff(json!({})),
        409,
        "order-not-cancellable",
    )
    .await;
}

#[tokio::test]
async fn forced_cancel_required() {
    Api::new()
        .await
        .refused(
            ADMIN,
            "SO-2",
            staff(json!({})),
            409,
            "forced-cancel-required",
        )
        .await;
}

#[tokio::test]
async fn line_already_cancelled() {
    let api = Api::new().await;
    api.ok(
        Method::POST,
        "/v1/orders/SO-1/cancellations",
        Some(staff(json!({"items": [{"orderItemReference": 2}]}))),
    )
    .await;
    api.refused(
        ADMIN,
        "SO-1",
        staff(json!({"items": [{"orderItemReference": 2}]})),
        409,
        "line-already-cancelled",
    )
    .await;
}

#[tokio::test]
async fn request_in_progress() {
    let api = Api::new().await;
    let body = staff(json!({})).to_string();
    let digest = request_digest("SO-1", body.as_bytes()).expect("a digest");
    let claim = api
        .state
        .store
        .claim_idempotency_key(&token_digest(ADMIN), "held", &digest)
        .await
        .expect("the key is claimed");
    assert_eq!(claim, IdempotencyClaim::Proceed);
    let answer = api
        .problem(
            409,
            "request-in-progress",
            (Method::POST, "/v1/orders/SO-1/cancellations", Some(ADMIN)),
            &[("idempotency-key", "held")],
            Some(Body::from(body)),
        )
        .await;
    insta::assert_json_snapshot!("problem-request-in-progress", answer);
}

#[tokio::test]
async fn payload_too_large() {
    let api = Api::new().await;
    let huge = format!(
        "{{\"cancellationReason\": \"OUT_OF_STOCK\", \"invoiceReference\": \"{}\"}}",
        "x".repeat(BODY_LIMIT)
    );
    let answer = api
        .problem(
            413,
            "payload-too-large",
            (Method::POST, "/v1/orders/SO-1/cancellations", Some(ADMIN)),
            &[],
            Some(Body::from(huge)),
        )
        .await;
    insta::assert_json_snapshot!("problem-payload-too-large", answer);
}

#[tokio::test]
async fn refund_requires_forced_cancel() {
    Api::new()
        .await
        .refused(
            ADMIN,
            "SO-2",
            staff(json!({"forcedCancelWithRefund": true})),
            422,
            "refund-requires-forced-cancel",
        )
        .await;
}

#[tokio::test]
async fn nothing_to_refund() {
    Api::new()
        .await
        .refused(
            ADMIN,
            "SO-1",
            staff(json!({"forcedCancel": true, "forcedCancelWithRefund": true})),
            422,
            "nothing-to-refund",
        )
        .await;
}

#[tokio::test]
async fn unknown_line() {
    Api::new()
        .await
        .refused(
            ADMIN,
            "SO-1",
            staff(json!({"items": [{"orderItemReference": 9}]})),
            422,
            "unknown-line",
        )
        .await;
}

#[tokio::test]
async fn duplicate_line() {
    Api::new()
        .await
        .refused(
            ADMIN,
            "SO-1",
            staff(json!({"items": [{"orderItemReference": 1}, {"orderItemReference": 1}]})),
            422,
            "duplicate-line",
        )
        .await;
}

#[tokio::test]
async fn partial_line_not_supported() {
    Api::new()
        .await
        .refused(
            ADMIN,
            "SO-1",
            staff(json!({"items": [{"orderItemReference": 1, "quantity": 1}]})),
            422,
            "partial-line-not-supported",
        )
        .await;
}

#[tokio::test]
async fn invalid_reason() {
    Api::new()
        .await
        .refused(
            ADMIN,
            "SO-1",
            json!({"cancellationReason": "BORED"}),
            422,
            "invalid-reason",
        )
        .await;
}

#[tokio::test]
async fn reason_not_allowed() {
    Api::new()
        .await
        .refused(
            CUSTOMER,
            "SO-1",
            json!({"cancellationReason": "OUT_OF_STOCK"}),
            422,
            "reason-not-allowed",
        )
        .await;
}

#[tokio::test]
async fn invalid_date() {
    Api::new()
        .await
        .refused(
            ADMIN,
            "SO-1",
            staff(json!({"cancellationDate": "2024-08-31"})),
            422,
            "invalid-date",
        )
        .await;
}

#[tokio::test]
async fn invalid_iban() {
    Api::new()
        .await
        .refused(
            ADMIN,
            "SO-2",
            staff(bank("DE89370400440532013001", None)),
            422,
            "invalid-iban",
        )
        .await;
}

#[tokio::test]
async fn invalid_bic() {
    Api::new()
        .await
        .refused(
            ADMIN,
            "SO-2",
            staff(bank("DE89370400440532013000", Some("CO"))),
            422,
            "invalid-bic",
        )
        .await;
}

#[tokio::test]
async fn bic_required() {
    Api::new()
        .await
        .refused(
            ADMIN,
            "SO-2",
            staff(bank("TR330006100519786457841326", None)),
            422,
            "bic-required",
        )
        .await;
}

#[tokio::test]
async fn idempotency_key_reused() {
    let api = Api::new().await;
    let first = staff(json!({"items": [{"orderItemReference": 2}]})).to_string();
    let (status, _, answer) = api
        .send(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(ADMIN),
            &[("idempotency-key", "k-1")],
            Some(Body::from(first)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let answer = api
        .problem(
            422,
            "idempotency-key-reused",
            (Method::POST, "/v1/orders/SO-1/cancellations", Some(ADMIN)),
            &[("idempotency-key", "k-1")],
            Some(Body::from(staff(json!({})).to_string())),
        )
        .await;
    insta::assert_json_snapshot!("problem-idempotency-key-reused", answer);
}

#[tokio::test]
async fn validation_failed() {
    let api = Api::new().await;
    let answer = api
        .problem(
            422,
            "validation-failed",
            (Method::PUT, "/v1/admin/settings", Some(ADMIN)),
            &[],
            Some(Body::from(
                json!({"cancellableOrderStatuses": ["Submitted", "Submitted"],
                       "cancelledStatus": " "})
                .to_string(),
            )),
        )
        .await;
    insta::assert_json_snapshot!("problem-validation-failed", answer);
}

// The project's own codes, beside the contract's.

#[tokio::test]
async fn unsupported_media_type() {
    let api = Api::new().await;
    let answer = api
        .problem(
            415,
            "unsupported-media-type",
            (Method::PUT, "/v1/admin/websites/main", Some(ADMIN)),
            &[(header::CONTENT_TYPE.as_str(), "text/plain")],
            None,
        )
        .await;
    insta::assert_json_snapshot!("problem-unsupported-media-type", answer);
}

#[tokio::test]
async fn not_found() {
    let api = Api::new().await;
    let answer = api
        .problem(
            404,
            "not-found",
            (Method::GET, "/v1/nothing-here", None),
            &[],
            None,
        )
        .await;
    insta::assert_json_snapshot!("problem-not-found", answer);
}

#[tokio::test]
async fn method_not_allowed() {
    let api = Api::new().await;
    let answer = api
        .problem(
            405,
            "method-not-allowed",
            (Method::DELETE, "/v1/orders/SO-1", Some(ADMIN)),
            &[],
            None,
        )
        .await;
    insta::assert_json_snapshot!("problem-method-not-allowed", answer);
}

#[tokio::test]
async fn resources_that_do_not_exist() {
    let api = Api::new().await;
    let cases = [
        (
            Method::GET,
            "/v1/cancellations/c-404",
            "cancellation-not-found",
        ),
        (Method::GET, "/v1/admin/jobs/j-404", "job-not-found"),
        (
            Method::GET,
            "/v1/admin/job-definitions/None",
            "job-definition-not-found",
        ),
        (
            Method::GET,
            "/v1/admin/connections/none",
            "connection-not-found",
        ),
        (Method::GET, "/v1/admin/websites/none", "website-not-found"),
        (
            Method::POST,
            "/v1/admin/presets/magento",
            "preset-not-found",
        ),
    ];
    for (method, path, code) in cases {
        let answer = api
            .problem(404, code, (method, path, Some(ADMIN)), &[], None)
            .await;
        insta::assert_json_snapshot!(format!("problem-{code}"), answer);
    }
}

#[tokio::test]
async fn job_not_retryable() {
    let api = Api::new().await;
    api.ok(
        Method::PUT,
        "/v1/admin/connections/erp",
        Some(json!({"baseUrl": "http://127.0.0.1:9", "allowedHosts": ["127.0.0.1:9"]})),
    )
    .await;
    api.ok(
        Method::PUT,
        "/v1/admin/job-definitions/OrderCancel",
        Some(
            json!({"jobType": "Execution", "connection": "erp", "integrationProcessor": "webhook"}),
        ),
    )
    .await;
    let cancelled = api
        .ok(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(staff(json!({}))),
        )
        .await;
    let job = cancelled["erpSync"]["jobs"][0]["id"]
        .as_str()
        .expect("a job")
        .to_owned();
    let answer = api
        .problem(
            409,
            "job-not-retryable",
            (
                Method::POST,
                &format!("/v1/admin/jobs/{job}/retry"),
                Some(ADMIN),
            ),
            &[],
            None,
        )
        .await;
    insta::assert_json_snapshot!("problem-job-not-retryable", answer);
}

#[tokio::test]
async fn unavailable() {
    // A host without a plugin registry answers its plugin endpoints 503.
    let api = Api::new().await;
    let answer = api
        .problem(
            503,
            "unavailable",
            (Method::GET, "/v1/admin/plugins", Some(ADMIN)),
            &[],
            None,
        )
        .await;
    insta::assert_json_snapshot!("problem-unavailable", answer);
}

#[tokio::test]
async fn internal_error() {
    // The store is gone: the answer says nothing about why (it is logged).
    let api = Api::new().await;
    api.state.store.close().await;
    let answer = api
        .problem(
            500,
            "internal-error",
            (Method::GET, "/v1/orders/SO-1", Some(ADMIN)),
            &[],
            None,
        )
        .await;
    insta::assert_json_snapshot!("problem-internal-error", answer);
}

#[tokio::test]
async fn a_path_that_does_not_decode_is_a_malformed_request() {
    // axum's own extractor answers this in text/plain; the API's answer is
    // the problem of its status.
    let api = Api::new().await;
    let answer = api
        .problem(
            400,
            "malformed-request",
            (Method::GET, "/v1/orders/%ff%fe", Some(ADMIN)),
            &[],
            None,
        )
        .await;
    insta::assert_json_snapshot!("problem-malformed-request-path", answer);
}

#[tokio::test]
async fn uri_too_long() {
    let api = Api::new().await;
    let path = format!("/v1/orders/{}", "x".repeat(super::URI_LIMIT));
    let answer = api
        .problem(
            414,
            "uri-too-long",
            (Method::GET, &path, Some(ADMIN)),
            &[],
            None,
        )
        .await;
    insta::assert_json_snapshot!("problem-uri-too-long", answer);
    // At the limit, the request is read (and the order does not exist).
    let at_limit = format!("/v1/orders/{}", "x".repeat(super::URI_LIMIT - 11));
    api.problem(
        404,
        "order-not-found",
        (Method::GET, &at_limit, Some(ADMIN)),
        &[],
        None,
    )
    .await;
}

#[tokio::test]
async fn methods_outside_the_standard_ones_share_one_metrics_label() {
    let api = Api::new().await;
    for n in 0..50 {
        let method = Method::from_bytes(format!("BREW{n}").as_bytes()).expect("a method");
        let (status, content_type, _) = api.send(method, "/healthz", None, &[], None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(content_type, "application/problem+json");
    }
    let (_, _, _) = api.send(Method::GET, "/healthz", None, &[], None).await;
    let metrics = api.state.metrics.encode();
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("rescind_http_requests_total{"))
        .collect();
    assert!(series.iter().all(|l| !l.contains("BREW")), "{series:#?}");
    assert!(
        series
            .iter()
            .any(|l| l.contains("method=\"other\"") && l.ends_with(" 50")),
        "{series:#?}"
    );
}

#[tokio::test]
async fn identifiers_and_quantities_are_bounded_and_nothing_is_stored_beyond_them() {
    let api = Api::new().await;
    let long = "x".repeat(crate::domain::MAX_IDENTIFIER_CHARS + 1);
    let mut long_website = order(0);
    long_website["website"] = json!("w".repeat(5_000));
    let mut zero_quantity = order(0);
    zero_quantity["lines"][0]["quantity"] = json!(0);
    let mut control = order(0);
    control["customerNumber"] = json!("C-1\u{0}");
    let cases = [
        (format!("/v1/orders/{long}"), order(0), "number"),
        ("/v1/orders/SO-9".to_owned(), long_website, "website"),
        (
            "/v1/orders/SO-9".to_owned(),
            zero_quantity,
            "lines[0].quantity",
        ),
        ("/v1/orders/SO-9".to_owned(), control, "customerNumber"),
    ];
    for (path, body, field) in cases {
        let answer = api
            .problem(
                422,
                "validation-failed",
                (Method::PUT, &path, Some(ADMIN)),
                &[],
                Some(Body::from(body.to_string())),
            )
            .await;
        assert_eq!(answer["errors"][0]["field"], field, "{answer}");
        let (status, _, _) = api.send(Method::GET, &path, Some(ADMIN), &[], None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} was stored");
    }
}

#[tokio::test]
async fn a_body_must_be_a_json_object() {
    let api = Api::new().await;
    for body in ["[]", "[\"OUT_OF_STOCK\"]", "null", "17"] {
        let answer = api
            .problem(
                400,
                "malformed-request",
                (Method::POST, "/v1/orders/SO-1/cancellations", Some(ADMIN)),
                &[],
                Some(Body::from(body)),
            )
            .await;
        assert!(
            answer["detail"].as_str().unwrap().contains("JSON object"),
            "{body}: {answer}"
        );
        let answer = api
            .problem(
                400,
                "malformed-request",
                (Method::PUT, "/v1/admin/websites/main", Some(ADMIN)),
                &[],
                Some(Body::from(body)),
            )
            .await;
        assert!(
            answer["detail"].as_str().unwrap().contains("JSON object"),
            "{body}: {answer}"
        );
    }
    // The order is untouched by the refused cancellations.
    let order = api.ok(Method::GET, "/v1/orders/SO-1", None).await;
    assert_eq!(order["status"], "Submitted");
}
