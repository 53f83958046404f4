//! Configuration, the seeds' admin screens: presets, cancel settings
//! (cancellable statuses), status mappings, websites and their
//! allow-cancellation switch, connections (secrets write-only), job
//! definitions with their parameters, API keys, the audit log.
//!
//! Every read and write goes through the API's routes as the operator
//! ([`super::api_call`]): the route table keeps a service key out (admin
//! only), the API validates, and its audit log records each write. The
//! forms show the API's refusals next to the fields they name. The lists
//! of websites, connections and job definitions, which the API has no
//! route for, are read from the store.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::pages::{self, Chrome, csrf_field};
use super::{ApiAnswer, Operator, api_call, csrf_refused, internal, link, number, role_refused};
use crate::api::AppState;

/// Refusals by the API field they name (`""`: none).
type Refusals = BTreeMap<String, String>;

/// A posted form: every field in order, repeated names kept.
#[derive(Debug, Default)]
pub struct Posted(Vec<(String, String)>);

impl Posted {
    fn parse(body: &[u8]) -> Self {
        Posted(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn of(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Posted(pairs.into_iter().collect())
    }

    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    fn csrf(&self) -> &str {
        self.get("csrf")
    }
}

/// Which form of a page a refusal belongs to, with the refusals.
struct Sent<'a> {
    form: &'a str,
    values: &'a Posted,
    refusals: &'a Refusals,
}

impl Sent<'_> {
    fn none() -> Sent<'static> {
        static EMPTY_POSTED: std::sync::OnceLock<Posted> = std::sync::OnceLock::new();
        static EMPTY_REFUSALS: Refusals = BTreeMap::new();
        Sent {
            form: "",
            values: EMPTY_POSTED.get_or_init(Posted::default),
            refusals: &EMPTY_REFUSALS,
        }
    }

    fn is(&self, form: &str) -> bool {
        self.form == form
    }

    /// The messages for an API field and those under it (`field[…]`,
    /// `field.…`), for the form that was sent.
    fn error(&self, form: &str, field: &str) -> Option<String> {
        if !self.is(form) {
            return None;
        }
        let found: Vec<&str> = self
            .refusals
            .iter()
            .filter(|(k, _)| {
                k.as_str() == field
                    || (!field.is_empty()
                        && (k.starts_with(&format!("{field}["))
                            || k.starts_with(&format!("{field}."))))
            })
            .map(|(_, v)| v.as_str())
            .collect();
        (!found.is_empty()).then(|| found.join(" "))
    }
}

/// Every refusal of the sent form, listed at its top.
fn summary(sent: &Sent<'_>, form: &str) -> Markup {
    html! {
        @if sent.is(form) && !sent.refusals.is_empty() {
            div class="error" role="alert" id={ (form) "-refused" } {
                p { "Nothing was changed:" }
                ul { @for message in sent.refusals.values() { li { (message) } } }
            }
        }
    }
}

/// A labelled input named `id`, with the API field's refusal next to it.
fn input(
    sent: &Sent<'_>,
    form: &str,
    id: &str,
    api_field: &str,
    label: &str,
    value: &str,
    kind: &str,
) -> Markup {
    let error = sent.error(form, api_field);
    let error_id = format!("{id}-error");
    html! {
        div class="field" {
            label for=(id) { (label) }
            @if kind == "textarea" {
                textarea id=(id) name=(id) rows="4"
                    aria-invalid=[error.as_ref().map(|_| "true")]
                    aria-describedby=[error.as_ref().map(|_| error_id.as_str())] { (value) }
            } @else {
                input id=(id) name=(id) type=(kind) value=(value)
                    aria-invalid=[error.as_ref().map(|_| "true")]
                    aria-describedby=[error.as_ref().map(|_| error_id.as_str())];
            }
            @if let Some(error) = &error {
                p id=(error_id) class="error" { (error) }
            }
        }
    }
}

fn checkbox(id: &str, label: &str, checked: bool) -> Markup {
    html! {
        div {
            input type="checkbox" id=(id) name=(id) value="true" checked[checked];
            " " label for=(id) { (label) }
        }
    }
}

/// The configuration pages' own navigation.
fn subnav(current: &str) -> Markup {
    let pages = [
        ("settings", "/console/config", "Settings and websites"),
        ("connections", "/console/config/connections", "Connections"),
        (
            "definitions",
            "/console/config/job-definitions",
            "Job definitions",
        ),
        ("keys", "/console/config/api-keys", "API keys"),
        ("audit", "/console/config/audit", "Audit log"),
    ];
    html! {
        nav aria-label="Configuration" class="subnav" {
            ul { @for (name, href, label) in pages {
                li { a href=(href) aria-current=[(name == current).then_some("page")] { (label) } }
            } }
        }
    }
}

/// A refusal by the API of a read: its role refusal, or what it said.
fn read_refused(operator: &Operator, answer: &ApiAnswer) -> Response {
    if answer.status == StatusCode::FORBIDDEN {
        return role_refused(operator, "change the configuration");
    }
    pages::error_page(
        answer.status,
        answer.body["detail"]
            .as_str()
            .unwrap_or("The configuration could not be read."),
    )
}

/// After a write: back to `to` when the API took it, or the answer to
/// give (a role refusal as the console's); otherwise the refusal by its
/// fields.
enum Written {
    Done(Response),
    Refused(StatusCode, Refusals),
}

