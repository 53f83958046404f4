//! One plugin runtime per test binary, each component compiled once (a debug
//! host takes seconds per compile), and the cancellation the tests submit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rescind_host::plugins::{Cancellation, Plugin, PluginRuntime, RuntimeConfig};

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
/// a discount), a refund to a bank account and online tracking data. The
/// host's sample (what `rescind plugin test` submits) under the order number
/// these tests use, with an ERP line reference on the first line only.
pub fn sample_cancellation() -> Cancellation {
    let mut cancellation = rescind_host::plugins::sample_cancellation();
    cancellation.order_number = "1001".into();
    for line in cancellation.lines.iter_mut().filter(|l| l.line_number != 1) {
        line.erp_line_ref = None;
    }
    cancellation.parameters = vec![("OrderNumber".into(), "1001".into())];
    cancellation
}
