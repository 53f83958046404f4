//! `/v1/admin`: API keys, the audit log, status mappings, settings,
//! presets, websites, connections, job definitions. Who may call them is the route table's
//! business (`routes.rs`); each write attaches an audit note.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::error::{AppError, Problem};
use super::extract::{ApiJson, ApiJsonList, Caller};
use super::routes::noted;
use super::{AppState, timestamp};
use crate::config_rules;
use crate::domain::{FieldError, Preset, Settings, StatusMapping, WebsiteSettings};
use crate::keys::{self, CreatedKey, KeyRequest};
use crate::store::now_ms;

pub(super) mod audit;
mod shapes;

pub use shapes::ConnectionView;

use shapes::{
    ApiKeyBody, ApiKeySummaryView, ApiKeyView, ConnectionBody, JobDefinitionBody, PresetView,
    SettingsBody, StatusMappingBody, WebsiteBody,
};

/// Creates an API key; its token is shown only in this answer.
#[utoipa::path(post, path = "/v1/admin/api-keys", tag = "admin",
    request_body(content = ApiKeyBody, example = json!(
        {"name": "storefront", "role": "customer", "customerNumber": "C-1", "expiresAt": null}
    )),
    responses(
        (status = 201, description = "The new key, with its token (shown this once)", body = ApiKeyView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ApiKeyBody>,
) -> Result<Response, AppError> {
    let new = KeyRequest {
        name: body.name,
        role: body.role,
        customer_number: body.customer_number,
        expires_at: body.expires_at,
    }
    .validate(now_ms())
    .map_err(AppError::Validation)?;
    let CreatedKey { key, token } =
        keys::create_key(&state.store, new, &caller.audit_actor).await?;
    let note = format!("created {}", keys::describe(&key));
    tracing::info!(key = %key.id, role = key.role.as_str(), "API key created");
    Ok(noted(
        note,
        (
            StatusCode::CREATED,
            Json(ApiKeyView {
                id: key.id,
                name: key.name,
                token,
                role: key.role.as_str().to_owned(),
                customer_number: key.customer_number,
                expires_at: key.expires_at_ms.map(timestamp),
            }),
        ),
    ))
}

/// Every API key, oldest first: never the token, a short prefix of it.
#[utoipa::path(get, path = "/v1/admin/api-keys", tag = "admin",
    responses(
        (status = 200, description = "Every key, oldest first, without its token", body = Vec<ApiKeySummaryView>),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_api_keys(
    State(state): State<AppState>,
) -> Result<Json<Vec<ApiKeySummaryView>>, AppError> {
    let keys = state.store.api_keys().await?;
    Ok(Json(keys.iter().map(ApiKeySummaryView::from).collect()))
}

/// Revokes an API key: the next request with its token is `401`.
#[utoipa::path(delete, path = "/v1/admin/api-keys/{id}", tag = "admin",
    params(("id" = String, Path, description = "The key's id, as created or listed")),
    responses(
        (status = 204, description = "Revoked: its token is refused from the next request on"),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let key = state
        .store
        .delete_api_key(&id)
        .await?
        .ok_or_else(|| AppError::NotFound {
            code: "api-key-not-found",
            detail: format!("no API key with id {id:?} (revoked already, or never made)"),
        })?;
    tracing::info!(key = %key.id, "API key revoked");
    Ok(noted(
        format!("revoked {}", keys::describe(&key)),
        StatusCode::NO_CONTENT,
    ))
}

/// A list of names for an audit note: at most `MAX` of them.
fn listed<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    const MAX: usize = 20;
    let names: Vec<&str> = names.into_iter().collect();
    let mut text = names
        .iter()
        .take(MAX)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX {
        text.push_str(&format!(" and {} more", names.len() - MAX));
    }
    format!("[{text}]")
}

fn listed_mappings(mappings: &[StatusMapping]) -> String {
    listed(
        mappings
            .iter()
            .map(|m| {
                format!(
                    "{} → {}{}",
                    m.erp_code,
                    m.status,
                    if m.allow_cancellation {
                        ", cancellable"
                    } else {
                        ""
                    }
                )
            })
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
    )
}

fn mappings_view(settings: &Settings) -> Vec<StatusMappingBody> {
    settings
        .status_mappings
        .iter()
        .map(|m| StatusMappingBody {
            erp_code: m.erp_code.clone(),
            status: m.status.clone(),
            allow_cancellation: m.allow_cancellation,
        })
        .collect()
}

fn settings_view(settings: &Settings) -> SettingsBody {
    SettingsBody {
        cancellable_order_statuses: settings.cancellable_statuses.clone(),
        cancelled_status: settings.cancelled_status.clone(),
    }
}

/// The order status mappings.
#[utoipa::path(get, path = "/v1/admin/status-mappings", tag = "admin",
    responses((status = 200, description = "The status mappings in force", body = Vec<StatusMappingBody>)),
    security(("bearer" = [])))]
