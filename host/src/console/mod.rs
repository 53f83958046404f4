//! The operator console at `/console`: HTML pages rendered here, a small
//! stylesheet and script embedded in the binary, nothing fetched from
//! elsewhere. It is an edge beside the HTTP API and calls the same
//! functions the API's handlers call (the store, the plugin registry, the
//! key check, the route table's roles); it is not part of the OpenAPI
//! document.
//!
//! Sign-in exchanges an admin or service key for a session cookie
//! ([`session`]); every form carries the session's CSRF token and every
//! `POST` checks it.

mod config;
mod orders;
mod pages;
mod plugins;
mod run;
pub mod session;
pub mod throttle;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use crate::api::{AppState, Caller, JobView, RouteInfo, STAFF};
use crate::keys::token_digest;
use crate::store::{AdminWrite, AuditActor, JobFilter, JobState, RetryError, Role, now_ms};
use session::{SESSION_COOKIE, SIGN_IN_COOKIE, Sessions, cookie, over_tls, same_token, set_cookie};

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// How many jobs the jobs page lists.
const JOBS_LISTED: u32 = 100;
/// Most job states one poll of `/console/job-states` answers.
const MAX_POLLED_JOBS: usize = 200;

/// Adds the console under `/console` to the API's routes (`/console/`
/// leads to `/console`).
pub fn mount(api: Router<AppState>) -> Router<AppState> {
    api.nest("/console", routes()).route(
        "/console/",
        get(|| async { Redirect::permanent("/console") }),
    )
}

/// The console's routes, to be nested at `/console`. The sessions live in
/// this router (one set per process).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/jobs", get(jobs_page))
        .route("/jobs/run", get(run::run_page).post(run::run))
        .route("/jobs/{id}", get(job_page))
        .route("/jobs/{id}/retry", post(retry_job))
        .route("/job-states", get(job_states))
        .route("/orders", get(orders::find))
        .route("/orders/{number}", get(orders::order_page))
        .route("/orders/{number}/cancel", post(orders::cancel))
        .route(
            "/plugins",
            get(plugins::list).post(plugins::upload).layer(
                // The upload reads its file up to the registry's own limit.
                axum::extract::DefaultBodyLimit::disable(),
            ),
        )
        .route("/plugins/{name}", get(plugins::plugin_page))
        .route("/plugins/{name}/activate", post(plugins::activate))
        .route("/plugins/{name}/shadow", post(plugins::start_shadow))
        .route("/plugins/{name}/shadow/stop", post(plugins::stop_shadow))
        .route("/config", get(config::settings_page))
        .route("/config/preset", post(config::apply_preset))
        .route("/config/settings", post(config::put_settings))
        .route("/config/status-mappings", post(config::put_mappings))
        .route("/config/websites", post(config::put_website))
        .route(
            "/config/connections",
            get(config::connections_page).post(config::put_connection),
        )
        .route(
            "/config/job-definitions",
            get(config::definitions_page).post(config::put_definition),
        )
        .route(
            "/config/api-keys",
            get(config::keys_page).post(config::create_key),
        )
        .route("/config/api-keys/{id}/revoke", post(config::revoke_key))
        .route("/config/audit", get(config::audit_page))
        .route("/assets/console.css", get(stylesheet))
        .route("/assets/console.js", get(script))
        .layer(Extension(Arc::new(Sessions::default())))
        .layer(Extension(Arc::new(throttle::SignInThrottle::default())))
        .layer(middleware::from_fn(page_headers))
}

