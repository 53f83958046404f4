//! Plugins: the list with an upload form (a file field that also takes a
//! dropped `.wasm`, with a progress indicator when scripts run), a plugin
//! with its versions, guard and history, activation and rollback, and its
//! shadow run: start one, watch its report, stop it.
//!
//! Everything goes through the API's routes as the operator
//! ([`super::api_call`]): `GET /v1/admin/plugins[/{name}]`,
//! `PUT /v1/admin/plugins/{name}`, `POST /v1/admin/plugins/{name}/activate`,
//! `GET|POST|DELETE /v1/admin/plugins/{name}/shadow`. Their role check
//! (admin only), validation and audit log are the API's.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::pages::{self, Chrome, csrf_field};
use super::{
    ApiAnswer, Operator, api_call, api_request, csrf_refused, internal, link, number, role_refused,
};
use crate::api::{AppState, SIGNATURE_HEADER};

/// Refusals by form field (`""`: the form as a whole).
type Refusals = BTreeMap<String, String>;

/// An API refusal as the page shows it: a role the API refuses is the
/// console's refusal too.
fn refused_page(operator: &Operator, answer: &ApiAnswer) -> Response {
    match answer.status {
        StatusCode::FORBIDDEN => role_refused(operator, "manage plugins"),
        status => pages::error_page(
            status,
            answer.body["detail"]
                .as_str()
                .unwrap_or("The plugin registry did not answer."),
        ),
    }
}

/// `GET /console/plugins`.
pub async fn list(State(state): State<AppState>, operator: Operator) -> Response {
    render_list(
        &state,
        &operator,
        StatusCode::OK,
        &UploadFields::default(),
        &Refusals::new(),
    )
    .await
}

async fn render_list(
    state: &AppState,
    operator: &Operator,
    status: StatusCode,
    sent: &UploadFields,
    refusals: &Refusals,
) -> Response {
    let answer = api_call(state, operator, Method::GET, "/v1/admin/plugins", None).await;
    if !answer.ok() {
        return refused_page(operator, &answer);
    }
    let plugins = answer.body.as_array().cloned().unwrap_or_default();
    (
        status,
        list_markup(&Chrome::of(operator), &plugins, sent, refusals),
    )
        .into_response()
}

/// What the upload form sent, but the file.
#[derive(Debug, Default)]
pub struct UploadFields {
    name: String,
    activate: bool,
    signature: String,
}

