//! `rescind jobs show`: a job of a running host (`GET /v1/admin/jobs/{id}`)
//! in a readable form: the job, then each attempt with its outcome, the
//! plugin's log and the ERP exchange, every request as `>` lines and every
//! answer as `<` lines, the way `curl -v` shows them.
//!
//! `rescind jobs prune --older-than 30d`: deletes a running host's finished
//! jobs older than that now (`POST /v1/admin/jobs/prune`, called again
//! until none is left), what its job retention does every hour.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::{Exit, report_error};
use crate::api::{AttemptView, BodyView, ExchangeView, HeaderView, JobView, PruneView};

/// `rescind jobs …`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: JobsCommand,
}

/// The jobs subcommands.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Show a job with every attempt: outcome, plugin log, and what the
    /// plugin sent to the ERP and what the ERP answered.
    Show(ShowArgs),
    /// Delete finished jobs (succeeded or failed) older than an age, with
    /// their attempts, now: what the host's `--job-retention` does every
    /// hour. Queued, running and retrying jobs and cancellations stay.
    Prune(PruneArgs),
}

/// Options of `rescind jobs prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// How long ago a job must have finished to go: `30d`, `12h`, `90m`,
    /// `0s` for every finished job.
    #[arg(long, allow_hyphen_values = true)]
    pub older_than: String,
    /// The host's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "RESCIND_HOST")]
    pub host: String,
    /// An admin token.
    #[arg(long, env = "RESCIND_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Options of `rescind jobs show`.
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The job's id (from the cancellation's `erpSync.jobs`, or `GET
    /// /v1/admin/jobs`).
    pub id: String,
    /// The host's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "RESCIND_HOST")]
    pub host: String,
    /// An admin or service token.
    #[arg(long, env = "RESCIND_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Runs a jobs subcommand; errors are printed, the answer is the exit
/// status.
pub fn run(args: JobsArgs) -> Exit {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
    {
        Ok(runtime) => runtime,
        Err(error) => return report_error(&error, Exit::FAILURE),
    };
    match args.command {
        JobsCommand::Show(show) => match runtime.block_on(fetch_job(&show)) {
            Ok(job) => {
                print!("{}", render_job(&job));
                Exit::SUCCESS
            }
            Err(error) => report_error(&error, Exit::FAILURE),
        },
        JobsCommand::Prune(prune) => match runtime.block_on(prune_jobs(&prune)) {
            Ok(total) => {
                println!(
                    "pruned {} finished job{} older than {} ({} attempt{})",
                    total.pruned_jobs,
                    if total.pruned_jobs == 1 { "" } else { "s" },
                    prune.older_than.trim(),
                    total.pruned_attempts,
                    if total.pruned_attempts == 1 { "" } else { "s" },
                );
                Exit::SUCCESS
            }
            Err(error) => report_error(&error, Exit::FAILURE),
        },
    }
}

/// Most calls one `rescind jobs prune` makes (each deletes for up to about
/// ten seconds; a host with more to delete goes on at its next hourly turn).
const MAX_PRUNE_CALLS: usize = 360;

/// Prunes the host's finished jobs older than `args.older_than`, calling
/// again while the host says more are left; answers the totals. A bad age
/// is refused here, before the host is called.
pub async fn prune_jobs(args: &PruneArgs) -> anyhow::Result<PruneView> {
    crate::jobs::retention::parse_age(&args.older_than)
        .with_context(|| format!("--older-than {}", args.older_than))?;
    let body = serde_json::json!({"olderThan": args.older_than.trim()});
    let mut total: Option<PruneView> = None;
    for _ in 0..MAX_PRUNE_CALLS {
        let answer: PruneView = call_host(
            reqwest::Method::POST,
            &args.host,
            &args.token,
            "/v1/admin/jobs/prune",
            Some(&body),
        )
        .await?;
        let complete = answer.complete;
        total = Some(match total {
            None => answer,
            Some(mut sum) => {
                sum.pruned_jobs += answer.pruned_jobs;
                sum.pruned_attempts += answer.pruned_attempts;
                sum.complete = answer.complete;
                sum
            }
        });
        if complete {
            break;
        }
    }
    total.context("no call made")
}

/// Reads a job with its attempts from the host. An error carries the
/// host's own explanation (the problem's `detail`).
pub async fn fetch_job(args: &ShowArgs) -> anyhow::Result<JobView> {
    let path = format!("/v1/admin/jobs/{}", utf8_percent_encode(&args.id));
    get_from_host(&args.host, &args.token, &path).await
}

/// `GET {host}{path}` with the token, read as JSON. An error carries the
/// host's own explanation (the problem's `detail`).
pub(crate) async fn get_from_host<T: serde::de::DeserializeOwned>(
    host: &str,
    token: &str,
    path: &str,
) -> anyhow::Result<T> {
    call_host(reqwest::Method::GET, host, token, path, None).await
}

