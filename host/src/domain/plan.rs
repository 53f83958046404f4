//! The one decision: [`plan_cancellation`] turns an order, the settings, the
//! actor and the request into a [`CancellationPlan`] or a [`Refusal`], and
//! [`CancellationPlan::apply`] gives the order after the cancellation. Both
//! are pure: a refusal changes nothing because nothing is changed until the
//! caller applies a plan and stores the result.

use std::collections::BTreeSet;

use time::Date;

use super::approval::{ApprovalState, cancels_approval};
use super::authority::{Requester, authorize};
use super::bank::{BankDetails, BankDetailsInput, validate_bank_details};
use super::cancellability::{Settings, WebsiteSettings, ensure_cancellable};
use super::date::resolve_date;
use super::inventory::{Allocation, AllocationState, released_allocations};
use super::lines::{ItemRef, select_lines};
use super::money::{self, Currency};
use super::order::{LineState, Order};
use super::payment::{PaymentAction, has_deposited_payment, line_values, settle};
use super::reason::{CancellationReason, resolve_reason};
use super::refusal::{FieldError, Refusal};

/// A cancellation request as the client sent it; the domain validates every
/// field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CancelRequest {
    /// The lines to cancel; `None` cancels the whole order.
    pub items: Option<Vec<ItemRef>>,
    /// `OUT_OF_STOCK`, `CUSTOMER_CANCELLATION`, `NO_PAYMENT` or
    /// `CUSTOMER_SERVICE`.
    pub reason: Option<String>,
    /// `YYYY-MM-DD`; `None` means today.
    pub date: Option<String>,
    /// The invoice the cancellation refers to, passed to the ERP.
    pub invoice_reference: Option<String>,
    /// An account to refund to instead of the original payment method.
    pub bank_details: Option<BankDetailsInput>,
    /// Cancel even though payment was deposited (WebSphere).
    pub forced_cancel: bool,
    /// Also refund the deposited payment (WebSphere); needs `forced_cancel`.
    pub forced_cancel_with_refund: bool,
    /// The user on whose behalf staff act (WebSphere `forUser`).
    pub for_user: Option<String>,
}

/// Where a refund goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundDestination {
    /// Back to the payments' own methods (API: `original`), as the WIT
    /// and the guest SDK call it too.
    OriginalPaymentMethod,
    /// To the bank account in the request's `bankDetails` (API:
    /// `bankAccount`).
    BankAccount,
}

impl RefundDestination {
    /// Every destination.
    pub const ALL: [RefundDestination; 2] = [
        RefundDestination::OriginalPaymentMethod,
        RefundDestination::BankAccount,
    ];

    /// The API's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundDestination::OriginalPaymentMethod => "original",
            RefundDestination::BankAccount => "bankAccount",
        }
    }
}

/// The refund a cancellation triggers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// How much, in minor units; always positive.
    pub amount_minor: i64,
    /// The order's currency.
    pub currency: Currency,
    /// Where it goes.
    pub to: RefundDestination,
}

/// Something the client should know about a cancellation that succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Warning {
    /// A stable code, e.g. `not-refunded`.
    pub code: &'static str,
    /// What happened, for a person.
    pub message: String,
}

/// Captured money of the cancelled share stays captured: `forcedCancel`
/// without `forcedCancelWithRefund`.
pub const WARNING_NOT_REFUNDED: &str = "not-refunded";
/// A refund was asked for, but the cancelled share was all voided from open
/// authorizations, so nothing captured needed refunding.
pub const WARNING_REFUND_NOT_NEEDED: &str = "refund-not-needed";