/// Every answer of the console: not cached, not framed, only its own
/// script and stylesheet.
async fn page_headers(request: axum::extract::Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// A signed-in operator: a live session whose key still admits it (checked
/// on every request, as the API checks a token).
#[derive(Debug, Clone)]
pub struct Operator {
    session_id: String,
    csrf: String,
    role: Role,
    actor: AuditActor,
    /// The key's caller, as the API's handlers take it.
    caller: Caller,
}

/// Why a request has no operator: a page sends the browser to sign in, the
/// state poll answers 401.
#[derive(Debug)]
pub struct SignedOut {
    wants_json: bool,
}

impl IntoResponse for SignedOut {
    fn into_response(self) -> Response {
        if self.wants_json {
            (
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({"signedIn": false})),
            )
                .into_response()
        } else {
            Redirect::to("/console/sign-in").into_response()
        }
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let signed_out = SignedOut {
            wants_json: parts.uri.path().ends_with("/job-states"),
        };
        let Some(sessions) = parts.extensions.get::<Arc<Sessions>>().cloned() else {
            return Err(pages::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The console runs without its sessions.",
            ));
        };
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
            return Err(signed_out.into_response());
        };
        let Some(session) = sessions.touch(&id) else {
            return Err(signed_out.into_response());
        };
        let caller = match state
            .auth
            .authenticate_digest(&state.store, &session.key_digest)
            .await
        {
            Ok(Some(caller)) if STAFF.admits(caller.role) => caller,
            Ok(_) => {
                // Revoked, expired, or no longer a staff key.
                sessions.end(&id);
                return Err(signed_out.into_response());
            }
            Err(error) => return Err(internal(&error)),
        };
        Ok(Operator {
            session_id: id,
            csrf: session.csrf,
            role: caller.role,
            actor: caller.audit_actor.clone(),
            caller,
        })
    }
}

impl Operator {
    /// Whether a form carries this session's CSRF token.
    fn sent_csrf(&self, sent: &str) -> bool {
        same_token(sent, &self.csrf)
    }

    /// Who is signed in, for the page header.
    fn who(&self) -> String {
        format!("{} ({})", self.actor, self.role.as_str())
    }

    /// Whether the API's route table lets this operator's role use
    /// `method path` (a path template as the table writes it): the console
    /// shows and does only what its role may do through the API.
    fn may(&self, method: &axum::http::Method, path: &str) -> bool {
        api_routes()
            .iter()
            .find(|r| r.method == *method && r.path == path)
            .is_some_and(|r| r.access.admits(self.role))
    }
}

/// What the API answered a request the console made for its operator
/// ([`api_call`]): the status and the JSON body, a problem document when
/// refused.
#[derive(Debug)]
pub struct ApiAnswer {
    status: StatusCode,
    body: serde_json::Value,
}

impl ApiAnswer {
    fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The problem's messages by the field each names (`errors[].field`);
    /// a refusal naming no field is under `""`, with its `detail`.
    fn refusals(&self) -> std::collections::BTreeMap<String, String> {
        let mut by_field = std::collections::BTreeMap::<String, String>::new();
        let mut add = |field: &str, message: &str| {
            let entry = by_field.entry(field.to_owned()).or_default();
            if !entry.is_empty() {
                entry.push(' ');
            }
            entry.push_str(message);
        };
        match self.body["errors"].as_array() {
            Some(errors) if !errors.is_empty() => {
                for e in errors {
                    let field = e["field"].as_str().unwrap_or("");
                    let message = e["message"].as_str().unwrap_or("");
                    add(field, &format!("{field}: {message}"));
                }
            }
            _ => add(
                "",
                self.body["detail"]
                    .as_str()
                    .unwrap_or("The API refused this without saying why."),
            ),
        }
        by_field
    }
}

/// Hands a request to the API's routes as the signed-in operator
/// ([`crate::api::dispatch`]): the API's role check, validation, work and
/// audit log, exactly as for the operator's key over HTTP.
async fn api_request(
    state: &AppState,
    operator: &Operator,
    request: axum::extract::Request,
) -> ApiAnswer {
    let response = crate::api::dispatch(state, operator.caller.clone(), request).await;
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let body = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)
    };
    ApiAnswer { status, body }
}

