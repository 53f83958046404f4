use rescind_guest::http::{self, Method, Response};
use rescind_guest::testing::{Connection, RecordedRequest, sample_cancellation};

use super::*;

const BASE: &str = "https://my-site.peerius.episerver.net";

fn optimizely() -> Connection {
    Connection::new(BASE)
        .setting(SITE_NAME_SETTING, "mysite")
        .secret(SITE_TOKEN_SECRET, "token123")
        .respond_with(Response::new(200))
}

fn only_request(erp: &Connection) -> RecordedRequest {
    let requests = erp.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.into_iter().next().unwrap()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn offline(channel: Option<&str>) -> Cancellation {
    Cancellation {
        tracking: Some(Tracking {
            channel: Channel::Offline,
            session: None,
            cuid: None,
            offline_channel: channel.map(str::to_owned),
        }),
        ..sample_cancellation()
    }
}

#[test]
fn an_online_order_is_cancelled_with_a_form_post_to_the_tracker() {
    let erp = optimizely();
    let ack = erp
        .submit::<Personalization>(&sample_cancellation())
        .unwrap();
    assert_eq!(
        ack.message.as_deref(),
        Some("Optimizely recorded the cancellation of online order 1001: HTTP 200")
    );
    let request = only_request(&erp);
    assert_eq!(request.method, Method::Post);
    assert_eq!(
        request.url,
        "https://my-site.peerius.episerver.net/tracker/api/v1_4/mysite/order/cancel.pagex"
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.text(),
        "session=123%7Cabc&cuid=09%7CZ0&orderNo=1001"
    );
    assert_eq!(
        request.form(),
        pairs(&[
            ("session", "123|abc"),
            ("cuid", "09|Z0"),
            ("orderNo", "1001")
        ])
    );
    // The tracker needs no credentials: the site token stays home.
    assert!(
        request
            .headers
            .iter()
            .all(|(_, value)| !value.contains("token123")),
        "{request:?}"
    );
}

#[test]
fn the_api_version_setting_changes_the_tracker_path() {
    let erp = optimizely().setting(API_VERSION_SETTING, "v2_0");
    erp.submit::<Personalization>(&sample_cancellation())
        .unwrap();
    assert_eq!(
        only_request(&erp).path(),
        "/tracker/api/v2_0/mysite/order/cancel.pagex"
    );
}

#[test]
fn an_offline_order_is_deleted_with_the_site_headers() {
    let erp = optimizely().respond_with(Response::new(204));
    let ack = erp
        .submit::<Personalization>(&offline(Some("store")))
        .unwrap();
    assert_eq!(
        ack.message.as_deref(),
        Some("Optimizely deleted offline order 1001: HTTP 204")
    );
    let request = only_request(&erp);
    assert_eq!(request.method, Method::Delete);
    assert_eq!(
        request.url,
        "https://my-site.peerius.episerver.net/smart-api/orders/offline/1001"
    );
    assert_eq!(request.header("site"), Some("mysite"));
    assert_eq!(request.header("siteToken"), Some("token123"));
    assert_eq!(request.header("channel"), Some("store"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(request.body.is_empty());
}

#[test]
fn the_offline_channel_falls_back_to_the_setting_and_order_numbers_are_encoded() {
    let erp = optimizely().setting(OFFLINE_CHANNEL_SETTING, "phone");
    let cancellation = Cancellation {
        order_number: "ABC/DE 1".into(),
        ..offline(None)
    };
    erp.submit::<Personalization>(&cancellation).unwrap();
    let request = only_request(&erp);
    assert_eq!(request.header("channel"), Some("phone"));
    assert_eq!(request.path(), "/smart-api/orders/offline/ABC%2FDE%201");

    // Without either, the connection is what can be fixed.
    let erp = optimizely();
    let error = erp
        .submit::<Personalization>(&offline(Some(" ")))
        .unwrap_err();
    assert!(
        matches!(&error, SubmitError::Misconfigured(m) if m.contains("`offlineChannel`")),
        "{error}"
    );
    assert!(erp.requests().is_empty());
}

#[test]
fn an_order_without_tracking_data_is_rejected_without_a_request() {
    let no_tracking = Cancellation {
        tracking: None,
        ..sample_cancellation()
    };
    let mut no_session = sample_cancellation();
    no_session.tracking.as_mut().unwrap().session = None;
    let mut blank_cuid = sample_cancellation();
    blank_cuid.tracking.as_mut().unwrap().cuid = Some("  ".into());
    for (cancellation, what) in [
        (no_tracking, "carries no tracking data"),
        (no_session, "is an online order without a tracking session"),
        (blank_cuid, "is an online order without a tracking cuid"),
    ] {
        let erp = optimizely();
        let error = erp.submit::<Personalization>(&cancellation).unwrap_err();
        assert_eq!(
            error,
            SubmitError::Rejected(format!(
                "order 1001 {what}, so Optimizely cannot be told about its cancellation \
                 (the order's tracking data needs its channel, and for an online order a session and cuid)"
            ))
        );
        assert!(erp.requests().is_empty());
    }
}

#[test]
fn missing_configuration_names_the_key() {
    let error = Connection::new(BASE)
        .secret(SITE_TOKEN_SECRET, "t")
        .submit::<Personalization>(&sample_cancellation())
        .unwrap_err();
    assert_eq!(
        error,
        SubmitError::Misconfigured(
            "the connection has no setting `siteName`: add it to the connection's \"settings\""
                .into()
        )
    );

    // The site token is only needed for offline orders.
    let online_only = Connection::new(BASE)
        .setting(SITE_NAME_SETTING, "mysite")
        .respond_with(Response::new(200));
    online_only
        .submit::<Personalization>(&sample_cancellation())
        .unwrap();
    let error = online_only
        .submit::<Personalization>(&offline(Some("store")))
        .unwrap_err();
    assert_eq!(
        error,
        SubmitError::Misconfigured(
            "the connection has no secret `siteToken`: add it to the connection's \"secrets\""
                .into()
        )
    );
    assert_eq!(online_only.requests().len(), 1);
}

#[test]
fn failures_follow_the_shared_mapping() {
    let unknown = Response::new(404).with_text("Order 1001 not found for site mysite");
    let error = optimizely()
        .respond_with(unknown)
        .submit::<Personalization>(&offline(Some("store")))
        .unwrap_err();
    assert_eq!(
        error,
        SubmitError::Rejected(
            "the ERP answered 404 Not Found: Order 1001 not found for site mysite".into()
        )
    );
    for status in [408, 429, 502, 503] {
        let error = optimizely()
            .respond_with(Response::new(status))
            .submit::<Personalization>(&sample_cancellation())
            .unwrap_err();
        assert!(error.is_transient(), "{status}: {error}");
    }
    let reset = optimizely().respond(|_| {
        Err(http::Error::Connection {
            host: "my-site.peerius.episerver.net".into(),
            detail: "connection reset".into(),
        })
    });
    assert!(
        reset
            .submit::<Personalization>(&sample_cancellation())
            .unwrap_err()
            .is_transient()
    );
}

#[test]
fn the_site_token_never_reaches_the_log() {
    let erp = optimizely();
    erp.submit::<Personalization>(&offline(Some("store")))
        .unwrap();
    let logs = erp.logs();
    assert!(
        logs.iter()
            .any(|line| line.message.contains("offline order 1001")),
        "{logs:?}"
    );
    assert!(logs.iter().all(|line| !line.message.contains("token123")));
}

/// Line 1 of order 1001 (the chair) alone: its warranty and discount stay
/// active, so the order goes on.
fn first_line_only(cancellation: Cancellation) -> Cancellation {
    Cancellation {
        full: false,
        lines: cancellation.lines[..1].to_vec(),
        refund: None,
        ..cancellation
    }
}

#[test]
fn a_partial_cancellation_is_rejected_before_anything_is_read_or_sent() {
    // Both APIs cancel the whole order: sent, the customer's kept lines
    // would stop counting as a sale.
    for cancellation in [sample_cancellation(), offline(Some("store"))] {
        for erp in [optimizely(), Connection::new(BASE)] {
            let error = erp
                .submit::<Personalization>(&first_line_only(cancellation.clone()))
                .unwrap_err();
            assert_eq!(
                error,
                SubmitError::Rejected(
                    "Optimizely Personalization cancels whole orders; this partial cancellation \
                     was not sent (order 1001, lines 1); bind the job definition with \
                     \"appliesTo\": \"full\""
                        .into()
                )
            );
            assert!(erp.requests().is_empty());
        }
    }
}

#[test]
fn the_cancellation_that_ends_the_order_is_sent_whatever_lines_it_names() {
    // The chair went before; its warranty and discount now end the order.
    let cases = [
        (
            sample_cancellation(),
            Method::Post,
            "/tracker/api/v1_4/mysite/order/cancel.pagex",
        ),
        (
            offline(Some("store")),
            Method::Delete,
            "/smart-api/orders/offline/1001",
        ),
    ];
    for (cancellation, method, path) in cases {
        let last = Cancellation {
            full: true,
            lines: cancellation.lines[1..].to_vec(),
            ..cancellation
        };
        let erp = optimizely();
        erp.submit::<Personalization>(&last).unwrap();
        let request = only_request(&erp);
        assert_eq!((request.method, request.path()), (method, path));
    }
}
