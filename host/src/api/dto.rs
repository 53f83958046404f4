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

/// `PUT /v1/orders/{orderNumber}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderBody {
    /// Must equal the path's order number when given.
    pub order_number: Option<String>,
    /// Business (company) code.
    pub business_code: String,
    /// Customer number.
    pub customer_number: String,
    /// Website name.
    pub website: String,
    /// Status code as the ERP reports it.
    pub status: String,
    /// `YYYY-MM-DD`.
    pub order_date: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The ERP's order number.
    #[serde(default)]
    pub erp_order_number: Option<String>,
    /// Lines.
    pub lines: Vec<LineBody>,
    /// Payments.
    #[serde(default)]
    pub payments: Vec<PaymentBody>,
    /// Allocations.
    #[serde(default)]
    pub allocations: Vec<AllocationBody>,
    /// B2B approval request.
    #[serde(default)]
    pub approval: Option<ApprovalBody>,
    /// Visitor tracking data.
    #[serde(default)]
    pub tracking: Option<TrackingBody>,
}

/// Line kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum LineKindDto {
    /// Product (default).
    Product,
    /// Discount.
    Discount,
}

/// Line state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum LineStateDto {
    /// Not cancelled.
    Active,
    /// Cancelled.
    Cancelled,
}

/// One order line.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineBody {
    /// Position number (`orderItemReference`).
    pub line_number: u32,
    /// SKU.
    pub sku: String,
    /// Quantity.
    pub quantity: u32,
    /// Net amount in minor units.
    pub amount_minor: i64,
    /// Tax in minor units.
    pub tax_minor: i64,
    /// Parent line of a related item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_line: Option<u32>,
    /// `product` (default) or `discount`.
    #[serde(default)]
    pub kind: Option<LineKindDto>,
    /// Lines a discount applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to: Option<Vec<u32>>,
    /// The ERP's line reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erp_line_ref: Option<String>,
    /// State (defaults to active).
    #[serde(default)]
    pub state: Option<LineStateDto>,
}

/// One payment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentBody {
    /// Payment id.
    pub id: String,
    /// Method, e.g. `card`.
    pub method: String,
    /// Authorised amount.
    pub authorized_minor: i64,
    /// Deposited (captured) amount.
    #[serde(default)]
    pub deposited_minor: i64,
    /// Voided amount.
    #[serde(default)]
    pub voided_minor: i64,
    /// Refunded amount.
    #[serde(default)]
    pub refunded_minor: i64,
}

/// Allocation kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AllocationKindDto {
    /// Stock on hand.
    Existing,
    /// Expected (backordered) stock.
    Expected,
}

/// Allocation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AllocationStateDto {
    /// Held for the line.
    Allocated,
    /// Released by a cancellation.
    Released,
}

/// One allocation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllocationBody {
    /// The line.
    pub line_number: u32,
    /// Warehouse.
    pub warehouse: String,
    /// Quantity.
    pub quantity: u32,
    /// Existing or expected stock.
    pub kind: AllocationKindDto,
    /// State (defaults to allocated).
    #[serde(default)]
    pub state: Option<AllocationStateDto>,
}

/// Approval state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ApprovalStateDto {
    /// Waiting for approval.
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
    /// Cancelled with the order.
    Cancelled,
}

/// B2B approval.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    /// State.
    pub state: ApprovalStateDto,
}

/// Channel of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ChannelDto {
    /// Website.
    Online,
    /// Store or phone.
    Offline,
}

/// Visitor tracking.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrackingBody {
    /// Channel.
    pub channel: ChannelDto,
    /// Session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Customer user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuid: Option<String>,
    /// Offline channel.
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

/// An order as `GET /v1/orders/{orderNumber}` shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    /// Order number.
    pub order_number: String,
    /// Business code.
    pub business_code: String,
    /// Customer number.
    pub customer_number: String,
    /// Website.
    pub website: String,
    /// Current status.
    pub status: String,
    /// Order date.
    pub order_date: String,
    /// Currency.
    pub currency: String,
    /// ERP order number.
    pub erp_order_number: Option<String>,
    /// Lines with their state.
    pub lines: Vec<LineBody>,
    /// Payments with voided and refunded amounts.
    pub payments: Vec<PaymentBody>,
    /// Allocations with their state.
    pub allocations: Vec<AllocationBody>,
    /// Approval.
    pub approval: Option<ApprovalBody>,
    /// Tracking.
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

/// `POST /v1/orders/{orderNumber}/status` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// The new status code.
    pub status: String,
}

// ---------------------------------------------------------- cancellations

/// `POST /v1/orders/{orderNumber}/cancellations` body; every field optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelBody {
    /// Lines to cancel; absent: the whole order.
    #[serde(default)]
    pub items: Option<Vec<ItemBody>>,
    /// `OUT_OF_STOCK`, `CUSTOMER_CANCELLATION`, `NO_PAYMENT`, `CUSTOMER_SERVICE`.
    #[serde(default)]
    pub cancellation_reason: Option<String>,
    /// `YYYY-MM-DD`, default today.
    #[serde(default)]
    pub cancellation_date: Option<String>,
    /// Invoice reference passed to the ERP.
    #[serde(default)]
    pub invoice_reference: Option<String>,
    /// Refund account.
    #[serde(default)]
    pub bank_details: Option<BankDetailsBody>,
    /// Cancel despite deposited payment.
    #[serde(default)]
    pub forced_cancel: Option<bool>,
    /// Refund the deposited payment.
    #[serde(default)]
    pub forced_cancel_with_refund: Option<bool>,
    /// Staff acting for this user.
    #[serde(default)]
    pub for_user: Option<String>,
}

