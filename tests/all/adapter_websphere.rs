//! The compiled websphere plugin, through the runtime, against the fake
//! WebSphere Commerce `OrderCancel` command.

use std::collections::BTreeMap;
use std::sync::Arc;

use rescind_host::plugins::{CallLimits, CallOutcome, Cancellation, ConnectionContext, Plugin};
use rescind_tests::erp_server::Scripted;
use rescind_tests::fakes::websphere::{
    COMMAND_PATH, STORE_ID, WcsOrder, WebSphereFake, parameters,
};
use rescind_tests::plugin_fixtures::{plugin, sample_cancellation};

const SUCCESS_URL: &str = "/webapp/wcs/stores/servlet/OrderCancelledView";

fn websphere() -> Arc<Plugin> {
    plugin("websphere", rescind_test_artifacts::WEBSPHERE)
}

fn connection(fake: &WebSphereFake, extra: &[(&str, &str)]) -> ConnectionContext {
    let mut settings = BTreeMap::from([
        ("successUrl".to_owned(), SUCCESS_URL.to_owned()),
        ("storeId".to_owned(), "10101".to_owned()),
        ("langId".to_owned(), "-1".to_owned()),
    ]);
    for (key, value) in extra {
        settings.insert((*key).to_owned(), (*value).to_owned());
    }
    ConnectionContext {
        settings,
        ..fake.connection()
    }
}

async fn submit(cancellation: &Cancellation, connection: &ConnectionContext) -> CallOutcome {
    websphere()
        .submit(cancellation.clone(), connection, &CallLimits::default())
        .await
        .outcome
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// Staff cancelling order 1001 for a customer; no deposited payment.
fn for_customer() -> Cancellation {
    Cancellation {
        for_user: Some("buyer@example.com".into()),
        forced_cancel: false,
        forced_cancel_with_refund: false,
        refund: None,
        bank_details: None,
        ..sample_cancellation()
    }
}

#[tokio::test]
async fn a_query_get_cancels_the_order_and_the_redirect_is_the_success() {
    let fake = WebSphereFake::start().await;
    fake.add_order("ERP-1001", 'M', false, &[1, 2, 3]);

    let outcome = submit(&for_customer(), &connection(&fake, &[])).await;

    assert_eq!(
        outcome,
        CallOutcome::Accepted {
            erp_reference: None,
            message: Some(format!(
                "WebSphere cancelled order ERP-1001 and redirected to http://{}{SUCCESS_URL}",
                fake.authority()
            )),
        }
    );
    assert_eq!(
        fake.order("ERP-1001"),
        Some(WcsOrder {
            store_id: STORE_ID.into(),
            status: 'X',
            items: BTreeMap::from([(1, 'X'), (2, 'X'), (3, 'X')]),
            deposited: false,
            refunded: false,
            cancelled_for: Some("buyer@example.com".into()),
        })
    );
    // One request: the redirect is the answer, never followed.
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, http::Method::GET);
    assert!(
        requests[0].path.starts_with(COMMAND_PATH),
        "{}",
        requests[0].path
    );
    assert!(requests[0].body.is_empty());
    assert_eq!(
        parameters(&requests[0]),
        pairs(&[
            ("orderId", "ERP-1001"),
            ("storeId", "10101"),
            ("langId", "-1"),
            ("forUser", "buyer@example.com"),
            ("URL", SUCCESS_URL),
        ])
    );
}

#[tokio::test]
async fn a_form_post_with_a_forced_refund_refunds_the_deposited_payment() {
    let fake = WebSphereFake::start().await;
    fake.add_order("ERP-1001", 'B', true, &[1, 2, 3]);
    let connection = connection(
        &fake,
        &[
            ("parameterStyle", "form"),
            ("forUserParameter", "forUserId"),
        ],
    );
    let cancellation = Cancellation {
        for_user: Some("4711".into()),
        ..sample_cancellation()
    };

    let outcome = submit(&cancellation, &connection).await;

    assert!(outcome.is_accepted(), "{outcome}");
    let order = fake.order("ERP-1001").unwrap();
    assert_eq!((order.status, order.refunded), ('X', true));
    let request = &fake.requests()[0];
    assert_eq!(request.method, http::Method::POST);
    assert_eq!(request.path, COMMAND_PATH);
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        parameters(request),
        pairs(&[
            ("orderId", "ERP-1001"),
            ("storeId", "10101"),
            ("langId", "-1"),
            ("forUserId", "4711"),
            ("forcedCancel", "true"),
            ("forcedCancelWithRefund", "true"),
            ("URL", SUCCESS_URL),
        ])
    );
}

