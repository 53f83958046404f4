//! Operations endpoints (no token): health, readiness, metrics, OpenAPI.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::ApiDoc;
use super::AppState;

/// The answer of `GET /healthz` (status only) and `GET /readyz` (with the parts
/// checked); no token needed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    /// `ok`, or `unavailable` when a part is down (`/readyz` answers `503`
    /// then).
    pub status: String,
    /// `/readyz` only: whether the database answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<bool>,
    /// `/readyz` only: whether the job workers run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<bool>,
    /// What the operator should know that does not make the host unready
    /// (`/readyz` only): plugins run unsigned, an active plugin version
    /// was not restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<ReadinessWarningView>>,
}

/// Something `/readyz` reports without being unready.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ReadinessWarning)]
pub struct ReadinessWarningView {
    /// `plugin-signatures-not-checked`: no trusted signing key is
    /// configured, so plugins run unsigned. `plugin-version-withheld`: a
    /// plugin's active version was not restored at start (no trusted
    /// signature); the plugin has no active version until one is activated.
    pub code: String,
    /// What it means and what to do.
    pub detail: String,
}

/// The `/readyz` warnings of a running host.
fn readiness_warnings(state: &AppState) -> Vec<ReadinessWarningView> {
    let Some(plugins) = &state.plugins else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    if !plugins.signatures_required() {
        warnings.push(ReadinessWarningView {
            code: "plugin-signatures-not-checked".to_owned(),
            detail: "no trusted plugin signing key is configured (rescind serve --trusted-key): \
                     plugins are uploaded and activated without a signature, so any admin \
                     token can run any code"
                .to_owned(),
        });
    }
    for withheld in plugins.withheld() {
        warnings.push(ReadinessWarningView {
            code: "plugin-version-withheld".to_owned(),
            detail: format!(
                "plugin `{}` has no active version: {}",
                withheld.plugin, withheld.reason
            ),
        });
    }
    warnings
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process runs", body = HealthView)))]
pub async fn healthz() -> Json<HealthView> {
    Json(HealthView {
        status: "ok".to_owned(),
        database: None,
        workers: None,
        warnings: None,
    })
}

/// The service can take work: the database answers and the job workers run.
///
/// `warnings` lists what the operator should know without the host being
/// unready (plugins running unsigned, an active version withheld).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "The database answers and the job workers run", body = HealthView),
        (status = 503, description = "Not ready", body = HealthView),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<HealthView>) {
    let (ready, report) = readiness(&state).await;
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(report),
    )
}

/// Whether the service can take work, with the report `/readyz` answers
/// (the console's overview shows the same).
pub async fn readiness(state: &AppState) -> (bool, HealthView) {
    let database = state.store.ping().await.is_ok();
    let workers = state.readiness.workers_running();
    let ready = database && workers;
    (
        ready,
        HealthView {
            status: if ready { "ok" } else { "unavailable" }.to_owned(),
            database: Some(database),
            workers: Some(workers),
            warnings: Some(readiness_warnings(state)).filter(|w| !w.is_empty()),
        },
    )
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    match state.store.job_counts().await {
        Ok(counts) => state.metrics.set_jobs(&counts),
        Err(e) => tracing::warn!(error = %e, "cannot count jobs for metrics"),
    }
    if let Some(plugins) = &state.plugins {
        state
            .metrics
            .set_plugin_counters(&plugins.metrics(), plugins.runtime().compilations());
    }
    let mut response = state.metrics.encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
