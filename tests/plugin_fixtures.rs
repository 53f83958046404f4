//! One plugin runtime per test binary, each component compiled once (a debug
//! host takes seconds per compile), and the cancellation the tests submit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rescind_host::plugins::{
    BankDetails, Cancellation, CancellationReason, CancelledLine, LineKind, Money, OrderChannel,
    Plugin, PluginRuntime, Refund, RefundDestination, RuntimeConfig, Tracking,
};

/// The runtime shared by the tests of this binary.
pub fn runtime() -> &'static PluginRuntime {
    static RUNTIME: OnceLock<PluginRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        PluginRuntime::new(RuntimeConfig::default()).expect("the plugin runtime starts")
    })
}

/// The component at `path`, loaded as `name` into [`runtime`] on first use.
pub fn plugin(name: &str, path: &str) -> Arc<Plugin> {
    static LOADED: OnceLock<Mutex<HashMap<String, Arc<Plugin>>>> = OnceLock::new();
    let mut loaded = LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(plugin) = loaded.get(path) {
        return Arc::clone(plugin);
    }
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let plugin = runtime()
        .load(name, &bytes)
        .unwrap_or_else(|e| panic!("load {name}: {e}"));
    loaded.insert(path.to_owned(), Arc::clone(&plugin));
    plugin
}

/// A full cancellation of order 1001: three lines (a product, its warranty,
/// a discount), a refund to a bank account and online tracking data.
pub fn sample_cancellation() -> Cancellation {
    let eur = |amount_minor| Money {
        amount_minor,
        currency: "EUR".into(),
    };
    Cancellation {
        request_id: "6f1d2c3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f".into(),
        attempt: 1,
        order_number: "1001".into(),
        erp_order_number: Some("ERP-1001".into()),
        business_code: "B1".into(),
        customer_number: "C-1".into(),
        website: "main".into(),
        order_date: "2024-09-01".into(),
        full: true,
        lines: vec![
            CancelledLine {
                line_number: 1,
                sku: "CHAIR".into(),
                quantity: 2,
                kind: LineKind::Product,
                amount: eur(20000),
                tax: eur(3800),
                parent_line: None,
                erp_line_ref: Some("ERP-1001-1".into()),
            },
            CancelledLine {
                line_number: 2,
                sku: "WARRANTY".into(),
                quantity: 1,
                kind: LineKind::Product,
                amount: eur(1500),
                tax: eur(285),
                parent_line: Some(1),
                erp_line_ref: None,
            },
            CancelledLine {
                line_number: 3,
                sku: "PROMO10".into(),
                quantity: 1,
                kind: LineKind::Discount,
                amount: eur(-2000),
                tax: eur(-380),
                parent_line: None,
                erp_line_ref: None,
            },
        ],
        all_line_numbers: vec![1, 2, 3],
        reason: CancellationReason::OutOfStock,
        date: "2024-09-09".into(),
        invoice_reference: Some("IDE12345678901".into()),
        forced_cancel: true,
        forced_cancel_with_refund: true,
        refund: Some(Refund {
            amount: eur(23205),
            to: RefundDestination::BankAccount,
        }),
        bank_details: Some(BankDetails {
            account_owner: "Max Mustermann".into(),
            iban: "DE89370400440532013000".into(),
            bic: Some("COBADEFFXXX".into()),
        }),
        for_user: None,
        tracking: Some(Tracking {
            channel: OrderChannel::Online,
            session: Some("123|abc".into()),
            cuid: Some("09|Z0".into()),
            offline_channel: None,
        }),
        parameters: vec![("OrderNumber".into(), "1001".into())],
    }
}