#[tokio::test]
async fn the_commands_failures_are_rejections_with_its_message() {
    let fake = WebSphereFake::start().await;
    fake.add_order("ERP-1001", 'M', true, &[1, 2, 3]);
    fake.add_order("ERP-SHIPPED", 'S', false, &[1, 2, 3]);
    let connection = connection(&fake, &[]);

    // Deposited payment without forcedCancel: the error view, status 200.
    let outcome = submit(&for_customer(), &connection).await;
    assert_eq!(
        outcome,
        CallOutcome::Rejected(
            "WebSphere did not cancel order ERP-1001: The order ERP-1001 has deposited payment: \
             it can only be cancelled with forcedCancel=true. (_ERR_DEPOSITED_PAYMENT)"
                .into()
        )
    );
    assert_eq!(fake.order("ERP-1001").unwrap().status, 'M');

    // A status OrderCancel cannot cancel, from a store whose error view
    // answers 400: the shared mapping reads the error document.
    fake.error_status(400);
    let shipped = Cancellation {
        erp_order_number: Some("ERP-SHIPPED".into()),
        ..for_customer()
    };
    let outcome = submit(&shipped, &connection).await;
    assert_eq!(
        outcome,
        CallOutcome::Rejected(
            "the ERP answered 400 Bad Request: The order ERP-SHIPPED cannot be cancelled because its status is S."
                .into()
        )
    );

    // An order WebSphere does not know.
    let unknown = Cancellation {
        erp_order_number: None,
        order_number: "WEB-77".into(),
        ..for_customer()
    };
    let outcome = submit(&unknown, &connection).await;
    assert_eq!(
        outcome,
        CallOutcome::Rejected(
            "the ERP answered 400 Bad Request: The order WEB-77 does not exist in store 10101."
                .into()
        )
    );
}

#[tokio::test]
async fn credentials_when_the_store_requires_them() {
    let fake = WebSphereFake::start().await;
    fake.add_order("ERP-1001", 'M', false, &[1, 2, 3]);
    fake.require_credentials("csr-integration", "pa55");

    let without = submit(&for_customer(), &connection(&fake, &[])).await;
    assert_eq!(
        without,
        CallOutcome::Rejected(
            "the ERP answered 401 Unauthorized: Error 401: SRVE0295E: Error reported: 401".into()
        )
    );
    assert_eq!(fake.order("ERP-1001").unwrap().status, 'M');

    let with = ConnectionContext {
        secrets: BTreeMap::from([
            ("username".to_owned(), "csr-integration".to_owned()),
            ("password".to_owned(), "pa55".to_owned()),
        ]),
        ..connection(&fake, &[("auth", "basic")])
    };
    let outcome = submit(&for_customer(), &with).await;
    assert!(outcome.is_accepted(), "{outcome}");
    assert_eq!(fake.order("ERP-1001").unwrap().status, 'X');
}

#[tokio::test]
async fn a_redirect_elsewhere_is_not_followed_and_not_a_success() {
    let fake = WebSphereFake::start().await;
    fake.add_order("ERP-1001", 'M', false, &[1, 2, 3]);
    let logon = format!(
        "http://{}/webapp/wcs/stores/servlet/LogonForm?storeId=10101",
        fake.authority()
    );
    fake.script([Scripted {
        headers: vec![("location".into(), logon.clone())],
        ..Scripted::status(302)
    }]);

    let outcome = submit(&for_customer(), &connection(&fake, &[])).await;

    match &outcome {
        CallOutcome::Misconfigured(message) => assert!(message.contains(&logon), "{message}"),
        other => panic!("expected a misconfiguration, got {other:?}"),
    }
    assert_eq!(fake.requests().len(), 1, "the redirect was followed");
}

#[tokio::test]
async fn server_trouble_is_transient() {
    let fake = WebSphereFake::start().await;
    fake.add_order("ERP-1001", 'M', false, &[1, 2, 3]);
    fake.script([
        Scripted::status(503),
        Scripted::status(502),
        Scripted::status(429),
    ]);
    let connection = connection(&fake, &[]);
    for expected in [
        "the ERP answered 503 Service Unavailable",
        "the ERP answered 502 Bad Gateway",
        "the ERP answered 429 Too Many Requests",
    ] {
        let outcome = submit(&for_customer(), &connection).await;
        assert_eq!(outcome, CallOutcome::Transient(expected.into()));
    }
    assert_eq!(fake.order("ERP-1001").unwrap().status, 'M');
    assert!(submit(&for_customer(), &connection).await.is_accepted());
}

#[tokio::test]
async fn missing_configuration_is_named_and_nothing_is_sent() {
    let fake = WebSphereFake::start().await;
    let cases = [
        (
            fake.connection(),
            "the connection has no setting `successUrl`: add it to the connection's \"settings\"",
        ),
        (
            connection(&fake, &[("parameterStyle", "json")]),
            "setting `parameterStyle` of the connection is `json`; expected one of `query`, `form`",
        ),
        (
            connection(&fake, &[("auth", "basic")]),
            "the connection has no secret `username`: add it to the connection's \"secrets\"",
        ),
        (
            ConnectionContext {
                settings: BTreeMap::from([("successUrl".to_owned(), SUCCESS_URL.to_owned())]),
                ..fake.connection()
            },
            "the connection has no setting `storeId`: add it to the connection's \"settings\"",
        ),
    ];
    for (connection, expected) in cases {
        let outcome = submit(&for_customer(), &connection).await;
        assert_eq!(outcome, CallOutcome::Misconfigured(expected.into()));
    }
    assert!(fake.requests().is_empty());
}

