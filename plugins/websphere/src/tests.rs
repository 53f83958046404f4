use rescind_guest::http::{self, Method};
use rescind_guest::testing::{Connection, RecordedRequest, sample_cancellation};
use serde_json::json;

use super::*;

const BASE: &str = "https://shop.example.com";
const SUCCESS: &str = "/webapp/wcs/stores/servlet/OrderCancelledView";

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn redirect_to_success() -> Response {
    Response::new(302).with_header("Location", format!("{BASE}{SUCCESS}?orderId=ERP-1001"))
}

fn wcs() -> Connection {
    Connection::new(BASE)
        .setting(SUCCESS_URL_SETTING, SUCCESS)
        .setting(STORE_ID_SETTING, "10101")
        .setting(LANG_ID_SETTING, "-1")
        .respond_with(redirect_to_success())
}

fn only_request(erp: &Connection) -> RecordedRequest {
    let requests = erp.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.into_iter().next().unwrap()
}

/// Order 1001 cancelled by staff for a customer, without deposited payment.
fn for_customer() -> Cancellation {
    Cancellation {
        for_user: Some("buyer@example.com".into()),
        forced_cancel: false,
        forced_cancel_with_refund: false,
        refund: None,
        ..sample_cancellation()
    }
}

#[test]
fn a_query_get_carries_every_parameter_and_a_redirect_to_url_is_success() {
    let erp = wcs();
    let ack = erp.submit::<WebSphere>(&sample_cancellation()).unwrap();

    assert_eq!(ack.erp_reference, None);
    assert_eq!(
        ack.message.as_deref(),
        Some(
            "WebSphere cancelled order ERP-1001 and redirected to \
             https://shop.example.com/webapp/wcs/stores/servlet/OrderCancelledView?orderId=ERP-1001"
        )
    );
    let request = only_request(&erp);
    assert_eq!(request.method, Method::Get);
    assert_eq!(request.path(), "/webapp/wcs/stores/servlet/OrderCancel");
    assert!(request.body.is_empty());
    assert_eq!(
        request.query(),
        pairs(&[
            ("orderId", "ERP-1001"),
            ("storeId", "10101"),
            ("langId", "-1"),
            ("forcedCancel", "true"),
            ("forcedCancelWithRefund", "true"),
            ("URL", SUCCESS),
        ])
    );
}

#[test]
fn the_form_style_posts_the_same_parameters() {
    let erp = wcs().setting(PARAMETER_STYLE_SETTING, "form");
    erp.submit::<WebSphere>(&for_customer()).unwrap();
    let request = only_request(&erp);
    assert_eq!(request.method, Method::Post);
    assert_eq!(
        request.url,
        format!("{BASE}/webapp/wcs/stores/servlet/OrderCancel")
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.form(),
        pairs(&[
            ("orderId", "ERP-1001"),
            ("storeId", "10101"),
            ("langId", "-1"),
            ("forUser", "buyer@example.com"),
            ("URL", SUCCESS),
        ])
    );
}

#[test]
fn for_user_id_and_the_order_number_fallback() {
    let cancellation = Cancellation {
        for_user: Some("4711".into()),
        erp_order_number: None,
        ..for_customer()
    };
    let erp = Connection::new(BASE)
        .setting(SUCCESS_URL_SETTING, "https://shop.example.com/done")
        .setting(STORE_ID_SETTING, " 10202 ")
        .setting(FOR_USER_PARAMETER_SETTING, "forUserId")
        .respond_with(Response::new(302).with_header("Location", "https://shop.example.com/done"));
    erp.submit::<WebSphere>(&cancellation).unwrap();
    assert_eq!(
        only_request(&erp).query(),
        pairs(&[
            ("orderId", "1001"),
            ("storeId", "10202"),
            ("forUserId", "4711"),
            ("URL", "https://shop.example.com/done"),
        ])
    );
}

