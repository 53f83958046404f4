//! The one mapping from everything a handler can refuse or fail with to an
//! RFC 9457 `application/problem+json` answer with the docs/api.md `code`.
//!
//! Error policy of the HTTP layer: handlers return `Result<_, AppError>`;
//! domain refusals keep their own code and status; store and internal
//! failures become a 500 whose detail says nothing about the internals (they
//! are logged with the request id instead).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{FieldError, Refusal};
use crate::plugins::registry::RegistryError;
use crate::store::{CancelError, RetryError, RunError, StoreError};

/// Everything an API handler can answer with instead of success.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The cancel rules refused the request.
    #[error(transparent)]
    Refused(Refusal),
    /// No token or an unknown one.
    #[error("a valid bearer token is required")]
    Unauthenticated,
    /// The caller's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource (other than an order, which is a refusal).
    #[error("{detail}")]
    NotFound {
        /// API code, e.g. `cancellation-not-found`.
        code: &'static str,
        /// The problem's detail: which resource, by the name or id the
        /// caller gave.
        detail: String,
    },
    /// The request conflicts with the resource's state.
    #[error("{detail}")]
    Conflict {
        /// API code, e.g. `job-not-retryable`.
        code: &'static str,
        /// The problem's detail: the state that stands in the way.
        detail: String,
    },
    /// Body is not JSON or has the wrong types or unknown fields.
    #[error("{0}")]
    Malformed(String),
    /// Fields are invalid: every one found, each naming its field.
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    /// Body over the limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Body of a media type the endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Same `Idempotency-Key`, different body.
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// Same `Idempotency-Key` still being processed.
    #[error("a request with this Idempotency-Key is still being processed; retry later")]
    RequestInProgress,
    /// No route for the path.
    #[error("no such resource")]
    RouteNotFound,
    /// The path exists, the method does not.
    #[error("method not allowed for this resource")]
    MethodNotAllowed,
    /// A part of the host this request needs is not running.
    #[error("{0}")]
    Unavailable(String),
    /// The request's URI is longer than the API reads.
    #[error("the request URI is longer than {limit} bytes")]
    UriTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// A refusal from a layer below the handlers (a path that does not
    /// decode, a header limit) that answered in its own format; carried
    /// over into a problem by its status.
    #[error("{detail}")]
    Rejected {
        /// The status the layer answered with.
        status: StatusCode,
        /// What it said, cut short.
        detail: String,
    },
    /// The store failed. When it could not write (disk full, read-only)
    /// the answer is 503 `unavailable` and says so; other failures are an
    /// opaque 500.
    #[error("{}", store_detail(.0))]
    Store(#[from] StoreError),
    /// Something else failed inside.
    #[error("internal error")]
    Internal(String),
}

fn store_detail(e: &StoreError) -> &'static str {
    if e.is_unwritable() {
        "the service cannot store anything just now (its database cannot be written); \
         nothing was changed: retry later"
    } else {
        "internal error"
    }
}

impl From<Refusal> for AppError {
    fn from(refusal: Refusal) -> Self {
        AppError::Refused(refusal)
    }
}

impl From<CancelError> for AppError {
    fn from(e: CancelError) -> Self {
        match e {
            CancelError::Refused(r) => AppError::Refused(r),
            CancelError::Store(s) => AppError::Store(s),
            CancelError::KeyInProgress => AppError::RequestInProgress,
            CancelError::KeyReused => AppError::IdempotencyKeyReused,
        }
    }
}

impl From<RetryError> for AppError {
    fn from(e: RetryError) -> Self {
        match e {
            RetryError::NotFound(id) => AppError::NotFound {
                code: "job-not-found",
                detail: format!("no job with id {id}"),
            },
            e @ RetryError::NotFailed(_) => AppError::Conflict {
                code: "job-not-retryable",
                detail: e.to_string(),
            },
            RetryError::Store(s) => AppError::Store(s),
        }
    }
}

impl From<RunError> for AppError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::UnknownDefinition(name) => AppError::NotFound {
                code: "job-definition-not-found",
                detail: format!("no job definition named {name:?}"),
            },
            RunError::InvalidParameter { name, message } => {
                AppError::Validation(vec![FieldError::new(format!("parameters.{name}"), message)])
            }
            RunError::Store(s) => AppError::Store(s),
        }
    }
}

