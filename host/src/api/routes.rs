//! The route table: every route of the API with who may call it. The
//! router is built from [`table`], and each route gets a guard that
//! authenticates the caller and checks its role **before** the handler
//! runs, so before any body is read or parsed: a key whose role may not use
//! a route gets `403 forbidden` whatever it sends, and learns nothing of the
//! route's schema. Handlers still decide what depends on the resource (a
//! customer's own orders).
//!
//! The same guard appends every successful admin write (a route under
//! `/v1/admin/` other than `GET`) to the audit log, with the summary the
//! handler attached to its answer ([`noted`]).
//!
//! [`route_list`] exposes the table, so that the authorization tests and the
//! OpenAPI document can be checked against the routes the router really has.

use std::pin::Pin;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};

use super::admin::{self, audit};
use super::error::AppError;
use super::extract::Caller;
use super::{AppState, REQUEST_ID, cancellations, jobs, ops, orders, plugins};
use crate::store::{AdminWrite, Role};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (the operations endpoints).
    Public,
    /// A caller with one of these roles.
    Roles(&'static [Role]),
}

impl Access {
    /// Whether a caller with `role` may call the route.
    pub fn admits(self, role: Role) -> bool {
        match self {
            Access::Public => true,
            Access::Roles(roles) => roles.contains(&role),
        }
    }
}

/// Operators only.
pub const ADMIN: Access = Access::Roles(&[Role::Admin]);
/// Operators and customer service (`service` keys).
pub const STAFF: Access = Access::Roles(&[Role::Admin, Role::Service]);
/// Every role; customers only for their own resources (the handler checks).
pub const ANY_ROLE: Access = Access::Roles(&[Role::Admin, Role::Service, Role::Customer]);

/// One route: method, path template (`{name}` for parameters) and access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The HTTP method the route answers (`GET`, `PUT`, `POST`, `DELETE`).
    pub method: Method,
    /// The path template, as the router and the OpenAPI document write it.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

impl RouteInfo {
    /// Whether a successful call is an admin write recorded in the audit
    /// log: every route under `/v1/admin/` but the reads.
    pub fn audited(&self) -> bool {
        self.path.starts_with("/v1/admin/") && self.method != Method::GET
    }
}

/// A route of the table with its handler.
struct Route {
    info: RouteInfo,
    handler: MethodRouter<AppState>,
}

fn route<H, T>(method: Method, path: &'static str, access: Access, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone())
        .unwrap_or_else(|_| panic!("the route table names a standard method, not {method}"));
    let info = RouteInfo {
        method,
        path,
        access,
    };
    let handler = if access == Access::Public {
        on(filter, handler)
    } else {
        on(
            filter,
            Guarded {
                info: Arc::new(info.clone()),
                handler,
            },
        )
    };
    Route { info, handler }
}