#[test]
fn basic_auth_when_configured() {
    let erp = wcs()
        .setting(AUTH_SETTING, "basic")
        .secret(USERNAME_SECRET, "csr")
        .secret(PASSWORD_SECRET, "pw");
    erp.submit::<WebSphere>(&for_customer()).unwrap();
    assert_eq!(
        only_request(&erp).header("authorization"),
        Some("Basic Y3NyOnB3")
    );
    // Without `auth`, no credentials are sent.
    let erp = wcs();
    erp.submit::<WebSphere>(&for_customer()).unwrap();
    assert_eq!(only_request(&erp).header("authorization"), None);
}

#[test]
fn a_plain_2xx_is_a_success() {
    let erp = wcs()
        .respond_with(Response::new(200).with_text("<html><title>Order cancelled</title></html>"));
    let ack = erp.submit::<WebSphere>(&for_customer()).unwrap();
    assert_eq!(
        ack.message.as_deref(),
        Some("WebSphere cancelled order ERP-1001: HTTP 200")
    );
}

#[test]
fn the_commands_error_document_is_a_rejection_with_its_message() {
    let document = r#"/*
{
  "errorCode": "",
  "errorMessage": "The order ERP-1001 cannot be cancelled because its status is S.",
  "errorMessageKey": "_ERR_ORDER_NOT_CANCELLABLE",
  "originatingCommand": "OrderCancel"
}
*/"#;
    for answer in [
        Response::new(200)
            .with_header("Content-Type", "application/json")
            .with_body(document),
        Response::new(200).with_json(&json!({
            "errors": [{"errorKey": "_ERR_ORDER_NOT_CANCELLABLE",
                        "errorMessage": "The order ERP-1001 cannot be cancelled because its status is S."}]
        })),
    ] {
        let error = wcs()
            .respond_with(answer)
            .submit::<WebSphere>(&for_customer())
            .unwrap_err();
        assert_eq!(
            error,
            SubmitError::Rejected(
                "WebSphere did not cancel order ERP-1001: The order ERP-1001 cannot be cancelled \
                 because its status is S. (_ERR_ORDER_NOT_CANCELLABLE)"
                    .into()
            )
        );
    }
}

