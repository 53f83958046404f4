//! `rescind plugin test FILE --replay JOB_ID`: a job's last attempt run
//! again with a local build. From the host it reads the job with its
//! recorded ERP exchange (`GET /v1/admin/jobs/{id}`) and what the attempt
//! handed its plugin (`GET /v1/admin/jobs/{id}/attempts/{n}/input`: the
//! cancellation and the connection's settings, never its secrets); the
//! mock ERP answers the new build's requests, in order, with the answers
//! the ERP gave; then the requests are compared with the recorded ones.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::http::{HeaderName, HeaderValue, StatusCode};

use super::compare::{Comparison, SentRequest, compare, path_of};
use super::script::{RequestPattern, Script, ScriptMode, ScriptedAnswer};
use super::{LocalConnection, TestArgs, TestReport, run_component};
use crate::api::{AttemptInputView, AttemptView, ExchangeView, JobView};
use crate::cli::jobs::{get_from_host, utf8_percent_encode};
use crate::plugins::body_cut_marker;

/// Response header fields the mock ERP does not repeat: its own server sets
/// them for the body it sends.
const HOP_HEADERS: [&str; 4] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

/// What a replay showed.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// The job as the host shows it.
    pub job: JobView,
    /// The attempt replayed (the job's last).
    pub attempt: AttemptView,
    /// What that attempt handed its plugin.
    pub input: AttemptInputView,
    /// The secrets the connection has that were not given locally.
    pub secrets_not_given: Vec<String>,
    /// What the mock ERP could not answer as the ERP did.
    pub answer_notes: Vec<String>,
    /// The local run.
    pub run: TestReport,
    /// The recorded requests against the new ones.
    pub comparison: Comparison,
}

impl ReplayReport {
    /// Whether the new build sent what the attempt sent.
    pub fn identical(&self) -> bool {
        self.comparison.identical()
    }

    /// The report as `plugin test --replay` prints it, ending with the
    /// verdict line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let (job, attempt) = (&self.job, &self.attempt);
        let _ = writeln!(
            out,
            "replaying attempt {} of job {} ({} for order {}): recorded outcome {}{}",
            attempt.number,
            job.id,
            job.definition,
            job.order_number,
            attempt.outcome.as_deref().unwrap_or("(still running)"),
            attempt
                .plugin_version
                .as_deref()
                .map(|v| format!(", plugin version {v}"))
                .unwrap_or_default()
        );
        match &self.input.connection {
            Some(connection) => {
                let settings: Vec<&str> = connection.settings.keys().map(String::as_str).collect();
                let _ = writeln!(
                    out,
                    "connection {:?}: settings {}",
                    connection.name,
                    if settings.is_empty() {
                        "(none)".to_owned()
                    } else {
                        settings.join(", ")
                    }
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "the job's definition or connection no longer exists: no settings but \
                     the ones given with --setting"
                );
            }
        }
        if !self.secrets_not_given.is_empty() {
            let _ = writeln!(
                out,
                "secrets the host keeps and were not given with --secret NAME=VALUE (the plugin \
                 runs without them): {}",
                self.secrets_not_given.join(", ")
            );
        }
        let recorded = attempt.exchange.len();
        let _ = writeln!(
            out,
            "mock ERP on http://{} answering as the ERP did ({recorded} recorded answer{})",
            self.run.erp,
            if recorded == 1 { "" } else { "s" }
        );
        for note in &self.answer_notes {
            let _ = writeln!(out, "note: {note}");
        }
        if attempt.exchange_not_recorded > 0 {
            let _ = writeln!(
                out,
                "note: the attempt made {} more requests that were not recorded (at most 16 \
                 are kept): they are not compared",
                attempt.exchange_not_recorded
            );
        }
        for line in &self.run.log {
            let _ = writeln!(
                out,
                "log [{}] {}: {}",
                line.source.as_str(),
                line.level.as_str(),
                line.message
            );
        }
        let _ = writeln!(
            out,
            "outcome: {} (recorded: {})",
            self.run.describe_outcome(),
            attempt.outcome.as_deref().unwrap_or("none")
        );
        out.push_str(&self.comparison.render());
        out
    }
}

