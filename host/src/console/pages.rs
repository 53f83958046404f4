//! The console's pages (maud templates). Every value is escaped by maud;
//! every control has a label; pages have one `h1` and headings in order.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::Operator;
use crate::api::{AttemptView, ExchangeView, HeaderView, HealthView, JobView};
use crate::plugins::registry::PluginSummary;
use crate::store::JobState;

/// What every signed-in page carries: who is signed in, and the session's
/// CSRF token for its forms.
pub struct Chrome {
    who: String,
    pub csrf: String,
    /// Whether the role may use the plugin pages (`/v1/admin/plugins`).
    plugins: bool,
    /// Whether the role may use the configuration (`/v1/admin/settings`).
    config: bool,
}

impl Chrome {
    pub fn of(operator: &Operator) -> Self {
        Chrome {
            who: operator.who(),
            csrf: operator.csrf.clone(),
            plugins: operator.may(&axum::http::Method::GET, "/v1/admin/plugins"),
            config: operator.may(&axum::http::Method::GET, "/v1/admin/settings"),
        }
    }
}

pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

pub fn page(title: &str, chrome: Option<&Chrome>, current: &str, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · rescind console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to the content" }
                header class="top" {
                    p class="brand" { "rescind console" }
                    @if let Some(chrome) = chrome {
                        nav aria-label="Console" {
                            ul {
                                li { a href="/console" aria-current=[(current == "overview").then_some("page")] { "Overview" } }
                                li { a href="/console/orders" aria-current=[(current == "orders").then_some("page")] { "Orders" } }
                                li { a href="/console/jobs" aria-current=[(current == "jobs").then_some("page")] { "Jobs" } }
                                @if chrome.plugins {
                                    li { a href="/console/plugins" aria-current=[(current == "plugins").then_some("page")] { "Plugins" } }
                                }
                                @if chrome.config {
                                    li { a href="/console/config" aria-current=[(current == "config").then_some("page")] { "Configuration" } }
                                }
                            }
                        }
                        div class="who" {
                            span { "Signed in as " (chrome.who) }
                            form method="post" action="/console/sign-out" {
                                (csrf_field(&chrome.csrf))
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (body) }
            }
        }
    };
    Html(markup.into_string())
}

/// A page that only says what went wrong.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        page(
            title,
            None,
            "",
            html! {
                h1 { (title) }
                p role="alert" { (message) }
                p { a href="/console" { "Back to the console" } }
            },
        ),
    )
        .into_response()
}

