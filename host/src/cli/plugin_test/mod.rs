//! `rescind plugin test FILE`: runs a plugin component once, in the same
//! sandbox the host gives job attempts, against a cancellation (the sample,
//! or one from a file) and a mock ERP on loopback that records what it
//! receives and answers as told: the same answer to everything
//! (`--erp-status`, `--erp-body`) or a script (`--script`). A plugin author
//! sees the outcome, the requests the plugin sent and its log, before
//! uploading anything; `--expect` makes the exit status a test verdict.
//! `--replay JOB_ID` takes the cancellation, the settings and the ERP's
//! answers from a job of a running host and shows how what the local build
//! sends differs from what the job's last attempt sent.

mod mock_erp;
mod replay;
mod script;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use axum::http::StatusCode;
use clap::{Args, ValueEnum};

pub use mock_erp::{ReceivedRequest, ScriptedErp};
pub use replay::{ReplayReport, replay};
pub use script::{
    MAX_ANSWER_DELAY, MAX_INPUT_FILE_BYTES, MAX_SCRIPT_ANSWERS, RequestPattern, Script, ScriptMode,
    ScriptedAnswer,
};

use crate::plugins::{
    CallLimits, CallOutcome, Cancellation, ConnectionContext, LogLine, PluginRuntime,
    RecordedExchanges, RuntimeConfig, sample_cancellation,
};

/// The host `--replay` asks without `--host`.
pub const DEFAULT_HOST: &str = "http://127.0.0.1:8080";

/// What the mock ERP answers without a script: `--erp-status`.
pub const DEFAULT_ERP_STATUS: u16 = 200;

/// What the mock ERP answers without a script: `--erp-body`.
pub const DEFAULT_ERP_BODY: &str = r#"{"id":"MOCK-1"}"#;

/// Options of `rescind plugin test`. `Default` gives what the command line
/// gives without options.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// The component (`.wasm`).
    #[arg(required_unless_present = "print_sample")]
    pub file: Option<PathBuf>,
    /// Print the sample cancellation as JSON (the shape `--cancellation`
    /// reads) and exit: a file to start from.
    #[arg(long, conflicts_with = "file")]
    pub print_sample: bool,
    /// The cancellation to submit: JSON in the WIT's shape (field and case
    /// names as in the WIT file). Default: the sample (`--print-sample`).
    #[arg(long, value_name = "FILE", conflicts_with = "replay")]
    pub cancellation: Option<PathBuf>,
    /// What the mock ERP answers: a JSON script of ordered `steps` or
    /// matched `routes` (status, headers, body, delay), e.g. a login, then
    /// the cancel call.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["erp_status", "erp_body", "replay"])]
    pub script: Option<PathBuf>,
    /// Replay the last attempt of this job of a running host (`--host`,
    /// `--token`): its cancellation and connection settings (secrets only
    /// as given with `--secret`), the mock ERP answering as the ERP did;
    /// prints how the requests differ from the recorded ones. Exit status
    /// 0: identical, 1: different, 2: could not replay.
    #[arg(
        long,
        value_name = "JOB_ID",
        conflicts_with_all = ["print_sample", "lines", "expect", "erp_status", "erp_body"]
    )]
    pub replay: Option<String>,
    /// With `--replay`: the attempt to replay, by its number (default: the
    /// job's last attempt).
    #[arg(long, value_name = "N", requires = "replay")]
    pub attempt: Option<u32>,
    /// With `--replay`: the host's base URL.
    #[arg(long, default_value = DEFAULT_HOST, env = "RESCIND_HOST", requires = "replay")]
    pub host: String,
    /// With `--replay`: an admin token of the host (`RESCIND_ADMIN_TOKEN`
    /// or an admin API key).
    #[arg(
        long,
        env = "RESCIND_ADMIN_TOKEN",
        hide_env_values = true,
        requires = "replay"
    )]
    pub token: Option<String>,
    /// A connection setting, `name=value` (repeat).
    #[arg(long = "setting", value_parser = key_value)]
    pub settings: Vec<(String, String)>,
    /// A connection secret, `name=value` (repeat); redacted from the log.
    #[arg(long = "secret", value_parser = key_value)]
    pub secrets: Vec<(String, String)>,
    /// Without a script: the HTTP status the mock ERP answers every
    /// request with.
    #[arg(long, default_value_t = DEFAULT_ERP_STATUS)]
    pub erp_status: u16,
    /// Without a script: the body the mock ERP answers with (JSON).
    #[arg(long, default_value = DEFAULT_ERP_BODY)]
    pub erp_body: String,
    /// Cancel only these line numbers of the cancellation (a partial
    /// cancellation).
    #[arg(long = "line", value_delimiter = ',')]
    pub lines: Vec<u32>,
    /// The outcome that makes the exit status 0; any other makes it 1.
    /// Default: accepted.
    #[arg(long, value_enum)]
    pub expect: Option<Expect>,
}