#[test]
fn a_4xx_error_document_is_rejected_with_its_message_through_the_shared_mapping() {
    let answer = Response::new(400)
        .with_header("Content-Type", "application/json")
        .with_body(r#"/*{"errorMessage": "The parameter orderId is missing.", "errorMessageKey": "_ERR_CMD_MISSING_PARAM"}*/"#);
    let error = wcs()
        .respond_with(answer.clone())
        .submit::<WebSphere>(&for_customer())
        .unwrap_err();
    assert_eq!(
        error,
        SubmitError::from_response(&Response {
            body: br#"{"errorMessage": "The parameter orderId is missing.", "errorMessageKey": "_ERR_CMD_MISSING_PARAM"}"#.to_vec(),
            ..answer
        })
    );
    assert!(matches!(error, SubmitError::Rejected(_)), "{error}");
    assert!(
        error
            .message()
            .contains("The parameter orderId is missing."),
        "{error}"
    );
}

#[test]
fn a_redirect_elsewhere_is_not_a_success() {
    let logon = Response::new(302).with_header(
        "Location",
        "https://shop.example.com/webapp/wcs/stores/servlet/LogonForm?storeId=10101",
    );
    let error = wcs()
        .respond_with(logon)
        .submit::<WebSphere>(&for_customer())
        .unwrap_err();
    assert!(
        matches!(&error, SubmitError::Misconfigured(m) if m.contains("LogonForm")),
        "{error}"
    );
}

#[test]
fn transient_failures_follow_the_shared_mapping() {
    for status in [408, 429, 500, 503] {
        let error = wcs()
            .respond_with(Response::new(status))
            .submit::<WebSphere>(&for_customer())
            .unwrap_err();
        assert!(error.is_transient(), "{status}: {error}");
    }
    let timeout = wcs().respond(|_| {
        Err(http::Error::Timeout {
            host: "shop.example.com".into(),
            detail: "the answer did not start in time".into(),
        })
    });
    assert!(
        timeout
            .submit::<WebSphere>(&for_customer())
            .unwrap_err()
            .is_transient()
    );
}

#[test]
fn missing_or_wrong_configuration_names_what_to_fix_and_sends_nothing() {
    let cases = [
        (
            Connection::new(BASE),
            "the connection has no setting `successUrl`: add it to the connection's \"settings\"",
        ),
        (
            Connection::new(BASE)
                .setting(SUCCESS_URL_SETTING, SUCCESS)
                .setting(PARAMETER_STYLE_SETTING, "json"),
            "setting `parameterStyle` of the connection is `json`; expected one of `query`, `form`",
        ),
        (
            Connection::new(BASE).setting(SUCCESS_URL_SETTING, SUCCESS),
            "the connection has no setting `storeId`: add it to the connection's \"settings\"",
        ),
        (
            Connection::new(BASE)
                .setting(SUCCESS_URL_SETTING, SUCCESS)
                .setting(STORE_ID_SETTING, " "),
            "setting `storeId` of the connection is empty: set it in the connection's \"settings\"",
        ),
        (
            Connection::new(BASE)
                .setting(SUCCESS_URL_SETTING, SUCCESS)
                .setting(STORE_ID_SETTING, "10101")
                .setting(AUTH_SETTING, "basic")
                .secret(PASSWORD_SECRET, "pw"),
            "the connection has no secret `username`: add it to the connection's \"secrets\"",
        ),
        (
            Connection::new(BASE)
                .setting(SUCCESS_URL_SETTING, SUCCESS)
                .setting(FOR_USER_PARAMETER_SETTING, "logonId"),
            "setting `forUserParameter` of the connection is `logonId`; expected one of `forUser`, `forUserId`",
        ),
    ];
    for (connection, expected) in cases {
        let erp = connection.respond_with(redirect_to_success());
        let error = erp.submit::<WebSphere>(&for_customer()).unwrap_err();
        assert_eq!(error, SubmitError::Misconfigured(expected.into()));
        assert!(erp.requests().is_empty());
    }
}

/// Line 1 of order 1001 (the chair) alone: its warranty and discount stay
/// active, so the order goes on.
fn first_line_only() -> Cancellation {
    let whole = for_customer();
    Cancellation {
        full: false,
        lines: whole.lines[..1].to_vec(),
        refund: None,
        ..whole
    }
}

#[test]
fn a_partial_cancellation_is_rejected_before_anything_is_read_or_sent() {
    // OrderCancel names no order items: sent, it would cancel the whole order.
    for erp in [wcs(), Connection::new(BASE)] {
        let error = erp.submit::<WebSphere>(&first_line_only()).unwrap_err();
        assert_eq!(
            error,
            SubmitError::Rejected(
                "WebSphere's OrderCancel cancels whole orders; this partial cancellation was not \
                 sent (order ERP-1001, lines 1); bind the job definition with \"appliesTo\": \"full\""
                    .into()
            )
        );
        assert!(erp.requests().is_empty());
    }
}

#[test]
fn the_cancellation_that_ends_the_order_is_sent_whatever_lines_it_names() {
    // The chair went before; cancelling its warranty and discount now leaves
    // no active line, so this cancellation is full and WebSphere cancels the
    // order.
    let whole = for_customer();
    let last = Cancellation {
        full: true,
        lines: whole.lines[1..].to_vec(),
        ..whole
    };
    let erp = wcs();
    erp.submit::<WebSphere>(&last).unwrap();
    assert_eq!(
        only_request(&erp).query(),
        pairs(&[
            ("orderId", "ERP-1001"),
            ("storeId", "10101"),
            ("langId", "-1"),
            ("forUser", "buyer@example.com"),
            ("URL", SUCCESS),
        ])
    );
}

#[test]
fn redirect_targets_compare_by_path() {
    for (location, success, same) in [
        ("https://shop/a/View?x=1", "/a/View", true),
        ("/a/View/", "/a/View", true),
        ("https://shop/a/View", "https://other/a/View?y=2", true),
        ("https://shop/", "/", true),
        ("https://shop", "/", true),
        ("https://shop/a/Logon", "/a/View", false),
        ("https://shop/a/View2", "/a/View", false),
    ] {
        assert_eq!(
            same_target(location, success),
            same,
            "{location} vs {success}"
        );
    }
}
