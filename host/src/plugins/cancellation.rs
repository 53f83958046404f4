//! What the host hands a plugin: one cancellation, in plain Rust.
//!
//! These types mirror the `rescind:erp/types@0.1.0` records field for field
//! (see the WIT file for the meaning of each) so that callers never touch
//! generated bindings; their enums are the domain's own. The job worker
//! builds a [`Cancellation`] from the committed cancellation record; the
//! runtime converts it at the WIT boundary, where each enum is mapped once.
//!
//! In JSON (`rescind plugin test --cancellation FILE`, `--print-sample`) they
//! keep the WIT's shape: field and case names exactly as in the WIT file
//! (`request-id`, `out-of-stock`), an `option` as `null` or left out, a
//! `tuple` as a two-element array. Unknown fields are refused, so that a typo
//! does not pass silently.

use serde::{Deserialize, Serialize};

pub use crate::domain::{CancellationReason, CancelledLineKind, Channel, RefundDestination};

/// A domain value as the WIT names it: `out-of-stock`, `bank-account`.
/// The names live here, once; the WIT boundary converts the values
/// themselves (`plugins::bindings`).
pub trait WitName: Copy + 'static {
    /// What the value is, for the error: `cancellation reason`.
    const WHAT: &'static str;
    /// Every value.
    const ALL: &'static [Self];
    /// Its name in the WIT file.
    fn wit_name(self) -> &'static str;
}

impl WitName for CancellationReason {
    const WHAT: &'static str = "cancellation reason";
    const ALL: &'static [Self] = &CancellationReason::ALL;
    fn wit_name(self) -> &'static str {
        match self {
            CancellationReason::OutOfStock => "out-of-stock",
            CancellationReason::CustomerCancellation => "customer-cancellation",
            CancellationReason::NoPayment => "no-payment",
            CancellationReason::CustomerService => "customer-service",
        }
    }
}

impl WitName for CancelledLineKind {
    const WHAT: &'static str = "line kind";
    const ALL: &'static [Self] = &CancelledLineKind::ALL;
    fn wit_name(self) -> &'static str {
        match self {
            CancelledLineKind::Product => "product",
            CancelledLineKind::Discount => "discount",
        }
    }
}

impl WitName for RefundDestination {
    const WHAT: &'static str = "refund destination";
    const ALL: &'static [Self] = &RefundDestination::ALL;
    fn wit_name(self) -> &'static str {
        match self {
            RefundDestination::OriginalPaymentMethod => "original-payment-method",
            RefundDestination::BankAccount => "bank-account",
        }
    }
}

impl WitName for Channel {
    const WHAT: &'static str = "order channel";
    const ALL: &'static [Self] = &Channel::ALL;
    fn wit_name(self) -> &'static str {
        match self {
            Channel::Online => "online",
            Channel::Offline => "offline",
        }
    }
}

/// `#[serde(with = "wit_name")]` for a [`WitName`] field: written by its
/// WIT name, read strictly.
mod wit_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::WitName;

    pub fn serialize<S: Serializer, T: WitName>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.wit_name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: WitName>(d: D) -> Result<T, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        T::ALL
            .iter()
            .copied()
            .find(|v| v.wit_name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = T::ALL.iter().map(|v| v.wit_name()).collect();
                serde::de::Error::custom(format_args!(
                    "unknown variant `{name}` of {}, expected one of {}",
                    T::WHAT,
                    known.join(", ")
                ))
            })
    }
}

/// An amount in the currency's minor units, with its ISO 4217 code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Money {
    /// Amount in minor units (cents for EUR); negative for discounts.
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

/// One cancelled order line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CancelledLine {
    /// The line's position number in the original order.
    pub line_number: u32,
    /// The line's stock keeping unit.
    pub sku: String,
    /// The line's whole quantity.
    pub quantity: u32,
    /// Product or discount.
    #[serde(with = "wit_name")]
    pub kind: CancelledLineKind,
    /// The line's amount net of tax.
    pub amount: Money,
    /// The tax on the line's amount.
    pub tax: Money,
    /// The line this one is related to, if any.
    pub parent_line: Option<u32>,
    /// The ERP's own reference of the line, if known.
    pub erp_line_ref: Option<String>,
}

/// A refund triggered by the cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Refund {
    /// The amount refunded.
    pub amount: Money,
    /// Where it goes.
    #[serde(with = "wit_name")]
    pub to: RefundDestination,
}

/// An alternative refund account (already validated by the host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BankDetails {
    /// The account holder's name.
    pub account_owner: String,
    /// The IBAN, without spaces, upper case.
    pub iban: String,
    /// The BIC, when given.
    pub bic: Option<String>,
}

/// Visitor tracking data stored with the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Tracking {
    /// Online or offline order.
    #[serde(with = "wit_name")]
    pub channel: Channel,
    /// The visitor's tracking session id (online orders).
    pub session: Option<String>,
    /// The visitor's customer user id (online orders).
    pub cuid: Option<String>,
    /// The store channel name of an offline order.
    pub offline_channel: Option<String>,
}

/// Everything a plugin needs to tell the ERP about one cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
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
    #[serde(with = "wit_name")]
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

