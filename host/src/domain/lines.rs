//! What is cancelled (SPEC §2.3): the line references of a request, whole
//! lines only, and the cascade to related lines and discounts.
//!
//! - No `items`: every active line (full cancellation). `items: []` is
//!   refused (`validation-failed`): an empty list more likely hides a client
//!   bug than asks for everything, and leaving the field out says "all".
//! - Each reference is checked in request order; the first bad one decides
//!   the refusal: unknown (`unknown-line`), listed twice (`duplicate-line`),
//!   already cancelled (`line-already-cancelled`), a quantity below the
//!   line's (`partial-line-not-supported`, AaaS seed: "only full line items
//!   can be cancelled"), a quantity above the line's (`validation-failed`: it
//!   is not a partial line but a wrong number). Equal or absent quantity
//!   means the whole line.
//! - Cascade (AaaS seed: "ensure that any associated discounts or related
//!   items are also canceled"): a line whose `parentLine` is cancelled is
//!   cancelled, recursively; a discount is cancelled when every line it
//!   applies to is. A discount may be referenced itself only when that holds
//!   anyway (else `validation-failed`): cancelling a discount alone would
//!   raise the price of lines the customer keeps.
//! - When no active line is left, the cancellation is full, however it was
//!   asked for (listing every active line is a full cancellation).

use std::collections::{BTreeMap, BTreeSet};

use super::order::{Line, LineKind, Order};
use super::refusal::Refusal;

/// One line reference of a request (AaaS `items[]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ItemRef {
    /// The line's position number.
    pub order_item_reference: u32,
    /// The quantity to cancel; only the line's whole quantity is accepted.
    pub quantity: Option<u32>,
}

/// The lines a request cancels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The lines newly cancelled, ascending: the requested ones and every
    /// line the cascade adds.
    pub cancelled: BTreeSet<u32>,
    /// Whether no active line is left afterwards.
    pub full: bool,
}

/// Checks the request's `items` against the order and adds the cascade.
/// `None` selects every active line.
pub fn select_lines(order: &Order, items: Option<&[ItemRef]>) -> Result<Selection, Refusal> {
    let requested: BTreeSet<u32> = match items {
        None => order.active_lines().into_iter().collect(),
        Some([]) => {
            return Err(Refusal::field(
                "items",
                "list at least one line, or leave items out to cancel the whole order",
            ));
        }
        Some(items) => check_references(order, items)?,
    };
    // A referenced discount does not seed the cascade: it must follow from it.
    let seeds: BTreeSet<u32> = match items {
        None => requested,
        Some(_) => requested
            .into_iter()
            .filter(|&n| order.line(n).is_some_and(|l| !l.is_discount()))
            .collect(),
    };
    let cancelled = cascade(order, &seeds);
    if let Some(items) = items {
        for (index, item) in items.iter().enumerate() {
            let reference = item.order_item_reference;
            if !cancelled.contains(&reference) {
                // Only a discount can be missing: every other reference seeded the cascade.
                let still_active: Vec<String> = order
                    .line(reference)
                    .map(|l| l.applies_to().to_vec())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|&t| {
                        order.line(t).is_some_and(|l| l.is_active()) && !cancelled.contains(&t)
                    })
                    .map(|t| t.to_string())
                    .collect();
                return Err(Refusal::field(
                    format!("items[{index}].orderItemReference"),
                    format!(
                        "line {reference} is a discount on lines that stay active ({}); cancel those lines and the discount follows",
                        still_active.join(", ")
                    ),
                ));
            }
        }
    }
    let full = order
        .lines
        .iter()
        .all(|line| !line.is_active() || cancelled.contains(&line.number));
    Ok(Selection { cancelled, full })
}

