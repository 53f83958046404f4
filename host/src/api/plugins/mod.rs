//! `/v1/admin/plugins`: upload a plugin version, list versions, activate
//! one (with an optional guard), shadow-run one beside the active one. The
//! registry (and, for shadow runs, the store and the workers) does the
//! work; these handlers read the request, authorise and shape the answer.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::{AppError, Problem};
use super::extract::{ApiJson, Caller};
use super::routes::noted;
use crate::domain::FieldError;
use crate::plugins::registry::{Guard, PluginRegistry};
use crate::store::{NewShadowRun, ShadowRun};

mod shapes;

use shapes::{ActivateBody, PluginVersionView, PluginView};
pub use shapes::{ShadowBody, ShadowRequestView, ShadowResultView, ShadowRunView};
use shapes::{plugin_view, shadow_view, version_view};

/// The header carrying a detached ed25519 signature over the upload's
/// bytes (base64), required when the host trusts signing keys.
pub const SIGNATURE_HEADER: &str = "x-plugin-signature";

fn registry(state: &AppState) -> Result<&PluginRegistry, AppError> {
    state
        .plugins
        .as_ref()
        .ok_or_else(|| AppError::Unavailable("this host runs without a plugin registry".to_owned()))
}

fn not_found(name: &str) -> AppError {
    AppError::NotFound {
        code: "plugin-not-found",
        detail: format!("there is no plugin {name:?}"),
    }
}

/// Who did it, as the registry records it: `admin token` or the key's name
/// and id (never the token).
fn actor(caller: &Caller) -> String {
    caller.audit_actor.to_string()
}

/// Uploads a version of a plugin: the component's bytes as
/// `application/wasm`. Validated (size, signature when the host trusts
/// keys, a component of a supported world and SDK, compiled within the
/// bound) before anything is stored; activated unless `?activate=false`.
/// 201 for a new version, 200 when these bytes were already stored.
#[utoipa::path(put, path = "/v1/admin/plugins/{name}", tag = "plugins",
    params(
        ("name" = String, Path, description = "Plugin name: 1 to 64 ASCII letters, digits, - or _"),
        ("activate" = Option<bool>, Query, description = "Activate the version (default true)"),
        ("X-Plugin-Signature" = Option<String>, Header, description = "Detached ed25519 signature over the bytes, base64"),
    ),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses(
        (status = 201, description = "Stored (and activated)", body = PluginVersionView),
        (status = 200, description = "Already stored", body = PluginVersionView),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused: nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_plugin(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let registry = registry(&state)?;
    let Query(query) = query.map_err(|e| AppError::Malformed(e.body_text()))?;
    let activate = match query.get("activate").map(String::as_str) {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(AppError::Validation(vec![FieldError::new(
                "activate",
                format!("expected true or false, not {other:?}"),
            )]));
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/wasm" && essence != "application/octet-stream" {
        return Err(AppError::UnsupportedMediaType(format!(
            "expected Content-Type: application/wasm, got {}",
            if content_type.is_empty() {
                "none"
            } else {
                content_type
            }
        )));
    }
    let limit = registry.config().max_component_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| {
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                AppError::PayloadTooLarge { limit }
            } else {
                AppError::Malformed(format!("cannot read the request body: {e}"))
            }
        })?
        .to_vec();
    let signature = headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes().to_vec());
    let version = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    let existed = registry
        .get(&name)
        .is_some_and(|p| p.versions.iter().any(|v| v.version == version));
    let info = registry
        .upload(
            &name,
            bytes,
            &actor(&caller),
            activate,
            signature.as_deref(),
        )
        .await?;
    let active = registry.get(&name).and_then(|p| p.active);
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let what = match (existed, active.as_deref() == Some(info.version.as_str())) {
        (true, true) => "already stored, active",
        (true, false) => "already stored, not active",
        (false, true) => "stored and activated",
        (false, false) => "stored, not activated",
    };
    let note = format!(
        "uploaded plugin {name:?} version {} ({what}; {} bytes{})",
        info.version,
        info.size,
        info.signed_by
            .as_deref()
            .map(|k| format!(", signed by {k}"))
            .unwrap_or_default()
    );
    Ok(noted(
        note,
        (status, Json(version_view(&info, active.as_deref()))),
    ))
}

