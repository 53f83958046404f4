//! Property tests of the money and cascade rules over random orders and
//! random sequences of partial cancellations (SPEC §2.4: "Successive partial
//! cancellations of an order add up exactly to the full amount: no rounding
//! leak, never a refund above what was deposited").
//!
//! Every plan is compared with an oracle written here from the rules, not
//! from the plan's own fields: which lines the request and the cascade
//! cancel (exactly those, not one more), what they are worth (amount and
//! tax plus their discount shares, split here by largest remainder), how
//! that value is voided, refunded or kept payment by payment, and the whole
//! order afterwards (every line, payment, allocation and the approval that
//! the step does not touch is as it was). A refused request's "changes
//! nothing" is checked where something could change: through the real
//! store (`tests/all/store_refusals.rs`).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::Config;

use super::fixtures::*;
use super::*;

/// Cases per property: the issue asks for at least 1,000.
const CASES: u32 = 1000;

/// How big the generated amounts are.
#[derive(Debug, Clone, Copy)]
enum Scale {
    /// Shop prices.
    Small,
    /// Near the i64 limit, but bounded so that a valid order's sums fit.
    Huge,
}

impl Scale {
    fn max(self) -> i64 {
        match self {
            Scale::Small => 100_000,
            // At most 12 lines, each with amount and tax: 24 fields of at most MAX/32.
            Scale::Huge => i64::MAX / 32,
        }
    }
}

/// The raw material of a random order, shaped into a valid one by [`build`].
#[derive(Debug, Clone)]
struct Blueprint {
    scale: Scale,
    /// Per product line: quantity, amount and tax fractions (0..=1000 per
    /// mille of the scale), and a parent choice.
    products: Vec<(u32, u16, u16, Option<prop::sample::Index>)>,
    /// Per discount: its targets (as indexes into the products) and how big
    /// it is relative to them, per mille of the sum divided by the number
    /// of discounts.
    discounts: Vec<(Vec<prop::sample::Index>, u16, u16)>,
    /// Per payment: its share of the total (weights) and how much of it is
    /// deposited: 0 none, 1 all, 2 a random part.
    payments: Vec<(u16, u8, u16)>,
}

fn blueprint() -> impl Strategy<Value = Blueprint> {
    let scale = prop_oneof![4 => Just(Scale::Small), 1 => Just(Scale::Huge)];
    let products = prop::collection::vec(
        (
            1u32..5,
            0u16..=1000,
            0u16..=1000,
            prop::option::weighted(0.5, any::<prop::sample::Index>()),
        ),
        1..9,
    );
    let discounts = prop::collection::vec(
        (
            prop::collection::vec(any::<prop::sample::Index>(), 1..4),
            0u16..=1000,
            0u16..=1000,
        ),
        0..4,
    );
    let payments = prop::collection::vec((1u16..100, 0u8..3, 0u16..=1000), 0..4);
    (scale, products, discounts, payments).prop_map(|(scale, products, discounts, payments)| {
        Blueprint {
            scale,
            products,
            discounts,
            payments,
        }
    })
}

fn per_mille(max: i64, fraction: u16) -> i64 {
    i64::try_from(i128::from(max) * i128::from(fraction) / 1000).unwrap()
}

