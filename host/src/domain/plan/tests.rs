//! Table tests of `plan_cancellation` and `apply`, one rule per test, each
//! citing the seed behind it.

use time::macros::date;

use crate::domain::fixtures::*;
use crate::domain::*;

fn customer(number: &str) -> Requester {
    Requester::Customer {
        customer_number: number.into(),
    }
}

fn bank(owner: Option<&str>, iban: Option<&str>, bic: Option<&str>) -> Option<BankDetailsInput> {
    Some(BankDetailsInput {
        account_owner: owner.map(str::to_owned),
        iban: iban.map(str::to_owned),
        bic: bic.map(str::to_owned),
    })
}

fn deposited(mut order: Order) -> Order {
    order.payments[0].deposited_minor = order.payments[0].authorized_minor;
    order
}

/// Cancels `lines` of `order` as staff and returns the order afterwards.
fn cancelled(order: &Order, lines: &[u32]) -> Order {
    let request = CancelRequest {
        items: items(lines),
        ..staff_request()
    };
    plan(order, &Requester::Service, &request)
        .unwrap()
        .apply(order)
}

#[test]
fn full_cancellation_of_the_api_example() {
    // WebSphere seed: changes the status, de-allocates existing and expected inventory,
    // cancels the payment and a pending approval; AaaS seed: related items and discounts too.
    let order = api_order();
    let plan = plan(&order, &owner(), &CancelRequest::default()).unwrap();
    assert!(plan.full);
    assert_eq!(plan.cancelled_lines, [1, 2, 3]);
    assert_eq!(plan.reason, CancellationReason::CustomerCancellation);
    assert_eq!(plan.date, TODAY);
    assert_eq!(plan.new_order_status, "Cancelled");
    assert_eq!(plan.cancelled_amount_minor, 23205);
    assert_eq!(plan.voided_minor, 23205);
    assert_eq!(
        plan.payment_actions,
        [PaymentAction {
            payment_id: "pay-1".into(),
            void_minor: 23205,
            refund_minor: 0
        }]
    );
    assert_eq!(plan.refund, None);
    assert!(plan.approval_cancelled);
    assert!(plan.warnings.is_empty());
    let released: Vec<(u32, AllocationKind, AllocationState)> = plan
        .released_allocations
        .iter()
        .map(|a| (a.line_number, a.kind, a.state))
        .collect();
    assert_eq!(
        released,
        [
            (1, AllocationKind::Existing, AllocationState::Released),
            (2, AllocationKind::Expected, AllocationState::Released)
        ]
    );

    let after = plan.apply(&order);
    assert_eq!(after.status, "Cancelled");
    assert!(after.lines.iter().all(|l| l.state == LineState::Cancelled));
    assert_eq!(after.payments[0].voided_minor, 23205);
    assert!(
        after
            .allocations
            .iter()
            .all(|a| a.state == AllocationState::Released)
    );
    assert_eq!(
        after.approval,
        Some(Approval {
            state: ApprovalState::Cancelled
        })
    );
    // WebSphere seed: "This URL does not remove the order from the database."
    assert_eq!(after.lines.len(), order.lines.len());
    assert_eq!(after.validate(), Ok(()));
    // The input order is untouched; the cancelled order cannot be cancelled again.
    assert_eq!(order, api_order());
    assert_eq!(
        plan_cancellation(
            &after,
            &Preset::Insite.settings(),
            &open_website(),
            &owner(),
            &CancelRequest::default(),
            TODAY
        ),
        Err(Refusal::OrderNotCancellable {
            status: "Cancelled".into()
        })
    );
}

#[test]
fn partial_cancellation_keeps_the_order_and_its_approval() {
    // AaaS seed: "only the line item 3 of the original order is cancelled" (here the warranty).
    let order = api_order();
    let request = CancelRequest {
        items: items(&[2]),
        ..staff_request()
    };
    let plan = plan(&order, &Requester::Service, &request).unwrap();
    assert!(!plan.full);
    assert_eq!(plan.cancelled_lines, [2]);
    assert_eq!(plan.new_order_status, "Submitted");
    assert_eq!(plan.cancelled_amount_minor, 1785);
    assert_eq!(plan.voided_minor, 1785);
    assert!(
        !plan.approval_cancelled,
        "the rest of the order still awaits approval"
    );
    assert_eq!(plan.released_allocations.len(), 1);
    assert_eq!(plan.released_allocations[0].line_number, 2);
    assert_eq!(plan.released_allocations[0].kind, AllocationKind::Expected);

    let after = plan.apply(&order);
    assert_eq!(after.status, "Submitted");
    assert_eq!(after.line(1).unwrap().state, LineState::Active);
    assert_eq!(after.line(2).unwrap().state, LineState::Cancelled);
    assert_eq!(after.allocations[0].state, AllocationState::Allocated);
    assert_eq!(after.allocations[1].state, AllocationState::Released);
    assert_eq!(
        after.approval,
        Some(Approval {
            state: ApprovalState::Pending
        })
    );
    assert_eq!(after.validate(), Ok(()));
}

