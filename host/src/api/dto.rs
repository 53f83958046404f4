//! The JSON shapes of docs/api.md and their mapping to and from the domain and
//! store types. Request bodies deny unknown fields, so that a typo such as
//! `forcedCancle` is an error instead of a silently ignored flag.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::domain::{
    self, Allocation, AllocationKind, AllocationState, Approval, ApprovalState, BankDetailsInput,
    CancelRequest, Channel, Currency, FieldError, ItemRef, Line, LineKind, LineState, Order,
    Payment, Tracking,
};
use crate::plugins;
use crate::store::{
    ApiKey, AppliesTo, AuditActor, AuditLogEntry, CancellationRecord, Committed, Connection, Job,
    JobAttempt, JobDefinition, JobParameter, JobState, RetryPolicy,
};

/// Formats store milliseconds as RFC 3339.
pub fn timestamp(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- orders

/// `PUT /v1/orders/{orderNumber}` body (service, admin): the order as the
/// commerce platform knows it, which the host needs before it can cancel it.
/// Creates the order (`201`) or replaces it (`200`); every invalid field is
/// listed at once in a `422 validation-failed`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderBody {
    /// Optional; when given it must equal the order number in the path.
    pub order_number: Option<String>,
    /// The business (company, store) the order belongs to, handed to plugins: 1
    /// to 100 characters, no control characters, no space at either end.
    pub business_code: String,
    /// The customer who placed the order; a customer key sees and cancels only
    /// orders with its own customer number. 1 to 100 characters, no control
    /// characters, no space at either end.
    pub customer_number: String,
    /// The website the order was placed on; its `allowCancellationRequest`
    /// setting decides whether the customer may cancel it. 1 to 100 characters,
    /// no control characters, no space at either end.
    pub website: String,
    /// The order's status code as the ERP reports it; the order is cancellable
    /// only when a status mapping for this code allows cancellation and its
    /// display status is one of the settings' `cancellableOrderStatuses`. 1 to
    /// 100 characters, no control characters, no space at either end.
    pub status: String,
    /// The date the order was placed, `YYYY-MM-DD`; a cancellation date may not
    /// be before it.
    pub order_date: String,
    /// ISO 4217 code of three upper-case letters (`EUR`); every `…Minor` amount
    /// of the order is in minor units of this currency.
    pub currency: String,
    /// Optional: the ERP's own number for the order, handed to plugins. 1 to
    /// 100 characters, no control characters, no space at either end.
    #[serde(default)]
    pub erp_order_number: Option<String>,
    /// The order lines: at least 1, at most 1,000, line numbers unique.
    pub lines: Vec<LineBody>,
    /// Optional payments (at most 50, ids unique). When there are any, their
    /// `authorizedMinor` adds up exactly to the order total (lines net of
    /// discounts, plus tax); none is fine for an order paid on invoice.
    #[serde(default)]
    pub payments: Vec<PaymentBody>,
    /// Optional: stock held for the lines (at most 5,000), released when their
    /// line is cancelled.
    #[serde(default)]
    pub allocations: Vec<AllocationBody>,
    /// Optional B2B approval request; a pending one is cancelled by a full
    /// cancellation.
    #[serde(default)]
    pub approval: Option<ApprovalBody>,
    /// Optional visitor tracking data, handed to plugins (the personalization
    /// plugin needs it).
    #[serde(default)]
    pub tracking: Option<TrackingBody>,
}

/// What a line is: `product` (the default) or `discount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum LineKindDto {
    /// Goods or a service; amounts zero or positive.
    Product,
    /// A reduction of the lines in `appliesTo`; amounts zero or negative.
    Discount,
}

/// Whether a line is still part of the order: `active` or `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum LineStateDto {
    /// Not cancelled (the default).
    Active,
    /// Cancelled, by this host or before the order arrived.
    Cancelled,
}

/// One order line. Only whole lines are cancelled; related items (`parentLine`)
/// and discounts go with their lines.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineBody {
    /// The line's position number, at least 1 and unique in the order: what a
    /// cancellation names as `orderItemReference`.
    pub line_number: u32,
    /// The article number (stock keeping unit), handed to plugins: 1 to 100
    /// characters, no control characters, no space at either end.
    pub sku: String,
    /// How many units the line holds, at least 1; a cancellation always takes
    /// the whole quantity.
    pub quantity: u32,
    /// Net amount of the whole line (all units, before tax) in minor units of
    /// the order's currency: zero or positive for a product, zero or negative
    /// for a discount. A product's amount net of its discounts may not go below
    /// zero.
    pub amount_minor: i64,
    /// The tax on the whole line in minor units of the order's currency, with
    /// the same sign rule as `amountMinor`. A refund is the cancelled lines'
    /// amounts net of their discounts plus their tax.
    pub tax_minor: i64,
    /// Optional: the product line this related item belongs to (a warranty's
    /// chair). It is cancelled with its parent, recursively; a discount has no
    /// parent and a line cannot be its own ancestor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_line: Option<u32>,
    /// `product` (default) or `discount`.
    #[serde(default)]
    pub kind: Option<LineKindDto>,
    /// A discount's product lines (at least one, each listed once); only a
    /// discount has it. The discount is cancelled when every line it applies to
    /// is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to: Option<Vec<u32>>,
    /// Optional: the ERP's own reference for the line, handed to plugins. 1 to
    /// 100 characters, no control characters, no space at either end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erp_line_ref: Option<String>,
    /// `active` (default) or `cancelled`, for an order that arrives partly
    /// cancelled; a cancelled line's children, and discounts all of whose lines
    /// are cancelled, must be cancelled too.
    #[serde(default)]
    pub state: Option<LineStateDto>,
}

/// One payment of the order. All amounts are in minor units of the order's
/// currency, zero or positive; a cancellation first voids open authorization
/// and refunds from deposits only with `forcedCancelWithRefund`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentBody {
    /// The payment's id, unique in the order: 1 to 100 characters, no control
    /// characters, no space at either end.
    pub id: String,
    /// How it was paid, e.g. `card` or `paypal`: 1 to 100 characters, no
    /// control characters, no space at either end.
    pub method: String,
    /// The amount authorized. `depositedMinor` plus `voidedMinor` may not
    /// exceed it.
    pub authorized_minor: i64,
    /// The amount deposited (captured), default 0. While any deposited money is
    /// not refunded, a cancellation needs `forcedCancel`.
    #[serde(default)]
    pub deposited_minor: i64,
    /// The authorization already released (voided), default 0; cancellations
    /// add to it.
    #[serde(default)]
    pub voided_minor: i64,
    /// The amount already refunded, default 0 and at most `depositedMinor`;
    /// cancellations with `forcedCancelWithRefund` add to it.
    #[serde(default)]
    pub refunded_minor: i64,
}

/// Which stock an allocation holds: `existing` or `expected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AllocationKindDto {
    /// Stock on hand in the warehouse.
    Existing,
    /// Expected (backordered) stock; its backorder is cancelled with the line.
    Expected,
}

/// Whether an allocation still holds stock: `allocated` or `released`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AllocationStateDto {
    /// Held for the line (the default).
    Allocated,
    /// Given back, by a cancellation of the line or before the order arrived.
    Released,
}