/// Everything a cancellation does, decided before anything is changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancellationPlan {
    /// Whether no active line is left afterwards.
    pub full: bool,
    /// The lines cancelled, ascending, with every cascaded line and discount.
    pub cancelled_lines: Vec<u32>,
    /// The reason, defaulted for customers.
    pub reason: CancellationReason,
    /// The cancellation date, defaulted to today.
    pub date: Date,
    /// The invoice reference, trimmed.
    pub invoice_reference: Option<String>,
    /// The validated bank details, when given.
    pub bank_details: Option<BankDetails>,
    /// As requested.
    pub forced_cancel: bool,
    /// As requested.
    pub forced_cancel_with_refund: bool,
    /// The user staff act for, trimmed.
    pub for_user: Option<String>,
    /// Per payment that voids or refunds anything: how much.
    pub payment_actions: Vec<PaymentAction>,
    /// The sum of the voids.
    pub voided_minor: i64,
    /// The refund, when one is triggered.
    pub refund: Option<Refund>,
    /// The allocations released, as they were but in state `Released`.
    pub released_allocations: Vec<Allocation>,
    /// Whether a pending approval request is cancelled.
    pub approval_cancelled: bool,
    /// The order's status afterwards: the cancelled status when full,
    /// unchanged otherwise.
    pub new_order_status: String,
    /// Things the client should know.
    pub warnings: Vec<Warning>,
    /// What the cancelled lines are worth: amounts net of their discount
    /// shares, plus tax.
    pub cancelled_amount_minor: i64,
    /// What of that was neither voided nor refunded (captured money kept
    /// without a refund, or money an order without payments never took).
    pub unreturned_minor: i64,
}

const MAX_REFERENCE_CHARS: usize = 100;

/// Decides a cancellation. Checks run in a fixed order and the first failing
/// one is the refusal (see the [rulebook](super) for the list). Pure: the
/// same inputs always give the same answer, and nothing is changed.
pub fn plan_cancellation(
    order: &Order,
    settings: &Settings,
    website: &WebsiteSettings,
    actor: &Requester,
    request: &CancelRequest,
    today: Date,
) -> Result<CancellationPlan, Refusal> {
    // 1. Who is asking.
    authorize(order, website, actor, request.for_user.as_deref())?;
    // 2. The data the rules rely on.
    order
        .validate()
        .map_err(|errors| prefixed("order", errors))?;
    settings
        .validate()
        .map_err(|errors| prefixed("settings", errors))?;
    // 3. The order's state.
    ensure_cancellable(order, settings)?;
    // 4. The request, field by field in docs/api.md's order.
    let selection = select_lines(order, request.items.as_deref())?;
    let reason = resolve_reason(actor, request.reason.as_deref())?;
    let date = resolve_date(request.date.as_deref(), order.order_date, today)?;
    let invoice_reference = text_field("invoiceReference", request.invoice_reference.as_deref())?;
    let bank_details = request
        .bank_details
        .as_ref()
        .map(validate_bank_details)
        .transpose()?;
    if request.forced_cancel_with_refund && !request.forced_cancel {
        return Err(Refusal::RefundRequiresForcedCancel);
    }
    let for_user = text_field("forUser", request.for_user.as_deref())?;
    // 5. The payments.
    let deposited = has_deposited_payment(&order.payments);
    if deposited && !request.forced_cancel {
        return Err(Refusal::ForcedCancelRequired);
    }
    if request.forced_cancel_with_refund && !deposited {
        return Err(Refusal::NothingToRefund);
    }
    // 6. The money.
    let values = line_values(order)?;
    let cancelled_amount_minor = money::sum(
        selection
            .cancelled
            .iter()
            .filter_map(|n| values.get(n))
            .map(|v| v.total_minor())
            .collect::<Result<Vec<_>, _>>()?,
    )?;
    let settlement = settle(
        &order.payments,
        cancelled_amount_minor,
        request.forced_cancel_with_refund,
    )?;

    let mut warnings = Vec::new();
    if settlement.unreturned_minor > 0 && !order.payments.is_empty() {
        warnings.push(Warning {
            code: WARNING_NOT_REFUNDED,
            message: format!(
                "{} {} of the cancelled amount was captured and is not refunded (forcedCancelWithRefund was not set)",
                settlement.unreturned_minor, order.currency
            ),
        });
    }
    if request.forced_cancel_with_refund && settlement.refunded_minor == 0 {
        warnings.push(Warning {
            code: WARNING_REFUND_NOT_NEEDED,
            message: "the cancelled amount was voided from open authorizations; nothing captured needed refunding".to_owned(),
        });
    }
    let refund = (settlement.refunded_minor > 0).then(|| Refund {
        amount_minor: settlement.refunded_minor,
        currency: order.currency.clone(),
        to: if bank_details.is_some() {
            RefundDestination::BankAccount
        } else {
            RefundDestination::OriginalPaymentMethod
        },
    });

    Ok(CancellationPlan {
        full: selection.full,
        cancelled_lines: selection.cancelled.iter().copied().collect(),
        reason,
        date,
        invoice_reference,
        bank_details,
        forced_cancel: request.forced_cancel,
        forced_cancel_with_refund: request.forced_cancel_with_refund,
        for_user,
        payment_actions: settlement.actions,
        voided_minor: settlement.voided_minor,
        refund,
        released_allocations: released_allocations(&order.allocations, &selection.cancelled),
        approval_cancelled: cancels_approval(order.approval.as_ref(), selection.full),
        new_order_status: if selection.full {
            settings.cancelled_status.clone()
        } else {
            order.status.clone()
        },
        warnings,
        cancelled_amount_minor,
        unreturned_minor: settlement.unreturned_minor,
    })
}

