//! What the host hands a plugin: one cancellation, in plain Rust.
//!
//! These types mirror the `rescind:erp/types@0.1.0` records field for field
//! (see the WIT file for the meaning of each) so that callers never touch
//! generated bindings. The job worker builds a [`Cancellation`] from the
//! domain's cancellation plan; the runtime converts it at the WIT boundary.

/// Why the order (or some of its lines) was cancelled: the four reasons of
/// the Accounting-as-a-Service Cancel Order API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancellationReason {
    /// Items are unavailable in the warehouse (`OUT_OF_STOCK`).
    OutOfStock,
    /// The customer asked to cancel before shipment (`CUSTOMER_CANCELLATION`).
    CustomerCancellation,
    /// Payment of a prepaid order was not received in time (`NO_PAYMENT`).
    NoPayment,
    /// Customer service cancelled for another reason (`CUSTOMER_SERVICE`).
    CustomerService,
}

/// An amount in the currency's minor units, with its ISO 4217 code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Money {
    /// Amount in minor units (cents for EUR); negative for discounts.
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

/// Whether an order line is a product (or service) or a discount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// A product, service or related item (warranty, installation).
    Product,
    /// A discount; its amount is negative.
    Discount,
}

/// One cancelled order line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelledLine {
    /// The line's position number in the original order.
    pub line_number: u32,
    /// The line's stock keeping unit.
    pub sku: String,
    /// The line's whole quantity.
    pub quantity: u32,
    /// Product or discount.
    pub kind: LineKind,
    /// The line's amount net of tax.
    pub amount: Money,
    /// The tax on the line's amount.
    pub tax: Money,
    /// The line this one is related to, if any.
    pub parent_line: Option<u32>,
    /// The ERP's own reference of the line, if known.
    pub erp_line_ref: Option<String>,
}

/// Where a refund goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundDestination {
    /// Back to the original payment method.
    OriginalPaymentMethod,
    /// To the account in [`Cancellation::bank_details`].
    BankAccount,
}

/// A refund triggered by the cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The amount refunded.
    pub amount: Money,
    /// Where it goes.
    pub to: RefundDestination,
}

/// An alternative refund account (already validated by the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankDetails {
    /// The account holder's name.
    pub account_owner: String,
    /// The IBAN, without spaces, upper case.
    pub iban: String,
    /// The BIC, when given.
    pub bic: Option<String>,
}

/// How the order was placed, for the personalization service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderChannel {
    /// Placed on the website during a visitor session.
    Online,
    /// Placed offline (store, phone).
    Offline,
}

/// Visitor tracking data stored with the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    /// Online or offline order.
    pub channel: OrderChannel,
    /// The visitor's tracking session id (online orders).
    pub session: Option<String>,
    /// The visitor's customer user id (online orders).
    pub cuid: Option<String>,
    /// The store channel name of an offline order.
    pub offline_channel: Option<String>,
}

/// Everything a plugin needs to tell the ERP about one cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    /// Stable across attempts of the same job: the ERP's idempotency key.
    pub request_id: String,
    /// Which attempt this is, starting at 1.
    pub attempt: u32,
    /// The order number known to the commerce platform and to rescind.
    pub order_number: String,
    /// The ERP's own order number, when the order has one.
    pub erp_order_number: Option<String>,
    /// The business (company, store) the order belongs to.
    pub business_code: String,
    /// The customer's number.
    pub customer_number: String,
    /// The website the order was placed on.
    pub website: String,
    /// The date the order was placed, `YYYY-MM-DD`.
    pub order_date: String,
    /// True when no active line is left: the whole order is cancelled.
    pub full: bool,
    /// The cancelled lines, in line-number order.
    pub lines: Vec<CancelledLine>,
    /// The line numbers of every line of the original order.
    pub all_line_numbers: Vec<u32>,
    /// Why it was cancelled.
    pub reason: CancellationReason,
    /// The cancellation date, `YYYY-MM-DD`.
    pub date: String,
    /// The invoice the cancellation relates to, if given.
    pub invoice_reference: Option<String>,
    /// WebSphere `forcedCancel`.
    pub forced_cancel: bool,
    /// WebSphere `forcedCancelWithRefund`.
    pub forced_cancel_with_refund: bool,
    /// The refund the cancellation triggered, if any.
    pub refund: Option<Refund>,
    /// The alternative refund account, if any.
    pub bank_details: Option<BankDetails>,
    /// The user on whose behalf staff cancelled (WebSphere `forUser`).
    pub for_user: Option<String>,
    /// Visitor tracking data, when the order carries it.
    pub tracking: Option<Tracking>,
    /// The job's parameters (e.g. `OrderNumber`), name and value.
    pub parameters: Vec<(String, String)>,
}