/// `POST /console/plugins` (`multipart/form-data`): the upload, handed to
/// `PUT /v1/admin/plugins/{name}`. The file is read up to the registry's
/// own size limit.
pub async fn upload(
    State(state): State<AppState>,
    operator: Operator,
    mut multipart: Multipart,
) -> Response {
    let limit = state
        .plugins
        .as_ref()
        .map(|r| r.config().max_component_bytes)
        .unwrap_or(0);
    let mut csrf = String::new();
    let mut fields = UploadFields::default();
    let mut file: Vec<u8> = Vec::new();
    let mut too_large = false;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => {
                return pages::error_page(
                    StatusCode::BAD_REQUEST,
                    &format!("The upload could not be read: {error}."),
                );
            }
        };
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            let mut field = field;
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if file.len() + chunk.len() > limit {
                            too_large = true;
                            file.clear();
                            break;
                        }
                        file.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(error) => {
                        return pages::error_page(
                            StatusCode::BAD_REQUEST,
                            &format!("The upload could not be read: {error}."),
                        );
                    }
                }
            }
            if too_large {
                break;
            }
        } else {
            let text = field.text().await.unwrap_or_default();
            match name.as_str() {
                "csrf" => csrf = text,
                "name" => fields.name = text.trim().to_owned(),
                "activate" => fields.activate = true,
                "signature" => fields.signature = text.trim().to_owned(),
                _ => {}
            }
        }
    }
    if !operator.sent_csrf(&csrf) {
        return csrf_refused();
    }
    let mut refusals = Refusals::new();
    if too_large {
        refusals.insert(
            "file".to_owned(),
            format!("The file is larger than the {limit} bytes a plugin may have."),
        );
    }
    if fields.name.is_empty() {
        refusals.insert("name".to_owned(), "Enter the plugin's name.".to_owned());
    }
    if !refusals.is_empty() {
        let status = if too_large {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        return render_list(&state, &operator, status, &fields, &refusals).await;
    }
    let path = format!(
        "{}?activate={}",
        link("/v1/admin/plugins/", &fields.name),
        fields.activate
    );
    let mut request = axum::http::Request::builder()
        .method(Method::PUT)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/wasm");
    if !fields.signature.is_empty() {
        request = request.header(SIGNATURE_HEADER, fields.signature.as_str());
    }
    let request = match request.body(axum::body::Body::from(file)) {
        Ok(request) => request,
        Err(_) => {
            refusals.insert(
                "signature".to_owned(),
                "The signature is not base64 text.".to_owned(),
            );
            return render_list(
                &state,
                &operator,
                StatusCode::UNPROCESSABLE_ENTITY,
                &fields,
                &refusals,
            )
            .await;
        }
    };
    let answer = api_request(&state, &operator, request).await;
    if answer.ok() {
        let version = answer.body["version"].as_str().unwrap_or("");
        return Redirect::to(&format!(
            "{}?uploaded={version}",
            link("/console/plugins/", &fields.name)
        ))
        .into_response();
    }
    if answer.status == StatusCode::FORBIDDEN {
        return refused_page(&operator, &answer);
    }
    let code = answer.body["code"].as_str().unwrap_or("");
    for (field, message) in answer.refusals() {
        let at = match field.as_str() {
            "name" => "name",
            "X-Plugin-Signature" => "signature",
            "body" => "file",
            "" if matches!(code, "payload-too-large" | "unsupported-media-type") => "file",
            _ => "",
        };
        refusals
            .entry(at.to_owned())
            .and_modify(|m| {
                m.push(' ');
                m.push_str(&message);
            })
            .or_insert(message);
    }
    render_list(&state, &operator, answer.status, &fields, &refusals).await
}

/// `GET /console/plugins/{name}`.
pub async fn plugin_page(
    State(state): State<AppState>,
    operator: Operator,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let notice = if let Some(version) = query.get("uploaded") {
        Some(format!("Version {version} is stored."))
    } else if let Some(version) = query.get("activated") {
        Some(format!("Version {version} is active."))
    } else if query.contains_key("shadow-started") {
        Some("The shadow run started: it takes the plugin's next jobs.".to_owned())
    } else if query.contains_key("shadow-stopped") {
        Some("The shadow run is stopped: it takes no more jobs.".to_owned())
    } else {
        None
    };
    render_plugin(
        &state,
        &operator,
        &name,
        StatusCode::OK,
        notice.as_deref(),
        &Sent::default(),
        &Refusals::new(),
    )
    .await
}

/// What the operator sent in the page's forms, shown again with refusals.
#[derive(Debug, Default)]
struct Sent {
    activate: ActivateForm,
    shadow: ShadowForm,
}

async fn render_plugin(
    state: &AppState,
    operator: &Operator,
    name: &str,
    status: StatusCode,
    notice: Option<&str>,
    sent: &Sent,
    refusals: &Refusals,
) -> Response {
    let answer = api_call(
        state,
        operator,
        Method::GET,
        &link("/v1/admin/plugins/", name),
        None,
    )
    .await;
    if !answer.ok() {
        return refused_page(operator, &answer);
    }
    let shadow_path = format!("{}/shadow", link("/v1/admin/plugins/", name));
    let shadow = api_call(state, operator, Method::GET, &shadow_path, None).await;
    // No shadow run (404) is the common case; a failure to read one is
    // said on the page, which stays useful for the rest.
    let shadow = if shadow.ok() {
        Shadow::Run(shadow.body)
    } else if shadow.status == StatusCode::NOT_FOUND {
        Shadow::None
    } else {
        Shadow::Unreadable(
            shadow.body["detail"]
                .as_str()
                .unwrap_or("the registry did not answer")
                .to_owned(),
        )
    };
    let page = PluginPage {
        plugin: &answer.body,
        shadow: &shadow,
        notice,
        sent,
        refusals,
    };
    (status, plugin_markup(&Chrome::of(operator), &page)).into_response()
}