impl Default for TestArgs {
    fn default() -> Self {
        TestArgs {
            file: None,
            print_sample: false,
            cancellation: None,
            script: None,
            replay: None,
            attempt: None,
            host: DEFAULT_HOST.to_owned(),
            token: None,
            settings: Vec::new(),
            secrets: Vec::new(),
            erp_status: DEFAULT_ERP_STATUS,
            erp_body: DEFAULT_ERP_BODY.to_owned(),
            lines: Vec::new(),
            expect: None,
        }
    }
}

/// An outcome `--expect` can ask for: the four a plugin answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Expect {
    /// The ERP accepted the cancellation.
    Accepted,
    /// Refused for good: the host would fail the job.
    Rejected,
    /// A passing failure: the host would retry.
    Transient,
    /// The connection needs fixing: the host would fail the job.
    Misconfigured,
}

impl Expect {
    fn name(self) -> &'static str {
        match self {
            Expect::Accepted => "accepted",
            Expect::Rejected => "rejected",
            Expect::Transient => "transient",
            Expect::Misconfigured => "misconfigured",
        }
    }

    fn matches(self, outcome: &CallOutcome) -> bool {
        matches!(
            (self, outcome),
            (Expect::Accepted, CallOutcome::Accepted { .. })
                | (Expect::Rejected, CallOutcome::Rejected(_))
                | (Expect::Transient, CallOutcome::Transient(_))
                | (Expect::Misconfigured, CallOutcome::Misconfigured(_))
        )
    }
}

/// What one test run showed.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// How the call ended.
    pub outcome: CallOutcome,
    /// What the mock ERP received, in order, with what it answered.
    pub requests: Vec<ReceivedRequest>,
    /// The plugin's log (bounded, secrets redacted).
    pub log: Vec<LogLine>,
    /// The mock ERP's address (the connection's base URL).
    pub erp: std::net::SocketAddr,
    /// Steps of the script the plugin never reached, if any.
    pub unused_steps: Option<String>,
    /// The plugin's requests as the host records them for a job attempt
    /// (bounded, secrets redacted): what `--replay` compares.
    pub exchange: RecordedExchanges,
}

impl TestReport {
    /// The requests that did not follow the script: `request 3 (POST
    /// /logout): why`.
    pub fn off_script(&self) -> Vec<String> {
        self.requests
            .iter()
            .enumerate()
            .filter_map(|(n, request)| {
                let why = request.off_script.as_ref()?;
                Some(format!(
                    "request {} ({} {}): {why}",
                    n + 1,
                    request.method,
                    request.path
                ))
            })
            .collect()
    }

