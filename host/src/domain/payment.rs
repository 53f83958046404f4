//! Payments: what a cancellation is worth, and how that amount is voided or
//! refunded across the order's payments (SPEC §2.4, WebSphere and AaaS seeds).
//!
//! # What a line is worth
//! A product line is worth its amount plus its tax, plus its share of every
//! discount that applies to it. A discount that applies to several lines is
//! shared among them by [`split_largest_remainder`]: its amount in proportion
//! to the lines' amounts, its tax in proportion to the lines' taxes (so that a
//! discount on a zero-rated and a taxed line puts all of its tax on the taxed
//! one). A discount line itself is worth nothing: its whole value already sits
//! in the shares of its lines.
//!
//! The shares are fixed by the order, not by the cancellation, so the values
//! of all product lines add up to the order total exactly. Any sequence of
//! partial cancellations followed by cancelling the rest therefore returns
//! exactly the total: the last cancellation takes the remainder by
//! construction, with no rounding leak.
//!
//! # Where the money goes
//! A payment has an open authorization (`authorized - deposited - voided`)
//! and refundable captured money (`deposited - refunded`). The cancelled
//! value is settled in two passes, each over the payments in the order's
//! list order:
//! 1. it is voided from open authorizations, as far as they go: money not yet
//!    captured is released rather than captured and paid back;
//! 2. what is left comes out of captured money: with
//!    `forcedCancelWithRefund` it is refunded, as far as each payment's
//!    refundable money goes; with `forcedCancel` alone it is not refunded
//!    (WebSphere: "no payment refund action is triggered"), and the plan says
//!    so with a `not-refunded` warning.
//!
//! So no payment is ever voided beyond its authorization or refunded beyond
//! its deposit, and no amount is negative.

use std::collections::BTreeMap;

use super::money::{self, split_largest_remainder};
use super::order::{Line, LineKind, Order};
use super::refusal::Refusal;

/// What one payment gives back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentAction {
    /// The payment's id.
    pub payment_id: String,
    /// What is voided of its open authorization.
    pub void_minor: i64,
    /// What is refunded of its deposit.
    pub refund_minor: i64,
}

/// A payment that pays for the order, with what has happened to it so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The payment's id, unique within the order.
    pub id: String,
    /// The payment method, e.g. `card` or `invoice`; a refund to the
    /// "original method" goes back to it.
    pub method: String,
    /// What the customer authorized.
    pub authorized_minor: i64,
    /// What has been captured (deposited) of the authorization.
    pub deposited_minor: i64,
    /// What of the authorization has been voided (released) by cancellations.
    pub voided_minor: i64,
    /// What of the deposit has been refunded by cancellations.
    pub refunded_minor: i64,
}

impl Payment {
    /// The authorization still open: neither captured nor voided.
    pub fn open_authorization_minor(&self) -> i64 {
        (self.authorized_minor - self.deposited_minor - self.voided_minor).max(0)
    }

    /// The captured money not yet refunded.
    pub fn refundable_minor(&self) -> i64 {
        (self.deposited_minor - self.refunded_minor).max(0)
    }
}

/// Whether any payment holds captured money: such an order needs
/// `forcedCancel` (WebSphere seed). A deposit that was refunded in full no
/// longer counts: nothing captured is left.
pub fn has_deposited_payment(payments: &[Payment]) -> bool {
    payments.iter().any(|p| p.refundable_minor() > 0)
}

/// What one line is worth once discounts are shared among their lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineValue {
    /// The line's amount net of its discount shares.
    pub amount_minor: i64,
    /// The line's tax net of its discount shares' tax.
    pub tax_minor: i64,
}

impl LineValue {
    /// Amount plus tax: what the customer pays for the line.
    pub fn total_minor(self) -> Result<i64, Refusal> {
        money::add(self.amount_minor, self.tax_minor)
    }
}

