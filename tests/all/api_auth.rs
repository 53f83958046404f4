//! The authorization matrix: every route, with no token, a customer key, a
//! service key and the admin token.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api_cancel::configure_job;
use crate::service::{ADMIN, TestService, sample_order};

/// Who may call a route.
#[derive(Clone, Copy, Debug)]
enum Allowed {
    /// Anyone, no token.
    Public,
    /// Admin only.
    Admin,
    /// Admin and service.
    Staff,
    /// Admin, service and the order's customer.
    Everyone,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_api_md_says() {
    // No workers: the job must stay queued for the retry checks at the end.
    let service = TestService::start_without_workers().await;
    service.configure_insite().await;
    configure_job(
        &service,
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        json!({"maxAttempts": 1, "initialBackoffMs": 1, "maxBackoffMs": 1}),
    )
    .await;
    let customer = service.key("customer", Some("C-1")).await;
    let staff = service.key("service", None).await;
    let cancellation = {
        service.put_order("SO-0", &sample_order("C-1")).await;
        let a = service
            .cancel("SO-0", &json!({"cancellationReason": "OUT_OF_STOCK"}))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        a.body["internalRequestId"].as_str().expect("id").to_owned()
    };
    let job = {
        let a = service
            .call(
                Method::GET,
                "/v1/admin/jobs?orderNumber=SO-0",
                Some(ADMIN),
                None,
            )
            .await;
        a.body[0]["id"].as_str().expect("job").to_owned()
    };
    let website = json!({"allowCancellationRequest": true});
    let settings =
        json!({"cancellableOrderStatuses": ["Submitted"], "cancelledStatus": "Cancelled"});
    let mappings = json!([{"erpCode": "Submitted", "status": "Submitted", "allowCancellation": true},
                          {"erpCode": "Cancelled", "status": "Cancelled", "allowCancellation": false}]);
    let connection = json!({"baseUrl": "http://127.0.0.1:9", "allowedHosts": ["127.0.0.1:9"]});
    let definition =
        json!({"jobType": "Execution", "connection": "erp", "integrationProcessor": "webhook"});

    // (method, path, body, who may, expected success status)
    let routes: Vec<(Method, String, Option<Value>, Allowed, u16)> = vec![
        (Method::GET, "/healthz".into(), None, Allowed::Public, 200),
        (Method::GET, "/metrics".into(), None, Allowed::Public, 200),
        (
            Method::GET,
            "/openapi.json".into(),
            None,
            Allowed::Public,
            200,
        ),
        (
            Method::PUT,
            "/v1/orders/SO-{n}".into(),
            Some(sample_order("C-1")),
            Allowed::Staff,
            201,
        ),
        (
            Method::GET,
            "/v1/orders/SO-0".into(),
            None,
            Allowed::Staff,
            200,
        ),
        (
            Method::POST,
            "/v1/orders/SO-0/status".into(),
            Some(json!({"status": "Cancelled"})),
            Allowed::Staff,
            200,
        ),
        (
            Method::POST,
            "/v1/orders/SO-{n}/cancellations".into(),
            Some(json!({})),
            Allowed::Everyone,
            201,
        ),
        (
            Method::GET,
            format!("/v1/cancellations/{cancellation}"),
            None,
            Allowed::Everyone,
            200,
        ),
        (
            Method::POST,
            "/v1/admin/api-keys".into(),
            Some(json!({"role": "service"})),
            Allowed::Admin,
            201,
        ),
        (
            Method::GET,
            "/v1/admin/status-mappings".into(),
            None,
            Allowed::Admin,
            200,
        ),
        (
            Method::PUT,
            "/v1/admin/status-mappings".into(),
            Some(mappings),
            Allowed::Admin,
            200,
        ),
        (
            Method::GET,
            "/v1/admin/settings".into(),
            None,
            Allowed::Admin,
            200,
        ),
        (
            Method::PUT,
            "/v1/admin/settings".into(),
            Some(settings),
            Allowed::Admin,
            200,
        ),
        (
            Method::POST,
            "/v1/admin/presets/insite".into(),
            None,
            Allowed::Admin,
            200,
        ),
        (
            Method::GET,
            "/v1/admin/websites/main".into(),
            None,
            Allowed::Admin,
            200,
        ),
        (
            Method::PUT,
            "/v1/admin/websites/main".into(),
            Some(website),
            Allowed::Admin,
            200,
        ),
        (
            Method::GET,
            "/v1/admin/connections/erp".into(),
            None,
            Allowed::Admin,
            200,
        ),
        (
            Method::PUT,
            "/v1/admin/connections/erp".into(),
            Some(connection),
            Allowed::Admin,
            200,
        ),
        (
            Method::GET,
            "/v1/admin/job-definitions/OrderCancel".into(),
            None,
            Allowed::Admin,
            200,
        ),
        (
            Method::PUT,
            "/v1/admin/job-definitions/OrderCancel".into(),
            Some(definition),
            Allowed::Admin,
            200,
        ),
        (
            Method::POST,
            "/v1/admin/job-definitions/OrderCancel/runs".into(),
            Some(json!({"parameters": {"OrderNumber": "SO-0"}})),
            Allowed::Staff,
            201,
        ),
        (
            Method::GET,
            "/v1/admin/jobs".into(),
            None,
            Allowed::Staff,
            200,
        ),
        (
            Method::GET,
            format!("/v1/admin/jobs/{job}"),
            None,
            Allowed::Staff,
            200,
        ),
    ];

    let mut n = 0;
    for (method, path, body, allowed, ok) in routes {
        for (who, token) in [
            ("nobody", None),
            ("customer", Some(customer.as_str())),
            ("service", Some(staff.as_str())),
            ("admin", Some(ADMIN)),
        ] {
            // Routes that create something get a fresh order each time.
            n += 1;
            let path = path.replace("{n}", &n.to_string());
            if path.contains("/cancellations") && method == Method::POST {
                service
                    .put_order(
                        &path["/v1/orders/".len()..path.len() - "/cancellations".len()],
                        &sample_order("C-1"),
                    )
                    .await;
            }
            let body = body.as_ref().map(|b| {
                let mut b = b.clone();
                if path.ends_with("/cancellations") && who != "customer" {
                    b["cancellationReason"] = json!("OUT_OF_STOCK");
                }
                b
            });
            let answer = service
                .call(method.clone(), &path, token, body.as_ref())
                .await;
            let may = match allowed {
                Allowed::Public => true,
                Allowed::Admin => who == "admin",
                Allowed::Staff => who == "admin" || who == "service",
                Allowed::Everyone => who != "nobody",
            };
            let what = format!("{who} {method} {path}: {}", answer.body);
            if may {
                assert_eq!(answer.status.as_u16(), ok, "{what}");
            } else if who == "nobody" {
                assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(answer.code(), "unauthenticated", "{what}");
            } else {
                assert_eq!(answer.status, StatusCode::FORBIDDEN, "{what}");
                assert_eq!(answer.code(), "forbidden", "{what}");
            }
        }
    }

    // Retry: only failed jobs; the state check comes after authorisation.
    for (token, status) in [
        (None, 401),
        (Some(customer.as_str()), 403),
        (Some(staff.as_str()), 409),
        (Some(ADMIN), 409),
    ] {
        let a = service
            .call(
                Method::POST,
                &format!("/v1/admin/jobs/{job}/retry"),
                token,
                None,
            )
            .await;
        assert_eq!(a.status.as_u16(), status, "{}", a.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_keys_are_bound_to_their_customer() {
    let service = TestService::start().await;
    service.configure_insite().await;
    service.put_order("SO-1", &sample_order("C-1")).await;
    let a = service
        .call(
            Method::POST,
            "/v1/admin/api-keys",
            Some(ADMIN),
            Some(&json!({"role": "customer"})),
        )
        .await;
    assert_eq!(a.code(), "validation-failed", "{}", a.body);
    let a = service
        .call(
            Method::POST,
            "/v1/admin/api-keys",
            Some(ADMIN),
            Some(&json!({"role": "root"})),
        )
        .await;
    assert_eq!(a.code(), "validation-failed", "{}", a.body);
    let a = service
        .call(
            Method::POST,
            "/v1/admin/api-keys",
            Some(ADMIN),
            Some(&json!({"role": "customer", "customerNumber": "C-2"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body["role"], "customer");
    assert_eq!(a.body["customerNumber"], "C-2");
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
    let body = vec![b'x'; 4 * 1024 * 1024];
    for round in 0..10 {
        let response = service
            .client
            .put(format!("{}/v1/admin/plugins/some-plugin", service.base))
            .bearer_auth(&service_key)
            .header("content-type", "application/wasm")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the answer was lost: {e:?}"));
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "round {round}");
        let problem: serde_json::Value = response.json().await.expect("a problem");
        assert_eq!(problem["code"], "forbidden");
    }
}