/// `{method} {host}{path}` with the token and an optional JSON body, the
/// answer read as JSON. An error carries the host's own explanation (the
/// problem's `detail` and the fields it names).
pub(crate) async fn call_host<T: serde::de::DeserializeOwned>(
    method: reqwest::Method,
    host: &str,
    token: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<T> {
    if token.trim().is_empty() {
        bail!("the token is empty: pass --token or set RESCIND_ADMIN_TOKEN");
    }
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let url = format!("{}{path}", host.trim_end_matches('/'));
    let mut request = client.request(method, &url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("reaching the host at {host}"))?;
    let status = response.status();
    if !status.is_success() {
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        let detail = answer["detail"].as_str().unwrap_or("no detail");
        let code = answer["code"].as_str().unwrap_or("unknown");
        let fields: Vec<String> = answer["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{}: {}",
                    e["field"].as_str().unwrap_or("?"),
                    e["message"].as_str().unwrap_or("?")
                )
            })
            .collect();
        let fields = if fields.is_empty() {
            String::new()
        } else {
            format!(" ({})", fields.join("; "))
        };
        match status {
            reqwest::StatusCode::UNAUTHORIZED => bail!(
                "the host refused the token (HTTP 401 {code}: {detail}): use the host's \
                 RESCIND_ADMIN_TOKEN or an admin or service API key"
            ),
            other => bail!("the host answered HTTP {other} ({code}): {detail}{fields}"),
        }
    }
    response
        .json::<T>()
        .await
        .with_context(|| format!("reading {url}: is it a rescind host?"))
}

/// Percent-encodes what is not unreserved in a path segment (job ids are
/// UUIDs, but the argument is the user's).
pub(crate) fn utf8_percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The job as `rescind jobs show` prints it.
pub fn render_job(job: &JobView) -> String {
    let mut out = String::new();
    let attempts = job.attempts;
    let _ = writeln!(
        out,
        "job {} ({} for order {}): {} after {attempts} attempt{}",
        job.id,
        job.definition,
        job.order_number,
        job.state,
        if attempts == 1 { "" } else { "s" },
    );
    let _ = writeln!(
        out,
        "  request id (ERP idempotency key): {}",
        job.request_id
    );
    if let Some(cancellation) = &job.cancellation_id {
        let _ = writeln!(out, "  cancellation: {cancellation}");
    }
    if let Some(reference) = &job.erp_reference {
        let _ = writeln!(out, "  ERP reference: {reference}");
    }
    if let Some(error) = &job.last_error {
        let _ = writeln!(out, "  last error: {}", error.replace('\n', "\n    "));
    }
    if let Some(next) = &job.next_run_at {
        let _ = writeln!(out, "  next run at: {next}");
    }
    let _ = writeln!(
        out,
        "  created {}, updated {}",
        job.created_at, job.updated_at
    );
    for attempt in job.attempt_history.iter().flatten() {
        out.push('\n');
        render_attempt(&mut out, attempt);
    }
    out
}

fn render_attempt(out: &mut String, attempt: &AttemptView) {
    let outcome = attempt.outcome.as_deref().unwrap_or("running");
    let ended = attempt.ended_at.as_deref().unwrap_or("…");
    let _ = writeln!(
        out,
        "attempt {}: {outcome} ({}, {} to {ended})",
        attempt.number, attempt.worker, attempt.started_at
    );
    if let Some(version) = &attempt.plugin_version {
        let _ = writeln!(out, "  plugin version: {version}");
    }
    if let Some(message) = &attempt.message {
        // A trap's message goes on with its guest backtrace, a frame a line.
        let _ = writeln!(out, "  message: {}", message.replace('\n', "\n    "));
    }
    if let Some(reference) = &attempt.erp_reference {
        let _ = writeln!(out, "  ERP reference: {reference}");
    }
    if !attempt.log.is_empty() {
        let _ = writeln!(out, "  log:");
        for line in &attempt.log {
            let _ = writeln!(out, "    {:<5} {}", line.level, line.message);
        }
    }
    let count = attempt.exchange.len();
    if count == 0 {
        let _ = writeln!(out, "  no request to the ERP recorded");
    }
    for (n, exchange) in attempt.exchange.iter().enumerate() {
        let _ = writeln!(
            out,
            "  request {} of {count}, {} ms:",
            n + 1,
            exchange.duration_ms
        );
        render_exchange(out, exchange);
    }
    if attempt.exchange_not_recorded > 0 {
        let _ = writeln!(
            out,
            "  … {} more requests not recorded (at most 16 are kept per attempt)",
            attempt.exchange_not_recorded
        );
    }
}

fn render_exchange(out: &mut String, exchange: &ExchangeView) {
    let _ = writeln!(out, "    > {} {}", exchange.method, exchange.url);
    render_headers(out, "    > ", &exchange.request_headers);
    render_body(out, "    > ", &exchange.request_body);
    match exchange.status {
        Some(status) => {
            let reason = http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            let _ = writeln!(out, "    < {status} {reason}");
            render_headers(out, "    < ", &exchange.response_headers);
            if let Some(body) = &exchange.response_body {
                render_body(out, "    < ", body);
            }
        }
        None => {
            let _ = writeln!(out, "    < (no response)");
        }
    }
    if let Some(error) = &exchange.error {
        let _ = writeln!(out, "    ! failed: {error}");
    }
}