#[test]
fn cascade_follows_parent_lines_recursively() {
    // AaaS seed: "ensure that any associated discounts or related items are also canceled".
    let order = desk_order();
    let cases: &[(&[u32], &[u32], bool)] = &[
        (&[3], &[3], false),                     // a leaf alone
        (&[2], &[2, 3], false),                  // drawer takes its lock
        (&[1], &[1, 2, 3, 7], false),            // desk takes drawer, lock, and its own discount
        (&[4], &[4, 5], false), // lamp takes its bulb; the bundle stays (desk active)
        (&[1, 4], &[1, 2, 3, 4, 5, 6, 7], true), // every root: full
        (&[5, 2], &[2, 3, 5], false),
    ];
    for &(requested, expected, full) in cases {
        let request = CancelRequest {
            items: items(requested),
            ..staff_request()
        };
        let plan = plan(&order, &Requester::Service, &request).unwrap();
        assert_eq!(plan.cancelled_lines, expected, "{requested:?}");
        assert_eq!(plan.full, full, "{requested:?}");
    }
}

#[test]
fn discount_over_several_lines_is_cancelled_only_with_all_of_them() {
    // AaaS seed: associated discounts are cancelled with their lines; SPEC §2.3: "a
    // discount line cascades when every line it applies to is cancelled".
    let order = desk_order();
    let after_desk = cancelled(&order, &[1]);
    assert_eq!(
        after_desk.line(6).unwrap().state,
        LineState::Active,
        "bundle still covers the lamp"
    );
    assert_eq!(
        after_desk.line(7).unwrap().state,
        LineState::Cancelled,
        "desk discount went with the desk"
    );
    // Cancelling the lamp later completes the bundle: an earlier cancellation counts.
    let request = CancelRequest {
        items: items(&[4]),
        ..staff_request()
    };
    let plan = plan(&after_desk, &Requester::Service, &request).unwrap();
    assert_eq!(plan.cancelled_lines, [4, 5, 6]);
    assert!(plan.full);
    assert_eq!(plan.new_order_status, "Cancelled");
}

#[test]
fn a_discount_may_be_referenced_only_with_all_its_lines() {
    // AaaS seed: "for full cancellations, you have to provide all line items" — discounts
    // included — but a discount alone would raise the price of the lines kept.
    let order = desk_order();
    let request = CancelRequest {
        items: items(&[6]),
        ..staff_request()
    };
    assert_eq!(
        plan(&order, &Requester::Service, &request),
        Err(Refusal::field(
            "items[0].orderItemReference",
            "line 6 is a discount on lines that stay active (1, 4); cancel those lines and the discount follows"
        ))
    );
    let request = CancelRequest {
        items: items(&[7, 1]),
        ..staff_request()
    };
    assert_eq!(
        plan(&order, &Requester::Service, &request)
            .unwrap()
            .cancelled_lines,
        [1, 2, 3, 7]
    );
}

#[test]
fn listing_every_active_line_is_a_full_cancellation() {
    // SPEC §2.3 / AaaS seed: "for full cancellations, you have to provide all line items".
    let order = cancelled(&desk_order(), &[3]);
    let request = CancelRequest {
        items: items(&[7, 6, 5, 4, 2, 1]),
        ..staff_request()
    };
    let plan = plan(&order, &Requester::Service, &request).unwrap();
    assert!(plan.full);
    assert_eq!(plan.cancelled_lines, [1, 2, 4, 5, 6, 7]);
    assert_eq!(plan.new_order_status, "Cancelled");
    let full = plan.apply(&order);
    assert!(full.lines.iter().all(|l| l.state == LineState::Cancelled));
}

#[test]
fn the_last_line_cancelled_makes_the_order_cancelled_with_the_configured_status() {
    // WebSphere seed: "changing its order status to X"; SPEC §2.3: "the order becomes
    // cancelled when its last active line is".
    let settings = Preset::Websphere.settings();
    let mut order = api_order();
    order.status = "W".into(); // W: from the seed's behaviour section
    let step = |order: &Order, lines: &[u32]| {
        let request = CancelRequest {
            items: items(lines),
            ..staff_request()
        };
        plan_cancellation(
            order,
            &settings,
            &open_website(),
            &Requester::Admin,
            &request,
            TODAY,
        )
        .unwrap()
    };
    let first = step(&order, &[2]);
    assert_eq!(first.new_order_status, "W");
    let order = first.apply(&order);
    let last = step(&order, &[1]);
    assert!(last.full);
    assert_eq!(last.cancelled_lines, [1, 3]);
    assert_eq!(last.new_order_status, "X");
    assert!(last.approval_cancelled);
    let order = last.apply(&order);
    assert_eq!(order.status, "X");
    assert_eq!(order.payments[0].voided_minor, 23205);
}

