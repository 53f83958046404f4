//! The JSON shapes of cancellations: the cancel request a client sends and
//! the cancellation it reads back, with its refund, released stock,
//! warnings and where telling the ERPs stands.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::timestamp;
use crate::domain::{BankDetailsInput, CancelRequest, ItemRef};
use crate::jobs::ErpSyncState;
use crate::store::{Committed, Job, JobState, PrunedJobs};

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
                state: ErpSyncState::of(
                    record.erp_configured,
                    &jobs,
                    if as_committed {
                        PrunedJobs::default()
                    } else {
                        committed.pruned
                    },
                )
                .as_str()
                .to_owned(),
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
