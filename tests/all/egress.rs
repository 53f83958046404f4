//! Egress through the real runtime: the `egress-probe` guest makes the
//! wasi:http requests its settings list, and the host checks each one by
//! name and by every resolved address, sends it over its own client (TLS
//! verified against the name), and bounds what a call can make it hold.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rescind_host::plugins::{
    CallLimits, CallOutcome, CallReport, ConnectionContext, Plugin, PluginRuntime,
    ResolveOverrides, RuntimeConfig, SendWindow,
};
use rescind_tests::erp_server::{ErpServer, Scripted};
use rescind_tests::plugin_fixtures::sample_cancellation;
use rescind_tests::raw_erp::{RawAnswer, RawErp, private_ca_tls};
use serde_json::{Value, json};

/// Names this runtime pins, like `rescind serve --resolve`.
const PINNED: &[(&str, &str)] = &[
    ("erp.customer.test", "127.0.0.1"),
    ("tls.customer.test", "127.0.0.1"),
    ("mapped.customer.test", "::ffff:127.0.0.1"),
    ("private.customer.test", "10.0.0.5"),
    ("metadata-alias.test", "169.254.169.254"),
];

fn runtime() -> &'static PluginRuntime {
    static RUNTIME: OnceLock<PluginRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let mut resolve = ResolveOverrides::default();
        for (name, address) in PINNED {
            resolve.insert(name, address.parse::<IpAddr>().expect("an address"));
        }
        PluginRuntime::new(RuntimeConfig {
            resolve,
            ..RuntimeConfig::default()
        })
        .expect("the plugin runtime starts")
    })
}

fn probe() -> Arc<Plugin> {
    static PROBE: OnceLock<Arc<Plugin>> = OnceLock::new();
    Arc::clone(PROBE.get_or_init(|| {
        let bytes = std::fs::read(rescind_test_artifacts::EGRESS_PROBE).expect("the probe");
        runtime()
            .load("egress-probe", &bytes)
            .expect("the probe loads")
    }))
}

/// A connection named `erp` allowing `hosts`, the probe told to request
/// `urls` and then answer `transient` (a retry the host must not allow when
/// it refused a request).
fn connection(hosts: &[&str], urls: &[String]) -> ConnectionContext {
    ConnectionContext {
        name: "erp".into(),
        base_url: "http://erp.customer.test".into(),
        allowed_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        settings: BTreeMap::from([
            ("urls".to_owned(), json!(urls).to_string()),
            ("answer".to_owned(), "transient".to_owned()),
        ]),
        ..ConnectionContext::default()
    }
}

fn accepting(mut connection: ConnectionContext) -> ConnectionContext {
    connection.settings.remove("answer");
    connection
}

fn limits() -> CallLimits {
    CallLimits {
        log_line_bytes: 4096,
        ..CallLimits::default()
    }
}

async fn submit(connection: &ConnectionContext) -> CallReport {
    probe()
        .submit(sample_cancellation(), connection, &limits())
        .await
}

/// The probe's result for each request, from its log lines
/// (`probe <n> <json>`).
fn results(report: &CallReport) -> Vec<Value> {
    report
        .log
        .iter()
        .filter_map(|l| l.message.strip_prefix("probe "))
        .map(|rest| {
            let (_, json) = rest.split_once(' ').expect("probe <n> <json>");
            serde_json::from_str(json).expect("the probe's JSON")
        })
        .collect()
}

fn misconfigured(report: &CallReport) -> &str {
    match &report.outcome {
        CallOutcome::Misconfigured(message) => message,
        other => panic!(
            "expected misconfigured, got {other:?}; log {:?}",
            report.log
        ),
    }
}

