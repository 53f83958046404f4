//! Components the runtime must refuse, with messages that say why.

use rescind_host::plugins::{PluginError, SUPPORTED_WIT};
use rescind_tests::plugin_fixtures::{plugin, runtime};
use sha2::{Digest, Sha256};

fn load(name: &str, bytes: &[u8]) -> PluginError {
    runtime()
        .load(name, bytes)
        .expect_err("the component must be refused")
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn a_component_of_another_world_is_refused() {
    let err = load("wrong-world", &read(rescind_test_artifacts::WRONG_WORLD));
    let PluginError::WrongWorld { exports, .. } = &err else {
        panic!("expected WrongWorld, got {err:?}");
    };
    assert!(
        !exports.iter().any(|e| e == "rescind:erp/processor@0.1.0"),
        "{exports:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("is not an integration processor"),
        "{message}"
    );
    assert!(message.contains("rescind:erp/processor@0.1.0"), "{message}");
    for export in exports {
        assert!(message.contains(export.as_str()), "{message}");
    }
}

#[test]
fn a_component_from_an_old_sdk_is_refused_naming_both_versions() {
    let err = load("old-sdk", &read(rescind_test_artifacts::OLD_SDK));
    assert!(
        matches!(&err, PluginError::IncompatibleSdk { sdk, wit, .. }
            if sdk == "0.0.1" && wit == "rescind:erp@0.0.9"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("rescind:erp@0.0.9"), "{message}");
    assert!(message.contains(SUPPORTED_WIT), "{message}");
    assert!(message.contains("0.0.1"), "{message}");
}

#[test]
fn a_core_module_is_refused() {
    let err = load("core", b"\0asm\x01\0\0\0");
    assert!(matches!(err, PluginError::CoreModule { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "plugin `core` is a core WebAssembly module, not a component: build with \
         `cargo build --target wasm32-wasip2`"
    );
}

#[test]
fn garbage_is_refused() {
    let err = load("garbage", b"#!/bin/sh\necho hello\n");
    assert!(matches!(err, PluginError::NotWasm { .. }), "{err:?}");
    assert!(
        err.to_string().contains("is not a WebAssembly binary"),
        "{err}"
    );
}

#[test]
fn a_loaded_plugin_names_its_version_and_sdk() {
    let bytes = read(rescind_test_artifacts::WEBHOOK);
    let webhook = plugin("webhook", rescind_test_artifacts::WEBHOOK);
    assert_eq!(webhook.name(), "webhook");
    assert_eq!(
        webhook.sha256(),
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
    );
    assert_eq!(webhook.wit_version(), Some(SUPPORTED_WIT));
    // The guest SDK shares the workspace's version.
    assert_eq!(webhook.sdk_version(), Some(env!("CARGO_PKG_VERSION")));
    assert!(webhook.warnings().is_empty(), "{:?}", webhook.warnings());
}

/// A component that imports what no host provides (`acme:door/lock@1.0.0`,
/// with one function `open`) and exports an empty instance under the
/// processor's name: it passes the checks on the binary and fails at
/// linking, before the export's shape is even looked at.
fn component_importing_an_unknown_interface() -> Vec<u8> {
    fn string(s: &str, out: &mut Vec<u8>) {
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
    fn section(id: u8, body: Vec<u8>, out: &mut Vec<u8>) {
        out.push(id);
        out.push(body.len() as u8);
        out.extend(body);
    }
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    // type 0: instance { type 0: func(); export "open": func(type 0) }
    let mut types = vec![1, 0x42, 2, 0x01, 0x40, 0x00, 0x01, 0x00, 0x04, 0x00];
    string("open", &mut types);
    types.extend([0x01, 0x00]);
    section(7, types, &mut bytes);
    // import "acme:door/lock@1.0.0": instance of type 0
    let mut imports = vec![1, 0x00];
    string("acme:door/lock@1.0.0", &mut imports);
    imports.extend([0x05, 0x00]);
    section(10, imports, &mut bytes);
    // instance 1: an empty instance built from no exports
    section(5, vec![1, 0x01, 0x00], &mut bytes);
    // export instance 1 as the processor
    let mut exports = vec![1, 0x00];
    string("rescind:erp/processor@0.1.0", &mut exports);
    exports.extend([0x05, 0x01, 0x00]);
    section(11, exports, &mut bytes);
    bytes
}

#[test]
fn an_import_the_host_does_not_provide_is_refused_by_name() {
    let err = load("locksmith", &component_importing_an_unknown_interface());
    assert!(
        matches!(&err, PluginError::UnsatisfiedImport { import, .. }
            if import == "acme:door/lock@1.0.0"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("imports `acme:door/lock@1.0.0`"),
        "{message}"
    );
    assert!(message.contains("does not provide"), "{message}");
}

#[test]
fn a_plugin_without_the_sdk_stamp_loads_with_a_warning() {
    // Renaming the section (same length, so every size stays valid) is what
    // a component built without the SDK looks like to the host.
    let mut bytes = read(rescind_test_artifacts::TRIVIAL);
    let stamp = b"rescind:sdk";
    let mut renamed = 0;
    for at in 0..bytes.len() - stamp.len() {
        if &bytes[at..at + stamp.len()] == stamp {
            bytes[at..at + stamp.len()].copy_from_slice(b"rescind:xyz");
            renamed += 1;
        }
    }
    assert!(renamed > 0, "the trivial component carries a stamp");

    let plugin = runtime()
        .load("unstamped", &bytes)
        .expect("an unstamped component with the right export loads");
    assert_eq!(plugin.sdk_version(), None);
    assert_eq!(plugin.wit_version(), None);
    assert_eq!(plugin.warnings().len(), 1);
    assert!(
        plugin.warnings()[0].contains("rescind:sdk"),
        "{:?}",
        plugin.warnings()
    );
}