/// The value of every line of the order, by line number (see the module
/// docs). Discount lines are worth zero; their value is in their lines'
/// shares. Targets that name no product line are ignored here:
/// [`Order::validate`] reports them.
pub fn line_values(order: &Order) -> Result<BTreeMap<u32, LineValue>, Refusal> {
    let mut values: BTreeMap<u32, LineValue> = BTreeMap::new();
    let mut products: BTreeMap<u32, &Line> = BTreeMap::new();
    for line in &order.lines {
        let own = match line.kind {
            LineKind::Product => {
                products.insert(line.number, line);
                LineValue {
                    amount_minor: line.amount_minor,
                    tax_minor: line.tax_minor,
                }
            }
            LineKind::Discount { .. } => LineValue::default(),
        };
        values.insert(line.number, own);
    }
    for line in &order.lines {
        let LineKind::Discount { applies_to } = &line.kind else {
            continue;
        };
        // Sorted targets make the tie-break "lower line number first",
        // whatever order appliesTo lists them in.
        let mut targets: Vec<&Line> = applies_to
            .iter()
            .filter_map(|t| products.get(t).copied())
            .collect();
        targets.sort_unstable_by_key(|l| l.number);
        targets.dedup_by_key(|l| l.number);
        // Validated products have non-negative amounts; anything else weighs 0.
        let weight = |v: i64| u64::try_from(v).unwrap_or(0);
        let amount_weights: Vec<u64> = targets.iter().map(|l| weight(l.amount_minor)).collect();
        let tax_weights: Vec<u64> = targets.iter().map(|l| weight(l.tax_minor)).collect();
        let amount_shares = split_largest_remainder(line.amount_minor, &amount_weights);
        let tax_shares = split_largest_remainder(line.tax_minor, &tax_weights);
        for ((target, amount), tax) in targets.iter().zip(amount_shares).zip(tax_shares) {
            let value = values.entry(target.number).or_default();
            value.amount_minor = money::add(value.amount_minor, amount)?;
            value.tax_minor = money::add(value.tax_minor, tax)?;
        }
    }
    Ok(values)
}

/// How a cancellation's value is settled over the payments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settlement {
    /// Per payment that is voided or refunded anything, in list order.
    pub actions: Vec<PaymentAction>,
    /// The sum of the voids.
    pub voided_minor: i64,
    /// The sum of the refunds.
    pub refunded_minor: i64,
    /// What of the cancelled value was neither voided nor refunded: captured
    /// money kept because no refund was asked for (or, on an order without
    /// payments, money never paid).
    pub unreturned_minor: i64,
}

