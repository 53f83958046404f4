//! `/v1/orders`: create or replace, read, status reports.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::error::{AppError, Problem};
use super::extract::ApiJson;
use crate::domain::{FieldError, Refusal};
use crate::store::PutOrder;

mod shapes;

use shapes::{OrderBody, OrderView, StatusBody};

/// Creates or replaces an order known to the host.
#[utoipa::path(put, path = "/v1/orders/{orderNumber}", tag = "orders",
    params(("orderNumber" = String, Path, description = "The order's number, as the commerce platform knows it (1 to 100 characters)", example = "SO-1001")),
    request_body(content = OrderBody, example = json!(
        { "businessCode": "B1", "customerNumber": "C-1", "website": "main",
          "status": "Submitted", "orderDate": "2024-09-01", "currency": "EUR",
          "erpOrderNumber": "ERP-1001",
          "lines": [
            {"lineNumber": 1, "sku": "CHAIR", "quantity": 2, "amountMinor": 20000, "taxMinor": 3800},
            {"lineNumber": 2, "sku": "WARRANTY", "quantity": 1, "amountMinor": 1500, "taxMinor": 285, "parentLine": 1},
            {"lineNumber": 3, "sku": "PROMO10", "quantity": 1, "amountMinor": -2000, "taxMinor": -380, "kind": "discount", "appliesTo": [1]}
          ],
          "payments": [{"id": "pay-1", "method": "card", "authorizedMinor": 23205, "depositedMinor": 0}],
          "allocations": [{"lineNumber": 1, "warehouse": "W1", "quantity": 2, "kind": "existing"},
                          {"lineNumber": 2, "warehouse": "W1", "quantity": 1, "kind": "expected"}],
          "approval": {"state": "pending"},
          "tracking": {"channel": "online", "session": "123|abc", "cuid": "09|Z0"} }
    )),
    responses(
        (status = 201, description = "A new order, as stored", body = OrderView),
        (status = 200, description = "An existing order replaced, as stored", body = OrderView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_order(
    State(state): State<AppState>,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<OrderBody>,
) -> Result<(StatusCode, Json<OrderView>), AppError> {
    let order = body.into_order(&number).map_err(AppError::Validation)?;
    let outcome = state.store.put_order(&order).await?;
    let cancellations = state.store.order_cancellation_ids(&number).await?;
    let status = match outcome {
        PutOrder::Created => StatusCode::CREATED,
        PutOrder::Replaced => StatusCode::OK,
    };
    Ok((status, Json(OrderView::new(&order, cancellations))))
}

/// An order with line, allocation, payment and approval states and its
/// cancellations.
#[utoipa::path(get, path = "/v1/orders/{orderNumber}", tag = "orders",
    params(("orderNumber" = String, Path, description = "The order's number, as the commerce platform knows it (1 to 100 characters)", example = "SO-1001")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_order(
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Json<OrderView>, AppError> {
    let (order, cancellations) = find_order(&state, &number).await?;
    Ok(Json(OrderView::new(&order, cancellations)))
}

/// The order and the ids of its cancellations, oldest first, as
/// `GET /v1/orders/{orderNumber}` reads them (the console's order page
/// too); `order-not-found` when there is none.
pub async fn find_order(
    state: &AppState,
    number: &str,
) -> Result<(crate::domain::Order, Vec<String>), AppError> {
    let order = state
        .store
        .order(number)
        .await?
        .ok_or(Refusal::OrderNotFound)?;
    let cancellations = state.store.order_cancellation_ids(number).await?;
    Ok((order, cancellations))
}

/// The ERP reports a new status of the order.
#[utoipa::path(post, path = "/v1/orders/{orderNumber}/status", tag = "orders",
    params(("orderNumber" = String, Path, description = "The order's number, as the commerce platform knows it (1 to 100 characters)", example = "SO-1001")),
    request_body(content = StatusBody, example = json!({"status": "Shipped"})),
    responses(
        (status = 200, description = "Status recorded", body = OrderView),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn report_status(
    State(state): State<AppState>,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<StatusBody>,
) -> Result<Json<OrderView>, AppError> {
    if body.status.trim().is_empty() {
        return Err(AppError::Validation(vec![FieldError::new(
            "status",
            "must not be blank",
        )]));
    }
    if !state.store.set_order_status(&number, &body.status).await? {
        return Err(Refusal::OrderNotFound.into());
    }
    let order = state
        .store
        .order(&number)
        .await?
        .ok_or(Refusal::OrderNotFound)?;
    let cancellations = state.store.order_cancellation_ids(&number).await?;
    Ok(Json(OrderView::new(&order, cancellations)))
}