/// Replays an attempt of job `job_id` (`args.attempt`, by default its
/// last) with the component `args.file`.
/// Fails when the host cannot be asked, the job has no attempt or the file
/// is not a plugin this host would load.
pub async fn replay(args: &TestArgs, job_id: &str) -> anyhow::Result<ReplayReport> {
    let Some(file) = &args.file else {
        bail!("no component given: rescind plugin test FILE --replay JOB_ID");
    };
    let token = args.token.as_deref().unwrap_or_default();
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let job_path = format!("/v1/admin/jobs/{}", utf8_percent_encode(job_id));
    let job: JobView = get_from_host(&args.host, token, &job_path)
        .await
        .context("reading the job")?;
    let attempt = match args.attempt {
        None => job.attempt_history.iter().flatten().last().cloned(),
        Some(number) => {
            let found = job
                .attempt_history
                .iter()
                .flatten()
                .find(|a| a.number == number)
                .cloned();
            if found.is_none() {
                bail!(
                    "job {job_id} has no attempt {number} (it has {} attempt(s))",
                    job.attempts
                );
            }
            found
        }
    };
    let Some(attempt) = attempt else {
        bail!("job {job_id} has no attempt yet: there is nothing to replay");
    };
    let input: AttemptInputView = get_from_host(
        &args.host,
        token,
        &format!("{job_path}/attempts/{}/input", attempt.number),
    )
    .await
    .context("reading what the attempt submitted")?;

    let mut local = LocalConnection::default();
    let mut secrets_not_given = Vec::new();
    if let Some(connection) = &input.connection {
        local.base_path = base_path(&connection.base_url).to_owned();
        local.settings = connection.settings.clone();
        secrets_not_given = connection
            .secrets
            .iter()
            .filter(|name| !args.secrets.iter().any(|(given, _)| given == *name))
            .cloned()
            .collect();
    }
    local.settings.extend(args.settings.iter().cloned());
    local.secrets = args.secrets.iter().cloned().collect();

    let (script, answer_notes) = recorded_answers(&attempt.exchange);
    let run = run_component(file, bytes, &input.cancellation, script, local).await?;
    let recorded: Vec<SentRequest> = attempt.exchange.iter().map(SentRequest::from).collect();
    // Compared as far as the attempt's record goes.
    let now: Vec<SentRequest> = run
        .exchange
        .exchanges
        .iter()
        .map(SentRequest::from)
        .collect();
    let comparison = compare(&recorded, &now);
    Ok(ReplayReport {
        job,
        attempt,
        input,
        secrets_not_given,
        answer_notes,
        run,
        comparison,
    })
}

/// The path of a connection's base URL (`/api` of
/// `https://erp.example/api`), or empty when it has none: the mock ERP's
/// address takes the place of the rest.
fn base_path(base_url: &str) -> &str {
    match base_url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |at| &rest[at..]),
        None => "",
    }
}

