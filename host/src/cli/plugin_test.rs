//! `rescind plugin test FILE`: runs a plugin component once, in the same
//! sandbox the host gives job attempts, against a sample cancellation and a
//! mock ERP on loopback that records what it receives and answers as told.
//! A plugin author sees the outcome, the requests the plugin sent and its
//! log, before uploading anything.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use clap::Args;

use crate::plugins::{
    CallLimits, CallOutcome, ConnectionContext, LogLine, PluginRuntime, RuntimeConfig,
    sample_cancellation,
};

/// Options of `rescind plugin test`.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// The component (`.wasm`).
    pub file: PathBuf,
    /// A connection setting, `name=value` (repeat).
    #[arg(long = "setting", value_parser = key_value)]
    pub settings: Vec<(String, String)>,
    /// A connection secret, `name=value` (repeat); redacted from the log.
    #[arg(long = "secret", value_parser = key_value)]
    pub secrets: Vec<(String, String)>,
    /// The HTTP status the mock ERP answers with.
    #[arg(long, default_value_t = 200)]
    pub erp_status: u16,
    /// The body the mock ERP answers with (JSON).
    #[arg(long, default_value = r#"{"id":"MOCK-1"}"#)]
    pub erp_body: String,
    /// Cancel only these line numbers (default: the whole sample order).
    #[arg(long = "line", value_delimiter = ',')]
    pub lines: Vec<u32>,
}

/// A request the mock ERP received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body (lossy UTF-8).
    pub body: String,
}

/// What one test run showed.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// How the call ended.
    pub outcome: CallOutcome,
    /// What the mock ERP received, in order.
    pub requests: Vec<ReceivedRequest>,
    /// The plugin's log (bounded, secrets redacted).
    pub log: Vec<LogLine>,
    /// The mock ERP's address (the connection's base URL).
    pub erp: SocketAddr,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(k, _)| !k.trim().is_empty())
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected name=value, got {text:?}"))
}

#[derive(Clone)]
struct MockErp {
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
    status: StatusCode,
    body: String,
}

async fn answer(State(erp): State<MockErp>, request: Request) -> impl IntoResponse {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    erp.received
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(ReceivedRequest {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    (
        erp.status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        erp.body.clone(),
    )
}

/// Runs the plugin once against the sample cancellation and a mock ERP.
/// Fails (with the host's explanation) when the file is not a plugin this
/// host would load.
pub async fn test_plugin(args: &TestArgs) -> anyhow::Result<TestReport> {
    let bytes = tokio::fs::read(&args.file)
        .await
        .with_context(|| format!("reading {}", args.file.display()))?;
    let status = StatusCode::from_u16(args.erp_status)
        .with_context(|| format!("--erp-status {} is not an HTTP status", args.erp_status))?;
    let runtime = PluginRuntime::new(RuntimeConfig {
        max_concurrent_calls: 1,
        ..RuntimeConfig::default()
    })
    .context("starting the plugin runtime")?;
    // The file's name when it makes a plugin name (`My_Erp.wasm` runs as
    // `my_erp`), else `plugin`: the name only labels the run.
    let name = args
        .file
        .file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_ascii_lowercase)
        .filter(|s| crate::plugins::validate_plugin_name(s).is_ok())
        .unwrap_or_else(|| "plugin".to_owned());
    let plugin = {
        let runtime = runtime.clone();
        tokio::task::spawn_blocking(move || runtime.load(&name, &bytes))
            .await
            .context("compiling the plugin")??
    };

    let erp = MockErp {
        received: Arc::default(),
        status,
        body: args.erp_body.clone(),
    };
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("starting the mock ERP")?;
    let addr = listener.local_addr()?;
    let app = Router::new().fallback(answer).with_state(erp.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut cancellation = sample_cancellation();
    if !args.lines.is_empty() {
        let unknown: Vec<u32> = args
            .lines
            .iter()
            .copied()
            .filter(|n| !cancellation.all_line_numbers.contains(n))
            .collect();
        if !unknown.is_empty() {
            server.abort();
            bail!(
                "the sample order has lines {:?}, not {unknown:?}",
                cancellation.all_line_numbers
            );
        }
        cancellation
            .lines
            .retain(|l| args.lines.contains(&l.line_number));
        cancellation.full = false;
        cancellation.refund = None;
    }
    let connection = ConnectionContext {
        name: "mock-erp".to_owned(),
        base_url: format!("http://{addr}"),
        allowed_hosts: vec![addr.to_string()],
        settings: args.settings.iter().cloned().collect::<BTreeMap<_, _>>(),
        secrets: args.secrets.iter().cloned().collect::<BTreeMap<_, _>>(),
        ..ConnectionContext::default()
    };
    let report = plugin
        .submit(&cancellation, &connection, &CallLimits::default())
        .await;
    server.abort();
    let requests = erp
        .received
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(TestReport {
        outcome: report.outcome,
        requests,
        log: report.log,
        erp: addr,
    })
}

/// Prints a report; answers whether the ERP accepted.
pub fn print_report(report: &TestReport) -> bool {
    println!("mock ERP on http://{}", report.erp);
    for (n, request) in report.requests.iter().enumerate() {
        println!("request {}: {} {}", n + 1, request.method, request.path);
        for (name, value) in &request.headers {
            println!("  {name}: {value}");
        }
        if !request.body.is_empty() {
            println!("  {}", request.body);
        }
    }
    if report.requests.is_empty() {
        println!("the plugin sent no request to the ERP");
    }
    for line in &report.log {
        println!(
            "log [{}] {}: {}",
            line.source.as_str(),
            line.level.as_str(),
            line.message
        );
    }
    println!("outcome: {}", report.outcome);
    matches!(report.outcome, CallOutcome::Accepted { .. })
}
