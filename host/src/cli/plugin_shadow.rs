//! `rescind plugin shadow NAME`: start, read or stop a plugin's shadow run
//! on a running host (`/v1/admin/plugins/{name}/shadow`), and print its
//! report job by job.

use std::fmt::Write as _;

use clap::Args;
use reqwest::Method;

use crate::api::{MAX_SHADOW_JOBS, ShadowRunView};
use crate::cli::jobs::{call_host, utf8_percent_encode};

/// Options of `rescind plugin shadow`.
#[derive(Debug, Clone, Args)]
pub struct ShadowArgs {
    /// The plugin.
    pub name: String,
    /// Start a shadow run of this stored, inactive version (`sha256:…`, as
    /// `plugin push --no-activate` printed it). Without it, the plugin's
    /// current shadow run is shown.
    #[arg(long, requires = "jobs", conflicts_with = "stop")]
    pub version: Option<String>,
    /// On how many of the plugin's next jobs (1 to 1,000).
    #[arg(long, requires = "version", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SHADOW_JOBS)))]
    pub jobs: Option<u32>,
    /// Stop the plugin's shadow run: it takes no more jobs.
    #[arg(long)]
    pub stop: bool,
    /// The host's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "RESCIND_HOST")]
    pub host: String,
    /// An admin token.
    #[arg(long, env = "RESCIND_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Starts, stops or reads the plugin's shadow run, as the arguments say;
/// answers the run as the host shows it.
pub async fn shadow(args: &ShadowArgs) -> anyhow::Result<ShadowRunView> {
    let path = format!(
        "/v1/admin/plugins/{}/shadow",
        utf8_percent_encode(&args.name)
    );
    match (&args.version, args.jobs, args.stop) {
        (Some(version), Some(jobs), _) => {
            let body = serde_json::json!({"version": version, "jobs": jobs});
            call_host(Method::POST, &args.host, &args.token, &path, Some(&body)).await
        }
        (_, _, true) => call_host(Method::DELETE, &args.host, &args.token, &path, None).await,
        _ => call_host(Method::GET, &args.host, &args.token, &path, None).await,
    }
}

/// A shadow run as `rescind plugin shadow` prints it: a summary line, then
/// each job with what differs.
pub fn render_shadow(run: &ShadowRunView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "shadow run of {} version {}: {} — {} of {} jobs compared, {} identical, {} different",
        run.plugin, run.version, run.state, run.compared, run.jobs, run.identical, run.different
    );
    let _ = writeln!(
        out,
        "started {} by {}{}",
        run.started_at,
        run.started_by,
        run.stopped_at
            .as_deref()
            .map(|at| format!(", stopped {at}"))
            .unwrap_or_default()
    );
    for result in &run.results {
        let verdict = match result.identical {
            None => "running".to_owned(),
            Some(true) => "identical".to_owned(),
            Some(false) => "differs".to_owned(),
        };
        let outcomes = match (&result.active_outcome, &result.shadow_outcome) {
            (Some(active), Some(shadow)) => format!("; outcome: active {active}, shadow {shadow}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "job {} (attempt {}): {verdict}{outcomes}",
            result.job_id, result.attempt
        );
        if let Some(message) = &result.shadow_message
            && result.identical == Some(false)
        {
            let _ = writeln!(out, "  shadow: {message}");
        }
        for (n, request) in result.requests.iter().enumerate() {
            let n = n + 1;
            let what = match (&request.active, &request.shadow) {
                (Some(active), None) => format!("{active}: sent by the active version only"),
                (None, Some(shadow)) => format!("{shadow}: made by the shadow version only"),
                (Some(active), Some(_)) if request.differences.is_empty() => {
                    format!("{active}: identical")
                }
                (Some(active), Some(_)) => format!("{active}: differs"),
                (None, None) => continue,
            };
            let _ = writeln!(out, "  request {n}: {what}");
            for difference in &request.differences {
                for line in difference.lines() {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
        for note in &result.notes {
            let _ = writeln!(out, "  note: {note}");
        }
    }
    out
}