/// One line to cancel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemBody {
    /// The line's position number.
    pub order_item_reference: u32,
    /// Must be the line's whole quantity when given.
    #[serde(default)]
    pub quantity: Option<u32>,
}

/// Bank details for a refund.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BankDetailsBody {
    /// Account holder.
    #[serde(default)]
    pub account_owner: Option<String>,
    /// IBAN.
    #[serde(default)]
    pub iban: Option<String>,
    /// BIC.
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

/// A refund in a cancellation answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    /// Amount.
    pub amount_minor: i64,
    /// Currency.
    pub currency: String,
    /// `original` or `bankAccount`.
    pub to: String,
}

/// A released allocation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleasedAllocationView {
    /// The line.
    pub line_number: u32,
    /// Warehouse.
    pub warehouse: String,
    /// Quantity.
    pub quantity: u32,
    /// `existing` or `expected`.
    pub kind: String,
}

/// A warning.
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
    /// Text.
    pub message: String,
}

/// A job as a cancellation shows it. A customer-role caller sees each
/// job's `definition` and `state` only: `attempts`, `erpReference` and
/// `lastError` are `null` for it (what a plugin or an ERP wrote is for
/// staff).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancellationJobView {
    /// Job id.
    pub id: String,
    /// Job definition.
    pub definition: String,
    /// `queued`, `running`, `succeeded`, `retrying`, `failed`.
    pub state: String,
    /// Attempts started; `null` for a customer.
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

/// Where telling the ERP stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErpSyncView {
    /// `not-configured` (no job: no enabled job definition applies to this
    /// cancellation, and `warnings` says why), `queued`, `running`,
    /// `retrying`, `succeeded`, `failed`.
    pub state: String,
    /// The jobs: one per enabled job definition that applies to this
    /// cancellation (see a definition's `appliesTo`).
    pub jobs: Vec<CancellationJobView>,
}

/// A cancellation (answer of POST and GET).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancellationView {
    /// Id.
    pub internal_request_id: String,
    /// Order.
    pub order_number: String,
    /// Whole order cancelled.
    pub full: bool,
    /// Cancelled lines, cascades included.
    pub cancelled_lines: Vec<u32>,
    /// The order's status after it.
    pub order_status: String,
    /// Voided authorisation.
    pub voided_minor: i64,
    /// Refund, if any.
    pub refund: Option<RefundView>,
    /// Released allocations.
    pub released_allocations: Vec<ReleasedAllocationView>,
    /// Whether a pending approval was cancelled.
    pub approval_cancelled: bool,
    /// ERP synchronisation.
    pub erp_sync: ErpSyncView,
    /// Warnings.
    pub warnings: Vec<WarningView>,
    /// Reason code.
    pub cancellation_reason: String,
    /// Cancellation date.
    pub cancellation_date: String,
    /// Commit time.
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

/// `POST /v1/admin/api-keys` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyBody {
    /// What to call the key (`storefront`, `ci`): 1 to 100 characters.
    /// Required; names need not be unique (a rotated key may keep its name).
    #[serde(default)]
    #[schema(required = true, nullable = false)]
    pub name: Option<String>,
    /// `admin`, `service` or `customer`.
    pub role: String,
    /// Required for customer keys, refused for others.
    #[serde(default)]
    pub customer_number: Option<String>,
    /// RFC 3339 time from which the key is refused (`401`); `null` or
    /// absent: never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A new API key; the token is shown only here.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    /// The key's id (what `DELETE /v1/admin/api-keys/{id}` takes).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The bearer token: shown once, never again.
    pub token: String,
    /// Role.
    pub role: String,
    /// Bound customer (customer keys), else `null`.
    pub customer_number: Option<String>,
    /// When it stops working (RFC 3339), or `null`.
    pub expires_at: Option<String>,
}

/// A key as `GET /v1/admin/api-keys` lists it: never its token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeySummaryView {
    /// The key's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Bound customer (customer keys), else `null`.
    pub customer_number: Option<String>,
    /// The token's first characters, to recognise it (`rsk_3f2a…`); `null`
    /// for keys made before prefixes were kept.
    pub token_prefix: Option<String>,
    /// Who created it: `admin token`, `key "NAME" (ID)` or `command line`.
    pub created_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// When it last authenticated a request, to within a minute (RFC
    /// 3339), or `null` if never.
    pub last_used_at: Option<String>,
    /// When it stops working (RFC 3339), or `null`.
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

