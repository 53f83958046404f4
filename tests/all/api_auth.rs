//! The authorization matrix: every route of the router's own table, called
//! by every kind of caller (the admin token, a service key, the order's
//! customer, another customer, a revoked key, an expired key, no token, a
//! malformed token), with the status and problem code each must get. The
//! rows are checked against `rescind_host::api::route_list()`, so that a new
//! route without a row here fails the test.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use rescind_host::api::{Access, route_list};
use rescind_host::store::{ApiKey, Role};
use serde_json::{Value, json};

use crate::api_cancel::configure_job;
use crate::service::{ADMIN, Answer, TestService, sample_order};

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    Service,
    /// A customer key of C-1, whose orders the rows use.
    OwnCustomer,
    /// A customer key of C-2.
    OtherCustomer,
    /// An admin key, revoked before the matrix runs.
    RevokedKey,
    /// An admin key whose expiry has passed.
    ExpiredKey,
    NoToken,
    /// `Authorization` that is not a bearer token of this host.
    MalformedToken,
}

const EVERYONE: [Who; 8] = [
    Who::Admin,
    Who::Service,
    Who::OwnCustomer,
    Who::OtherCustomer,
    Who::RevokedKey,
    Who::ExpiredKey,
    Who::NoToken,
    Who::MalformedToken,
];

/// What a row sends.
#[derive(Clone, Debug)]
enum Body {
    None,
    Json(Value),
    Wasm(Vec<u8>),
}

