use rescind_guest::http::{self, Method, Response};
use rescind_guest::testing::{Connection, RecordedRequest, sample_cancellation};
use rescind_guest::{CancellationReason, Money, Refund};
use serde_json::{Value, json};

use super::*;

const BASE: &str = "https://aaas.example.com/api/v1";
const REQUEST_ID: &str = "6f1d2c3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f";
const INTERNAL_ID: &str = "23c9579b-baaf-468f-a529-f876226e183c";

fn aaas() -> Connection {
    Connection::new(BASE)
        .secret(API_TOKEN_SECRET, "t0k-secret")
        .respond_with(Response::new(201).with_json(&json!({"internalRequestId": INTERNAL_ID})))
}

fn only_request(erp: &Connection) -> RecordedRequest {
    let requests = erp.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.into_iter().next().unwrap()
}

/// Order 1001 (lines 1 to 4); line 3 alone cancelled, no refund, no invoice.
fn partial() -> Cancellation {
    let base = sample_cancellation();
    let line = base.lines[2].clone();
    Cancellation {
        full: false,
        lines: vec![line],
        all_line_numbers: vec![1, 2, 3, 4],
        invoice_reference: None,
        refund: None,
        bank_details: None,
        forced_cancel: false,
        forced_cancel_with_refund: false,
        ..base
    }
}

#[test]
fn a_full_cancellation_posts_every_line_with_the_refund_account() {
    let erp = aaas();
    let ack = erp.submit::<Aaas>(&sample_cancellation()).unwrap();

    assert_eq!(ack.erp_reference.as_deref(), Some(INTERNAL_ID));
    assert_eq!(
        ack.message.as_deref(),
        Some("AaaS accepted the cancellation of order ERP-1001 (items 1, 2, 3)")
    );
    let request = only_request(&erp);
    assert_eq!(request.method, Method::Post);
    assert_eq!(
        request.url,
        "https://aaas.example.com/api/v1/businesses/B1/customers/C-1/orders/ERP-1001/cancellations"
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("authorization"), Some("Bearer t0k-secret"));
    assert_eq!(request.header("idempotency-key"), Some(REQUEST_ID));
    assert_eq!(
        request.json::<Value>().unwrap(),
        json!({
            "items": [{"orderItemReference": 1}, {"orderItemReference": 2}, {"orderItemReference": 3}],
            "cancellationDate": "2024-09-09",
            "cancellationReason": "OUT_OF_STOCK",
            "invoiceReference": "IDE12345678901",
            "bankDetails": {
                "accountOwner": "Max Mustermann",
                "iban": "DE89370400440532013000",
                "bic": "COBADEFFXXX"
            }
        })
    );
}

#[test]
fn a_full_cancellation_lists_lines_cancelled_before_too() {
    // Line 1 was cancelled by an earlier partial cancellation; this one
    // cancels the rest, which AaaS counts as the full order.
    let cancellation = Cancellation {
        lines: sample_cancellation().lines[1..].to_vec(),
        ..sample_cancellation()
    };
    let erp = aaas();
    erp.submit::<Aaas>(&cancellation).unwrap();
    let body: Value = only_request(&erp).json().unwrap();
    assert_eq!(
        body["items"],
        json!([{"orderItemReference": 1}, {"orderItemReference": 2}, {"orderItemReference": 3}])
    );
}

#[test]
fn a_partial_cancellation_names_only_its_lines_and_leaves_out_absent_fields() {
    let erp = aaas();
    let ack = erp.submit::<Aaas>(&partial()).unwrap();
    assert_eq!(
        ack.message.as_deref(),
        Some("AaaS accepted the cancellation of order ERP-1001 (items 3)")
    );
    let body: Value = only_request(&erp).json().unwrap();
    // No invoice, no refund: the keys are absent, not null.
    assert_eq!(
        body,
        json!({
            "items": [{"orderItemReference": 3}],
            "cancellationDate": "2024-09-09",
            "cancellationReason": "OUT_OF_STOCK"
        })
    );
}

#[test]
fn every_reason_is_sent_as_its_api_code() {
    for reason in CancellationReason::ALL {
        let erp = aaas();
        let cancellation = Cancellation {
            reason,
            ..partial()
        };
        erp.submit::<Aaas>(&cancellation).unwrap();
        let body: Value = only_request(&erp).json().unwrap();
        assert_eq!(body["cancellationReason"], reason.code());
    }
}

#[test]
fn bank_details_only_go_with_a_refund_to_an_alternative_account() {
    // Refund to the original payment method: the account is not sent.
    let to_original = Cancellation {
        refund: Some(Refund {
            amount: Money::new(23205, "EUR"),
            to: RefundDestination::OriginalPaymentMethod,
        }),
        ..sample_cancellation()
    };
    let erp = aaas();
    erp.submit::<Aaas>(&to_original).unwrap();
    let body: Value = only_request(&erp).json().unwrap();
    assert!(body.get("bankDetails").is_none(), "{body}");

    // A SEPA account without a BIC: the key is left out.
    let mut sepa = sample_cancellation();
    sepa.bank_details.as_mut().unwrap().bic = None;
    let erp = aaas();
    erp.submit::<Aaas>(&sepa).unwrap();
    let body: Value = only_request(&erp).json().unwrap();
    assert_eq!(
        body["bankDetails"],
        json!({"accountOwner": "Max Mustermann", "iban": "DE89370400440532013000"})
    );
}

#[test]
fn a_refund_to_an_account_without_its_details_is_refused_before_sending() {
    let cancellation = Cancellation {
        bank_details: None,
        ..sample_cancellation()
    };
    let erp = aaas();
    let error = erp.submit::<Aaas>(&cancellation).unwrap_err();
    assert_eq!(
        error,
        SubmitError::Rejected(
            "the refund of order 1001 goes to a bank account but the cancellation carries no bank details"
                .into()
        )
    );
    assert!(erp.requests().is_empty());
}

