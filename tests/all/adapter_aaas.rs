//! The compiled aaas plugin, through the runtime, against the fake
//! Accounting-as-a-Service Cancel Order API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rescind_host::plugins::{
    BankDetails, CallLimits, CallOutcome, Cancellation, CancellationReason, ConnectionContext,
    Money, Plugin, Refund, RefundDestination,
};
use rescind_tests::erp_server::Scripted;
use rescind_tests::fakes::ClosedPort;
use rescind_tests::fakes::aaas::{AaasAuth, AaasFake};
use rescind_tests::plugin_fixtures::{plugin, sample_cancellation};
use serde_json::json;

const TOKEN: &str = "aaas-t0k3n-s3cret";
const REQUEST_ID: &str = "6f1d2c3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f";

fn aaas() -> Arc<Plugin> {
    plugin("aaas", rescind_test_artifacts::AAAS)
}

/// The fake with order ERP-1001 of customer C-1 in business B1, positions 1
/// to 3 (the sample cancellation's order).
async fn fake() -> AaasFake {
    let fake = AaasFake::start(AaasAuth::Bearer(TOKEN.into())).await;
    fake.add_order("B1", "C-1", "ERP-1001", &[1, 2, 3]);
    fake
}

fn connection(fake: &AaasFake) -> ConnectionContext {
    ConnectionContext {
        secrets: BTreeMap::from([("apiToken".to_owned(), TOKEN.to_owned())]),
        ..fake.connection()
    }
}

async fn submit(cancellation: &Cancellation, connection: &ConnectionContext) -> CallOutcome {
    aaas()
        .submit(cancellation.clone(), connection, &CallLimits::default())
        .await
        .outcome
}

