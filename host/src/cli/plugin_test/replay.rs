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

use super::script::{RequestPattern, Script, ScriptMode, ScriptedAnswer};
use super::{LocalConnection, TestArgs, TestReport, run_component};
use crate::api::{AttemptInputView, AttemptView, JobView};
use crate::cli::jobs::{get_from_host, utf8_percent_encode};
use crate::plugins::compare::{Comparison, SentRequest, Sides, compare};
use crate::plugins::{ErpExchange, recorded_answers};

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

    let exchanges: Vec<ErpExchange> = attempt.exchange.iter().map(ErpExchange::from).collect();
    let (script, answer_notes) = recorded_script(&exchanges);
    let run = run_component(file, bytes, input.cancellation.clone(), script, local).await?;
    let recorded: Vec<SentRequest> = exchanges.iter().map(SentRequest::from).collect();
    // Compared as far as the attempt's record goes.
    let now: Vec<SentRequest> = run
        .exchange
        .exchanges
        .iter()
        .map(SentRequest::from)
        .collect();
    let comparison = compare(&recorded, &now, Sides::REPLAY);
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
fn recorded_script(exchanges: &[ErpExchange]) -> (Script, Vec<String>) {
    let (answers, notes) = recorded_answers(exchanges);
    let answers = answers
        .into_iter()
        .map(|answer| ScriptedAnswer {
            request: RequestPattern::default(),
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
            delay: Duration::ZERO,
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
    use crate::plugins::RecordedBody;

    #[test]
    fn base_paths() {
        assert_eq!(base_path("https://erp.example/api/v2"), "/api/v2");
        assert_eq!(base_path("https://erp.example"), "");
        assert_eq!(base_path("http://127.0.0.1:9/"), "/");
    }

    #[test]
    fn recorded_answers_become_the_steps_of_the_script() {
        let exchange = ErpExchange {
            method: "POST".into(),
            url: "http://erp/x".into(),
            request_headers: vec![],
            request_body: RecordedBody::default(),
            status: Some(201),
            response_headers: vec![],
            response_body: Some(RecordedBody {
                text: r#"{"id":"E-1"}"#.into(),
                bytes: 12,
            }),
            duration_ms: 1,
            error: None,
        };
        let (script, notes) = recorded_script(&[exchange.clone(), exchange]);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(script.mode, ScriptMode::Steps);
        assert_eq!(script.answers.len(), 2);
        assert_eq!(script.answers[1].status, axum::http::StatusCode::CREATED);
        assert_eq!(script.answers[1].body, br#"{"id":"E-1"}"#);
    }
}
