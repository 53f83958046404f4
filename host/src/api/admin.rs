//! `/v1/admin`: API keys, status mappings, settings, presets, websites,
//! connections, job definitions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::auth::{new_token, token_digest};
use super::dto::{
    ApiKeyBody, ApiKeyView, ConnectionBody, ConnectionView, JobDefinitionDto, PresetView,
    SettingsDto, StatusMappingDto, WebsiteDto,
};
use super::error::{AppError, Problem};
use super::extract::{ApiJson, ApiJsonList, Caller};
use crate::domain::{FieldError, Preset, Settings, StatusMapping, WebsiteSettings};
use crate::store::{ApiKey, Role};

const ADMIN: &[Role] = &[Role::Admin];

/// Creates an API key; its token is shown only in this answer.
#[utoipa::path(post, path = "/v1/admin/api-keys", tag = "admin",
    request_body(content = ApiKeyBody, example = json!(
        {"role": "customer", "customerNumber": "C-1"}
    )),
    responses(
        (status = 201, description = "Created", body = ApiKeyView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ApiKeyBody>,
) -> Result<(StatusCode, Json<ApiKeyView>), AppError> {
    caller.require(ADMIN)?;
    let mut errors = Vec::new();
    let role = Role::parse(&body.role);
    if role.is_none() {
        errors.push(FieldError::new(
            "role",
            "expected \"admin\", \"service\" or \"customer\"",
        ));
    }
    let customer_number = body.customer_number.filter(|c| !c.trim().is_empty());
    match (role, &customer_number) {
        (Some(Role::Customer), None) => errors.push(FieldError::new(
            "customerNumber",
            "a customer key needs the customer number it is bound to",
        )),
        (Some(Role::Admin | Role::Service), Some(_)) => errors.push(FieldError::new(
            "customerNumber",
            "only customer keys are bound to a customer",
        )),
        _ => {}
    }
    let Some(role) = role.filter(|_| errors.is_empty()) else {
        return Err(AppError::Validation(errors));
    };
    let token = new_token();
    state
        .store
        .put_api_key(&ApiKey {
            token_sha256: token_digest(&token),
            role,
            customer_number: customer_number.clone(),
        })
        .await?;
    tracing::info!(role = role.as_str(), "API key created");
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyView {
            token,
            role: role.as_str().to_owned(),
            customer_number,
        }),
    ))
}

fn mappings_view(settings: &Settings) -> Vec<StatusMappingDto> {
    settings
        .status_mappings
        .iter()
        .map(|m| StatusMappingDto {
            erp_code: m.erp_code.clone(),
            status: m.status.clone(),
            allow_cancellation: m.allow_cancellation,
        })
        .collect()
}

fn settings_view(settings: &Settings) -> SettingsDto {
    SettingsDto {
        cancellable_order_statuses: settings.cancellable_statuses.clone(),
        cancelled_status: settings.cancelled_status.clone(),
    }
}

/// The order status mappings.
#[utoipa::path(get, path = "/v1/admin/status-mappings", tag = "admin",
    responses((status = 200, description = "Mappings", body = Vec<StatusMappingDto>)),
    security(("bearer" = [])))]
pub async fn get_status_mappings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<StatusMappingDto>>, AppError> {
    caller.require(ADMIN)?;
    Ok(Json(mappings_view(&state.store.settings().await?)))
}

/// Replaces the order status mappings.
#[utoipa::path(put, path = "/v1/admin/status-mappings", tag = "admin",
    request_body(content = Vec<StatusMappingDto>, example = json!(
        [{"erpCode": "A", "status": "A", "allowCancellation": true}]
    )),
    responses(
        (status = 200, description = "Mappings", body = Vec<StatusMappingDto>),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_status_mappings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJsonList(body): ApiJsonList<StatusMappingDto>,
) -> Result<Json<Vec<StatusMappingDto>>, AppError> {
    caller.require(ADMIN)?;
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
    Ok(Json(mappings_view(&settings)))
}

/// The cancel settings.
#[utoipa::path(get, path = "/v1/admin/settings", tag = "admin",
    responses((status = 200, description = "Settings", body = SettingsDto)),
    security(("bearer" = [])))]
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SettingsDto>, AppError> {
    caller.require(ADMIN)?;
    Ok(Json(settings_view(&state.store.settings().await?)))
}

/// Replaces the cancel settings.
#[utoipa::path(put, path = "/v1/admin/settings", tag = "admin",
    request_body(content = SettingsDto, example = json!(
        {"cancellableOrderStatuses": ["Submitted"], "cancelledStatus": "Cancelled"}
    )),
    responses(
        (status = 200, description = "Settings", body = SettingsDto),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SettingsDto>,
) -> Result<Json<SettingsDto>, AppError> {
    caller.require(ADMIN)?;
    let mut settings = state.store.settings().await?;
    settings.cancellable_statuses = body.cancellable_order_statuses;
    settings.cancelled_status = body.cancelled_status;
    settings.validate().map_err(AppError::Validation)?;
    state
        .store
        .put_cancel_settings(&settings.cancellable_statuses, &settings.cancelled_status)
        .await?;
    Ok(Json(settings_view(&settings)))
}