/// One route: what to send, and what an admitted caller gets.
struct Row {
    method: Method,
    template: &'static str,
    /// The concrete path; `{n}` is replaced by a number unique to each call.
    path: String,
    body: Body,
    /// Status (and problem code, if a refusal) for callers the role admits.
    admitted: (u16, Option<&'static str>),
    /// For routes open to customers: what another customer gets.
    other_customer: Option<(u16, &'static str)>,
}

fn row(
    method: Method,
    template: &'static str,
    path: impl Into<String>,
    body: Body,
    admitted: u16,
) -> Row {
    Row {
        method,
        template,
        path: path.into(),
        body,
        admitted: (admitted, None),
        other_customer: None,
    }
}

/// The tokens of the matrix's callers.
struct Callers {
    service: String,
    own_customer: String,
    other_customer: String,
    revoked: String,
    expired: String,
}

impl Callers {
    async fn make(service: &TestService) -> Callers {
        let revoked_answer = service
            .call(
                Method::POST,
                "/v1/admin/api-keys",
                Some(ADMIN),
                Some(&json!({"name": "to be revoked", "role": "admin"})),
            )
            .await;
        assert_eq!(revoked_answer.status, StatusCode::CREATED);
        let revoked = revoked_answer.body["token"].as_str().unwrap().to_owned();
        let revoked_id = revoked_answer.body["id"].as_str().unwrap().to_owned();
        let a = service
            .call(Method::GET, "/v1/admin/settings", Some(&revoked), None)
            .await;
        assert_eq!(a.status, StatusCode::OK, "the key works before");
        let a = service
            .call(
                Method::DELETE,
                &format!("/v1/admin/api-keys/{revoked_id}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
        Callers {
            service: service.key("service", None).await,
            own_customer: service.key("customer", Some("C-1")).await,
            other_customer: service.key("customer", Some("C-2")).await,
            revoked,
            expired: expired_key(service, Role::Admin).await,
        }
    }

    /// The `Authorization` header value a caller sends.
    fn authorization(&self, who: Who) -> Option<String> {
        let bearer = |t: &str| Some(format!("Bearer {t}"));
        match who {
            Who::Admin => bearer(ADMIN),
            Who::Service => bearer(&self.service),
            Who::OwnCustomer => bearer(&self.own_customer),
            Who::OtherCustomer => bearer(&self.other_customer),
            Who::RevokedKey => bearer(&self.revoked),
            Who::ExpiredKey => bearer(&self.expired),
            Who::NoToken => None,
            Who::MalformedToken => Some("Basic YWRtaW46YWRtaW4=".to_owned()),
        }
    }
}

/// A key of `role` whose expiry passed a minute ago. The API refuses to make
/// one (an expiry must be in the future), so it goes into the running
/// service's store directly.
pub async fn expired_key(service: &TestService, role: Role) -> String {
    let token = rescind_host::keys::new_token();
    let now = rescind_host::store::now_ms();
    let store = &service.running.as_ref().expect("running").state.store;
    store
        .insert_api_key(&ApiKey {
            id: format!("expired-{}", &token[4..12]),
            token_sha256: rescind_host::keys::token_digest(&token),
            token_prefix: Some(token[..8].to_owned()),
            name: "expired".to_owned(),
            role,
            customer_number: None,
            created_by: "the test".to_owned(),
            created_at_ms: now - 120_000,
            last_used_at_ms: None,
            expires_at_ms: Some(now - 60_000),
        })
        .await
        .expect("an expired key");
    token
}

/// Sends with a raw `Authorization` header (or none).
async fn send(
    service: &TestService,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: &Body,
) -> Answer {
    let mut request = service
        .client
        .request(method, format!("{}{path}", service.base));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request = match body {
        Body::None => request,
        Body::Json(value) => request.json(value),
        Body::Wasm(bytes) => request
            .header("content-type", "application/wasm")
            .body(bytes.clone()),
    };
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// What `who` must get from `row` under `access`: status and problem code.
fn expected(row: &Row, access: Access, who: Who) -> (u16, Option<&'static str>) {
    let role = match who {
        Who::Admin => Role::Admin,
        Who::Service => Role::Service,
        Who::OwnCustomer | Who::OtherCustomer => Role::Customer,
        Who::RevokedKey | Who::ExpiredKey | Who::NoToken | Who::MalformedToken => {
            return if access == Access::Public {
                row.admitted
            } else {
                (401, Some("unauthenticated"))
            };
        }
    };
    if !access.admits(role) {
        return (403, Some("forbidden"));
    }
    match (who, row.other_customer) {
        (_, _) if access == Access::Public => row.admitted,
        (Who::OtherCustomer, Some((status, code))) => (status, Some(code)),
        (Who::OtherCustomer, None) => panic!(
            "{} {} admits customers: its row says what another customer gets",
            row.method, row.template
        ),
        _ => row.admitted,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_kind_of_caller_as_documented() {
    // No workers: the job stays queued (so a retry is refused for its
    // state, after authorisation) and `/readyz` says so.
    let service = TestService::start_without_workers().await;
    service.configure_insite().await;
    configure_job(
        &service,
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        json!({"maxAttempts": 1, "initialBackoffMs": 1, "maxBackoffMs": 1}),
    )
    .await;
    let callers = Callers::make(&service).await;
    service.put_order("SO-0", &sample_order("C-1")).await;
    let a = service
        .cancel("SO-0", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let cancellation = a.body["internalRequestId"].as_str().unwrap().to_owned();
    let job = a.body["erpSync"]["jobs"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let webhook = std::fs::read(rescind_test_artifacts::WEBHOOK).expect("the webhook component");
    let a = service
        .raw(
            Method::PUT,
            "/v1/admin/plugins/webhook",
            Some(ADMIN),
            "application/wasm",
            webhook.clone(),
        )
        .await;
    assert!(a.status.is_success(), "{}", a.body);
    let webhook_version = a.body["version"].as_str().unwrap().to_owned();
    let a = service
        .raw(
            Method::PUT,
            "/v1/admin/plugins/webhook?activate=false",
            Some(ADMIN),
            "application/wasm",
            crate::registry_support::same_code_other_bytes(webhook.clone()),
        )
        .await;
    assert!(a.status.is_success(), "{}", a.body);
    let shadow_version = a.body["version"].as_str().unwrap().to_owned();

    let (get, put, post, delete) = (Method::GET, Method::PUT, Method::POST, Method::DELETE);
    let rows = vec![
        row(
            put.clone(),
            "/v1/orders/{orderNumber}",
            "/v1/orders/SO-{n}",
            Body::Json(sample_order("C-1")),
            201,
        ),
        row(
            get.clone(),
            "/v1/orders/{orderNumber}",
            "/v1/orders/SO-0",
            Body::None,
            200,
        ),
        row(
            post.clone(),
            "/v1/orders/{orderNumber}/status",
            "/v1/orders/SO-0/status",
            Body::Json(json!({"status": "Cancelled"})),
            200,
        ),
        Row {
            other_customer: Some((404, "order-not-found")),
            ..row(
                post.clone(),
                "/v1/orders/{orderNumber}/cancellations",
                "/v1/orders/SO-{n}/cancellations",
                Body::Json(json!({})),
                201,
            )
        },
        Row {
            other_customer: Some((404, "cancellation-not-found")),
            ..row(
                get.clone(),
                "/v1/cancellations/{internalRequestId}",
                format!("/v1/cancellations/{cancellation}"),
                Body::None,
                200,
            )
        },
        row(
            post.clone(),
            "/v1/admin/api-keys",
            "/v1/admin/api-keys",
            Body::Json(json!({"name": "matrix {n}", "role": "service"})),
            201,
        ),
        row(
            get.clone(),
            "/v1/admin/api-keys",
            "/v1/admin/api-keys",
            Body::None,
            200,
        ),
        row(
            delete.clone(),
            "/v1/admin/api-keys/{id}",
            "/v1/admin/api-keys/{key}",
            Body::None,
            204,
        ),
        row(
            get.clone(),
            "/v1/admin/audit",
            "/v1/admin/audit",
            Body::None,
            200,
        ),
        row(
            get.clone(),
            "/v1/admin/status-mappings",
            "/v1/admin/status-mappings",
            Body::None,
            200,
        ),
        row(
            put.clone(),
            "/v1/admin/status-mappings",
            "/v1/admin/status-mappings",
            Body::Json(json!([
            {"erpCode": "Submitted", "status": "Submitted", "allowCancellation": true},
            {"erpCode": "Cancelled", "status": "Cancelled", "allowCancellation": false}])),
            200,
        ),
        row(
            get.clone(),
            "/v1/admin/settings",
            "/v1/admin/settings",
            Body::None,
            200,
        ),
        row(
            put.clone(),
            "/v1/admin/settings",
            "/v1/admin/settings",
            Body::Json(json!(
            {"cancellableOrderStatuses": ["Submitted"], "cancelledStatus": "Cancelled"})),
            200,
        ),
        row(
            post.clone(),
            "/v1/admin/presets/{preset}",
            "/v1/admin/presets/insite",
            Body::None,
            200,
        ),
        row(
            get.clone(),
            "/v1/admin/websites/{website}",
            "/v1/admin/websites/main",
            Body::None,
            200,
        ),
        row(
            put.clone(),
            "/v1/admin/websites/{website}",
            "/v1/admin/websites/main",
            Body::Json(json!({"allowCancellationRequest": true})),
            200,
        ),
        row(
            get.clone(),
            "/v1/admin/connections/{name}",
            "/v1/admin/connections/erp",
            Body::None,
            200,
        ),
        row(
            put.clone(),
            "/v1/admin/connections/{name}",
            "/v1/admin/connections/erp",
            Body::Json(json!(
            {"baseUrl": "http://127.0.0.1:9", "allowedHosts": ["127.0.0.1:9"]})),
            200,
        ),
        row(
            get.clone(),
            "/v1/admin/job-definitions/{name}",
            "/v1/admin/job-definitions/OrderCancel",
            Body::None,
            200,
        ),
        row(
            put.clone(),
            "/v1/admin/job-definitions/{name}",
            "/v1/admin/job-definitions/OrderCancel",
            Body::Json(json!(
            {"jobType": "Execution", "connection": "erp", "integrationProcessor": "webhook",
             "retry": {"maxAttempts": 1, "initialBackoffMs": 1, "maxBackoffMs": 1}})),
            200,
        ),
        row(
            post.clone(),
            "/v1/admin/job-definitions/{name}/runs",
            "/v1/admin/job-definitions/OrderCancel/runs",
            Body::Json(json!({"parameters": {"OrderNumber": "SO-0"}})),
            201,
        ),
        // Nothing finished that long ago: the prune deletes nothing.
        row(
            post.clone(),
            "/v1/admin/jobs/prune",
            "/v1/admin/jobs/prune",
            Body::Json(json!({"olderThan": "3650d"})),
            200,
        ),
        row(
            get.clone(),
            "/v1/admin/jobs",
            "/v1/admin/jobs",
            Body::None,
            200,
        ),
        row(
            get.clone(),
            "/v1/admin/jobs/{id}",
            format!("/v1/admin/jobs/{job}"),
            Body::None,
            200,
        ),
        // The queued job has no attempt yet: past its role check, there is
        // no input to show.
        Row {
            admitted: (404, Some("attempt-not-found")),
            ..row(
                get.clone(),
                "/v1/admin/jobs/{id}/attempts/{number}/input",
                format!("/v1/admin/jobs/{job}/attempts/1/input"),
                Body::None,
                404,
            )
        },
        // Only a failed job is retried: past its role check, the queued job
        // is refused for its state.
        Row {
            admitted: (409, Some("job-not-retryable")),
            ..row(
                post.clone(),
                "/v1/admin/jobs/{id}/retry",
                format!("/v1/admin/jobs/{job}/retry"),
                Body::None,
                409,
            )
        },
        row(
            get.clone(),
            "/v1/admin/plugins",
            "/v1/admin/plugins",
            Body::None,
            200,
        ),
        row(
            put,
            "/v1/admin/plugins/{name}",
            "/v1/admin/plugins/webhook",
            Body::Wasm(webhook),
            200,
        ),
        row(
            get.clone(),
            "/v1/admin/plugins/{name}",
            "/v1/admin/plugins/webhook",
            Body::None,
            200,
        ),
        row(
            post.clone(),
            "/v1/admin/plugins/{name}/activate",
            "/v1/admin/plugins/webhook/activate",
            Body::Json(json!({"version": webhook_version})),
            200,
        ),
        row(
            post,
            "/v1/admin/plugins/{name}/shadow",
            "/v1/admin/plugins/webhook/shadow",
            Body::Json(json!({"version": shadow_version, "jobs": 1})),
            202,
        ),
        row(
            get.clone(),
            "/v1/admin/plugins/{name}/shadow",
            "/v1/admin/plugins/webhook/shadow",
            Body::None,
            200,
        ),
        row(
            delete,
            "/v1/admin/plugins/{name}/shadow",
            "/v1/admin/plugins/webhook/shadow",
            Body::None,
            200,
        ),
        row(get.clone(), "/healthz", "/healthz", Body::None, 200),
        row(get.clone(), "/readyz", "/readyz", Body::None, 503),
        row(get.clone(), "/metrics", "/metrics", Body::None, 200),
        row(get, "/openapi.json", "/openapi.json", Body::None, 200),
    ];

    // Every route of the router has a row, and every row a route.
    let routes = route_list();
    let routed: BTreeSet<(String, &str)> = routes
        .iter()
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    let covered: BTreeSet<(String, &str)> = rows
        .iter()
        .map(|r| (r.method.to_string(), r.template))
        .collect();
    assert_eq!(
        routed, covered,
        "the matrix has one row per route of the router"
    );

    let mut n = 0;
    let mut checked = 0;
    for row in &rows {
        let access = routes
            .iter()
            .find(|r| r.method == row.method && r.path == row.template)
            .expect("a route")
            .access;
        for who in EVERYONE {
            n += 1;
            let mut path = row.path.replace("{n}", &n.to_string());
            if path.contains("/v1/orders/SO-") && path.ends_with("/cancellations") {
                let number = &path["/v1/orders/".len()..path.len() - "/cancellations".len()];
                service.put_order(number, &sample_order("C-1")).await;
            }
            if path.contains("{key}") {
                let a = service
                    .call(
                        Method::POST,
                        "/v1/admin/api-keys",
                        Some(ADMIN),
                        Some(&json!({"name": format!("to revoke {n}"), "role": "service"})),
                    )
                    .await;
                path = path.replace("{key}", a.body["id"].as_str().expect("an id"));
            }
            let body = match &row.body {
                // Staff must give a reason; a customer's default is its own.
                Body::Json(_) if path.ends_with("/cancellations") && role_is_staff(who) => {
                    Body::Json(json!({"cancellationReason": "OUT_OF_STOCK"}))
                }
                Body::Json(b) => Body::Json(
                    serde_json::from_str(&b.to_string().replace("{n}", &n.to_string())).unwrap(),
                ),
                other => other.clone(),
            };
            let authorization = callers.authorization(who);
            let answer = send(
                &service,
                row.method.clone(),
                &path,
                authorization.as_deref(),
                &body,
            )
            .await;
            let (status, code) = expected(row, access, who);
            let what = format!("{who:?} {} {path}: {}", row.method, answer.body);
            assert_eq!(answer.status.as_u16(), status, "{what}");
            if let Some(code) = code {
                assert_eq!(answer.code(), code, "{what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, routes.len() * EVERYONE.len());
}

fn role_is_staff(who: Who) -> bool {
    matches!(who, Who::Admin | Who::Service)
}

/// The role is checked before the body is read: a key whose role may not
/// use a route gets `403 forbidden` whatever it sends — an empty object, a
/// body of the wrong type, bytes that are not JSON — and so never learns
/// the route's schema from a `400` or `422`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_is_checked_before_the_body_is_read() {
    let service = TestService::start_without_workers().await;
    let staff = service.key("service", None).await;
    let customer = service.key("customer", Some("C-1")).await;
    let mut checked = 0;
    for route in route_list() {
        if route.method != Method::PUT && route.method != Method::POST {
            continue;
        }
        let path = route
            .path
            .replace("{orderNumber}", "SO-1")
            .replace("{preset}", "insite")
            .replace("{website}", "main")
            .replace("{name}", "erp")
            .replace("{id}", "some-id");
        for (role, token) in [(Role::Service, &staff), (Role::Customer, &customer)] {
            if route.access.admits(role) {
                continue;
            }
            for (content_type, bytes) in [
                ("application/json", b"{}".to_vec()),
                ("application/json", b"[1, 2]".to_vec()),
                (
                    "application/json",
                    b"{\"cancellableOrderStatuses\":".to_vec(),
                ),
                ("text/plain", b"not json".to_vec()),
            ] {
                let a = service
                    .raw(
                        route.method.clone(),
                        &path,
                        Some(token),
                        content_type,
                        bytes.clone(),
                    )
                    .await;
                let what = format!(
                    "{} {} as {} with {:?}: {}",
                    route.method,
                    route.path,
                    role.as_str(),
                    String::from_utf8_lossy(&bytes),
                    a.body
                );
                assert_eq!(a.status, StatusCode::FORBIDDEN, "{what}");
                assert_eq!(a.code(), "forbidden", "{what}");
                checked += 1;
            }
        }
    }
    // Every admin write, for both roles; the staff writes for customers.
    assert!(checked >= 4 * 20, "{checked}");
    // The issue's own example, word for word.
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/settings",
            Some(&staff),
            Some(&json!({})),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(!a.body.to_string().contains("cancellableOrderStatuses"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_keys_are_bound_to_their_customer() {
    let service = TestService::start().await;
    service.configure_insite().await;
    service.put_order("SO-1", &sample_order("C-1")).await;
    for body in [
        json!({"name": "shop", "role": "customer"}),
        json!({"name": "shop", "role": "root"}),
        json!({"role": "service"}),
        json!({"name": "", "role": "service"}),
        json!({"name": "shop", "role": "service", "expiresAt": "2001-01-01T00:00:00Z"}),
        json!({"name": "shop", "role": "service", "expiresAt": "next week"}),
    ] {
        let a = service
            .call(Method::POST, "/v1/admin/api-keys", Some(ADMIN), Some(&body))
            .await;
        assert_eq!(a.code(), "validation-failed", "{body}: {}", a.body);
    }
    let a = service
        .call(
            Method::POST,
            "/v1/admin/api-keys",
            Some(ADMIN),
            Some(&json!({"name": "shop C-2", "role": "customer", "customerNumber": "C-2"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body["role"], "customer");
    assert_eq!(a.body["customerNumber"], "C-2");
    assert_eq!(a.body["name"], "shop C-2");
    let other = a.body["token"].as_str().expect("token").to_owned();
    let a = service
        .call(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(&other),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "order-not-found");
}

/// A refusal sent before the body was read (the role is checked first) still
/// reaches a client that is sending a large body: the service reads the
/// rest and throws it away rather than resetting the connection under the
/// client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_before_the_body_is_read_reaches_a_client_sending_a_large_body() {
    let service = TestService::start_without_workers().await;
    let service_key = service.key("service", None).await;
    let upload = || {
        service
            .client
            .put(format!("{}/v1/admin/plugins/some-plugin", service.base))
            .bearer_auth(&service_key)
            .header("content-type", "application/wasm")
    };
    refused_ten_times_while_sending(upload, StatusCode::FORBIDDEN, "forbidden").await;
}

/// Sends `request` with a 4 MiB body ten times; each answer must arrive
/// whole, as the refusal `status` with the problem `code`.
async fn refused_ten_times_while_sending(
    request: impl Fn() -> reqwest::RequestBuilder,
    status: StatusCode,
    code: &str,
) {
    let body = vec![b'x'; 4 * 1024 * 1024];
    for round in 0..10 {
        let response = request()
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the answer was lost: {e:?}"));
        assert_eq!(response.status(), status, "round {round}");
        let problem: serde_json::Value = response.json().await.expect("a problem");
        assert_eq!(problem["code"], code);
    }
}

/// So does the refusal of an overlong URI, which comes before the route
/// is even chosen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_uri_is_refused_to_a_client_sending_a_large_body() {
    let service = TestService::start_without_workers().await;
    let order = "x".repeat(rescind_host::api::URI_LIMIT);
    let put = || {
        service
            .client
            .put(format!("{}/v1/orders/{order}", service.base))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
    };
    refused_ten_times_while_sending(put, StatusCode::URI_TOO_LONG, "uri-too-long").await;
}
