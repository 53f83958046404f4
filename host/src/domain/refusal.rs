//! Why a cancellation is refused: exactly one `docs/api.md` error code per variant.
//!
//! A refusal is the domain's whole answer to a request it will not carry out:
//! nothing has been changed when one is returned (`plan_cancellation` is pure,
//! and only [`CancellationPlan::apply`](super::CancellationPlan::apply) builds a
//! new order). The HTTP layer maps [`Refusal::code`] and [`Refusal::status`]
//! to problem+json without deciding anything itself.

use std::fmt;

/// One invalid field of a request body, an order or the settings.
///
/// `field` is the JSON path a client sees, e.g. `lines[2].parentLine` or
/// `bankDetails.accountOwner`, so that it can point at the offending input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldError {
    /// JSON path of the field, with `[index]` for list elements.
    pub field: String,
    /// What is wrong with it and, where possible, what would be accepted.
    pub message: String,
}

impl FieldError {
    /// A field error for `field` saying `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// What is wrong with a `cancellationDate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DateProblem {
    /// Not a calendar date in the form `YYYY-MM-DD`.
    Unparsable,
    /// After today (UTC): a cancellation cannot be dated in the future.
    InFuture,
    /// Before the order was placed.
    BeforeOrderDate,
}

impl fmt::Display for DateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DateProblem::Unparsable => "is not a date in the form YYYY-MM-DD",
            DateProblem::InFuture => "is in the future",
            DateProblem::BeforeOrderDate => "is before the order date",
        })
    }
}

/// What is wrong with an IBAN (ISO 13616).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IbanProblem {
    /// Not two letters, two check digits and up to 30 letters or digits.
    Format,
    /// The mod-97 check digits do not match (a typing error).
    Checksum,
    /// The country code is not in the IBAN registry.
    UnknownCountry,
    /// The account part has the wrong length or characters for its country.
    CountryFormat,
}

impl fmt::Display for IbanProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IbanProblem::Format => {
                "is not an IBAN (two letters, two check digits, then up to 30 letters or digits)"
            }
            IbanProblem::Checksum => "has wrong check digits (mod-97); check for a typing error",
            IbanProblem::UnknownCountry => "has a country code that does not issue IBANs",
            IbanProblem::CountryFormat => "has the wrong length or format for its country",
        })
    }
}

/// Why the domain refuses a cancellation request. Each variant is exactly one
/// error code of `docs/api.md`; see [`Refusal::code`] and [`Refusal::status`].
///
/// When several refusals apply, the one checked first wins; the order of the
/// checks is listed in the [rulebook](super).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The order does not exist, or belongs to another customer (so that its
    /// existence does not leak).
    #[error("order not found")]
    OrderNotFound,
    /// The actor's role may not do this, e.g. a customer acting `forUser`.
    #[error("this role may not act for another user")]
    Forbidden,
    /// The website's `allowCancellationRequest` is off for customers.
    #[error("this website does not accept cancellation requests from customers")]
    CancellationNotAllowed,
    /// The order's status does not allow cancellation (or nothing is left to
    /// cancel).
    #[error("an order in status {status:?} cannot be cancelled")]
    OrderNotCancellable {
        /// The order's current status, as the ERP reports it.
        status: String,
    },
    /// The order has deposited (captured) payment and `forcedCancel` is not
    /// true.
    #[error("the order has deposited payment: set forcedCancel to cancel it")]
    ForcedCancelRequired,
    /// A referenced line is already cancelled.
    #[error("line {line} is already cancelled")]
    LineAlreadyCancelled {
        /// The line's `orderItemReference`.
        line: u32,
    },
    /// `forcedCancelWithRefund` was set without `forcedCancel`.
    #[error("forcedCancelWithRefund needs forcedCancel")]
    RefundRequiresForcedCancel,
    /// `forcedCancelWithRefund` on an order without deposited payment.
    #[error("the order has no deposited payment to refund")]
    NothingToRefund,
    /// An `orderItemReference` names no line of the order.
    #[error("the order has no line {line}")]
    UnknownLine {
        /// The unknown reference.
        line: u32,
    },
    /// An `orderItemReference` appears twice in the request.
    #[error("line {line} is listed more than once")]
    DuplicateLine {
        /// The repeated reference.
        line: u32,
    },
    /// A quantity below the line's quantity: only whole lines can be
    /// cancelled (AaaS seed).
    #[error("line {line}: only whole lines can be cancelled ({requested} of {quantity} requested)")]
    PartialLineNotSupported {
        /// The line's reference.
        line: u32,
        /// The quantity the request named.
        requested: u32,
        /// The line's quantity, the only one accepted.
        quantity: u32,
    },
    /// The reason is missing (staff must give one) or not one of the four
    /// codes.
    #[error("{}", match reason {
        Some(r) => format!("unknown cancellationReason {r:?}: use OUT_OF_STOCK, CUSTOMER_CANCELLATION, NO_PAYMENT or CUSTOMER_SERVICE"),
        None => "cancellationReason is required: use OUT_OF_STOCK, CUSTOMER_CANCELLATION, NO_PAYMENT or CUSTOMER_SERVICE".to_owned(),
    })]
    InvalidReason {
        /// The reason as sent, `None` when it was missing.
        reason: Option<String>,
    },
    /// A customer gave a reason other than `CUSTOMER_CANCELLATION`.
    #[error("customers may only cancel with CUSTOMER_CANCELLATION, not {reason}")]
    ReasonNotAllowed {
        /// The reason code the customer sent.
        reason: String,
    },
    /// The cancellation date is unparsable, in the future or before the order
    /// date.
    #[error("cancellationDate {date:?} {problem}")]
    InvalidDate {
        /// The date as sent, or today's date when it defaulted.
        date: String,
        /// What is wrong with it.
        problem: DateProblem,
    },
    /// The refund IBAN is not valid. The IBAN itself is not echoed: it is
    /// personal data and refusals end up in logs.
    #[error("bankDetails.iban {problem}")]
    InvalidIban {
        /// What is wrong with it.
        problem: IbanProblem,
    },
    /// The BIC is not an ISO 9362 business identifier code.
    #[error(
        "bankDetails.bic {bic:?} is not a BIC (ISO 9362: 4 letters or digits, a 2-letter country, 2 letters or digits, optionally 3 more)"
    )]
    InvalidBic {
        /// The BIC as sent.
        bic: String,
    },
    /// The IBAN's country is outside SEPA, where a BIC is mandatory.
    #[error("bankDetails.bic is required for an account in {country}, which is outside SEPA")]
    BicRequired {
        /// The IBAN's country code.
        country: String,
    },
    /// Any other invalid field, e.g. a missing `accountOwner` or an amount
    /// that would overflow.
    #[error("invalid request: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    ValidationFailed {
        /// Every invalid field found.
        errors: Vec<FieldError>,
    },
}