/// Stock held for one line in one warehouse. Every held allocation of a
/// cancelled line is released.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllocationBody {
    /// The `lineNumber` of the line the stock is held for; an allocation of a
    /// cancelled line must be `released`.
    pub line_number: u32,
    /// The warehouse holding the stock: 1 to 100 characters, no control
    /// characters, no space at either end.
    pub warehouse: String,
    /// How many units are held, at least 1.
    pub quantity: u32,
    /// `existing` stock on hand or `expected` (backordered) stock.
    pub kind: AllocationKindDto,
    /// `allocated` (default) or `released`.
    #[serde(default)]
    pub state: Option<AllocationStateDto>,
}

/// Where a B2B approval request stands: `pending`, `approved`, `rejected` or
/// `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ApprovalStateDto {
    /// Waiting for an approver; a full cancellation cancels it.
    Pending,
    /// Approved; a cancellation leaves it as it is.
    Approved,
    /// Rejected; a cancellation leaves it as it is.
    Rejected,
    /// Cancelled with the order.
    Cancelled,
}

/// The order's B2B approval request. Only a full cancellation cancels a pending
/// one: after a partial one the rest of the order still awaits approval.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    /// `pending`, `approved`, `rejected` or `cancelled`.
    pub state: ApprovalStateDto,
}

/// Where the order was placed: `online` or `offline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ChannelDto {
    /// On the website, in a visitor session.
    Online,
    /// In a store, by phone or another channel outside the website.
    Offline,
}

/// Visitor tracking data of the order, handed to plugins as it is; the
/// personalization plugin cancels online orders by `session` and `cuid` and
/// offline ones by `offlineChannel`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrackingBody {
    /// `online` or `offline`.
    pub channel: ChannelDto,
    /// Online orders: the visitor session the order was placed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Online orders: the customer user id of the tracking system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuid: Option<String>,
    /// Offline orders: the channel it was placed through (a store, the phone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_channel: Option<String>,
}

impl OrderBody {
    /// Maps the body to a domain order and validates it.
    pub fn into_order(self, number: &str) -> Result<Order, Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Some(n) = &self.order_number
            && n != number
        {
            errors.push(FieldError::new(
                "orderNumber",
                format!("does not match the order number {number:?} of the path"),
            ));
        }
        let order_date = domain::parse_date(&self.order_date).unwrap_or_else(|| {
            errors.push(FieldError::new("orderDate", "expected a date YYYY-MM-DD"));
            time::Date::MIN
        });
        let currency = Currency::parse(&self.currency).unwrap_or_else(|_| {
            errors.push(FieldError::new(
                "currency",
                "expected an ISO 4217 code of three upper-case letters",
            ));
            Currency::parse("XXX").unwrap_or_else(|_| unreachable!("XXX is a currency code"))
        });
        let mut lines = Vec::with_capacity(self.lines.len());
        for (index, line) in self.lines.into_iter().enumerate() {
            let kind = match (line.kind.unwrap_or(LineKindDto::Product), line.applies_to) {
                (LineKindDto::Product, None) => LineKind::Product,
                (LineKindDto::Product, Some(_)) => {
                    errors.push(FieldError::new(
                        format!("lines[{index}].appliesTo"),
                        "only a discount line applies to other lines",
                    ));
                    LineKind::Product
                }
                (LineKindDto::Discount, applies_to) => LineKind::Discount {
                    applies_to: applies_to.unwrap_or_default(),
                },
            };
            lines.push(Line {
                number: line.line_number,
                sku: line.sku,
                quantity: line.quantity,
                amount_minor: line.amount_minor,
                tax_minor: line.tax_minor,
                parent_line: line.parent_line,
                kind,
                state: match line.state {
                    Some(LineStateDto::Cancelled) => LineState::Cancelled,
                    _ => LineState::Active,
                },
                erp_line_ref: line.erp_line_ref,
            });
        }
        let order = Order {
            number: number.to_owned(),
            business_code: self.business_code,
            customer_number: self.customer_number,
            website: self.website,
            status: self.status,
            order_date,
            currency,
            erp_order_number: self.erp_order_number,
            lines,
            payments: self
                .payments
                .into_iter()
                .map(|p| Payment {
                    id: p.id,
                    method: p.method,
                    authorized_minor: p.authorized_minor,
                    deposited_minor: p.deposited_minor,
                    voided_minor: p.voided_minor,
                    refunded_minor: p.refunded_minor,
                })
                .collect(),
            allocations: self
                .allocations
                .into_iter()
                .map(|a| Allocation {
                    line_number: a.line_number,
                    warehouse: a.warehouse,
                    quantity: a.quantity,
                    kind: match a.kind {
                        AllocationKindDto::Existing => AllocationKind::Existing,
                        AllocationKindDto::Expected => AllocationKind::Expected,
                    },
                    state: match a.state {
                        Some(AllocationStateDto::Released) => AllocationState::Released,
                        _ => AllocationState::Allocated,
                    },
                })
                .collect(),
            approval: self.approval.map(|a| Approval {
                state: match a.state {
                    ApprovalStateDto::Pending => ApprovalState::Pending,
                    ApprovalStateDto::Approved => ApprovalState::Approved,
                    ApprovalStateDto::Rejected => ApprovalState::Rejected,
                    ApprovalStateDto::Cancelled => ApprovalState::Cancelled,
                },
            }),
            tracking: self.tracking.map(|t| Tracking {
                channel: match t.channel {
                    ChannelDto::Online => Channel::Online,
                    ChannelDto::Offline => Channel::Offline,
                },
                session: t.session,
                cuid: t.cuid,
                offline_channel: t.offline_channel,
            }),
        };
        if let Err(found) = order.validate() {
            errors.extend(found);
        }
        if errors.is_empty() {
            Ok(order)
        } else {
            Err(errors)
        }
    }
}

/// An order as `GET /v1/orders/{orderNumber}` (service, admin) shows it: as
/// stored, with the state of each line and allocation and what cancellations
/// changed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    /// The order number (the path's).
    pub order_number: String,
    /// The business (company, store) the order belongs to.
    pub business_code: String,
    /// The customer who placed the order.
    pub customer_number: String,
    /// The website the order was placed on.
    pub website: String,
    /// The order's current status code: as last reported by the ERP, or the
    /// settings' `cancelledStatus` once a cancellation left no active line.
    pub status: String,
    /// The date the order was placed, `YYYY-MM-DD`.
    pub order_date: String,
    /// ISO 4217 code; every `…Minor` amount is in minor units of it.
    pub currency: String,
    /// The ERP's own number for the order, or `null`.
    pub erp_order_number: Option<String>,
    /// Every line with its `state` (`active` or `cancelled`).
    pub lines: Vec<LineBody>,
    /// Every payment, with what cancellations voided (`voidedMinor`) and
    /// refunded (`refundedMinor`).
    pub payments: Vec<PaymentBody>,
    /// Every allocation with its `state` (`allocated` or `released`).
    pub allocations: Vec<AllocationBody>,
    /// The B2B approval request and its state, or `null`.
    pub approval: Option<ApprovalBody>,
    /// The visitor tracking data, or `null`.
    pub tracking: Option<TrackingBody>,
    /// Ids of the order's cancellations, oldest first.
    pub cancellations: Vec<String>,
}