/// Builds a valid order from a blueprint: products first (parents point to
/// earlier products, so no cycles), then discounts (dropped from the end
/// while they would exceed what they reduce), then payments that authorize
/// exactly the total.
fn build(blueprint: &Blueprint) -> Order {
    let max = blueprint.scale.max();
    let mut lines = Vec::new();
    for (i, (quantity, amount, tax, parent)) in blueprint.products.iter().enumerate() {
        let number = u32::try_from(i).unwrap() + 1;
        let mut line = product(
            number,
            "SKU",
            *quantity,
            per_mille(max, *amount),
            per_mille(max, *tax) / 5,
        );
        if i > 0 {
            line.parent_line = parent
                .as_ref()
                .map(|p| u32::try_from(p.index(i)).unwrap() + 1);
        }
        lines.push(line);
    }
    let product_count = lines.len();
    let discount_count = i64::try_from(blueprint.discounts.len()).unwrap().max(1);
    for (d, (targets, amount, tax)) in blueprint.discounts.iter().enumerate() {
        let mut applies_to: Vec<u32> = targets
            .iter()
            .map(|t| u32::try_from(t.index(product_count)).unwrap() + 1)
            .collect();
        applies_to.sort_unstable();
        applies_to.dedup();
        let base_amount: i64 = applies_to
            .iter()
            .map(|&t| lines[t as usize - 1].amount_minor)
            .sum();
        let base_tax: i64 = applies_to
            .iter()
            .map(|&t| lines[t as usize - 1].tax_minor)
            .sum();
        let number = u32::try_from(product_count + d).unwrap() + 1;
        lines.push(discount(
            number,
            -per_mille(base_amount / discount_count, *amount),
            -per_mille(base_tax / discount_count, *tax),
            &applies_to,
        ));
    }
    let mut order = Order {
        lines,
        payments: vec![],
        allocations: vec![],
        ..api_order()
    };
    for (i, line) in order
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.is_discount())
    {
        let kind = if i % 2 == 0 {
            AllocationKind::Existing
        } else {
            AllocationKind::Expected
        };
        order
            .allocations
            .push(allocation(line.number, line.quantity, kind));
    }
    while order.validate().is_err() && order.lines.len() > product_count {
        order.lines.pop();
    }
    order.validate().expect("products alone make a valid order");

    let total: i64 = order
        .lines
        .iter()
        .map(|l| l.amount_minor + l.tax_minor)
        .sum();
    if !blueprint.payments.is_empty() {
        let weights: Vec<u64> = blueprint.payments.iter().map(|p| u64::from(p.0)).collect();
        let shares = split_largest_remainder(total, &weights);
        for (i, ((_, deposit, part), share)) in blueprint.payments.iter().zip(shares).enumerate() {
            let deposited = match deposit {
                0 => 0,
                1 => share,
                _ => per_mille(share, *part),
            };
            order
                .payments
                .push(payment(&format!("pay-{i}"), share, deposited));
        }
    }
    order
        .validate()
        .expect("payments authorize exactly the total");
    order
}

fn total_of(order: &Order) -> i64 {
    order
        .lines
        .iter()
        .map(|l| l.amount_minor + l.tax_minor)
        .sum()
}

/// How a client cancels in a random sequence.
#[derive(Debug, Clone, Copy)]
enum Money {
    /// Always refund deposited money (`forcedCancel` + `forcedCancelWithRefund`)
    /// when there is any.
    Refund,
    /// Force without refund, or refund, at random.
    Mixed,
}

/// One step: which active product lines to name (a random subset), in what
/// order, whether to spell out the quantity, and whether to refund.
type Step = (Vec<prop::sample::Index>, bool, bool);

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<prop::sample::Index>(), 1..4),
            any::<bool>(),
            any::<bool>(),
        ),
        0..5,
    )
}

/// The request for one step, or `None` when no product line is left to name.
fn step_request(order: &Order, step: &Step, money: Money) -> Option<CancelRequest> {
    let active: Vec<&Line> = order
        .lines
        .iter()
        .filter(|l| l.is_active() && !l.is_discount())
        .collect();
    if active.is_empty() {
        return None;
    }
    let mut chosen: Vec<&Line> = step
        .0
        .iter()
        .map(|i| active[i.index(active.len())])
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    chosen.retain(|l| seen.insert(l.number));
    let items = chosen
        .iter()
        .map(|l| ItemRef {
            order_item_reference: l.number,
            quantity: step.1.then_some(l.quantity),
        })
        .collect();
    Some(with_flags(
        order,
        CancelRequest {
            items: Some(items),
            ..staff_request()
        },
        step.2,
        money,
    ))
}

fn with_flags(order: &Order, request: CancelRequest, coin: bool, money: Money) -> CancelRequest {
    let deposited = order.payments.iter().any(|p| p.refundable_minor() > 0);
    let refund = deposited && (matches!(money, Money::Refund) || coin);
    CancelRequest {
        forced_cancel: deposited,
        forced_cancel_with_refund: refund,
        ..request
    }
}