pub(super) fn assert_accepted(report: &CallReport) {
    assert!(
        report.outcome.is_accepted(),
        "{:?}; log {:?}",
        report.outcome,
        report.log
    );
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_unless_the_connection_opens_it() {
    let erp = ErpServer::start().await;
    let port = erp.authority().rsplit_once(':').unwrap().1.to_owned();
    let url = format!("http://erp.customer.test:{port}/cancel");
    let entry = format!("http://erp.customer.test:{port}");

    // Refused: nothing sent, and the plugin's "retry me" is overruled.
    let refused = submit(&connection(&[&entry], std::slice::from_ref(&url))).await;
    assert_eq!(
        misconfigured(&refused),
        "egress refused: erp.customer.test resolved to 127.0.0.1 (loopback); list the address \
         or set allowPrivateNetwork on connection \"erp\""
    );
    assert!(!refused.outcome.is_retryable());
    assert_eq!(results(&refused)[0]["error"], "DestinationIpProhibited");
    assert!(erp.requests().is_empty(), "nothing may reach the ERP");

    // Opened by allowPrivateNetwork…
    let mut opened = accepting(connection(&[&entry], std::slice::from_ref(&url)));
    opened.allow_private_network = true;
    let report = submit(&opened).await;
    assert_accepted(&report);
    assert_eq!(results(&report)[0]["status"], 200);
    assert_eq!(erp.requests().len(), 1);

    // …or by listing the address itself.
    let listed = accepting(connection(
        &[&entry, &erp.authority()],
        std::slice::from_ref(&url),
    ));
    let report = submit(&listed).await;
    assert_accepted(&report);
    assert_eq!(erp.requests().len(), 2);
}

#[tokio::test]
async fn localhost_is_a_name_like_any_other() {
    let erp = ErpServer::start().await;
    let port = erp.authority().rsplit_once(':').unwrap().1.to_owned();
    let url = format!("http://localhost:{port}/");
    let report = submit(&connection(
        &[&format!("http://localhost:{port}")],
        std::slice::from_ref(&url),
    ))
    .await;
    let message = misconfigured(&report);
    assert!(
        message.starts_with("egress refused: localhost resolved to ")
            && message.contains("(loopback)"),
        "{message}"
    );
    assert!(erp.requests().is_empty());
}

#[tokio::test]
async fn cloud_metadata_is_never_reached_even_with_the_private_network_open() {
    // Through a name that resolves there.
    let mut by_name = connection(
        &["http://metadata-alias.test"],
        &["http://metadata-alias.test/latest/meta-data/".to_owned()],
    );
    by_name.allow_private_network = true;
    let report = submit(&by_name).await;
    assert_eq!(
        misconfigured(&report),
        "egress refused: metadata-alias.test resolved to 169.254.169.254 (cloud metadata), \
         which plugins may never reach"
    );
    assert_eq!(results(&report)[0]["error"], "DestinationIpProhibited");

    // Literally: a connection cannot even list it, so the plugin never runs.
    let mut literal = connection(
        &["169.254.169.254"],
        &["http://169.254.169.254/latest/meta-data/".to_owned()],
    );
    literal.allow_private_network = true;
    let report = submit(&literal).await;
    assert!(
        misconfigured(&report).contains("cloud metadata endpoint"),
        "{report:?}"
    );
    assert!(results(&report).is_empty(), "the plugin must not have run");

    // Literally, from a connection that lists something else; and by its
    // well-known name.
    let mut other = connection(
        &["https://erp.example.com"],
        &[
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "http://metadata.google.internal/computeMetadata/v1/".to_owned(),
        ],
    );
    other.allow_private_network = true;
    let report = submit(&other).await;
    assert_eq!(
        misconfigured(&report),
        "egress refused: http://169.254.169.254:80 is not in the allowedHosts of connection \
         \"erp\"; add it there if the plugin should reach it"
    );
    let probed = results(&report);
    assert_eq!(probed[0]["error"], "HttpRequestDenied");
    assert_eq!(probed[1]["error"], "HttpRequestDenied");
    assert!(
        report.log.iter().any(|l| l
            .message
            .contains("metadata.google.internal is a cloud metadata endpoint")),
        "{:?}",
        report.log
    );
}

#[tokio::test]
async fn a_private_address_is_refused_before_any_connection() {
    let report = submit(&connection(
        &["http://private.customer.test:8080"],
        &["http://private.customer.test:8080/".to_owned()],
    ))
    .await;
    assert_eq!(
        misconfigured(&report),
        "egress refused: private.customer.test resolved to 10.0.0.5 (private); list the address \
         or set allowPrivateNetwork on connection \"erp\""
    );
    // The refusal, not a connection that failed or timed out.
    assert_eq!(results(&report)[0]["error"], "DestinationIpProhibited");
}

#[tokio::test]
async fn other_spellings_of_loopback_are_refused() {
    let erp = ErpServer::start().await;
    let port = erp.authority().rsplit_once(':').unwrap().1.to_owned();
    let urls: Vec<String> = [
        "[::ffff:127.0.0.1]",
        "[::127.0.0.1]",
        "2130706433",
        "0x7f.1",
        "127.1",
        "mapped.customer.test",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/"))
    .collect();
    let report = submit(&connection(
        &[
            "https://erp.example.com",
            &format!("http://mapped.customer.test:{port}"),
        ],
        &urls,
    ))
    .await;
    assert_eq!(
        misconfigured(&report),
        format!(
            "egress refused: http://[::ffff:127.0.0.1]:{port} is not in the allowedHosts of \
             connection \"erp\"; add it there if the plugin should reach it"
        )
    );
    let probed = results(&report);
    for result in &probed[..5] {
        assert_eq!(result["error"], "HttpRequestDenied", "{result}");
    }
    // A listed name resolving to an IPv6 form of loopback is loopback.
    assert_eq!(probed[5]["error"], "DestinationIpProhibited");
    assert!(
        report.log.iter().any(|l| l
            .message
            .contains("mapped.customer.test resolved to ::ffff:127.0.0.1 (loopback)")),
        "{:?}",
        report.log
    );
    assert!(erp.requests().is_empty());
}

#[tokio::test]
async fn user_info_in_the_url_is_refused() {
    let erp = ErpServer::start().await;
    let port = erp.authority().rsplit_once(':').unwrap().1.to_owned();
    let report = submit(&connection(
        &[&erp.authority()],
        &[format!("http://allowed.example.com@127.0.0.1:{port}/")],
    ))
    .await;
    assert!(
        misconfigured(&report).contains("carries user info"),
        "{:?}",
        report.outcome
    );
    assert_eq!(results(&report)[0]["error"], "HttpRequestDenied");
    assert!(erp.requests().is_empty());
}

#[tokio::test]
async fn a_redirect_to_an_internal_address_is_not_followed() {
    let internal = ErpServer::start().await;
    let erp = ErpServer::start().await;
    erp.script([Scripted {
        headers: vec![("location".into(), internal.url("/admin/secrets"))],
        ..Scripted::status(302)
    }]);

    let report = submit(&accepting(connection(
        &[&erp.authority()],
        &[erp.url("/cancel")],
    )))
    .await;

    assert_accepted(&report);
    let probed = results(&report);
    assert_eq!(probed[0]["status"], 302);
    assert_eq!(probed[0]["location"], internal.url("/admin/secrets"));
    assert_eq!(erp.requests().len(), 1);
    assert!(internal.requests().is_empty(), "the redirect was followed");

    // The SDK's client does not follow it either: the webhook plugin
    // reports it as a misconfiguration.
    let webhook =
        rescind_tests::plugin_fixtures::plugin("webhook", rescind_test_artifacts::WEBHOOK);
    erp.script([Scripted {
        headers: vec![("location".into(), internal.url("/admin/secrets"))],
        ..Scripted::status(302)
    }]);
    let report = webhook
        .submit(
            sample_cancellation(),
            &ConnectionContext {
                name: "erp".into(),
                base_url: erp.url(""),
                allowed_hosts: vec![erp.authority()],
                secrets: BTreeMap::from([("signingKey".to_owned(), "k".to_owned())]),
                ..ConnectionContext::default()
            },
            &CallLimits::default(),
        )
        .await;
    let message = misconfigured(&report);
    assert!(message.contains("redirects are not followed"), "{message}");
    assert!(
        internal.requests().is_empty(),
        "the SDK followed the redirect"
    );
}

#[tokio::test]
async fn a_call_makes_at_most_16_requests() {
    let erp = ErpServer::start().await;
    let mut at_limit = accepting(connection(&[&erp.authority()], &[erp.url("/")]));
    at_limit.settings.insert("repeat".into(), "16".into());
    let report = submit(&at_limit).await;
    assert_accepted(&report);
    assert!(results(&report).iter().all(|r| r["status"] == 200));
    assert_eq!(erp.requests().len(), 16);

    let mut over = at_limit.clone();
    over.settings.insert("repeat".into(), "100".into());
    let report = submit(&over).await;
    let probed = results(&report);
    assert_eq!(probed.len(), 100);
    assert!(probed[..16].iter().all(|r| r["status"] == 200));
    assert!(
        probed[16..]
            .iter()
            .all(|r| r["error"] == "ConnectionLimitReached"),
        "{:?}",
        &probed[16]
    );
    assert_eq!(erp.requests().len(), 32, "only 16 more may have been sent");
    let warnings: Vec<_> = report
        .log
        .iter()
        .filter(|l| l.message.contains("at most 16 requests"))
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", report.log);
}

#[tokio::test]
async fn request_headers_are_bounded() {
    let erp = ErpServer::start().await;
    let authority = erp.authority();
    // host: <authority> and x-pad: <n>, each with `: ` and CRLF.
    let fixed = "host".len() + authority.len() + 4 + "x-pad".len() + 4;
    let limit = CallLimits::default().request_header_bytes;
    for (pad, allowed) in [(limit - fixed, true), (limit - fixed + 1, false)] {
        let mut probe_connection = accepting(connection(&[&authority], &[erp.url("/")]));
        probe_connection
            .settings
            .insert("padHeaderBytes".into(), pad.to_string());
        let before = erp.requests().len();
        let report = submit(&probe_connection).await;
        let result = &results(&report)[0];
        if allowed {
            assert_eq!(result["status"], 200, "{result}");
            assert_eq!(erp.requests().len(), before + 1);
        } else {
            assert_eq!(
                result["error"],
                format!("HttpRequestHeaderSectionSize(Some({}))", limit + 1),
                "{result}"
            );
            assert_eq!(erp.requests().len(), before, "nothing may be sent");
        }
    }
}

#[tokio::test]
async fn response_heads_are_bounded() {
    let defaults = CallLimits::default();
    let cases = [
        (RawAnswer::head_of(defaults.response_header_bytes), true),
        (
            RawAnswer::head_of(defaults.response_header_bytes + 1),
            false,
        ),
        (RawAnswer::fields(defaults.response_header_fields), true),
        (
            RawAnswer::fields(defaults.response_header_fields + 1),
            false,
        ),
    ];
    for (i, (answer, allowed)) in cases.into_iter().enumerate() {
        let erp = RawErp::start(answer).await;
        let report = submit(&accepting(connection(
            &[&erp.authority()],
            &[format!("http://{}/", erp.authority())],
        )))
        .await;
        let result = &results(&report)[0];
        if allowed {
            assert_eq!(result["status"], 200, "case {i}: {result}");
        } else {
            assert_eq!(
                result["error"],
                format!(
                    "HttpResponseHeaderSectionSize(Some({}))",
                    defaults.response_header_bytes
                ),
                "case {i}: {result}"
            );
            assert!(
                report.log.iter().any(|l| l
                    .message
                    .contains("limit: response header bytes and fields")),
                "case {i}: {:?}",
                report.log
            );
        }
    }
}

/// The process's resident set, from `/proc/self/status`.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Waits (bounded: 30 s) until `done` holds.
pub(super) async fn wait_until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited 30 s for {what}");
}

#[tokio::test]
async fn a_1_gib_response_body_is_cut_at_8_mib_while_it_streams() {
    const GIB: u64 = 1024 * 1024 * 1024;
    let limit = CallLimits::default().response_body_bytes;

    // At the limit: the whole body arrives.
    let exact = RawErp::start(RawAnswer::body(limit, 64 * 1024, Duration::ZERO)).await;
    let report = submit(&accepting(connection(
        &[&exact.authority()],
        &[format!("http://{}/", exact.authority())],
    )))
    .await;
    let result = &results(&report)[0];
    assert_eq!(result["bodyBytes"], limit, "{result}");
    assert!(result["bodyError"].is_null(), "{result}");

    // A gibibyte: cut as soon as the count crosses the limit.
    let erp = RawErp::start(RawAnswer::body(GIB, 64 * 1024, Duration::ZERO)).await;
    let rss_before = rss_bytes();
    let report = submit(&accepting(connection(
        &[&erp.authority()],
        &[format!("http://{}/", erp.authority())],
    )))
    .await;
    let rss_after = rss_bytes();
    let result = &results(&report)[0];
    // wasmtime-wasi-http 48 hands a body stream's error to the guest as
    // text, not as an error code.
    assert_eq!(
        result["bodyError"],
        format!("HTTP response body size exceeds limit: {limit} bytes"),
        "{result}"
    );
    assert!(result["bodyBytes"].as_u64().unwrap() <= limit, "{result}");
    assert!(
        report
            .log
            .iter()
            .any(|l| l.message.contains("limit: response body bytes")),
        "{:?}",
        report.log
    );
    // The host hung up: the ERP could write the limit plus what the socket
    // buffers hold, not the gibibyte. What the host read is all it could
    // hold.
    wait_until("the ERP to see the hang-up", || erp.hangups() == 1).await;
    let written = erp.written();
    assert!(
        written < limit + 32 * 1024 * 1024,
        "the ERP wrote {written} bytes before the host hung up"
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        println!(
            "1 GiB body: ERP wrote {written} bytes; host RSS {before} -> {after} bytes ({:+} MiB)",
            (after as i64 - before as i64) / (1024 * 1024)
        );
    }
}

#[tokio::test]
async fn a_trickling_body_is_cut_at_the_deadline() {
    // One byte every 100 ms: never long enough between bytes to time out,
    // but a megabyte would take a day.
    let erp = RawErp::start(RawAnswer::body(1024 * 1024, 1, Duration::from_millis(100))).await;
    let deadline = Duration::from_secs(1);
    let report = probe()
        .submit(
            sample_cancellation(),
            &accepting(connection(
                &[&erp.authority()],
                &[format!("http://{}/", erp.authority())],
            )),
            &CallLimits {
                deadline,
                ..limits()
            },
        )
        .await;
    assert_eq!(report.outcome, CallOutcome::DeadlineExceeded(deadline));
    wait_until("the ERP to see the hang-up", || erp.hangups() == 1).await;
}

#[tokio::test]
async fn a_private_ca_is_trusted_only_when_the_connection_names_it() {
    let ok = RawAnswer::Bytes(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_vec(),
    );
    let (config, ca_pem) = private_ca_tls("tls.customer.test");
    let erp = RawErp::start_tls(ok.clone(), config).await;
    let port = erp.port();
    let entry = format!("tls.customer.test:{port}");
    let url = format!("https://tls.customer.test:{port}/cancel");

    // Without the CA: misconfigured, with the reason, not retried.
    let mut untrusted = connection(&[&entry], std::slice::from_ref(&url));
    untrusted.allow_private_network = true;
    let report = submit(&untrusted).await;
    let message = misconfigured(&report);
    assert!(
        message.starts_with(&format!(
            "TLS certificate of https://tls.customer.test:{port} not accepted"
        )) && message.contains("UnknownIssuer")
            && message.contains("caCertificates on connection \"erp\""),
        "{message}"
    );
    assert_eq!(results(&report)[0]["error"], "TlsCertificateError");

    // With it: the request goes through, verified against the name.
    let mut trusted = accepting(untrusted.clone());
    trusted.ca_certificates = Some(ca_pem.clone());
    let report = submit(&trusted).await;
    assert_accepted(&report);
    assert_eq!(results(&report)[0]["status"], 200);
    assert_eq!(results(&report)[0]["bodyBytes"], 2);

    // The same CA does not make a certificate for another name pass.
    let (other_config, other_ca) = private_ca_tls("other.test");
    let other = RawErp::start_tls(ok, other_config).await;
    let mut wrong_name = connection(
        &[&format!("tls.customer.test:{}", other.port())],
        &[format!("https://tls.customer.test:{}/", other.port())],
    );
    wrong_name.allow_private_network = true;
    wrong_name.ca_certificates = Some(other_ca);
    let report = submit(&wrong_name).await;
    let message = misconfigured(&report);
    assert!(
        message.contains("not valid for name \"tls.customer.test\"")
            && message.contains("reach the ERP by a name its certificate carries"),
        "{message}"
    );

    // A CA that is not PEM stops the call before the plugin runs.
    let mut broken = trusted;
    broken.ca_certificates = Some("not a certificate".into());
    let report = submit(&broken).await;
    assert!(
        misconfigured(&report).contains("caCertificates"),
        "{report:?}"
    );
    assert!(results(&report).is_empty());
}

/// A connection's own CAs are parsed and set up for TLS once, not for every
/// call: the TLS sessions of its ERP are kept between calls, so a call after
/// the first resumes one instead of a full handshake (the ERP closes every
/// connection after its answer, so each call opens a new one). A connection
/// with other CAs shares none of them.
#[tokio::test]
async fn calls_of_a_connection_with_its_own_ca_resume_its_tls_sessions() {
    let ok = RawAnswer::Bytes(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_vec(),
    );
    let (config, ca_pem) = private_ca_tls("tls.customer.test");
    let erp = RawErp::start_tls(ok, config).await;
    let port = erp.port();
    let mut trusted = accepting(connection(
        &[&format!("tls.customer.test:{port}")],
        &[format!("https://tls.customer.test:{port}/cancel")],
    ));
    trusted.allow_private_network = true;
    trusted.ca_certificates = Some(ca_pem.clone());
    // The probe's runtime is one, as the host's is: what it keeps, it keeps
    // across calls.
    for call in 1..=3 {
        let report = submit(&trusted).await;
        assert_accepted(&report);
        wait_until("the ERP to count the handshake", || {
            erp.handshakes().0 == call
        })
        .await;
    }
    assert_eq!(
        erp.handshakes(),
        (3, 2),
        "the first call's handshake is full, the next two resume its session"
    );

    // The same CA text pasted with a comment above it is other text: its
    // own set-up, with no session of the first.
    let mut annotated = trusted.clone();
    annotated.ca_certificates = Some(format!("# the ERP's CA\n{ca_pem}"));
    let report = submit(&annotated).await;
    assert_accepted(&report);
    wait_until("the ERP to count the handshake", || erp.handshakes().0 == 4).await;
    assert_eq!(erp.handshakes(), (4, 2), "a full handshake for other roots");
}

#[tokio::test]
async fn a_plugin_built_with_the_sdk_sees_the_body_limit_as_a_limit() {
    let erp = RawErp::start(RawAnswer::body(
        1024 * 1024 * 1024,
        64 * 1024,
        Duration::ZERO,
    ))
    .await;
    let webhook =
        rescind_tests::plugin_fixtures::plugin("webhook", rescind_test_artifacts::WEBHOOK);
    let report = webhook
        .submit(
            sample_cancellation(),
            &ConnectionContext {
                name: "erp".into(),
                base_url: format!("http://{}", erp.authority()),
                allowed_hosts: vec![erp.authority()],
                secrets: BTreeMap::from([("signingKey".to_owned(), "k".to_owned())]),
                ..ConnectionContext::default()
            },
            &CallLimits::default(),
        )
        .await;
    match &report.outcome {
        CallOutcome::Rejected(message) => assert!(
            message.contains("the answer's body exceeds the host's limit")
                && message.contains("retrying would not change it"),
            "{message}"
        ),
        other => panic!("expected a rejection naming the limit, got {other:?}"),
    }
    wait_until("the ERP to see the hang-up", || erp.hangups() == 1).await;
}

#[tokio::test]
async fn once_the_send_window_has_closed_nothing_is_sent() {
    let erp = ErpServer::start().await;
    let url = erp.url("/cancel");
    let mut open = accepting(connection(&[&erp.authority()], std::slice::from_ref(&url)));
    open.allow_private_network = true;

    // Open: the request goes out.
    let window = SendWindow::until(Instant::now() + Duration::from_secs(60));
    let report = probe()
        .submit_within(sample_cancellation(), &open, &limits(), Some(&window))
        .await;
    assert_accepted(&report);
    assert_eq!(erp.requests().len(), 1);

    // Closed (the job's lease ran out while the worker was paused): the
    // request is refused before anything is sent, and the log says why.
    let closed = SendWindow::until(Instant::now());
    let report = probe()
        .submit_within(sample_cancellation(), &open, &limits(), Some(&closed))
        .await;
    assert_eq!(results(&report)[0]["error"], "HttpRequestDenied");
    assert!(
        report
            .log
            .iter()
            .any(|l| l.message.contains("the job's lease ran out")),
        "{:?}",
        report.log
    );
    assert_eq!(erp.requests().len(), 1, "nothing more reached the ERP");
    // The outcome is the host's, not the plugin's: the plugin took the
    // refusal for the allow-list's, but the connection is fine and nothing
    // was sent, so the attempt is a passing failure (retried, never failed
    // for good).
    match &report.outcome {
        CallOutcome::Transient(message) => assert!(
            message.contains("the job's lease ran out") && message.contains("nothing was sent"),
            "{message}"
        ),
        other => panic!("expected a passing failure, got {other:?}"),
    }
}

/// The ERP exchange of a call keeps at most 16 requests, whatever the
/// plugin is allowed to send: the rest are sent, and only counted.
#[tokio::test]
async fn a_call_records_at_most_sixteen_exchanges_and_counts_the_rest() {
    let erp = ErpServer::start().await;
    let mut connection = accepting(connection(&[&erp.authority()], &[erp.url("/ping")]));
    connection
        .settings
        .insert("repeat".to_owned(), "20".to_owned());
    let limits = CallLimits {
        outbound_requests: 20,
        ..limits()
    };
    let report = probe()
        .submit(sample_cancellation(), &connection, &limits)
        .await;
    assert_accepted(&report);
    assert_eq!(erp.requests().len(), 20, "every request went out");
    let recorded = &report.exchange;
    assert_eq!(
        recorded.exchanges.len(),
        rescind_host::plugins::MAX_RECORDED_EXCHANGES
    );
    assert_eq!(recorded.not_recorded, 4);
    for exchange in &recorded.exchanges {
        assert_eq!(exchange.method, "GET");
        assert_eq!(exchange.url, erp.url("/ping"));
        assert!(exchange.status.is_some(), "{exchange:?}");
        assert_eq!(exchange.error, None);
    }
}

/// A request the egress policy refuses is in the exchange with the error
/// code the plugin got, and no answer.
#[tokio::test]
async fn a_refused_request_is_recorded_with_its_error_code() {
    let erp = ErpServer::start().await;
    let report = submit(&connection(&["erp.example.com"], &[erp.url("/cancel")])).await;
    misconfigured(&report);
    let exchange = &report.exchange.exchanges[0];
    assert_eq!(exchange.url, erp.url("/cancel"));
    assert_eq!(exchange.error.as_deref(), Some("HTTP-request-denied"));
    assert_eq!(exchange.status, None);
    assert_eq!(exchange.response_body, None);
    assert!(erp.requests().is_empty());
}
