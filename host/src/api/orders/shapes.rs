//! The JSON shapes of `/v1/orders`: the order a client sends, the order it
//! reads back, and a status report. Request bodies deny unknown fields, so
//! that a typo is an error instead of a silently ignored field.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{
    self, Allocation, AllocationKind, AllocationState, Approval, ApprovalState, Channel, Currency,
    FieldError, Line, LineKind, LineState, Order, Payment, Tracking,
};

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
#[schema(as = LineKindDto)]
pub enum LineKindBody {
    /// Goods or a service; amounts zero or positive.
    Product,
    /// A reduction of the lines in `appliesTo`; amounts zero or negative.
    Discount,
}

/// Whether a line is still part of the order: `active` or `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LineStateDto)]
pub enum LineStateBody {
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
    pub kind: Option<LineKindBody>,
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
    pub state: Option<LineStateBody>,
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
#[schema(as = AllocationKindDto)]
pub enum AllocationKindBody {
    /// Stock on hand in the warehouse.
    Existing,
    /// Expected (backordered) stock; its backorder is cancelled with the line.
    Expected,
}

/// Whether an allocation still holds stock: `allocated` or `released`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AllocationStateDto)]
pub enum AllocationStateBody {
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
    pub kind: AllocationKindBody,
    /// `allocated` (default) or `released`.
    #[serde(default)]
    pub state: Option<AllocationStateBody>,
}

/// Where a B2B approval request stands: `pending`, `approved`, `rejected` or
/// `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApprovalStateDto)]
pub enum ApprovalStateBody {
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
    pub state: ApprovalStateBody,
}

/// Where the order was placed: `online` or `offline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ChannelDto)]
pub enum ChannelBody {
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
    pub channel: ChannelBody,
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
            let kind = match (line.kind.unwrap_or(LineKindBody::Product), line.applies_to) {
                (LineKindBody::Product, None) => LineKind::Product,
                (LineKindBody::Product, Some(_)) => {
                    errors.push(FieldError::new(
                        format!("lines[{index}].appliesTo"),
                        "only a discount line applies to other lines",
                    ));
                    LineKind::Product
                }
                (LineKindBody::Discount, applies_to) => LineKind::Discount {
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
                    Some(LineStateBody::Cancelled) => LineState::Cancelled,
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
                        AllocationKindBody::Existing => AllocationKind::Existing,
                        AllocationKindBody::Expected => AllocationKind::Expected,
                    },
                    state: match a.state {
                        Some(AllocationStateBody::Released) => AllocationState::Released,
                        _ => AllocationState::Allocated,
                    },
                })
                .collect(),
            approval: self.approval.map(|a| Approval {
                state: match a.state {
                    ApprovalStateBody::Pending => ApprovalState::Pending,
                    ApprovalStateBody::Approved => ApprovalState::Approved,
                    ApprovalStateBody::Rejected => ApprovalState::Rejected,
                    ApprovalStateBody::Cancelled => ApprovalState::Cancelled,
                },
            }),
            tracking: self.tracking.map(|t| Tracking {
                channel: match t.channel {
                    ChannelBody::Online => Channel::Online,
                    ChannelBody::Offline => Channel::Offline,
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
                        LineKind::Product => LineKindBody::Product,
                        LineKind::Discount { .. } => LineKindBody::Discount,
                    }),
                    applies_to: match &l.kind {
                        LineKind::Product => None,
                        LineKind::Discount { applies_to } => Some(applies_to.clone()),
                    },
                    erp_line_ref: l.erp_line_ref.clone(),
                    state: Some(match l.state {
                        LineState::Active => LineStateBody::Active,
                        LineState::Cancelled => LineStateBody::Cancelled,
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
                        AllocationKind::Existing => AllocationKindBody::Existing,
                        AllocationKind::Expected => AllocationKindBody::Expected,
                    },
                    state: Some(match a.state {
                        AllocationState::Allocated => AllocationStateBody::Allocated,
                        AllocationState::Released => AllocationStateBody::Released,
                    }),
                })
                .collect(),
            approval: order.approval.as_ref().map(|a| ApprovalBody {
                state: match a.state {
                    ApprovalState::Pending => ApprovalStateBody::Pending,
                    ApprovalState::Approved => ApprovalStateBody::Approved,
                    ApprovalState::Rejected => ApprovalStateBody::Rejected,
                    ApprovalState::Cancelled => ApprovalStateBody::Cancelled,
                },
            }),
            tracking: order.tracking.as_ref().map(|t| TrackingBody {
                channel: match t.channel {
                    Channel::Online => ChannelBody::Online,
                    Channel::Offline => ChannelBody::Offline,
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