fn written(operator: &Operator, answer: ApiAnswer, to: &str) -> Written {
    if answer.ok() {
        return Written::Done(Redirect::to(to).into_response());
    }
    if answer.status == StatusCode::FORBIDDEN {
        return Written::Done(role_refused(operator, "change the configuration"));
    }
    if answer.status.is_server_error() && answer.status != StatusCode::SERVICE_UNAVAILABLE {
        return Written::Done(internal(&format!(
            "a configuration write answered {}",
            answer.status
        )));
    }
    Written::Refused(answer.status, answer.refusals())
}

fn notice_of(query: &HashMap<String, String>) -> Option<String> {
    query.get("saved").map(|what| format!("Saved: {what}."))
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---- Settings, status mappings, presets, websites -------------------------

/// `GET /console/config`.
pub async fn settings_page(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    render_settings(
        &state,
        &operator,
        StatusCode::OK,
        notice_of(&query).as_deref(),
        &Sent::none(),
    )
    .await
}

async fn render_settings(
    state: &AppState,
    operator: &Operator,
    status: StatusCode,
    notice: Option<&str>,
    sent: &Sent<'_>,
) -> Response {
    let settings = api_call(state, operator, Method::GET, "/v1/admin/settings", None).await;
    if !settings.ok() {
        return read_refused(operator, &settings);
    }
    let mappings = api_call(
        state,
        operator,
        Method::GET,
        "/v1/admin/status-mappings",
        None,
    )
    .await;
    if !mappings.ok() {
        return read_refused(operator, &mappings);
    }
    let websites = match state.store.websites().await {
        Ok(websites) => websites,
        Err(error) => return internal(&error),
    };
    let chrome = Chrome::of(operator);
    // What the forms show: what was sent for the form sent, else what is
    // in force.
    let in_force_settings = Posted::of([
        (
            "cancellableOrderStatuses".to_owned(),
            settings.body["cancellableOrderStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        (
            "cancelledStatus".to_owned(),
            settings.body["cancelledStatus"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        ),
    ]);
    let settings_values = if sent.is("settings") {
        sent.values
    } else {
        &in_force_settings
    };
    let rows: Vec<(String, String, bool)> = if sent.is("mappings") {
        mapping_rows(sent.values)
    } else {
        mappings
            .body
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                (
                    m["erpCode"].as_str().unwrap_or("").to_owned(),
                    m["status"].as_str().unwrap_or("").to_owned(),
                    m["allowCancellation"] == true,
                )
            })
            .collect()
    };
    let markup = pages::page(
        "Configuration",
        Some(&chrome),
        "config",
        html! {
            h1 { "Configuration" }
            (subnav("settings"))
            @if let Some(notice) = notice { p class="notice" role="status" { (notice) } }
            section aria-labelledby="preset-heading" {
                h2 id="preset-heading" { "Presets" }
                p { "A preset replaces the status mappings and the cancel settings with a seed's." }
                (summary(sent, "preset"))
                form method="post" action="/console/config/preset" class="filters" {
                    (csrf_field(&chrome.csrf))
                    div class="field" {
                        label for="preset" { "Preset" }
                        select id="preset" name="preset" {
                            option value="insite" { "insite" }
                            option value="websphere" { "websphere" }
                        }
                    }
                    button type="submit" { "Apply the preset" }
                }
            }
            section aria-labelledby="settings-heading" {
                h2 id="settings-heading" { "Cancellable order statuses" }
                (summary(sent, "settings"))
                form method="post" action="/console/config/settings" class="stack" {
                    (csrf_field(&chrome.csrf))
                    (input(sent, "settings", "cancellableOrderStatuses", "cancellableOrderStatuses",
                        "Statuses an order may be cancelled in (one a line)",
                        settings_values.get("cancellableOrderStatuses"), "textarea"))
                    (input(sent, "settings", "cancelledStatus", "cancelledStatus",
                        "Status of a cancelled order", settings_values.get("cancelledStatus"), "text"))
                    button type="submit" { "Save the statuses" }
                }
            }
            section aria-labelledby="mappings-heading" {
                h2 id="mappings-heading" { "Order status mappings" }
                (summary(sent, "mappings"))
                form method="post" action="/console/config/status-mappings" id="mappings-form" {
                    (csrf_field(&chrome.csrf))
                    table id="mappings" {
                        caption { "ERP status codes and what they mean here; leave a row blank to drop it" }
                        thead { tr {
                            th scope="col" { "ERP code" } th scope="col" { "Status" } th scope="col" { "Cancellable" }
                        } }
                        tbody {
                            @for (i, (code, status, allow)) in rows.iter().cloned().chain(std::iter::repeat_n((String::new(), String::new(), false), 2)).enumerate() {
                                @let code_error = sent.error("mappings", &format!("statusMappings[{i}].erpCode"));
                                @let status_error = sent.error("mappings", &format!("statusMappings[{i}].status"));
                                tr {
                                    td {
                                        input id={ "erpCode-" (i) } name={ "erpCode-" (i) } type="text" value=(code)
                                            aria-label={ "ERP code, row " (i + 1) }
                                            aria-invalid=[code_error.as_ref().map(|_| "true")];
                                        @if let Some(e) = code_error { p class="error" { (e) } }
                                    }
                                    td {
                                        input id={ "status-" (i) } name={ "status-" (i) } type="text" value=(status)
                                            aria-label={ "Status, row " (i + 1) }
                                            aria-invalid=[status_error.as_ref().map(|_| "true")];
                                        @if let Some(e) = status_error { p class="error" { (e) } }
                                    }
                                    td {
                                        input id={ "allow-" (i) } name={ "allow-" (i) } type="checkbox" value="true" checked[allow]
                                            aria-label={ "Cancellable, row " (i + 1) };
                                    }
                                }
                            }
                        }
                    }
                    input type="hidden" name="rows" value=(rows.len() + 2);
                    button type="submit" { "Save the mappings" }
                }
            }
            section aria-labelledby="websites-heading" {
                h2 id="websites-heading" { "Websites" }
                (summary(sent, "website"))
                @if websites.is_empty() { p { "No websites: customers' cancellation requests are refused everywhere." } } @else {
                    table id="websites" {
                        caption { "Whether customers may ask to cancel on each website" }
                        thead { tr { th scope="col" { "Website" } th scope="col" { "Allow cancellation requests" } } }
                        tbody {
                            @for (i, (name, website)) in websites.iter().enumerate() {
                                tr data-website=(name) {
                                    th scope="row" { (name) }
                                    td {
                                        form method="post" action="/console/config/websites" class="inline" {
                                            (csrf_field(&chrome.csrf))
                                            input type="hidden" name="name" value=(name);
                                            input type="checkbox" id={ "allow-site-" (i) } name="allow" value="true"
                                                checked[website.allow_cancellation_request];
                                            " " label for={ "allow-site-" (i) } { "Allowed" }
                                            " " button type="submit" aria-label={ "Save website " (name) } { "Save" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                h3 { "Add a website" }
                form method="post" action="/console/config/websites" class="filters" id="website-form" {
                    (csrf_field(&chrome.csrf))
                    (input(sent, "website", "website-name", "name", "Website name",
                        if sent.is("website") { sent.values.get("website-name") } else { "" }, "text"))
                    (checkbox("website-allow", "Allow cancellation requests", sent.is("website") && sent.values.has("allow")))
                    button type="submit" { "Add the website" }
                }
            }
        },
    );
    (status, markup).into_response()
}

/// The mapping rows of a posted form, blank rows dropped.
fn mapping_rows(posted: &Posted) -> Vec<(String, String, bool)> {
    let count: usize = posted.get("rows").parse().unwrap_or(0).min(1000);
    (0..count)
        .map(|i| {
            (
                posted.get(&format!("erpCode-{i}")).trim().to_owned(),
                posted.get(&format!("status-{i}")).trim().to_owned(),
                posted.has(&format!("allow-{i}")),
            )
        })
        .filter(|(code, status, _)| !code.is_empty() || !status.is_empty())
        .collect()
}

/// Runs a settings-page write: the API call, then back to the page or the
/// page again with the refusal in the form that was sent.
async fn settings_write(
    state: &AppState,
    operator: &Operator,
    form: &str,
    posted: &Posted,
    answer: ApiAnswer,
    saved: &str,
) -> Response {
    let to = format!(
        "/console/config?saved={}",
        percent_encoding::utf8_percent_encode(saved, percent_encoding::NON_ALPHANUMERIC)
    );
    match written(operator, answer, &to) {
        Written::Done(response) => response,
        Written::Refused(status, refusals) => {
            let sent = Sent {
                form,
                values: posted,
                refusals: &refusals,
            };
            render_settings(state, operator, status, None, &sent).await
        }
    }
}

/// `POST /console/config/preset` → `POST /v1/admin/presets/{preset}`.
pub async fn apply_preset(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Response {
    let posted = Posted::parse(&body);
    if !operator.sent_csrf(posted.csrf()) {
        return csrf_refused();
    }
    let preset = posted.get("preset");
    let path = link("/v1/admin/presets/", preset);
    let answer = api_call(&state, &operator, Method::POST, &path, None).await;
    settings_write(
        &state,
        &operator,
        "preset",
        &posted,
        answer,
        &format!("the {preset} preset"),
    )
    .await
}

/// `POST /console/config/settings` → `PUT /v1/admin/settings`.
pub async fn put_settings(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Response {
    let posted = Posted::parse(&body);
    if !operator.sent_csrf(posted.csrf()) {
        return csrf_refused();
    }
    let body = json!({
        "cancellableOrderStatuses": lines(posted.get("cancellableOrderStatuses")),
        "cancelledStatus": posted.get("cancelledStatus").trim(),
    });
    let answer = api_call(
        &state,
        &operator,
        Method::PUT,
        "/v1/admin/settings",
        Some(body),
    )
    .await;
    settings_write(
        &state,
        &operator,
        "settings",
        &posted,
        answer,
        "the cancel settings",
    )
    .await
}

/// `POST /console/config/status-mappings` → `PUT /v1/admin/status-mappings`.
pub async fn put_mappings(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Response {
    let posted = Posted::parse(&body);
    if !operator.sent_csrf(posted.csrf()) {
        return csrf_refused();
    }
    let rows = mapping_rows(&posted);
    let body: Vec<Value> = rows
        .iter()
        .map(|(code, status, allow)| {
            json!({"erpCode": code, "status": status, "allowCancellation": allow})
        })
        .collect();
    let answer = api_call(
        &state,
        &operator,
        Method::PUT,
        "/v1/admin/status-mappings",
        Some(Value::Array(body)),
    )
    .await;
    settings_write(
        &state,
        &operator,
        "mappings",
        &posted,
        answer,
        "the status mappings",
    )
    .await
}

/// `POST /console/config/websites` → `PUT /v1/admin/websites/{website}`.
pub async fn put_website(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Response {
    let posted = Posted::parse(&body);
    if !operator.sent_csrf(posted.csrf()) {
        return csrf_refused();
    }
    // A row's switch sends `name`; the form for a new website `website-name`.
    let name = if posted.has("website-name") {
        posted.get("website-name")
    } else {
        posted.get("name")
    }
    .trim()
    .to_owned();
    if name.is_empty() {
        let refusals =
            Refusals::from([("name".to_owned(), "Enter the website's name.".to_owned())]);
        let sent = Sent {
            form: "website",
            values: &posted,
            refusals: &refusals,
        };
        return render_settings(
            &state,
            &operator,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            &sent,
        )
        .await;
    }
    let allow = posted.has("allow") || posted.has("website-allow");
    let answer = api_call(
        &state,
        &operator,
        Method::PUT,
        &link("/v1/admin/websites/", &name),
        Some(json!({"allowCancellationRequest": allow})),
    )
    .await;
    settings_write(
        &state,
        &operator,
        "website",
        &posted,
        answer,
        &format!("website {name}"),
    )
    .await
}

// ---- Connections ---------------------------------------------------------

/// `GET /console/config/connections[?name=…]`: the list, and the form
/// (filled with the named connection, secrets never shown).
pub async fn connections_page(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let name = query.get("name").map(String::as_str).unwrap_or("");
    render_connections(
        &state,
        &operator,
        StatusCode::OK,
        name,
        notice_of(&query).as_deref(),
        &Sent::none(),
    )
    .await
}

/// `key=value` lines as a map; a line without `=` is refused by its
/// number.
fn pairs(text: &str, field: &str, refusals: &mut Refusals) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) => {
                map.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            None => {
                refusals.insert(
                    field.to_owned(),
                    format!("{field}: line {} is not key=value.", n + 1),
                );
            }
        }
    }
    map
}

async fn render_connections(
    state: &AppState,
    operator: &Operator,
    status: StatusCode,
    name: &str,
    notice: Option<&str>,
    sent: &Sent<'_>,
) -> Response {
    // The API's read first: it refuses a role that may not configure.
    let current = if name.is_empty() {
        None
    } else {
        let answer = api_call(
            state,
            operator,
            Method::GET,
            &link("/v1/admin/connections/", name),
            None,
        )
        .await;
        if answer.status == StatusCode::NOT_FOUND {
            None
        } else if !answer.ok() {
            return read_refused(operator, &answer);
        } else {
            Some(answer.body)
        }
    };
    let probe = api_call(state, operator, Method::GET, "/v1/admin/settings", None).await;
    if !probe.ok() {
        return read_refused(operator, &probe);
    }
    let names = match state.store.connection_names().await {
        Ok(names) => names,
        Err(error) => return internal(&error),
    };
    let chrome = Chrome::of(operator);
    let filled = current.as_ref().map(|c| {
        Posted::of(
            [
                (
                    "name".to_owned(),
                    c["name"].as_str().unwrap_or("").to_owned(),
                ),
                (
                    "baseUrl".to_owned(),
                    c["baseUrl"].as_str().unwrap_or("").to_owned(),
                ),
                (
                    "allowedHosts".to_owned(),
                    c["allowedHosts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                (
                    "caCertificates".to_owned(),
                    c["caCertificates"].as_str().unwrap_or("").to_owned(),
                ),
                (
                    "settings".to_owned(),
                    c["settings"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
            ]
            .into_iter()
            .chain(
                (c["allowPrivateNetwork"] == true)
                    .then(|| ("allowPrivateNetwork".to_owned(), "true".to_owned())),
            ),
        )
    });
    let empty = Posted::default();
    let values = if sent.is("connection") {
        sent.values
    } else {
        filled.as_ref().unwrap_or(&empty)
    };
    let secret_names: Vec<String> = current
        .as_ref()
        .and_then(|c| c["secrets"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    let markup = pages::page(
        "Connections",
        Some(&chrome),
        "config",
        html! {
            h1 { "Connections" }
            (subnav("connections"))
            @if let Some(notice) = notice { p class="notice" role="status" { (notice) } }
            @if names.is_empty() { p { "No connections yet." } } @else {
                ul id="connections" { @for n in &names {
                    li { a href={ "/console/config/connections?name=" (percent_encoding::utf8_percent_encode(n, percent_encoding::NON_ALPHANUMERIC)) } { (n) } }
                } }
            }
            h2 { @if current.is_some() { "Edit connection " (name) } @else { "A new connection" } }
            (summary(sent, "connection"))
            form method="post" action="/console/config/connections" class="stack" id="connection-form" {
                (csrf_field(&chrome.csrf))
                (input(sent, "connection", "name", "name", "Name", values.get("name"), "text"))
                (input(sent, "connection", "baseUrl", "baseUrl", "Base URL", values.get("baseUrl"), "url"))
                (input(sent, "connection", "allowedHosts", "allowedHosts", "Allowed hosts (one a line)", values.get("allowedHosts"), "textarea"))
                (checkbox("allowPrivateNetwork", "Allow private network addresses", values.has("allowPrivateNetwork")))
                (input(sent, "connection", "caCertificates", "caCertificates", "CA certificates (PEM, optional)", values.get("caCertificates"), "textarea"))
                (input(sent, "connection", "settings", "settings", "Settings (key=value, one a line)", values.get("settings"), "textarea"))
                fieldset {
                    legend { "Secrets (write-only)" }
                    @if !secret_names.is_empty() {
                        p id="stored-secrets" { "Stored: " @for (i, s) in secret_names.iter().enumerate() { @if i > 0 { ", " } code { (s) } } ". Their values are never shown." }
                    }
                    // Never filled in: a secret is never sent back to a page.
                    (input(sent, "connection", "secrets", "secrets", "New secrets (key=value, one a line; empty keeps the stored ones)", "", "textarea"))
                    (checkbox("removeSecrets", "Remove every stored secret", false))
                }
                button type="submit" { "Save the connection" }
            }
        },
    );
    (status, markup).into_response()
}

/// `POST /console/config/connections` → `PUT /v1/admin/connections/{name}`.
pub async fn put_connection(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Response {
    let posted = Posted::parse(&body);
    if !operator.sent_csrf(posted.csrf()) {
        return csrf_refused();
    }
    let name = posted.get("name").trim().to_owned();
    let mut refusals = Refusals::new();
    if name.is_empty() {
        refusals.insert("name".to_owned(), "Enter the connection's name.".to_owned());
    }
    let settings = pairs(posted.get("settings"), "settings", &mut refusals);
    let secrets = pairs(posted.get("secrets"), "secrets", &mut refusals);
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    if refusals.is_empty() {
        let mut body = json!({
            "baseUrl": posted.get("baseUrl").trim(),
            "allowedHosts": lines(posted.get("allowedHosts")),
            "allowPrivateNetwork": posted.has("allowPrivateNetwork"),
            "settings": settings,
        });
        let ca = posted.get("caCertificates").trim();
        if !ca.is_empty() {
            body["caCertificates"] = json!(ca);
        }
        if posted.has("removeSecrets") {
            body["secrets"] = json!({});
        } else if !secrets.is_empty() {
            body["secrets"] = json!(secrets);
        }
        let answer = api_call(
            &state,
            &operator,
            Method::PUT,
            &link("/v1/admin/connections/", &name),
            Some(body),
        )
        .await;
        let to = format!(
            "/console/config/connections?name={}&saved=connection",
            percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
        );
        match written(&operator, answer, &to) {
            Written::Done(response) => return response,
            Written::Refused(s, r) => {
                status = s;
                refusals = r;
            }
        }
    }
    let sent = Sent {
        form: "connection",
        values: &posted,
        refusals: &refusals,
    };
    render_connections(&state, &operator, status, &name, None, &sent).await
}

// ---- Job definitions -------------------------------------------------------

/// `GET /console/config/job-definitions[?name=…]`.
pub async fn definitions_page(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let name = query.get("name").map(String::as_str).unwrap_or("");
    render_definitions(
        &state,
        &operator,
        StatusCode::OK,
        name,
        notice_of(&query).as_deref(),
        &Sent::none(),
    )
    .await
}

async fn render_definitions(
    state: &AppState,
    operator: &Operator,
    status: StatusCode,
    name: &str,
    notice: Option<&str>,
    sent: &Sent<'_>,
) -> Response {
    let current = if name.is_empty() {
        None
    } else {
        let answer = api_call(
            state,
            operator,
            Method::GET,
            &link("/v1/admin/job-definitions/", name),
            None,
        )
        .await;
        if answer.status == StatusCode::NOT_FOUND {
            None
        } else if !answer.ok() {
            return read_refused(operator, &answer);
        } else {
            Some(answer.body)
        }
    };
    let probe = api_call(state, operator, Method::GET, "/v1/admin/settings", None).await;
    if !probe.ok() {
        return read_refused(operator, &probe);
    }
    let (names, connections) = match (
        state.store.job_definition_names().await,
        state.store.connection_names().await,
    ) {
        (Ok(names), Ok(connections)) => (names, connections),
        (Err(error), _) | (_, Err(error)) => return internal(&error),
    };
    let plugins: Vec<String> = state
        .plugins
        .as_ref()
        .map(|r| r.list().into_iter().map(|p| p.name).collect())
        .unwrap_or_default();
    let chrome = Chrome::of(operator);
    let filled = current.as_ref().map(|d| {
        let mut pairs = vec![
            ("name".to_owned(), name.to_owned()),
            (
                "jobType".to_owned(),
                d["jobType"].as_str().unwrap_or("Execution").to_owned(),
            ),
            (
                "connection".to_owned(),
                d["connection"].as_str().unwrap_or("").to_owned(),
            ),
            (
                "integrationProcessor".to_owned(),
                d["integrationProcessor"].as_str().unwrap_or("").to_owned(),
            ),
            (
                "appliesTo".to_owned(),
                d["appliesTo"].as_str().unwrap_or("any").to_owned(),
            ),
            (
                "maxAttempts".to_owned(),
                d["retry"]["maxAttempts"].to_string(),
            ),
            (
                "initialBackoffMs".to_owned(),
                d["retry"]["initialBackoffMs"].to_string(),
            ),
            (
                "maxBackoffMs".to_owned(),
                d["retry"]["maxBackoffMs"].to_string(),
            ),
        ];
        if d["enabled"] == true {
            pairs.push(("enabled".to_owned(), "true".to_owned()));
        }
        let params = d["parameters"].as_array().cloned().unwrap_or_default();
        for (i, p) in params.iter().enumerate() {
            for (key, field) in [
                ("paramName", "name"),
                ("valueType", "valueType"),
                ("defaultValue", "defaultValue"),
                ("prompt", "prompt"),
            ] {
                pairs.push((
                    format!("{key}-{i}"),
                    p[field].as_str().unwrap_or("").to_owned(),
                ));
            }
        }
        pairs.push(("params".to_owned(), params.len().to_string()));
        Posted::of(pairs)
    });
    let fresh = Posted::of([
        ("jobType".to_owned(), "Execution".to_owned()),
        ("enabled".to_owned(), "true".to_owned()),
        ("appliesTo".to_owned(), "any".to_owned()),
        ("maxAttempts".to_owned(), "8".to_owned()),
        ("initialBackoffMs".to_owned(), "1000".to_owned()),
        ("maxBackoffMs".to_owned(), "300000".to_owned()),
        ("params".to_owned(), "1".to_owned()),
        ("paramName-0".to_owned(), "OrderNumber".to_owned()),
        ("valueType-0".to_owned(), "String".to_owned()),
        ("prompt-0".to_owned(), "Order Number".to_owned()),
    ]);
    let values = if sent.is("definition") {
        sent.values
    } else {
        filled.as_ref().unwrap_or(&fresh)
    };
    let params = parameter_rows(values);
    let connection = values.get("connection");
    let applies = values.get("appliesTo");
    let f = "definition";
    let markup = pages::page(
        "Job definitions",
        Some(&chrome),
        "config",
        html! {
            h1 { "Job definitions" }
            (subnav("definitions"))
            @if let Some(notice) = notice { p class="notice" role="status" { (notice) } }
            @if names.is_empty() { p { "No job definitions yet." } } @else {
                ul id="definitions" { @for n in &names {
                    li { a href={ "/console/config/job-definitions?name=" (percent_encoding::utf8_percent_encode(n, percent_encoding::NON_ALPHANUMERIC)) } { (n) } }
                } }
            }
            h2 { @if current.is_some() { "Edit job definition " (name) } @else { "A new job definition" } }
            (summary(sent, f))
            form method="post" action="/console/config/job-definitions" class="stack" id="definition-form" {
                (csrf_field(&chrome.csrf))
                (input(sent, f, "name", "name", "Name", values.get("name"), "text"))
                (input(sent, f, "jobType", "jobType", "Job type", values.get("jobType"), "text"))
                div class="field" {
                    label for="connection" { "Connection" }
                    @let error = sent.error(f, "connection");
                    select id="connection" name="connection" aria-invalid=[error.as_ref().map(|_| "true")]
                        aria-describedby=[error.as_ref().map(|_| "connection-error")] {
                        option value="" selected[connection.is_empty()] { "Choose a connection" }
                        @for c in &connections { option value=(c) selected[connection == c] { (c) } }
                    }
                    @if let Some(e) = error { p id="connection-error" class="error" { (e) } }
                }
                (input(sent, f, "integrationProcessor", "integrationProcessor", "Integration processor (a plugin, or plugin@sha256:…)", values.get("integrationProcessor"), "text"))
                @if !plugins.is_empty() {
                    p class="hint" { "Plugins: " @for (i, p) in plugins.iter().enumerate() { @if i > 0 { ", " } code { (p) } } }
                }
                div class="field" {
                    label for="appliesTo" { "Applies to" }
                    select id="appliesTo" name="appliesTo" {
                        @for (value, label) in [("any", "every cancellation"), ("full", "cancellations that end the order"), ("partial", "partial cancellations")] {
                            option value=(value) selected[applies == value] { (label) }
                        }
                    }
                }
                (checkbox("enabled", "Enabled", values.has("enabled")))
                fieldset {
                    legend { "Retry" }
                    (input(sent, f, "maxAttempts", "retry.maxAttempts", "Attempts per round", values.get("maxAttempts"), "number"))
                    (input(sent, f, "initialBackoffMs", "retry.initialBackoffMs", "First wait (ms)", values.get("initialBackoffMs"), "number"))
                    (input(sent, f, "maxBackoffMs", "retry.maxBackoffMs", "Longest wait (ms)", values.get("maxBackoffMs"), "number"))
                }
                table id="parameters" {
                    caption { "Parameters (leave a row's name blank to drop it)" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Value type" } th scope="col" { "Default" } th scope="col" { "Prompt" } } }
                    tbody {
                        @for (i, p) in params.iter().cloned().chain(std::iter::once([String::new(), "String".to_owned(), String::new(), String::new()])).enumerate() {
                            @let error = sent.error(f, &format!("parameters[{i}]"));
                            tr {
                                @for (j, (key, label)) in [("paramName", "Name"), ("valueType", "Value type"), ("defaultValue", "Default"), ("prompt", "Prompt")].into_iter().enumerate() {
                                    td {
                                        input id={ (key) "-" (i) } name={ (key) "-" (i) } type="text" value=(p[j])
                                            aria-label={ (label) ", parameter " (i + 1) }
                                            aria-invalid=[(j == 0 && error.is_some()).then_some("true")];
                                        @if j == 0 { @if let Some(e) = &error { p class="error" { (e) } } }
                                    }
                                }
                            }
                        }
                    }
                }
                input type="hidden" name="params" value=(params.len() + 1);
                button type="submit" { "Save the job definition" }
            }
        },
    );
    (status, markup).into_response()
}

/// The parameter rows of a form, those without a name dropped.
fn parameter_rows(posted: &Posted) -> Vec<[String; 4]> {
    let count: usize = posted.get("params").parse().unwrap_or(0).min(1000);
    (0..count)
        .map(|i| {
            ["paramName", "valueType", "defaultValue", "prompt"]
                .map(|key| posted.get(&format!("{key}-{i}")).trim().to_owned())
        })
        .filter(|row| !row[0].is_empty())
        .collect()
}

/// `POST /console/config/job-definitions` → `PUT /v1/admin/job-definitions/{name}`.
pub async fn put_definition(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Response {
    let posted = Posted::parse(&body);
    if !operator.sent_csrf(posted.csrf()) {
        return csrf_refused();
    }
    let name = posted.get("name").trim().to_owned();
    let mut refusals = Refusals::new();
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    if name.is_empty() {
        refusals.insert(
            "name".to_owned(),
            "Enter the job definition's name.".to_owned(),
        );
    } else {
        let parameters: Vec<Value> = parameter_rows(&posted)
            .into_iter()
            .map(|[name, value_type, default_value, prompt]| {
                json!({"name": name, "valueType": if value_type.is_empty() { "String".to_owned() } else { value_type },
                       "defaultValue": default_value, "prompt": prompt})
            })
            .collect();
        let body = json!({
            "jobType": posted.get("jobType").trim(),
            "connection": posted.get("connection").trim(),
            "integrationProcessor": posted.get("integrationProcessor").trim(),
            "appliesTo": posted.get("appliesTo").trim(),
            "enabled": posted.has("enabled"),
            "parameters": parameters,
            "retry": {
                "maxAttempts": number(posted.get("maxAttempts")),
                "initialBackoffMs": number(posted.get("initialBackoffMs")),
                "maxBackoffMs": number(posted.get("maxBackoffMs")),
            },
        });
        let answer = api_call(
            &state,
            &operator,
            Method::PUT,
            &link("/v1/admin/job-definitions/", &name),
            Some(body),
        )
        .await;
        let to = format!(
            "/console/config/job-definitions?name={}&saved=job%20definition",
            percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
        );
        match written(&operator, answer, &to) {
            Written::Done(response) => return response,
            Written::Refused(s, r) => {
                status = s;
                refusals = r;
            }
        }
    }
    let sent = Sent {
        form: "definition",
        values: &posted,
        refusals: &refusals,
    };
    render_definitions(&state, &operator, status, &name, None, &sent).await
}

// ---- API keys ----------------------------------------------------------------

/// `GET /console/config/api-keys`.
pub async fn keys_page(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let notice = query
        .get("revoked")
        .map(|id| format!("Key {id} is revoked."));
    render_keys(
        &state,
        &operator,
        StatusCode::OK,
        notice.as_deref(),
        None,
        &Sent::none(),
    )
    .await
}

async fn render_keys(
    state: &AppState,
    operator: &Operator,
    status: StatusCode,
    notice: Option<&str>,
    created: Option<&Value>,
    sent: &Sent<'_>,
) -> Response {
    let answer = api_call(state, operator, Method::GET, "/v1/admin/api-keys", None).await;
    if !answer.ok() {
        return read_refused(operator, &answer);
    }
    let keys = answer.body.as_array().cloned().unwrap_or_default();
    let chrome = Chrome::of(operator);
    let empty = Posted::default();
    let values = if sent.is("key") { sent.values } else { &empty };
    let role = values.get("role");
    let f = "key";
    let markup = pages::page(
        "API keys",
        Some(&chrome),
        "config",
        html! {
            h1 { "API keys" }
            (subnav("keys"))
            @if let Some(notice) = notice { p class="notice" role="status" { (notice) } }
            @if let Some(key) = created {
                div class="notice" role="status" id="new-key" {
                    p { "Key " strong { (key["name"].as_str().unwrap_or("")) } " (" (key["role"].as_str().unwrap_or("")) ") is created. Its token is shown this once; copy it now:" }
                    p { code id="new-token" { (key["token"].as_str().unwrap_or("")) } }
                }
            }
            table id="keys" {
                caption { "Every key, oldest first, without its token" }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Customer" }
                    th scope="col" { "Token starts" } th scope="col" { "Created" } th scope="col" { "Last used" }
                    th scope="col" { "Expires" } th scope="col" { "Revoke" }
                } }
                tbody {
                    @for k in &keys {
                        @let id = k["id"].as_str().unwrap_or("");
                        tr data-key=(id) {
                            th scope="row" { (k["name"].as_str().unwrap_or("")) }
                            td { (k["role"].as_str().unwrap_or("")) }
                            td { (k["customerNumber"].as_str().unwrap_or("")) }
                            td { code { (k["tokenPrefix"].as_str().unwrap_or("")) } }
                            td { (k["createdAt"].as_str().unwrap_or("")) " by " (k["createdBy"].as_str().unwrap_or("")) }
                            td { (k["lastUsedAt"].as_str().unwrap_or("never")) }
                            td { (k["expiresAt"].as_str().unwrap_or("never")) }
                            td {
                                form method="post" action={ (link("/console/config/api-keys/", id)) "/revoke" } class="inline" {
                                    (csrf_field(&chrome.csrf))
                                    button type="submit" aria-label={ "Revoke key " (k["name"].as_str().unwrap_or("")) } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Create a key" }
            (summary(sent, f))
            form method="post" action="/console/config/api-keys" class="stack" id="key-form" {
                (csrf_field(&chrome.csrf))
                (input(sent, f, "keyName", "name", "Name", values.get("keyName"), "text"))
                div class="field" {
                    label for="role" { "Role" }
                    select id="role" name="role" {
                        @for r in ["admin", "service", "customer"] { option value=(r) selected[role == r] { (r) } }
                    }
                }
                (input(sent, f, "customerNumber", "customerNumber", "Customer number (customer keys)", values.get("customerNumber"), "text"))
                (input(sent, f, "expiresAt", "expiresAt", "Expires at (RFC 3339, optional)", values.get("expiresAt"), "text"))
                button type="submit" { "Create the key" }
            }
        },
    );
    (status, markup).into_response()
}

/// `POST /console/config/api-keys` → `POST /v1/admin/api-keys`; the page
/// shows the new token this once (an answer, never a redirect whose
/// address could keep it).
pub async fn create_key(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Response {
    let posted = Posted::parse(&body);
    if !operator.sent_csrf(posted.csrf()) {
        return csrf_refused();
    }
    let text = |name: &str| Some(posted.get(name).trim()).filter(|v| !v.is_empty());
    let body = json!({
        "name": text("keyName"),
        "role": posted.get("role"),
        "customerNumber": text("customerNumber"),
        "expiresAt": text("expiresAt"),
    });
    let answer = api_call(
        &state,
        &operator,
        Method::POST,
        "/v1/admin/api-keys",
        Some(body),
    )
    .await;
    if answer.ok() {
        return render_keys(
            &state,
            &operator,
            StatusCode::CREATED,
            None,
            Some(&answer.body),
            &Sent::none(),
        )
        .await;
    }
    match written(&operator, answer, "") {
        Written::Done(response) => response,
        Written::Refused(status, refusals) => {
            let sent = Sent {
                form: "key",
                values: &posted,
                refusals: &refusals,
            };
            render_keys(&state, &operator, status, None, None, &sent).await
        }
    }
}

/// `POST /console/config/api-keys/{id}/revoke` → `DELETE /v1/admin/api-keys/{id}`.
pub async fn revoke_key(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let posted = Posted::parse(&body);
    if !operator.sent_csrf(posted.csrf()) {
        return csrf_refused();
    }
    let answer = api_call(
        &state,
        &operator,
        Method::DELETE,
        &link("/v1/admin/api-keys/", &id),
        None,
    )
    .await;
    let to = format!(
        "/console/config/api-keys?revoked={}",
        percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC)
    );
    match written(&operator, answer, &to) {
        Written::Done(response) => response,
        Written::Refused(status, refusals) => {
            let sent = Sent {
                form: "revoke",
                values: &posted,
                refusals: &refusals,
            };
            let message = sent
                .refusals
                .values()
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            pages::error_page(status, &message)
        }
    }
}

// ---- Audit log -----------------------------------------------------------------

/// Entries on one page of the audit log.
const AUDIT_PAGE: u32 = 50;

/// `GET /console/config/audit[?before=…]` → `GET /v1/admin/audit`.
pub async fn audit_page(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut path = format!("/v1/admin/audit?limit={AUDIT_PAGE}");
    if let Some(before) = query.get("before") {
        path.push_str(&format!(
            "&before={}",
            percent_encoding::utf8_percent_encode(before, percent_encoding::NON_ALPHANUMERIC)
        ));
    }
    let answer = api_call(&state, &operator, Method::GET, &path, None).await;
    if !answer.ok() {
        return read_refused(&operator, &answer);
    }
    let entries = answer.body.as_array().cloned().unwrap_or_default();
    let older = (entries.len() == AUDIT_PAGE as usize)
        .then(|| entries.last().map(|e| e["id"].to_string()))
        .flatten();
    let chrome = Chrome::of(&operator);
    let markup: Html<String> = pages::page(
        "Audit log",
        Some(&chrome),
        "config",
        html! {
            h1 { "Audit log" }
            (subnav("audit"))
            @if entries.is_empty() { p { "No entries." } } @else {
                table id="audit" {
                    caption { "Admin writes, newest first" }
                    thead { tr {
                        th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Request" }
                        th scope="col" class="num" { "Status" } th scope="col" { "What" }
                    } }
                    tbody {
                        @for e in &entries {
                            tr {
                                td { (e["at"].as_str().unwrap_or("")) }
                                td { (e["actor"].as_str().unwrap_or("")) }
                                td { code { (e["method"].as_str().unwrap_or("")) " " (e["path"].as_str().unwrap_or("")) } }
                                td class="num" { (e["status"]) }
                                td { (e["summary"].as_str().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            @if let Some(before) = older {
                p { a href={ "/console/config/audit?before=" (before) } { "Older entries" } }
            }
        },
    );
    markup.into_response()
}