impl OrderView {
    /// Renders an order with its cancellation ids.
    pub fn new(order: &Order, cancellations: Vec<String>) -> Self {
        OrderView {
            order_number: order.number.clone(),
            business_code: order.business_code.clone(),
            customer_number: order.customer_number.clone(),
            website: order.website.clone(),
            status: order.status.clone(),
            order_date: crate::store::format_date(order.order_date),
            currency: order.currency.as_str().to_owned(),
            erp_order_number: order.erp_order_number.clone(),
            lines: order
                .lines
                .iter()
                .map(|l| LineBody {
                    line_number: l.number,
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                    amount_minor: l.amount_minor,
                    tax_minor: l.tax_minor,
                    parent_line: l.parent_line,
                    kind: Some(match l.kind {
                        LineKind::Product => LineKindDto::Product,
                        LineKind::Discount { .. } => LineKindDto::Discount,
                    }),
                    applies_to: match &l.kind {
                        LineKind::Product => None,
                        LineKind::Discount { applies_to } => Some(applies_to.clone()),
                    },
                    erp_line_ref: l.erp_line_ref.clone(),
                    state: Some(match l.state {
                        LineState::Active => LineStateDto::Active,
                        LineState::Cancelled => LineStateDto::Cancelled,
                    }),
                })
                .collect(),
            payments: order
                .payments
                .iter()
                .map(|p| PaymentBody {
                    id: p.id.clone(),
                    method: p.method.clone(),
                    authorized_minor: p.authorized_minor,
                    deposited_minor: p.deposited_minor,
                    voided_minor: p.voided_minor,
                    refunded_minor: p.refunded_minor,
                })
                .collect(),
            allocations: order
                .allocations
                .iter()
                .map(|a| AllocationBody {
                    line_number: a.line_number,
                    warehouse: a.warehouse.clone(),
                    quantity: a.quantity,
                    kind: match a.kind {
                        AllocationKind::Existing => AllocationKindDto::Existing,
                        AllocationKind::Expected => AllocationKindDto::Expected,
                    },
                    state: Some(match a.state {
                        AllocationState::Allocated => AllocationStateDto::Allocated,
                        AllocationState::Released => AllocationStateDto::Released,
                    }),
                })
                .collect(),
            approval: order.approval.as_ref().map(|a| ApprovalBody {
                state: match a.state {
                    ApprovalState::Pending => ApprovalStateDto::Pending,
                    ApprovalState::Approved => ApprovalStateDto::Approved,
                    ApprovalState::Rejected => ApprovalStateDto::Rejected,
                    ApprovalState::Cancelled => ApprovalStateDto::Cancelled,
                },
            }),
            tracking: order.tracking.as_ref().map(|t| TrackingBody {
                channel: match t.channel {
                    Channel::Online => ChannelDto::Online,
                    Channel::Offline => ChannelDto::Offline,
                },
                session: t.session.clone(),
                cuid: t.cuid.clone(),
                offline_channel: t.offline_channel.clone(),
            }),
            cancellations,
        }
    }
}

/// `POST /v1/orders/{orderNumber}/status` body (service, admin): the ERP
/// reports a new status; later cancellations are judged by it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// The order's new status code as the ERP reports it (not blank); the
    /// status mappings say whether it may be cancelled.
    pub status: String,
}

// ---------------------------------------------------------- cancellations

/// `POST /v1/orders/{orderNumber}/cancellations` body (a customer for its own
/// orders, service, admin); every field is optional. An empty body cancels the
/// whole order with the caller's default reason (a customer's is
/// `CUSTOMER_CANCELLATION`; staff must give one). A refused request changes
/// nothing.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelBody {
    /// The lines to cancel, each listed once. Absent: the whole order; naming
    /// every active line is a full cancellation too. Related items
    /// (`parentLine`) and discounts whose lines are all cancelled go with them.
    #[serde(default)]
    pub items: Option<Vec<ItemBody>>,
    /// `OUT_OF_STOCK`, `CUSTOMER_CANCELLATION`, `NO_PAYMENT` or
    /// `CUSTOMER_SERVICE`, passed to the ERP. Required from staff
    /// (`invalid-reason`); a customer may only use `CUSTOMER_CANCELLATION`, its
    /// default (`reason-not-allowed`).
    #[serde(default)]
    pub cancellation_reason: Option<String>,
    /// `YYYY-MM-DD`, default today (UTC); not in the future and not before the
    /// order date (`invalid-date`).
    #[serde(default)]
    pub cancellation_date: Option<String>,
    /// Optional invoice reference passed to the ERP: trimmed, then 1 to 100
    /// characters without control characters.
    #[serde(default)]
    pub invoice_reference: Option<String>,
    /// Optional account a refund goes to instead of the original payment method
    /// (`refund.to` is then `bankAccount`); validated and passed to the ERP
    /// whenever given.
    #[serde(default)]
    pub bank_details: Option<BankDetailsBody>,
    /// Default false. Required when the order holds deposited (captured) money
    /// that is not refunded (`forced-cancel-required`); on its own it cancels
    /// without a refund and warns `not-refunded`.
    #[serde(default)]
    pub forced_cancel: Option<bool>,
    /// Default false. With `forcedCancel` (else
    /// `refund-requires-forced-cancel`) and deposited payment (else
    /// `nothing-to-refund`): refund the cancelled share that open
    /// authorizations do not cover.
    #[serde(default)]
    pub forced_cancel_with_refund: Option<bool>,
    /// Staff acting for this user (WebSphere `forUser`), passed to the ERP:
    /// trimmed, then 1 to 100 characters without control characters. A customer
    /// key using it is `403 forbidden`.
    #[serde(default)]
    pub for_user: Option<String>,
}

/// One line to cancel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemBody {
    /// The line's `lineNumber`; an unknown one is `unknown-line`, one listed
    /// twice `duplicate-line`, an already cancelled one
    /// `line-already-cancelled`.
    pub order_item_reference: u32,
    /// Optional; when given it must be the line's whole quantity, as only whole
    /// lines are cancelled (`partial-line-not-supported`).
    #[serde(default)]
    pub quantity: Option<u32>,
}

/// The account a refund goes to. `accountOwner` and `iban` are required; never
/// logged.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BankDetailsBody {
    /// The account holder's name; required.
    #[serde(default)]
    pub account_owner: Option<String>,
    /// The IBAN; required, checked for its country's length and the ISO 13616
    /// mod-97 check digits (`invalid-iban`).
    #[serde(default)]
    pub iban: Option<String>,
    /// The BIC (ISO 9362, 8 or 11 characters; `invalid-bic`), checked when
    /// given; required only for an IBAN from a country outside SEPA
    /// (`bic-required`).
    #[serde(default)]
    pub bic: Option<String>,
}

impl std::fmt::Debug for BankDetailsBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BankDetailsBody { <redacted> }")
    }
}

