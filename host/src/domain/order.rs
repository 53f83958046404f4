//! The order as the host knows it, and the consistency rules an order must
//! satisfy before any cancellation rule is applied to it.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use super::approval::Approval;
use super::identifier::{MAX_ALLOCATIONS, MAX_LINES, MAX_PAYMENTS, identifier_problem};
use super::inventory::{Allocation, AllocationState};
use super::money::Currency;
use super::payment::{LineValue, Payment, line_values};
use super::refusal::FieldError;

/// An order: what the commerce platform sent with `PUT /v1/orders/{number}`,
/// plus the states that cancellations have changed since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The order number the platform uses (the URL's `{orderNumber}`).
    pub number: String,
    /// The AaaS business the order belongs to.
    pub business_code: String,
    /// The customer who placed it; customers may cancel only their own.
    pub customer_number: String,
    /// The website it was placed on (its `allowCancellationRequest` applies).
    pub website: String,
    /// The order's current status code as the ERP reports it; the status
    /// mapping turns it into a display status.
    pub status: String,
    /// The day the order was placed; no cancellation is dated before it.
    pub order_date: time::Date,
    /// The currency of every amount on the order.
    pub currency: Currency,
    /// The ERP's own number for the order, once the ERP has confirmed it.
    pub erp_order_number: Option<String>,
    /// The order's lines (positions), in any order.
    pub lines: Vec<Line>,
    /// The payments that pay for the order.
    pub payments: Vec<Payment>,
    /// Stock allocated or expected for its lines.
    pub allocations: Vec<Allocation>,
    /// The B2B order-approval request, if there is one.
    pub approval: Option<Approval>,
    /// Where the order came from (Optimizely Personalization needs it).
    pub tracking: Option<Tracking>,
}

/// One position of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The position number: the `orderItemReference` of the AaaS seed.
    pub number: u32,
    /// The article.
    pub sku: String,
    /// How many units; only all of them can be cancelled.
    pub quantity: u32,
    /// The line's net amount in minor units: `>= 0` for products, `<= 0` for
    /// discounts.
    pub amount_minor: i64,
    /// The tax on it, with the same sign rule as the amount.
    pub tax_minor: i64,
    /// The line this one belongs to (a warranty to its chair): cancelled with
    /// it.
    pub parent_line: Option<u32>,
    /// Product or discount.
    pub kind: LineKind,
    /// Active or cancelled.
    pub state: LineState,
    /// The ERP's reference for the line, if it has one.
    pub erp_line_ref: Option<String>,
}

/// What a line sells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// Goods or a service.
    Product,
    /// A reduction of the lines it applies to; it is cancelled when every one
    /// of them is.
    Discount {
        /// The product lines it reduces.
        applies_to: Vec<u32>,
    },
}

/// What a cancelled line sells, as the ERP is told: a line's [`LineKind`]
/// without what a discount applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelledLineKind {
    /// Goods or a service.
    Product,
    /// A reduction of other lines.
    Discount,
}

impl CancelledLineKind {
    /// Every kind.
    pub const ALL: [CancelledLineKind; 2] =
        [CancelledLineKind::Product, CancelledLineKind::Discount];
}

impl From<&LineKind> for CancelledLineKind {
    fn from(kind: &LineKind) -> Self {
        match kind {
            LineKind::Product => CancelledLineKind::Product,
            LineKind::Discount { .. } => CancelledLineKind::Discount,
        }
    }
}

/// Whether a line still stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineState {
    /// Ordered and not cancelled.
    Active,
    /// Cancelled; lines are never removed from the order.
    Cancelled,
}

/// The channel an order was placed through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// On the website, with a browsing session.
    Online,
    /// In a store or by phone.
    Offline,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 2] = [Channel::Online, Channel::Offline];
}

/// Tracking data for Optimizely Personalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    /// Online or offline.
    pub channel: Channel,
    /// The visitor's session (online orders).
    pub session: Option<String>,
    /// The visitor's customer id (online orders).
    pub cuid: Option<String>,
    /// The offline channel name, e.g. `store` (offline orders).
    pub offline_channel: Option<String>,
}

impl Line {
    /// Whether the line is still active.
    pub fn is_active(&self) -> bool {
        self.state == LineState::Active
    }

    /// The lines a discount applies to; empty for a product.
    pub fn applies_to(&self) -> &[u32] {
        match &self.kind {
            LineKind::Product => &[],
            LineKind::Discount { applies_to } => applies_to,
        }
    }