#[test]
fn staff_cancel_any_order_even_with_the_website_switch_off() {
    // InsiteCommerce seed: AllowCancellationRequest governs the website; SPEC §2.2: customer
    // service cancels any order.
    let order = api_order();
    for actor in [Requester::Service, Requester::Admin] {
        let request = CancelRequest {
            for_user: Some(" buyer@example.com ".into()),
            ..staff_request()
        };
        let plan = plan_cancellation(
            &order,
            &Preset::Insite.settings(),
            &WebsiteSettings::default(),
            &actor,
            &request,
            TODAY,
        )
        .unwrap();
        assert_eq!(plan.for_user.as_deref(), Some("buyer@example.com"));
        assert_eq!(plan.reason, CancellationReason::OutOfStock);
    }
}

#[test]
fn request_fields_are_carried_into_the_plan() {
    // AaaS seed request example: bankDetails, cancellationDate, invoiceReference, reason.
    let order = deposited(api_order());
    let request = CancelRequest {
        items: Some(vec![ItemRef {
            order_item_reference: 1,
            quantity: Some(2),
        }]),
        reason: Some("CUSTOMER_SERVICE".into()),
        date: Some("2024-09-09".into()),
        invoice_reference: Some(" IDE12345678901 ".into()),
        bank_details: bank(
            Some("Max Mustermann"),
            Some("DE51 1001 0050 1234 5678 90"),
            Some("genodem1msc"),
        ),
        forced_cancel: true,
        forced_cancel_with_refund: true,
        for_user: None,
    };
    let plan = plan(&order, &Requester::Service, &request).unwrap();
    assert_eq!(plan.reason, CancellationReason::CustomerService);
    assert_eq!(plan.date, date!(2024 - 09 - 09));
    assert_eq!(plan.invoice_reference.as_deref(), Some("IDE12345678901"));
    assert_eq!(
        plan.bank_details,
        Some(BankDetails {
            account_owner: "Max Mustermann".into(),
            iban: "DE51100100501234567890".into(),
            bic: Some("GENODEM1MSC".into()),
        })
    );
    assert!(plan.forced_cancel && plan.forced_cancel_with_refund);
    // Chair plus its warranty and discount: everything, refunded to the bank account.
    assert_eq!(plan.cancelled_lines, [1, 2, 3]);
    assert_eq!(
        plan.refund,
        Some(Refund {
            amount_minor: 23205,
            currency: Currency::parse("EUR").unwrap(),
            to: RefundDestination::BankAccount
        })
    );
    assert_eq!(plan.voided_minor, 0);
}

#[test]
fn forced_cancel_alone_triggers_no_refund() {
    // WebSphere seed: "If the order has deposited payments and the forcedCancel parameter is
    // true, the order is canceled and no payment refund action is triggered."
    let order = deposited(api_order());
    let request = CancelRequest {
        forced_cancel: true,
        ..staff_request()
    };
    let plan = plan(&order, &Requester::Service, &request).unwrap();
    assert!(plan.full);
    assert_eq!(plan.refund, None);
    assert_eq!(plan.voided_minor, 0);
    assert!(plan.payment_actions.is_empty());
    assert_eq!(plan.unreturned_minor, 23205);
    assert_eq!(plan.warnings.len(), 1);
    assert_eq!(plan.warnings[0].code, WARNING_NOT_REFUNDED);
    assert!(
        plan.warnings[0].message.contains("23205 EUR"),
        "{}",
        plan.warnings[0].message
    );
    let after = plan.apply(&order);
    assert_eq!(after.payments[0].refunded_minor, 0);
}

#[test]
fn forced_cancel_with_refund_refunds_to_the_original_method() {
    // WebSphere seed: "the payment is refunded to the original payment method".
    let order = deposited(api_order());
    let request = CancelRequest {
        items: items(&[2]),
        forced_cancel: true,
        forced_cancel_with_refund: true,
        ..staff_request()
    };
    let plan = plan(&order, &Requester::Service, &request).unwrap();
    assert_eq!(
        plan.refund,
        Some(Refund {
            amount_minor: 1785,
            currency: order.currency.clone(),
            to: RefundDestination::OriginalPaymentMethod
        })
    );
    assert_eq!(plan.payment_actions[0].refund_minor, 1785);
    assert_eq!(plan.apply(&order).payments[0].refunded_minor, 1785);
}

