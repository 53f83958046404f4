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

impl From<host::Money> for wit::Money {
    fn from(m: host::Money) -> Self {
        Self {
            amount_minor: m.amount_minor,
            currency: m.currency,
        }
    }
}

impl From<host::CancelledLine> for wit::CancelledLine {
    fn from(l: host::CancelledLine) -> Self {
        Self {
            line_number: l.line_number,
            sku: l.sku,
            quantity: l.quantity,
            kind: l.kind.into(),
            amount: l.amount.into(),
            tax: l.tax.into(),
            parent_line: l.parent_line,
            erp_line_ref: l.erp_line_ref,
        }
    }
}

/// The plugin's input, moved out of the host's cancellation: its strings
/// and lists change hands without a copy.
impl From<host::Cancellation> for wit::Cancellation {
    fn from(c: host::Cancellation) -> Self {
        Self {
            request_id: c.request_id,
            attempt: c.attempt,
            order_number: c.order_number,
            erp_order_number: c.erp_order_number,
            business_code: c.business_code,
            customer_number: c.customer_number,
            website: c.website,
            order_date: c.order_date,
            full: c.full,
            lines: c.lines.into_iter().map(Into::into).collect(),
            all_line_numbers: c.all_line_numbers,
            reason: c.reason.into(),
            date: c.date,
            invoice_reference: c.invoice_reference,
            forced_cancel: c.forced_cancel,
            forced_cancel_with_refund: c.forced_cancel_with_refund,
            refund: c.refund.map(|r| wit::Refund {
                amount: r.amount.into(),
                to: r.to.into(),
            }),
            bank_details: c.bank_details.map(|b| wit::BankDetails {
                account_owner: b.account_owner,
                iban: b.iban,
                bic: b.bic,
            }),
            for_user: c.for_user,
            tracking: c.tracking.map(|t| wit::Tracking {
                channel: t.channel.into(),
                session: t.session,
                cuid: t.cuid,
                offline_channel: t.offline_channel,
            }),
            parameters: c.parameters,
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