impl Refusal {
    /// A `validation-failed` refusal for one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Refusal::ValidationFailed {
            errors: vec![FieldError::new(field, message)],
        }
    }

    /// The `code` of the problem+json answer, as listed in `docs/api.md`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::OrderNotFound => "order-not-found",
            Refusal::Forbidden => "forbidden",
            Refusal::CancellationNotAllowed => "cancellation-not-allowed",
            Refusal::OrderNotCancellable { .. } => "order-not-cancellable",
            Refusal::ForcedCancelRequired => "forced-cancel-required",
            Refusal::LineAlreadyCancelled { .. } => "line-already-cancelled",
            Refusal::RefundRequiresForcedCancel => "refund-requires-forced-cancel",
            Refusal::NothingToRefund => "nothing-to-refund",
            Refusal::UnknownLine { .. } => "unknown-line",
            Refusal::DuplicateLine { .. } => "duplicate-line",
            Refusal::PartialLineNotSupported { .. } => "partial-line-not-supported",
            Refusal::InvalidReason { .. } => "invalid-reason",
            Refusal::ReasonNotAllowed { .. } => "reason-not-allowed",
            Refusal::InvalidDate { .. } => "invalid-date",
            Refusal::InvalidIban { .. } => "invalid-iban",
            Refusal::InvalidBic { .. } => "invalid-bic",
            Refusal::BicRequired { .. } => "bic-required",
            Refusal::ValidationFailed { .. } => "validation-failed",
        }
    }

    /// The HTTP status of the answer, as listed in `docs/api.md`.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::OrderNotFound => 404,
            Refusal::Forbidden | Refusal::CancellationNotAllowed => 403,
            Refusal::OrderNotCancellable { .. }
            | Refusal::ForcedCancelRequired
            | Refusal::LineAlreadyCancelled { .. } => 409,
            Refusal::RefundRequiresForcedCancel
            | Refusal::NothingToRefund
            | Refusal::UnknownLine { .. }
            | Refusal::DuplicateLine { .. }
            | Refusal::PartialLineNotSupported { .. }
            | Refusal::InvalidReason { .. }
            | Refusal::ReasonNotAllowed { .. }
            | Refusal::InvalidDate { .. }
            | Refusal::InvalidIban { .. }
            | Refusal::InvalidBic { .. }
            | Refusal::BicRequired { .. }
            | Refusal::ValidationFailed { .. } => 422,
        }
    }
}