#[test]
fn mixed_payments_void_open_authorizations_first_then_refund_deposits() {
    // WebSphere seed: "Cancels the payment" (void what is only authorized) and refunds
    // deposited payment with forcedCancelWithRefund; SPEC §2.4: never above what was deposited.
    let mut order = desk_order(); // total 38078
    order.payments = vec![payment("gift", 8078, 8078), payment("card", 30000, 10000)];
    let refund_request = |lines: Option<&[u32]>| CancelRequest {
        items: lines.and_then(items),
        forced_cancel: true,
        forced_cancel_with_refund: true,
        ..staff_request()
    };
    // Lamp and bulb: 10710 + 2380 = 13090, all from the card's open 20000.
    let first = plan(&order, &Requester::Service, &refund_request(Some(&[4]))).unwrap();
    assert_eq!(first.cancelled_amount_minor, 13090);
    assert_eq!(
        first.payment_actions,
        [PaymentAction {
            payment_id: "card".into(),
            void_minor: 13090,
            refund_minor: 0
        }]
    );
    assert_eq!(first.refund, None);
    assert_eq!(first.warnings[0].code, WARNING_REFUND_NOT_NEEDED);
    let order = first.apply(&order);
    // The rest: 24988 = 6910 still open on the card, then refunds in list order.
    let rest = plan(&order, &Requester::Service, &refund_request(None)).unwrap();
    assert_eq!(rest.cancelled_amount_minor, 24988);
    assert_eq!(
        rest.payment_actions,
        [
            PaymentAction {
                payment_id: "gift".into(),
                void_minor: 0,
                refund_minor: 8078
            },
            PaymentAction {
                payment_id: "card".into(),
                void_minor: 6910,
                refund_minor: 10000
            },
        ]
    );
    assert_eq!(rest.refund.as_ref().unwrap().amount_minor, 18078);
    let order = rest.apply(&order);
    let returned: i64 = order
        .payments
        .iter()
        .map(|p| p.voided_minor + p.refunded_minor)
        .sum();
    assert_eq!(returned, 38078, "exactly the order total");
    for p in &order.payments {
        assert!(p.deposited_minor + p.voided_minor <= p.authorized_minor);
        assert!(p.refunded_minor <= p.deposited_minor);
    }
}

#[test]
fn a_discount_shared_by_largest_remainder_adds_up_across_partial_cancellations() {
    // SPEC §2.4: "Refund of a partial cancellation = the cancelled lines' amounts net of their
    // discounts, plus their tax. Successive partial cancellations ... add up exactly".
    let order = desk_order();
    let values = line_values(&order).unwrap();
    // BUNDLE -3001 over 20000 : 10000 -> -2001 / -1000 (the desk has the larger remainder);
    // its tax -571 over 3800 : 1900 -> -381 / -190.
    assert_eq!(
        values[&1],
        LineValue {
            amount_minor: 20000 - 2001 - 1000,
            tax_minor: 3800 - 381 - 190
        }
    );
    assert_eq!(
        values[&4],
        LineValue {
            amount_minor: 10000 - 1000,
            tax_minor: 1900 - 190
        }
    );
    assert_eq!(values[&6], LineValue::default());
    let mut order = order;
    let mut voided = 0;
    for step in [&[5u32][..], &[3], &[4], &[2], &[1]] {
        let request = CancelRequest {
            items: items(step),
            ..staff_request()
        };
        let plan = plan(&order, &Requester::Service, &request).unwrap();
        voided += plan.voided_minor;
        order = plan.apply(&order);
    }
    assert_eq!(voided, 38078);
    assert_eq!(order.status, "Cancelled");
}

#[test]
fn an_order_without_payments_cancels_without_money_moving() {
    // AaaS seed: "Cancellation without refund: If the capture for the payment only takes
    // place after the delivery, a refund is not necessary."
    let mut order = api_order();
    order.payments.clear();
    let plan = plan(&order, &Requester::Service, &staff_request()).unwrap();
    assert_eq!(plan.voided_minor, 0);
    assert_eq!(plan.refund, None);
    assert!(plan.payment_actions.is_empty());
    assert!(
        plan.warnings.is_empty(),
        "nothing was paid, so nothing is kept"
    );
    assert_eq!(plan.cancelled_amount_minor, 23205);
}

/// One refusal case: how the inputs differ from the API example, and the answer.
struct Case {
    name: &'static str,
    order: Order,
    settings: Settings,
    website: WebsiteSettings,
    actor: Requester,
    request: CancelRequest,
    expected: Refusal,
}

fn case(name: &'static str, expected: Refusal) -> Case {
    Case {
        name,
        order: api_order(),
        settings: Preset::Insite.settings(),
        website: open_website(),
        actor: owner(),
        request: CancelRequest::default(),
        expected,
    }
}