/// Checks each reference in request order (see the module docs) and returns
/// the referenced lines.
fn check_references(order: &Order, items: &[ItemRef]) -> Result<BTreeSet<u32>, Refusal> {
    let mut requested = BTreeSet::new();
    for (index, item) in items.iter().enumerate() {
        let number = item.order_item_reference;
        let Some(line) = order.line(number) else {
            return Err(Refusal::UnknownLine { line: number });
        };
        if !requested.insert(number) {
            return Err(Refusal::DuplicateLine { line: number });
        }
        if !line.is_active() {
            return Err(Refusal::LineAlreadyCancelled { line: number });
        }
        match item.quantity {
            Some(requested_quantity) if requested_quantity < line.quantity => {
                return Err(Refusal::PartialLineNotSupported {
                    line: number,
                    requested: requested_quantity,
                    quantity: line.quantity,
                });
            }
            Some(requested_quantity) if requested_quantity > line.quantity => {
                return Err(Refusal::field(
                    format!("items[{index}].quantity"),
                    format!(
                        "{requested_quantity} is more than the {} of line {number}; leave quantity out to cancel the whole line",
                        line.quantity
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(requested)
}

/// The closure of `requested` under the cascade rules: the requested lines,
/// every active line below a cancelled one (recursively), and every active
/// discount all of whose lines are cancelled (already or now). Returns only
/// lines that were active.
pub fn cascade(order: &Order, requested: &BTreeSet<u32>) -> BTreeSet<u32> {
    let by_number: BTreeMap<u32, &Line> = order.lines.iter().map(|l| (l.number, l)).collect();
    let is_active = |n: u32| by_number.get(&n).is_some_and(|l| l.is_active());
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut discounts_on: BTreeMap<u32, Vec<&Line>> = BTreeMap::new();
    for line in order.lines.iter().filter(|l| l.is_active()) {
        if let Some(parent) = line.parent_line {
            children.entry(parent).or_default().push(line.number);
        }
        if let LineKind::Discount { applies_to } = &line.kind {
            for &target in applies_to {
                discounts_on.entry(target).or_default().push(line);
            }
        }
    }
    let mut cancelled: BTreeSet<u32> = BTreeSet::new();
    let mut queue: Vec<u32> = Vec::new();
    for &number in requested {
        if is_active(number) && cancelled.insert(number) {
            queue.push(number);
        }
    }
    // Lines cancelled before can complete a discount too.
    queue.extend(
        order
            .lines
            .iter()
            .filter(|l| !l.is_active())
            .map(|l| l.number),
    );
    // A line is queued only when it joins `cancelled` (or was cancelled
    // before), so the worklist ends.
    while let Some(number) = queue.pop() {
        for &child in children.get(&number).map_or(&[][..], Vec::as_slice) {
            if cancelled.insert(child) {
                queue.push(child);
            }
        }
        for &discount in discounts_on.get(&number).map_or(&[][..], Vec::as_slice) {
            let complete = discount
                .applies_to()
                .iter()
                .all(|&t| cancelled.contains(&t) || !is_active(t));
            if complete && cancelled.insert(discount.number) {
                queue.push(discount.number);
            }
        }
    }
    cancelled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::*;
    use crate::domain::{LineState, Order};

    fn set(lines: &[u32]) -> BTreeSet<u32> {
        lines.iter().copied().collect()
    }

    /// A chain 1 <- 2 <- 3 <- 4, a second root 5, a discount 6 over 3 and 5,
    /// a discount 7 over 4.
    fn chain() -> Order {
        Order {
            lines: vec![
                product(1, "A", 1, 100, 0),
                child(2, "B", 100, 0, 1),
                child(3, "C", 100, 0, 2),
                child(4, "D", 100, 0, 3),
                product(5, "E", 1, 100, 0),
                discount(6, -10, 0, &[3, 5]),
                discount(7, -10, 0, &[4]),
            ],
            payments: vec![],
            allocations: vec![],
            ..api_order()
        }
    }

    #[test]
    fn cascade_table() {
        // AaaS seed: "ensure that any associated discounts or related items are also canceled".
        let order = chain();
        let cases: &[(&[u32], &[u32])] = &[
            (&[], &[]),
            (&[1], &[1, 2, 3, 4, 7]),
            (&[3], &[3, 4, 7]),
            (&[4], &[4, 7]),
            (&[5], &[5]),
            (&[3, 5], &[3, 4, 5, 6, 7]),
            (&[2, 5], &[2, 3, 4, 5, 6, 7]),
            (&[9], &[]),
        ];
        for &(requested, expected) in cases {
            assert_eq!(
                cascade(&order, &set(requested)),
                set(expected),
                "{requested:?}"
            );
        }
    }

    #[test]
    fn earlier_cancellations_complete_a_discount() {
        let mut order = chain();
        for line in &mut order.lines {
            if [3, 4, 7].contains(&line.number) {
                line.state = LineState::Cancelled;
            }
        }
        assert_eq!(cascade(&order, &set(&[5])), set(&[5, 6]));
        // Lines already cancelled are never returned again.
        assert_eq!(cascade(&order, &set(&[3])), set(&[]));
    }

    #[test]
    fn whole_lines_only() {
        // AaaS seed: "Accounting as a Service does not allow partial cancellations of a line item."
        let order = desk_order(); // line 4: quantity 2
        let one = |quantity| {
            Some(vec![ItemRef {
                order_item_reference: 4,
                quantity,
            }])
        };
        assert_eq!(
            select_lines(&order, one(None).as_deref())
                .unwrap()
                .cancelled,
            set(&[4, 5])
        );
        assert_eq!(
            select_lines(&order, one(Some(2)).as_deref())
                .unwrap()
                .cancelled,
            set(&[4, 5])
        );
        assert_eq!(
            select_lines(&order, one(Some(1)).as_deref()),
            Err(Refusal::PartialLineNotSupported {
                line: 4,
                requested: 1,
                quantity: 2
            })
        );
        assert!(matches!(
            select_lines(&order, one(Some(3)).as_deref()),
            Err(Refusal::ValidationFailed { .. })
        ));
    }
}