impl From<RegistryError> for AppError {
    fn from(e: RegistryError) -> Self {
        let field = |name: &str| AppError::Validation(vec![FieldError::new(name, e.to_string())]);
        match &e {
            RegistryError::Invalid(crate::plugins::PluginError::InvalidName { .. }) => {
                field("name")
            }
            RegistryError::SignatureMissing { .. }
            | RegistryError::SignatureUnreadable { .. }
            | RegistryError::SignatureNotTrusted { .. }
            | RegistryError::SignatureOverBytesOnly { .. } => field("X-Plugin-Signature"),
            // The upload's own fault: nothing was stored.
            _ if e.is_refusal() => field("body"),
            RegistryError::UnknownPlugin { .. } => AppError::NotFound {
                code: "plugin-not-found",
                detail: e.to_string(),
            },
            RegistryError::UnknownVersion { .. }
            | RegistryError::BadReference { .. }
            | RegistryError::UntrustedVersion { .. } => field("version"),
            RegistryError::BadGuard { .. } | RegistryError::NothingToRollBackTo { .. } => {
                field("guard")
            }
            RegistryError::NoActiveVersion { .. } => AppError::Conflict {
                code: "no-active-version",
                detail: e.to_string(),
            },
            RegistryError::CompilerBusy => AppError::Unavailable(e.to_string()),
            _ => AppError::Internal(e.to_string()),
        }
    }
}

/// The problem document (RFC 9457) every error answer carries.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// URI naming the problem type: `urn:rescind:problem:{code}`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The HTTP status's reason phrase, e.g. `Conflict`.
    pub title: String,
    /// The HTTP status code of the answer.
    pub status: u16,
    /// What was wrong with this request, in words for people.
    pub detail: String,
    /// The stable error code, e.g. `order-not-cancellable`: program against it,
    /// not against `detail`.
    pub code: String,
    /// For `order-not-cancellable`: the order's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_status: Option<String>,
    /// For `validation-failed`: every invalid field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ProblemField>>,
}

/// One invalid field of a `validation-failed` problem.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    /// Path of the field, e.g. `lines[2].parentLine`.
    pub field: String,
    /// What is wrong with the field and, where it helps, what is expected.
    pub message: String,
}

impl AppError {
    /// The answer's status and API code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::Refused(r) => (
                StatusCode::from_u16(r.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
                r.code(),
            ),
            AppError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::NotFound { code, .. } => (StatusCode::NOT_FOUND, code),
            AppError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            AppError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed-request"),
            AppError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation-failed"),
            AppError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large")
            }
            AppError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type")
            }
            AppError::IdempotencyKeyReused => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused")
            }
            AppError::RequestInProgress => (StatusCode::CONFLICT, "request-in-progress"),
            AppError::RouteNotFound => (StatusCode::NOT_FOUND, "not-found"),
            AppError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed"),
            AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::UriTooLong { .. } => (StatusCode::URI_TOO_LONG, "uri-too-long"),
            AppError::Rejected { status, .. } => (*status, code_of_status(*status)),
            AppError::Store(e) if e.is_unwritable() => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            AppError::Store(_) | AppError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal-error")
            }
        }
    }

    fn problem(&self) -> Problem {
        let (status, code) = self.status_and_code();
        let (order_status, errors) = match self {
            AppError::Refused(Refusal::OrderNotCancellable { status }) => {
                (Some(status.clone()), None)
            }
            AppError::Refused(Refusal::ValidationFailed { errors })
            | AppError::Validation(errors) => {
                (None, Some(errors.iter().map(problem_field).collect()))
            }
            _ => (None, None),
        };
        let detail = match self {
            AppError::Validation(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("urn:rescind:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            order_status,
            errors,
        }
    }
}

/// The code of a refusal known only by its status (see
/// [`AppError::Rejected`]).
fn code_of_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "malformed-request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::URI_TOO_LONG => "uri-too-long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation-failed",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        status if status.is_client_error() => "malformed-request",
        _ => "internal-error",
    }
}

fn problem_field(e: &FieldError) -> ProblemField {
    ProblemField {
        field: e.field.clone(),
        message: e.message.clone(),
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        match &self {
            AppError::Store(e) if e.is_unwritable() => {
                tracing::warn!(error = %e, "the database cannot be written")
            }
            AppError::Store(e) => tracing::error!(error = %e, "store failed"),
            AppError::Internal(e) => tracing::error!(error = %e, "internal failure"),
            _ => tracing::debug!(code = %problem.code, "request refused"),
        }
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(problem)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
