//! The ERP exchange of each attempt, as staff see it on `GET
//! /v1/admin/jobs/{id}`: jobs delivered for real by the bundled plugins to
//! loopback ERPs, what each plugin sent and what the ERP answered, with
//! credentials and the connection's secrets redacted and bodies bounded.

use reqwest::{Method, StatusCode};
use rescind_host::plugins::{MAX_RECORDED_BODY_BYTES, body_cut_marker};
use rescind_tests::erp_server::{ErpServer, Scripted};
use rescind_tests::fakes::aaas::{AaasAuth, AaasFake};
use serde_json::{Value, json};

use crate::hotload_support::{cancel_new_order, configure_with_key, settled_job};
use crate::service::{ADMIN, TestService};

const AAAS_TOKEN: &str = "exchange-aaas-t0ken-s3cret";
const SIGNING_KEY: &str = "exchange-webhook-signing-key";

/// The value of header `name` in a recorded header list.
fn header<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    headers
        .as_array()?
        .iter()
        .find(|h| h["name"] == name)
        .and_then(|h| h["value"].as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_shows_what_the_plugin_sent_and_what_the_erp_answered_without_the_token() {
    let erp = AaasFake::start(AaasAuth::Bearer(AAAS_TOKEN.into())).await;
    erp.add_order("B1", "C-1", "ERP-1001", &[1, 2, 3]);
    let service = TestService::start().await;
    service.configure_insite().await;
    service
        .configure_erp_job(
            &json!({"baseUrl": erp.base_url(), "allowedHosts": [erp.authority()],
                    "secrets": {"apiToken": AAAS_TOKEN}}),
            "aaas",
            json!({"maxAttempts": 3, "initialBackoffMs": 10, "maxBackoffMs": 20}),
        )
        .await;
    let job = cancel_new_order(&service, "SO-1").await;
    let settled = settled_job(&service, &job).await;
    assert_eq!(settled["state"], "succeeded", "{settled}");

    let attempt = &settled["attemptHistory"][0];
    let exchange = attempt["exchange"].as_array().expect("an exchange array");
    assert_eq!(exchange.len(), 1, "{attempt}");
    assert_eq!(attempt["exchangeNotRecorded"], 0);
    let exchange = &exchange[0];
    assert_eq!(exchange["method"], "POST");
    assert_eq!(
        exchange["url"],
        erp.base_url() + "/businesses/B1/customers/C-1/orders/ERP-1001/cancellations"
    );
    let sent = &exchange["requestHeaders"];
    assert_eq!(header(sent, "authorization"), Some("[redacted]"));
    assert_eq!(header(sent, "content-type"), Some("application/json"));
    assert_eq!(
        header(sent, "idempotency-key"),
        settled["requestId"].as_str()
    );
    let request_body: Value =
        serde_json::from_str(exchange["requestBody"]["text"].as_str().expect("text"))
            .expect("the JSON the plugin sent");
    assert_eq!(
        exchange["requestBody"]["bytes"],
        exchange["requestBody"]["text"].as_str().unwrap().len()
    );
    assert!(request_body["items"].is_array(), "{request_body}");
    assert_eq!(exchange["status"], 201);
    let answered = exchange["responseBody"]["text"].as_str().expect("text");
    let reference = settled["erpReference"].as_str().expect("a reference");
    assert!(answered.contains(reference), "{answered}");
    assert!(exchange["durationMs"].is_u64());
    assert_eq!(exchange["error"], Value::Null);
    // What the ERP received is what the exchange says was sent.
    assert_eq!(erp.accepted().len(), 1);

    // The token is nowhere in the answer: not in a header, a body, the log.
    let whole = settled.to_string();
    assert!(!whole.contains(AAAS_TOKEN), "{whole}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_attempt_keeps_its_own_exchange_and_long_bodies_are_cut_with_the_marker() {
    let erp = ErpServer::signed(SIGNING_KEY).await;
    let long = format!(
        r#"{{"id": "ERP-LONG", "note": "{}"}}"#,
        "n".repeat(3 * MAX_RECORDED_BODY_BYTES)
    );
    // The first answer echoes the signing key, in a header and the body.
    let mut echo = Scripted::json(
        503,
        &format!(r#"{{"message": "maintenance", "echo": "{SIGNING_KEY}"}}"#),
    );
    echo.headers.extend([
        ("x-echo".to_owned(), format!("key={SIGNING_KEY}")),
        ("set-cookie".to_owned(), "session=abc; HttpOnly".to_owned()),
    ]);
    erp.script([echo, Scripted::json(201, &long)]);
    let service = TestService::start().await;
    configure_with_key(&service, &erp, "webhook", 5, SIGNING_KEY).await;
    let job = cancel_new_order(&service, "SO-2").await;
    let settled = settled_job(&service, &job).await;
    assert_eq!(settled["state"], "succeeded", "{settled}");
    assert_eq!(settled["erpReference"], "ERP-LONG");
    let history = settled["attemptHistory"].as_array().expect("history");
    assert_eq!(history.len(), 2);

    // What each attempt handed the plugin, for a replay: the cancellation
    // in the WIT's shape with that attempt's number, the settings, the
    // secrets by name only.
    for number in [1, 2] {
        let input = service
            .call(
                Method::GET,
                &format!("/v1/admin/jobs/{job}/attempts/{number}/input"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(input.status, StatusCode::OK, "{}", input.body);
        let body = &input.body;
        assert_eq!(body["attempt"], number, "{body}");
        assert_eq!(body["cancellation"]["attempt"], number, "{body}");
        assert_eq!(body["cancellation"]["order-number"], "SO-2", "{body}");
        assert_eq!(body["cancellation"]["request-id"], settled["requestId"]);
        assert_eq!(body["integrationProcessor"], "webhook");
        assert_eq!(body["connection"]["secrets"], json!(["signingKey"]));
        assert!(!body.to_string().contains(SIGNING_KEY), "{body}");
    }
    let missing = service
        .call(
            Method::GET,
            &format!("/v1/admin/jobs/{job}/attempts/3/input"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "attempt-not-found");

    let first = &history[0]["exchange"][0];
    assert_eq!(first["status"], 503);
    assert_eq!(
        first["responseBody"]["text"],
        r#"{"message": "maintenance", "echo": "[redacted]"}"#
    );
    let answered = &first["responseHeaders"];
    assert_eq!(header(answered, "x-echo"), Some("[redacted]"));
    assert_eq!(header(answered, "set-cookie"), Some("[redacted]"));
    assert_eq!(header(answered, "content-type"), Some("application/json"));
    let second = &history[1]["exchange"][0];
    assert_eq!(second["status"], 201);
    // The same request both times: the idempotency key and the body.
    assert_eq!(first["requestBody"], second["requestBody"]);
    assert_eq!(
        header(&first["requestHeaders"], "idempotency-key"),
        header(&second["requestHeaders"], "idempotency-key")
    );
    assert!(
        header(&second["requestHeaders"], "x-rescind-signature")
            .is_some_and(|s| s.starts_with("sha256=")),
        "{second}"
    );
    assert!(
        second["requestBody"]["text"]
            .as_str()
            .unwrap()
            .contains("\"orderNumber\":\"SO-2\"")
    );

    // 49 KiB answered, 16 KiB kept, the marker saying so.
    let body = &second["responseBody"];
    assert_eq!(body["bytes"], long.len());
    let text = body["text"].as_str().expect("text");
    assert!(text.len() <= MAX_RECORDED_BODY_BYTES, "{}", text.len());
    assert!(text.starts_with(r#"{"id": "ERP-LONG", "note": "nnn"#));
    assert!(
        text.ends_with(&body_cut_marker(long.len() as u64)),
        "{}",
        &text[text.len() - 80..]
    );

    assert!(!settled.to_string().contains(SIGNING_KEY));
}
