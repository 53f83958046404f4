//! The compiled personalization plugin, through the runtime, against the
//! fake Optimizely Personalization APIs.

use std::collections::BTreeMap;
use std::sync::Arc;

use rescind_host::plugins::{
    CallLimits, CallOutcome, Cancellation, ConnectionContext, OrderChannel, Plugin, Tracking,
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
    fake.add_offline_order("1001", "store");
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
        .submit(cancellation, connection, &CallLimits::default())
        .await
        .outcome
}

fn offline(channel: Option<&str>) -> Cancellation {
    Cancellation {
        tracking: Some(Tracking {
            channel: OrderChannel::Offline,
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
    // The offline order of the same number is untouched, and the site token
    // never travels to the tracker.
    assert!(fake.has_offline_order("1001"));
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
            &offline(Some("store")),
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
    fake.add_offline_order("2002", "phone");
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
