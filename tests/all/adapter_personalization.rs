//! The compiled personalization plugin, through the runtime, against the
//! fake Optimizely Personalization APIs.

use std::collections::BTreeMap;
use std::sync::Arc;

use rescind_host::plugins::{
    CallLimits, CallOutcome, Cancellation, Channel, ConnectionContext, Plugin, Tracking,
};
use rescind_tests::erp_server::Scripted;
use rescind_tests::fakes::personalization::{OnlineCancellation, PersonalizationFake};
use rescind_tests::plugin_fixtures::{plugin, sample_cancellation};

const SITE: &str = "mysite";
const SITE_TOKEN: &str = "site-t0ken-123";

fn personalization() -> Arc<Plugin> {
    plugin("personalization", rescind_test_artifacts::PERSONALIZATION)
}

async fn fake() -> PersonalizationFake {
    let fake = PersonalizationFake::start(SITE, SITE_TOKEN).await;
    fake.add_online_order("1001", &[1, 2, 3]);
    fake.add_offline_order("1001", "store", &[1, 2, 3]);
    fake
}

fn connection(fake: &PersonalizationFake, extra: &[(&str, &str)]) -> ConnectionContext {
    let mut settings = BTreeMap::from([("siteName".to_owned(), SITE.to_owned())]);
    for (key, value) in extra {
        settings.insert((*key).to_owned(), (*value).to_owned());
    }
    ConnectionContext {
        settings,
        secrets: BTreeMap::from([("siteToken".to_owned(), SITE_TOKEN.to_owned())]),
        ..fake.connection()
    }
}

