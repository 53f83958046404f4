//! The cancellation the host hands to a plugin: plain Rust mirrors of the WIT
//! `types` interface, so plugin code never touches generated bindings.

use std::fmt;

/// Everything a plugin needs to tell the ERP about one cancellation.
///
/// Construct one in tests with struct-update syntax
/// (`Cancellation { order_number: "1001".into(), ..Default::default() }`) or
/// start from [`testing::sample_cancellation`](crate::testing::sample_cancellation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cancellation {
    /// Stable across every attempt of the same job: send it to the ERP as its
    /// idempotency key, so that the ERP sees each cancellation once.
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
    /// True when this cancellation leaves no active line: the whole order is
    /// cancelled. That includes a cancellation of some lines that were the
    /// last active ones (then [`lines`](Self::lines) lists only those). An
    /// ERP whose API cancels whole orders must act only on a full
    /// cancellation: reject the others with
    /// [`SubmitError::rejected`](crate::SubmitError::rejected), and tell the
    /// operator to bind the job definition with `"appliesTo": "full"`.
    pub full: bool,
    /// The lines cancelled by this cancellation, related lines and discounts
    /// included, in line-number order.
    pub lines: Vec<CancelledLine>,
    /// The line numbers of every line of the original order, cancelled or not:
    /// some ERPs want a full cancellation to list all of them.
    pub all_line_numbers: Vec<u32>,
    /// Why it was cancelled.
    pub reason: CancellationReason,
    /// The cancellation date, `YYYY-MM-DD`.
    pub date: String,
    /// The reference of the invoice the cancellation relates to, if given.
    pub invoice_reference: Option<String>,
    /// The order had deposited payment and the caller forced the cancellation
    /// (WebSphere `forcedCancel`).
    pub forced_cancel: bool,
    /// The caller asked for a refund of deposited payment (WebSphere
    /// `forcedCancelWithRefund`).
    pub forced_cancel_with_refund: bool,
    /// The refund the cancellation triggered, if any.
    pub refund: Option<Refund>,
    /// The alternative refund account, when the refund goes to one.
    pub bank_details: Option<BankDetails>,
    /// The user on whose behalf staff cancelled (WebSphere `forUser`).
    pub for_user: Option<String>,
    /// Visitor tracking data, when the order carries it.
    pub tracking: Option<Tracking>,
    /// The job's parameters (e.g. `OrderNumber`), name and value.
    pub parameters: Vec<(String, String)>,
}

impl Cancellation {
    /// The value of the job parameter `name` (e.g. `OrderNumber`), if the job
    /// has it. Names compare exactly, as the job definition spells them.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The line numbers this cancellation cancels, in order.
    pub fn cancelled_line_numbers(&self) -> Vec<u32> {
        self.lines.iter().map(|line| line.line_number).collect()
    }
}

/// One order line cancelled by a cancellation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelledLine {
    /// The line's position number in the original order; the
    /// `orderItemReference` of the Accounting-as-a-Service API.
    pub line_number: u32,
    /// The line's stock keeping unit.
    pub sku: String,
    /// The line's whole quantity (only whole lines are ever cancelled).
    pub quantity: u32,
    /// Product or discount.
    pub kind: LineKind,
    /// The line's amount net of tax (negative for a discount).
    pub amount: Money,
    /// The tax on the line's amount.
    pub tax: Money,
    /// The line this one is related to (a warranty's product), if any.
    pub parent_line: Option<u32>,
    /// The ERP's own reference of the line, when the order carries one.
    pub erp_line_ref: Option<String>,
}

/// An amount of money: an integer in the currency's minor units (cents for
/// EUR) and its ISO 4217 code. Never a float.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Money {
    /// Amount in minor units; negative for discount lines.
    pub amount_minor: i64,
    /// ISO 4217 currency code, e.g. `EUR`.
    pub currency: String,
}

impl Money {
    /// An amount in minor units of `currency`.
    pub fn new(amount_minor: i64, currency: impl Into<String>) -> Self {
        Money {
            amount_minor,
            currency: currency.into(),
        }
    }
}

