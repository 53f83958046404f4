//! Run now: a job definition run by hand with its parameters, through
//! `POST /v1/admin/job-definitions/{name}/runs` as the operator (admin and
//! service keys, as the API allows): the definition's newest applicable
//! cancellation of the order is submitted again as a new job.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde_json::{Value, json};

use super::pages::{self, Chrome, csrf_field};
use super::{Operator, api_call, csrf_refused, internal, link, role_refused};
use crate::api::AppState;
use crate::domain::JobDefinition;

/// The API route the form stands for.
const RUN_ROUTE: &str = "/v1/admin/job-definitions/{name}/runs";

/// The prefix of a parameter's form field.
const PARAMETER: &str = "parameter.";

/// `GET /console/jobs/run[?definition=…]`: pick a definition, then its
/// parameters.
pub async fn run_page(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let name = query.get("definition").map(|d| d.trim()).unwrap_or("");
    render(
        &state,
        &operator,
        StatusCode::OK,
        name,
        &HashMap::new(),
        &[],
    )
    .await
}

async fn render(
    state: &AppState,
    operator: &Operator,
    status: StatusCode,
    name: &str,
    sent: &HashMap<String, String>,
    refusals: &[(String, String)],
) -> Response {
    if !operator.may(&Method::POST, RUN_ROUTE) {
        return role_refused(operator, "run job definitions");
    }
    let names = match state.store.job_definition_names().await {
        Ok(names) => names,
        Err(error) => return internal(&error),
    };
    let definition: Option<JobDefinition> = if name.is_empty() {
        None
    } else {
        match state.store.job_definition(name).await {
            Ok(found) => found,
            Err(error) => return internal(&error),
        }
    };
    let chrome = Chrome::of(operator);
    let error_for = |field: &str| {
        let found: Vec<&str> = refusals
            .iter()
            .filter(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
            .collect();
        (!found.is_empty()).then(|| found.join(" "))
    };
    let markup: Html<String> = pages::page(
        "Run a job definition",
        Some(&chrome),
        "jobs",
        html! {
            h1 { "Run a job definition" }
            p { "A run submits the order's newest cancellation again, as a new job." }
            form method="get" action="/console/jobs/run" class="filters" {
                div class="field" {
                    label for="definition" { "Job definition" }
                    select id="definition" name="definition" {
                        option value="" selected[name.is_empty()] { "Choose a definition" }
                        @for n in &names { option value=(n) selected[n == name] { (n) } }
                    }
                }
                button type="submit" { "Choose" }
            }
            @if !name.is_empty() && definition.is_none() {
                p class="error" role="alert" { "There is no job definition " (name) "." }
            }
            @if let Some(definition) = &definition {
                h2 { "Run " (definition.name) }
                @let shown: Vec<String> = definition.parameters.iter().map(|p| format!("parameters.{}", p.name)).collect();
                @let general: Vec<&str> = refusals.iter().filter(|(f, _)| !shown.contains(f)).map(|(_, m)| m.as_str()).collect();
                @if !general.is_empty() { p id="run-error" class="error" role="alert" { (general.join(" ")) } }
                form method="post" action="/console/jobs/run" class="stack" id="run-form" {
                    (csrf_field(&chrome.csrf))
                    input type="hidden" name="definition" value=(definition.name);
                    @for (i, p) in definition.parameters.iter().enumerate() {
                        @let id = format!("parameter-{i}");
                        @let error = error_for(&format!("parameters.{}", p.name));
                        div class="field" {
                            label for=(id) { (if p.prompt.is_empty() { p.name.as_str() } else { p.prompt.as_str() }) " (" code { (p.name) } ")" }
                            input id=(id) name={ (PARAMETER) (p.name) } type="text"
                                value=(sent.get(&p.name).cloned().unwrap_or_else(|| p.default_value.clone()))
                                aria-invalid=[error.as_ref().map(|_| "true")]
                                aria-describedby=[error.as_ref().map(|_| format!("{id}-error"))];
                            @if let Some(error) = error { p id={ (id) "-error" } class="error" { (error) } }
                        }
                    }
                    button type="submit" { "Run now" }
                }
            }
        },
    );
    (status, markup).into_response()
}

/// `POST /console/jobs/run` → `POST /v1/admin/job-definitions/{name}/runs`;
/// to the new job's page.
pub async fn run(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Response {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    if !operator.sent_csrf(get("csrf")) {
        return csrf_refused();
    }
    let name = get("definition").trim().to_owned();
    let parameters: HashMap<String, String> = fields
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(PARAMETER)
                .map(|p| (p.to_owned(), v.trim().to_owned()))
        })
        .collect();
    let path = format!("{}/runs", link("/v1/admin/job-definitions/", &name));
    let answer = api_call(
        &state,
        &operator,
        Method::POST,
        &path,
        Some(json!({ "parameters": parameters })),
    )
    .await;
    if answer.ok() {
        let id = answer.body["id"].as_str().unwrap_or("");
        return Redirect::to(&format!("/console/jobs/{id}?ran=1")).into_response();
    }
    if answer.status == StatusCode::FORBIDDEN {
        return role_refused(&operator, "run job definitions");
    }
    if answer.status.is_server_error() && answer.status != StatusCode::SERVICE_UNAVAILABLE {
        return internal(&format!("a run answered {}", answer.status));
    }
    let refusals: Vec<(String, String)> = match answer.body["errors"].as_array() {
        Some(errors) if !errors.is_empty() => errors
            .iter()
            .map(|e: &Value| {
                (
                    e["field"].as_str().unwrap_or("").to_owned(),
                    e["message"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect(),
        _ => vec![(
            String::new(),
            answer.body["detail"]
                .as_str()
                .unwrap_or("Refused.")
                .to_owned(),
        )],
    };
    render(
        &state,
        &operator,
        answer.status,
        &name,
        &parameters,
        &refusals,
    )
    .await
}