/// [`api_request`] with a JSON body (or none).
async fn api_call(
    state: &AppState,
    operator: &Operator,
    method: axum::http::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> ApiAnswer {
    let mut request = axum::http::Request::builder().method(method).uri(path);
    let body = match body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            axum::body::Body::from(serde_json::to_vec(&json).unwrap_or_default())
        }
        None => axum::body::Body::empty(),
    };
    match request.body(body) {
        Ok(request) => api_request(state, operator, request).await,
        Err(error) => ApiAnswer {
            status: StatusCode::BAD_REQUEST,
            body: serde_json::json!({"detail": format!("not a request: {error}")}),
        },
    }
}

/// A number as typed, or the text itself (which the API then refuses as
/// malformed, saying what it expected).
fn number(text: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Number>(text.trim())
        .map(serde_json::Value::Number)
        .unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

/// The API's route table, read once.
fn api_routes() -> &'static [RouteInfo] {
    static ROUTES: std::sync::OnceLock<Vec<RouteInfo>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(crate::api::route_list)
}

/// The refusal of a page or form the operator's role may not use, as the
/// API refuses its route.
fn role_refused(operator: &Operator, what: &str) -> Response {
    pages::error_page(
        StatusCode::FORBIDDEN,
        &format!(
            "A {} key may not {what}. Sign in with a key whose role may.",
            operator.role.as_str()
        ),
    )
}

/// Where an order, plugin or definition named `name` is: `prefix` and the
/// name percent-encoded as one path segment.
fn link(prefix: &str, name: &str) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'/')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}')
        .add(b'\\')
        .add(b'^')
        .add(b'|');
    format!("{prefix}{}", utf8_percent_encode(name, SEGMENT))
}

/// The refusal of a form without its session's CSRF token.
fn csrf_refused() -> Response {
    pages::error_page(
        StatusCode::FORBIDDEN,
        "This form's security token is missing or out of date, so nothing was done. Reload \
         the page and try again.",
    )
}

fn internal(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "the console could not answer");
    pages::error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The console could not read what it needs just now. Try again; the host's log has \
         the details.",
    )
}

/// A form with only the CSRF token.
#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_in_page(uri: Uri, headers: HeaderMap) -> Response {
    sign_in_form(StatusCode::OK, None, &uri, &headers)
}

/// The sign-in form with a fresh double-submit token (set as a cookie and
/// in the form), and the refusal next to the key's field when there is one.
fn sign_in_form(
    status: StatusCode,
    error: Option<&str>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    let token = session::random_token();
    let mut response = (status, pages::sign_in(&token, error)).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SIGN_IN_COOKIE,
            &token,
            "/console/sign-in",
            Some(3600),
            over_tls(uri, headers),
        ),
    );
    response
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    csrf: String,
}

/// The TCP peer's address, when the server records it (`rescind serve`
/// does); `None` otherwise.
pub struct ClientAddress(Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

async fn sign_in(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    Extension(throttle): Extension<Arc<throttle::SignInThrottle>>,
    ClientAddress(address): ClientAddress,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or("");
    if expected.is_empty() || !same_token(&form.csrf, expected) {
        return pages::error_page(
            StatusCode::FORBIDDEN,
            "This sign-in form's security token is missing or out of date, so nothing was \
             done. Reload the sign-in page and try again.",
        );
    }
    if let Err(seconds) = throttle.check(address) {
        let mut response = sign_in_form(
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Too many failed sign-ins from your address: try again in {} (no key is \
                 checked until then).",
                humantime::format_duration(std::time::Duration::from_secs(seconds))
            )),
            &uri,
            &headers,
        );
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let key = form.key.trim();
    if key.is_empty() {
        return sign_in_form(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Enter an API key."),
            &uri,
            &headers,
        );
    }
    let digest = token_digest(key);
    let caller = match state.auth.authenticate_digest(&state.store, &digest).await {
        Ok(caller) => caller,
        Err(error) => return internal(&error),
    };
    let Some(caller) = caller else {
        throttle.failed(address);
        return sign_in_form(
            StatusCode::UNAUTHORIZED,
            Some("This key is not known, or it was revoked or has expired."),
            &uri,
            &headers,
        );
    };
    if !STAFF.admits(caller.role) {
        return sign_in_form(
            StatusCode::FORBIDDEN,
            Some(&format!(
                "A {} key cannot sign in to the console. Sign in with an admin or service key.",
                caller.role.as_str()
            )),
            &uri,
            &headers,
        );
    }
    let id = sessions.create(digest);
    let secure = over_tls(&uri, &headers);
    let mut response = Redirect::to("/console").into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, "/console", None, secure),
    );
    cookies.append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, "", "/console/sign-in", Some(0), secure),
    );
    response
}

