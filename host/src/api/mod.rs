//! The HTTP API (`docs/api.md`): routes, the one error mapping, extractors and
//! the JSON shapes. Handlers are thin: they map request shapes to domain
//! types, call the store or the service functions and map the answer back;
//! the route table authorises before a handler runs.
//!
//! One module per resource (`orders`, `cancellations`, `jobs`, `admin`,
//! `plugins`) holds its handlers, and its `shapes` submodule the JSON shapes
//! they read and write. Shapes carry no rules: what makes an order valid is
//! the domain's, a connection or a job definition [`crate::config_rules`]'.
//!
//! Shapes are named by direction:
//! - `…Body` is read from a request: a request body or a part of one, and
//!   also a shape an answer echoes as it was sent (a website's settings, a
//!   job definition: what `PUT` takes, `GET` gives back);
//! - `…View` is only ever written in answers;
//! - an enum of values takes the suffix of the shape it belongs to
//!   (`LineKindBody` in `LineBody`).
//!
//! The problem document (`Problem`, `ProblemField`) keeps RFC 9457's name.
//! Some OpenAPI schema names predate this scheme (`JobDefinitionDto`,
//! `AuditView`): those shapes keep their schema name with `#[schema(as)]`,
//! since clients generated from the document know it.

mod admin;
mod auth;
mod cancellations;
mod drain;
mod edge;
mod error;
mod extract;
mod jobs;
mod ops;
mod orders;
mod plugins;
mod routes;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderName;
use axum::response::Response;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Notify;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

pub use admin::ConnectionView;
pub use auth::{Auth, Clock, LAST_USED_INTERVAL};
pub use cancellations::{
    CancellationView, JobDetail, job_detail, request_digest, submit as submit_cancellation,
};
pub use drain::{DRAIN_BYTES, DRAIN_TIME};
pub use edge::URI_LIMIT;
pub use error::{AppError, Problem, ProblemField};
pub use extract::{BODY_LIMIT, Caller};
pub use jobs::{
    AttemptInputView, AttemptView, BodyView, ExchangeView, HeaderView, JobView, LogLineView,
    PruneBody, PruneView, retried_note, retry,
};
pub use ops::{HealthView, ReadinessWarningView, readiness};
pub use orders::find_order;
pub use plugins::{
    MAX_SHADOW_JOBS, SIGNATURE_HEADER, ShadowBody, ShadowRequestView, ShadowResultView,
    ShadowRunView,
};
pub use routes::{
    ADMIN, ANY_ROLE, Access, AuditNote, Authenticated, MAX_AUDIT_SUMMARY_CHARS, RouteInfo, STAFF,
    noted, route_list, routes,
};

// Where they were before the `keys` module held them.
pub use crate::keys::{new_token, token_digest};

use crate::metrics::Metrics;
use crate::plugins::registry::PluginRegistry;
use crate::store::Store;
use edge::Edge;

/// Formats store milliseconds as RFC 3339 (UTC), as every answer shows a
/// time.
pub fn timestamp(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Whether the job workers are running (for `/readyz`).
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    workers: Arc<AtomicBool>,
}

impl Readiness {
    /// Records whether the workers run.
    pub fn set_workers_running(&self, running: bool) {
        self.workers.store(running, Ordering::SeqCst);
    }

    /// Whether the workers run.
    pub fn workers_running(&self) -> bool {
        self.workers.load(Ordering::SeqCst)
    }
}

/// What every handler shares: a handle to [`SharedState`], cloned for every
/// request by each layer and extractor that takes the state, so one
/// reference count rather than one per pool, cache and channel inside.
#[derive(Clone, Debug)]
pub struct AppState(Arc<SharedState>);

/// What the handlers share, reached through [`AppState`].
#[derive(Clone, Debug)]
pub struct SharedState {
    /// Where orders, cancellations, configuration and jobs are kept.
    pub store: Store,
    /// Checks bearer tokens against the admin token and the stored API keys.
    pub auth: Arc<Auth>,
    /// The request, cancellation and job counters `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// Wakes the job workers when jobs were enqueued.
    pub job_wakeup: Arc<Notify>,
    /// Whether the job workers run, which `/readyz` reports.
    pub readiness: Readiness,
    /// The plugin registry (`/v1/admin/plugins`); `None` in a host without
    /// plugins, whose plugin endpoints answer 503.
    pub plugins: Option<PluginRegistry>,
}

impl AppState {
    /// State over a store, with an optional bootstrap admin token.
    pub fn new(store: Store, admin_token: Option<&str>) -> Self {
        AppState(Arc::new(SharedState {
            store,
            auth: Arc::new(Auth::new(admin_token)),
            metrics: Arc::new(Metrics::new()),
            job_wakeup: Arc::new(Notify::new()),
            readiness: Readiness::default(),
            plugins: None,
        }))
    }

    /// The same state with the plugin registry's endpoints served.
    pub fn with_plugins(mut self, plugins: PluginRegistry) -> Self {
        Arc::make_mut(&mut self.0).plugins = Some(plugins);
        self
    }

