//! The generated bindings of the `rescind:erp@0.1.0` world, tucked away so
//! that the rest of the runtime (and every caller) sees our own types.

wasmtime::component::bindgen!({
    world: "integration-processor",
    path: "../wit/v0.1.0",
    // The export runs on a fiber so that a call can be awaited, interrupted
    // by the epoch ticker and cancelled by the call's deadline.
    exports: { default: async },
});

use crate::domain;
use crate::plugins::cancellation as host;
use rescind::erp::types as wit;

// The domain's enums, each mapped once to its WIT counterpart.

impl From<domain::CancellationReason> for wit::CancellationReason {
    fn from(reason: domain::CancellationReason) -> Self {
        use domain::CancellationReason as R;
        match reason {
            R::OutOfStock => Self::OutOfStock,
            R::CustomerCancellation => Self::CustomerCancellation,
            R::NoPayment => Self::NoPayment,
            R::CustomerService => Self::CustomerService,
        }
    }
}

impl From<domain::CancelledLineKind> for wit::LineKind {
    fn from(kind: domain::CancelledLineKind) -> Self {
        match kind {
            domain::CancelledLineKind::Product => Self::Product,
            domain::CancelledLineKind::Discount => Self::Discount,
        }
    }
}

impl From<domain::RefundDestination> for wit::RefundDestination {
    fn from(to: domain::RefundDestination) -> Self {
        match to {
            domain::RefundDestination::OriginalPaymentMethod => Self::OriginalPaymentMethod,
            domain::RefundDestination::BankAccount => Self::BankAccount,
        }
    }
}

impl From<domain::Channel> for wit::OrderChannel {
    fn from(channel: domain::Channel) -> Self {
        match channel {
            domain::Channel::Online => Self::Online,
            domain::Channel::Offline => Self::Offline,
        }
    }
}

impl From<&host::Money> for wit::Money {
    fn from(m: &host::Money) -> Self {
        Self {
            amount_minor: m.amount_minor,
            currency: m.currency.clone(),
        }
    }
}

impl From<&host::CancelledLine> for wit::CancelledLine {
    fn from(l: &host::CancelledLine) -> Self {
        Self {
            line_number: l.line_number,
            sku: l.sku.clone(),
            quantity: l.quantity,
            kind: l.kind.into(),
            amount: (&l.amount).into(),
            tax: (&l.tax).into(),
            parent_line: l.parent_line,
            erp_line_ref: l.erp_line_ref.clone(),
        }
    }
}

impl From<&host::Cancellation> for wit::Cancellation {
    fn from(c: &host::Cancellation) -> Self {
        Self {
            request_id: c.request_id.clone(),
            attempt: c.attempt,
            order_number: c.order_number.clone(),
            erp_order_number: c.erp_order_number.clone(),
            business_code: c.business_code.clone(),
            customer_number: c.customer_number.clone(),
            website: c.website.clone(),
            order_date: c.order_date.clone(),
            full: c.full,
            lines: c.lines.iter().map(Into::into).collect(),
            all_line_numbers: c.all_line_numbers.clone(),
            reason: c.reason.into(),
            date: c.date.clone(),
            invoice_reference: c.invoice_reference.clone(),
            forced_cancel: c.forced_cancel,
            forced_cancel_with_refund: c.forced_cancel_with_refund,
            refund: c.refund.as_ref().map(|r| wit::Refund {
                amount: (&r.amount).into(),
                to: r.to.into(),
            }),
            bank_details: c.bank_details.as_ref().map(|b| wit::BankDetails {
                account_owner: b.account_owner.clone(),
                iban: b.iban.clone(),
                bic: b.bic.clone(),
            }),
            for_user: c.for_user.clone(),
            tracking: c.tracking.as_ref().map(|t| wit::Tracking {
                channel: t.channel.into(),
                session: t.session.clone(),
                cuid: t.cuid.clone(),
                offline_channel: t.offline_channel.clone(),
            }),
            parameters: c.parameters.clone(),
        }
    }
}

impl From<rescind::erp::host::LogLevel> for crate::plugins::log::LogLevel {
    fn from(level: rescind::erp::host::LogLevel) -> Self {
        use rescind::erp::host::LogLevel as Wit;
        match level {
            Wit::Trace => Self::Trace,
            Wit::Debug => Self::Debug,
            Wit::Info => Self::Info,
            Wit::Warn => Self::Warn,
            Wit::Error => Self::Error,
        }
    }
}