/// The shadow-run form: an inactive version and how many jobs.
#[derive(Debug, Default, Deserialize)]
pub struct ShadowForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    jobs: String,
}

/// `POST /console/plugins/{name}/shadow`: starts a shadow run, handed to
/// `POST /v1/admin/plugins/{name}/shadow`.
pub async fn start_shadow(
    State(state): State<AppState>,
    operator: Operator,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<ShadowForm>,
) -> Response {
    if !operator.sent_csrf(&form.csrf) {
        return csrf_refused();
    }
    let body = serde_json::json!({"version": form.version.trim(), "jobs": number(&form.jobs)});
    let path = format!("{}/shadow", link("/v1/admin/plugins/", &name));
    let answer = api_call(&state, &operator, Method::POST, &path, Some(body)).await;
    let whole_page = answer.body["code"] == "plugin-not-found";
    let done = format!(
        "{}?shadow-started#shadow-heading",
        link("/console/plugins/", &name)
    );
    let placed = |field: &str| match field {
        "version" => "shadow-version",
        "jobs" => "shadow-jobs",
        _ => "shadow",
    };
    let sent = Sent {
        shadow: form,
        ..Sent::default()
    };
    form_answered(
        &state, &operator, &name, answer, whole_page, &done, placed, sent,
    )
    .await
}

/// What a plugin page's form becomes once the API answered it: the page
/// `done` leads to; the refused page when the role (or `whole_page`) says
/// so; or the plugin's page again with `sent` and each refusal at the field
/// `placed` names for the API's field.
#[allow(clippy::too_many_arguments)]
async fn form_answered(
    state: &AppState,
    operator: &Operator,
    name: &str,
    answer: ApiAnswer,
    whole_page: bool,
    done: &str,
    placed: impl Fn(&str) -> &'static str,
    sent: Sent,
) -> Response {
    if answer.ok() {
        return Redirect::to(done).into_response();
    }
    if answer.status == StatusCode::FORBIDDEN || whole_page {
        return refused_page(operator, &answer);
    }
    if answer.status.is_server_error() && answer.status != StatusCode::SERVICE_UNAVAILABLE {
        return internal(&format!("the API answered {}", answer.status));
    }
    let refusals: Refusals = answer
        .refusals()
        .into_iter()
        .map(|(field, message)| (placed(&field).to_owned(), message))
        .collect();
    render_plugin(state, operator, name, answer.status, None, &sent, &refusals).await
}