fn refusal_cases() -> Vec<Case> {
    let staff = |request: CancelRequest| CancelRequest {
        reason: request.reason.or(Some("OUT_OF_STOCK".into())),
        ..request
    };
    let de = Some("DE89370400440532013000");
    vec![
        // SPEC §2.2: another customer's order answers 404.
        Case {
            actor: customer("C-2"),
            ..case("other customer's order", Refusal::OrderNotFound)
        },
        // WebSphere seed: "only a person with the authority to process orders can specify" forUser.
        Case {
            request: CancelRequest {
                for_user: Some("C-1".into()),
                ..Default::default()
            },
            ..case("customer acting forUser", Refusal::Forbidden)
        },
        // InsiteCommerce seed: AllowCancellationRequest, default false.
        Case {
            website: WebsiteSettings::default(),
            ..case("website switch off", Refusal::CancellationNotAllowed)
        },
        // WebSphere seed: "if the order status is not A, B, C, I, L, M, N, or W ... fails".
        Case {
            order: Order {
                status: "Shipped".into(),
                ..api_order()
            },
            ..case(
                "unmapped status",
                Refusal::OrderNotCancellable {
                    status: "Shipped".into(),
                },
            )
        },
        Case {
            settings: Settings {
                cancellable_statuses: vec![],
                ..Preset::Insite.settings()
            },
            ..case(
                "status not in the cancellable list",
                Refusal::OrderNotCancellable {
                    status: "Submitted".into(),
                },
            )
        },
        Case {
            settings: Settings {
                status_mappings: vec![StatusMapping {
                    erp_code: "Submitted".into(),
                    status: "Submitted".into(),
                    allow_cancellation: false,
                }],
                ..Preset::Insite.settings()
            },
            ..case(
                "mapping forbids cancellation",
                Refusal::OrderNotCancellable {
                    status: "Submitted".into(),
                },
            )
        },
        Case {
            order: Order {
                status: "P".into(),
                ..api_order()
            },
            settings: Preset::Websphere.settings(),
            ..case(
                "websphere pending cart",
                Refusal::OrderNotCancellable { status: "P".into() },
            )
        },
        Case {
            order: cancelled_lines_but_submitted(),
            ..case(
                "no active line left",
                Refusal::OrderNotCancellable {
                    status: "Submitted".into(),
                },
            )
        },
        // WebSphere seed: "the order can be canceled only if the parameter is set to forcedCancel=true".
        Case {
            order: deposited(api_order()),
            ..case(
                "deposited without forcedCancel",
                Refusal::ForcedCancelRequired,
            )
        },
        // SPEC §2.3: already-cancelled references are refused.
        Case {
            order: cancelled(&api_order(), &[2]),
            request: CancelRequest {
                items: items(&[2]),
                ..Default::default()
            },
            ..case(
                "line already cancelled",
                Refusal::LineAlreadyCancelled { line: 2 },
            )
        },
        // WebSphere seed: forcedCancelWithRefund prerequisites.
        Case {
            order: deposited(api_order()),
            request: CancelRequest {
                forced_cancel_with_refund: true,
                ..Default::default()
            },
            ..case(
                "refund without forcedCancel",
                Refusal::RefundRequiresForcedCancel,
            )
        },
        Case {
            request: CancelRequest {
                forced_cancel: true,
                forced_cancel_with_refund: true,
                ..Default::default()
            },
            ..case("refund without deposited payment", Refusal::NothingToRefund)
        },
        // AaaS seed: orderItemReference is a position of the original order.
        Case {
            request: CancelRequest {
                items: items(&[1, 9]),
                ..Default::default()
            },
            ..case("unknown line", Refusal::UnknownLine { line: 9 })
        },
        Case {
            request: CancelRequest {
                items: items(&[2, 1, 2]),
                ..Default::default()
            },
            ..case("duplicate line", Refusal::DuplicateLine { line: 2 })
        },
        // AaaS seed: "Cancellations can only occur for full order items (positions)".
        Case {
            request: CancelRequest {
                items: Some(vec![ItemRef {
                    order_item_reference: 1,
                    quantity: Some(1),
                }]),
                ..Default::default()
            },
            ..case(
                "partial line",
                Refusal::PartialLineNotSupported {
                    line: 1,
                    requested: 1,
                    quantity: 2,
                },
            )
        },
        Case {
            request: CancelRequest {
                items: Some(vec![ItemRef {
                    order_item_reference: 1,
                    quantity: Some(0),
                }]),
                ..Default::default()
            },
            ..case(
                "zero quantity",
                Refusal::PartialLineNotSupported {
                    line: 1,
                    requested: 0,
                    quantity: 2,
                },
            )
        },
        Case {
            request: CancelRequest {
                items: Some(vec![ItemRef {
                    order_item_reference: 1,
                    quantity: Some(3),
                }]),
                ..Default::default()
            },
            ..case(
                "quantity above the line's",
                Refusal::field(
                    "items[0].quantity",
                    "3 is more than the 2 of line 1; leave quantity out to cancel the whole line",
                ),
            )
        },
        Case {
            request: CancelRequest {
                items: Some(vec![]),
                ..Default::default()
            },
            ..case(
                "empty items",
                Refusal::field(
                    "items",
                    "list at least one line, or leave items out to cancel the whole order",
                ),
            )
        },
        // AaaS seed: the four reasons; SPEC §2.5: staff must give one, customers only theirs.
        Case {
            actor: Requester::Service,
            ..case(
                "staff without reason",
                Refusal::InvalidReason { reason: None },
            )
        },
        Case {
            request: CancelRequest {
                reason: Some("CHANGED_MIND".into()),
                ..Default::default()
            },
            ..case(
                "unknown reason",
                Refusal::InvalidReason {
                    reason: Some("CHANGED_MIND".into()),
                },
            )
        },
        Case {
            request: CancelRequest {
                reason: Some("OUT_OF_STOCK".into()),
                ..Default::default()
            },
            ..case(
                "customer with a staff reason",
                Refusal::ReasonNotAllowed {
                    reason: "OUT_OF_STOCK".into(),
                },
            )
        },
        // SPEC §2.5: not in the future, not before the order date.
        Case {
            request: CancelRequest {
                date: Some("2024-09-11".into()),
                ..Default::default()
            },
            ..case(
                "future date",
                Refusal::InvalidDate {
                    date: "2024-09-11".into(),
                    problem: DateProblem::InFuture,
                },
            )
        },
        Case {
            request: CancelRequest {
                date: Some("2024-08-31".into()),
                ..Default::default()
            },
            ..case(
                "date before the order",
                Refusal::InvalidDate {
                    date: "2024-08-31".into(),
                    problem: DateProblem::BeforeOrderDate,
                },
            )
        },
        Case {
            request: CancelRequest {
                date: Some("yesterday".into()),
                ..Default::default()
            },
            ..case(
                "unparsable date",
                Refusal::InvalidDate {
                    date: "yesterday".into(),
                    problem: DateProblem::Unparsable,
                },
            )
        },
        // AaaS seed: IBAN, account owner, BIC outside SEPA.
        Case {
            request: CancelRequest {
                bank_details: bank(Some("Max"), Some("DE89370400440532013001"), None),
                ..Default::default()
            },
            ..case(
                "bad IBAN checksum",
                Refusal::InvalidIban {
                    problem: IbanProblem::Checksum,
                },
            )
        },
        Case {
            request: CancelRequest {
                bank_details: bank(Some("Max"), de, Some("COBADE")),
                ..Default::default()
            },
            ..case(
                "bad BIC",
                Refusal::InvalidBic {
                    bic: "COBADE".into(),
                },
            )
        },
        Case {
            request: CancelRequest {
                bank_details: bank(Some("Max"), Some("TR330006100519786457841326"), None),
                ..Default::default()
            },
            ..case(
                "BIC required outside SEPA",
                Refusal::BicRequired {
                    country: "TR".into(),
                },
            )
        },
        Case {
            request: CancelRequest {
                bank_details: bank(None, de, None),
                ..Default::default()
            },
            ..case(
                "bank details without owner",
                Refusal::field("bankDetails.accountOwner", "is required with bank details"),
            )
        },
        Case {
            request: CancelRequest {
                invoice_reference: Some("  ".into()),
                ..Default::default()
            },
            ..case(
                "blank invoice reference",
                Refusal::field(
                    "invoiceReference",
                    "must not be blank; leave it out instead",
                ),
            )
        },
        Case {
            actor: Requester::Service,
            request: staff(CancelRequest {
                for_user: Some("x".repeat(101)),
                ..Default::default()
            }),
            ..case(
                "overlong forUser",
                Refusal::field("forUser", "must be at most 100 characters"),
            )
        },
        Case {
            actor: Requester::Service,
            request: staff(CancelRequest {
                invoice_reference: Some("IDE\n1".into()),
                ..Default::default()
            }),
            ..case(
                "control character",
                Refusal::field("invoiceReference", "must not contain control characters"),
            )
        },
        // SPEC §2.4: amounts are exact; an order whose sums overflow is refused, not planned.
        Case {
            order: Order {
                lines: vec![
                    product(1, "GOLD", 1, i64::MAX, 0),
                    product(2, "MORE GOLD", 1, 1, 0),
                ],
                payments: vec![],
                allocations: vec![],
                ..api_order()
            },
            ..case(
                "overflowing order",
                Refusal::field(
                    "order.lines",
                    "the amounts and taxes add up beyond the largest representable amount",
                ),
            )
        },
        Case {
            order: Order {
                lines: vec![
                    product(1, "CHAIR", 1, 100, 0),
                    child(2, "WARRANTY", 5, 0, 7),
                ],
                payments: vec![],
                allocations: vec![],
                ..api_order()
            },
            ..case(
                "inconsistent order",
                Refusal::field("order.lines[1].parentLine", "the order has no line 7"),
            )
        },
        Case {
            settings: Settings {
                cancelled_status: String::new(),
                ..Preset::Insite.settings()
            },
            ..case(
                "broken settings",
                Refusal::field("settings.cancelledStatus", "must not be blank"),
            )
        },
    ]
}