/// Errors of the stored order or settings, marked as such: the client cannot
/// fix them in its request.
fn prefixed(prefix: &str, errors: Vec<FieldError>) -> Refusal {
    Refusal::ValidationFailed {
        errors: errors
            .into_iter()
            .map(|e| FieldError::new(format!("{prefix}.{}", e.field), e.message))
            .collect(),
    }
}

/// An optional free-text field: trimmed, not blank, at most
/// [`MAX_REFERENCE_CHARS`] characters, no control characters.
fn text_field(field: &str, raw: Option<&str>) -> Result<Option<String>, Refusal> {
    let Some(raw) = raw else { return Ok(None) };
    let value = raw.trim();
    if value.is_empty() {
        return Err(Refusal::field(
            field,
            "must not be blank; leave it out instead",
        ));
    }
    if value.chars().count() > MAX_REFERENCE_CHARS {
        return Err(Refusal::field(
            field,
            format!("must be at most {MAX_REFERENCE_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Refusal::field(field, "must not contain control characters"));
    }
    Ok(Some(value.to_owned()))
}

impl CancellationPlan {
    /// The order after the cancellation: the cancelled lines' state, the
    /// payments' voided and refunded totals, the released allocations, the
    /// approval and the status. Pure: `order` is not touched. Applying a plan
    /// to the order it was planned for is what the store commits.
    pub fn apply(&self, order: &Order) -> Order {
        let cancelled: BTreeSet<u32> = self.cancelled_lines.iter().copied().collect();
        let mut next = order.clone();
        for line in &mut next.lines {
            if cancelled.contains(&line.number) {
                line.state = LineState::Cancelled;
            }
        }
        for payment in &mut next.payments {
            for action in self
                .payment_actions
                .iter()
                .filter(|a| a.payment_id == payment.id)
            {
                payment.voided_minor = payment.voided_minor.saturating_add(action.void_minor);
                payment.refunded_minor = payment.refunded_minor.saturating_add(action.refund_minor);
            }
        }
        for allocation in &mut next.allocations {
            if cancelled.contains(&allocation.line_number) {
                allocation.state = AllocationState::Released;
            }
        }
        if self.approval_cancelled
            && let Some(approval) = &mut next.approval
            && approval.state == ApprovalState::Pending
        {
            approval.state = ApprovalState::Cancelled;
        }
        next.status = self.new_order_status.clone();
        next
    }
}

#[cfg(test)]
mod tests;