/// Every route of the API.
fn table() -> Vec<Route> {
    use Access::Public;
    let (get, put, post, delete) = (Method::GET, Method::PUT, Method::POST, Method::DELETE);
    vec![
        route(
            put.clone(),
            "/v1/orders/{orderNumber}",
            STAFF,
            orders::put_order,
        ),
        route(
            get.clone(),
            "/v1/orders/{orderNumber}",
            STAFF,
            orders::get_order,
        ),
        route(
            post.clone(),
            "/v1/orders/{orderNumber}/status",
            STAFF,
            orders::report_status,
        ),
        route(
            post.clone(),
            "/v1/orders/{orderNumber}/cancellations",
            ANY_ROLE,
            cancellations::create_cancellation,
        ),
        route(
            get.clone(),
            "/v1/cancellations/{internalRequestId}",
            ANY_ROLE,
            cancellations::get_cancellation,
        ),
        route(
            post.clone(),
            "/v1/admin/api-keys",
            ADMIN,
            admin::create_api_key,
        ),
        route(
            get.clone(),
            "/v1/admin/api-keys",
            ADMIN,
            admin::list_api_keys,
        ),
        route(
            delete.clone(),
            "/v1/admin/api-keys/{id}",
            ADMIN,
            admin::revoke_api_key,
        ),
        route(get.clone(), "/v1/admin/audit", ADMIN, audit::list_audit),
        route(
            get.clone(),
            "/v1/admin/status-mappings",
            ADMIN,
            admin::get_status_mappings,
        ),
        route(
            put.clone(),
            "/v1/admin/status-mappings",
            ADMIN,
            admin::put_status_mappings,
        ),
        route(
            get.clone(),
            "/v1/admin/settings",
            ADMIN,
            admin::get_settings,
        ),
        route(
            put.clone(),
            "/v1/admin/settings",
            ADMIN,
            admin::put_settings,
        ),
        route(
            post.clone(),
            "/v1/admin/presets/{preset}",
            ADMIN,
            admin::apply_preset,
        ),
        route(
            get.clone(),
            "/v1/admin/websites/{website}",
            ADMIN,
            admin::get_website,
        ),
        route(
            put.clone(),
            "/v1/admin/websites/{website}",
            ADMIN,
            admin::put_website,
        ),
        route(
            get.clone(),
            "/v1/admin/connections/{name}",
            ADMIN,
            admin::get_connection,
        ),
        route(
            put.clone(),
            "/v1/admin/connections/{name}",
            ADMIN,
            admin::put_connection,
        ),
        route(
            get.clone(),
            "/v1/admin/job-definitions/{name}",
            ADMIN,
            admin::get_job_definition,
        ),
        route(
            put.clone(),
            "/v1/admin/job-definitions/{name}",
            ADMIN,
            admin::put_job_definition,
        ),
        route(
            post.clone(),
            "/v1/admin/job-definitions/{name}/runs",
            STAFF,
            jobs::run_definition,
        ),
        route(get.clone(), "/v1/admin/jobs", STAFF, jobs::list_jobs),
        route(get.clone(), "/v1/admin/jobs/{id}", STAFF, jobs::get_job),
        route(
            post.clone(),
            "/v1/admin/jobs/prune",
            ADMIN,
            jobs::prune_jobs,
        ),
        route(
            get.clone(),
            "/v1/admin/jobs/{id}/attempts/{number}/input",
            ADMIN,
            jobs::get_attempt_input,
        ),
        route(
            post.clone(),
            "/v1/admin/jobs/{id}/retry",
            STAFF,
            jobs::retry_job,
        ),
        route(
            get.clone(),
            "/v1/admin/plugins",
            ADMIN,
            plugins::list_plugins,
        ),
        {
            // The handler reads the body with the registry's own limit.
            let mut upload = route(put, "/v1/admin/plugins/{name}", ADMIN, plugins::put_plugin);
            upload.handler = upload.handler.layer(DefaultBodyLimit::disable());
            upload
        },
        route(
            get.clone(),
            "/v1/admin/plugins/{name}",
            ADMIN,
            plugins::get_plugin,
        ),
        route(
            post.clone(),
            "/v1/admin/plugins/{name}/activate",
            ADMIN,
            plugins::activate_plugin,
        ),
        route(
            post,
            "/v1/admin/plugins/{name}/shadow",
            ADMIN,
            plugins::start_shadow,
        ),
        route(
            get.clone(),
            "/v1/admin/plugins/{name}/shadow",
            ADMIN,
            plugins::get_shadow,
        ),
        route(
            delete,
            "/v1/admin/plugins/{name}/shadow",
            ADMIN,
            plugins::stop_shadow,
        ),
        route(get.clone(), "/healthz", Public, ops::healthz),
        route(get.clone(), "/readyz", Public, ops::readyz),
        route(get.clone(), "/metrics", Public, ops::metrics),
        route(get, "/openapi.json", Public, ops::openapi),
    ]
}

/// Every route of the API with who may call it, in the table's order.
pub fn route_list() -> Vec<RouteInfo> {
    table().into_iter().map(|r| r.info).collect()
}