pub async fn get_status_mappings(
    State(state): State<AppState>,
) -> Result<Json<Vec<StatusMappingBody>>, AppError> {
    Ok(Json(mappings_view(&state.store.settings().await?)))
}

/// Replaces the order status mappings.
#[utoipa::path(put, path = "/v1/admin/status-mappings", tag = "admin",
    request_body(content = Vec<StatusMappingBody>, example = json!(
        [{"erpCode": "A", "status": "A", "allowCancellation": true}]
    )),
    responses(
        (status = 200, description = "The status mappings in force", body = Vec<StatusMappingBody>),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_status_mappings(
    State(state): State<AppState>,
    ApiJsonList(body): ApiJsonList<StatusMappingBody>,
) -> Result<Response, AppError> {
    let mut settings = state.store.settings().await?;
    settings.status_mappings = body
        .into_iter()
        .map(|m| StatusMapping {
            erp_code: m.erp_code,
            status: m.status,
            allow_cancellation: m.allow_cancellation,
        })
        .collect();
    settings.validate().map_err(AppError::Validation)?;
    state
        .store
        .put_status_mappings(&settings.status_mappings)
        .await?;
    let note = format!(
        "replaced the status mappings: {} (erpCode → status, cancellable)",
        listed_mappings(&settings.status_mappings)
    );
    Ok(noted(note, Json(mappings_view(&settings))))
}

/// The cancel settings.
#[utoipa::path(get, path = "/v1/admin/settings", tag = "admin",
    responses((status = 200, description = "The cancel settings in force", body = SettingsBody)),
    security(("bearer" = [])))]
pub async fn get_settings(State(state): State<AppState>) -> Result<Json<SettingsBody>, AppError> {
    Ok(Json(settings_view(&state.store.settings().await?)))
}