impl From<CancelBody> for CancelRequest {
    fn from(body: CancelBody) -> Self {
        CancelRequest {
            items: body.items.map(|items| {
                items
                    .into_iter()
                    .map(|i| ItemRef {
                        order_item_reference: i.order_item_reference,
                        quantity: i.quantity,
                    })
                    .collect()
            }),
            reason: body.cancellation_reason,
            date: body.cancellation_date,
            invoice_reference: body.invoice_reference,
            bank_details: body.bank_details.map(|b| BankDetailsInput {
                account_owner: b.account_owner,
                iban: b.iban,
                bic: b.bic,
            }),
            forced_cancel: body.forced_cancel.unwrap_or(false),
            forced_cancel_with_refund: body.forced_cancel_with_refund.unwrap_or(false),
            for_user: body.for_user,
        }
    }
}

/// The refund a cancellation triggered: the cancelled lines' amounts net of
/// their discounts, plus their tax, less what open authorizations covered;
/// never more than was deposited.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    /// The amount refunded, in minor units of `currency`.
    pub amount_minor: i64,
    /// The order's ISO 4217 currency code.
    pub currency: String,
    /// `original` (back to the payment method) or `bankAccount` (to the
    /// request's `bankDetails`).
    pub to: String,
}

/// An allocation a cancellation released.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleasedAllocationView {
    /// The cancelled line it held stock for.
    pub line_number: u32,
    /// The warehouse that held the stock.
    pub warehouse: String,
    /// How many units were released.
    pub quantity: u32,
    /// `existing` stock on hand, or `expected` (backordered) stock whose
    /// backorder is cancelled.
    pub kind: String,
}

/// Something the caller should know about a committed cancellation; the
/// cancellation is committed all the same.
#[derive(Debug, Serialize, ToSchema)]
pub struct WarningView {
    /// A stable code:
    /// - `not-refunded`: captured money of the cancelled share stays
    ///   captured (`forcedCancel` without `forcedCancelWithRefund`);
    /// - `refund-not-needed`: a refund was asked for, but everything was
    ///   voided from open authorizations;
    /// - `not-communicated-to-erp`: no ERP will hear of this cancellation:
    ///   no job definition is enabled, or none of the enabled ones applies
    ///   to a full cancellation (all have `appliesTo: "partial"`);
    /// - `partial-not-communicated-to-erp`: this partial cancellation
    ///   reaches no ERP because every enabled job definition has
    ///   `appliesTo: "full"` (its ERP cancels whole orders only); those ERPs
    ///   hear of the order when a cancellation ends it.
    pub code: String,
    /// The warning in words, for people; program against `code`.
    pub message: String,
}

/// A job as a cancellation shows it. A customer-role caller sees each
/// job's `definition` and `state` only: `attempts`, `erpReference` and
/// `lastError` are `null` for it (what a plugin or an ERP wrote is for
/// staff).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancellationJobView {
    /// The job's id (`GET /v1/admin/jobs/{id}` for staff).
    pub id: String,
    /// The name of the job definition the job belongs to: which ERP it tells.
    pub definition: String,
    /// `queued`, `running`, `succeeded`, `retrying` or `failed`.
    pub state: String,
    /// Attempts started so far; `null` for a customer.
    pub attempts: Option<u32>,
    /// The ERP's reference once accepted, as the plugin returned it: at
    /// most 4 KiB (longer is cut with a marker), the connection's secrets
    /// redacted; `null` for a customer.
    pub erp_reference: Option<String>,
    /// Last failure; what the plugin said in it is bounded and redacted
    /// like `erpReference`; `null` for a customer.
    pub last_error: Option<String>,
}

/// How much of a cancellation's jobs a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobDetail {
    /// Everything (staff: admin and service keys).
    Full,
    /// Definition and state only (customers): nothing a plugin or an ERP
    /// wrote.
    StateOnly,
}

/// Where telling the ERPs about a cancellation stands. The jobs are committed
/// in the same transaction as the cancellation and delivered at least once,
/// with the cancellation's stable request id as idempotency key.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErpSyncView {
    /// `not-configured` (no job: no enabled job definition applies to this
    /// cancellation, and `warnings` says why), otherwise the jobs' aggregate:
    /// `succeeded` when every job has, `failed` when any has, else `retrying`,
    /// `running` or `queued`.
    pub state: String,
    /// The jobs: one per enabled job definition that applies to this
    /// cancellation (see a definition's `appliesTo`).
    pub jobs: Vec<CancellationJobView>,
}

/// A cancellation: the `201` answer of `POST
/// /v1/orders/{orderNumber}/cancellations` (an idempotent replay answers it
/// again with the jobs as committed) and of `GET
/// /v1/cancellations/{internalRequestId}` (with each job's current state). A
/// customer sees only its own customer's cancellations.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancellationView {
    /// The cancellation's id (`Location:
    /// /v1/cancellations/{internalRequestId}`).
    pub internal_request_id: String,
    /// The order cancelled.
    pub order_number: String,
    /// True when no active line is left, so the order is cancelled: a
    /// whole-order request, or a partial one that took its last active lines.
    /// Job definitions' `appliesTo` is judged by it.
    pub full: bool,
    /// The line numbers this cancellation cancelled, related items and
    /// discounts that cascaded included.
    pub cancelled_lines: Vec<u32>,
    /// The order's status after the cancellation: the settings'
    /// `cancelledStatus` when `full`, otherwise unchanged.
    pub order_status: String,
    /// Authorised but not captured money released (voided) for the cancelled
    /// share, in minor units of the order's currency.
    pub voided_minor: i64,
    /// The refund, when `forcedCancelWithRefund` made one; otherwise `null`.
    pub refund: Option<RefundView>,
    /// Every allocation of a cancelled line that this cancellation released.
    pub released_allocations: Vec<ReleasedAllocationView>,
    /// Whether a pending B2B approval request was cancelled (only a full
    /// cancellation does that).
    pub approval_cancelled: bool,
    /// Where telling the ERPs stands: one job per enabled job definition that
    /// applies to this cancellation.
    pub erp_sync: ErpSyncView,
    /// What the caller should know, each with a stable `code`; empty when there
    /// is nothing.
    pub warnings: Vec<WarningView>,
    /// The reason applied: the request's, or `CUSTOMER_CANCELLATION` by default
    /// for a customer.
    pub cancellation_reason: String,
    /// The cancellation date applied, `YYYY-MM-DD`: the request's, or the day
    /// (UTC) it was committed.
    pub cancellation_date: String,
    /// When it was committed (RFC 3339, UTC).
    pub created_at: String,
}

/// The aggregate ERP state of a cancellation's jobs.
fn erp_state(record: &CancellationRecord, jobs: &[Job]) -> &'static str {
    if jobs.is_empty() {
        return if record.erp_configured {
            "queued"
        } else {
            "not-configured"
        };
    }
    let any = |s: JobState| jobs.iter().any(|j| j.state == s);
    if jobs.iter().all(|j| j.state == JobState::Succeeded) {
        "succeeded"
    } else if any(JobState::Failed) {
        "failed"
    } else if any(JobState::Retrying) {
        "retrying"
    } else if any(JobState::Running) {
        "running"
    } else {
        "queued"
    }
}

