//! Compiles every plugin and test guest to a component and writes their paths
//! into `$OUT_DIR/components.rs` (see `host/wasm_build.rs`).

#[path = "../../host/wasm_build.rs"]
mod wasm_build;

use std::fmt::Write as _;
use std::path::PathBuf;

use wasm_build::{BuildError, Component, PLUGINS, TEST_GUESTS};

fn main() {
    let root = wasm_build::workspace_root();
    let families = [PLUGINS, TEST_GUESTS];
    wasm_build::watch(&root, &families);
    let crates = families
        .into_iter()
        .map(|family| wasm_build::discover(&root, family))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|error| wasm_build::fail(error))
        .concat();
    let components =
        wasm_build::build(&root, &crates).unwrap_or_else(|error| wasm_build::fail(error));
    let code = generate(&components).unwrap_or_else(|error| wasm_build::fail(error));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let path = out_dir.join("components.rs");
    std::fs::write(&path, code)
        .unwrap_or_else(|error| wasm_build::fail(BuildError::Io { path, error }));
}

fn generate(components: &[Component]) -> Result<String, BuildError> {
    let mut code = String::new();
    let mut seen = std::collections::BTreeMap::new();
    for component in components {
        let source = &component.source;
        let constant = wasm_build::const_name(&source.name);
        if let Some(other) = seen.insert(constant.clone(), source.family.dir) {
            return Err(BuildError::Io {
                path: component.path.clone(),
                error: std::io::Error::other(format!(
                    "`{}` exists in both {other} and {}: names must be unique across both",
                    source.name, source.family.dir
                )),
            });
        }
        let path = component.path.to_str().expect("target paths are UTF-8");
        let _ = writeln!(
            code,
            "/// The {} `{}` (`{}/{}`), built for wasm32-wasip2.",
            source.family.noun, source.name, source.family.dir, source.name
        );
        if let Some(description) = &source.description {
            let _ = writeln!(code, "///\n/// {description}");
        }
        let _ = writeln!(code, "pub const {constant}: &str = {path:?};\n");
    }
    for (family, name, doc) in [
        (PLUGINS, "PLUGINS", "Every plugin in `plugins/`"),
        (
            TEST_GUESTS,
            "TEST_GUESTS",
            "Every test guest in `tests/guests/`",
        ),
    ] {
        let _ = writeln!(
            code,
            "/// {doc}: its name (the crate's folder) and the path of its component."
        );
        let _ = writeln!(code, "pub const {name}: &[(&str, &str)] = &[");
        for component in components.iter().filter(|c| c.source.family == family) {
            let _ = writeln!(
                code,
                "    ({:?}, {}),",
                component.source.name,
                wasm_build::const_name(&component.source.name)
            );
        }
        let _ = writeln!(code, "];\n");
    }
    Ok(code)
}