/// Replaces the cancel settings.
#[utoipa::path(put, path = "/v1/admin/settings", tag = "admin",
    request_body(content = SettingsBody, example = json!(
        {"cancellableOrderStatuses": ["Submitted"], "cancelledStatus": "Cancelled"}
    )),
    responses(
        (status = 200, description = "The cancel settings in force", body = SettingsBody),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_settings(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SettingsBody>,
) -> Result<Response, AppError> {
    let mut settings = state.store.settings().await?;
    settings.cancellable_statuses = body.cancellable_order_statuses;
    settings.cancelled_status = body.cancelled_status;
    settings.validate().map_err(AppError::Validation)?;
    state
        .store
        .put_cancel_settings(&settings.cancellable_statuses, &settings.cancelled_status)
        .await?;
    let note = format!(
        "settings: cancellableOrderStatuses {}, cancelledStatus {:?}",
        listed(settings.cancellable_statuses.iter().map(String::as_str)),
        settings.cancelled_status
    );
    Ok(noted(note, Json(settings_view(&settings))))
}

/// Applies a preset of mappings and settings (`insite` or `websphere`).
#[utoipa::path(post, path = "/v1/admin/presets/{preset}", tag = "admin",
    params(("preset" = String, Path, description = "The preset: `insite` or `websphere`")),
    responses(
        (status = 200, description = "The preset's mappings and settings, now in force", body = PresetView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn apply_preset(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let preset = Preset::parse(&name).ok_or_else(|| AppError::NotFound {
        code: "preset-not-found",
        detail: format!("no preset {name:?}: use insite or websphere"),
    })?;
    let settings = preset.settings();
    state.store.put_settings(&settings).await?;
    Ok(noted(
        format!("applied the preset {name:?} (status mappings and settings replaced)"),
        Json(PresetView {
            preset: name,
            status_mappings: mappings_view(&settings),
            settings: settings_view(&settings),
        }),
    ))
}

/// A website's settings.
#[utoipa::path(get, path = "/v1/admin/websites/{website}", tag = "admin",
    params(("website" = String, Path, description = "The website's name, as orders carry it in `website`", example = "main")),
    responses(
        (status = 200, description = "The website's settings", body = WebsiteBody),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_website(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<WebsiteBody>, AppError> {
    let website = state
        .store
        .website(&name)
        .await?
        .ok_or_else(|| AppError::NotFound {
            code: "website-not-found",
            detail: format!(
                "website {name:?} is not configured (customers' cancellation requests are refused there)"
            ),
        })?;
    Ok(Json(WebsiteBody {
        allow_cancellation_request: website.allow_cancellation_request,
    }))
}

/// Creates or replaces a website's settings.
#[utoipa::path(put, path = "/v1/admin/websites/{website}", tag = "admin",
    params(("website" = String, Path, description = "The website's name, as orders carry it in `website`", example = "main")),
    request_body(content = WebsiteBody, example = json!({"allowCancellationRequest": true})),
    responses(
        (status = 200, description = "The website's settings", body = WebsiteBody),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_website(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<WebsiteBody>,
) -> Result<Response, AppError> {
    state
        .store
        .put_website(
            &name,
            &WebsiteSettings {
                allow_cancellation_request: body.allow_cancellation_request,
            },
        )
        .await?;
    Ok(noted(
        format!(
            "website {name:?}: allowCancellationRequest {}",
            body.allow_cancellation_request
        ),
        Json(body),
    ))
}

/// An ERP connection; secrets are shown by name only.
#[utoipa::path(get, path = "/v1/admin/connections/{name}", tag = "admin",
    params(("name" = String, Path, description = "The connection's name, as job definitions name it", example = "erp")),
    responses(
        (status = 200, description = "The connection, secrets by name only", body = ConnectionView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_connection(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ConnectionView>, AppError> {
    let connection = state
        .store
        .connection(&name)
        .await?
        .ok_or_else(|| AppError::NotFound {
            code: "connection-not-found",
            detail: format!("no connection named {name:?}"),
        })?;
    Ok(Json(ConnectionView::from(&connection)))
}

/// Creates or replaces an ERP connection. Secrets are write-only; leaving
/// `secrets` out keeps the stored ones.
#[utoipa::path(put, path = "/v1/admin/connections/{name}", tag = "admin",
    params(("name" = String, Path, description = "The connection's name, as job definitions name it", example = "erp")),
    request_body(content = ConnectionBody, example = json!(
        {"baseUrl": "http://127.0.0.1:9000", "allowedHosts": ["127.0.0.1:9000"],
         "settings": {"businessCode": "B1"}, "secrets": {"siteToken": "…"}}
    )),
    responses(
        (status = 200, description = "The connection, secrets by name only", body = ConnectionView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_connection(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ConnectionBody>,
) -> Result<Response, AppError> {
    let keep_secrets = body.secrets.is_none();
    let sent = body.into_connection(&name);
    config_rules::check_connection(&sent).map_err(AppError::Validation)?;
    state.store.put_connection(&sent, keep_secrets).await?;
    let connection = state
        .store
        .connection(&name)
        .await?
        .ok_or_else(|| AppError::Internal("connection vanished after writing".to_owned()))?;
    // Names only: setting values may be anything, secret values never show.
    let note = format!(
        "connection {name:?}: allowedHosts {}, allowPrivateNetwork {}, caCertificates {}, \
         settings {}, secrets {}",
        listed(connection.allowed_hosts.iter().map(String::as_str)),
        connection.allow_private_network,
        if connection.ca_certificates.is_some() {
            "set"
        } else {
            "none"
        },
        listed(connection.settings.keys().map(String::as_str)),
        if keep_secrets {
            "kept".to_owned()
        } else {
            format!(
                "replaced: {}",
                listed(connection.secrets.keys().map(String::as_str))
            )
        },
    );
    Ok(noted(note, Json(ConnectionView::from(&connection))))
}

/// A job definition.
#[utoipa::path(get, path = "/v1/admin/job-definitions/{name}", tag = "admin",
    params(("name" = String, Path, description = "The job definition's name", example = "OrderCancel")),
    responses(
        (status = 200, description = "The job definition, with its retry policy in force", body = JobDefinitionBody),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_job_definition(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<JobDefinitionBody>, AppError> {
    let definition =
        state
            .store
            .job_definition(&name)
            .await?
            .ok_or_else(|| AppError::NotFound {
                code: "job-definition-not-found",
                detail: format!("no job definition named {name:?}"),
            })?;
    Ok(Json(JobDefinitionBody::from(&definition)))
}

/// Creates or replaces a job definition.
///
/// The connection and the integration processor it names must exist: an unknown connection, a plugin without an
/// active version, or a pinned `name@sha256:…` that is not a stored version
/// is 422 `validation-failed` naming the field. Plugin names are lowercase.
#[utoipa::path(put, path = "/v1/admin/job-definitions/{name}", tag = "admin",
    params(("name" = String, Path, description = "The job definition's name", example = "OrderCancel")),
    request_body(content = JobDefinitionBody, examples(
        ("everyCancellation" = (
            summary = "An ERP told of every cancellation, full or partial",
            value = json!(
                {"jobType": "Execution", "connection": "erp", "preprocessor": null,
                 "integrationProcessor": "aaas", "postProcessor": null,
                 "parameters": [{"name": "OrderNumber", "valueType": "String", "defaultValue": "", "prompt": "Order Number"}],
                 "retry": {"maxAttempts": 8, "initialBackoffMs": 1000, "maxBackoffMs": 300000},
                 "enabled": true}
            ))),
        ("wholeOrdersOnly" = (
            summary = "An ERP whose API cancels whole orders: told only when a cancellation ends the order",
            value = json!(
                {"jobType": "Execution", "connection": "erp", "integrationProcessor": "websphere",
                 "appliesTo": "full",
                 "parameters": [{"name": "OrderNumber", "valueType": "String", "defaultValue": "", "prompt": "Order Number"}]}
            ))),
    )),
    responses(
        (status = 200, description = "The job definition, with its retry policy in force", body = JobDefinitionBody),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_job_definition(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<JobDefinitionBody>,
) -> Result<Response, AppError> {
    let connection = body.connection.clone();
    let processor = body.integration_processor.clone();
    let (definition, mut errors) = match body.into_definition(&name) {
        Ok(definition) => (Some(definition), Vec::new()),
        Err(errors) => (None, errors),
    };
    // What the definition names must exist, checked the same way for the
    // connection and the plugin (each only when its field is well formed).
    if !errors.iter().any(|e| e.field == "connection")
        && state.store.connection(&connection).await?.is_none()
    {
        errors.push(FieldError::new(
            "connection",
            format!("no connection named {connection:?}: create it first"),
        ));
    }
    if let Some(registry) = &state.plugins
        && !errors.iter().any(|e| e.field == "integrationProcessor")
        && let Err(error) = registry.check_reference(&processor)
    {
        errors.push(FieldError::new("integrationProcessor", error.to_string()));
    }
    match definition {
        Some(definition) if errors.is_empty() => {
            state.store.put_job_definition(&definition).await?;
            let note = format!(
                "job definition {name:?}: connection {:?}, integrationProcessor {:?}, \
                 enabled {}, appliesTo {}, maxAttempts {}",
                definition.connection,
                definition.integration_processor,
                definition.enabled,
                definition.applies_to.as_str(),
                definition.retry.max_attempts,
            );
            Ok(noted(note, Json(JobDefinitionBody::from(&definition))))
        }
        _ => Err(AppError::Validation(errors)),
    }
}