    /// `Ok` when the outcome is `expect` (accepted by default) and every
    /// request followed the script; else why not.
    pub fn verdict(&self, expect: Option<Expect>) -> Result<String, String> {
        let expect = expect.unwrap_or(Expect::Accepted);
        let off_script = self.off_script();
        if !off_script.is_empty() {
            return Err(format!(
                "the plugin's requests did not follow the script:\n  {}",
                off_script.join("\n  ")
            ));
        }
        if expect.matches(&self.outcome) {
            Ok(format!("as expected: {}", expect.name()))
        } else {
            Err(format!(
                "expected {}, got {}",
                expect.name(),
                outcome_kind(&self.outcome)
            ))
        }
    }

    /// The report as `plugin test` prints it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "mock ERP on http://{}", self.erp);
        for (n, request) in self.requests.iter().enumerate() {
            let by = request
                .answered_by
                .map(|step| format!(" (script answer {step})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "request {}: {} {} -> {}{by}",
                n + 1,
                request.method,
                request.path,
                request.status
            );
            for (name, value) in &request.headers {
                let _ = writeln!(out, "  {name}: {value}");
            }
            if !request.body.is_empty() {
                let _ = writeln!(out, "  {}", request.body);
            }
        }
        if self.requests.is_empty() {
            let _ = writeln!(out, "the plugin sent nothing to the ERP");
        }
        for line in self.off_script() {
            let _ = writeln!(out, "off script: {line}");
        }
        if let Some(unused) = &self.unused_steps {
            let _ = writeln!(out, "note: {unused}");
        }
        for line in &self.log {
            let _ = writeln!(
                out,
                "log [{}] {}: {}",
                line.source.as_str(),
                line.level.as_str(),
                line.message
            );
        }
        let _ = writeln!(out, "outcome: {}", self.describe_outcome());
        out
    }

    /// The outcome in words that say who decided: a rejection with no
    /// request sent is the plugin's own, not the ERP's.
    fn describe_outcome(&self) -> String {
        let nothing_sent = self.requests.is_empty();
        match &self.outcome {
            CallOutcome::Rejected(message) if nothing_sent => format!(
                "rejected by the plugin before it sent anything (the ERP was not asked): {message}"
            ),
            CallOutcome::Rejected(message) => {
                format!("rejected (the host would fail the job, no retry): {message}")
            }
            CallOutcome::Transient(message) => {
                format!("transient (the host would retry with backoff): {message}")
            }
            CallOutcome::Misconfigured(message) => format!(
                "misconfigured (the host would fail the job until the connection is fixed): {message}"
            ),
            accepted @ CallOutcome::Accepted { .. } => accepted.to_string(),
            // A trap's guest backtrace goes last, after the note.
            stopped => {
                let text = stopped.to_string();
                let (head, backtrace) = text
                    .split_once('\n')
                    .map_or((text.as_str(), ""), |(head, rest)| (head, rest));
                let backtrace = if backtrace.is_empty() {
                    String::new()
                } else {
                    format!("\n{backtrace}")
                };
                format!("{head} (the host would retry it as transient){backtrace}")
            }
        }
    }
}

fn outcome_kind(outcome: &CallOutcome) -> String {
    match outcome {
        CallOutcome::Accepted { .. } => "accepted".to_owned(),
        CallOutcome::Rejected(_) => "rejected".to_owned(),
        CallOutcome::Transient(_) => "transient".to_owned(),
        CallOutcome::Misconfigured(_) => "misconfigured".to_owned(),
        // The first line: a trap's backtrace is in the outcome above.
        other => format!("`{}`", other.to_string().lines().next().unwrap_or_default()),
    }
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(k, _)| !k.trim().is_empty())
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected name=value, got {text:?}"))
}

/// The sample cancellation as `--print-sample` prints it.
pub fn sample_json() -> String {
    serde_json::to_string_pretty(&sample_cancellation()).expect("the sample encodes")
}