impl CancellationView {
    /// Renders a cancellation with its jobs. `as_committed` shows the jobs
    /// as they were at commit (queued), for idempotent replays of the first
    /// answer. `detail` is what the caller may see of the jobs.
    pub fn new(committed: &Committed, as_committed: bool, detail: JobDetail) -> Self {
        let record = &committed.record;
        let jobs: Vec<Job> = committed
            .jobs
            .iter()
            .map(|j| {
                if as_committed {
                    Job {
                        state: JobState::Queued,
                        attempts: 0,
                        erp_reference: None,
                        last_error: None,
                        ..j.clone()
                    }
                } else {
                    j.clone()
                }
            })
            .collect();
        CancellationView {
            internal_request_id: record.id.clone(),
            order_number: record.order_number.clone(),
            full: record.full,
            cancelled_lines: record.cancelled_lines.clone(),
            order_status: record.order_status.clone(),
            voided_minor: record.voided_minor,
            refund: record.refund.as_ref().map(|r| RefundView {
                amount_minor: r.amount_minor,
                currency: r.currency.clone(),
                to: r.to.as_str().to_owned(),
            }),
            released_allocations: record
                .released_allocations
                .iter()
                .map(|a| ReleasedAllocationView {
                    line_number: a.line_number,
                    warehouse: a.warehouse.clone(),
                    quantity: a.quantity,
                    kind: crate::store::StoredName::name(a.kind).to_owned(),
                })
                .collect(),
            approval_cancelled: record.approval_cancelled,
            erp_sync: ErpSyncView {
                state: erp_state(record, &jobs).to_owned(),
                jobs: jobs
                    .iter()
                    .map(|j| CancellationJobView {
                        id: j.id.clone(),
                        definition: j.definition.clone(),
                        state: j.state.as_str().to_owned(),
                        attempts: (detail == JobDetail::Full).then_some(j.attempts),
                        erp_reference: j
                            .erp_reference
                            .clone()
                            .filter(|_| detail == JobDetail::Full),
                        last_error: j.last_error.clone().filter(|_| detail == JobDetail::Full),
                    })
                    .collect(),
            },
            warnings: record
                .warnings
                .iter()
                .map(|w| WarningView {
                    code: w.code.clone(),
                    message: w.message.clone(),
                })
                .collect(),
            cancellation_reason: record.reason.code().to_owned(),
            cancellation_date: record.date.clone(),
            created_at: timestamp(record.created_at_ms),
        }
    }
}

// ---------------------------------------------------------- administration

/// `POST /v1/admin/api-keys` body (admin): a new API key. Every invalid field
/// is listed at once in a `422 validation-failed`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyBody {
    /// What to call the key (`storefront`, `ci`): 1 to 100 characters.
    /// Required; names need not be unique (a rotated key may keep its name).
    #[serde(default)]
    #[schema(required = true, nullable = false)]
    pub name: Option<String>,
    /// `admin` (everything), `service` (orders, cancellations for any customer,
    /// jobs) or `customer` (its own orders' cancellations only).
    pub role: String,
    /// The customer a `customer` key is bound to (1 to 100 characters, as an
    /// order's customer number): required for customer keys, refused for the
    /// others.
    #[serde(default)]
    pub customer_number: Option<String>,
    /// RFC 3339 time from which the key is refused (`401`); `null` or
    /// absent: never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A new API key (admin). The token is in this answer only: the host keeps its
/// SHA-256 and its first characters, never the token.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    /// The key's id (what `DELETE /v1/admin/api-keys/{id}` takes).
    pub id: String,
    /// What the key is called, as sent.
    pub name: String,
    /// The bearer token (`Authorization: Bearer …`): shown once, never again.
    pub token: String,
    /// `admin`, `service` or `customer`.
    pub role: String,
    /// Bound customer (customer keys), else `null`.
    pub customer_number: Option<String>,
    /// When the key stops working (RFC 3339, UTC), or `null` for never.
    pub expires_at: Option<String>,
}

/// A key as `GET /v1/admin/api-keys` (admin) lists it, oldest first: never its
/// token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeySummaryView {
    /// The key's id (what `DELETE /v1/admin/api-keys/{id}` takes).
    pub id: String,
    /// What the key is called; names need not be unique.
    pub name: String,
    /// `admin`, `service` or `customer`.
    pub role: String,
    /// Bound customer (customer keys), else `null`.
    pub customer_number: Option<String>,
    /// The token's first characters, to recognise it (`rsk_3f2a…`); `null`
    /// for keys made before prefixes were kept.
    pub token_prefix: Option<String>,
    /// Who created it: `admin token`, `key "NAME" (ID)` or `command line`.
    pub created_by: String,
    /// When the key was made (RFC 3339, UTC).
    pub created_at: String,
    /// When it last authenticated a request (RFC 3339, UTC), written at most
    /// once a minute per key, so accurate to within a minute; `null` if never.
    pub last_used_at: Option<String>,
    /// When the key stops working (RFC 3339, UTC), or `null` for never.
    pub expires_at: Option<String>,
}

impl From<&ApiKey> for ApiKeySummaryView {
    fn from(key: &ApiKey) -> Self {
        ApiKeySummaryView {
            id: key.id.clone(),
            name: key.name.clone(),
            role: key.role.as_str().to_owned(),
            customer_number: key.customer_number.clone(),
            token_prefix: key.token_prefix.as_deref().map(crate::keys::shown_prefix),
            created_by: key.created_by.clone(),
            created_at: timestamp(key.created_at_ms),
            last_used_at: key.last_used_at_ms.map(timestamp),
            expires_at: key.expires_at_ms.map(timestamp),
        }
    }
}

/// One admin write of the audit log (`GET /v1/admin/audit`, admin):
/// configuration, keys, plugin uploads and activations, job runs and retries.
/// Refused requests and reads are not recorded.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryView {
    /// The entry's position in the log; pass the last one of a page as
    /// `before` for the next page.
    pub id: i64,
    /// When the write was made (RFC 3339, UTC).
    pub at: String,
    /// Who made it: `admin-token` (the host's `RESCIND_ADMIN_TOKEN`), `api-key`
    /// (see `keyId` and `keyName`), `command-line`, or `plugins-folder` (a
    /// file put in the host's watched plugins folder).
    pub actor: String,
    /// The API key's id when `actor` is `api-key`, else `null`.
    pub key_id: Option<String>,
    /// The API key's name at the time when `actor` is `api-key`, else `null`.
    pub key_name: Option<String>,
    /// The HTTP method (`CLI` for the command line).
    pub method: String,
    /// The request's path (no query), or the command.
    pub path: String,
    /// The answer's status (`0` for the command line).
    pub status: u16,
    /// What changed, in a few words (at most 1,000 characters); names of
    /// secrets, never their values.
    pub summary: String,
    /// The request's `x-request-id`, to find it in the logs.
    pub request_id: Option<String>,
}

