//! Request extractors whose every rejection is an [`AppError`], so that a
//! bad body, a wrong content type or an oversized request still gets a
//! problem+json answer with its API code.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::AppError;
use crate::domain::Requester;
use crate::store::{AuditActor, Role};

/// Largest request body accepted (docs/api.md `payload-too-large`).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON object body: `Content-Type: application/json` (or `…+json`)
/// required; bad JSON, another kind of JSON value, wrong types and unknown
/// fields are `malformed-request`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// A JSON array body, each element a `T`; otherwise as [`ApiJson`].
#[derive(Debug)]
pub struct ApiJsonList<T>(pub Vec<T>);

/// The raw body of a JSON request, for handlers that also need its bytes
/// (idempotency digests). An empty body is allowed and reads as `{}`.
#[derive(Debug)]
pub struct OptionalJsonBody(pub Bytes);

fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, AppError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(e)
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                AppError::PayloadTooLarge { limit: BODY_LIMIT }
            }
            other => AppError::Malformed(format!("cannot read the request body: {other}")),
        })
}

/// Parses a body that must be a JSON object. (serde would also read a
/// struct from an array, field by field in order: `[]` would pass as `{}`.)
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        // Not JSON at all says so; JSON of another kind is told what it
        // must be.
        parse_json::<serde::de::IgnoredAny>(bytes)?;
        return Err(AppError::Malformed(
            "the body must be a JSON object ({…})".to_owned(),
        ));
    }
    parse_json(bytes)
}

/// Parses JSON, naming the place of the problem.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "the body does not match the expected fields",
            _ => "the body is not valid JSON",
        };
        AppError::Malformed(format!("{what}: {e}"))
    })
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if !is_json(content_type.as_deref()) {
            return Err(AppError::UnsupportedMediaType(format!(
                "expected Content-Type: application/json, got {}",
                content_type.as_deref().unwrap_or("none")
            )));
        }
        let bytes = body_bytes(req, state).await?;
        Ok(ApiJson(parse_json_object(&bytes)?))
    }
}

impl<S, T> FromRequest<S> for ApiJsonList<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if !is_json(content_type.as_deref()) {
            return Err(AppError::UnsupportedMediaType(format!(
                "expected Content-Type: application/json, got {}",
                content_type.as_deref().unwrap_or("none")
            )));
        }
        let bytes = body_bytes(req, state).await?;
        Ok(ApiJsonList(parse_json(&bytes)?))
    }
}

impl<S> FromRequest<S> for OptionalJsonBody
where
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(Bytes::from_static(b"{}")));
        }
        if !is_json(content_type.as_deref()) {
            return Err(AppError::UnsupportedMediaType(format!(
                "expected Content-Type: application/json, got {}",
                content_type.as_deref().unwrap_or("none")
            )));
        }
        Ok(OptionalJsonBody(bytes))
    }
}

/// The authenticated caller of an HTTP request, as the route guard
/// (`routes.rs`) found it before the handler ran. The cancel rules see it
/// as a [`Requester`] ([`Caller::requester`]); the audit log records it as
/// its `audit_actor`.
#[derive(Debug, Clone)]
pub struct Caller {
    /// What the caller's key may do; the route table admits or refuses the
    /// caller by it.
    pub role: Role,
    /// The customer a customer key is bound to; `None` for staff.
    pub customer_number: Option<String>,
    /// Hex SHA-256 of the token: scopes idempotency keys per caller.
    pub idempotency_scope: String,
    /// Who the caller is, as the audit log and the plugin registry record
    /// it.
    pub audit_actor: AuditActor,
}

impl Caller {
    /// The caller as the domain's cancel rules judge it.
    pub fn requester(&self) -> Requester {
        match self.role {
            Role::Admin => Requester::Admin,
            Role::Service => Requester::Service,
            Role::Customer => Requester::Customer {
                customer_number: self.customer_number.clone().unwrap_or_default(),
            },
        }
    }

    /// Authenticates a request's bearer token: `unauthenticated` when there
    /// is none, or it is unknown, revoked or expired.
    pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, AppError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(AppError::Unauthenticated)?;
        let key = state.auth.authenticate(&state.store, token).await?;
        key.ok_or(AppError::Unauthenticated)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = AppError;

    /// The caller the route guard authenticated, taken from the request
    /// (a handler asks for it once). A route whose table entry is public
    /// has none: a handler of such a route asking for one is a bug of the
    /// route table.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.remove::<Caller>().ok_or_else(|| {
            AppError::Internal(format!(
                "{} {} asks for a caller but its route is public",
                parts.method,
                parts.uri.path()
            ))
        })
    }
}