/// One admin write of the audit log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryView {
    /// The entry's position in the log; pass the last one of a page as
    /// `before` for the next page.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// `admin-token`, `api-key` or `command-line`.
    pub actor: String,
    /// The API key's id, for `api-key`.
    pub key_id: Option<String>,
    /// The API key's name at the time, for `api-key`.
    pub key_name: Option<String>,
    /// The HTTP method (`CLI` for the command line).
    pub method: String,
    /// The request's path (no query), or the command.
    pub path: String,
    /// The answer's status (`0` for the command line).
    pub status: u16,
    /// What changed, in a few words; never a secret.
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

/// A status mapping.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusMappingDto {
    /// The ERP's status code.
    pub erp_code: String,
    /// Display status.
    pub status: String,
    /// Whether orders in it may be cancelled.
    pub allow_cancellation: bool,
}

/// Cancel settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsDto {
    /// Statuses in which orders may be cancelled.
    pub cancellable_order_statuses: Vec<String>,
    /// Status a fully cancelled order gets.
    pub cancelled_status: String,
}

/// What a preset applied.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresetView {
    /// Preset name.
    pub preset: String,
    /// The mappings now in force.
    pub status_mappings: Vec<StatusMappingDto>,
    /// The settings now in force.
    pub settings: SettingsDto,
}

/// Website settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebsiteDto {
    /// Whether customers may request cancellation on this website.
    pub allow_cancellation_request: bool,
}

/// `PUT /v1/admin/connections/{name}` body.
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
    /// Plain settings.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Secrets (write-only); absent keeps the stored ones.
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

/// A connection as the API shows it: secret names only.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    /// Name.
    pub name: String,
    /// ERP base URL.
    pub base_url: String,
    /// Allowed hosts.
    pub allowed_hosts: Vec<String>,
    /// Whether allowed names may resolve into private networks.
    pub allow_private_network: bool,
    /// Extra certificate authorities (PEM), if any.
    pub ca_certificates: Option<String>,
    /// Plain settings.
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

/// A job parameter.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobParameterDto {
    /// Name.
    pub name: String,
    /// Value type.
    #[serde(default = "string_type")]
    pub value_type: String,
    /// Default.
    #[serde(default)]
    pub default_value: String,
    /// Prompt.
    #[serde(default)]
    pub prompt: String,
}

fn string_type() -> String {
    "String".to_owned()
}

/// Retry policy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryDto {
    /// Attempts in all.
    pub max_attempts: u32,
    /// First backoff ceiling.
    pub initial_backoff_ms: u64,
    /// Largest backoff ceiling.
    pub max_backoff_ms: u64,
}

/// A job definition (body and answer).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobDefinitionDto {
    /// Name (answers only; must match the path when given).
    #[serde(default)]
    pub name: Option<String>,
    /// `Execution`.
    pub job_type: String,
    /// ERP connection name.
    pub connection: String,
    /// Preprocessor plugin (not supported yet: must be null).
    #[serde(default)]
    pub preprocessor: Option<String>,
    /// The integration processor plugin.
    pub integration_processor: String,
    /// Post-processor plugin (not supported yet: must be null).
    #[serde(default)]
    pub post_processor: Option<String>,
    /// Parameters.
    #[serde(default)]
    pub parameters: Vec<JobParameterDto>,
    /// Retry policy.
    #[serde(default)]
    pub retry: Option<RetryDto>,
    /// Enabled.
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

/// `POST /v1/admin/job-definitions/{name}/runs` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// Parameter values, e.g. `{"OrderNumber": "SO-1"}`.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// A plugin log line of an attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogLineView {
    /// Level.
    pub level: String,
    /// Message (secrets redacted).
    pub message: String,
}

/// One attempt of a job.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// Attempt number.
    pub number: u32,
    /// Worker.
    pub worker: String,
    /// Start.
    pub started_at: String,
    /// End.
    pub ended_at: Option<String>,
    /// Outcome.
    pub outcome: Option<String>,
    /// Message: the plugin's own text is at most 4 KiB (longer is cut with
    /// a marker), the connection's secrets redacted.
    pub message: Option<String>,
    /// ERP reference, bounded and redacted like `message`.
    pub erp_reference: Option<String>,
    /// Plugin version.
    pub plugin_version: Option<String>,
    /// Plugin log lines.
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

/// A job.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// Id.
    pub id: String,
    /// Job definition.
    pub definition: String,
    /// Order.
    pub order_number: String,
    /// Cancellation it submits.
    pub cancellation_id: Option<String>,
    /// The ERP idempotency key, stable across attempts.
    pub request_id: String,
    /// Parameters.
    pub parameters: BTreeMap<String, String>,
    /// State.
    pub state: String,
    /// Attempts started.
    pub attempts: u32,
    /// Attempts allowed per round.
    pub max_attempts: u32,
    /// When it is due (queued or retrying).
    pub next_run_at: Option<String>,
    /// The ERP's reference once accepted, as the plugin returned it: at
    /// most 4 KiB (longer is cut with a marker), the connection's secrets
    /// redacted.
    pub erp_reference: Option<String>,
    /// Last failure; what the plugin said in it is bounded and redacted
    /// like `erpReference`.
    pub last_error: Option<String>,
    /// Creation.
    pub created_at: String,
    /// Last change.
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