/// Settles `amount_minor` over `payments`: void open authorizations first,
/// then refund captured money when `refund` is set (see the module docs).
pub fn settle(
    payments: &[Payment],
    amount_minor: i64,
    refund: bool,
) -> Result<Settlement, Refusal> {
    let mut left = amount_minor.max(0);
    let mut voids = vec![0i64; payments.len()];
    let mut refunds = vec![0i64; payments.len()];
    for (payment, void) in payments.iter().zip(voids.iter_mut()) {
        let take = left.min(payment.open_authorization_minor());
        *void = take;
        left = money::sub(left, take)?;
    }
    if refund {
        for (payment, refunded) in payments.iter().zip(refunds.iter_mut()) {
            let take = left.min(payment.refundable_minor());
            *refunded = take;
            left = money::sub(left, take)?;
        }
    }
    let mut settlement = Settlement {
        unreturned_minor: left,
        ..Settlement::default()
    };
    for ((payment, void), refunded) in payments.iter().zip(voids).zip(refunds) {
        settlement.voided_minor = money::add(settlement.voided_minor, void)?;
        settlement.refunded_minor = money::add(settlement.refunded_minor, refunded)?;
        if void != 0 || refunded != 0 {
            settlement.actions.push(PaymentAction {
                payment_id: payment.id.clone(),
                void_minor: void,
                refund_minor: refunded,
            });
        }
    }
    Ok(settlement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::*;

    fn actions(settlement: &Settlement) -> Vec<(&str, i64, i64)> {
        settlement
            .actions
            .iter()
            .map(|a| (a.payment_id.as_str(), a.void_minor, a.refund_minor))
            .collect()
    }

    #[test]
    fn settle_table() {
        // WebSphere seed: authorized payment is cancelled (voided); deposited payment is
        // refunded only with forcedCancelWithRefund. SPEC §2.4: never above the deposit.
        let mut partly_used = payment("c", 100, 40);
        partly_used.voided_minor = 50;
        partly_used.refunded_minor = 30;
        let payments = vec![payment("a", 100, 0), payment("b", 100, 100), partly_used];
        /// Amount, refund?, expected (payment, void, refund) actions, unreturned.
        type Case<'a> = (i64, bool, &'a [(&'a str, i64, i64)], i64);
        let cases: &[Case<'_>] = &[
            (0, true, &[], 0),
            (60, false, &[("a", 60, 0)], 0),
            (105, false, &[("a", 100, 0), ("c", 5, 0)], 0),
            (130, false, &[("a", 100, 0), ("c", 10, 0)], 20),
            (130, true, &[("a", 100, 0), ("b", 0, 20), ("c", 10, 0)], 0),
            (
                230,
                true,
                &[("a", 100, 0), ("b", 0, 100), ("c", 10, 10)],
                10,
            ),
            (-5, true, &[], 0),
        ];
        for &(amount, refund, expected, unreturned) in cases {
            let settlement = settle(&payments, amount, refund).unwrap();
            assert_eq!(actions(&settlement), expected, "{amount} refund={refund}");
            assert_eq!(
                settlement.unreturned_minor, unreturned,
                "{amount} refund={refund}"
            );
            let voided: i64 = expected.iter().map(|a| a.1).sum();
            let refunded: i64 = expected.iter().map(|a| a.2).sum();
            assert_eq!(
                (settlement.voided_minor, settlement.refunded_minor),
                (voided, refunded)
            );
        }
    }

    #[test]
    fn deposits_that_were_refunded_in_full_no_longer_count() {
        let mut refunded = payment("a", 100, 100);
        assert!(has_deposited_payment(std::slice::from_ref(&refunded)));
        refunded.refunded_minor = 100;
        assert!(!has_deposited_payment(&[refunded, payment("b", 100, 0)]));
        assert!(!has_deposited_payment(&[]));
    }

    #[test]
    fn discount_tax_follows_the_taxed_lines() {
        // SPEC §2.4: refund = amounts net of their discounts, plus their tax.
        // A book (no tax) and a chair (tax) share a discount: its amount by amount, its tax
        // all on the chair, so neither line's tax goes negative.
        let order = Order {
            lines: vec![
                product(1, "BOOK", 1, 1000, 0),
                product(2, "CHAIR", 1, 1000, 190),
                discount(3, -200, -19, &[2, 1]),
            ],
            payments: vec![],
            allocations: vec![],
            ..api_order()
        };
        let values = line_values(&order).unwrap();
        assert_eq!(
            values[&1],
            LineValue {
                amount_minor: 900,
                tax_minor: 0
            }
        );
        assert_eq!(
            values[&2],
            LineValue {
                amount_minor: 900,
                tax_minor: 171
            }
        );
        assert_eq!(values[&3], LineValue::default());
        assert_eq!(order.validate(), Ok(()));
    }

    #[test]
    fn a_discount_over_zero_priced_lines_is_shared_equally_and_refused() {
        // Equal weights when every target is free: the discount would make them negative.
        let order = Order {
            lines: vec![
                product(1, "FREE", 1, 0, 0),
                product(2, "ALSO FREE", 1, 0, 0),
                discount(3, -3, 0, &[1, 2]),
            ],
            payments: vec![],
            allocations: vec![],
            ..api_order()
        };
        let values = line_values(&order).unwrap();
        assert_eq!((values[&1].amount_minor, values[&2].amount_minor), (-2, -1));
        let fields: Vec<String> = order
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["lines[0].amountMinor", "lines[1].amountMinor"]);
    }
}