impl From<&AuditLogEntry> for AuditEntryView {
    fn from(entry: &AuditLogEntry) -> Self {
        let write = &entry.write;
        let (actor, key_id, key_name) = match &write.actor {
            AuditActor::AdminToken => ("admin-token", None, None),
            AuditActor::ApiKey { id, name } => ("api-key", Some(id.clone()), Some(name.clone())),
            AuditActor::CommandLine => ("command-line", None, None),
            AuditActor::PluginsFolder => ("plugins-folder", None, None),
        };
        AuditEntryView {
            id: entry.id,
            at: timestamp(entry.at_ms),
            actor: actor.to_owned(),
            key_id,
            key_name,
            method: write.method.clone(),
            path: write.path.clone(),
            status: write.status,
            summary: write.summary.clone(),
            request_id: write.request_id.clone(),
        }
    }
}

/// One entry of the order status mapping (`GET | PUT
/// /v1/admin/status-mappings`, admin; `PUT` replaces the whole list). An order
/// whose status code has no mapping cannot be cancelled.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusMappingDto {
    /// The status code orders carry in `status`, as the ERP reports it; not
    /// blank, unique in the list.
    pub erp_code: String,
    /// The display status the code maps to (not blank); the settings'
    /// `cancellableOrderStatuses` lists display statuses.
    pub status: String,
    /// Whether orders with this code may be cancelled; it takes this and a
    /// display status in `cancellableOrderStatuses`.
    pub allow_cancellation: bool,
}

/// The cancel settings (`GET | PUT /v1/admin/settings`, admin). A fresh host
/// has `["Submitted"]` and `Cancelled`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsDto {
    /// Display statuses in which an order may be cancelled, when its status
    /// mapping also allows cancellation; none blank or repeated.
    pub cancellable_order_statuses: Vec<String>,
    /// The status code a cancellation that leaves no active line gives the
    /// order (`X` for WebSphere); not blank, and not itself cancellable by the
    /// mappings and statuses.
    pub cancelled_status: String,
}

/// What `POST /v1/admin/presets/{preset}` (admin) applied: the preset replaces
/// the status mappings and the settings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresetView {
    /// The preset applied: `insite` or `websphere`.
    pub preset: String,
    /// The status mappings now in force.
    pub status_mappings: Vec<StatusMappingDto>,
    /// The settings now in force.
    pub settings: SettingsDto,
}

/// One website's settings (`GET | PUT /v1/admin/websites/{website}`, admin). A
/// website never configured refuses customers' cancellations, and its `GET` is
/// `404 website-not-found`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebsiteDto {
    /// Whether customers may cancel their own orders placed on this website;
    /// when false, their requests are `403 cancellation-not-allowed`. Staff may
    /// always cancel.
    pub allow_cancellation_request: bool,
}

/// `PUT /v1/admin/connections/{name}` body (admin): an ERP connection, what a
/// plugin reaches and with which settings and secrets. An entry the plugin
/// runtime would refuse is `422 validation-failed` naming it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionBody {
    /// ERP base URL (`http://` or `https://`), without credentials: those
    /// go in `secrets`.
    pub base_url: String,
    /// What the plugin may reach: `host`, `host:port` or
    /// `scheme://host[:port]` (`*.` may start a host). Without a scheme an
    /// entry means https, except a loopback IP literal (`127.0.0.1:9000`),
    /// which also allows plain http. Refused: `*`, port 0, user info, a
    /// path, cloud metadata endpoints (169.254.169.254,
    /// `metadata.google.internal`, …), unspecified, multicast and broadcast
    /// addresses.
    pub allowed_hosts: Vec<String>,
    /// Whether the allowed host names may resolve to loopback, private,
    /// link-local or carrier-grade NAT addresses (an ERP behind the company
    /// firewall). Without it, such an address is reached only when listed in
    /// `allowedHosts` as an IP. Cloud metadata addresses stay unreachable.
    #[serde(default)]
    pub allow_private_network: bool,
    /// Certificate authorities (PEM, one or more) the plugin's TLS trusts
    /// for this connection besides the public web roots, for an ERP whose
    /// certificate comes from a private CA.
    #[serde(default)]
    pub ca_certificates: Option<String>,
    /// Plain string settings the plugin reads by key (keys not blank), e.g.
    /// `businessCode`; `timeoutMs` bounds each request's waits for plugins
    /// built with the SDK. Shown by `GET`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Secret string values the plugin reads by key (keys not blank):
    /// write-only, never returned or logged, redacted from plugin logs and
    /// messages. Absent keeps the stored ones; `{}` removes them.
    #[serde(default)]
    pub secrets: Option<BTreeMap<String, String>>,
}

impl std::fmt::Debug for ConnectionBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionBody")
            .field("base_url", &self.base_url)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allow_private_network", &self.allow_private_network)
            .field("ca_certificates", &self.ca_certificates.is_some())
            .field("settings", &self.settings)
            .field(
                "secrets",
                &self.secrets.as_ref().map(|s| s.keys().collect::<Vec<_>>()),
            )
            .finish()
    }
}

impl ConnectionBody {
    /// Checks the fields with the parsers the plugin runtime enforces, so
    /// that a connection the API accepts is one the runtime can use.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Err(error) = plugins::check_base_url(&self.base_url) {
            errors.push(FieldError::new("baseUrl", error.to_string()));
        }
        if let Err(refused) = plugins::AllowedHosts::parse_each(&self.allowed_hosts) {
            for (i, error) in refused {
                errors.push(FieldError::new(
                    format!("allowedHosts[{i}]"),
                    error.to_string(),
                ));
            }
        }
        if let Some(pem) = &self.ca_certificates
            && let Err(error) = plugins::parse_ca_certificates(pem)
        {
            errors.push(FieldError::new("caCertificates", error.to_string()));
        }
        for key in self
            .settings
            .keys()
            .chain(self.secrets.iter().flat_map(|s| s.keys()))
        {
            if key.trim().is_empty() {
                errors.push(FieldError::new("settings", "keys must not be blank"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The connection to store under `name` (secrets as sent, or none).
    pub fn into_connection(self, name: &str) -> Connection {
        Connection {
            name: name.to_owned(),
            base_url: self.base_url,
            allowed_hosts: self.allowed_hosts,
            allow_private_network: self.allow_private_network,
            ca_certificates: self.ca_certificates,
            settings: self.settings,
            secrets: self.secrets.unwrap_or_default(),
        }
    }
}

/// A connection as `GET | PUT /v1/admin/connections/{name}` (admin) shows it:
/// its secrets by name only.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    /// The connection's name (the path's), which job definitions name in
    /// `connection`.
    pub name: String,
    /// The ERP's base URL, without credentials; plugins build their URLs from
    /// it.
    pub base_url: String,
    /// What the plugin may reach: `host`, `host:port` or `scheme://host[:port]`
    /// entries, `*.` allowed at the start of a host.
    pub allowed_hosts: Vec<String>,
    /// Whether allowed host names may resolve to loopback, private, link-local
    /// or carrier-grade NAT addresses.
    pub allow_private_network: bool,
    /// Extra certificate authorities (PEM) the plugin's TLS trusts for this
    /// connection, or `null`.
    pub ca_certificates: Option<String>,
    /// The plain settings, keys and values.
    pub settings: BTreeMap<String, String>,
    /// The names of the stored secrets (never their values).
    pub secrets: Vec<String>,
}

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        ConnectionView {
            name: c.name.clone(),
            base_url: c.base_url.clone(),
            allowed_hosts: c.allowed_hosts.clone(),
            allow_private_network: c.allow_private_network,
            ca_certificates: c.ca_certificates.clone(),
            settings: c.settings.clone(),
            secrets: c.secrets.keys().cloned().collect(),
        }
    }
}