async fn sign_out(
    operator: Operator,
    Extension(sessions): Extension<Arc<Sessions>>,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !operator.sent_csrf(&form.csrf) {
        return csrf_refused();
    }
    sessions.end(&operator.session_id);
    let mut response = Redirect::to("/console/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            "",
            "/console",
            Some(0),
            over_tls(&uri, &headers),
        ),
    );
    response
}

/// What the overview shows, read the way `/readyz`, `/metrics` and
/// `/v1/admin/plugins` read it.
async fn overview(State(state): State<AppState>, operator: Operator) -> Response {
    let (_, health) = crate::api::readiness(&state).await;
    let counts = match state.store.job_counts().await {
        Ok(counts) => counts,
        Err(error) => return internal(&error),
    };
    let hour_ago = now_ms().saturating_sub(60 * 60 * 1000);
    let failed_last_hour = match state.store.jobs_failed_since(hour_ago).await {
        Ok(n) => n,
        Err(error) => return internal(&error),
    };
    let plugins = state
        .plugins
        .as_ref()
        .map(|registry| registry.list())
        .unwrap_or_default();
    pages::overview(
        &pages::Chrome::of(&operator),
        &health,
        &counts,
        failed_last_hour,
        &plugins,
    )
    .into_response()
}

/// A `datetime-local` field's value (`YYYY-MM-DDTHH:MM`, seconds
/// optional), read as UTC: Unix ms.
fn utc_ms(text: &str) -> Option<i64> {
    use time::macros::format_description;
    let text = text.trim();
    let parsed = time::PrimitiveDateTime::parse(
        text,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    )
    .or_else(|_| {
        time::PrimitiveDateTime::parse(
            text,
            format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        )
    })
    .ok()?;
    i64::try_from(parsed.assume_utc().unix_timestamp_nanos() / 1_000_000).ok()
}

async fn jobs_page(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let chrome = pages::Chrome::of(&operator);
    let field = |name: &str| query.get(name).map(|v| v.trim()).unwrap_or("").to_owned();
    let shown = pages::JobsQuery {
        state: field("state"),
        definition: field("definition"),
        from: field("from"),
        until: field("until"),
    };
    let mut errors: Vec<(&'static str, String)> = Vec::new();
    let mut filter = JobFilter {
        limit: JOBS_LISTED,
        definition: Some(shown.definition.clone()).filter(|d| !d.is_empty()),
        ..JobFilter::default()
    };
    if !shown.state.is_empty() {
        match JobState::parse(&shown.state) {
            Some(s) => filter.state = Some(s),
            None => errors.push(("state", "Pick a state from the list.".to_owned())),
        }
    }
    for (name, value, slot) in [
        ("from", &shown.from, &mut filter.created_from_ms),
        ("until", &shown.until, &mut filter.created_until_ms),
    ] {
        if value.is_empty() {
            continue;
        }
        match utc_ms(value) {
            Some(ms) => *slot = Some(ms),
            None => errors.push((
                name,
                format!("{value:?} is not a date and time: use YYYY-MM-DDTHH:MM (UTC)."),
            )),
        }
    }
    if !errors.is_empty() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::jobs(&chrome, &[], &shown, &errors),
        )
            .into_response();
    }
    match state.store.jobs(&filter).await {
        Ok(jobs) => {
            let views: Vec<JobView> = jobs.iter().map(|j| JobView::new(j, None)).collect();
            pages::jobs(&chrome, &views, &shown, &[]).into_response()
        }
        Err(error) => internal(&error),
    }
}