/// The lines `request` cancels on `order` by the rules (SPEC §2.3), computed
/// here: the named lines (every active one without `items`), then, until
/// nothing changes, every active line whose parent is cancelled and every
/// active discount all of whose lines are cancelled (before or now).
fn oracle_cancelled(order: &Order, request: &CancelRequest) -> BTreeSet<u32> {
    let was_cancelled = |n: u32| order.line(n).is_some_and(|l| !l.is_active());
    let mut cancelled: BTreeSet<u32> = match &request.items {
        None => order.active_lines().into_iter().collect(),
        Some(items) => items.iter().map(|i| i.order_item_reference).collect(),
    };
    loop {
        let gone = |n: u32| was_cancelled(n) || cancelled.contains(&n);
        let more: Vec<u32> = order
            .lines
            .iter()
            .filter(|l| l.is_active() && !cancelled.contains(&l.number))
            .filter(|l| {
                l.parent_line.is_some_and(gone)
                    || (l.is_discount() && l.applies_to().iter().all(|&t| gone(t)))
            })
            .map(|l| l.number)
            .collect();
        if more.is_empty() {
            return cancelled;
        }
        cancelled.extend(more);
    }
}

/// `total` shared by `weights` (line number, weight) in proportion, by the
/// largest remainder: each part gets the floor of its exact share, and the
/// units left go to the largest remainders, the lower line number first on
/// a tie; all-zero weights share equally. Written here from the rule in
/// `payment.rs`, independently of `split_largest_remainder`.
fn oracle_split(total: i64, weights: &[(u32, i128)]) -> BTreeMap<u32, i128> {
    let equal = weights.iter().all(|&(_, w)| w == 0);
    let weight = |w: i128| if equal { 1 } else { w };
    let sum: i128 = weights.iter().map(|&(_, w)| weight(w)).sum();
    let magnitude = i128::from(total).abs();
    let mut parts: Vec<(u32, i128, i128)> = weights
        .iter()
        .map(|&(line, w)| {
            let exact = magnitude * weight(w);
            (line, exact / sum, exact % sum)
        })
        .collect();
    let left = magnitude - parts.iter().map(|p| p.1).sum::<i128>();
    let mut by_remainder: Vec<usize> = (0..parts.len()).collect();
    by_remainder.sort_by_key(|&i| (std::cmp::Reverse(parts[i].2), parts[i].0));
    for &i in by_remainder.iter().take(usize::try_from(left).unwrap()) {
        parts[i].1 += 1;
    }
    let sign = if total < 0 { -1 } else { 1 };
    parts
        .into_iter()
        .map(|(line, share, _)| (line, sign * share))
        .collect()
}

/// What each line is worth (SPEC §2.4, `payment.rs`): a product its amount
/// plus tax plus its shares of every discount on it (the discount's amount
/// shared by the products' amounts, its tax by their taxes); a discount
/// nothing, its value being in the shares.
fn oracle_values(order: &Order) -> BTreeMap<u32, i128> {
    let mut values: BTreeMap<u32, i128> = order
        .lines
        .iter()
        .map(|l| {
            let own = if l.is_discount() {
                0
            } else {
                i128::from(l.amount_minor) + i128::from(l.tax_minor)
            };
            (l.number, own)
        })
        .collect();
    for line in order.lines.iter().filter(|l| l.is_discount()) {
        let targets: BTreeSet<u32> = line
            .applies_to()
            .iter()
            .copied()
            .filter(|&t| order.line(t).is_some_and(|l| !l.is_discount()))
            .collect();
        let weights = |field: fn(&Line) -> i64| -> Vec<(u32, i128)> {
            targets
                .iter()
                .map(|&t| (t, i128::from(field(order.line(t).unwrap()).max(0))))
                .collect()
        };
        let amounts = oracle_split(line.amount_minor, &weights(|l| l.amount_minor));
        let taxes = oracle_split(line.tax_minor, &weights(|l| l.tax_minor));
        for t in &targets {
            *values.get_mut(t).unwrap() += amounts[t] + taxes[t];
        }
    }
    values
}

