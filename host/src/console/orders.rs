//! Orders: find one by its number or a customer's by the customer number;
//! an order with its lines as a tree, payments, allocations, approval and
//! cancellations; the cancel form for customer service.
//!
//! The form is turned into the JSON body of
//! `POST /v1/orders/{orderNumber}/cancellations` and submitted through the
//! same function that route calls ([`crate::api::submit_cancellation`]):
//! the rules judge it there, and their refusal is shown next to the field
//! it concerns.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::pages::{self, Chrome, csrf_field};
use super::{Operator, csrf_refused, internal, link, role_refused};
use crate::api::{AppError, AppState, CancellationView};
use crate::domain::{
    AllocationKind, AllocationState, ApprovalState, CancellationReason, Line, LineKind, LineState,
    Order, Refusal,
};
use crate::store::OrderSummary;

/// Most orders a customer search lists.
const ORDERS_LISTED: u32 = 100;

/// The API route the cancel form stands for.
const CANCEL_ROUTE: &str = "/v1/orders/{orderNumber}/cancellations";

/// `GET /console/orders`: the search form; `?number=` opens that order,
/// `?customer=` lists the customer's orders.
pub async fn find(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let chrome = Chrome::of(&operator);
    let number = query.get("number").map(|n| n.trim()).unwrap_or("");
    let customer = query.get("customer").map(|c| c.trim()).unwrap_or("");
    if !number.is_empty() {
        return match state.store.order(number).await {
            Ok(Some(_)) => Redirect::to(&link("/console/orders/", number)).into_response(),
            Ok(None) => (
                StatusCode::NOT_FOUND,
                search_page(
                    &chrome,
                    number,
                    customer,
                    None,
                    Some(("number", format!("There is no order {number}."))),
                ),
            )
                .into_response(),
            Err(error) => internal(&error),
        };
    }
    if customer.is_empty() {
        return search_page(&chrome, "", "", None, None).into_response();
    }
    match state
        .store
        .orders_of_customer(customer, ORDERS_LISTED)
        .await
    {
        Ok(orders) if orders.is_empty() => (
            StatusCode::NOT_FOUND,
            search_page(
                &chrome,
                "",
                customer,
                None,
                Some(("customer", format!("Customer {customer} has no orders."))),
            ),
        )
            .into_response(),
        Ok(orders) => search_page(&chrome, "", customer, Some(&orders), None).into_response(),
        Err(error) => internal(&error),
    }
}

/// `GET /console/orders/{number}`.
pub async fn order_page(
    State(state): State<AppState>,
    operator: Operator,
    Path(number): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let notice = query
        .get("cancelled")
        .map(|id| format!("Cancellation {id} committed."));
    render_order(
        &state,
        &operator,
        &number,
        StatusCode::OK,
        &CancelForm::default(),
        &Refusals::default(),
        notice.as_deref(),
    )
    .await
}

/// The cancel form as posted. Every field is text, as a browser sends it;
/// checkboxes are present only when ticked.
#[derive(Debug, Default, Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    csrf: String,
    /// `order` (the whole order) or `lines` (those ticked).
    #[serde(default)]
    scope: String,
    /// The ticked lines, comma-joined by [`parse_form`].
    #[serde(skip)]
    lines: Vec<String>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    invoice: String,
    #[serde(default, rename = "forUser")]
    for_user: String,
    #[serde(default)]
    forced: Option<String>,
    #[serde(default, rename = "forcedRefund")]
    forced_refund: Option<String>,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    iban: String,
    #[serde(default)]
    bic: String,
}

/// Reads the posted form: repeated `line` fields are the ticked lines.
fn parse_form(body: &[u8]) -> CancelForm {
    let mut lines = Vec::new();
    let mut rest = Vec::new();
    for (name, value) in form_urlencoded::parse(body) {
        if name == "line" {
            lines.push(value.into_owned());
        } else {
            rest.push((name.into_owned(), value.into_owned()));
        }
    }
    let fields: serde_json::Map<String, serde_json::Value> = rest
        .into_iter()
        .map(|(name, value)| (name, serde_json::Value::String(value)))
        .collect();
    let mut form: CancelForm =
        serde_json::from_value(serde_json::Value::Object(fields)).unwrap_or_default();
    form.lines = lines;
    form
}

