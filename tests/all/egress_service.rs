//! Egress through the running service: the API refuses what the runtime
//! would refuse, and a job whose ERP name resolves to loopback fails
//! `misconfigured` once, with nothing sent, while the service keeps serving.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rescind_tests::erp_server::ErpServer;
use serde_json::{Value, json};

use crate::service::{ADMIN, TestService, sample_order};

async fn put_connection(service: &TestService, body: &Value) -> crate::service::Answer {
    service
        .call(
            Method::PUT,
            "/v1/admin/connections/erp",
            Some(ADMIN),
            Some(body),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_validated_by_the_runtimes_own_rules() {
    let service = TestService::start_without_workers().await;
    let with_hosts =
        |hosts: Value| json!({"baseUrl": "https://erp.example.com/api", "allowedHosts": hosts});

    let refused = [
        ("*", "would allow every host"),
        ("erp.example.com:0", "invalid port"),
        ("user:pw@erp.example.com", "user info"),
        ("https://erp.example.com/api", "more than a host"),
        ("169.254.169.254", "cloud metadata endpoint"),
        ("[fd00:ec2::254]:80", "cloud metadata endpoint"),
        ("metadata.google.internal", "cloud metadata endpoint"),
        ("0.0.0.0:80", "unspecified address"),
        ("2130706433", "write `127.0.0.1`"),
    ];
    for (entry, message) in refused {
        let a = put_connection(&service, &with_hosts(json!(["erp.example.com", entry]))).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{entry}: {}",
            a.body
        );
        assert_eq!(a.code(), "validation-failed");
        let errors = a.body["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 1, "{entry}: {}", a.body);
        assert_eq!(errors[0]["field"], "allowedHosts[1]");
        let text = errors[0]["message"].as_str().unwrap_or_default();
        assert!(
            text.contains(entry) && text.contains(message),
            "{entry}: {text}"
        );
    }
    // Nothing was stored by any of them.
    let a = service
        .call(Method::GET, "/v1/admin/connections/erp", Some(ADMIN), None)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);

    // Credentials in the base URL belong in secrets.
    let a = put_connection(
        &service,
        &json!({"baseUrl": "http://user:pw@erp.example.com", "allowedHosts": ["erp.example.com"]}),
    )
    .await;
    assert_eq!(a.code(), "validation-failed", "{}", a.body);
    assert_eq!(a.body["errors"][0]["field"], "baseUrl");
    assert!(
        a.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("put credentials in secrets"),
        "{}",
        a.body
    );
    // A CA must be a certificate.
    let a = put_connection(
        &service,
        &json!({"baseUrl": "https://erp.example.com", "allowedHosts": ["erp.example.com"],
                "caCertificates": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}),
    )
    .await;
    assert_eq!(a.code(), "validation-failed", "{}", a.body);
    assert_eq!(a.body["errors"][0]["field"], "caCertificates");

    // What the runtime accepts, the API accepts, and shows back.
    let a = put_connection(
        &service,
        &json!({"baseUrl": "https://erp.example.com/api",
                "allowedHosts": ["https://erp.example.com", "http://erp.example.com:8080",
                                 "*.example.com", "127.0.0.1:9000", "[::1]:9000"],
                "allowPrivateNetwork": true}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["allowPrivateNetwork"], true);
    assert_eq!(a.body["caCertificates"], Value::Null);
    let stored = service
        .running
        .as_ref()
        .expect("running")
        .state
        .store
        .connection("erp")
        .await
        .expect("store")
        .expect("stored");
    assert!(stored.allow_private_network);
    assert_eq!(stored.allowed_hosts.len(), 5);
}

/// Polls the job until it is `failed` or `succeeded` (bounded: 30 s).
async fn settled_job(service: &TestService, job: &str) -> Value {
    for _ in 0..600 {
        let a = service
            .call(
                Method::GET,
                &format!("/v1/admin/jobs/{job}"),
                Some(ADMIN),
                None,
            )
            .await;
        if ["succeeded", "failed"].contains(&a.body["state"].as_str().unwrap_or("")) {
            return a.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {job} did not settle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_erp_name_resolves_to_loopback_fails_misconfigured_and_sends_nothing() {
    let erp = ErpServer::start().await;
    let port = erp.authority().rsplit_once(':').expect("port").1.to_owned();
    let service = TestService::start_configured(true, |config| {
        config
            .plugins
            .resolve
            .insert("erp.customer.test", IpAddr::V4(Ipv4Addr::LOCALHOST));
    })
    .await;
    service.configure_insite().await;
    service
        .configure_erp_job(
            &json!({"baseUrl": format!("http://erp.customer.test:{port}"),
                    "allowedHosts": [format!("http://erp.customer.test:{port}")],
                    "settings": {"path": "/hooks/cancel"},
                    "secrets": {"signingKey": "egress-test-key"}}),
            "webhook",
            json!({"maxAttempts": 5, "initialBackoffMs": 10, "maxBackoffMs": 20}),
        )
        .await;

    service.put_order("SO-E1", &sample_order("C-1")).await;
    let a = service
        .cancel("SO-E1", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let job = a.body["erpSync"]["jobs"][0]["id"]
        .as_str()
        .expect("a job")
        .to_owned();

    // Meanwhile the service answers and cancels as usual.
    let health = service.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    service.put_order("SO-E2", &sample_order("C-1")).await;
    let other = service
        .cancel("SO-E2", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);

    let settled = settled_job(&service, &job).await;
    assert_eq!(settled["state"], "failed", "{settled}");
    let history = settled["attemptHistory"].as_array().expect("history");
    assert_eq!(history.len(), 1, "not retried: {settled}");
    assert_eq!(history[0]["outcome"], "misconfigured");
    assert_eq!(
        settled["lastError"].as_str().unwrap_or_default(),
        "misconfigured: egress refused: erp.customer.test resolved to 127.0.0.1 (loopback); \
         list the address or set allowPrivateNetwork on connection \"erp\""
    );
    assert!(
        erp.requests().is_empty(),
        "the loopback ERP received a request"
    );
}