    /// Whether this is a discount line.
    pub fn is_discount(&self) -> bool {
        matches!(self.kind, LineKind::Discount { .. })
    }
}

impl Order {
    /// The line with position `number`.
    pub fn line(&self, number: u32) -> Option<&Line> {
        self.lines.iter().find(|line| line.number == number)
    }

    /// The position numbers of the active lines, ascending.
    pub fn active_lines(&self) -> Vec<u32> {
        let mut active: Vec<u32> = self
            .lines
            .iter()
            .filter(|line| line.is_active())
            .map(|line| line.number)
            .collect();
        active.sort_unstable();
        active
    }

    /// Checks that the order is consistent, so that every cancellation rule
    /// can rely on it. Returns every problem found, each with the JSON path of
    /// its field. `PUT /v1/orders` should refuse an order that fails this, and
    /// [`plan_cancellation`](super::plan_cancellation) refuses to plan on one.
    ///
    /// The rules:
    /// - `number`, `businessCode`, `customerNumber`, `website`, `status` are
    ///   not blank, nor are `erpOrderNumber` and `erpLineRef` when given;
    ///   there is at least one line.
    /// - line numbers are unique and at least 1; every line has a `sku`.
    /// - a product's amount and tax are `>= 0`; a discount's are `<= 0`.
    /// - `parentLine` names another product line, and following parents never
    ///   comes back to the same line; discount lines have no parent.
    /// - a discount's `appliesTo` names at least one product line, each once.
    /// - allocations name a line of the order and a warehouse, and are
    ///   released once their line is cancelled.
    /// - the absolute values of all amounts and taxes add up to at most
    ///   `i64::MAX`, so no sum on the order can overflow.
    /// - after discounts are shared among their lines, no product line's net
    ///   amount or net tax is negative (a discount never exceeds what it
    ///   reduces).
    /// - line states are closed under the cascade rules: no active line under a
    ///   cancelled parent, no active discount all of whose lines are cancelled,
    ///   no cancelled discount with an active line.
    /// - payments: unique non-blank ids, non-blank method, amounts `>= 0`,
    ///   `deposited + voided <= authorized`, `refunded <= deposited`. When
    ///   there are payments, they authorize exactly the order total, and what
    ///   was voided and refunded is at most the value of the cancelled lines.
    ///   (No payments is fine: an order paid on invoice after delivery.)
    ///
    /// The last three are checked only once the others hold, since they
    /// compute with the lines.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        self.check_header(&mut errors);
        let index_of = self.check_lines(&mut errors);
        self.check_allocations(&index_of, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let Ok(values) = line_values(self) else {
            // Unreachable after check_lines bounded the amounts; kept so that
            // validation can never panic.
            return Err(vec![overflow_error()]);
        };
        self.check_net_values(&values, &mut errors);
        self.check_states(&index_of, &mut errors);
        self.check_payments(&values, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn check_header(&self, errors: &mut Vec<FieldError>) {
        for (field, value) in [
            ("number", Some(&self.number)),
            ("businessCode", Some(&self.business_code)),
            ("customerNumber", Some(&self.customer_number)),
            ("website", Some(&self.website)),
            ("status", Some(&self.status)),
            ("erpOrderNumber", self.erp_order_number.as_ref()),
        ] {
            if let Some(problem) = value.and_then(|v| identifier_problem(v)) {
                errors.push(FieldError::new(field, problem));
            }
        }
        if self.lines.is_empty() {
            errors.push(FieldError::new("lines", "an order has at least one line"));
        }
        for (field, count, max) in [
            ("lines", self.lines.len(), MAX_LINES),
            ("payments", self.payments.len(), MAX_PAYMENTS),
            ("allocations", self.allocations.len(), MAX_ALLOCATIONS),
        ] {
            if count > max {
                errors.push(FieldError::new(
                    field,
                    format!("an order has at most {max} {field}; this one has {count}"),
                ));
            }
        }
    }

    /// Checks each line and the links between lines; returns the index of
    /// each line number (the first, when numbers repeat).
    fn check_lines(&self, errors: &mut Vec<FieldError>) -> BTreeMap<u32, usize> {
        let mut index_of: BTreeMap<u32, usize> = BTreeMap::new();
        for (index, line) in self.lines.iter().enumerate() {
            let at = |field: &str| format!("lines[{index}].{field}");
            if line.number == 0 {
                errors.push(FieldError::new(at("lineNumber"), "line numbers start at 1"));
            }
            // The first line with a number keeps it; later ones are errors.
            if let Entry::Vacant(entry) = index_of.entry(line.number) {
                entry.insert(index);
            } else {
                errors.push(FieldError::new(
                    at("lineNumber"),
                    format!("line number {} is used more than once", line.number),
                ));
            }
            if line.quantity == 0 {
                errors.push(FieldError::new(at("quantity"), "must be at least 1"));
            }
            for (field, value) in [
                ("sku", Some(&line.sku)),
                ("erpLineRef", line.erp_line_ref.as_ref()),
            ] {
                if let Some(problem) = value.and_then(|v| identifier_problem(v)) {
                    errors.push(FieldError::new(at(field), problem));
                }
            }
            // A discount reduces, a product adds: the sign says which.
            let (wrong_sign, rule): (fn(i64) -> bool, &str) = if line.is_discount() {
                (|v| v > 0, "a discount's amounts are zero or negative")
            } else {
                (|v| v < 0, "a product's amounts are zero or positive")
            };
            for (field, value) in [
                ("amountMinor", line.amount_minor),
                ("taxMinor", line.tax_minor),
            ] {
                if wrong_sign(value) {
                    errors.push(FieldError::new(at(field), rule));
                }
            }
        }

        let is_product = |number: u32| {
            index_of
                .get(&number)
                .is_some_and(|&i| !self.lines[i].is_discount())
        };
        for (index, line) in self.lines.iter().enumerate() {
            let at = |field: &str| format!("lines[{index}].{field}");
            if let Some(parent) = line.parent_line {
                let problem = if line.is_discount() {
                    Some(
                        "a discount has no parent line: it follows the lines in appliesTo"
                            .to_owned(),
                    )
                } else if parent == line.number {
                    Some("a line cannot be its own parent".to_owned())
                } else if !index_of.contains_key(&parent) {
                    Some(format!("the order has no line {parent}"))
                } else if !is_product(parent) {
                    Some(format!(
                        "line {parent} is a discount and cannot be a parent"
                    ))
                } else if self.parent_chain_returns_to(line.number, &index_of) {
                    Some("parent lines form a cycle".to_owned())
                } else {
                    None
                };
                if let Some(problem) = problem {
                    errors.push(FieldError::new(at("parentLine"), problem));
                }
            }
            if let LineKind::Discount { applies_to } = &line.kind {
                if applies_to.is_empty() {
                    errors.push(FieldError::new(
                        at("appliesTo"),
                        "a discount applies to at least one line",
                    ));
                }
                let mut seen = BTreeSet::new();
                for (t, &target) in applies_to.iter().enumerate() {
                    let problem = if !seen.insert(target) {
                        format!("line {target} is listed more than once")
                    } else if !index_of.contains_key(&target) {
                        format!("the order has no line {target}")
                    } else if !is_product(target) {
                        format!("line {target} is a discount; discounts apply to product lines")
                    } else {
                        continue;
                    };
                    errors.push(FieldError::new(
                        format!("lines[{index}].appliesTo[{t}]"),
                        problem,
                    ));
                }
            }
        }

        let magnitude: i128 = self
            .lines
            .iter()
            .map(|l| i128::from(l.amount_minor).abs() + i128::from(l.tax_minor).abs())
            .sum();
        if magnitude > i128::from(i64::MAX) {
            errors.push(overflow_error());
        }
        index_of
    }

    /// Whether following parents from `number` comes back to it. Bounded by
    /// the number of lines, so a cycle elsewhere cannot loop forever.
    fn parent_chain_returns_to(&self, number: u32, index_of: &BTreeMap<u32, usize>) -> bool {
        let parent_of = |n: u32| index_of.get(&n).and_then(|&i| self.lines[i].parent_line);
        let mut current = parent_of(number);
        for _ in 0..self.lines.len() {
            match current {
                None => return false,
                Some(n) if n == number => return true,
                Some(n) => current = parent_of(n),
            }
        }
        false
    }

    fn check_allocations(&self, index_of: &BTreeMap<u32, usize>, errors: &mut Vec<FieldError>) {
        for (index, allocation) in self.allocations.iter().enumerate() {
            let at = |field: &str| format!("allocations[{index}].{field}");
            match index_of.get(&allocation.line_number) {
                None => errors.push(FieldError::new(
                    at("lineNumber"),
                    format!("the order has no line {}", allocation.line_number),
                )),
                Some(&i)
                    if !self.lines[i].is_active()
                        && allocation.state == AllocationState::Allocated =>
                {
                    errors.push(FieldError::new(
                        at("state"),
                        "the allocation of a cancelled line must be released",
                    ));
                }
                Some(_) => {}
            }
            if let Some(problem) = identifier_problem(&allocation.warehouse) {
                errors.push(FieldError::new(at("warehouse"), problem));
            }
            if allocation.quantity == 0 {
                errors.push(FieldError::new(at("quantity"), "must be at least 1"));
            }
        }
    }

    fn check_net_values(&self, values: &BTreeMap<u32, LineValue>, errors: &mut Vec<FieldError>) {
        for (index, line) in self.lines.iter().enumerate() {
            let Some(value) = values.get(&line.number) else {
                continue;
            };
            if value.amount_minor < 0 {
                errors.push(FieldError::new(
                    format!("lines[{index}].amountMinor"),
                    format!("the discounts on line {} exceed its amount", line.number),
                ));
            }
            if value.tax_minor < 0 {
                errors.push(FieldError::new(
                    format!("lines[{index}].taxMinor"),
                    format!("the discounts on line {} exceed its tax", line.number),
                ));
            }
        }
    }

    /// Line states closed under the cascade (SPEC §2.3).
    fn check_states(&self, index_of: &BTreeMap<u32, usize>, errors: &mut Vec<FieldError>) {
        let cancelled = |number: u32| {
            index_of
                .get(&number)
                .is_some_and(|&i| !self.lines[i].is_active())
        };
        for (index, line) in self.lines.iter().enumerate() {
            let problem = if line.is_active() && line.parent_line.is_some_and(cancelled) {
                "an active line cannot belong to a cancelled line"
            } else if line.is_discount()
                && line.is_active()
                && line.applies_to().iter().all(|&t| cancelled(t))
            {
                "a discount whose lines are all cancelled must be cancelled"
            } else if line.is_discount()
                && !line.is_active()
                && !line.applies_to().iter().all(|&t| cancelled(t))
            {
                "a discount is cancelled only together with every line it applies to"
            } else {
                continue;
            };
            errors.push(FieldError::new(format!("lines[{index}].state"), problem));
        }
    }

    fn check_payments(&self, values: &BTreeMap<u32, LineValue>, errors: &mut Vec<FieldError>) {
        let mut ids = BTreeSet::new();
        let mut authorized: i128 = 0;
        let mut returned: i128 = 0;
        let mut amounts_ok = true;
        for (index, payment) in self.payments.iter().enumerate() {
            let at = |field: &str| format!("payments[{index}].{field}");
            if let Some(problem) = identifier_problem(&payment.id) {
                errors.push(FieldError::new(at("id"), problem));
            } else if !ids.insert(payment.id.as_str()) {
                errors.push(FieldError::new(
                    at("id"),
                    format!("payment id {:?} is used more than once", payment.id),
                ));
            }
            if let Some(problem) = identifier_problem(&payment.method) {
                errors.push(FieldError::new(at("method"), problem));
            }
            let amounts = [
                ("authorizedMinor", payment.authorized_minor),
                ("depositedMinor", payment.deposited_minor),
                ("voidedMinor", payment.voided_minor),
                ("refundedMinor", payment.refunded_minor),
            ];
            let negative: Vec<&str> = amounts
                .iter()
                .filter(|(_, v)| *v < 0)
                .map(|(name, _)| *name)
                .collect();
            for name in &negative {
                errors.push(FieldError::new(at(name), "must not be negative"));
            }
            let auth = i128::from(payment.authorized_minor);
            if !negative.is_empty() {
                amounts_ok = false;
            } else if i128::from(payment.deposited_minor) + i128::from(payment.voided_minor) > auth
            {
                errors.push(FieldError::new(
                    at("depositedMinor"),
                    "deposited plus voided cannot exceed what was authorized",
                ));
                amounts_ok = false;
            } else if payment.refunded_minor > payment.deposited_minor {
                errors.push(FieldError::new(
                    at("refundedMinor"),
                    "cannot exceed what was deposited",
                ));
                amounts_ok = false;
            }
            authorized += auth;
            returned += i128::from(payment.voided_minor) + i128::from(payment.refunded_minor);
        }
        if self.payments.is_empty() || !amounts_ok {
            return;
        }
        let worth = |v: &LineValue| i128::from(v.amount_minor) + i128::from(v.tax_minor);
        let total: i128 = values.values().map(worth).sum();
        let cancelled_value: i128 = self
            .lines
            .iter()
            .filter(|line| !line.is_active())
            .filter_map(|line| values.get(&line.number))
            .map(worth)
            .sum();
        if authorized != total {
            errors.push(FieldError::new(
                "payments",
                format!("the payments authorize {authorized}, but the order total is {total}"),
            ));
        } else if returned > cancelled_value {
            errors.push(FieldError::new(
                "payments",
                format!("{returned} was voided or refunded, more than the {cancelled_value} of the cancelled lines"),
            ));
        }
    }
}

fn overflow_error() -> FieldError {
    FieldError::new(
        "lines",
        "the amounts and taxes add up beyond the largest representable amount",
    )
}

#[cfg(test)]
mod tests {
    use crate::domain::fixtures::*;
    use crate::domain::*;

    /// The fields an order's validation names, in order.
    fn fields(order: &Order) -> Vec<String> {
        order
            .validate()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn the_fixture_orders_are_valid() {
        assert_eq!(api_order().validate(), Ok(()));
        assert_eq!(desk_order().validate(), Ok(()));
    }

    #[test]
    fn structural_problems_are_named_by_field() {
        // docs/api.md PUT /v1/orders: lineNumber, parentLine, kind/appliesTo; SPEC §2.3 cascade rules
        // rely on these.
        type Breakage = fn(&mut Order);
        let cases: Vec<(&str, Breakage, &[&str])> = vec![
            (
                "blank header",
                |o| {
                    o.number = " ".into();
                    o.website = String::new();
                },
                &["number", "website"],
            ),
            (
                "no lines",
                |o| {
                    o.lines.clear();
                    o.payments.clear();
                    o.allocations.clear();
                },
                &["lines"],
            ),
            (
                "line number 0",
                |o| o.lines[1].number = 0,
                &["lines[1].lineNumber", "allocations[1].lineNumber"],
            ),
            (
                "duplicate line number",
                |o| o.lines[1].number = 1,
                &[
                    "lines[1].lineNumber",
                    "lines[1].parentLine",
                    "allocations[1].lineNumber",
                ],
            ),
            (
                "blank sku",
                |o| o.lines[0].sku = String::new(),
                &["lines[0].sku"],
            ),
            (
                "negative product",
                |o| o.lines[0].amount_minor = -1,
                &["lines[0].amountMinor"],
            ),
            (
                "negative product tax",
                |o| o.lines[0].tax_minor = -1,
                &["lines[0].taxMinor"],
            ),
            (
                "positive discount",
                |o| o.lines[2].amount_minor = 1,
                &["lines[2].amountMinor"],
            ),
            (
                "positive discount tax",
                |o| o.lines[2].tax_minor = 1,
                &["lines[2].taxMinor"],
            ),
            (
                "own parent",
                |o| o.lines[0].parent_line = Some(1),
                &["lines[0].parentLine"],
            ),
            (
                "unknown parent",
                |o| o.lines[1].parent_line = Some(9),
                &["lines[1].parentLine"],
            ),
            (
                "discount as parent",
                |o| o.lines[1].parent_line = Some(3),
                &["lines[1].parentLine"],
            ),
            (
                "discount with parent",
                |o| o.lines[2].parent_line = Some(1),
                &["lines[2].parentLine"],
            ),
            (
                "parent cycle",
                |o| o.lines[0].parent_line = Some(2),
                &["lines[0].parentLine", "lines[1].parentLine"],
            ),
            (
                "discount on nothing",
                |o| o.lines[2].kind = LineKind::Discount { applies_to: vec![] },
                &["lines[2].appliesTo"],
            ),
            (
                "discount on unknown line",
                |o| {
                    o.lines[2].kind = LineKind::Discount {
                        applies_to: vec![1, 9],
                    }
                },
                &["lines[2].appliesTo[1]"],
            ),
            (
                "discount listed twice",
                |o| {
                    o.lines[2].kind = LineKind::Discount {
                        applies_to: vec![1, 1],
                    }
                },
                &["lines[2].appliesTo[1]"],
            ),
            (
                "discount on itself",
                |o| {
                    o.lines[2].kind = LineKind::Discount {
                        applies_to: vec![3],
                    }
                },
                &["lines[2].appliesTo[0]"],
            ),
            (
                "blank warehouse",
                |o| o.allocations[0].warehouse = String::new(),
                &["allocations[0].warehouse"],
            ),
            (
                "allocation of unknown line",
                |o| o.allocations[0].line_number = 9,
                &["allocations[0].lineNumber"],
            ),
        ];
        for (name, breakage, expected) in cases {
            let mut order = api_order();
            breakage(&mut order);
            assert_eq!(fields(&order), expected, "{name}");
        }
    }

    #[test]
    fn money_problems_are_named_by_field() {
        // SPEC §2.4: exact amounts, never a refund above what was deposited.
        type Breakage = fn(&mut Order);
        let cases: Vec<(&str, Breakage, &[&str])> = vec![
            (
                "discount above its line",
                |o| {
                    o.lines[2].amount_minor = -20001;
                    o.payments[0].authorized_minor -= 20001 - 2000;
                },
                &["lines[0].amountMinor"],
            ),
            (
                "discount tax above its line's",
                |o| {
                    o.lines[2].tax_minor = -3801;
                    o.payments[0].authorized_minor -= 3801 - 380;
                },
                &["lines[0].taxMinor"],
            ),
            (
                "overflow",
                |o| o.lines[0].amount_minor = i64::MAX,
                &["lines"],
            ),
            (
                "payments short of the total",
                |o| o.payments[0].authorized_minor -= 1,
                &["payments"],
            ),
            (
                "payments above the total",
                |o| o.payments.push(payment("pay-2", 1, 0)),
                &["payments"],
            ),
            (
                "negative amounts",
                |o| o.payments[0].voided_minor = -1,
                &["payments[0].voidedMinor"],
            ),
            (
                "deposit above authorization",
                |o| o.payments[0].deposited_minor = 23206,
                &["payments[0].depositedMinor"],
            ),
            (
                "void plus deposit above authorization",
                |o| {
                    o.payments[0].deposited_minor = 20000;
                    o.payments[0].voided_minor = 3206;
                },
                &["payments[0].depositedMinor"],
            ),
            (
                "refund above deposit",
                |o| o.payments[0].refunded_minor = 1,
                &["payments[0].refundedMinor"],
            ),
            (
                "voided while nothing is cancelled",
                |o| o.payments[0].voided_minor = 1,
                &["payments"],
            ),
            (
                "duplicate payment id",
                |o| {
                    o.payments = vec![payment("p", 23000, 0), payment("p", 205, 0)];
                },
                &["payments[1].id"],
            ),
            (
                "blank payment id and method",
                |o| {
                    o.payments[0].id = String::new();
                    o.payments[0].method = " ".into();
                },
                &["payments[0].id", "payments[0].method"],
            ),
        ];
        for (name, breakage, expected) in cases {
            let mut order = api_order();
            breakage(&mut order);
            assert_eq!(fields(&order), expected, "{name}");
        }
    }

    #[test]
    fn line_states_must_be_closed_under_the_cascade() {
        // AaaS seed: related items and discounts are cancelled with their line.
        let cancel = |o: &mut Order, n: u32| {
            o.lines.iter_mut().find(|l| l.number == n).unwrap().state = LineState::Cancelled;
        };
        let mut order = api_order();
        cancel(&mut order, 1);
        order.allocations.clear();
        assert_eq!(fields(&order), ["lines[1].state", "lines[2].state"]);

        let mut order = api_order();
        cancel(&mut order, 3);
        assert_eq!(fields(&order), ["lines[2].state"]);

        let mut order = api_order();
        cancel(&mut order, 2);
        assert_eq!(
            fields(&order),
            ["allocations[1].state"],
            "a cancelled line's stock is released"
        );
    }

    #[test]
    fn active_lines_are_listed_in_order() {
        let mut order = desk_order();
        order.lines.reverse();
        order.lines[0].state = LineState::Cancelled;
        assert_eq!(order.active_lines(), [1, 2, 3, 4, 5, 6]);
        assert!(order.line(7).is_some_and(|l| l.is_discount()));
        assert!(order.line(8).is_none());
    }
}
