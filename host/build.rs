//! Compiles the example plugins (`plugins/*`, not the test guests) into
//! components and writes `$OUT_DIR/bundled_plugins.rs`:
//!
//! ```ignore
//! pub const BUNDLED: &[(&str, &[u8])] = &[("webhook", include_bytes!("…/webhook.wasm")), …];
//! ```
//!
//! so that the `rescind` binary carries them for `rescind serve --demo`. The
//! building is shared with the test artifacts (`tests/artifacts/wasm_build.rs`).

#[path = "../tests/artifacts/wasm_build.rs"]
mod wasm_build;

use std::fmt::Write as _;
use std::path::PathBuf;

use wasm_build::BuildError;

fn main() {
    let root = wasm_build::workspace_root();
    wasm_build::watch(&root, &[wasm_build::PLUGINS]);
    let plugins = wasm_build::discover(&root, wasm_build::PLUGINS)
        .unwrap_or_else(|error| wasm_build::fail(error));
    let components =
        wasm_build::build(&root, &plugins).unwrap_or_else(|error| wasm_build::fail(error));

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let mut code = String::from(
        "/// The example plugins from `plugins/`, compiled for wasm32-wasip2: each\n\
         /// plugin's name (its crate folder) and its component's bytes.\n\
         pub const BUNDLED: &[(&str, &[u8])] = &[\n",
    );
    for component in &components {
        // A copy in OUT_DIR: the shared components directory may be rebuilt by
        // the test artifacts' build while this crate compiles.
        let bundled = out_dir.join(format!("{}.wasm", component.source.name));
        std::fs::copy(&component.path, &bundled).unwrap_or_else(|error| {
            wasm_build::fail(BuildError::Io {
                path: component.path.clone(),
                error,
            })
        });
        let bundled = bundled.to_str().expect("target paths are UTF-8");
        let _ = writeln!(
            code,
            "    ({:?}, include_bytes!({bundled:?})),",
            component.source.name
        );
    }
    code.push_str("];\n");
    let path = out_dir.join("bundled_plugins.rs");
    std::fs::write(&path, code)
        .unwrap_or_else(|error| wasm_build::fail(BuildError::Io { path, error }));
}
