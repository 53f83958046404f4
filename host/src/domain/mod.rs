//! The cancel workflow's rules: a pure core with no I/O, no async and no
//! database, HTTP or wasm types. The store and the API call into it; nothing
//! else decides whether and how an order is cancelled.
//!
//! One function decides: [`plan_cancellation`]`(order, settings, website,
//! actor, request, today)` returns a [`CancellationPlan`] or a [`Refusal`].
//! [`CancellationPlan::apply`] gives the order after the cancellation. A
//! refusal changes nothing: nothing is changed until a plan is applied.
//!
//! This page is the rulebook. Every rule names the seed it comes from (the
//! commerce platforms' documentation the rules were taken from); where the
//! seeds leave a choice open, the choice is marked **Choice**.
//!
//! # When an order may be cancelled (`cancellability.rs`)
//! - The order's `status` is the ERP's code. The [`StatusMapping`] with that
//!   `erp_code` gives a display status and `allow_cancellation` (Optimizely,
//!   InsiteCommerce: "Order Status Mapping").
//! - The order is cancellable only when that mapping exists, allows
//!   cancellation, **and** its display status is in
//!   `cancellable_statuses` (InsiteCommerce `OrderCancelStatuses`).
//!   **Choice:** the list holds display statuses, as both seeds say ("the
//!   cancellable order statuses listed within the Order Status Mapping
//!   screen"); an unmapped code is never cancellable. An order with no
//!   active line left is not cancellable either. Refusal:
//!   `order-not-cancellable` with the status.
//! - Presets ([`Preset`]): `insite` — `Submitted` cancellable, cancelled
//!   status `Cancelled`; `websphere` — A, B, C, I, L, M, N, W cancellable,
//!   cancelled status `X` (W comes from the WebSphere seed's behaviour and
//!   exception sections, which win over its summary). Each preset also maps
//!   its cancelled status, not cancellable.
//! - The cancelled status must not itself be cancellable
//!   ([`Settings::validate`]).
//! - Website switch `allowCancellationRequest` ([`WebsiteSettings`],
//!   InsiteCommerce `AllowCancellationRequest`, default off): when off, a
//!   customer's request is refused (`cancellation-not-allowed`); staff are
//!   not affected.
//!
//! # Who may cancel (`authority.rs`)
//! - A customer may cancel only orders with their customer number; another
//!   customer's order answers `order-not-found`, so its existence does not
//!   leak.
//! - `forUser` needs the authority to process orders (WebSphere seed): admin
//!   or service. A customer who sends it gets `forbidden`, even naming
//!   themselves.
//!
//! # What is cancelled (`lines.rs`, AaaS seed)
//! - No `items`: every active line. **Choice:** `items: []` is
//!   `validation-failed` rather than "everything".
//! - Whole lines only: a `quantity` below the line's is
//!   `partial-line-not-supported`. **Choice:** a quantity above the line's is
//!   `validation-failed` (a wrong number, not a partial line); equal or
//!   absent means the whole line.
//! - Unknown, duplicate and already-cancelled references are
//!   `unknown-line`, `duplicate-line`, `line-already-cancelled`; references
//!   are checked in request order and the first bad one decides.
//! - Cascade ("ensure that any associated discounts or related items are
//!   also canceled"): lines whose `parentLine` is cancelled follow,
//!   recursively; a discount follows when every line it applies to is
//!   cancelled. **Choice:** a discount may be referenced itself only when it
//!   would follow anyway (`validation-failed` otherwise), since cancelling a
//!   discount alone raises the price of what the customer keeps.
//! - Listing every active line, or cancelling lines such that the cascade
//!   leaves none active, is a full cancellation. A full cancellation sets the
//!   order's status to the configured cancelled status; a partial one leaves
//!   it. The order and its lines are never deleted (WebSphere seed).
//!
//! # Money (`money.rs`, `payment.rs`, `bank.rs`; WebSphere and AaaS seeds)
//! - Amounts are `i64` minor units with an ISO 4217 [`Currency`]; all sums
//!   are checked. **Choice:** an overflow is `validation-failed`, never a
//!   panic; [`Order::validate`] bounds every order so that none can occur.
//! - A line is worth its amount plus tax plus its share of each discount on
//!   it. A discount over several lines is shared by
//!   [`split_largest_remainder`]: its amount in proportion to the lines'
//!   amounts, its tax in proportion to their taxes; ties go to the lower line
//!   number. The shares are fixed by the order, so cancelling all lines in
//!   any number of steps returns exactly the order total: the last step takes
//!   the remainder, with no rounding leak, and no step is negative
//!   (discounts never exceed the lines they reduce).
//! - **Choice:** an order's payments, when it has any, authorize exactly
//!   its total, and no more has been voided or refunded than its cancelled
//!   lines are worth ([`Order::validate`]). An order without payments (paid
//!   on invoice after delivery, AaaS "Cancellation without refund") cancels
//!   without moving money.
//! - Order with deposited payment (captured and not fully refunded): the
//!   cancellation needs `forcedCancel` (`forced-cancel-required`).
//!   `forcedCancelWithRefund` needs `forcedCancel`
//!   (`refund-requires-forced-cancel`) and deposited payment
//!   (`nothing-to-refund`).
//! - **Choice** for mixed payments: the cancelled value is first voided from
//!   open authorizations (authorized, not deposited, not voided), payment by
//!   payment in list order; what is left is refunded from deposits, in list
//!   order, when `forcedCancelWithRefund` is set, and otherwise kept and
//!   reported with a `not-refunded` warning (WebSphere: `forcedCancel` alone
//!   triggers no refund). Voiding first releases money the customer has not
//!   paid yet instead of capturing it and paying it back. A refund goes to
//!   the original methods, or to the request's bank account when
//!   `bankDetails` are given. When a refund was asked for but everything was
//!   voided, the plan has no refund and a `refund-not-needed` warning. No
//!   payment is ever voided beyond its authorization or refunded beyond its
//!   deposit.
//! - `forcedCancel` is needed whenever the order holds deposited money, even
//!   if this cancellation's share fits in the open authorizations: the
//!   WebSphere seed makes it a property of the order, not of the amount.
//! - Bank details ([`BankDetailsInput`], AaaS seed): `accountOwner` and
//!   `iban` required; IBAN checked for structure, mod-97 and per-country
//!   length (the `iban_validate` crate, SWIFT IBAN registry); BIC (ISO 9362,
//!   8 or 11 characters) checked when given and required only outside SEPA
//!   ([`SEPA_IBAN_COUNTRIES`], EPC409-09). **Choice:** bank details are
//!   validated and passed on to the ERP whenever given, even without a
//!   refund here: an AaaS ERP decides refunds by its own configuration.
//!
//! # Inventory, approvals, reasons, dates (`inventory.rs`, `approval.rs`, `reason.rs`, `date.rs`)
//! - Every held allocation of a cancelled line is released, existing and
//!   expected (backordered) stock alike (WebSphere seed).
//! - A pending B2B approval request is cancelled (WebSphere seed).
//!   **Choice:** only by a full cancellation; after a partial one the rest of
//!   the order still awaits approval. Other approval states are untouched.
//! - Reasons ([`CancellationReason`], AaaS seed): the four codes, exactly. An
//!   unknown code is `invalid-reason`; staff must give a reason
//!   (`invalid-reason`); a customer gets `CUSTOMER_CANCELLATION` by default
//!   and any other known code is `reason-not-allowed`.
//! - Date: `YYYY-MM-DD`, today (UTC, passed in by the caller) by default; an
//!   unparsable date, one after today or one before the order date is
//!   `invalid-date`.
//! - `invoiceReference` and `forUser`, when given, are trimmed and must be
//!   1 to 100 characters without control characters (`validation-failed`).
//!
//! # Which refusal wins
//! [`plan_cancellation`] checks in this order and answers with the first
//! failure:
//! 1. the actor: `order-not-found` (another customer's order), `forbidden`
//!    (customer with `forUser`), `cancellation-not-allowed` (website switch);
//! 2. the stored data: an inconsistent order or settings is
//!    `validation-failed` with fields prefixed `order.` / `settings.`;
//! 3. the order's state: `order-not-cancellable`;
//! 4. the request, field by field in `docs/api.md`'s order: `items`, then
//!    `cancellationReason`, `cancellationDate`, `invoiceReference`,
//!    `bankDetails` (`validation-failed`, `invalid-iban`, `bic-required`,
//!    `invalid-bic`), `forcedCancelWithRefund` without `forcedCancel`, and
//!    `forUser`;
//! 5. the payments: `forced-cancel-required`, then `nothing-to-refund`;
//! 6. the money: an overflow is `validation-failed`.
//!
//! # Applying a plan (`plan.rs`)
//! [`CancellationPlan::apply`] marks the cancelled lines cancelled, adds each
//! [`PaymentAction`] to its payment's `voided_minor` / `refunded_minor`,
//! releases the held allocations of the cancelled lines, cancels a pending
//! approval when the plan says so, and sets the status to
//! `new_order_status`. The cancelled status is written into the order's
//! `status`, the field that holds ERP codes, so the presets map it (not
//! cancellable). The order after `apply` passes [`Order::validate`] again,
//! so cancellations can follow each other until nothing is left.
//!
//! # How the rules are tested
//! Table tests sit beside each rule and cite the seed they come from;
//! `plan/tests.rs` reaches every refusal variant and checks which one wins.
//! `properties.rs` runs proptest (1,000 cases per property) over random
//! orders — nested related lines, discounts over several lines, mixed
//! payments, amounts near the `i64` limit — and random sequences of partial
//! cancellations followed by the rest: the voids and refunds add up to
//! exactly the order total, no payment goes beyond its authorization or
//! deposit, nothing is negative, cascades are closed after every step, and
//! a refused request changes nothing and is refused the same way again.