/// An order whose lines are all cancelled but whose status the ERP never
/// moved on.
fn cancelled_lines_but_submitted() -> Order {
    let mut order = cancelled(&api_order(), &[1]);
    order.status = "Submitted".into();
    order
}

/// Each case is refused with its code. That a refusal changes nothing is
/// not checkable here (`plan_cancellation` borrows the order immutably); the
/// store-level test `tests/all/store_refusals.rs` sends refused requests
/// through the real store and compares the database before and after.
#[test]
fn every_refusal_table() {
    for case in refusal_cases() {
        let got = plan_cancellation(
            &case.order,
            &case.settings,
            &case.website,
            &case.actor,
            &case.request,
            TODAY,
        );
        assert_eq!(got, Err(case.expected.clone()), "{}", case.name);
    }
}

#[test]
fn every_refusal_variant_and_api_code_is_reached() {
    // docs/api.md: every error code the domain can produce must be reachable.
    let reached: std::collections::BTreeSet<&str> =
        refusal_cases().iter().map(|c| c.expected.code()).collect();
    let domain_codes = [
        "order-not-found",
        "forbidden",
        "cancellation-not-allowed",
        "order-not-cancellable",
        "forced-cancel-required",
        "line-already-cancelled",
        "refund-requires-forced-cancel",
        "nothing-to-refund",
        "unknown-line",
        "duplicate-line",
        "partial-line-not-supported",
        "invalid-reason",
        "reason-not-allowed",
        "invalid-date",
        "invalid-iban",
        "invalid-bic",
        "bic-required",
        "validation-failed",
    ];
    assert_eq!(reached, domain_codes.into_iter().collect());
}