/// Reads a JSON input file of at most [`MAX_INPUT_FILE_BYTES`].
async fn read_input(path: &Path, what: &str) -> anyhow::Result<String> {
    let bytes = tokio::fs::read(path)
        .await
        .with_context(|| format!("reading the {what} {}", path.display()))?;
    if bytes.len() > MAX_INPUT_FILE_BYTES {
        bail!(
            "the {what} {} has {} bytes; at most {MAX_INPUT_FILE_BYTES}",
            path.display(),
            bytes.len()
        );
    }
    String::from_utf8(bytes).with_context(|| format!("the {what} {} is not UTF-8", path.display()))
}

/// Reads a cancellation file: JSON in the WIT's shape, consistent with
/// itself.
pub fn parse_cancellation(text: &str) -> Result<Cancellation, String> {
    let cancellation: Cancellation = serde_json::from_str(text).map_err(|e| e.to_string())?;
    check_cancellation(&cancellation)?;
    Ok(cancellation)
}

/// What a real cancellation always is, so that a plugin is not tried on one
/// the host would never send.
fn check_cancellation(c: &Cancellation) -> Result<(), String> {
    let mut problems = Vec::new();
    if c.request_id.trim().is_empty() {
        problems.push("`request-id` is empty".to_owned());
    }
    if c.order_number.trim().is_empty() {
        problems.push("`order-number` is empty".to_owned());
    }
    if c.attempt == 0 {
        problems.push("`attempt` starts at 1".to_owned());
    }
    if c.lines.is_empty() {
        problems.push("`lines` is empty: a cancellation cancels at least one line".to_owned());
    }
    let all: BTreeSet<u32> = c.all_line_numbers.iter().copied().collect();
    let mut seen = BTreeSet::new();
    for line in &c.lines {
        if !all.contains(&line.line_number) {
            problems.push(format!(
                "line {} is not in `all-line-numbers` {:?}",
                line.line_number, c.all_line_numbers
            ));
        }
        if !seen.insert(line.line_number) {
            problems.push(format!("line {} is listed twice", line.line_number));
        }
    }
    let date = time::macros::format_description!("[year]-[month]-[day]");
    for (field, value) in [("date", &c.date), ("order-date", &c.order_date)] {
        if time::Date::parse(value, date).is_err() {
            problems.push(format!("`{field}` {value:?} is not a YYYY-MM-DD date"));
        }
    }
    let amounts = c
        .lines
        .iter()
        .flat_map(|line| [&line.amount, &line.tax])
        .chain(c.refund.iter().map(|refund| &refund.amount));
    for money in amounts {
        let currency = &money.currency;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            problems.push(format!(
                "currency {currency:?} is not an ISO 4217 code such as \"EUR\""
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Runs the plugin once against the cancellation and a mock ERP. Fails
/// (with the host's explanation) when the file is not a plugin this host
/// would load, or an input file is unusable; any outcome of the plugin is a
/// report.
pub async fn test_plugin(args: &TestArgs) -> anyhow::Result<TestReport> {
    let Some(file) = &args.file else {
        bail!("no component given: rescind plugin test FILE");
    };
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let script = match &args.script {
        Some(path) => Script::parse(&read_input(path, "script").await?)
            .map_err(|why| anyhow::anyhow!("the script {}: {why}", path.display()))?,
        None => {
            let status = StatusCode::from_u16(args.erp_status)
                .ok()
                .filter(|s| (100..=599).contains(&s.as_u16()))
                .with_context(|| {
                    format!("--erp-status {} is not an HTTP status", args.erp_status)
                })?;
            Script::always(status, &args.erp_body)
        }
    };
    let mut cancellation = match &args.cancellation {
        Some(path) => parse_cancellation(&read_input(path, "cancellation").await?)
            .map_err(|why| anyhow::anyhow!("the cancellation {}: {why}", path.display()))?,
        None => sample_cancellation(),
    };
    if !args.lines.is_empty() {
        let unknown: Vec<u32> = args
            .lines
            .iter()
            .copied()
            .filter(|n| !cancellation.lines.iter().any(|l| l.line_number == *n))
            .collect();
        if !unknown.is_empty() {
            bail!(
                "the cancellation has lines {:?}, not {unknown:?}",
                cancellation
                    .lines
                    .iter()
                    .map(|l| l.line_number)
                    .collect::<Vec<_>>()
            );
        }
        cancellation
            .lines
            .retain(|l| args.lines.contains(&l.line_number));
        cancellation.full = false;
        cancellation.refund = None;
    }
    let connection = LocalConnection {
        base_path: String::new(),
        settings: args.settings.iter().cloned().collect(),
        secrets: args.secrets.iter().cloned().collect(),
    };
    run_component(file, bytes, cancellation, script, connection).await
}

/// The connection a local run gives the plugin: the mock ERP's address,
/// then `base_path`.
#[derive(Debug, Clone, Default)]
pub(crate) struct LocalConnection {
    /// The path of the connection's base URL (`/api`), or empty.
    pub base_path: String,
    /// Settings.
    pub settings: BTreeMap<String, String>,
    /// Secrets.
    pub secrets: BTreeMap<String, String>,
}

/// Loads the component `bytes` (read from `file`) and runs it once on
/// `cancellation`, against a mock ERP serving `script`.
pub(crate) async fn run_component(
    file: &Path,
    bytes: Vec<u8>,
    cancellation: Cancellation,
    script: Script,
    local: LocalConnection,
) -> anyhow::Result<TestReport> {
    let runtime = PluginRuntime::new(RuntimeConfig {
        max_concurrent_calls: 1,
        ..RuntimeConfig::default()
    })
    .context("starting the plugin runtime")?;
    // The file's name when it makes a plugin name (`My_Erp.wasm` runs as
    // `my_erp`), else `plugin`: the name only labels the run.
    let name = file
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

    let erp = ScriptedErp::start(script).await?;
    let addr = erp.addr();
    let connection = ConnectionContext {
        name: "mock-erp".to_owned(),
        base_url: format!("http://{addr}{}", local.base_path),
        allowed_hosts: vec![addr.to_string()],
        settings: local.settings,
        secrets: local.secrets,
        ..ConnectionContext::default()
    };
    let report = plugin
        .submit(cancellation, &connection, &CallLimits::default())
        .await;
    Ok(TestReport {
        outcome: report.outcome,
        requests: erp.received(),
        log: report.log,
        erp: addr,
        unused_steps: erp.unused_steps(),
        exchange: report.exchange,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_args_are_the_command_lines() {
        use clap::Parser;
        #[derive(Parser)]
        struct Line {
            #[command(flatten)]
            args: TestArgs,
        }
        let parsed = Line::try_parse_from(["test", "p.wasm"]).unwrap().args;
        let default = TestArgs {
            file: Some("p.wasm".into()),
            ..TestArgs::default()
        };
        assert_eq!(format!("{parsed:?}"), format!("{default:?}"));
    }

    #[test]
    fn the_printed_sample_is_a_valid_cancellation_file() {
        assert_eq!(
            parse_cancellation(&sample_json()),
            Ok(sample_cancellation())
        );
    }

    #[test]
    fn inconsistent_cancellations_are_refused() {
        let sample = sample_cancellation;
        type Change = fn(&mut Cancellation);
        let cases: [(Change, &str); 9] = [
            (|c| c.request_id = " ".into(), "`request-id` is empty"),
            (
                |c| c.order_number = String::new(),
                "`order-number` is empty",
            ),
            (|c| c.attempt = 0, "`attempt` starts at 1"),
            (|c| c.lines.clear(), "`lines` is empty"),
            (
                |c| c.all_line_numbers = vec![1, 2],
                "line 3 is not in `all-line-numbers` [1, 2]",
            ),
            (|c| c.lines[1].line_number = 1, "line 1 is listed twice"),
            (
                |c| c.date = "09/09/2024".into(),
                "`date` \"09/09/2024\" is not a YYYY-MM-DD date",
            ),
            (|c| c.order_date = "2024-02-30".into(), "`order-date`"),
            (
                |c| c.lines[0].tax.currency = "eur".into(),
                "currency \"eur\" is not an ISO 4217 code",
            ),
        ];
        for (change, expected) in cases {
            let mut cancellation = sample();
            change(&mut cancellation);
            let text = serde_json::to_string(&cancellation).unwrap();
            let error = parse_cancellation(&text).unwrap_err();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }

    fn report(outcome: CallOutcome, requests: Vec<ReceivedRequest>) -> TestReport {
        TestReport {
            outcome,
            requests,
            log: Vec::new(),
            erp: "127.0.0.1:9".parse().unwrap(),
            unused_steps: None,
            exchange: RecordedExchanges::default(),
        }
    }

    fn request(off_script: Option<&str>) -> ReceivedRequest {
        ReceivedRequest {
            method: "POST".into(),
            path: "/cancel".into(),
            headers: Vec::new(),
            body: String::new(),
            status: 201,
            answered_by: Some(1),
            off_script: off_script.map(str::to_owned),
        }
    }

    #[test]
    fn verdicts_table() {
        let accepted = || CallOutcome::Accepted {
            erp_reference: Some("E-1".into()),
            message: None,
        };
        let cases = [
            (accepted(), None, Ok("as expected: accepted")),
            (
                accepted(),
                Some(Expect::Accepted),
                Ok("as expected: accepted"),
            ),
            (
                accepted(),
                Some(Expect::Rejected),
                Err("expected rejected, got accepted"),
            ),
            (
                CallOutcome::Rejected("no".into()),
                None,
                Err("expected accepted, got rejected"),
            ),
            (
                CallOutcome::Rejected("no".into()),
                Some(Expect::Rejected),
                Ok("as expected: rejected"),
            ),
            (
                CallOutcome::Transient("503".into()),
                Some(Expect::Transient),
                Ok("as expected: transient"),
            ),
            (
                CallOutcome::Misconfigured("x".into()),
                Some(Expect::Misconfigured),
                Ok("as expected: misconfigured"),
            ),
            (
                CallOutcome::Trapped("boom".into()),
                Some(Expect::Transient),
                Err("expected transient, got `plugin trapped: boom`"),
            ),
        ];
        for (outcome, expect, expected) in cases {
            let verdict = report(outcome.clone(), vec![request(None)]).verdict(expect);
            assert_eq!(
                verdict.as_ref().map(String::as_str).map_err(String::as_str),
                expected,
                "{outcome:?} {expect:?}"
            );
        }
        let off = report(
            accepted(),
            vec![request(Some("the path is /x, expected /cancel"))],
        );
        let verdict = off.verdict(None).unwrap_err();
        assert!(
            verdict.contains("request 1 (POST /cancel): the path is /x, expected /cancel"),
            "{verdict}"
        );
    }

    #[test]
    fn a_rejection_with_nothing_sent_is_not_blamed_on_the_erp() {
        let silent = report(
            CallOutcome::Rejected("partial cancellations are not supported".into()),
            Vec::new(),
        )
        .render();
        assert!(
            silent.contains("the plugin sent nothing to the ERP"),
            "{silent}"
        );
        assert!(
            silent.contains("outcome: rejected by the plugin before it sent anything (the ERP was not asked): partial"),
            "{silent}"
        );
        assert!(!silent.contains("by the ERP:"), "{silent}");
        let answered = report(
            CallOutcome::Rejected("the ERP answered 422".into()),
            vec![request(None)],
        )
        .render();
        assert!(
            answered.contains("request 1: POST /cancel -> 201 (script answer 1)"),
            "{answered}"
        );
        assert!(!answered.contains("sent nothing"), "{answered}");
    }
}