/// Line 1 alone of order 1001: the warranty and the discount stay active.
fn first_line_only() -> Cancellation {
    let whole = for_customer();
    Cancellation {
        full: false,
        lines: whole.lines[..1].to_vec(),
        ..whole
    }
}

#[tokio::test]
async fn a_partial_cancellation_never_reaches_websphere_and_the_one_that_ends_the_order_does() {
    let fake = WebSphereFake::start().await;
    fake.add_order("ERP-1001", 'M', false, &[1, 2, 3]);
    let connection = connection(&fake, &[]);

    // Sent, OrderCancel would cancel all three items: the plugin refuses.
    let outcome = submit(&first_line_only(), &connection).await;
    assert_eq!(
        outcome,
        CallOutcome::Rejected(
            "WebSphere's OrderCancel cancels whole orders; this partial cancellation was not \
             sent (order ERP-1001, lines 1); bind the job definition with \"appliesTo\": \"full\""
                .into()
        )
    );
    assert!(fake.requests().is_empty());
    assert!(fake.order("ERP-1001").unwrap().is_untouched());

    // The warranty and discount end the order: full, sent, and WebSphere
    // cancels the order with every item.
    let whole = for_customer();
    let rest = Cancellation {
        full: true,
        lines: whole.lines[1..].to_vec(),
        ..whole
    };
    assert!(submit(&rest, &connection).await.is_accepted());
    assert_eq!(fake.requests().len(), 1);
    assert!(fake.order("ERP-1001").unwrap().is_cancelled());
}

#[tokio::test]
async fn cancelling_a_cancelled_order_again_fails_as_the_command_does() {
    // The seed: a status other than A, B, C, I, L, M, N, W fails the command;
    // a cancelled order is X and stays in the database.
    let fake = WebSphereFake::start().await;
    fake.add_order("ERP-1001", 'M', false, &[1, 2, 3]);
    let connection = connection(&fake, &[]);
    assert!(submit(&for_customer(), &connection).await.is_accepted());
    let again = submit(&for_customer(), &connection).await;
    assert_eq!(
        again,
        CallOutcome::Rejected(
            "WebSphere did not cancel order ERP-1001: The order ERP-1001 cannot be cancelled \
             because its status is X. (_ERR_ORDER_NOT_CANCELLABLE)"
                .into()
        )
    );
    assert!(fake.order("ERP-1001").unwrap().is_cancelled());
}

/// What the fake answers a hand-written `OrderCancel` URL: the error
/// document's message key and text, or the redirect.
async fn command(fake: &WebSphereFake, query: &str) -> (u16, String) {
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}{COMMAND_PATH}?{query}", fake.base_url()))
        .send()
        .await
        .expect("the fake answers");
    let status = answer.status().as_u16();
    let body = answer.text().await.expect("text");
    (status, body)
}

#[tokio::test]
async fn the_fake_command_refuses_what_websphere_refuses() {
    let fake = WebSphereFake::start().await;
    fake.add_order("ERP-1001", 'M', false, &[1, 2]);
    fake.add_order("ERP-2002", 'M', false, &[1]);
    fake.add_store("20202");
    fake.move_order("ERP-2002", "20202");
    let cases = [
        // A URL command runs in a store.
        (
            "orderId=ERP-1001&URL=%2Fdone",
            "_ERR_CMD_MISSING_PARAM",
            "The parameter storeId is missing.",
        ),
        (
            "orderId=ERP-1001&storeId=99999&URL=%2Fdone",
            "_ERR_CMD_INVALID_PARAM",
            "The store 99999 does not exist.",
        ),
        // A parameter OrderCancel does not define: a misspelling would
        // otherwise be ignored, e.g. a forced cancel that is not.
        (
            "orderId=ERP-1001&storeId=10101&forceCancel=true&URL=%2Fdone",
            "_ERR_CMD_INVALID_PARAM",
            "The parameter forceCancel is not a parameter of OrderCancel.",
        ),
        // OrderCancel names no order items.
        (
            "orderId=ERP-1001&storeId=10101&orderItemId=1&URL=%2Fdone",
            "_ERR_CMD_INVALID_PARAM",
            "The parameter orderItemId is not a parameter of OrderCancel.",
        ),
        (
            "orderId=ERP-2002&storeId=10101&URL=%2Fdone",
            "_ERR_ORDER_NOT_FOUND",
            "The order ERP-2002 does not exist in store 10101.",
        ),
        (
            "orderId=ERP-1001&storeId=10101",
            "_ERR_CMD_MISSING_PARAM",
            "The parameter URL is missing.",
        ),
    ];
    for (query, key, message) in cases {
        let (status, body) = command(&fake, query).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert!(body.contains(key), "{query}: {body}");
        assert!(body.contains(message), "{query}: {body}");
    }
    assert!(fake.order("ERP-1001").unwrap().is_untouched());
    assert!(fake.order("ERP-2002").unwrap().is_untouched());

    // The order's own store cancels it, every item with it.
    let (status, _) = command(&fake, "orderId=ERP-2002&storeId=20202&URL=%2Fdone").await;
    assert_eq!(status, 302);
    assert!(fake.order("ERP-2002").unwrap().is_cancelled());
}
