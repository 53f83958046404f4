//! `POST /v1/orders/{orderNumber}/cancellations` and
//! `GET /v1/cancellations/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::AppState;
use super::error::{AppError, Problem};
use super::extract::{Caller, OptionalJsonBody, parse_json, parse_json_object};
use crate::domain::{CancelRequest, FieldError};
use crate::store::{CancelCommand, Cancelled, Committed, IdempotencyKey, Role};

mod shapes;

use shapes::CancelBody;
pub use shapes::{CancellationView, JobDetail};

/// Longest `Idempotency-Key` accepted.
const MAX_KEY_LEN: usize = 255;

/// Cancels an order or some of its lines.
#[utoipa::path(post, path = "/v1/orders/{orderNumber}/cancellations", tag = "cancellations",
    params(
        ("orderNumber" = String, Path, description = "The order's number, as the commerce platform knows it (1 to 100 characters)", example = "SO-1001"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same body"),
    ),
    request_body(content = CancelBody, example = json!(
        { "items": [{"orderItemReference": 1, "quantity": 2}],
          "cancellationReason": "OUT_OF_STOCK", "cancellationDate": "2024-09-09",
          "invoiceReference": "IDE12345678901",
          "bankDetails": {"accountOwner": "Max Mustermann", "iban": "DE89370400440532013000", "bic": "COBADEFFXXX"},
          "forcedCancel": false, "forcedCancelWithRefund": false,
          "forUser": "buyer@example.com" }
    )),
    responses(
        (status = 201, description = "Committed (or the first answer again, for a repeated `Idempotency-Key`)", body = CancellationView),
        (status = "4XX", description = "Refused; nothing changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_cancellation(
    State(state): State<AppState>,
    caller: Caller,
    Path(order_number): Path<String>,
    headers: HeaderMap,
    OptionalJsonBody(bytes): OptionalJsonBody,
) -> Result<Response, AppError> {
    let (committed, replayed) = submit(&state, &caller, &order_number, &headers, &bytes).await?;
    let view = CancellationView::new(&committed, replayed, job_detail(&caller));
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(location) =
        HeaderValue::from_str(&format!("/v1/cancellations/{}", committed.record.id))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// A cancel request (the JSON body of
/// `POST /v1/orders/{orderNumber}/cancellations`, and its
/// `Idempotency-Key` header when there is one) judged by the rules and
/// committed, counted in the metrics: what that route does, and what the
/// console's cancel form does with the body it builds from its fields.
/// Answers the cancellation and whether it is an earlier one replayed.
pub async fn submit(
    state: &AppState,
    caller: &Caller,
    order_number: &str,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<(Committed, bool), AppError> {
    let result = cancel(state, caller, order_number, headers, bytes).await;
    let outcome = match &result {
        Ok((_, replayed)) if *replayed => "replayed",
        Ok(_) => "committed",
        Err(e) => e.status_and_code().1,
    };
    state.metrics.cancellation(outcome);
    result
}

async fn cancel(
    state: &AppState,
    caller: &Caller,
    order_number: &str,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<(Committed, bool), AppError> {
    let body: CancelBody = parse_json_object(bytes)?;
    let key = idempotency_key(headers)?;
    let request = CancelRequest::from(body);
    let actor = caller.requester();
    let digest = key
        .map(|_| request_digest(order_number, bytes))
        .transpose()?;
    let result = state
        .store
        .cancel(CancelCommand {
            order_number,
            actor: &actor,
            request: &request,
            today: OffsetDateTime::now_utc().date(),
            idempotency: key
                .zip(digest.as_deref())
                .map(|(key, digest)| IdempotencyKey {
                    scope: &caller.idempotency_scope,
                    key,
                    request_sha256: digest,
                }),
            planner: crate::cancel::PLANNER,
        })
        .await?;
    match result {
        Cancelled::Committed(committed) => {
            if !committed.jobs.is_empty() {
                state.job_wakeup.notify_waiters();
            }
            Ok((committed, false))
        }
        Cancelled::Replayed { cancellation_id } => {
            let committed = state
                .store
                .cancellation(&cancellation_id)
                .await?
                .ok_or_else(|| {
                    AppError::Internal(format!(
                        "idempotency record names missing cancellation {cancellation_id}"
                    ))
                })?;
            Ok((committed, true))
        }
    }
}

/// The `Idempotency-Key` header, checked: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, AppError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = || {
        AppError::Validation(vec![FieldError::new(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        )])
    };
    let key = value.to_str().map_err(|_| invalid())?;
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid());
    }
    Ok(Some(key))
}

/// Digest of what identifies a request: the order and the body in canonical
/// form (key order and whitespace do not matter).
pub fn request_digest(order_number: &str, bytes: &[u8]) -> Result<String, AppError> {
    let value: serde_json::Value = parse_json(bytes)?;
    let mut hasher = Sha256::new();
    hasher.update(order_number.as_bytes());
    hasher.update([0]);
    hasher.update(value.to_string().as_bytes());
    Ok(hex::encode(hasher.finalize()))
}

/// A cancellation with the current state of its ERP jobs.
#[utoipa::path(get, path = "/v1/cancellations/{internalRequestId}", tag = "cancellations",
    params(("internalRequestId" = String, Path, description = "The cancellation's `internalRequestId`")),
    responses(
        (status = 200, description = "The cancellation", body = CancellationView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_cancellation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CancellationView>, AppError> {
    let not_found = || AppError::NotFound {
        code: "cancellation-not-found",
        detail: format!("no cancellation with id {id}"),
    };
    let committed = state.store.cancellation(&id).await?.ok_or_else(not_found)?;
    // A customer sees only their own cancellations; others look absent.
    if caller.role == Role::Customer
        && caller.customer_number.as_deref() != Some(committed.record.customer_number.as_str())
    {
        return Err(not_found());
    }
    Ok(Json(CancellationView::new(
        &committed,
        false,
        job_detail(&caller),
    )))
}

/// What a caller sees of a cancellation's jobs: customers their state only.
pub fn job_detail(caller: &Caller) -> JobDetail {
    match caller.role {
        Role::Customer => JobDetail::StateOnly,
        Role::Admin | Role::Service => JobDetail::Full,
    }
}
