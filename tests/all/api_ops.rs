//! Operations endpoints: health, readiness, metrics, the OpenAPI document,
//! request ids; and that secrets never come back.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::service::{ADMIN, TestService, sample_order};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_openapi() {
    let service = TestService::start_without_workers().await;
    let a = service.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["status"], "ok");
    assert!(a.headers.contains_key("x-request-id"));

    // Without workers the service is not ready, and says why.
    let a = service.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert_eq!(a.body["database"], true);
    assert_eq!(a.body["workers"], false);

    service.configure_insite().await;
    service.put_order("SO-1", &sample_order("C-1")).await;
    let a = service
        .cancel("SO-1", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let a = service
        .cancel("SO-1", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(a.code(), "order-not-cancellable");

    let text = service.metrics_text().await;
    for needle in [
        "rescind_http_requests_total{method=\"POST\",route=\"/v1/orders/{orderNumber}/cancellations\",status=\"201\"} 1",
        "rescind_http_requests_total{method=\"POST\",route=\"/v1/orders/{orderNumber}/cancellations\",status=\"409\"} 1",
        "rescind_cancellations_total{outcome=\"committed\"} 1",
        "rescind_cancellations_total{outcome=\"order-not-cancellable\"} 1",
        "rescind_jobs{state=\"queued\"} 0",
        "rescind_plugin_call_seconds_bucket",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }

    let a = service.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["openapi"], "3.1.0");
    assert!(a.body["paths"]["/v1/orders/{orderNumber}/cancellations"]["post"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_secrets_are_write_only() {
    let service = TestService::start_without_workers().await;
    let put = |secrets: Option<serde_json::Value>| {
        let mut body = json!({"baseUrl": "https://erp.example.com/api",
                              "allowedHosts": ["erp.example.com:443"],
                              "settings": {"businessCode": "B1"}});
        if let Some(s) = secrets {
            body["secrets"] = s;
        }
        body
    };
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/connections/erp",
            Some(ADMIN),
            Some(&put(Some(json!({"siteToken": "tok-very-secret"})))),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["secrets"], json!(["siteToken"]));
    assert!(!a.body.to_string().contains("tok-very-secret"));
    // Leaving secrets out keeps them.
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/connections/erp",
            Some(ADMIN),
            Some(&put(None)),
        )
        .await;
    assert_eq!(a.body["secrets"], json!(["siteToken"]));
    let stored = service
        .running
        .as_ref()
        .expect("running")
        .state
        .store
        .connection("erp")
        .await
        .expect("store")
        .expect("exists");
    assert_eq!(stored.secrets["siteToken"], "tok-very-secret");
    assert!(!format!("{stored:?}").contains("tok-very-secret"));
    // Bad URL and host entries are refused with every field named.
    let mut bad = put(None);
    bad["baseUrl"] = json!("ftp://erp");
    bad["allowedHosts"] = json!(["https://erp.example.com/api"]);
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/connections/erp",
            Some(ADMIN),
            Some(&bad),
        )
        .await;
    assert_eq!(a.code(), "validation-failed");
    assert_eq!(a.body["errors"].as_array().map(Vec::len), Some(2));
}