mod approval;
mod authority;
mod bank;
mod cancellability;
mod date;
mod identifier;
mod inventory;
mod jobs;
mod lines;
mod money;
mod order;
mod payment;
mod plan;
mod reason;
mod refusal;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod properties;

pub use approval::{Approval, ApprovalState};
pub use authority::Requester;
pub use bank::{BankDetails, BankDetailsInput, SEPA_IBAN_COUNTRIES, is_sepa_country};
pub use cancellability::{Preset, Settings, StatusMapping, WebsiteSettings};
pub use date::parse_date;
pub use identifier::{
    MAX_ALLOCATIONS, MAX_IDENTIFIER_CHARS, MAX_LINES, MAX_PAYMENTS, identifier_problem,
};
pub use inventory::{Allocation, AllocationKind, AllocationState};
pub use jobs::{
    AppliesTo, AttemptLogLine, Job, JobAttempt, JobDefinition, JobParameter, JobState, RetryPolicy,
};
pub use lines::ItemRef;
pub use money::{Currency, InvalidCurrency, split_largest_remainder};
pub use order::{CancelledLineKind, Channel, Line, LineKind, LineState, Order, Tracking};
pub use payment::{LineValue, Payment, PaymentAction, line_values};
pub use plan::{
    CancelRequest, CancellationPlan, Refund, RefundDestination, WARNING_NOT_REFUNDED,
    WARNING_REFUND_NOT_NEEDED, Warning, plan_cancellation,
};
pub use reason::CancellationReason;
pub use refusal::{DateProblem, FieldError, IbanProblem, Refusal};