/// How `amount` is settled over the payments (SPEC §2.4, `payment.rs`):
/// voided from open authorizations payment by payment in list order, then,
/// with a refund, refunded from captured money the same way; what is left is
/// kept. Answers (payment, void, refund) for each payment that moves, and
/// what is kept.
fn oracle_settlement(
    payments: &[Payment],
    amount: i128,
    refund: bool,
) -> (Vec<(String, i128, i128)>, i128) {
    let mut left = amount.max(0);
    let mut moves = Vec::new();
    let mut voids = Vec::new();
    for p in payments {
        let open = i128::from(p.authorized_minor - p.deposited_minor - p.voided_minor).max(0);
        let void = left.min(open);
        left -= void;
        voids.push(void);
    }
    for (p, void) in payments.iter().zip(voids) {
        let refundable = i128::from(p.deposited_minor - p.refunded_minor).max(0);
        let back = if refund { left.min(refundable) } else { 0 };
        left -= back;
        if void != 0 || back != 0 {
            moves.push((p.id.clone(), void, back));
        }
    }
    (moves, left)
}

/// Checks `plan` (planned for `request` on `order`) against the oracles and
/// answers the order as the rules say it is afterwards, built here field by
/// field from `order`: the cancelled lines cancelled, each payment's voids
/// and refunds added, the held allocations of cancelled lines released, a
/// pending approval cancelled by a full cancellation, the status set by a
/// full one; everything else as it was.
fn check_plan(
    order: &Order,
    request: &CancelRequest,
    plan: &CancellationPlan,
    settings: &Settings,
) -> Result<Order, TestCaseError> {
    let cancelled = oracle_cancelled(order, request);
    prop_assert_eq!(
        plan.cancelled_lines
            .iter()
            .copied()
            .collect::<BTreeSet<u32>>(),
        cancelled.clone(),
        "the request's lines and their cascade, nothing more"
    );
    let full = order
        .lines
        .iter()
        .all(|l| !l.is_active() || cancelled.contains(&l.number));
    prop_assert_eq!(plan.full, full);

    let values = oracle_values(order);
    let worth: i128 = cancelled.iter().map(|n| values[n]).sum();
    prop_assert_eq!(i128::from(plan.cancelled_amount_minor), worth);
    let (moves, kept) =
        oracle_settlement(&order.payments, worth, request.forced_cancel_with_refund);
    let actions: Vec<(String, i128, i128)> = plan
        .payment_actions
        .iter()
        .map(|a| {
            (
                a.payment_id.clone(),
                i128::from(a.void_minor),
                i128::from(a.refund_minor),
            )
        })
        .collect();
    prop_assert_eq!(&actions, &moves);
    prop_assert_eq!(
        i128::from(plan.voided_minor),
        moves.iter().map(|m| m.1).sum::<i128>()
    );
    prop_assert_eq!(
        plan.refund
            .as_ref()
            .map_or(0, |r| i128::from(r.amount_minor)),
        moves.iter().map(|m| m.2).sum::<i128>()
    );
    prop_assert_eq!(i128::from(plan.unreturned_minor), kept);

    let mut expected = order.clone();
    for line in &mut expected.lines {
        if cancelled.contains(&line.number) {
            line.state = LineState::Cancelled;
        }
    }
    for payment in &mut expected.payments {
        if let Some((_, void, back)) = moves.iter().find(|m| m.0 == payment.id) {
            payment.voided_minor += i64::try_from(*void).unwrap();
            payment.refunded_minor += i64::try_from(*back).unwrap();
        }
    }
    let mut released = Vec::new();
    for allocation in &mut expected.allocations {
        if allocation.state == AllocationState::Allocated
            && cancelled.contains(&allocation.line_number)
        {
            allocation.state = AllocationState::Released;
            released.push(allocation.clone());
        }
    }
    prop_assert_eq!(&plan.released_allocations, &released);
    let cancels_approval = full
        && order
            .approval
            .as_ref()
            .is_some_and(|a| a.state == ApprovalState::Pending);
    prop_assert_eq!(plan.approval_cancelled, cancels_approval);
    if cancels_approval && let Some(approval) = &mut expected.approval {
        approval.state = ApprovalState::Cancelled;
    }
    if full {
        expected.status = settings.cancelled_status.clone();
    }
    prop_assert_eq!(&plan.new_order_status, &expected.status);
    Ok(expected)
}