async fn job_page(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let job = match state.store.job(&id).await {
        Ok(Some(job)) => job,
        Ok(None) => {
            return pages::error_page(StatusCode::NOT_FOUND, &format!("There is no job {id}."));
        }
        Err(error) => return internal(&error),
    };
    let attempts = match state.store.job_attempts(&id).await {
        Ok(attempts) => attempts,
        Err(error) => return internal(&error),
    };
    let durations: Vec<Option<i64>> = attempts
        .iter()
        .map(|a| a.ended_at_ms.map(|end| end.saturating_sub(a.started_at_ms)))
        .collect();
    let view = JobView::new(&job, Some(&attempts));
    let notice = if query.get("retried").is_some_and(|v| v == "1") {
        Some("The job is queued again.")
    } else if query.get("ran").is_some_and(|v| v == "1") {
        Some("The run is queued as this job.")
    } else {
        None
    };
    pages::job(
        &pages::Chrome::of(&operator),
        &view,
        &durations,
        notice,
        None,
    )
    .into_response()
}

/// The Retry button: the store call of `POST /v1/admin/jobs/{id}/retry`,
/// recorded in the audit log as that route records it.
async fn retry_job(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !operator.sent_csrf(&form.csrf) {
        return csrf_refused();
    }
    match crate::api::retry(&state, &id).await {
        Ok(job) => {
            let write = AdminWrite {
                actor: operator.actor.clone(),
                method: "POST".to_owned(),
                path: format!("/console/jobs/{id}/retry"),
                status: StatusCode::SEE_OTHER.as_u16(),
                summary: crate::api::retried_note(&job),
                request_id: None,
            };
            if let Err(error) = state.store.append_audit(&write).await {
                tracing::error!(%error, ?write, "a console retry could not be recorded in the audit log");
            }
            Redirect::to(&format!("/console/jobs/{id}?retried=1")).into_response()
        }
        Err(RetryError::NotFound(_)) => {
            pages::error_page(StatusCode::NOT_FOUND, &format!("There is no job {id}."))
        }
        Err(refusal @ RetryError::NotFailed(_)) => {
            // The page again, with the refusal next to the button.
            let (job, attempts) = match (
                state.store.job(&id).await,
                state.store.job_attempts(&id).await,
            ) {
                (Ok(Some(job)), Ok(attempts)) => (job, attempts),
                (Err(error), _) | (_, Err(error)) => return internal(&error),
                (Ok(None), _) => {
                    return pages::error_page(
                        StatusCode::NOT_FOUND,
                        &format!("There is no job {id}."),
                    );
                }
            };
            let durations: Vec<Option<i64>> = attempts
                .iter()
                .map(|a| a.ended_at_ms.map(|end| end.saturating_sub(a.started_at_ms)))
                .collect();
            let message = format!("Not retried: the {refusal}.");
            (
                StatusCode::CONFLICT,
                pages::job(
                    &pages::Chrome::of(&operator),
                    &JobView::new(&job, Some(&attempts)),
                    &durations,
                    None,
                    Some(&message),
                ),
            )
                .into_response()
        }
        Err(error) => internal(&error),
    }
}

/// The states of the jobs a page shows (`?ids=a,b,…`), which its script
/// polls: `{"jobs": [{"id", "state", "attempts"}]}`; unknown ids are left
/// out.
async fn job_states(
    State(state): State<AppState>,
    _operator: Operator,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ids: Vec<&str> = query
        .get("ids")
        .map(|ids| {
            ids.split(',')
                .filter(|id| !id.is_empty())
                .take(MAX_POLLED_JOBS)
                .collect()
        })
        .unwrap_or_default();
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        match state.store.job(id).await {
            Ok(Some(job)) => jobs.push(serde_json::json!({
                "id": job.id,
                "state": job.state.as_str(),
                "attempts": job.attempts,
            })),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "the console cannot read a job's state");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(serde_json::json!({"error": "the store did not answer"})),
                )
                    .into_response();
            }
        }
    }
    Json(serde_json::json!({ "jobs": jobs })).into_response()
}