async fn submit(cancellation: &Cancellation, connection: &ConnectionContext) -> CallOutcome {
    personalization()
        .submit(cancellation.clone(), connection, &CallLimits::default())
        .await
        .outcome
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

#[tokio::test]
async fn an_online_order_is_reported_to_the_tracker() {
    let fake = fake().await;

    let outcome = submit(&sample_cancellation(), &connection(&fake, &[])).await;

    assert_eq!(
        outcome,
        CallOutcome::Accepted {
            erp_reference: None,
            message: Some(
                "Optimizely recorded the cancellation of online order 1001: HTTP 200".into()
            ),
        }
    );
    assert_eq!(
        fake.online_cancellations(),
        [OnlineCancellation {
            api_version: "v1_4".into(),
            session: "123|abc".into(),
            cuid: "09|Z0".into(),
            order_no: "1001".into(),
        }]
    );
    let request = &fake.requests()[0];
    assert_eq!(request.method, http::Method::POST);
    assert_eq!(request.path, "/tracker/api/v1_4/mysite/order/cancel.pagex");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // The order and its lines are cancelled; the offline order of the same
    // number is untouched, and the site token never travels to the tracker.
    assert!(fake.online_order("1001").unwrap().is_cancelled());
    assert!(fake.offline_order("1001").unwrap().is_untouched());
    assert!(
        request
            .headers
            .values()
            .all(|value| value.as_bytes() != SITE_TOKEN.as_bytes())
    );
}

#[tokio::test]
async fn an_offline_order_is_deleted_with_the_site_headers() {
    let fake = fake().await;

    let report = personalization()
        .submit(
            offline(Some("store")),
            &connection(&fake, &[]),
            &CallLimits::default(),
        )
        .await;

    assert_eq!(
        report.outcome,
        CallOutcome::Accepted {
            erp_reference: None,
            message: Some("Optimizely deleted offline order 1001: HTTP 204".into()),
        }
    );
    assert_eq!(fake.deleted_offline(), ["1001"]);
    assert!(!fake.has_offline_order("1001"));
    let request = &fake.requests()[0];
    assert_eq!(request.method, http::Method::DELETE);
    assert_eq!(request.path, "/smart-api/orders/offline/1001");
    assert_eq!(request.header("site"), Some(SITE));
    assert_eq!(request.header("sitetoken"), Some(SITE_TOKEN));
    assert_eq!(request.header("channel"), Some("store"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(
        report
            .log
            .iter()
            .all(|line| !line.message.contains(SITE_TOKEN)),
        "{:?}",
        report.log
    );
}

#[tokio::test]
async fn the_connection_supplies_the_offline_channel_and_the_api_version() {
    let fake = fake().await;
    fake.add_offline_order("2002", "phone", &[1]);
    let connection = connection(
        &fake,
        &[("offlineChannel", "phone"), ("apiVersion", "v1_3")],
    );

    let phone_order = Cancellation {
        order_number: "2002".into(),
        ..offline(None)
    };
    assert!(submit(&phone_order, &connection).await.is_accepted());
    assert!(
        submit(&sample_cancellation(), &connection)
            .await
            .is_accepted()
    );

    assert_eq!(fake.deleted_offline(), ["2002"]);
    assert_eq!(fake.online_cancellations()[0].api_version, "v1_3");
}

#[tokio::test]
async fn optimizely_refusals_are_rejections_with_its_message() {
    let fake = fake().await;
    // Created in the store, cancelled as a phone order.
    let outcome = submit(&offline(Some("phone")), &connection(&fake, &[])).await;
    assert_eq!(
        outcome,
        CallOutcome::Rejected(
            "the ERP answered 404 Not Found: offline order 1001 not found in channel phone".into()
        )
    );
    let wrong_token = ConnectionContext {
        secrets: BTreeMap::from([("siteToken".to_owned(), "stale".to_owned())]),
        ..connection(&fake, &[])
    };
    let outcome = submit(&offline(Some("store")), &wrong_token).await;
    assert_eq!(
        outcome,
        CallOutcome::Rejected(
            "the ERP answered 401 Unauthorized: invalid site or siteToken for site mysite".into()
        )
    );
    let unknown_version = connection(&fake, &[("apiVersion", "v9_9")]);
    let outcome = submit(&sample_cancellation(), &unknown_version).await;
    assert_eq!(
        outcome,
        CallOutcome::Rejected(
            "the ERP answered 404 Not Found: unknown tracker API version v9_9".into()
        )
    );
    assert!(fake.has_offline_order("1001"));
    assert!(fake.online_cancellations().is_empty());
}

#[tokio::test]
async fn orders_without_tracking_data_are_rejected_without_a_request() {
    let fake = fake().await;
    let mut no_session = sample_cancellation();
    no_session.tracking.as_mut().unwrap().session = None;
    let cases = [
        (
            Cancellation {
                tracking: None,
                ..sample_cancellation()
            },
            "carries no tracking data",
        ),
        (no_session, "is an online order without a tracking session"),
    ];
    for (cancellation, what) in cases {
        let outcome = submit(&cancellation, &connection(&fake, &[])).await;
        assert_eq!(
            outcome,
            CallOutcome::Rejected(format!(
                "order 1001 {what}, so Optimizely cannot be told about its cancellation \
                 (the order's tracking data needs its channel, and for an online order a session and cuid)"
            ))
        );
    }
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn passing_failures_are_transient() {
    let fake = fake().await;
    fake.script([
        Scripted::json(503, r#"{"message": "tracker overloaded"}"#),
        Scripted::status(429),
    ]);
    let connection = connection(&fake, &[]);
    assert_eq!(
        submit(&sample_cancellation(), &connection).await,
        CallOutcome::Transient(
            "the ERP answered 503 Service Unavailable: tracker overloaded".into()
        )
    );
    assert_eq!(
        submit(&offline(Some("store")), &connection).await,
        CallOutcome::Transient("the ERP answered 429 Too Many Requests".into())
    );
    assert!(fake.has_offline_order("1001"));
    assert!(
        submit(&offline(Some("store")), &connection)
            .await
            .is_accepted()
    );
}

#[tokio::test]
async fn missing_configuration_is_named_and_nothing_is_sent() {
    let fake = fake().await;
    let no_site = ConnectionContext {
        settings: BTreeMap::new(),
        ..connection(&fake, &[])
    };
    assert_eq!(
        submit(&sample_cancellation(), &no_site).await,
        CallOutcome::Misconfigured(
            "the connection has no setting `siteName`: add it to the connection's \"settings\""
                .into()
        )
    );
    let no_token = ConnectionContext {
        secrets: BTreeMap::new(),
        ..connection(&fake, &[])
    };
    assert_eq!(
        submit(&offline(Some("store")), &no_token).await,
        CallOutcome::Misconfigured(
            "the connection has no secret `siteToken`: add it to the connection's \"secrets\""
                .into()
        )
    );
    let outcome = submit(&offline(None), &connection(&fake, &[])).await;
    match outcome {
        CallOutcome::Misconfigured(message) => {
            assert!(message.contains("`offlineChannel`"), "{message}")
        }
        other => panic!("expected a misconfiguration, got {other:?}"),
    }
    assert!(fake.requests().is_empty());
}

/// Line 1 alone of order 1001: the warranty and the discount stay active.
fn first_line_only(cancellation: Cancellation) -> Cancellation {
    Cancellation {
        full: false,
        lines: cancellation.lines[..1].to_vec(),
        refund: None,
        ..cancellation
    }
}

#[tokio::test]
async fn a_partial_cancellation_never_reaches_optimizely_and_the_one_that_ends_the_order_does() {
    let fake = fake().await;
    let connection = connection(&fake, &[]);
    for whole in [sample_cancellation(), offline(Some("store"))] {
        // Sent, either API would cancel all three lines: the plugin refuses.
        let outcome = submit(&first_line_only(whole.clone()), &connection).await;
        assert_eq!(
            outcome,
            CallOutcome::Rejected(
                "Optimizely Personalization cancels whole orders; this partial cancellation was \
                 not sent (order 1001, lines 1); bind the job definition with \"appliesTo\": \
                 \"full\""
                    .into()
            )
        );
    }
    assert!(fake.requests().is_empty());
    assert!(fake.online_order("1001").unwrap().is_untouched());
    assert!(fake.offline_order("1001").unwrap().is_untouched());

    // The warranty and discount end the order: full, sent, cancelled whole.
    for whole in [sample_cancellation(), offline(Some("store"))] {
        let rest = Cancellation {
            full: true,
            lines: whole.lines[1..].to_vec(),
            ..whole
        };
        assert!(submit(&rest, &connection).await.is_accepted());
    }
    assert_eq!(fake.requests().len(), 2);
    assert!(fake.online_order("1001").unwrap().is_cancelled());
    assert!(fake.offline_order("1001").unwrap().is_cancelled());
}

#[tokio::test]
async fn a_deleted_offline_order_is_gone_for_a_second_delete() {
    let fake = fake().await;
    let connection = connection(&fake, &[]);
    assert!(
        submit(&offline(Some("store")), &connection)
            .await
            .is_accepted()
    );
    assert_eq!(
        submit(&offline(Some("store")), &connection).await,
        CallOutcome::Rejected(
            "the ERP answered 404 Not Found: offline order 1001 not found in channel store".into()
        )
    );
    assert_eq!(fake.deleted_offline(), ["1001"]);
}

#[tokio::test]
async fn an_order_the_tracker_never_saw_is_not_found() {
    // orderNo is rescind's order number, the one the storefront reported:
    // another number (the ERP's, say) finds nothing.
    let fake = fake().await;
    let erp_number = Cancellation {
        order_number: "ERP-1001".into(),
        ..sample_cancellation()
    };
    assert_eq!(
        submit(&erp_number, &connection(&fake, &[])).await,
        CallOutcome::Rejected(
            "the ERP answered 404 Not Found: no online order ERP-1001 on this site".into()
        )
    );
    assert!(fake.online_cancellations().is_empty());
}

#[tokio::test]
async fn the_fake_refuses_what_optimizely_refuses() {
    let fake = fake().await;
    let client = reqwest::Client::new();
    let tracker = format!(
        "{}/tracker/api/v1_4/{SITE}/order/cancel.pagex",
        fake.base_url()
    );
    let form = |pairs: &[(&str, &str)]| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    };
    let online = [
        (
            form(&[
                ("session", "s"),
                ("cuid", "c"),
                ("orderNo", "1001"),
                ("lines", "1"),
            ]),
            400,
            "unknown parameter lines",
        ),
        (
            form(&[
                ("session", "s"),
                ("cuid", "c"),
                ("orderNo", "1001"),
                ("orderNo", "1002"),
            ]),
            400,
            "parameter orderNo given twice",
        ),
        (
            form(&[("session", "s"), ("orderNo", "1001")]),
            400,
            "missing parameter cuid",
        ),
    ];
    for (body, status, message) in online {
        let answer = client
            .post(&tracker)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .expect("the fake answers");
        assert_eq!(answer.status().as_u16(), status, "{body}");
        let text = answer.text().await.expect("text");
        assert!(text.contains(message), "{body}: {text}");
    }

    let offline = format!("{}/smart-api/orders/offline/1001", fake.base_url());
    /// Headers of the DELETE, the status and a part of the message.
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);
    let cases: [Case<'_>; 4] = [
        (
            &[("site", SITE), ("channel", "store")],
            400,
            "missing header siteToken",
        ),
        (
            &[("site", SITE), ("siteToken", "stale"), ("channel", "store")],
            401,
            "invalid site or siteToken",
        ),
        (
            &[
                ("site", SITE),
                ("siteToken", SITE_TOKEN),
                ("channel", "web"),
            ],
            400,
            "unknown channel web",
        ),
        (
            &[
                ("site", SITE),
                ("siteToken", SITE_TOKEN),
                ("channel", "phone"),
            ],
            404,
            "offline order 1001 not found in channel phone",
        ),
    ];
    for (headers, status, message) in cases {
        let mut request = client
            .delete(&offline)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let answer = request.send().await.expect("the fake answers");
        assert_eq!(answer.status().as_u16(), status, "{headers:?}");
        let text = answer.text().await.expect("text");
        assert!(text.contains(message), "{headers:?}: {text}");
    }
    assert!(fake.online_order("1001").unwrap().is_untouched());
    assert!(fake.offline_order("1001").unwrap().is_untouched());
}