/// Checks the invariants every order must keep after every cancellation.
fn assert_invariants(order: &Order) -> Result<(), TestCaseError> {
    prop_assert_eq!(order.validate(), Ok(()));
    for p in &order.payments {
        prop_assert!(p.voided_minor >= 0 && p.refunded_minor >= 0);
        prop_assert!(
            p.voided_minor + p.deposited_minor <= p.authorized_minor,
            "{:?}",
            p
        );
        prop_assert!(p.refunded_minor <= p.deposited_minor, "{:?}", p);
    }
    // Cascade closure.
    let cancelled = |n: u32| order.line(n).is_some_and(|l| !l.is_active());
    for line in order.lines.iter().filter(|l| l.is_active()) {
        prop_assert!(
            !line.parent_line.is_some_and(cancelled),
            "line {} under a cancelled parent",
            line.number
        );
        if line.is_discount() {
            prop_assert!(
                !line.applies_to().iter().all(|&t| cancelled(t)),
                "discount {} with every target cancelled",
                line.number
            );
        }
    }
    for allocation in &order.allocations {
        if cancelled(allocation.line_number) {
            prop_assert_eq!(allocation.state, AllocationState::Released);
        }
    }
    Ok(())
}

/// Runs the steps, then cancels the rest; returns the total returned
/// (voided + refunded) and kept, after checking every plan.
fn run(
    order: Order,
    steps: &[Step],
    money: Money,
    last_coin: bool,
) -> Result<(Order, i64, i64), TestCaseError> {
    let settings = Preset::Insite.settings();
    let mut order = order;
    let (mut returned, mut kept) = (0i64, 0i64);
    let mut check = |order: &Order, request: &CancelRequest| -> Result<Order, TestCaseError> {
        let plan = plan_cancellation(
            order,
            &settings,
            &open_website(),
            &Requester::Service,
            request,
            TODAY,
        )
        .map_err(|r| TestCaseError::fail(format!("refused: {r:?}")))?;
        let expected = check_plan(order, request, &plan, &settings)?;
        prop_assert!(plan.cancelled_amount_minor >= 0);
        prop_assert!(plan.voided_minor >= 0 && plan.unreturned_minor >= 0);
        let refunded = plan.refund.as_ref().map_or(0, |r| r.amount_minor);
        prop_assert!(plan.refund.as_ref().is_none_or(|r| r.amount_minor > 0));
        prop_assert_eq!(
            plan.voided_minor + refunded + plan.unreturned_minor,
            plan.cancelled_amount_minor
        );
        for action in &plan.payment_actions {
            prop_assert!(action.void_minor >= 0 && action.refund_minor >= 0);
            prop_assert!(action.void_minor > 0 || action.refund_minor > 0);
        }
        if !order.payments.is_empty() && request.forced_cancel_with_refund {
            prop_assert_eq!(
                plan.unreturned_minor,
                0,
                "a refund returns everything not voided"
            );
        }
        let mut sorted = plan.cancelled_lines.clone();
        sorted.sort_unstable();
        prop_assert_eq!(&sorted, &plan.cancelled_lines);
        returned += plan.voided_minor + refunded;
        kept += plan.unreturned_minor;
        let next = plan.apply(order);
        prop_assert_eq!(&next, &expected, "the order after the step");
        assert_invariants(&next)?;
        prop_assert_eq!(next.status == settings.cancelled_status, plan.full);
        Ok(next)
    };
    for step in steps {
        let Some(request) = step_request(&order, step, money) else {
            break;
        };
        order = check(&order, &request)?;
    }
    if order.lines.iter().any(|l| l.is_active()) {
        let request = with_flags(&order, staff_request(), last_coin, money);
        order = check(&order, &request)?;
    }
    Ok((order, returned, kept))
}