/// Why the order (or some of its lines) was cancelled: the four reasons of the
/// Accounting-as-a-Service Cancel Order API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CancellationReason {
    /// Items are unavailable in the warehouse (`OUT_OF_STOCK`).
    OutOfStock,
    /// The customer asked to cancel before shipment (`CUSTOMER_CANCELLATION`);
    /// the only reason a customer's own request may carry, hence the default.
    #[default]
    CustomerCancellation,
    /// Payment of a prepaid order was not received in time (`NO_PAYMENT`).
    NoPayment,
    /// Customer service cancelled for another reason (`CUSTOMER_SERVICE`).
    CustomerService,
}

impl CancellationReason {
    /// Every reason, in the order the API documents them.
    pub const ALL: [CancellationReason; 4] = [
        CancellationReason::OutOfStock,
        CancellationReason::CustomerCancellation,
        CancellationReason::NoPayment,
        CancellationReason::CustomerService,
    ];

    /// The API code: `OUT_OF_STOCK`, `CUSTOMER_CANCELLATION`, `NO_PAYMENT` or
    /// `CUSTOMER_SERVICE`.
    pub fn code(self) -> &'static str {
        match self {
            CancellationReason::OutOfStock => "OUT_OF_STOCK",
            CancellationReason::CustomerCancellation => "CUSTOMER_CANCELLATION",
            CancellationReason::NoPayment => "NO_PAYMENT",
            CancellationReason::CustomerService => "CUSTOMER_SERVICE",
        }
    }
}

impl fmt::Display for CancellationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Whether an order line is a product (or service) or a discount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// A product, service or related item (warranty, installation).
    #[default]
    Product,
    /// A discount; its amount is negative and applies to other lines.
    Discount,
}

impl LineKind {
    /// `product` or `discount`, as rescind's API spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Product => "product",
            LineKind::Discount => "discount",
        }
    }
}

/// A refund that the cancellation triggered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The amount refunded: the cancelled lines net of their discounts, plus
    /// their tax, never more than was deposited.
    pub amount: Money,
    /// Where the money goes.
    pub to: RefundDestination,
}

/// Where a refund goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundDestination {
    /// Back to the payment method the order was paid with.
    OriginalPaymentMethod,
    /// To the bank account in the cancellation's
    /// [`bank_details`](Cancellation::bank_details).
    BankAccount,
}

impl RefundDestination {
    /// `original` or `bankAccount`, as rescind's API spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundDestination::OriginalPaymentMethod => "original",
            RefundDestination::BankAccount => "bankAccount",
        }
    }
}

/// An alternative account for a refund (Accounting-as-a-Service
/// `bankDetails`). The host has already validated the IBAN and BIC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BankDetails {
    /// The account holder's name.
    pub account_owner: String,
    /// The IBAN, without spaces, upper case.
    pub iban: String,
    /// The BIC (8 or 11 characters), when given.
    pub bic: Option<String>,
}

/// Visitor tracking data stored with the order (Optimizely Personalization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    /// Online or offline order: decides which personalization API to call.
    pub channel: Channel,
    /// The visitor's tracking session id (online orders).
    pub session: Option<String>,
    /// The visitor's customer user id, `cuid` (online orders).
    pub cuid: Option<String>,
    /// The store channel name of an offline order, e.g. `store`.
    pub offline_channel: Option<String>,
}

/// How the order was placed, for the personalization service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Placed on the website during a visitor session.
    Online,
    /// Placed offline (store, phone); cancelled through the offline-orders API.
    Offline,
}

impl Channel {
    /// `online` or `offline`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Online => "online",
            Channel::Offline => "offline",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_the_api_codes() {
        let codes: Vec<&str> = CancellationReason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(
            codes,
            [
                "OUT_OF_STOCK",
                "CUSTOMER_CANCELLATION",
                "NO_PAYMENT",
                "CUSTOMER_SERVICE"
            ]
        );
        assert_eq!(CancellationReason::NoPayment.to_string(), "NO_PAYMENT");
    }

    #[test]
    fn parameter_finds_by_exact_name() {
        let cancellation = Cancellation {
            parameters: vec![
                ("OrderNumber".into(), "1001".into()),
                ("Extra".into(), "x".into()),
            ],
            ..Default::default()
        };
        assert_eq!(cancellation.parameter("OrderNumber"), Some("1001"));
        assert_eq!(cancellation.parameter("ordernumber"), None);
        assert_eq!(cancellation.parameter("Missing"), None);
    }
}