/// The recorded answers as the mock ERP's script, in order, and what could
/// not be answered as recorded.
fn recorded_answers(exchanges: &[ExchangeView]) -> (Script, Vec<String>) {
    let mut notes = Vec::new();
    let answers = exchanges
        .iter()
        .enumerate()
        .map(|(n, exchange)| {
            let n = n + 1;
            let status = match exchange.status.and_then(|s| StatusCode::from_u16(s).ok()) {
                Some(status) => status,
                None => {
                    notes.push(format!(
                        "request {n} ({} {}) got no answer from the ERP ({}); the mock answers \
                         it 502",
                        exchange.method,
                        path_of(&exchange.url),
                        exchange.error.as_deref().unwrap_or("no response")
                    ));
                    StatusCode::BAD_GATEWAY
                }
            };
            let mut headers = Vec::new();
            for header in &exchange.response_headers {
                if HOP_HEADERS.contains(&header.name.as_str()) || header.name == "…" {
                    continue;
                }
                let name = HeaderName::from_bytes(header.name.as_bytes());
                let value = HeaderValue::from_str(&header.value);
                match (name, value) {
                    (Ok(name), Ok(value)) => headers.push((name, value)),
                    _ => notes.push(format!(
                        "request {n}: the answer's header {} is not repeated (not valid as \
                         recorded)",
                        header.name
                    )),
                }
                if header.value == crate::plugins::REDACTED {
                    notes.push(format!(
                        "request {n}: the answer's header {} was redacted in the record; the \
                         mock sends it as {:?}",
                        header.name,
                        crate::plugins::REDACTED
                    ));
                }
            }
            let body = match &exchange.response_body {
                Some(body) if body.text == format!("({} bytes, not text)", body.bytes) => {
                    notes.push(format!(
                        "request {n}: the answer's body ({} bytes) was not text and is not \
                         recorded; the mock answers with an empty body",
                        body.bytes
                    ));
                    Vec::new()
                }
                Some(body) => match body.text.strip_suffix(&body_cut_marker(body.bytes)) {
                    Some(kept) => {
                        notes.push(format!(
                            "request {n}: the answer's body was cut in the record; the mock \
                             answers with its first {} of {} bytes",
                            kept.len(),
                            body.bytes
                        ));
                        kept.as_bytes().to_vec()
                    }
                    None => body.text.as_bytes().to_vec(),
                },
                None => Vec::new(),
            };
            ScriptedAnswer {
                request: RequestPattern::default(),
                status,
                headers,
                body,
                delay: Duration::ZERO,
            }
        })
        .collect();
    (
        Script {
            mode: ScriptMode::Steps,
            answers,
        },
        notes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BodyView, HeaderView};

    #[test]
    fn base_paths() {
        assert_eq!(base_path("https://erp.example/api/v2"), "/api/v2");
        assert_eq!(base_path("https://erp.example"), "");
        assert_eq!(base_path("http://127.0.0.1:9/"), "/");
    }

    #[test]
    fn recorded_answers_become_steps() {
        let header = |name: &str, value: &str| HeaderView {
            name: name.into(),
            value: value.into(),
        };
        let exchange = |status, body: Option<BodyView>| ExchangeView {
            method: "POST".into(),
            url: "http://erp/x".into(),
            request_headers: vec![],
            request_body: BodyView {
                text: String::new(),
                bytes: 0,
            },
            status,
            response_headers: vec![
                header("content-type", "application/json"),
                header("content-length", "9"),
                header("set-cookie", "[redacted]"),
            ],
            response_body: body,
            duration_ms: 1,
            error: None,
        };
        let cut = format!("{}{}", "a".repeat(10), body_cut_marker(40_000));
        let (script, notes) = recorded_answers(&[
            exchange(
                Some(201),
                Some(BodyView {
                    text: r#"{"id":"E-1"}"#.into(),
                    bytes: 12,
                }),
            ),
            exchange(
                Some(200),
                Some(BodyView {
                    text: cut,
                    bytes: 40_000,
                }),
            ),
            exchange(None, None),
        ]);
        assert_eq!(script.mode, ScriptMode::Steps);
        assert_eq!(script.answers.len(), 3);
        assert_eq!(script.answers[0].status, StatusCode::CREATED);
        assert_eq!(script.answers[0].body, br#"{"id":"E-1"}"#);
        let names: Vec<&str> = script.answers[0]
            .headers
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["content-type", "set-cookie"]);
        assert_eq!(script.answers[1].body, b"aaaaaaaaaa");
        assert_eq!(script.answers[2].status, StatusCode::BAD_GATEWAY);
        let notes = notes.join("\n");
        assert!(notes.contains("was cut in the record"), "{notes}");
        assert!(
            notes.contains("request 3 (POST /x) got no answer"),
            "{notes}"
        );
        assert!(notes.contains("set-cookie was redacted"), "{notes}");
    }
}
