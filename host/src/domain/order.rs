//! The order as the host knows it, and the consistency rules an order must
//! satisfy before any cancellation rule is applied to it.

use std::collections::{BTreeMap, BTreeSet};

use super::approval::Approval;
use super::inventory::{Allocation, AllocationState};
use super::money::Currency;
use super::payment::{Payment, line_values};
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
    /// its field. `PUT /v1/orders` refuses an order that fails this, and
    /// [`plan_cancellation`](super::plan_cancellation) refuses to plan on one.
    ///
    /// The rules:
    /// - `number`, `businessCode`, `customerNumber`, `website`, `status` are
    ///   not blank; there is at least one line.
    /// - line numbers are unique and at least 1; every line has a `sku`.
    /// - a product's amount and tax are `>= 0`; a discount's are `<= 0`.
    /// - `parentLine` names another product line, and following parents never
    ///   comes back to the same line; discount lines have no parent.
    /// - a discount's `appliesTo` names at least one product line, each once.
    /// - after discounts are shared among their lines, no product line's net
    ///   amount or net tax is negative (a discount never exceeds what it
    ///   reduces).
    /// - the absolute values of all amounts and taxes add up to at most
    ///   `i64::MAX`, so no sum on the order can overflow.
    /// - line states are closed under the cascade rules: no active line under a
    ///   cancelled parent, no active discount all of whose lines are cancelled,
    ///   no cancelled discount with an active line.
    /// - payments: unique non-blank ids, non-blank method, amounts `>= 0`,
    ///   `deposited + voided <= authorized`, `refunded <= deposited`; when there
    ///   are payments, they authorize exactly the order total; what was voided
    ///   and refunded is at most the value of the cancelled lines.
    /// - allocations name a line, a warehouse, and are released once their
    ///   line is cancelled.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut required = |field: &str, value: &str| {
            if value.trim().is_empty() {
                errors.push(FieldError::new(field, "must not be blank"));
            }
        };
        required("number", &self.number);
        required("businessCode", &self.business_code);
        required("customerNumber", &self.customer_number);
        required("website", &self.website);
        required("status", &self.status);
        if self.lines.is_empty() {
            errors.push(FieldError::new("lines", "an order has at least one line"));
        }

        let mut index_of: BTreeMap<u32, usize> = BTreeMap::new();
        for (index, line) in self.lines.iter().enumerate() {
            let at = |field: &str| format!("lines[{index}].{field}");
            if line.number == 0 {
                errors.push(FieldError::new(at("lineNumber"), "line numbers start at 1"));
            }
            if index_of.insert(line.number, index).is_some() {
                errors.push(FieldError::new(
                    at("lineNumber"),
                    format!("line number {} is used more than once", line.number),
                ));
            }
            if line.sku.trim().is_empty() {
                errors.push(FieldError::new(at("sku"), "must not be blank"));
            }
            let (sign_ok, sign_rule) = if line.is_discount() {
                (
                    line.amount_minor <= 0 && line.tax_minor <= 0,
                    "a discount's amount and tax are zero or negative",
                )
            } else {
                (
                    line.amount_minor >= 0 && line.tax_minor >= 0,
                    "a product's amount and tax are zero or positive",
                )
            };
            if !sign_ok {
                let field = if (line.is_discount() && line.amount_minor > 0)
                    || (!line.is_discount() && line.amount_minor < 0)
                {
                    "amountMinor"
                } else {
                    "taxMinor"
                };
                errors.push(FieldError::new(at(field), sign_rule));
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
                if line.is_discount() {
                    errors.push(FieldError::new(
                        at("parentLine"),
                        "a discount has no parent line: it follows the lines in appliesTo",
                    ));
                } else if parent == line.number {
                    errors.push(FieldError::new(
                        at("parentLine"),
                        "a line cannot be its own parent",
                    ));
                } else if !index_of.contains_key(&parent) {
                    errors.push(FieldError::new(
                        at("parentLine"),
                        format!("the order has no line {parent}"),
                    ));
                } else if !is_product(parent) {
                    errors.push(FieldError::new(
                        at("parentLine"),
                        format!("line {parent} is a discount and cannot be a parent"),
                    ));
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
                    let field = format!("lines[{index}].appliesTo[{t}]");
                    if !seen.insert(target) {
                        errors.push(FieldError::new(
                            field,
                            format!("line {target} is listed more than once"),
                        ));
                    } else if !index_of.contains_key(&target) {
                        errors.push(FieldError::new(
                            field,
                            format!("the order has no line {target}"),
                        ));
                    } else if !is_product(target) {
                        errors.push(FieldError::new(
                            field,
                            format!(
                                "line {target} is a discount; discounts apply to product lines"
                            ),
                        ));
                    }
                }
            }
        }

        // Parent cycles: follow each chain at most lines.len() steps.
        for (index, line) in self.lines.iter().enumerate() {
            let mut current = line.parent_line;
            let mut steps = 0;
            while let Some(parent) = current {
                if parent == line.number {
                    if line.parent_line != Some(line.number) {
                        errors.push(FieldError::new(
                            format!("lines[{index}].parentLine"),
                            "parent lines form a cycle",
                        ));
                    }
                    break;
                }
                steps += 1;
                if steps > self.lines.len() {
                    break;
                }
                current = index_of
                    .get(&parent)
                    .and_then(|&i| self.lines[i].parent_line);
            }
        }

        for (index, allocation) in self.allocations.iter().enumerate() {
            let at = |field: &str| format!("allocations[{index}].{field}");
            match index_of.get(&allocation.line_number) {
                None => errors.push(FieldError::new(
                    at("lineNumber"),
                    format!("the order has no line {}", allocation.line_number),
                )),
                Some(&i) => {
                    if !self.lines[i].is_active() && allocation.state == AllocationState::Allocated
                    {
                        errors.push(FieldError::new(
                            at("state"),
                            "the allocation of a cancelled line must be released",
                        ));
                    }
                }
            }
            if allocation.warehouse.trim().is_empty() {
                errors.push(FieldError::new(at("warehouse"), "must not be blank"));
            }
        }

        // Amount bounds: only meaningful once the structure is sound.
        let magnitude: i128 = self
            .lines
            .iter()
            .map(|l| i128::from(l.amount_minor).abs() + i128::from(l.tax_minor).abs())
            .sum();
        if magnitude > i128::from(i64::MAX) {
            errors.push(FieldError::new(
                "lines",
                "the amounts and taxes add up beyond the largest representable amount",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        let values = match line_values(self) {
            Ok(values) => values,
            Err(_) => {
                return Err(vec![FieldError::new(
                    "lines",
                    "the amounts and taxes add up beyond the largest representable amount",
                )]);
            }
        };
        for (index, line) in self.lines.iter().enumerate() {
            if let Some(value) = values.get(&line.number) {
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

        // Line states closed under the cascade (SPEC §2.3).
        let cancelled = |number: u32| {
            index_of
                .get(&number)
                .is_some_and(|&i| self.lines[i].state == LineState::Cancelled)
        };
        for (index, line) in self.lines.iter().enumerate() {
            let field = format!("lines[{index}].state");
            if line.is_active() && line.parent_line.is_some_and(cancelled) {
                errors.push(FieldError::new(
                    field,
                    "an active line cannot belong to a cancelled line",
                ));
            } else if line.is_discount() {
                let all_cancelled = line.applies_to().iter().all(|&t| cancelled(t));
                let any_cancelled_target_active = line.applies_to().iter().any(|&t| !cancelled(t));
                if line.is_active() && all_cancelled {
                    errors.push(FieldError::new(
                        field,
                        "a discount whose lines are all cancelled must be cancelled",
                    ));
                } else if !line.is_active() && any_cancelled_target_active {
                    errors.push(FieldError::new(
                        field,
                        "a discount is cancelled only together with every line it applies to",
                    ));
                }
            }
        }

        self.validate_payments(&values, &mut errors);

        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn validate_payments(
        &self,
        values: &BTreeMap<u32, super::payment::LineValue>,
        errors: &mut Vec<FieldError>,
    ) {
        let mut ids = BTreeSet::new();
        let mut authorized: i128 = 0;
        let mut returned: i128 = 0;
        let mut amounts_ok = true;
        for (index, payment) in self.payments.iter().enumerate() {
            let at = |field: &str| format!("payments[{index}].{field}");
            if payment.id.trim().is_empty() {
                errors.push(FieldError::new(at("id"), "must not be blank"));
            } else if !ids.insert(payment.id.as_str()) {
                errors.push(FieldError::new(
                    at("id"),
                    format!("payment id {:?} is used more than once", payment.id),
                ));
            }
            if payment.method.trim().is_empty() {
                errors.push(FieldError::new(at("method"), "must not be blank"));
            }
            let fields = [
                ("authorizedMinor", payment.authorized_minor),
                ("depositedMinor", payment.deposited_minor),
                ("voidedMinor", payment.voided_minor),
                ("refundedMinor", payment.refunded_minor),
            ];
            let mut negative = false;
            for (name, value) in fields {
                if value < 0 {
                    errors.push(FieldError::new(at(name), "must not be negative"));
                    negative = true;
                }
            }
            if negative {
                amounts_ok = false;
                continue;
            }
            let auth = i128::from(payment.authorized_minor);
            if i128::from(payment.deposited_minor) + i128::from(payment.voided_minor) > auth {
                errors.push(FieldError::new(
                    at("depositedMinor"),
                    "deposited plus voided cannot exceed what was authorized",
                ));
                amounts_ok = false;
            }
            if payment.refunded_minor > payment.deposited_minor {
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
        // Lines are already known to be sound here, so these sums fit.
        let total: i128 = values
            .values()
            .map(|v| i128::from(v.amount_minor) + i128::from(v.tax_minor))
            .sum();
        let cancelled_value: i128 = self
            .lines
            .iter()
            .filter(|line| !line.is_active())
            .filter_map(|line| values.get(&line.number))
            .map(|v| i128::from(v.amount_minor) + i128::from(v.tax_minor))
            .sum();
        if authorized != total {
            errors.push(FieldError::new(
                "payments",
                format!("the payments authorize {authorized}, but the order total is {total}"),
            ));
        } else if returned > cancelled_value {
            errors.push(FieldError::new(
                "payments",
                format!(
                    "{returned} was voided or refunded, more than the {cancelled_value} of the cancelled lines"
                ),
            ));
        }
    }
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
        // API.md PUT /v1/orders: lineNumber, parentLine, kind/appliesTo; SPEC §2.3 cascade rules
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