/// What the rules refused, by the form field it concerns (`None`: the
/// form as a whole).
#[derive(Debug, Default)]
pub struct Refusals(BTreeMap<Option<&'static str>, Vec<String>>);

impl Refusals {
    fn add(&mut self, field: Option<&'static str>, message: impl Into<String>) {
        self.0.entry(field).or_default().push(message.into());
    }

    fn of(&self, field: &'static str) -> Option<String> {
        self.0.get(&Some(field)).map(|m| m.join(" "))
    }

    fn general(&self) -> Option<String> {
        self.0.get(&None).map(|m| m.join(" "))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The form field a field of the cancel body is entered in.
fn form_field(api_field: &str) -> Option<&'static str> {
    Some(match api_field {
        f if f.starts_with("items") => "lines",
        "cancellationReason" => "reason",
        "cancellationDate" => "date",
        "invoiceReference" => "invoice",
        "forUser" => "forUser",
        "forcedCancel" => "forced",
        "forcedCancelWithRefund" => "forcedRefund",
        "bankDetails.accountOwner" => "owner",
        "bankDetails.iban" => "iban",
        "bankDetails.bic" => "bic",
        f if f.starts_with("bankDetails") => "owner",
        _ => return None,
    })
}

/// The refusal of the cancel rules (or the API's validation), each message
/// by the form field its code or field names.
fn refusals_of(error: &AppError) -> Refusals {
    let mut refusals = Refusals::default();
    let text = error.to_string();
    match error {
        AppError::Refused(refusal) => match refusal {
            Refusal::ValidationFailed { errors } => {
                for e in errors {
                    refusals.add(form_field(&e.field), format!("{}: {}", e.field, e.message));
                }
            }
            other => {
                let field = match other.code() {
                    "forced-cancel-required" => Some("forced"),
                    "refund-requires-forced-cancel" | "nothing-to-refund" => Some("forcedRefund"),
                    "line-already-cancelled"
                    | "unknown-line"
                    | "duplicate-line"
                    | "partial-line-not-supported" => Some("lines"),
                    "invalid-reason" | "reason-not-allowed" => Some("reason"),
                    "invalid-date" => Some("date"),
                    "invalid-iban" => Some("iban"),
                    "invalid-bic" | "bic-required" => Some("bic"),
                    _ => None,
                };
                refusals.add(field, sentence(&text));
            }
        },
        AppError::Validation(errors) => {
            for e in errors {
                refusals.add(form_field(&e.field), format!("{}: {}", e.field, e.message));
            }
        }
        other => refusals.add(None, sentence(&other.to_string())),
    }
    refusals
}

/// The API's words for a refusal, as a sentence (its field names kept as
/// they are).
fn sentence(text: &str) -> String {
    if text.ends_with('.') {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

/// The cancel body the form stands for: empty fields left out.
fn cancel_body(form: &CancelForm) -> Result<serde_json::Value, Refusals> {
    let mut refusals = Refusals::default();
    let mut body = serde_json::Map::new();
    let text = |value: &str| {
        Some(value.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    match form.scope.as_str() {
        "order" => {}
        "lines" => {
            let mut items = Vec::new();
            for line in &form.lines {
                match line.parse::<u32>() {
                    Ok(n) => items.push(serde_json::json!({"orderItemReference": n})),
                    Err(_) => {
                        refusals.add(Some("lines"), format!("{line:?} is not a line number."))
                    }
                }
            }
            if form.lines.is_empty() {
                refusals.add(
                    Some("lines"),
                    "Tick the lines to cancel, or choose to cancel the whole order.",
                );
            }
            body.insert("items".to_owned(), serde_json::Value::Array(items));
        }
        _ => refusals.add(
            Some("scope"),
            "Choose whether to cancel the whole order or the lines ticked.",
        ),
    }
    if let Some(reason) = text(&form.reason) {
        body.insert("cancellationReason".to_owned(), reason.into());
    }
    if let Some(date) = text(&form.date) {
        body.insert("cancellationDate".to_owned(), date.into());
    }
    if let Some(invoice) = text(&form.invoice) {
        body.insert("invoiceReference".to_owned(), invoice.into());
    }
    if let Some(for_user) = text(&form.for_user) {
        body.insert("forUser".to_owned(), for_user.into());
    }
    body.insert("forcedCancel".to_owned(), form.forced.is_some().into());
    body.insert(
        "forcedCancelWithRefund".to_owned(),
        form.forced_refund.is_some().into(),
    );
    let (owner, iban, bic) = (text(&form.owner), text(&form.iban), text(&form.bic));
    if owner.is_some() || iban.is_some() || bic.is_some() {
        body.insert(
            "bankDetails".to_owned(),
            serde_json::json!({"accountOwner": owner, "iban": iban, "bic": bic}),
        );
    }
    if refusals.is_empty() {
        Ok(serde_json::Value::Object(body))
    } else {
        Err(refusals)
    }
}

/// `POST /console/orders/{number}/cancel`: the cancel form, submitted as
/// `POST /v1/orders/{orderNumber}/cancellations` is.
pub async fn cancel(
    State(state): State<AppState>,
    operator: Operator,
    Path(number): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form = parse_form(&body);
    if !operator.sent_csrf(&form.csrf) {
        return csrf_refused();
    }
    if !operator.may(&Method::POST, CANCEL_ROUTE) {
        return role_refused(&operator, "cancel orders");
    }
    let (status, refusals) = match cancel_body(&form) {
        Err(refusals) => (StatusCode::UNPROCESSABLE_ENTITY, refusals),
        Ok(json) => {
            let bytes = serde_json::to_vec(&json).unwrap_or_default();
            match crate::api::submit_cancellation(
                &state,
                &operator.caller,
                &number,
                &HeaderMap::new(),
                &bytes,
            )
            .await
            {
                Ok((committed, _)) => {
                    return Redirect::to(&format!(
                        "{}?cancelled={}",
                        link("/console/orders/", &number),
                        committed.record.id
                    ))
                    .into_response();
                }
                Err(error) => {
                    let (status, _) = error.status_and_code();
                    if status == StatusCode::INTERNAL_SERVER_ERROR {
                        return internal(&error);
                    }
                    (status, refusals_of(&error))
                }
            }
        }
    };
    render_order(&state, &operator, &number, status, &form, &refusals, None).await
}

/// The order page, with the form as sent and its refusals when there are.
async fn render_order(
    state: &AppState,
    operator: &Operator,
    number: &str,
    status: StatusCode,
    form: &CancelForm,
    refusals: &Refusals,
    notice: Option<&str>,
) -> Response {
    let (order, ids) = match crate::api::find_order(state, number).await {
        Ok(found) => found,
        Err(AppError::Refused(Refusal::OrderNotFound)) => {
            return pages::error_page(
                StatusCode::NOT_FOUND,
                &format!("There is no order {number}."),
            );
        }
        Err(error) => return internal(&error),
    };
    let detail = crate::api::job_detail(&operator.caller);
    let mut cancellations = Vec::with_capacity(ids.len());
    for id in &ids {
        match state.store.cancellation(id).await {
            Ok(Some(committed)) => {
                cancellations.push(CancellationView::new(&committed, false, detail));
            }
            Ok(None) => {}
            Err(error) => return internal(&error),
        }
    }
    let may_cancel = operator.may(&Method::POST, CANCEL_ROUTE);
    (
        status,
        order_markup(
            &Chrome::of(operator),
            &order,
            &cancellations,
            may_cancel.then_some((form, refusals)),
            notice,
        ),
    )
        .into_response()
}

fn search_page(
    chrome: &Chrome,
    number: &str,
    customer: &str,
    orders: Option<&[OrderSummary]>,
    error: Option<(&str, String)>,
) -> axum::response::Html<String> {
    let error_for = |field: &str| {
        error
            .as_ref()
            .filter(|(f, _)| *f == field)
            .map(|(_, m)| m.clone())
    };
    pages::page(
        "Orders",
        Some(chrome),
        "orders",
        html! {
            h1 { "Orders" }
            form method="get" action="/console/orders" class="filters" {
                (text_field("number", "Order number", number, error_for("number").as_deref(), ""))
                (text_field("customer", "Customer number", customer, error_for("customer").as_deref(), ""))
                button type="submit" { "Find" }
            }
            @if let Some(orders) = orders {
                table id="orders" {
                    caption { "Orders of customer " (customer) ", newest first, at most " (ORDERS_LISTED) }
                    thead { tr {
                        th scope="col" { "Order" }
                        th scope="col" { "Date" }
                        th scope="col" { "Status" }
                        th scope="col" { "Website" }
                    } }
                    tbody {
                        @for o in orders {
                            tr {
                                td { a href=(link("/console/orders/", &o.number)) { (o.number) } }
                                td { (o.order_date) }
                                td { (o.status) }
                                td { (o.website) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A labelled text field, its error (if any) next to it and tied to it.
fn text_field(name: &str, label: &str, value: &str, error: Option<&str>, kind: &str) -> Markup {
    let error_id = format!("{name}-error");
    let kind = if kind.is_empty() { "text" } else { kind };
    html! {
        div class="field" {
            label for=(name) { (label) }
            input id=(name) name=(name) type=(kind) value=(value)
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| error_id.as_str())];
            @if let Some(error) = error {
                p id=(error_id) class="error" role="alert" { (error) }
            }
        }
    }
}

fn line_state(line: &Line) -> &'static str {
    match line.state {
        LineState::Active => "active",
        LineState::Cancelled => "cancelled",
    }
}

/// The lines as a tree: each product with its children (`parentLine`) and
/// the discounts that apply to it beneath; a discount applying to several
/// products sits under the first of them.
fn line_tree(order: &Order) -> (Vec<u32>, BTreeMap<u32, Vec<u32>>) {
    let known: BTreeSet<u32> = order.lines.iter().map(|l| l.number).collect();
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut roots = Vec::new();
    let mut lines: Vec<&Line> = order.lines.iter().collect();
    lines.sort_by_key(|l| l.number);
    for line in lines {
        let under = match (&line.kind, line.parent_line) {
            (_, Some(parent)) if known.contains(&parent) && parent != line.number => Some(parent),
            (LineKind::Discount { applies_to }, _) => applies_to
                .iter()
                .copied()
                .find(|n| known.contains(n) && *n != line.number),
            _ => None,
        };
        match under {
            Some(parent) => children.entry(parent).or_default().push(line.number),
            None => roots.push(line.number),
        }
    }
    (roots, children)
}

fn describe(line: &Line) -> Markup {
    html! {
        span class="line-no" { "Line " (line.number) } ": "
        code { (line.sku) } " × " (line.quantity) ", "
        (line.amount_minor) " + tax " (line.tax_minor)
        @if let LineKind::Discount { applies_to } = &line.kind {
            " (discount on "
            @for (i, n) in applies_to.iter().enumerate() {
                @if i > 0 { ", " }
                "line " (n)
            }
            ")"
        }
        " " span class={ "line-state " (line_state(line)) } { (line_state(line)) }
    }
}

/// One line and those beneath it; with `pick`, a checkbox for each active
/// line (the cancel form's). `seen` guards against a cycle.
fn tree_item(
    order: &Order,
    number: u32,
    children: &BTreeMap<u32, Vec<u32>>,
    pick: Option<&BTreeSet<String>>,
    seen: &mut BTreeSet<u32>,
) -> Markup {
    if !seen.insert(number) {
        return html! {};
    }
    let Some(line) = order.lines.iter().find(|l| l.number == number) else {
        return html! {};
    };
    let below: Vec<Markup> = children
        .get(&number)
        .map(|c| {
            c.iter()
                .map(|n| tree_item(order, *n, children, pick, seen))
                .collect()
        })
        .unwrap_or_default();
    let id = format!("line-{number}");
    html! {
        li data-line=(number) {
            @match pick {
                Some(ticked) if line.state == LineState::Active => {
                    input type="checkbox" id=(id) name="line" value=(number)
                        checked[ticked.contains(&number.to_string())];
                    " " label for=(id) { (describe(line)) }
                }
                _ => { (describe(line)) }
            }
            @if !below.is_empty() {
                ul { @for item in below { (item) } }
            }
        }
    }
}

fn tree(order: &Order, pick: Option<&BTreeSet<String>>) -> Markup {
    let (roots, children) = line_tree(order);
    let mut seen = BTreeSet::new();
    html! {
        ul class="tree" {
            @for n in roots { (tree_item(order, n, &children, pick, &mut seen)) }
        }
    }
}

fn approval_state(state: ApprovalState) -> &'static str {
    match state {
        ApprovalState::Pending => "pending",
        ApprovalState::Approved => "approved",
        ApprovalState::Rejected => "rejected",
        ApprovalState::Cancelled => "cancelled",
    }
}

/// An error paragraph for `field`, and the attributes that tie the field
/// to it.
fn error_of(refusals: &Refusals, field: &'static str) -> Option<(String, String)> {
    refusals
        .of(field)
        .map(|message| (format!("{field}-error"), message))
}

fn cancel_form(order: &Order, chrome: &Chrome, form: &CancelForm, refusals: &Refusals) -> Markup {
    let ticked: BTreeSet<String> = form.lines.iter().cloned().collect();
    let scope = if form.scope.is_empty() {
        "lines"
    } else {
        form.scope.as_str()
    };
    let lines_error = error_of(refusals, "lines");
    let scope_error = error_of(refusals, "scope");
    let reason_error = error_of(refusals, "reason");
    let forced_error = error_of(refusals, "forced");
    let refund_error = error_of(refusals, "forcedRefund");
    let err = |e: &Option<(String, String)>| e.as_ref().map(|(id, _)| id.clone());
    let show = |e: &Option<(String, String)>| {
        html! {
            @if let Some((id, message)) = e {
                p id=(id) class="error" role="alert" { (message) }
            }
        }
    };
    html! {
        section aria-labelledby="cancel-heading" {
            h2 id="cancel-heading" { "Cancel" }
            @if let Some(general) = refusals.general() {
                p id="cancel-error" class="error" role="alert" { (general) }
            }
            form method="post" action={ (link("/console/orders/", &order.number)) "/cancel" } class="stack" id="cancel-form" {
                (csrf_field(&chrome.csrf))
                fieldset aria-describedby=[err(&scope_error)] {
                    legend { "What to cancel" }
                    div {
                        input type="radio" id="scope-lines" name="scope" value="lines" checked[scope == "lines"];
                        " " label for="scope-lines" { "The lines ticked below" }
                    }
                    div {
                        input type="radio" id="scope-order" name="scope" value="order" checked[scope == "order"];
                        " " label for="scope-order" { "The whole order" }
                    }
                    (show(&scope_error))
                }
                fieldset id="lines" aria-describedby=[err(&lines_error)] {
                    legend { "Lines to cancel (related lines and discounts follow their products)" }
                    (tree(order, Some(&ticked)))
                    (show(&lines_error))
                }
                div class="field" {
                    label for="reason" { "Reason" }
                    select id="reason" name="reason"
                        aria-invalid=[reason_error.as_ref().map(|_| "true")]
                        aria-describedby=[err(&reason_error)] {
                        option value="" selected[form.reason.is_empty()] { "Choose a reason" }
                        @for r in CancellationReason::ALL {
                            option value=(r.code()) selected[form.reason == r.code()] { (r.code()) }
                        }
                    }
                    (show(&reason_error))
                }
                (text_field("date", "Cancellation date (default today)", &form.date, refusals.of("date").as_deref(), "date"))
                (text_field("invoice", "Invoice reference (optional)", &form.invoice, refusals.of("invoice").as_deref(), ""))
                (text_field("forUser", "Acting for user (optional)", &form.for_user, refusals.of("forUser").as_deref(), ""))
                fieldset {
                    legend { "Deposited payment" }
                    div {
                        input type="checkbox" id="forced" name="forced" value="true" checked[form.forced.is_some()]
                            aria-invalid=[forced_error.as_ref().map(|_| "true")]
                            aria-describedby=[err(&forced_error)];
                        " " label for="forced" { "Forced cancel (cancel although money was captured)" }
                        (show(&forced_error))
                    }
                    div {
                        input type="checkbox" id="forcedRefund" name="forcedRefund" value="true" checked[form.forced_refund.is_some()]
                            aria-invalid=[refund_error.as_ref().map(|_| "true")]
                            aria-describedby=[err(&refund_error)];
                        " " label for="forcedRefund" { "Refund the captured share (with forced cancel)" }
                        (show(&refund_error))
                    }
                }
                fieldset {
                    legend { "Refund to a bank account (optional)" }
                    (text_field("owner", "Account owner", &form.owner, refusals.of("owner").as_deref(), ""))
                    (text_field("iban", "IBAN", &form.iban, refusals.of("iban").as_deref(), ""))
                    (text_field("bic", "BIC", &form.bic, refusals.of("bic").as_deref(), ""))
                }
                button type="submit" { "Cancel the chosen lines" }
            }
        }
    }
}

fn order_markup(
    chrome: &Chrome,
    order: &Order,
    cancellations: &[CancellationView],
    form: Option<(&CancelForm, &Refusals)>,
    notice: Option<&str>,
) -> axum::response::Html<String> {
    pages::page(
        &format!("Order {}", order.number),
        Some(chrome),
        "orders",
        html! {
            h1 { "Order " (order.number) }
            @if let Some(notice) = notice { p class="notice" role="status" { (notice) } }
            dl class="pairs" {
                dt { "Status" } dd id="order-status" { (order.status) }
                dt { "Customer" } dd { a href={ "/console/orders?customer=" (percent_encoding::utf8_percent_encode(&order.customer_number, percent_encoding::NON_ALPHANUMERIC)) } { (order.customer_number) } }
                dt { "Business" } dd { (order.business_code) }
                dt { "Website" } dd { (order.website) }
                dt { "Order date" } dd { (crate::store::format_date(order.order_date)) }
                dt { "ERP order number" } dd { (order.erp_order_number.as_deref().unwrap_or("none")) }
                dt { "Approval" } dd { (order.approval.as_ref().map(|a| approval_state(a.state)).unwrap_or("none")) }
            }
            section aria-labelledby="lines-heading" {
                h2 id="lines-heading" { "Lines" }
                p { "Amounts in minor units of " (order.currency.as_str()) "." }
                (tree(order, None))
            }
            section aria-labelledby="payments-heading" {
                h2 id="payments-heading" { "Payments" }
                @if order.payments.is_empty() { p { "No payments." } } @else {
                    table id="payments" {
                        caption { "In minor units of " (order.currency.as_str()) }
                        thead { tr {
                            th scope="col" { "Payment" } th scope="col" { "Method" }
                            th scope="col" class="num" { "Authorized" } th scope="col" class="num" { "Deposited" }
                            th scope="col" class="num" { "Voided" } th scope="col" class="num" { "Refunded" }
                        } }
                        tbody { @for p in &order.payments { tr {
                            th scope="row" { (p.id) } td { (p.method) }
                            td class="num" { (p.authorized_minor) } td class="num" { (p.deposited_minor) }
                            td class="num" { (p.voided_minor) } td class="num" { (p.refunded_minor) }
                        } } }
                    }
                }
            }
            section aria-labelledby="allocations-heading" {
                h2 id="allocations-heading" { "Allocations" }
                @if order.allocations.is_empty() { p { "No allocations." } } @else {
                    table id="allocations" {
                        caption { "Stock held for the lines" }
                        thead { tr {
                            th scope="col" { "Line" } th scope="col" { "Warehouse" }
                            th scope="col" class="num" { "Quantity" } th scope="col" { "Kind" } th scope="col" { "State" }
                        } }
                        tbody { @for a in &order.allocations { tr {
                            td { (a.line_number) } td { (a.warehouse) } td class="num" { (a.quantity) }
                            td { (match a.kind { AllocationKind::Existing => "existing", AllocationKind::Expected => "expected" }) }
                            td { (match a.state { AllocationState::Allocated => "allocated", AllocationState::Released => "released" }) }
                        } } }
                    }
                }
            }
            section aria-labelledby="cancellations-heading" {
                h2 id="cancellations-heading" { "Cancellations" }
                @if cancellations.is_empty() { p { "No cancellations." } }
                @for c in cancellations {
                    section class="cancellation" id={ "cancellation-" (c.internal_request_id) } aria-labelledby={ "c-" (c.internal_request_id) } {
                        h3 id={ "c-" (c.internal_request_id) } { "Cancellation " code { (c.internal_request_id) } }
                        dl class="pairs" {
                            dt { "Created" } dd { (c.created_at) }
                            dt { "Lines" } dd class="cancelled-lines" {
                                @if c.full { "the whole order: " }
                                @for (i, n) in c.cancelled_lines.iter().enumerate() { @if i > 0 { ", " } (n) }
                            }
                            dt { "Reason" } dd { (c.cancellation_reason) }
                            dt { "Date" } dd { (c.cancellation_date) }
                            dt { "Order status after" } dd { (c.order_status) }
                            dt { "Voided" } dd { (c.voided_minor) }
                            @if let Some(refund) = &c.refund {
                                dt { "Refund" } dd { (refund.amount_minor) " " (refund.currency) " to " (refund.to) }
                            }
                            dt { "ERP" } dd { (c.erp_sync.state) }
                        }
                        @if !c.warnings.is_empty() {
                            ul class="warnings" { @for w in &c.warnings { li { code { (w.code) } ": " (w.message) } } }
                        }
                        @if !c.erp_sync.jobs.is_empty() {
                            table class="cancellation-jobs" {
                                caption { "Its jobs" }
                                thead { tr { th scope="col" { "Job" } th scope="col" { "Definition" } th scope="col" { "State" } } }
                                tbody { @for j in &c.erp_sync.jobs { tr {
                                    td { a href={ "/console/jobs/" (j.id) } { code { (j.id) } } }
                                    td { (j.definition) }
                                    td { span class="state" data-job-id=(j.id) data-state=(j.state) aria-live="polite" { (j.state) } }
                                } } }
                            }
                        }
                    }
                }
            }
            @if let Some((form, refusals)) = form {
                (cancel_form(order, chrome, form, refusals))
            }
        },
    )
}