/// A parameter a job of the definition carries, handed to the plugin. Each job
/// of a cancellation gets `OrderNumber` set to its order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobParameterDto {
    /// The parameter's name, e.g. `OrderNumber`: not blank, unique in the
    /// definition.
    pub name: String,
    /// Its value type, default `String`.
    #[serde(default = "string_type")]
    pub value_type: String,
    /// The value used when a run does not give one, default empty.
    #[serde(default)]
    pub default_value: String,
    /// What a person running the definition by hand is asked, e.g. `Order
    /// Number`; default empty.
    #[serde(default)]
    pub prompt: String,
}

fn string_type() -> String {
    "String".to_owned()
}

/// How a job retries a transient failure (a `transient` answer, a trap, the
/// deadline, the memory cap): after attempt n it waits a random time up to
/// `min(maxBackoffMs, initialBackoffMs × 2^(n−1))` (full jitter), until
/// `maxAttempts`. Default `{"maxAttempts": 8, "initialBackoffMs": 1000,
/// "maxBackoffMs": 300000}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryDto {
    /// Attempts per round, 1 to 100, the first included; when they are spent
    /// the job is `failed`, and a retry through the API gives it a new round.
    pub max_attempts: u32,
    /// The ceiling of the wait after the first failed attempt, in milliseconds;
    /// at most 86,400,000 (one day). It doubles after each further failure.
    pub initial_backoff_ms: u64,
    /// The largest ceiling of a wait, in milliseconds: at least
    /// `initialBackoffMs`, at most 86,400,000 (one day).
    pub max_backoff_ms: u64,
}

/// A job definition (`GET | PUT /v1/admin/job-definitions/{name}`, admin): it
/// tells one ERP about cancellations through one plugin. Every committed
/// cancellation makes one job per enabled definition that applies to it, in the
/// same transaction.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobDefinitionDto {
    /// The definition's name (recommended `OrderCancel`): in answers; when sent
    /// it must equal the path's.
    #[serde(default)]
    pub name: Option<String>,
    /// `Execution`, the only type.
    pub job_type: String,
    /// The name of an existing connection: the ERP the plugin reaches, with its
    /// settings and secrets (`422 validation-failed` when unknown).
    pub connection: String,
    /// Not supported yet: `null` or absent.
    #[serde(default)]
    pub preprocessor: Option<String>,
    /// The plugin that tells the ERP: `name` (its active version at each
    /// attempt) or `name@sha256:…` (that version, pinned). An unknown plugin is
    /// `422 validation-failed`.
    pub integration_processor: String,
    /// Not supported yet: `null` or absent.
    #[serde(default)]
    pub post_processor: Option<String>,
    /// The parameters its jobs carry, names unique; default none.
    #[serde(default)]
    pub parameters: Vec<JobParameterDto>,
    /// How its jobs retry transient failures; absent: 8 attempts, backoff from
    /// 1,000 ms up to 300,000 ms. Answers always show the policy in force.
    #[serde(default)]
    pub retry: Option<RetryDto>,
    /// Default true. A disabled definition makes no jobs; with none enabled a
    /// cancellation warns `not-communicated-to-erp`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Which cancellations make a job of this definition (checked by
    /// [`JobDefinitionDto::into_definition`], so that an unknown value is a
    /// `validation-failed` naming the field).
    #[serde(default)]
    #[schema(schema_with = applies_to_schema)]
    pub applies_to: Option<String>,
}

fn yes() -> bool {
    true
}

/// `appliesTo`: a string with the values of [`AppliesTo`].
fn applies_to_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(AppliesTo::ALL.map(AppliesTo::as_str)))
        .default(Some(serde_json::json!(AppliesTo::default().as_str())))
        .description(Some(
            "Which cancellations make a job of this definition: `any` (default) every one; \
             `full` only a cancellation that leaves no active line (the whole order, or the \
             partial cancellation of its last active lines); `partial` only one that leaves \
             some line active. Bind an integration processor whose ERP cancels whole orders \
             only (websphere, personalization) with `full`. A cancellation the definition does \
             not apply to makes no job of it; a manual run whose order's newest cancellation it \
             does not apply to is refused. Any other value is `validation-failed`.",
        ))
        .build()
}

/// Largest backoff ceiling accepted: one day.
const MAX_BACKOFF_MS: u64 = 86_400_000;

impl JobDefinitionDto {
    /// Maps the body to a definition, checking fields (whether the
    /// connection and the plugin exist is checked by the handler).
    pub fn into_definition(self, name: &str) -> Result<JobDefinition, Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Some(n) = &self.name
            && n != name
        {
            errors.push(FieldError::new("name", "does not match the path"));
        }
        if self.job_type != "Execution" {
            errors.push(FieldError::new(
                "jobType",
                "only \"Execution\" is supported",
            ));
        }
        if self.connection.trim().is_empty() {
            errors.push(FieldError::new("connection", "must not be blank"));
        }
        if self.integration_processor.trim().is_empty() {
            errors.push(FieldError::new("integrationProcessor", "must not be blank"));
        } else if let Err(e) =
            crate::plugins::registry::parse_reference(&self.integration_processor)
        {
            errors.push(FieldError::new("integrationProcessor", e.to_string()));
        }
        if self.preprocessor.is_some() {
            errors.push(FieldError::new(
                "preprocessor",
                "preprocessors are not supported yet: use null",
            ));
        }
        if self.post_processor.is_some() {
            errors.push(FieldError::new(
                "postProcessor",
                "post-processors are not supported yet: use null",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, p) in self.parameters.iter().enumerate() {
            if p.name.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("parameters[{i}].name"),
                    "must not be blank",
                ));
            } else if !seen.insert(p.name.clone()) {
                errors.push(FieldError::new(
                    format!("parameters[{i}].name"),
                    "used twice",
                ));
            }
        }
        let applies_to = match self.applies_to.as_deref() {
            None => AppliesTo::default(),
            Some(raw) => AppliesTo::parse(raw).unwrap_or_else(|| {
                errors.push(FieldError::new(
                    "appliesTo",
                    format!("{raw:?} is not one of \"any\", \"full\", \"partial\""),
                ));
                AppliesTo::default()
            }),
        };
        let retry = match self.retry {
            None => RetryPolicy::default(),
            Some(r) => {
                if !(1..=100).contains(&r.max_attempts) {
                    errors.push(FieldError::new("retry.maxAttempts", "must be 1 to 100"));
                }
                if r.initial_backoff_ms > MAX_BACKOFF_MS {
                    errors.push(FieldError::new("retry.initialBackoffMs", "at most one day"));
                }
                if r.max_backoff_ms > MAX_BACKOFF_MS {
                    errors.push(FieldError::new("retry.maxBackoffMs", "at most one day"));
                }
                if r.max_backoff_ms < r.initial_backoff_ms {
                    errors.push(FieldError::new(
                        "retry.maxBackoffMs",
                        "must be at least initialBackoffMs",
                    ));
                }
                RetryPolicy {
                    max_attempts: r.max_attempts,
                    initial_backoff_ms: r.initial_backoff_ms,
                    max_backoff_ms: r.max_backoff_ms,
                }
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(JobDefinition {
            name: name.to_owned(),
            job_type: self.job_type,
            connection: self.connection,
            preprocessor: None,
            integration_processor: self.integration_processor,
            post_processor: None,
            parameters: self
                .parameters
                .into_iter()
                .map(|p| JobParameter {
                    name: p.name,
                    value_type: p.value_type,
                    default_value: p.default_value,
                    prompt: p.prompt,
                })
                .collect(),
            retry,
            enabled: self.enabled,
            applies_to,
        })
    }
}

