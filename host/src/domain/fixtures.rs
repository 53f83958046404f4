//! Orders and requests shared by the domain's tests.

use time::Date;
use time::macros::date;

use super::*;

/// The day the tests run "today".
pub const TODAY: Date = date!(2024 - 09 - 10);

/// A product line.
pub fn product(number: u32, sku: &str, quantity: u32, amount: i64, tax: i64) -> Line {
    Line {
        number,
        sku: sku.into(),
        quantity,
        amount_minor: amount,
        tax_minor: tax,
        parent_line: None,
        kind: LineKind::Product,
        state: LineState::Active,
        erp_line_ref: None,
    }
}

/// A product line that belongs to `parent`.
pub fn child(number: u32, sku: &str, amount: i64, tax: i64, parent: u32) -> Line {
    Line {
        parent_line: Some(parent),
        ..product(number, sku, 1, amount, tax)
    }
}

/// A discount line over `applies_to`.
pub fn discount(number: u32, amount: i64, tax: i64, applies_to: &[u32]) -> Line {
    Line {
        kind: LineKind::Discount {
            applies_to: applies_to.to_vec(),
        },
        ..product(number, "PROMO", 1, amount, tax)
    }
}

/// A payment authorized for `authorized`, of which `deposited` is captured.
pub fn payment(id: &str, authorized: i64, deposited: i64) -> Payment {
    Payment {
        id: id.into(),
        method: "card".into(),
        authorized_minor: authorized,
        deposited_minor: deposited,
        voided_minor: 0,
        refunded_minor: 0,
    }
}

/// A held allocation.
pub fn allocation(line: u32, quantity: u32, kind: AllocationKind) -> Allocation {
    Allocation {
        line_number: line,
        warehouse: "W1".into(),
        quantity,
        kind,
        state: AllocationState::Allocated,
    }
}

/// The order of `docs/api.md`'s `PUT /v1/orders` example: a chair, its warranty
/// and a discount on the chair, paid by an authorized card, total 23205.
pub fn api_order() -> Order {
    Order {
        number: "1001".into(),
        business_code: "B1".into(),
        customer_number: "C-1".into(),
        website: "main".into(),
        status: "Submitted".into(),
        order_date: date!(2024 - 09 - 01),
        currency: Currency::parse("EUR").unwrap(),
        erp_order_number: Some("ERP-1001".into()),
        lines: vec![
            product(1, "CHAIR", 2, 20000, 3800),
            child(2, "WARRANTY", 1500, 285, 1),
            discount(3, -2000, -380, &[1]),
        ],
        payments: vec![payment("pay-1", 23205, 0)],
        allocations: vec![
            allocation(1, 2, AllocationKind::Existing),
            allocation(2, 1, AllocationKind::Expected),
        ],
        approval: Some(Approval {
            state: ApprovalState::Pending,
        }),
        tracking: Some(Tracking {
            channel: Channel::Online,
            session: Some("123|abc".into()),
            cuid: Some("09|Z0".into()),
            offline_channel: None,
        }),
    }
}

/// A larger order: a desk set with a nested accessory chain, a lamp, and a
/// bundle discount over the desk and the lamp. Total 36000 + 6840 tax -
/// discounts.
///
/// | line | what | amount | tax | parent | applies to |
/// |---|---|---|---|---|---|
/// | 1 | DESK | 20000 | 3800 | | |
/// | 2 | DRAWER | 3000 | 570 | 1 | |
/// | 3 | LOCK | 1000 | 190 | 2 | |
/// | 4 | LAMP | 10000 | 1900 | | |
/// | 5 | BULB | 2000 | 380 | 4 | |
/// | 6 | BUNDLE | -3001 | -571 | | 1, 4 |
/// | 7 | DESK10 | -1000 | -190 | | 1 |
pub fn desk_order() -> Order {
    let lines = vec![
        product(1, "DESK", 1, 20000, 3800),
        child(2, "DRAWER", 3000, 570, 1),
        child(3, "LOCK", 1000, 190, 2),
        product(4, "LAMP", 2, 10000, 1900),
        child(5, "BULB", 2000, 380, 4),
        discount(6, -3001, -571, &[1, 4]),
        discount(7, -1000, -190, &[1]),
    ];
    let total: i64 = lines.iter().map(|l| l.amount_minor + l.tax_minor).sum();
    Order {
        number: "2002".into(),
        lines,
        payments: vec![payment("pay-1", total, 0)],
        allocations: vec![
            allocation(1, 1, AllocationKind::Existing),
            allocation(4, 2, AllocationKind::Existing),
            allocation(5, 4, AllocationKind::Expected),
        ],
        ..api_order()
    }
}

/// A staff request with a reason.
pub fn staff_request() -> CancelRequest {
    CancelRequest {
        reason: Some("OUT_OF_STOCK".into()),
        ..CancelRequest::default()
    }
}

/// References to whole lines.
pub fn items(lines: &[u32]) -> Option<Vec<ItemRef>> {
    Some(
        lines
            .iter()
            .map(|&n| ItemRef {
                order_item_reference: n,
                quantity: None,
            })
            .collect(),
    )
}

/// The customer who owns the fixtures' orders.
pub fn owner() -> Requester {
    Requester::Customer {
        customer_number: "C-1".into(),
    }
}

/// A website that lets customers cancel.
pub fn open_website() -> WebsiteSettings {
    WebsiteSettings {
        allow_cancellation_request: true,
    }
}

/// Plans with the insite preset, an open website and [`TODAY`].
pub fn plan(
    order: &Order,
    actor: &Requester,
    request: &CancelRequest,
) -> Result<CancellationPlan, Refusal> {
    plan_cancellation(
        order,
        &Preset::Insite.settings(),
        &open_website(),
        actor,
        request,
        TODAY,
    )
}