/// A full cancellation of a three-line order (a chair, its warranty, a
/// discount) paid by card, refunded to a bank account, with tracking data:
/// every field a plugin may read has a value.
pub fn sample_cancellation() -> Cancellation {
    let eur = |amount_minor| Money {
        amount_minor,
        currency: "EUR".to_owned(),
    };
    let line = |line_number, sku: &str, quantity, kind, amount, tax, parent_line| CancelledLine {
        line_number,
        sku: sku.to_owned(),
        quantity,
        kind,
        amount: eur(amount),
        tax: eur(tax),
        parent_line,
        erp_line_ref: Some(format!("ERP-1001-{line_number}")),
    };
    Cancellation {
        request_id: "6f1d2c3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f".to_owned(),
        attempt: 1,
        order_number: "SO-1001".to_owned(),
        erp_order_number: Some("ERP-1001".to_owned()),
        business_code: "B1".to_owned(),
        customer_number: "C-1".to_owned(),
        website: "main".to_owned(),
        order_date: "2024-09-01".to_owned(),
        full: true,
        lines: vec![
            line(1, "CHAIR", 2, CancelledLineKind::Product, 20000, 3800, None),
            line(
                2,
                "WARRANTY",
                1,
                CancelledLineKind::Product,
                1500,
                285,
                Some(1),
            ),
            line(
                3,
                "PROMO10",
                1,
                CancelledLineKind::Discount,
                -2000,
                -380,
                None,
            ),
        ],
        all_line_numbers: vec![1, 2, 3],
        reason: CancellationReason::OutOfStock,
        date: "2024-09-09".to_owned(),
        invoice_reference: Some("IDE12345678901".to_owned()),
        forced_cancel: true,
        forced_cancel_with_refund: true,
        refund: Some(Refund {
            amount: eur(23205),
            to: RefundDestination::BankAccount,
        }),
        bank_details: Some(BankDetails {
            account_owner: "Max Mustermann".to_owned(),
            iban: "DE89370400440532013000".to_owned(),
            bic: Some("COBADEFFXXX".to_owned()),
        }),
        for_user: None,
        tracking: Some(Tracking {
            channel: Channel::Online,
            session: Some("123|abc".to_owned()),
            cuid: Some("09|Z0".to_owned()),
            offline_channel: None,
        }),
        parameters: vec![("OrderNumber".to_owned(), "SO-1001".to_owned())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const WIT: &str = include_str!("../../../wit/v0.1.0/rescind-erp.wit");

    /// The field names of `record name { … }` in the WIT file, in order.
    fn wit_items(kind: &str, name: &str) -> Vec<String> {
        let start = WIT
            .find(&format!("{kind} {name} {{"))
            .unwrap_or_else(|| panic!("{kind} {name} is in the WIT"));
        let body = &WIT[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
        body.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("//"))
            .map(|line| line.split([':', ',']).next().unwrap().trim().to_owned())
            .collect()
    }

    fn keys(value: &Value) -> Vec<String> {
        value.as_object().unwrap().keys().cloned().collect()
    }

    fn sorted(mut names: Vec<String>) -> Vec<String> {
        names.sort();
        names
    }

    #[test]
    fn json_has_the_wits_field_and_case_names() {
        let sample = serde_json::to_value(sample_cancellation()).unwrap();
        let line = &sample["lines"][0];
        let refund = &sample["refund"];
        for (record, value) in [
            ("cancellation", &sample),
            ("cancelled-line", line),
            ("money", &line["amount"]),
            ("refund", refund),
            ("bank-details", &sample["bank-details"]),
            ("tracking", &sample["tracking"]),
        ] {
            assert_eq!(
                sorted(keys(value)),
                sorted(wit_items("record", record)),
                "{record}"
            );
        }
        fn wit_names<T: WitName>() -> Vec<String> {
            T::ALL.iter().map(|v| v.wit_name().to_owned()).collect()
        }
        assert_eq!(
            wit_names::<CancellationReason>(),
            wit_items("enum", "cancellation-reason")
        );
        assert_eq!(
            wit_names::<CancelledLineKind>(),
            wit_items("enum", "line-kind")
        );
        assert_eq!(
            wit_names::<RefundDestination>(),
            wit_items("enum", "refund-destination")
        );
        assert_eq!(wit_names::<Channel>(), wit_items("enum", "order-channel"));
        // Each value is written by its WIT name.
        assert_eq!(sample["reason"], "out-of-stock");
        assert_eq!(sample["lines"][2]["kind"], "discount");
        assert_eq!(sample["refund"]["to"], "bank-account");
        assert_eq!(sample["tracking"]["channel"], "online");
        assert_eq!(
            sample["parameters"],
            serde_json::json!([["OrderNumber", "SO-1001"]])
        );
    }

    #[test]
    fn json_round_trips_and_refuses_what_is_not_a_cancellation() {
        let sample = sample_cancellation();
        let text = serde_json::to_string_pretty(&sample).unwrap();
        assert_eq!(serde_json::from_str::<Cancellation>(&text).unwrap(), sample);

        // An option may be left out.
        let mut value = serde_json::to_value(&sample).unwrap();
        value.as_object_mut().unwrap().remove("tracking");
        let parsed: Cancellation = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(parsed.tracking, None);

        for (change, expected) in [
            (
                ("order-numbr", Value::from("1")),
                "unknown field `order-numbr`",
            ),
            (
                ("reason", Value::from("OUT_OF_STOCK")),
                "unknown variant `OUT_OF_STOCK` of cancellation reason, expected one of \
                 out-of-stock, customer-cancellation, no-payment, customer-service",
            ),
            (("attempt", Value::from(-1)), "invalid value"),
        ] {
            let mut bad = value.clone();
            bad[change.0] = change.1;
            let error = serde_json::from_value::<Cancellation>(bad).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        }
        let mut missing = value;
        missing.as_object_mut().unwrap().remove("request-id");
        let error = serde_json::from_value::<Cancellation>(missing).unwrap_err();
        assert!(
            error.to_string().contains("missing field `request-id`"),
            "{error}"
        );
    }
}