impl From<&JobDefinition> for JobDefinitionDto {
    fn from(d: &JobDefinition) -> Self {
        JobDefinitionDto {
            name: Some(d.name.clone()),
            job_type: d.job_type.clone(),
            connection: d.connection.clone(),
            preprocessor: d.preprocessor.clone(),
            integration_processor: d.integration_processor.clone(),
            post_processor: d.post_processor.clone(),
            parameters: d
                .parameters
                .iter()
                .map(|p| JobParameterDto {
                    name: p.name.clone(),
                    value_type: p.value_type.clone(),
                    default_value: p.default_value.clone(),
                    prompt: p.prompt.clone(),
                })
                .collect(),
            retry: Some(RetryDto {
                max_attempts: d.retry.max_attempts,
                initial_backoff_ms: d.retry.initial_backoff_ms,
                max_backoff_ms: d.retry.max_backoff_ms,
            }),
            enabled: d.enabled,
            applies_to: Some(d.applies_to.as_str().to_owned()),
        }
    }
}

/// `POST /v1/admin/job-definitions/{name}/runs` body (service, admin): run a
/// definition by hand, submitting an order's newest cancellation again.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// Parameter values by name, e.g. `{"OrderNumber": "SO-1001"}`, over the
    /// definition's defaults. `OrderNumber` is required and must name an order
    /// with a cancellation the definition's `appliesTo` includes; a name the
    /// definition does not have is `422 validation-failed`.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// A line a plugin logged or printed during an attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogLineView {
    /// `trace`, `debug`, `info`, `warn` or `error`; printed lines are `info`
    /// (stdout) or `warn` (stderr).
    pub level: String,
    /// The line, at most 1 KiB, with the connection's secrets redacted. An
    /// attempt keeps at most 200 lines and 32 KiB; a last line says how many
    /// were dropped.
    pub message: String,
}

/// One attempt of a job: one run of the plugin.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// The attempt's number, from 1, counted across retry rounds.
    pub number: u32,
    /// The job worker that ran it, e.g. `worker-3f2a9c1b-1` (host instance and
    /// worker).
    pub worker: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended (RFC 3339, UTC), or `null` while it runs.
    pub ended_at: Option<String>,
    /// `accepted`, `rejected`, `transient`, `misconfigured`, `trapped`,
    /// `deadline-exceeded`, `memory-cap-exceeded`, `unknown-processor` (no such
    /// plugin, or none active), `lease-expired` (its worker died) or
    /// `interrupted` (the host stopped); `null` while it runs.
    pub outcome: Option<String>,
    /// Message: the plugin's own text is at most 4 KiB (longer is cut with
    /// a marker), the connection's secrets redacted.
    pub message: Option<String>,
    /// ERP reference, bounded and redacted like `message`.
    pub erp_reference: Option<String>,
    /// The plugin version (`sha256:…`) that ran it, or `null` when none could
    /// be loaded.
    pub plugin_version: Option<String>,
    /// The plugin's log lines in order, bounded and redacted.
    pub log: Vec<LogLineView>,
}

impl From<&JobAttempt> for AttemptView {
    fn from(a: &JobAttempt) -> Self {
        AttemptView {
            number: a.number,
            worker: a.worker.clone(),
            started_at: timestamp(a.started_at_ms),
            ended_at: a.ended_at_ms.map(timestamp),
            outcome: a.outcome.clone(),
            message: a.message.clone(),
            erp_reference: a.erp_reference.clone(),
            plugin_version: a.plugin_version.clone(),
            log: a
                .log
                .iter()
                .map(|l| LogLineView {
                    level: l.level.clone(),
                    message: l.message.clone(),
                })
                .collect(),
        }
    }
}

/// A job (service, admin): the delivery of one cancellation to one ERP through
/// one job definition. States: `queued` → `running` → `succeeded`, or
/// `retrying` (→ `running` …) → `failed`; `rejected` and `misconfigured`
/// answers fail it at once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// The job's id.
    pub id: String,
    /// The name of its job definition.
    pub definition: String,
    /// The order whose cancellation it delivers.
    pub order_number: String,
    /// The `internalRequestId` of the cancellation it delivers, or `null`.
    pub cancellation_id: Option<String>,
    /// The idempotency key the ERP receives, the same for every attempt, so an
    /// ERP that honours it sees each cancellation once.
    pub request_id: String,
    /// The parameter values it runs with, e.g. `{"OrderNumber": "SO-1001"}`.
    pub parameters: BTreeMap<String, String>,
    /// `queued`, `running`, `succeeded`, `retrying` or `failed`.
    pub state: String,
    /// Attempts started so far, over every round.
    pub attempts: u32,
    /// Attempts allowed per round, from the definition's retry policy.
    pub max_attempts: u32,
    /// When a `queued` or `retrying` job is due (RFC 3339, UTC); `null` in
    /// other states.
    pub next_run_at: Option<String>,
    /// The ERP's reference once accepted, as the plugin returned it: at
    /// most 4 KiB (longer is cut with a marker), the connection's secrets
    /// redacted.
    pub erp_reference: Option<String>,
    /// Last failure; what the plugin said in it is bounded and redacted
    /// like `erpReference`.
    pub last_error: Option<String>,
    /// When it was made (RFC 3339, UTC), with its cancellation or by a run.
    pub created_at: String,
    /// When its state last changed (RFC 3339, UTC).
    pub updated_at: String,
    /// Every attempt with outcome and plugin log (job detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_history: Option<Vec<AttemptView>>,
}

impl JobView {
    /// Renders a job, with its attempts when given.
    pub fn new(job: &Job, attempts: Option<&[JobAttempt]>) -> Self {
        JobView {
            id: job.id.clone(),
            definition: job.definition.clone(),
            order_number: job.order_number.clone(),
            cancellation_id: job.cancellation_id.clone(),
            request_id: job.request_id.clone(),
            parameters: job.parameters.clone(),
            state: job.state.as_str().to_owned(),
            attempts: job.attempts,
            max_attempts: job.retry.max_attempts,
            next_run_at: matches!(job.state, JobState::Queued | JobState::Retrying)
                .then(|| timestamp(job.run_at_ms)),
            erp_reference: job.erp_reference.clone(),
            last_error: job.last_error.clone(),
            created_at: timestamp(job.created_at_ms),
            updated_at: timestamp(job.updated_at_ms),
            attempt_history: attempts.map(|a| a.iter().map(AttemptView::from).collect()),
        }
    }
}
