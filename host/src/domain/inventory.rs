//! Inventory: every allocation of a cancelled line is released, existing stock
//! and expected (backordered) stock alike (SPEC §2.5, WebSphere seed:
//! "De-allocates existing and expected inventory ... canceling any
//! backordered items").

use std::collections::BTreeSet;

/// Stock set aside for a line in one warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The line the stock is for.
    pub line_number: u32,
    /// The warehouse holding (or expecting) it.
    pub warehouse: String,
    /// How many units.
    pub quantity: u32,
    /// On hand or expected.
    pub kind: AllocationKind,
    /// Still held, or released by a cancellation.
    pub state: AllocationState,
}

/// Where allocated stock comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllocationKind {
    /// Stock on hand.
    Existing,
    /// Stock expected from a supplier: a backorder.
    Expected,
}

/// Whether an allocation still holds its stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllocationState {
    /// The stock is held for the line.
    Allocated,
    /// The stock was given back (or the backorder cancelled).
    Released,
}

/// The allocations that cancelling `cancelled_lines` releases: every held
/// allocation of those lines, of either kind, as it was but in state
/// [`AllocationState::Released`]. Allocations already released stay out.
pub fn released_allocations(
    allocations: &[Allocation],
    cancelled_lines: &BTreeSet<u32>,
) -> Vec<Allocation> {
    allocations
        .iter()
        .filter(|a| {
            a.state == AllocationState::Allocated && cancelled_lines.contains(&a.line_number)
        })
        .map(|a| Allocation {
            state: AllocationState::Released,
            ..a.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocation(line: u32, kind: AllocationKind, state: AllocationState) -> Allocation {
        Allocation {
            line_number: line,
            warehouse: "W1".into(),
            quantity: 2,
            kind,
            state,
        }
    }

    #[test]
    fn existing_and_expected_stock_of_cancelled_lines_is_released() {
        // WebSphere seed: "De-allocates existing and expected inventory".
        use AllocationKind::*;
        use AllocationState::*;
        let allocations = vec![
            allocation(1, Existing, Allocated),
            allocation(1, Expected, Allocated),
            allocation(2, Existing, Allocated),
            allocation(3, Expected, Released),
        ];
        let cancelled: BTreeSet<u32> = [1, 3].into();
        assert_eq!(
            released_allocations(&allocations, &cancelled),
            vec![
                allocation(1, Existing, Released),
                allocation(1, Expected, Released)
            ]
        );
        assert!(released_allocations(&allocations, &BTreeSet::new()).is_empty());
    }
}