/// Every plugin with its versions and the active one.
#[utoipa::path(get, path = "/v1/admin/plugins", tag = "plugins",
    responses(
        (status = 200, description = "Every plugin with its versions", body = Vec<PluginView>),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_plugins(
    State(state): State<AppState>,
) -> Result<Json<Vec<PluginView>>, AppError> {
    let registry = registry(&state)?;
    let audit = registry.audit_log();
    Ok(Json(
        registry
            .list()
            .iter()
            .map(|p| plugin_view(p, &audit))
            .collect(),
    ))
}

/// One plugin: versions, the active one, a guard in progress, history.
#[utoipa::path(get, path = "/v1/admin/plugins/{name}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    responses(
        (status = 200, description = "The plugin", body = PluginView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_plugin(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<PluginView>, AppError> {
    let registry = registry(&state)?;
    let summary = registry.get(&name).ok_or_else(|| not_found(&name))?;
    Ok(Json(plugin_view(&summary, &registry.audit_log())))
}

/// Switches the active version atomically: attempts that started on the
/// old version finish on it, later ones run the new one. Activating an
/// older version is the rollback. With a `guard`, the host rolls back by
/// itself if the new version's first attempts fail beyond the bound, and
/// re-queues the jobs that failed on it.
#[utoipa::path(post, path = "/v1/admin/plugins/{name}/activate", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    request_body = ActivateBody,
    responses(
        (status = 200, description = "The plugin, with the version now active", body = PluginView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn activate_plugin(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ActivateBody>,
) -> Result<Response, AppError> {
    let registry = registry(&state)?;
    let Some(before) = registry.get(&name) else {
        return Err(not_found(&name));
    };
    let guard = body.guard.map(|g| Guard {
        observe_jobs: g.observe_jobs,
        max_failure_rate: g.max_failure_rate,
    });
    let guarded = guard.map(|g| {
        format!(
            ", guarded: {} attempts, at most {} failing",
            g.observe_jobs, g.max_failure_rate
        )
    });
    registry
        .activate(&name, &body.version, &actor(&caller), guard)
        .await?;
    let summary = registry.get(&name).ok_or_else(|| not_found(&name))?;
    let note = format!(
        "activated plugin {name:?} version {} (was {}{})",
        body.version,
        before.active.as_deref().unwrap_or("none"),
        guarded.unwrap_or_default()
    );
    Ok(noted(
        note,
        Json(plugin_view(&summary, &registry.audit_log())),
    ))
}

/// The most jobs one shadow run compares.
pub const MAX_SHADOW_JOBS: u32 = 1000;

/// Starts a shadow run: `version` (stored, inactive) runs beside the active
/// version on the plugin's next `jobs` real jobs, in a capture-only sandbox
/// whose requests are answered with the active version's recorded ERP
/// answers and never sent. Replaces the plugin's last shadow run.
#[utoipa::path(post, path = "/v1/admin/plugins/{name}/shadow", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    request_body = ShadowBody,
    responses(
        (status = 202, description = "Started: it takes the plugin's next jobs", body = ShadowRunView),
        (status = 404, description = "No such plugin (`plugin-not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The plugin has no active version to compare with (`no-active-version`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`version` is not a stored version of the plugin, is the active one, or is not trusted; `jobs` is out of range (`validation-failed`)", body = Problem, content_type = "application/problem+json"),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn start_shadow(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ShadowBody>,
) -> Result<Response, AppError> {
    let registry = registry(&state)?;
    registry.get(&name).ok_or_else(|| not_found(&name))?;
    if !(1..=MAX_SHADOW_JOBS).contains(&body.jobs) {
        return Err(AppError::Validation(vec![FieldError::new(
            "jobs",
            format!("must be 1 to {MAX_SHADOW_JOBS}, not {}", body.jobs),
        )]));
    }
    registry.check_reference(&format!("{name}@{}", body.version))?;
    let active = registry.active(&name)?;
    if active.sha256() == body.version {
        return Err(AppError::Validation(vec![FieldError::new(
            "version",
            format!(
                "{} is the active version of plugin {name:?}: a shadow run compares an \
                 inactive version with the active one",
                body.version
            ),
        )]));
    }
    let run = state
        .store
        .start_shadow_run(&NewShadowRun {
            plugin: name.clone(),
            version: body.version.clone(),
            jobs: body.jobs,
            started_by: actor(&caller),
        })
        .await?;
    let note = format!(
        "started a shadow run of plugin {name:?} version {} on {} jobs (active {})",
        body.version,
        body.jobs,
        active.sha256()
    );
    Ok(noted(note, (StatusCode::ACCEPTED, Json(shadow_view(&run)))))
}

/// The plugin's shadow run: per job, whether the shadow version sent the
/// same requests as the active one, or how they differ.
#[utoipa::path(get, path = "/v1/admin/plugins/{name}/shadow", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    responses(
        (status = 200, description = "The plugin's shadow run and its results so far", body = ShadowRunView),
        (status = 404, description = "No such plugin (`plugin-not-found`), or it has no shadow run (`shadow-run-not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_shadow(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ShadowRunView>, AppError> {
    let run = shadow_run(&state, &name).await?;
    Ok(Json(shadow_view(&run)))
}

/// Stops the plugin's shadow run: it takes no more jobs; the jobs it took
/// still report, and the run stays readable until the next one replaces it.
#[utoipa::path(delete, path = "/v1/admin/plugins/{name}/shadow", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    responses(
        (status = 200, description = "Stopped (or it had already ended)", body = ShadowRunView),
        (status = 404, description = "No such plugin (`plugin-not-found`), or it has no shadow run (`shadow-run-not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn stop_shadow(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    shadow_run(&state, &name).await?;
    let stopped = state.store.stop_shadow_run(&name).await?;
    let run = shadow_run(&state, &name).await?;
    let note = if stopped {
        format!("stopped the shadow run of plugin {name:?}")
    } else {
        format!("the shadow run of plugin {name:?} had already ended")
    };
    Ok(noted(note, Json(shadow_view(&run))))
}

async fn shadow_run(state: &AppState, name: &str) -> Result<ShadowRun, AppError> {
    registry(state)?.get(name).ok_or_else(|| not_found(name))?;
    state
        .store
        .shadow_run(name)
        .await?
        .ok_or_else(|| AppError::NotFound {
            code: "shadow-run-not-found",
            detail: format!("plugin {name:?} has no shadow run"),
        })
}