/// The sign-in form; `error` is shown next to the key's field.
pub fn sign_in(csrf: &str, error: Option<&str>) -> Html<String> {
    page(
        "Sign in",
        None,
        "",
        html! {
            h1 { "Sign in" }
            p { "Sign in with an admin or service API key. The key is exchanged for a session; it is not kept in the page or the browser." }
            form method="post" action="/console/sign-in" class="stack" {
                (csrf_field(csrf))
                div class="field" {
                    label for="key" { "API key" }
                    @if let Some(error) = error {
                        input id="key" name="key" type="password" autocomplete="off" required
                            aria-invalid="true" aria-describedby="key-error";
                        p id="key-error" class="error" role="alert" { (error) }
                    } @else {
                        input id="key" name="key" type="password" autocomplete="off" required;
                    }
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// The overview: health, queue depth by state, recent failures, active
/// plugin versions.
pub fn overview(
    chrome: &Chrome,
    health: &HealthView,
    counts: &[(JobState, i64)],
    failed_last_hour: i64,
    plugins: &[PluginSummary],
) -> Html<String> {
    let yes_no = |ok: Option<bool>, good: &'static str, bad: &'static str| {
        if ok == Some(true) { good } else { bad }
    };
    page(
        "Overview",
        Some(chrome),
        "overview",
        html! {
            h1 { "Overview" }
            section aria-labelledby="health" {
                h2 id="health" { "Health" }
                dl class="pairs" {
                    dt { "Status" } dd id="health-status" { (health.status) }
                    dt { "Database" } dd { (yes_no(health.database, "answering", "not answering")) }
                    dt { "Job workers" } dd { (yes_no(health.workers, "running", "not running")) }
                }
                @if let Some(warnings) = &health.warnings {
                    h3 { "Warnings" }
                    ul {
                        @for warning in warnings {
                            li { code { (warning.code) } ": " (warning.detail) }
                        }
                    }
                }
            }
            section aria-labelledby="queue" {
                h2 id="queue" { "Queue" }
                table id="queue-depth" {
                    caption { "Jobs by state" }
                    thead { tr { th scope="col" { "State" } th scope="col" class="num" { "Jobs" } } }
                    tbody {
                        @for (state, n) in counts {
                            tr data-state=(state.as_str()) {
                                th scope="row" { a href={ "/console/jobs?state=" (state.as_str()) } { (state.as_str()) } }
                                td class="num" { (n) }
                            }
                        }
                    }
                }
                p id="failed-last-hour" {
                    a href="/console/jobs?state=failed" { "Jobs failed in the last hour" } ": " strong { (failed_last_hour) }
                }
            }
            section aria-labelledby="plugins" {
                h2 id="plugins" { "Active plugin versions" }
                @if plugins.is_empty() {
                    p { "No plugins." }
                } @else {
                    table {
                        caption { "Each plugin's active version" }
                        thead { tr {
                            th scope="col" { "Plugin" }
                            th scope="col" { "Active version" }
                            th scope="col" { "Uploaded" }
                            th scope="col" { "Guard" }
                        } }
                        tbody {
                            @for plugin in plugins {
                                @let active = plugin.active.as_deref().and_then(|a| plugin.versions.iter().find(|v| v.version == a));
                                tr {
                                    th scope="row" { (plugin.name) }
                                    td { code class="version" { (plugin.active.as_deref().unwrap_or("none")) } }
                                    td {
                                        @if let Some(v) = active {
                                            (crate::api::timestamp(i64::try_from(v.uploaded_at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)))
                                            " by " (v.uploaded_by)
                                        }
                                    }
                                    td {
                                        @if let Some(guard) = &plugin.guard {
                                            "watching " code { (guard.version) } " (rolls back to " code { (guard.previous) } ")"
                                        } @else { "none" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub fn state_badge(job: &JobView) -> Markup {
    html! {
        span class="state" data-job-id=(job.id) data-state=(job.state) aria-live="polite" { (job.state) }
    }
}

/// The jobs page's filter as typed.
pub struct JobsQuery {
    pub state: String,
    pub definition: String,
    /// `datetime-local` text, UTC.
    pub from: String,
    pub until: String,
}

/// The jobs list with its filter; `errors` by the filter field they
/// concern.
pub fn jobs(
    chrome: &Chrome,
    jobs: &[JobView],
    query: &JobsQuery,
    errors: &[(&str, String)],
) -> Html<String> {
    let error = |field: &str| {
        errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.clone())
    };
    let described = |field: &str| error(field).map(|_| format!("{field}-error"));
    let state = query.state.as_str();
    page(
        "Jobs",
        Some(chrome),
        "jobs",
        html! {
            h1 { "Jobs" }
            p { a href="/console/jobs/run" { "Run a job definition now" } }
            form method="get" action="/console/jobs" class="filters" {
                div class="field" {
                    label for="state" { "State" }
                    select id="state" name="state" aria-describedby=[described("state")] {
                        option value="" selected[state.is_empty()] { "Any state" }
                        @for s in JobState::ALL {
                            option value=(s.as_str()) selected[state == s.as_str()] { (s.as_str()) }
                        }
                    }
                    @if let Some(error) = error("state") {
                        p id="state-error" class="error" role="alert" { (error) }
                    }
                }
                div class="field" {
                    label for="definition" { "Job definition" }
                    input id="definition" name="definition" type="text" value=(query.definition);
                }
                @for (name, label, value) in [("from", "Created from (UTC)", &query.from), ("until", "Created before (UTC)", &query.until)] {
                    div class="field" {
                        label for=(name) { (label) }
                        input id=(name) name=(name) type="datetime-local" value=(value)
                            aria-invalid=[error(name).map(|_| "true")]
                            aria-describedby=[described(name)];
                        @if let Some(error) = error(name) {
                            p id={ (name) "-error" } class="error" role="alert" { (error) }
                        }
                    }
                }
                button type="submit" { "Show jobs" }
            }
            @if jobs.is_empty() {
                p { "No jobs match." }
            } @else {
                table id="jobs" {
                    caption { "Newest first, at most " (super::JOBS_LISTED) }
                    thead { tr {
                        th scope="col" { "Job" }
                        th scope="col" { "Definition" }
                        th scope="col" { "Order" }
                        th scope="col" { "State" }
                        th scope="col" class="num" { "Attempts" }
                        th scope="col" { "Updated" }
                    } }
                    tbody {
                        @for job in jobs {
                            tr {
                                td { a href={ "/console/jobs/" (job.id) } { code { (job.id) } } }
                                td { (job.definition) }
                                td { (job.order_number) }
                                td { (state_badge(job)) }
                                td class="num" data-attempts-of=(job.id) { (job.attempts) }
                                td { (job.updated_at) }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn headers_table(caption: &str, headers: &[HeaderView]) -> Markup {
    html! {
        @if !headers.is_empty() {
            table class="headers" {
                caption { (caption) }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Value" } } }
                tbody {
                    @for h in headers {
                        tr { th scope="row" { code { (h.name) } } td { code { (h.value) } } }
                    }
                }
            }
        }
    }
}

fn exchange(n: usize, ex: &ExchangeView) -> Markup {
    html! {
        section class="exchange" {
            h4 { "Request " (n) ": " code { (ex.method) " " (ex.url) } }
            dl class="pairs" {
                dt { "ERP answer" }
                dd class="erp-status" {
                    @match ex.status {
                        Some(status) => { "HTTP " (status) }
                        None => { "no answer" }
                    }
                    @if let Some(error) = &ex.error { " (" (error) ")" }
                }
                dt { "Duration" } dd { (ex.duration_ms) " ms" }
            }
            (headers_table("Request headers", &ex.request_headers))
            h5 { "Request body (" (ex.request_body.bytes) " bytes)" }
            pre tabindex="0" { (ex.request_body.text) }
            (headers_table("Response headers", &ex.response_headers))
            @if let Some(body) = &ex.response_body {
                h5 { "Response body (" (body.bytes) " bytes)" }
                pre class="response-body" tabindex="0" { (body.text) }
            }
        }
    }
}

fn attempt(a: &AttemptView, duration_ms: Option<i64>) -> Markup {
    html! {
        section class="attempt" aria-labelledby={ "attempt-" (a.number) } {
            h3 id={ "attempt-" (a.number) } { "Attempt " (a.number) }
            dl class="pairs" {
                dt { "Outcome" } dd class="outcome" { (a.outcome.as_deref().unwrap_or("running")) }
                dt { "Started" } dd { (a.started_at) }
                dt { "Duration" } dd { @match duration_ms { Some(ms) => { (ms) " ms" } None => { "still running" } } }
                dt { "Plugin version" } dd { code class="version" { (a.plugin_version.as_deref().unwrap_or("none")) } }
                dt { "Worker" } dd { (a.worker) }
                @if let Some(message) = &a.message { dt { "Message" } dd { (message) } }
                @if let Some(reference) = &a.erp_reference { dt { "ERP reference" } dd { (reference) } }
            }
            h4 { "Log" }
            @if a.log.is_empty() {
                p { "No log lines." }
            } @else {
                ol class="log" {
                    @for line in &a.log {
                        li { span class="level" { (line.level) } " " (line.message) }
                    }
                }
            }
            @if a.exchange.is_empty() {
                p { "No ERP exchange was recorded." }
            } @else {
                @for (i, ex) in a.exchange.iter().enumerate() {
                    (exchange(i + 1, ex))
                }
                @if a.exchange_not_recorded > 0 {
                    p { (a.exchange_not_recorded) " more requests were made and not recorded." }
                }
            }
        }
    }
}

/// A job with every attempt; the Retry button shows while it is failed.
pub fn job(
    chrome: &Chrome,
    job: &JobView,
    durations: &[Option<i64>],
    notice: Option<&str>,
    error: Option<&str>,
) -> Html<String> {
    let attempts = job.attempt_history.as_deref().unwrap_or_default();
    page(
        &format!("Job {}", job.id),
        Some(chrome),
        "jobs",
        html! {
            h1 { "Job " code { (job.id) } }
            @if let Some(notice) = notice { p class="notice" role="status" { (notice) } }
            dl class="pairs" {
                dt { "State" } dd { (state_badge(job)) }
                dt { "Definition" } dd { a href={ "/console/jobs?definition=" (job.definition) } { (job.definition) } }
                dt { "Order" } dd { (job.order_number) }
                dt { "Attempts" } dd data-attempts-of=(job.id) { (job.attempts) }
                dt { "Attempts per round" } dd { (job.max_attempts) }
                dt { "Created" } dd { (job.created_at) }
                dt { "Updated" } dd { (job.updated_at) }
                @if let Some(reference) = &job.erp_reference { dt { "ERP reference" } dd { (reference) } }
                @if let Some(last) = &job.last_error { dt { "Last error" } dd { (last) } }
            }
            form method="post" action={ "/console/jobs/" (job.id) "/retry" } data-retry-for=(job.id)
                hidden[job.state != "failed" && error.is_none()] {
                (csrf_field(&chrome.csrf))
                button type="submit" aria-describedby=[error.map(|_| "retry-error")] { "Retry" }
                @if let Some(error) = error {
                    p id="retry-error" class="error" role="alert" { (error) }
                }
            }
            p class="hint" data-new-attempts-for=(job.id) hidden {
                "New attempts were made: " a href={ "/console/jobs/" (job.id) } { "reload to see them" } "."
            }
            h2 { "Attempts" }
            @if attempts.is_empty() {
                p { "No attempts yet." }
            }
            @for (i, a) in attempts.iter().enumerate() {
                (attempt(a, durations.get(i).copied().flatten()))
            }
        },
    )
}
