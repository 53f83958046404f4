//! Kept-alive outbound connections through the real runtime: the
//! `egress-probe` guest's requests to a loopback ERP that counts the TCP
//! connections it accepts and how many are still open.
//!
//! Each test has a runtime of its own, so that the connections it counts
//! are its own.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rescind_host::plugins::{
    CallLimits, CallOutcome, CallReport, ConnectionContext, Plugin, PluginRuntime,
    ResolveOverrides, RuntimeConfig,
};
use rescind_tests::erp_server::ErpServer;
use rescind_tests::plugin_fixtures::sample_cancellation;
use serde_json::json;

use crate::egress::{assert_accepted, wait_until};

/// A runtime keeping idle connections for `keep_alive`, with
/// `erp.customer.test` pinned to loopback, and the probe loaded in it.
fn runtime(keep_alive: Duration) -> (PluginRuntime, Arc<Plugin>) {
    let mut resolve = ResolveOverrides::default();
    resolve.insert("erp.customer.test", "127.0.0.1".parse::<IpAddr>().unwrap());
    let runtime = PluginRuntime::new(RuntimeConfig {
        resolve,
        keep_alive,
        ..RuntimeConfig::default()
    })
    .expect("the plugin runtime starts");
    let bytes = std::fs::read(rescind_test_artifacts::EGRESS_PROBE).expect("the probe");
    let probe = runtime
        .load("egress-probe", &bytes)
        .expect("the probe loads");
    (runtime, probe)
}

/// Long enough that no pause of a loaded machine lets a kept connection
/// expire within a test.
const KEPT: Duration = Duration::from_secs(120);

/// A connection named `name` on which the probe requests `url` `repeat`
/// times per call, the private network open (the ERP is on loopback).
fn connection(name: &str, host: &str, url: &str, repeat: usize) -> ConnectionContext {
    ConnectionContext {
        name: name.into(),
        base_url: format!("http://{host}"),
        allowed_hosts: vec![format!("http://{host}")],
        allow_private_network: true,
        settings: BTreeMap::from([
            ("urls".to_owned(), json!([url]).to_string()),
            ("repeat".to_owned(), repeat.to_string()),
        ]),
        ..ConnectionContext::default()
    }
}

async fn submit(probe: &Plugin, connection: &ConnectionContext) -> CallReport {
    probe
        .submit(sample_cancellation(), connection, &CallLimits::default())
        .await
}

#[tokio::test]
async fn a_plugins_requests_to_one_erp_share_one_kept_connection() {
    let (runtime, probe) = runtime(KEPT);
    let erp = ErpServer::start().await;
    let connection = connection("erp", &erp.authority(), &erp.url("/ping"), 5);
    for _ in 0..3 {
        assert_accepted(&submit(&probe, &connection).await);
    }
    assert_eq!(erp.requests().len(), 15);
    assert_eq!(
        erp.connections(),
        1,
        "every request of the three calls went over one connection"
    );
    assert_eq!(runtime.idle_connections(), 1);
}

#[tokio::test]
async fn a_kept_connection_serves_only_the_connection_it_was_opened_for() {
    let (runtime, probe) = runtime(KEPT);
    let erp = ErpServer::start().await;
    let (host, url) = (erp.authority(), erp.url("/ping"));
    assert_accepted(&submit(&probe, &connection("erp", &host, &url, 1)).await);
    assert_accepted(&submit(&probe, &connection("erp-2", &host, &url, 1)).await);
    assert_eq!(
        erp.connections(),
        2,
        "two connections' settings never share a TCP connection"
    );
    assert_eq!(runtime.idle_connections(), 2);
}

#[tokio::test]
async fn a_kept_connection_is_not_taken_once_its_address_is_refused() {
    let (_runtime, probe) = runtime(KEPT);
    let erp = ErpServer::start().await;
    let port = erp.authority().rsplit_once(':').unwrap().1.to_owned();
    let host = format!("erp.customer.test:{port}");
    let url = format!("http://{host}/ping");
    let open = connection("erp", &host, &url, 1);
    assert_accepted(&submit(&probe, &open).await);
    assert_eq!(erp.open_connections(), 1, "the connection is kept");

    // The operator closes the private network: the name still resolves to
    // loopback, and the request is refused before the kept connection is
    // looked at.
    let closed = ConnectionContext {
        allow_private_network: false,
        ..open
    };
    let report = submit(&probe, &closed).await;
    match &report.outcome {
        CallOutcome::Misconfigured(message) => assert!(
            message.contains("resolved to 127.0.0.1 (loopback)"),
            "{message}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(erp.requests().len(), 1, "nothing more reached the ERP");
}

#[tokio::test]
async fn a_connection_the_erp_closed_is_not_used_again() {
    let (runtime, probe) = runtime(KEPT);
    let erp = ErpServer::start().await;
    let addr = erp.authority();
    let connection = connection("erp", &addr, &format!("http://{addr}/ping"), 1);
    assert_accepted(&submit(&probe, &connection).await);
    assert_eq!(runtime.idle_connections(), 1);

    // The ERP restarts on the same port: its old connections close.
    drop(erp);
    wait_until("the host to see the ERP close the kept connection", || {
        runtime.idle_connections() == 0
    })
    .await;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("the port is free again");
    let erp = ErpServer::start_on(listener, |_| {
        rescind_tests::erp_server::Scripted::json(200, "{}")
    });
    assert_accepted(&submit(&probe, &connection).await);
    assert_eq!(erp.requests().len(), 1);
    assert_eq!(erp.connections(), 1);
}

#[tokio::test]
async fn the_host_closes_a_connection_idle_past_the_keep_alive() {
    let (runtime, probe) = runtime(Duration::from_millis(300));
    let erp = ErpServer::start().await;
    let connection = connection("erp", &erp.authority(), &erp.url("/ping"), 1);
    assert_accepted(&submit(&probe, &connection).await);
    assert_eq!(erp.connections(), 1);
    wait_until("the host to close the idle connection", || {
        erp.open_connections() == 0
    })
    .await;
    assert_eq!(runtime.idle_connections(), 0);

    // The next call opens a new one.
    assert_accepted(&submit(&probe, &connection).await);
    assert_eq!(erp.connections(), 2);
}

#[tokio::test]
async fn with_no_keep_alive_every_request_has_a_connection_of_its_own() {
    let (runtime, probe) = runtime(Duration::ZERO);
    let erp = ErpServer::start().await;
    let connection = connection("erp", &erp.authority(), &erp.url("/ping"), 3);
    assert_accepted(&submit(&probe, &connection).await);
    assert_eq!(erp.requests().len(), 3);
    assert_eq!(erp.connections(), 3);
    assert_eq!(runtime.idle_connections(), 0);
    wait_until("every connection to close", || erp.open_connections() == 0).await;
}