#[test]
fn path_segments_are_encoded_and_fall_back_to_the_order_number() {
    let cancellation = Cancellation {
        order_number: "WEB/2024 17?x".into(),
        erp_order_number: None,
        customer_number: "C 1".into(),
        business_code: "B&1".into(),
        ..sample_cancellation()
    };
    let erp = aaas();
    erp.submit::<Aaas>(&cancellation).unwrap();
    assert_eq!(
        only_request(&erp).path(),
        "/api/v1/businesses/B%261/customers/C%201/orders/WEB%2F2024%2017%3Fx/cancellations"
    );
}

#[test]
fn the_business_code_setting_wins_over_the_orders() {
    let erp = aaas().setting(BUSINESS_CODE_SETTING, "ACME-DE");
    erp.submit::<Aaas>(&sample_cancellation()).unwrap();
    assert!(
        only_request(&erp)
            .path()
            .starts_with("/api/v1/businesses/ACME-DE/customers/C-1/"),
        "{}",
        only_request(&erp).url
    );

    let no_code = Cancellation {
        business_code: String::new(),
        ..sample_cancellation()
    };
    let error = aaas().submit::<Aaas>(&no_code).unwrap_err();
    assert!(
        matches!(&error, SubmitError::Misconfigured(m) if m.contains("`businessCode`")),
        "{error}"
    );
}

#[test]
fn basic_auth_uses_the_username_and_password_secrets() {
    let erp = Connection::new(BASE)
        .setting(AUTH_SETTING, "basic")
        .secret(USERNAME_SECRET, "Aladdin")
        .secret(PASSWORD_SECRET, "open sesame")
        .respond_with(Response::new(201).with_json(&json!({"internalRequestId": INTERNAL_ID})));
    erp.submit::<Aaas>(&sample_cancellation()).unwrap();
    assert_eq!(
        only_request(&erp).header("authorization"),
        Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    );
}

#[test]
fn missing_or_wrong_configuration_names_what_to_fix_and_sends_nothing() {
    let cases = [
        (
            Connection::new(BASE),
            "the connection has no secret `apiToken`: add it to the connection's \"secrets\"",
        ),
        (
            Connection::new(BASE)
                .setting(AUTH_SETTING, "basic")
                .secret(USERNAME_SECRET, "u"),
            "the connection has no secret `password`: add it to the connection's \"secrets\"",
        ),
        (
            Connection::new(BASE)
                .setting(AUTH_SETTING, "digest")
                .secret(API_TOKEN_SECRET, "t"),
            "setting `auth` of the connection is `digest`; expected one of `bearer`, `basic`",
        ),
    ];
    for (connection, expected) in cases {
        let erp = connection.respond_with(Response::new(201));
        let error = erp.submit::<Aaas>(&sample_cancellation()).unwrap_err();
        assert_eq!(error, SubmitError::Misconfigured(expected.into()));
        assert!(erp.requests().is_empty());
    }
}

#[test]
fn failures_follow_the_shared_mapping() {
    let validation = Response::new(400).with_json(&json!({
        "message": "orderItemReference 9 does not exist in order ERP-1001"
    }));
    let error = aaas()
        .respond_with(validation)
        .submit::<Aaas>(&sample_cancellation())
        .unwrap_err();
    assert_eq!(
        error,
        SubmitError::Rejected(
            "the ERP answered 400 Bad Request: orderItemReference 9 does not exist in order ERP-1001"
                .into()
        )
    );

    for status in [408, 429, 500, 503] {
        let error = aaas()
            .respond_with(Response::new(status))
            .submit::<Aaas>(&sample_cancellation())
            .unwrap_err();
        assert!(error.is_transient(), "{status}: {error}");
    }

    let refused = aaas().respond(|_| {
        Err(http::Error::Connection {
            host: "aaas.example.com".into(),
            detail: "connection refused".into(),
        })
    });
    assert!(
        refused
            .submit::<Aaas>(&sample_cancellation())
            .unwrap_err()
            .is_transient()
    );
}

#[test]
fn a_success_without_an_internal_request_id_is_not_taken_for_an_acceptance() {
    for answer in [
        Response::new(201).with_json(&json!({})),
        Response::new(201).with_json(&json!({"internalRequestId": " "})),
        Response::new(200).with_text("OK"),
    ] {
        let error = aaas()
            .respond_with(answer.clone())
            .submit::<Aaas>(&sample_cancellation())
            .unwrap_err();
        assert!(
            matches!(error, SubmitError::Rejected(_)),
            "{answer:?}: {error}"
        );
    }
}

#[test]
fn retries_send_the_same_request_under_the_same_key() {
    let erp = aaas();
    erp.submit::<Aaas>(&sample_cancellation()).unwrap();
    erp.submit::<Aaas>(&Cancellation {
        attempt: 4,
        ..sample_cancellation()
    })
    .unwrap();
    let requests = erp.requests();
    assert_eq!(requests[0].body, requests[1].body);
    assert_eq!(requests[1].header("idempotency-key"), Some(REQUEST_ID));
}

#[test]
fn secrets_never_reach_the_log() {
    let erp = aaas();
    erp.submit::<Aaas>(&sample_cancellation()).unwrap();
    let logs = erp.logs();
    assert!(
        logs.iter().any(|line| line.message.contains("ERP-1001")),
        "{logs:?}"
    );
    assert!(logs.iter().all(|line| !line.message.contains("t0k-secret")));
}