proptest! {
    #![proptest_config(Config { cases: CASES, ..Config::default() })]

    /// Refunding every time: the voids and refunds of all cancellations add
    /// up to exactly the order total when it has payments; no payment goes
    /// beyond its authorization or deposit; nothing is negative.
    #[test]
    fn partial_cancellations_then_the_rest_return_exactly_the_total(
        blueprint in blueprint(),
        steps in steps(),
    ) {
        let order = build(&blueprint);
        let total = total_of(&order);
        let has_payments = !order.payments.is_empty();
        let (after, returned, kept) = run(order, &steps, Money::Refund, true)?;
        prop_assert!(after.lines.iter().all(|l| !l.is_active()));
        prop_assert_eq!(&after.status, "Cancelled");
        if has_payments {
            prop_assert_eq!(returned, total);
            prop_assert_eq!(kept, 0);
            for p in &after.payments {
                prop_assert_eq!(p.voided_minor + p.refunded_minor, p.authorized_minor);
            }
        } else {
            prop_assert_eq!(returned, 0);
            prop_assert_eq!(kept, total);
        }
    }

    /// Mixing forced cancellations with and without refund: what is voided,
    /// refunded and kept still adds up to the total, and the payment limits
    /// hold after every step.
    #[test]
    fn mixed_refund_modes_never_leak_or_overpay(
        blueprint in blueprint(),
        steps in steps(),
        last_coin in any::<bool>(),
    ) {
        let order = build(&blueprint);
        let total = total_of(&order);
        let (after, returned, kept) = run(order, &steps, Money::Mixed, last_coin)?;
        prop_assert_eq!(returned + kept, total);
        let deposited: i64 = after.payments.iter().map(|p| p.deposited_minor).sum();
        let refunded: i64 = after.payments.iter().map(|p| p.refunded_minor).sum();
        prop_assert!(refunded <= deposited);
    }

    /// Planning is deterministic (the same inputs give the same answer),
    /// every refusal is an API code, and every plan for a random request
    /// matches the oracles. Requests are random junk mixed with valid
    /// fields. (`plan_cancellation` takes the order by shared reference, so
    /// "a refusal changes nothing" cannot fail here: the store-level test
    /// checks it.)
    #[test]
    fn planning_is_deterministic_and_every_answer_is_a_code_or_matches_the_oracles(
        blueprint in blueprint(),
        references in prop::collection::vec((0u32..12, prop::option::of(0u32..6)), 0..5),
        no_items in any::<bool>(),
        reason in prop::option::of(prop::sample::select(vec![
            "OUT_OF_STOCK", "CUSTOMER_CANCELLATION", "NO_PAYMENT", "CUSTOMER_SERVICE", "nope", "",
        ])),
        date in prop::option::of(prop::sample::select(vec![
            "2024-09-10", "2024-09-01", "2024-08-31", "2024-09-11", "2024-13-01", "soon",
        ])),
        forced in any::<(bool, bool)>(),
        actor in prop::sample::select(vec![0u8, 1, 2, 3]),
        website_open in any::<bool>(),
        for_user in prop::option::of(prop::sample::select(vec!["", "buyer@example.com"])),
        iban in prop::option::of(prop::sample::select(vec![
            "DE89370400440532013000", "DE89370400440532013001", "TR330006100519786457841326", "",
        ])),
    ) {
        let order = build(&blueprint);
        let actor = match actor {
            0 => Requester::Admin,
            1 => Requester::Service,
            2 => owner(),
            _ => Requester::Customer { customer_number: "C-2".into() },
        };
        let request = CancelRequest {
            items: (!no_items).then(|| {
                references
                    .iter()
                    .map(|&(order_item_reference, quantity)| ItemRef { order_item_reference, quantity })
                    .collect()
            }),
            reason: reason.map(str::to_owned),
            date: date.map(str::to_owned),
            invoice_reference: None,
            bank_details: iban.map(|iban| BankDetailsInput {
                account_owner: Some("Max".into()),
                iban: Some(iban.into()),
                bic: None,
            }),
            forced_cancel: forced.0,
            forced_cancel_with_refund: forced.1,
            for_user: for_user.map(str::to_owned),
        };
        let website = WebsiteSettings { allow_cancellation_request: website_open };
        let settings = Preset::Insite.settings();
        let first = plan_cancellation(&order, &settings, &website, &actor, &request, TODAY);
        let second = plan_cancellation(&order, &settings, &website, &actor, &request, TODAY);
        prop_assert_eq!(&first, &second);
        match first {
            Ok(plan) => {
                let expected = check_plan(&order, &request, &plan, &settings)?;
                let after = plan.apply(&order);
                prop_assert_eq!(&after, &expected);
                assert_invariants(&after)?;
            }
            Err(refusal) => {
                // Each refusal maps to one API code and status.
                prop_assert!(!refusal.code().is_empty());
                prop_assert!(matches!(refusal.status(), 403 | 404 | 409 | 422));
            }
        }
    }

    /// Amounts near the i64 limit: orders whose sums would overflow are
    /// refused as validation-failed, never a panic; the others plan with
    /// exact sums.
    #[test]
    fn amounts_near_the_limit_are_refused_or_exact(
        amounts in prop::collection::vec((0i64..=i64::MAX, 0i64..=i64::MAX / 4), 1..4),
        discount_fraction in 0u16..=1000,
    ) {
        let mut lines: Vec<Line> = amounts
            .iter()
            .enumerate()
            .map(|(i, &(amount, tax))| product(u32::try_from(i).unwrap() + 1, "GOLD", 1, amount, tax))
            .collect();
        let first = lines[0].amount_minor;
        lines.push(discount(99, -per_mille(first, discount_fraction), 0, &[1]));
        let order = Order { lines, payments: vec![], allocations: vec![], ..api_order() };
        let magnitude: i128 = order
            .lines
            .iter()
            .map(|l| i128::from(l.amount_minor).abs() + i128::from(l.tax_minor).abs())
            .sum();
        let result = plan(&order, &Requester::Service, &staff_request());
        if magnitude > i128::from(i64::MAX) {
            prop_assert_eq!(result.map(|_| ()), Err(Refusal::field(
                "order.lines",
                "the amounts and taxes add up beyond the largest representable amount",
            )));
        } else {
            let plan = result.map_err(|r| TestCaseError::fail(format!("{r:?}")))?;
            let exact: i128 = order.lines.iter().map(|l| i128::from(l.amount_minor) + i128::from(l.tax_minor)).sum();
            prop_assert_eq!(i128::from(plan.cancelled_amount_minor), exact);
        }
    }

    /// The largest-remainder split adds up to the total exactly, keeps its
    /// sign, and no share is a unit or more from its exact value.
    #[test]
    fn largest_remainder_split_is_exact(
        total in any::<i64>(),
        weights in prop::collection::vec(0u64..(1 << 60), 1..8),
        small in prop::collection::vec(0u64..4, 1..8),
        use_small in any::<bool>(),
    ) {
        let weights = if use_small { small } else { weights };
        let shares = split_largest_remainder(total, &weights);
        prop_assert_eq!(shares.len(), weights.len());
        prop_assert_eq!(shares.iter().map(|&s| i128::from(s)).sum::<i128>(), i128::from(total));
        let weight_sum: i128 = weights.iter().map(|&w| i128::from(w)).sum();
        for (&share, &weight) in shares.iter().zip(&weights) {
            prop_assert!(share == 0 || (share < 0) == (total < 0));
            let (w, sum) = if weight_sum == 0 { (1, weights.len() as i128) } else { (i128::from(weight), weight_sum) };
            // |share * sum - total * w| < sum: within one unit of the exact share.
            let error = (i128::from(share) * sum - i128::from(total) * w).abs();
            prop_assert!(error < sum, "share {} of {} by {}/{}", share, total, w, sum);
        }
    }
}