/// Applies a preset of mappings and settings (`insite` or `websphere`).
#[utoipa::path(post, path = "/v1/admin/presets/{preset}", tag = "admin",
    params(("preset" = String, Path, description = "insite or websphere")),
    responses(
        (status = 200, description = "Applied", body = PresetView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn apply_preset(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PresetView>, AppError> {
    caller.require(ADMIN)?;
    let preset = Preset::parse(&name).ok_or_else(|| AppError::NotFound {
        code: "preset-not-found",
        detail: format!("no preset {name:?}: use insite or websphere"),
    })?;
    let settings = preset.settings();
    state.store.put_settings(&settings).await?;
    Ok(Json(PresetView {
        preset: name,
        status_mappings: mappings_view(&settings),
        settings: settings_view(&settings),
    }))
}

/// A website's settings.
#[utoipa::path(get, path = "/v1/admin/websites/{website}", tag = "admin",
    params(("website" = String, Path, description = "Website name", example = "main")),
    responses(
        (status = 200, description = "Settings", body = WebsiteDto),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_website(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<WebsiteDto>, AppError> {
    caller.require(ADMIN)?;
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
    Ok(Json(WebsiteDto {
        allow_cancellation_request: website.allow_cancellation_request,
    }))
}

/// Creates or replaces a website's settings.
#[utoipa::path(put, path = "/v1/admin/websites/{website}", tag = "admin",
    params(("website" = String, Path, description = "Website name", example = "main")),
    request_body(content = WebsiteDto, example = json!({"allowCancellationRequest": true})),
    responses(
        (status = 200, description = "Settings", body = WebsiteDto),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_website(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<WebsiteDto>,
) -> Result<Json<WebsiteDto>, AppError> {
    caller.require(ADMIN)?;
    state
        .store
        .put_website(
            &name,
            &WebsiteSettings {
                allow_cancellation_request: body.allow_cancellation_request,
            },
        )
        .await?;
    Ok(Json(body))
}

/// An ERP connection; secrets are shown by name only.
#[utoipa::path(get, path = "/v1/admin/connections/{name}", tag = "admin",
    params(("name" = String, Path, description = "Connection name", example = "erp")),
    responses(
        (status = 200, description = "Connection", body = ConnectionView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ConnectionView>, AppError> {
    caller.require(ADMIN)?;
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
    params(("name" = String, Path, description = "Connection name", example = "erp")),
    request_body(content = ConnectionBody, example = json!(
        {"baseUrl": "http://127.0.0.1:9000", "allowedHosts": ["127.0.0.1:9000"],
         "settings": {"businessCode": "B1"}, "secrets": {"siteToken": "…"}}
    )),
    responses(
        (status = 200, description = "Connection", body = ConnectionView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ConnectionBody>,
) -> Result<Json<ConnectionView>, AppError> {
    caller.require(ADMIN)?;
    body.validate().map_err(AppError::Validation)?;
    let keep_secrets = body.secrets.is_none();
    state
        .store
        .put_connection(&body.into_connection(&name), keep_secrets)
        .await?;
    let connection = state
        .store
        .connection(&name)
        .await?
        .ok_or_else(|| AppError::Internal("connection vanished after writing".to_owned()))?;
    Ok(Json(ConnectionView::from(&connection)))
}

/// A job definition.
#[utoipa::path(get, path = "/v1/admin/job-definitions/{name}", tag = "admin",
    params(("name" = String, Path, description = "Job definition name", example = "OrderCancel")),
    responses(
        (status = 200, description = "Definition", body = JobDefinitionDto),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_job_definition(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<JobDefinitionDto>, AppError> {
    caller.require(ADMIN)?;
    let definition =
        state
            .store
            .job_definition(&name)
            .await?
            .ok_or_else(|| AppError::NotFound {
                code: "job-definition-not-found",
                detail: format!("no job definition named {name:?}"),
            })?;
    Ok(Json(JobDefinitionDto::from(&definition)))
}

/// Creates or replaces a job definition.
///
/// The connection and the integration processor it names must exist: an unknown connection, a plugin without an
/// active version, or a pinned `name@sha256:…` that is not a stored version
/// is 422 `validation-failed` naming the field. Plugin names are lowercase.
#[utoipa::path(put, path = "/v1/admin/job-definitions/{name}", tag = "admin",
    params(("name" = String, Path, description = "Job definition name", example = "OrderCancel")),
    request_body(content = JobDefinitionDto, examples(
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
        (status = 200, description = "Definition", body = JobDefinitionDto),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_job_definition(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<JobDefinitionDto>,
) -> Result<Json<JobDefinitionDto>, AppError> {
    caller.require(ADMIN)?;
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
            Ok(Json(JobDefinitionDto::from(&definition)))
        }
        _ => Err(AppError::Validation(errors)),
    }
}