#[test]
fn codes_and_statuses_match_api_md() {
    // docs/api.md error table.
    let table: &[(Refusal, &str, u16)] = &[
        (Refusal::OrderNotFound, "order-not-found", 404),
        (Refusal::Forbidden, "forbidden", 403),
        (
            Refusal::CancellationNotAllowed,
            "cancellation-not-allowed",
            403,
        ),
        (
            Refusal::OrderNotCancellable { status: "X".into() },
            "order-not-cancellable",
            409,
        ),
        (Refusal::ForcedCancelRequired, "forced-cancel-required", 409),
        (
            Refusal::LineAlreadyCancelled { line: 1 },
            "line-already-cancelled",
            409,
        ),
        (
            Refusal::RefundRequiresForcedCancel,
            "refund-requires-forced-cancel",
            422,
        ),
        (Refusal::NothingToRefund, "nothing-to-refund", 422),
        (Refusal::UnknownLine { line: 1 }, "unknown-line", 422),
        (Refusal::DuplicateLine { line: 1 }, "duplicate-line", 422),
        (
            Refusal::PartialLineNotSupported {
                line: 1,
                requested: 1,
                quantity: 2,
            },
            "partial-line-not-supported",
            422,
        ),
        (
            Refusal::InvalidReason { reason: None },
            "invalid-reason",
            422,
        ),
        (
            Refusal::ReasonNotAllowed {
                reason: "NO_PAYMENT".into(),
            },
            "reason-not-allowed",
            422,
        ),
        (
            Refusal::InvalidDate {
                date: "x".into(),
                problem: DateProblem::Unparsable,
            },
            "invalid-date",
            422,
        ),
        (
            Refusal::InvalidIban {
                problem: IbanProblem::Format,
            },
            "invalid-iban",
            422,
        ),
        (Refusal::InvalidBic { bic: "x".into() }, "invalid-bic", 422),
        (
            Refusal::BicRequired {
                country: "TR".into(),
            },
            "bic-required",
            422,
        ),
        (
            Refusal::ValidationFailed { errors: vec![] },
            "validation-failed",
            422,
        ),
    ];
    for (refusal, code, status) in table {
        assert_eq!(refusal.code(), *code);
        assert_eq!(refusal.status(), *status, "{code}");
    }
    // Messages name what the client must fix.
    assert_eq!(
        Refusal::OrderNotCancellable { status: "S".into() }.to_string(),
        "an order in status \"S\" cannot be cancelled"
    );
    assert_eq!(
        Refusal::PartialLineNotSupported {
            line: 3,
            requested: 1,
            quantity: 2
        }
        .to_string(),
        "line 3: only whole lines can be cancelled (1 of 2 requested)"
    );
}