/// The stop form: its CSRF token only.
#[derive(Debug, Default, Deserialize)]
pub struct StopForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/plugins/{name}/shadow/stop`: handed to
/// `DELETE /v1/admin/plugins/{name}/shadow`.
pub async fn stop_shadow(
    State(state): State<AppState>,
    operator: Operator,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<StopForm>,
) -> Response {
    if !operator.sent_csrf(&form.csrf) {
        return csrf_refused();
    }
    let path = format!("{}/shadow", link("/v1/admin/plugins/", &name));
    let answer = api_call(&state, &operator, Method::DELETE, &path, None).await;
    if answer.ok() {
        return Redirect::to(&format!(
            "{}?shadow-stopped#shadow-heading",
            link("/console/plugins/", &name)
        ))
        .into_response();
    }
    refused_page(&operator, &answer)
}

/// The activation form: a version, and an optional guard.
#[derive(Debug, Default, Deserialize)]
pub struct ActivateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(default, rename = "observeJobs")]
    observe_jobs: String,
    #[serde(default, rename = "maxFailureRate")]
    max_failure_rate: String,
}

/// `POST /console/plugins/{name}/activate`: activation (a rollback when
/// the version is older than the active one), handed to
/// `POST /v1/admin/plugins/{name}/activate`.
pub async fn activate(
    State(state): State<AppState>,
    operator: Operator,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<ActivateForm>,
) -> Response {
    if !operator.sent_csrf(&form.csrf) {
        return csrf_refused();
    }
    let mut body = serde_json::json!({"version": form.version.trim()});
    if !form.observe_jobs.trim().is_empty() || !form.max_failure_rate.trim().is_empty() {
        body["guard"] = serde_json::json!({
            "observeJobs": number(&form.observe_jobs),
            "maxFailureRate": number(&form.max_failure_rate),
        });
    }
    let path = format!("{}/activate", link("/v1/admin/plugins/", &name));
    let answer = api_call(&state, &operator, Method::POST, &path, Some(body)).await;
    let whole_page = answer.status == StatusCode::NOT_FOUND;
    let done = format!(
        "{}?activated={}",
        link("/console/plugins/", &name),
        form.version.trim()
    );
    let placed = |field: &str| match field {
        "version" => "version",
        f if f.starts_with("guard") => "guard",
        _ => "",
    };
    let sent = Sent {
        activate: form,
        ..Sent::default()
    };
    form_answered(
        &state, &operator, &name, answer, whole_page, &done, placed, sent,
    )
    .await
}

fn error_paragraph(refusals: &Refusals, field: &str) -> Markup {
    html! {
        @if let Some(message) = refusals.get(field) {
            p id={ (field) "-error" } class="error" role="alert" { (message) }
        }
    }
}

fn described_by(refusals: &Refusals, field: &str) -> Option<String> {
    refusals.get(field).map(|_| format!("{field}-error"))
}

fn list_markup(
    chrome: &Chrome,
    plugins: &[Value],
    sent: &UploadFields,
    refusals: &Refusals,
) -> Html<String> {
    let activate = sent.activate || (sent.name.is_empty() && refusals.is_empty());
    pages::page(
        "Plugins",
        Some(chrome),
        "plugins",
        html! {
            h1 { "Plugins" }
            @if plugins.is_empty() {
                p { "No plugins yet." }
            } @else {
                table id="plugins" {
                    caption { "Every plugin and its active version" }
                    thead { tr {
                        th scope="col" { "Plugin" }
                        th scope="col" { "Active version" }
                        th scope="col" class="num" { "Versions" }
                        th scope="col" { "Guard" }
                    } }
                    tbody {
                        @for p in plugins {
                            @let name = p["name"].as_str().unwrap_or("");
                            tr {
                                th scope="row" { a href=(link("/console/plugins/", name)) { (name) } }
                                td { code class="version" { (p["active"].as_str().unwrap_or("none")) } }
                                td class="num" { (p["versions"].as_array().map_or(0, Vec::len)) }
                                td { @if p["guard"].is_object() { "watching " code { (p["guard"]["version"].as_str().unwrap_or("")) } } @else { "none" } }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="upload-heading" {
                h2 id="upload-heading" { "Upload a version" }
                (error_paragraph(refusals, ""))
                form id="upload-form" method="post" action="/console/plugins" enctype="multipart/form-data" class="stack" {
                    (csrf_field(&chrome.csrf))
                    div class="field" {
                        label for="name" { "Plugin name" }
                        input id="name" name="name" type="text" required value=(sent.name)
                            aria-invalid=[refusals.get("name").map(|_| "true")]
                            aria-describedby=[described_by(refusals, "name")];
                        (error_paragraph(refusals, "name"))
                    }
                    div class="field drop" {
                        label for="file" { "Component (.wasm)" }
                        input id="file" name="file" type="file" accept=".wasm,application/wasm" required
                            aria-invalid=[refusals.get("file").map(|_| "true")]
                            aria-describedby=(if refusals.contains_key("file") { "file-hint file-error" } else { "file-hint" });
                        p id="file-hint" class="hint" { "Choose the file, or drop it here." }
                        (error_paragraph(refusals, "file"))
                    }
                    div class="field" {
                        label for="signature" { "Signature (base64; when the host checks signatures)" }
                        input id="signature" name="signature" type="text" autocomplete="off" value=(sent.signature)
                            aria-invalid=[refusals.get("signature").map(|_| "true")]
                            aria-describedby=[described_by(refusals, "signature")];
                        (error_paragraph(refusals, "signature"))
                    }
                    div {
                        input id="activate" name="activate" type="checkbox" value="true" checked[activate];
                        " " label for="activate" { "Activate it once stored" }
                    }
                    div class="upload-progress" hidden {
                        label for="upload-progress" { "Upload" }
                        progress id="upload-progress" max="100" value="0" {}
                        span id="upload-status" role="status" aria-live="polite" {}
                    }
                    button type="submit" { "Upload" }
                }
            }
        },
    )
}

fn short(version: &str) -> &str {
    version.get(..19).unwrap_or(version)
}

/// The plugin's shadow run, as the page found it.
enum Shadow {
    None,
    Run(Value),
    /// It could not be read: why.
    Unreadable(String),
}

/// What the plugin page shows.
struct PluginPage<'a> {
    /// `GET /v1/admin/plugins/{name}`.
    plugin: &'a Value,
    /// `GET /v1/admin/plugins/{name}/shadow`.
    shadow: &'a Shadow,
    notice: Option<&'a str>,
    sent: &'a Sent,
    refusals: &'a Refusals,
}

fn plugin_markup(chrome: &Chrome, page: &PluginPage<'_>) -> Html<String> {
    let PluginPage {
        plugin,
        notice,
        refusals,
        ..
    } = *page;
    let sent = &page.sent.activate;
    let name = plugin["name"].as_str().unwrap_or("");
    let active = plugin["active"].as_str();
    let versions = plugin["versions"].as_array().cloned().unwrap_or_default();
    let active_sequence = versions
        .iter()
        .find(|v| v["active"] == true)
        .and_then(|v| v["sequence"].as_u64());
    let history = plugin["history"].as_array().cloned().unwrap_or_default();
    let action = format!("{}/activate", link("/console/plugins/", name));
    pages::page(
        &format!("Plugin {name}"),
        Some(chrome),
        "plugins",
        html! {
            h1 { "Plugin " (name) }
            @if let Some(notice) = notice { p class="notice" role="status" { (notice) } }
            (error_paragraph(refusals, ""))
            dl class="pairs" {
                dt { "Active version" } dd id="active-version" { code class="version" { (active.unwrap_or("none")) } }
                dt { "Guard" }
                dd id="guard" {
                    @if let Some(guard) = plugin["guard"].as_object() {
                        "watching " code { (guard["version"].as_str().unwrap_or("")) }
                        ": " (guard["observedAttempts"]) " of " (guard["observeJobs"]) " attempts seen, "
                        (guard["observedFailures"]) " failed (at most " (guard["maxFailureRate"]) " may); rolls back to "
                        code { (guard["previous"].as_str().unwrap_or("")) }
                    } @else { "none" }
                }
            }
            h2 { "Versions" }
            table id="versions" {
                caption { "Oldest first" }
                thead { tr {
                    th scope="col" class="num" { "#" }
                    th scope="col" { "Version" }
                    th scope="col" { "Uploaded" }
                    th scope="col" { "By" }
                    th scope="col" class="num" { "Size (bytes)" }
                    th scope="col" { "Signature" }
                    th scope="col" class="num" { "Compiled in" }
                    th scope="col" { "State" }
                } }
                tbody {
                    @for v in &versions {
                        @let version = v["version"].as_str().unwrap_or("");
                        @let older = matches!((v["sequence"].as_u64(), active_sequence), (Some(s), Some(a)) if s < a);
                        tr data-version=(version) {
                            td class="num" { (v["sequence"]) }
                            td { code class="version" title=(version) { (short(version)) "…" } }
                            td { (v["uploadedAt"].as_str().unwrap_or("")) }
                            td { (v["uploadedBy"].as_str().unwrap_or("")) }
                            td class="num" { (v["size"]) }
                            td { (v["signedBy"].as_str().map(|k| format!("signed by {k}")).unwrap_or_else(|| "unsigned".to_owned())) }
                            td class="num" { (v["compileMillis"]) " ms" }
                            td {
                                @if v["active"] == true { strong { "active" } } @else {
                                    form method="post" action=(action) class="inline" {
                                        (csrf_field(&chrome.csrf))
                                        input type="hidden" name="version" value=(version);
                                        button type="submit" class=(if older { "rollback" } else { "activate" })
                                            aria-label={ (if older { "Roll back to version " } else { "Activate version " }) (v["sequence"]) } {
                                            (if older { "Roll back to this" } else { "Activate" })
                                        }
                                    }
                                }
                                @for w in v["warnings"].as_array().into_iter().flatten() {
                                    p class="hint" { (w.as_str().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="guarded-heading" {
                h2 id="guarded-heading" { "Activate with a guard" }
                p { "The host rolls back by itself if the version's first attempts fail beyond the bound." }
                form method="post" action=(action) class="stack" id="guarded-form" {
                    (csrf_field(&chrome.csrf))
                    div class="field" {
                        label for="version" { "Version" }
                        select id="version" name="version"
                            aria-invalid=[refusals.get("version").map(|_| "true")]
                            aria-describedby=[described_by(refusals, "version")] {
                            @for v in versions.iter().rev() {
                                @let version = v["version"].as_str().unwrap_or("");
                                option value=(version) selected[sent.version == version] {
                                    "#" (v["sequence"]) " " (short(version)) "…"
                                }
                            }
                        }
                        (error_paragraph(refusals, "version"))
                    }
                    fieldset aria-describedby=[described_by(refusals, "guard")] {
                        legend { "Guard" }
                        div class="field" {
                            label for="observeJobs" { "Attempts to watch" }
                            input id="observeJobs" name="observeJobs" type="number" min="1" step="1" value=(sent.observe_jobs);
                        }
                        div class="field" {
                            label for="maxFailureRate" { "Largest share failing (0 to 1)" }
                            input id="maxFailureRate" name="maxFailureRate" type="number" min="0" max="1" step="0.01" value=(sent.max_failure_rate);
                        }
                        (error_paragraph(refusals, "guard"))
                    }
                    button type="submit" { "Activate with the guard" }
                }
            }
            h2 { "History" }
            @if history.is_empty() { p { "No switches yet." } } @else {
                table id="history" {
                    caption { "Every switch of the active version" }
                    thead { tr {
                        th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "From" }
                        th scope="col" { "To" } th scope="col" { "By" } th scope="col" { "Why" }
                    } }
                    tbody {
                        @for h in &history {
                            tr {
                                td { (h["at"].as_str().unwrap_or("")) }
                                td class="action" { (h["action"].as_str().unwrap_or("")) }
                                td { code { (h["from"].as_str().map(short).unwrap_or("none")) } }
                                td { code { (h["to"].as_str().map(short).unwrap_or("")) } }
                                td { (h["by"].as_str().unwrap_or("")) }
                                td { (h["reason"].as_str().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            (shadow_markup(chrome, name, &versions, page))
        },
    )
}

/// The shadow run's report (when there is one) and the form that starts
/// one: the inactive versions to choose from and how many jobs.
fn shadow_markup(chrome: &Chrome, name: &str, versions: &[Value], page: &PluginPage<'_>) -> Markup {
    let refusals = page.refusals;
    let sent = &page.sent.shadow;
    let base = link("/console/plugins/", name);
    let inactive: Vec<&Value> = versions
        .iter()
        .rev()
        .filter(|v| v["active"] != true)
        .collect();
    html! {
        section aria-labelledby="shadow-heading" {
            h2 id="shadow-heading" { "Shadow run" }
            p { "A stored version runs beside the active one on the plugin's next jobs. \
                 Its requests are answered with the active version's recorded ERP answers \
                 and compared with the active version's requests; the ERP never sees them." }
            @if let Shadow::Unreadable(why) = page.shadow {
                p class="error" role="alert" { "The shadow run could not be read: " (why) }
            }
            @if let Shadow::Run(run) = page.shadow {
                @let state = run["state"].as_str().unwrap_or("");
                dl class="pairs" id="shadow-summary" {
                    dt { "Version" } dd { code class="version" title=(run["version"].as_str().unwrap_or("")) { (short(run["version"].as_str().unwrap_or(""))) "…" } }
                    dt { "State" } dd id="shadow-state" { (state) }
                    dt { "Compared" }
                    dd id="shadow-compared" {
                        (run["compared"]) " of " (run["jobs"]) " jobs: "
                        (run["identical"]) " the same, " (run["different"]) " different"
                    }
                    dt { "Started" } dd { (run["startedAt"].as_str().unwrap_or("")) " by " (run["startedBy"].as_str().unwrap_or("")) }
                    @if let Some(stopped) = run["stoppedAt"].as_str() { dt { "Stopped" } dd { (stopped) } }
                }
                @if state == "running" {
                    form method="post" action={ (base) "/shadow/stop" } class="inline" id="shadow-stop-form" {
                        (csrf_field(&chrome.csrf))
                        button type="submit" { "Stop the shadow run" }
                    }
                }
                @let results = run["results"].as_array().cloned().unwrap_or_default();
                @if results.is_empty() { p { "No job taken yet." } } @else {
                    table id="shadow-results" {
                        caption { "Each job taken, in the order taken" }
                        thead { tr {
                            th scope="col" { "Job" } th scope="col" class="num" { "Attempt" }
                            th scope="col" { "Active version's outcome" } th scope="col" { "Shadow version's outcome" }
                            th scope="col" { "Requests" }
                        } }
                        tbody {
                            @for r in &results {
                                @let job = r["jobId"].as_str().unwrap_or("");
                                tr data-job=(job) {
                                    th scope="row" { a href=(link("/console/jobs/", job)) { code { (job) } } }
                                    td class="num" { (r["attempt"]) }
                                    td { (r["activeOutcome"].as_str().unwrap_or("")) }
                                    td {
                                        (r["shadowOutcome"].as_str().unwrap_or(r["state"].as_str().unwrap_or("")))
                                        @if let Some(message) = r["shadowMessage"].as_str() { ": " (message) }
                                    }
                                    td class="verdict" {
                                        @match r["identical"].as_bool() {
                                            Some(true) => { "the same" }
                                            Some(false) => { details {
                                                summary { "different" }
                                                (request_differences(r))
                                            } }
                                            None => { "still running" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Shadow::None = page.shadow {
                p id="shadow-none" { "No shadow run yet." }
            }
            @if !inactive.is_empty() {
                form method="post" action={ (base) "/shadow" } class="stack" id="shadow-form" {
                    (csrf_field(&chrome.csrf))
                    (error_paragraph(refusals, "shadow"))
                    div class="field" {
                        label for="shadow-version" { "Version to run in the shadow" }
                        select id="shadow-version" name="version"
                            aria-invalid=[refusals.get("shadow-version").map(|_| "true")]
                            aria-describedby=[described_by(refusals, "shadow-version")] {
                            @for v in &inactive {
                                @let version = v["version"].as_str().unwrap_or("");
                                option value=(version) selected[sent.version == version] {
                                    "#" (v["sequence"]) " " (short(version)) "…"
                                }
                            }
                        }
                        (error_paragraph(refusals, "shadow-version"))
                    }
                    div class="field" {
                        label for="shadow-jobs" { "Jobs to compare (1 to 1,000)" }
                        input id="shadow-jobs" name="jobs" type="number" min="1" max="1000" step="1" required
                            value=(if sent.jobs.is_empty() { "20" } else { &sent.jobs })
                            aria-invalid=[refusals.get("shadow-jobs").map(|_| "true")]
                            aria-describedby=[described_by(refusals, "shadow-jobs")];
                        (error_paragraph(refusals, "shadow-jobs"))
                    }
                    button type="submit" { @if let Shadow::Run(_) = page.shadow { "Start a new shadow run" } @else { "Start the shadow run" } }
                }
            }
        }
    }
}

/// A compared job's requests, side by side, with what differs.
fn request_differences(result: &Value) -> Markup {
    html! {
        ol class="requests" {
            @for q in result["requests"].as_array().into_iter().flatten() {
                li {
                    "active: " code { (q["active"].as_str().unwrap_or("(none)")) }
                    br;
                    "shadow: " code { (q["shadow"].as_str().unwrap_or("(none)")) }
                    @for d in q["differences"].as_array().into_iter().flatten() {
                        pre { (d.as_str().unwrap_or("")) }
                    }
                    @for skipped in q["skipped"].as_array().into_iter().flatten() {
                        p class="hint" { (skipped.as_str().unwrap_or("")) }
                    }
                }
            }
        }
        @for note in result["notes"].as_array().into_iter().flatten() {
            p class="hint" { (note.as_str().unwrap_or("")) }
        }
    }
}