fn rejected(outcome: &CallOutcome) -> &str {
    match outcome {
        CallOutcome::Rejected(message) => message,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Line 3 of order 1001 alone, no refund, under its own request id.
fn partial(request_id: &str) -> Cancellation {
    let sample = sample_cancellation();
    Cancellation {
        request_id: request_id.into(),
        full: false,
        lines: vec![sample.lines[2].clone()],
        refund: None,
        bank_details: None,
        invoice_reference: None,
        ..sample
    }
}

#[tokio::test]
async fn a_full_cancellation_lists_every_position_and_keeps_the_internal_request_id() {
    let fake = fake().await;

    let report = aaas()
        .submit(
            sample_cancellation(),
            &connection(&fake),
            &CallLimits::default(),
        )
        .await;

    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1, "{:?}", fake.requests());
    assert_eq!(
        report.outcome,
        CallOutcome::Accepted {
            erp_reference: Some(accepted[0].internal_request_id.clone()),
            message: Some(
                "AaaS accepted the cancellation of order ERP-1001 (items 1, 2, 3)".into()
            ),
        }
    );
    assert_eq!(
        accepted[0].body,
        json!({
            "items": [{"orderItemReference": 1}, {"orderItemReference": 2}, {"orderItemReference": 3}],
            "cancellationDate": "2024-09-09",
            "cancellationReason": "OUT_OF_STOCK",
            "invoiceReference": "IDE12345678901",
            "bankDetails": {"accountOwner": "Max Mustermann", "iban": "DE89370400440532013000", "bic": "COBADEFFXXX"}
        })
    );
    assert_eq!(accepted[0].idempotency_key.as_deref(), Some(REQUEST_ID));
    assert_eq!(fake.cancelled_positions("B1", "C-1", "ERP-1001"), [1, 2, 3]);
    let request = &fake.requests()[0];
    assert_eq!(
        request.path,
        "/api/v1/businesses/B1/customers/C-1/orders/ERP-1001/cancellations"
    );
    // The plugin logs what it sends and what AaaS answered, never the token.
    assert!(!report.log.is_empty());
    assert!(
        report.log.iter().all(|line| !line.message.contains(TOKEN)),
        "{:?}",
        report.log
    );
}

#[tokio::test]
async fn partial_cancellations_name_their_lines_and_the_rest_completes_the_order() {
    let fake = fake().await;
    let connection = connection(&fake);

    let outcome = submit(&partial("req-partial"), &connection).await;
    assert!(outcome.is_accepted(), "{outcome}");
    assert_eq!(fake.cancelled_positions("B1", "C-1", "ERP-1001"), [3]);
    assert_eq!(
        fake.accepted()[0].body,
        json!({"items": [{"orderItemReference": 3}], "cancellationDate": "2024-09-09",
               "cancellationReason": "OUT_OF_STOCK"})
    );

    // The same line again under another request: AaaS refuses, in its words.
    let again = submit(&partial("req-partial-again"), &connection).await;
    assert_eq!(
        rejected(&again),
        "the ERP answered 409 Conflict: orderItemReference 3 of order ERP-1001 is already cancelled"
    );

    // The rest: rescind calls it full, and AaaS wants every position listed.
    let sample = sample_cancellation();
    let rest = Cancellation {
        request_id: "req-rest".into(),
        lines: sample.lines[..2].to_vec(),
        refund: None,
        bank_details: None,
        ..sample
    };
    let outcome = submit(&rest, &connection).await;
    assert!(outcome.is_accepted(), "{outcome}");
    assert_eq!(fake.cancelled_positions("B1", "C-1", "ERP-1001"), [1, 2, 3]);
    assert_eq!(
        fake.accepted()[1].body["items"],
        json!([{"orderItemReference": 1}, {"orderItemReference": 2}, {"orderItemReference": 3}])
    );
}

#[tokio::test]
async fn refunds_to_an_alternative_account_carry_its_details() {
    let fake = fake().await;
    let connection = connection(&fake);
    let refund_to = |order: &str, iban: &str, bic: Option<&str>| Cancellation {
        request_id: format!("req-{order}"),
        erp_order_number: Some(order.into()),
        refund: Some(Refund {
            amount: Money {
                amount_minor: 23205,
                currency: "EUR".into(),
            },
            to: RefundDestination::BankAccount,
        }),
        bank_details: Some(BankDetails {
            account_owner: "Maria Silva".into(),
            iban: iban.into(),
            bic: bic.map(str::to_owned),
        }),
        ..sample_cancellation()
    };

    // Outside SEPA, with the BIC AaaS then requires.
    fake.add_order("B1", "C-1", "ERP-BR", &[1, 2, 3]);
    let outcome = submit(
        &refund_to(
            "ERP-BR",
            "BR1800360305000010009795493C1",
            Some("BOFABRSPXXX"),
        ),
        &connection,
    )
    .await;
    assert!(outcome.is_accepted(), "{outcome}");
    // Inside SEPA, without a BIC: the key is left out, not sent empty.
    fake.add_order("B1", "C-1", "ERP-CH", &[1, 2, 3]);
    let outcome = submit(
        &refund_to("ERP-CH", "CH9300762011623852957", None),
        &connection,
    )
    .await;
    assert!(outcome.is_accepted(), "{outcome}");
    let bodies: Vec<_> = fake
        .accepted()
        .into_iter()
        .map(|accepted| accepted.body["bankDetails"].clone())
        .collect();
    assert_eq!(
        bodies,
        [
            json!({"accountOwner": "Maria Silva", "iban": "BR1800360305000010009795493C1", "bic": "BOFABRSPXXX"}),
            json!({"accountOwner": "Maria Silva", "iban": "CH9300762011623852957"}),
        ]
    );

    // An IBAN AaaS does not accept: a rejection with its message.
    fake.add_order("B1", "C-1", "ERP-BAD", &[1, 2, 3]);
    let outcome = submit(
        &refund_to("ERP-BAD", "DE89370400440532013001", None),
        &connection,
    )
    .await;
    assert_eq!(
        rejected(&outcome),
        "the ERP answered 400 Bad Request: bankDetails.iban `DE89370400440532013001` is not a valid IBAN"
    );
    assert!(fake.cancelled_positions("B1", "C-1", "ERP-BAD").is_empty());

    // A refund to the original payment method sends no account.
    fake.add_order("B1", "C-1", "ERP-ORIG", &[1, 2, 3]);
    let original = Cancellation {
        refund: Some(Refund {
            amount: Money {
                amount_minor: 23205,
                currency: "EUR".into(),
            },
            to: RefundDestination::OriginalPaymentMethod,
        }),
        ..refund_to("ERP-ORIG", "DE89370400440532013000", None)
    };
    assert!(submit(&original, &connection).await.is_accepted());
    let last = fake.accepted().pop().unwrap();
    assert_eq!(last.order_reference, "ERP-ORIG");
    assert!(last.body.get("bankDetails").is_none(), "{}", last.body);
}

#[tokio::test]
async fn each_reason_reaches_aaas_as_its_code() {
    let fake = fake().await;
    let connection = connection(&fake);
    let reasons = [
        (CancellationReason::OutOfStock, "OUT_OF_STOCK"),
        (
            CancellationReason::CustomerCancellation,
            "CUSTOMER_CANCELLATION",
        ),
        (CancellationReason::NoPayment, "NO_PAYMENT"),
        (CancellationReason::CustomerService, "CUSTOMER_SERVICE"),
    ];
    for (reason, _) in reasons {
        let order = format!("ERP-{reason:?}");
        fake.add_order("B1", "C-1", &order, &[1, 2, 3]);
        let cancellation = Cancellation {
            request_id: format!("req-{order}"),
            erp_order_number: Some(order),
            reason,
            ..partial("unused")
        };
        let outcome = submit(&cancellation, &connection).await;
        assert!(outcome.is_accepted(), "{reason:?}: {outcome}");
    }
    let sent: Vec<_> = fake
        .accepted()
        .into_iter()
        .map(|accepted| accepted.body["cancellationReason"].clone())
        .collect();
    assert_eq!(sent, reasons.map(|(_, code)| serde_json::Value::from(code)));
}

#[tokio::test]
async fn basic_auth_from_the_connection_secrets() {
    let fake = AaasFake::start(AaasAuth::Basic {
        username: "shop-integration".into(),
        password: "pa55word".into(),
    })
    .await;
    fake.add_order("ACME", "C-1", "ERP-1001", &[1, 2, 3]);
    let connection = ConnectionContext {
        settings: BTreeMap::from([
            ("auth".to_owned(), "basic".to_owned()),
            // The business code at AaaS differs from the shop's.
            ("businessCode".to_owned(), "ACME".to_owned()),
        ]),
        secrets: BTreeMap::from([
            ("username".to_owned(), "shop-integration".to_owned()),
            ("password".to_owned(), "pa55word".to_owned()),
        ]),
        ..fake.connection()
    };
    let outcome = submit(&sample_cancellation(), &connection).await;
    assert!(outcome.is_accepted(), "{outcome}");
    assert_eq!(
        fake.cancelled_positions("ACME", "C-1", "ERP-1001"),
        [1, 2, 3]
    );

    // The wrong password: AaaS says 401, a permanent rejection.
    let wrong = ConnectionContext {
        secrets: BTreeMap::from([
            ("username".to_owned(), "shop-integration".to_owned()),
            ("password".to_owned(), "guess".to_owned()),
        ]),
        ..connection
    };
    let outcome = submit(&partial("req-wrong"), &wrong).await;
    assert_eq!(
        rejected(&outcome),
        "the ERP answered 401 Unauthorized: the credentials are not valid"
    );
}

#[tokio::test]
async fn passing_failures_are_transient_and_a_retry_is_seen_once() {
    let fake = fake().await;
    let connection = connection(&fake);
    fake.script([
        Scripted::json(503, r#"{"message": "down for maintenance"}"#),
        Scripted::status(429),
        Scripted::status(408),
        Scripted::status(500),
    ]);
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(submit(&sample_cancellation(), &connection).await);
    }
    assert_eq!(
        outcomes,
        [
            CallOutcome::Transient(
                "the ERP answered 503 Service Unavailable: down for maintenance".into()
            ),
            CallOutcome::Transient("the ERP answered 429 Too Many Requests".into()),
            CallOutcome::Transient("the ERP answered 408 Request Timeout".into()),
            CallOutcome::Transient("the ERP answered 500 Internal Server Error".into()),
        ]
    );
    assert!(fake.accepted().is_empty());

    // The next attempt goes through; the one after (a lost answer, say) is
    // replayed by AaaS under the same Idempotency-Key, not applied twice.
    let retry = Cancellation {
        attempt: 5,
        ..sample_cancellation()
    };
    let first = submit(&retry, &connection).await;
    let replay = submit(&retry, &connection).await;
    assert!(first.is_accepted(), "{first}");
    assert_eq!(first, replay);
    assert_eq!(fake.accepted().len(), 1);
    let requests = fake.requests();
    assert_eq!(requests.len(), 6);
    assert!(
        requests
            .iter()
            .all(|r| r.header("idempotency-key") == Some(REQUEST_ID) && r.body == requests[0].body),
        "every attempt sends the same request"
    );
}

#[tokio::test]
async fn refused_connections_and_timeouts_are_transient() {
    let closed = ClosedPort::bind();
    let refused = ConnectionContext {
        secrets: BTreeMap::from([("apiToken".to_owned(), TOKEN.to_owned())]),
        ..closed.connection()
    };
    match submit(&sample_cancellation(), &refused).await {
        CallOutcome::Transient(message) => {
            assert!(message.contains("could not reach"), "{message}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }

    // AaaS answers too late for the connection's timeoutMs.
    let fake = fake().await;
    fake.script([
        Scripted::json(201, r#"{"internalRequestId": "late"}"#).after(Duration::from_secs(5))
    ]);
    let impatient = ConnectionContext {
        settings: BTreeMap::from([("timeoutMs".to_owned(), "300".to_owned())]),
        ..connection(&fake)
    };
    match submit(&sample_cancellation(), &impatient).await {
        CallOutcome::Transient(message) => {
            assert!(message.contains("in time"), "{message}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn rejections_carry_aaas_own_message() {
    let fake = fake().await;
    let unknown = Cancellation {
        erp_order_number: Some("ERP-404".into()),
        ..sample_cancellation()
    };
    let outcome = submit(&unknown, &connection(&fake)).await;
    assert_eq!(
        rejected(&outcome),
        "the ERP answered 404 Not Found: order ERP-404 of customer C-1 in business B1 not found: \
         it must have been created and processed first"
    );

    let extra_line = Cancellation {
        full: false,
        all_line_numbers: vec![1, 2, 3, 9],
        lines: vec![rescind_host::plugins::CancelledLine {
            line_number: 9,
            ..sample_cancellation().lines[0].clone()
        }],
        ..sample_cancellation()
    };
    let outcome = submit(&extra_line, &connection(&fake)).await;
    assert_eq!(
        rejected(&outcome),
        "the ERP answered 400 Bad Request: orderItemReference 9 does not exist in order ERP-1001"
    );
    assert!(fake.accepted().is_empty());
}

#[tokio::test]
async fn missing_configuration_is_named_and_nothing_is_sent() {
    let fake = fake().await;
    let cases = [
        (
            fake.connection(),
            "the connection has no secret `apiToken`: add it to the connection's \"secrets\"",
        ),
        (
            ConnectionContext {
                settings: BTreeMap::from([("auth".to_owned(), "basic".to_owned())]),
                ..connection(&fake)
            },
            "the connection has no secret `username`: add it to the connection's \"secrets\"",
        ),
        (
            ConnectionContext {
                settings: BTreeMap::from([("auth".to_owned(), "oauth".to_owned())]),
                ..connection(&fake)
            },
            "setting `auth` of the connection is `oauth`; expected one of `bearer`, `basic`",
        ),
        (
            ConnectionContext {
                settings: BTreeMap::from([("timeoutMs".to_owned(), "soon".to_owned())]),
                ..connection(&fake)
            },
            "invalid request: setting `timeoutMs` of the connection is `soon`, which is not valid: \
             invalid digit found in string; check the connection's baseUrl and settings",
        ),
    ];
    for (connection, expected) in cases {
        let outcome = submit(&sample_cancellation(), &connection).await;
        assert_eq!(outcome, CallOutcome::Misconfigured(expected.into()));
    }
    assert!(fake.requests().is_empty());
}
