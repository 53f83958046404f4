//! Paths of the WebAssembly components built from `plugins/*` and
//! `tests/guests/*` for `wasm32-wasip2`, for the host's tests and benchmarks.
//!
//! The build script compiles them with a nested `cargo build --target
//! wasm32-wasip2 --profile plugin` into `<target>/wasm-components` and
//! generates one constant per component, named after the crate's folder in
//! upper snake case (`WEBHOOK`, `ALLOC_BOMB`, …), plus the lists [`PLUGINS`]
//! and [`TEST_GUESTS`].

include!(concat!(env!("OUT_DIR"), "/components.rs"));

#[cfg(test)]
mod tests {
    use super::*;
    use wasmparser::{Encoding, Parser, Payload, Validator, WasmFeatures};

    /// What a component shows from the outside.
    struct Anatomy {
        top_level_exports: Vec<String>,
        stamps: Vec<Vec<u8>>,
        core_modules: usize,
    }

    fn anatomy(name: &str, path: &str) -> Anatomy {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {path}: {e}"));
        // Magic, then version 0x0d and layer 1: a component, not a core module.
        assert_eq!(
            &bytes[..8],
            b"\0asm\x0d\0\x01\0",
            "{name} is not a component"
        );
        Validator::new_with_features(WasmFeatures::all())
            .validate_all(&bytes)
            .unwrap_or_else(|e| panic!("{name} does not validate: {e}"));

        let mut anatomy = Anatomy {
            top_level_exports: Vec::new(),
            stamps: Vec::new(),
            core_modules: 0,
        };
        let mut depth = 0usize;
        for payload in Parser::new(0).parse_all(&bytes) {
            match payload.unwrap() {
                Payload::Version { encoding, .. } if depth == 0 => {
                    assert_eq!(encoding, Encoding::Component, "{name}");
                }
                Payload::ModuleSection { .. } => {
                    anatomy.core_modules += 1;
                    depth += 1;
                }
                Payload::ComponentSection { .. } => depth += 1,
                Payload::End(_) => depth = depth.saturating_sub(1),
                Payload::ComponentExportSection(exports) if depth == 0 => {
                    for export in exports {
                        anatomy
                            .top_level_exports
                            .push(export.unwrap().name.0.to_owned());
                    }
                }
                Payload::CustomSection(section)
                    if section.name() == rescind_guest::STAMP_SECTION =>
                {
                    anatomy.stamps.push(section.data().to_vec());
                }
                _ => {}
            }
        }
        anatomy
    }

    fn current_stamp() -> Vec<u8> {
        format!(
            "sdk={}\nwit={}\n",
            rescind_guest::SDK_VERSION,
            rescind_guest::WIT_PACKAGE
        )
        .into_bytes()
    }

    #[test]
    fn every_sdk_built_component_exports_the_processor_and_carries_the_stamp() {
        let sdk_built = PLUGINS.iter().chain(
            TEST_GUESTS
                .iter()
                .filter(|(name, _)| !matches!(*name, "wrong-world" | "old-sdk")),
        );
        let mut checked = Vec::new();
        for (name, path) in sdk_built {
            let anatomy = anatomy(name, path);
            assert_eq!(
                anatomy.top_level_exports,
                ["rescind:erp/processor@0.1.0"],
                "{name}"
            );
            assert_eq!(anatomy.stamps, [current_stamp()], "{name}");
            assert!(anatomy.core_modules >= 1, "{name}");
            checked.push(*name);
        }
        assert!(checked.contains(&"webhook"), "{checked:?}");
        assert_eq!(checked.len(), PLUGINS.len() + TEST_GUESTS.len() - 2);
    }

    #[test]
    fn the_fault_guests_are_what_their_tests_need() {
        let wrong = anatomy("wrong-world", WRONG_WORLD);
        assert_eq!(wrong.top_level_exports, ["run"]);
        assert!(wrong.stamps.is_empty());

        let old = anatomy("old-sdk", OLD_SDK);
        assert_eq!(old.top_level_exports, ["rescind:erp/processor@0.1.0"]);
        assert_eq!(old.stamps, [b"sdk=0.0.1\nwit=rescind:erp@0.0.9\n".to_vec()]);
    }

    #[test]
    fn the_lists_name_every_component() {
        let names: Vec<&str> = TEST_GUESTS.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "alloc-bomb",
                "egress-probe",
                "hostile",
                "looper",
                "noisy",
                "old-sdk",
                "panicker",
                "sandbox-probe",
                "table-grower",
                "trivial",
                "wrong-world"
            ]
        );
        assert!(PLUGINS.contains(&("webhook", WEBHOOK)));
        for (_, path) in PLUGINS.iter().chain(TEST_GUESTS) {
            assert!(std::path::Path::new(path).is_absolute(), "{path}");
        }
    }
}