#[test]
fn which_refusal_wins() {
    // The documented order of checks: actor, stored data, order state, request fields in
    // docs/api.md order, payments.
    let cases: Vec<(&str, Case)> = vec![
        (
            "other customer beats forUser and a bad reason",
            Case {
                actor: customer("C-2"),
                request: CancelRequest {
                    for_user: Some("x".into()),
                    reason: Some("?".into()),
                    ..Default::default()
                },
                ..case("", Refusal::OrderNotFound)
            },
        ),
        (
            "forUser beats the website switch",
            Case {
                website: WebsiteSettings::default(),
                request: CancelRequest {
                    for_user: Some("x".into()),
                    ..Default::default()
                },
                ..case("", Refusal::Forbidden)
            },
        ),
        (
            "website switch beats a status that is not cancellable",
            Case {
                website: WebsiteSettings::default(),
                order: Order {
                    status: "Shipped".into(),
                    ..api_order()
                },
                ..case("", Refusal::CancellationNotAllowed)
            },
        ),
        (
            "status beats an unknown line",
            Case {
                order: Order {
                    status: "Shipped".into(),
                    ..api_order()
                },
                request: CancelRequest {
                    items: items(&[9]),
                    ..Default::default()
                },
                ..case(
                    "",
                    Refusal::OrderNotCancellable {
                        status: "Shipped".into(),
                    },
                )
            },
        ),
        (
            "items in request order: the unknown line comes first",
            Case {
                order: cancelled(&api_order(), &[2]),
                request: CancelRequest {
                    items: items(&[9, 2]),
                    ..Default::default()
                },
                ..case("", Refusal::UnknownLine { line: 9 })
            },
        ),
        (
            "items in request order: the cancelled line comes first",
            Case {
                order: cancelled(&api_order(), &[2]),
                request: CancelRequest {
                    items: items(&[2, 9]),
                    ..Default::default()
                },
                ..case("", Refusal::LineAlreadyCancelled { line: 2 })
            },
        ),
        (
            "items beat the reason",
            Case {
                request: CancelRequest {
                    items: items(&[1, 1]),
                    reason: Some("?".into()),
                    ..Default::default()
                },
                ..case("", Refusal::DuplicateLine { line: 1 })
            },
        ),
        (
            "reason beats date",
            Case {
                request: CancelRequest {
                    reason: Some("NO_PAYMENT".into()),
                    date: Some("?".into()),
                    ..Default::default()
                },
                ..case(
                    "",
                    Refusal::ReasonNotAllowed {
                        reason: "NO_PAYMENT".into(),
                    },
                )
            },
        ),
        (
            "bank details beat the forced flags",
            Case {
                request: CancelRequest {
                    bank_details: bank(Some("Max"), Some("DE00"), None),
                    forced_cancel_with_refund: true,
                    ..Default::default()
                },
                ..case(
                    "",
                    Refusal::InvalidIban {
                        problem: IbanProblem::Checksum,
                    },
                )
            },
        ),
        (
            "refund flag without forcedCancel beats forced-cancel-required",
            Case {
                order: deposited(api_order()),
                request: CancelRequest {
                    forced_cancel_with_refund: true,
                    ..Default::default()
                },
                ..case("", Refusal::RefundRequiresForcedCancel)
            },
        ),
    ];
    for (name, case) in cases {
        let got = plan_cancellation(
            &case.order,
            &case.settings,
            &case.website,
            &case.actor,
            &case.request,
            TODAY,
        );
        assert_eq!(got, Err(case.expected), "{name}");
    }
}

#[test]
fn a_fully_refunded_deposit_no_longer_needs_forced_cancel() {
    // WebSphere seed: forcedCancel is for orders "that ha[ve] deposited payment"; once the
    // deposit is refunded in full there is nothing captured left.
    let mut order = api_order();
    order.payments = vec![payment("pay-1", 23205, 1785)];
    let order = {
        let request = CancelRequest {
            items: items(&[2]),
            forced_cancel: true,
            ..staff_request()
        };
        plan(&order, &Requester::Service, &request)
            .unwrap()
            .apply(&order)
    };
    // The warranty's 1785 was voided from the open 21420; the deposit is still held.
    assert_eq!(order.payments[0].voided_minor, 1785);
    assert_eq!(
        plan(&order, &Requester::Service, &staff_request()),
        Err(Refusal::ForcedCancelRequired)
    );
    let mut refunded = order.clone();
    refunded.payments[0].refunded_minor = 1785;
    refunded.payments[0].voided_minor = 0;
    let plan = plan(&refunded, &Requester::Service, &staff_request()).unwrap();
    assert_eq!(plan.voided_minor, 21420);
}

#[test]
fn apply_is_pure_and_releases_only_held_allocations() {
    let order = api_order();
    let plan = plan(&order, &owner(), &CancelRequest::default()).unwrap();
    let once = plan.apply(&order);
    assert_eq!(order, api_order());
    assert_eq!(
        plan.apply(&order),
        once,
        "same plan, same order, same result"
    );
}