fn render_headers(out: &mut String, prefix: &str, headers: &[HeaderView]) {
    for header in headers {
        let _ = writeln!(out, "{prefix}{}: {}", header.name, header.value);
    }
}

fn render_body(out: &mut String, prefix: &str, body: &BodyView) {
    if body.bytes == 0 {
        return;
    }
    let _ = writeln!(out, "{}", prefix.trim_end());
    for line in body.text.lines() {
        let _ = writeln!(out, "{prefix}{line}");
    }
    let _ = writeln!(out, "{}({} bytes)", prefix, body.bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::LogLineView;

    fn header(name: &str, value: &str) -> HeaderView {
        HeaderView {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn a_job_reads_like_a_conversation_with_the_erp() {
        let job = JobView {
            id: "j-1".into(),
            definition: "OrderCancel".into(),
            order_number: "SO-1".into(),
            cancellation_id: Some("c-1".into()),
            request_id: "r-1".into(),
            parameters: Default::default(),
            state: "succeeded".into(),
            attempts: 1,
            max_attempts: 8,
            next_run_at: None,
            erp_reference: Some("ERP-9".into()),
            last_error: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:01Z".into(),
            attempt_history: Some(vec![AttemptView {
                number: 1,
                worker: "worker-1".into(),
                started_at: "2026-01-01T00:00:00Z".into(),
                ended_at: Some("2026-01-01T00:00:01Z".into()),
                outcome: Some("accepted".into()),
                message: None,
                erp_reference: Some("ERP-9".into()),
                plugin_version: Some("sha256:ab".into()),
                log: vec![LogLineView {
                    level: "info".into(),
                    message: "[plugin] posted".into(),
                }],
                exchange: vec![
                    ExchangeView {
                        method: "POST".into(),
                        url: "http://erp/cancel".into(),
                        request_headers: vec![header("authorization", "[redacted]")],
                        request_body: BodyView {
                            text: "{\"a\":1}".into(),
                            bytes: 7,
                        },
                        status: Some(201),
                        response_headers: vec![header("content-type", "application/json")],
                        response_body: Some(BodyView {
                            text: "{\"id\":\"ERP-9\"}".into(),
                            bytes: 14,
                        }),
                        duration_ms: 12,
                        error: None,
                    },
                    ExchangeView {
                        method: "GET".into(),
                        url: "http://elsewhere/".into(),
                        request_headers: vec![],
                        request_body: BodyView {
                            text: String::new(),
                            bytes: 0,
                        },
                        status: None,
                        response_headers: vec![],
                        response_body: None,
                        duration_ms: 0,
                        error: Some("HTTP-request-denied".into()),
                    },
                ],
                exchange_not_recorded: 3,
            }]),
        };
        let shown = render_job(&job);
        for expected in [
            "job j-1 (OrderCancel for order SO-1): succeeded after 1 attempt\n",
            "attempt 1: accepted (worker-1, 2026-01-01T00:00:00Z to 2026-01-01T00:00:01Z)\n",
            "    info  [plugin] posted\n",
            "  request 1 of 2, 12 ms:\n    > POST http://erp/cancel\n    > authorization: [redacted]\n    >\n    > {\"a\":1}\n    > (7 bytes)\n    < 201 Created\n    < content-type: application/json\n    <\n    < {\"id\":\"ERP-9\"}\n    < (14 bytes)\n",
            "    > GET http://elsewhere/\n    < (no response)\n    ! failed: HTTP-request-denied\n",
            "  … 3 more requests not recorded",
        ] {
            assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
        }
    }

    #[test]
    fn a_traps_backtrace_is_indented_under_its_attempt() {
        let job: JobView = serde_json::from_value(serde_json::json!({
            "id": "j-2", "definition": "OrderCancel", "orderNumber": "SO-2",
            "cancellationId": null, "requestId": "r-2", "parameters": {},
            "state": "retrying", "attempts": 1, "maxAttempts": 8, "nextRunAt": null,
            "erpReference": null, "lastError": "plugin trapped: boom\nguest backtrace:\n   0: f @ 0x1",
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:01Z",
            "attemptHistory": [{"number": 1, "worker": "worker-1",
                "startedAt": "2026-01-01T00:00:00Z", "endedAt": "2026-01-01T00:00:01Z",
                "outcome": "trapped", "erpReference": null, "pluginVersion": null, "log": [],
                "message": "boom (wasm trap: unreachable)\nguest backtrace:\n   0: abort @ 0x62d4\n   1: my_erp::submit @ 0x1045"}]
        }))
        .unwrap();
        let shown = render_job(&job);
        for expected in [
            "  last error: plugin trapped: boom\n    guest backtrace:\n       0: f @ 0x1\n",
            "  message: boom (wasm trap: unreachable)\n    guest backtrace:\n       0: abort @ 0x62d4\n       1: my_erp::submit @ 0x1045\n",
        ] {
            assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(utf8_percent_encode("a b/c"), "a%20b%2Fc");
        assert_eq!(utf8_percent_encode("0190-abc_~."), "0190-abc_~.");
    }
}