/// The API's routes, each behind its guard, without the service-wide
/// middleware (see [`super::with_middleware`]).
pub fn routes() -> axum::Router<AppState> {
    let mut router = axum::Router::new();
    for Route { info, handler } in table() {
        // Routes of one path with other methods merge into one.
        router = router.route(info.path, handler);
    }
    router
}

/// A handler behind the route guard ([`guard`]). The guard is part of the
/// handler rather than a layer of the route, so that a request to a guarded
/// route costs no service of its own, cloned for it.
#[derive(Clone)]
struct Guarded<H> {
    info: Arc<RouteInfo>,
    handler: H,
}

impl<H, T: 'static> Handler<T, AppState> for Guarded<H>
where
    H: Handler<T, AppState>,
{
    type Future = Pin<Box<dyn Future<Output = Response> + Send>>;

    fn call(self, request: Request, state: AppState) -> Self::Future {
        Box::pin(guard(self.info, self.handler, request, state))
    }
}

/// A caller the host authenticated by itself for a request it hands to
/// the routes ([`super::dispatch`]): the console's signed-in operator,
/// whose key it checked on this very request. The route guard takes it
/// instead of a bearer token and still checks its role. Only the host can
/// attach it: a request's extensions never come from the wire.
#[derive(Debug, Clone)]
pub struct Authenticated(pub(crate) Caller);

/// What an admin write changed, in a few words, for the audit log: attached
/// to the handler's answer with [`noted`]. It must never hold a secret.
#[derive(Debug, Clone)]
pub struct AuditNote(pub String);

/// The handler's answer with its audit note.
pub fn noted(note: impl Into<String>, answer: impl IntoResponse) -> Response {
    (Extension(AuditNote(note.into())), answer).into_response()
}

/// The longest audit summary kept, in characters (names in paths are
/// bounded by the URI limit, but a summary lists several).
pub const MAX_AUDIT_SUMMARY_CHARS: usize = 1000;

/// Authenticates the caller and checks its role before the handler (and so
/// before the body is read); after a successful admin write, appends it to
/// the audit log.
async fn guard<H, T>(
    info: Arc<RouteInfo>,
    handler: H,
    request: Request,
    state: AppState,
) -> Response
where
    H: Handler<T, AppState>,
{
    let (mut parts, body) = request.into_parts();
    let caller = match parts.extensions.remove::<Authenticated>() {
        Some(Authenticated(caller)) => caller,
        None => match Caller::authenticate(&parts, &state).await {
            Ok(caller) => caller,
            Err(refusal) => return refusal.into_response(),
        },
    };
    if !info.access.admits(caller.role) {
        return AppError::Forbidden(format!(
            "the {} role may not use {} {}",
            caller.role.as_str(),
            info.method,
            info.path
        ))
        .into_response();
    }
    // What the audit log records of an admin write, taken before the
    // handler has the request.
    let audit = info.audited().then(|| {
        let request_id = parts
            .headers
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (
            caller.audit_actor.clone(),
            parts.uri.path().to_owned(),
            request_id,
        )
    });
    parts.extensions.insert(caller);
    let response = handler
        .call(Request::from_parts(parts, body), state.clone())
        .await;
    if let Some((actor, path, request_id)) = audit
        && response.status().is_success()
    {
        let summary = response
            .extensions()
            .get::<AuditNote>()
            .map(|note| note.0.chars().take(MAX_AUDIT_SUMMARY_CHARS).collect())
            .unwrap_or_else(|| format!("{} {}", info.method, info.path));
        let write = AdminWrite {
            actor,
            method: info.method.to_string(),
            path,
            status: response.status().as_u16(),
            summary,
            request_id,
        };
        // The change is committed; a lost entry is loud in the log, but
        // the client is not told its write failed when it did not.
        if let Err(error) = state.store.append_audit(&write).await {
            tracing::error!(%error, ?write, "an admin write could not be recorded in the audit log");
        }
    }
    response
}
