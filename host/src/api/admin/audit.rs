//! `GET /v1/admin/audit`: the admin writes, newest first, a page at a time.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::shapes::AuditEntryView;
use crate::api::AppState;
use crate::api::error::{AppError, Problem};
use crate::domain::FieldError;

/// Entries in a page unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 100;
/// Most entries one page holds.
const MAX_PAGE: u32 = 1000;

/// The audit log of admin writes, newest first.
///
/// Paged with `?limit=…&before=<id>`: when a page is full, the `Link`
/// header names the next one (`rel="next"`: the entries before this page's
/// last).
#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin",
    params(
        ("limit" = Option<u32>, Query, description = "At most this many (default 100, at most 1000)"),
        ("before" = Option<i64>, Query, description = "Only entries older than this id (the last id of the previous page)"),
    ),
    responses(
        (status = 200, description = "Entries, newest first", body = Vec<AuditEntryView>,
         headers(("Link" = String, description = "`<…?limit=N&before=ID>; rel=\"next\"` when there may be more"))),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_audit(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query.map_err(|e| AppError::Malformed(e.body_text()))?;
    let mut errors = Vec::new();
    let mut limit = DEFAULT_PAGE;
    let mut before = None;
    for (key, value) in &query {
        match key.as_str() {
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => limit = n,
                _ => errors.push(FieldError::new("limit", "expected 1 to 1000")),
            },
            "before" => match value.parse::<i64>() {
                Ok(id) if id > 0 => before = Some(id),
                _ => errors.push(FieldError::new(
                    "before",
                    "expected the id of an entry (a positive integer)",
                )),
            },
            other => errors.push(FieldError::new(
                other,
                "unknown query parameter (use limit, before)",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let entries = state.store.audit_log(before, limit).await?;
    let next = entries
        .last()
        .filter(|_| entries.len() == limit as usize)
        .map(|last| {
            format!(
                "</v1/admin/audit?limit={limit}&before={}>; rel=\"next\"",
                last.id
            )
        });
    let mut response =
        Json(entries.iter().map(AuditEntryView::from).collect::<Vec<_>>()).into_response();
    if let Some(link) = next.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}