    /// The same state authenticating with `auth`.
    pub fn with_auth(mut self, auth: Arc<Auth>) -> Self {
        Arc::make_mut(&mut self.0).auth = auth;
        self
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The OpenAPI document of the API.
#[derive(OpenApi)]
#[openapi(
    info(title = "rescind", description = "The HTTP API of rescind, an order-cancellation host. Its reference, with every route, field and error code and examples, is `docs/api.md` in rescind's repository; this document is its machine-readable twin.

Every error is `application/problem+json` (RFC 9457) with `type`, `title`, `status`, `detail` and a stable `code`.

A committed cancellation (`201`) may carry `warnings`, each with a stable `code`:
- `not-refunded`: captured money of the cancelled share stays captured (`forcedCancel` without `forcedCancelWithRefund`).
- `refund-not-needed`: a refund was asked for, but the cancelled amount was all voided from open authorizations.
- `not-communicated-to-erp`: no ERP will hear of this cancellation: no job definition is enabled, or none of the enabled ones applies to it (`erpSync.state` is `not-configured`).
- `partial-not-communicated-to-erp`: this partial cancellation (`full: false`) reached no ERP because every enabled job definition has `appliesTo: \"full\"` (their ERPs cancel whole orders only); they hear of the order when a cancellation ends it (`erpSync.state` is `not-configured`)."),
    paths(
        orders::put_order, orders::get_order, orders::report_status,
        cancellations::create_cancellation, cancellations::get_cancellation,
        admin::create_api_key, admin::list_api_keys, admin::revoke_api_key, admin::audit::list_audit,
        admin::get_status_mappings, admin::put_status_mappings,
        admin::get_settings, admin::put_settings, admin::apply_preset,
        admin::get_website, admin::put_website, admin::get_connection, admin::put_connection,
        admin::get_job_definition, admin::put_job_definition,
        jobs::run_definition, jobs::list_jobs, jobs::get_job, jobs::get_attempt_input,
        jobs::retry_job, jobs::prune_jobs,
        plugins::put_plugin, plugins::list_plugins, plugins::get_plugin, plugins::activate_plugin,
        plugins::start_shadow, plugins::get_shadow, plugins::stop_shadow,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    modifiers(&BearerAuth, &RouteRoles, &RefusalsDocumented),
)]
pub struct ApiDoc;

/// Writes each route's roles, from the route table, into its operation:
/// a sentence of its description and `x-rescind-roles`.
struct RouteRoles;

impl utoipa::Modify for RouteRoles {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use axum::http::Method;
        for route in route_list() {
            let Access::Roles(roles) = route.access else {
                continue;
            };
            let Some(item) = openapi.paths.paths.get_mut(route.path) else {
                continue;
            };
            let operation = match route.method {
                Method::GET => item.get.as_mut(),
                Method::PUT => item.put.as_mut(),
                Method::POST => item.post.as_mut(),
                Method::DELETE => item.delete.as_mut(),
                _ => None,
            };
            let Some(operation) = operation else {
                continue;
            };
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            let sentence = format!(
                "Roles: {}. The role is checked before the body is read.",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            operation.description = Some(match operation.description.take() {
                Some(text) if !text.is_empty() => format!("{text}\n\n{sentence}"),
                _ => sentence,
            });
            operation
                .extensions
                .get_or_insert_with(Default::default)
                .insert("x-rescind-roles".to_owned(), serde_json::json!(names));
        }
    }
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every operation that needs a bearer token may be refused before its
/// handler runs (`401` without a valid token, `403` for the wrong role, and
/// the other refusals of the middleware): its document says so, with the
/// problem shape, even where the operation lists no refusal of its own.
struct RefusalsDocumented;

impl utoipa::Modify for RefusalsDocumented {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let refused = ResponseBuilder::new()
            .description("Refused")
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let responses = &mut operation.responses.responses;
                if secured && !responses.contains_key("4XX") {
                    responses.insert("4XX".to_owned(), RefOr::T(refused.clone()));
                }
            }
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API with its middleware: request ids, structured request
/// logs, metrics, the body limit and problem+json for unknown routes.
pub fn router(state: AppState) -> Router {
    with_middleware(routes(), state)
}

/// Adds the fallbacks and middleware to a router (also used by the demo,
/// which merges its own routes first).
///
/// The middleware is one stack added with one `layer` call: axum puts each
/// layer added on its own around every route as one more boxed service,
/// cloned for every request.
pub fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    let make_span = |request: &Request| {
        // Never the headers: they carry the bearer token.
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = %request_id,
        )
    };
    let middleware = tower::ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(TraceLayer::new_for_http().make_span_with(make_span))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(Edge::new(Arc::clone(&state.metrics)));
    routes
        .fallback(|| async { AppError::RouteNotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(middleware)
        .with_state(state)
}

/// Hands a request to the API's routes as `caller`, whom the host has
/// authenticated by itself (the console's operator): the route table
/// checks the caller's role, the handler validates and does the work, and
/// an admin write goes into the audit log under the caller's name, exactly
/// as for the same request over HTTP with the caller's token. Answers what
/// the API answers (a problem document when refused).
pub async fn dispatch(state: &AppState, caller: Caller, mut request: Request) -> Response {
    use tower::ServiceExt;
    request.extensions_mut().insert(Authenticated(caller));
    let router = routes()
        .fallback(|| async { AppError::RouteNotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state.clone());
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests;
