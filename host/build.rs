//! Compiles the example plugins (`plugins/*`, not the test guests) into
//! components and writes `$OUT_DIR/bundled_plugins.rs`:
//!
//! ```ignore
//! pub const BUNDLED: &[(&str, &[u8])] = &[("webhook", include_bytes!("…/webhook.wasm")), …];
//! ```
//!
//! so that the `rescind` binary carries them for `rescind serve --demo`. The
//! building (`wasm_build.rs`) is shared with the test artifacts.
//!
//! It also writes `$OUT_DIR/guest_sdk_files.rs`: the guest SDK's sources and
//! the WIT package, which `rescind plugin new` copies into a new plugin crate
//! so that the crate builds anywhere, with a manifest that names every
//! dependency itself instead of inheriting from this workspace.

mod wasm_build;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use wasm_build::BuildError;

fn main() {
    let root = wasm_build::workspace_root();
    wasm_build::watch(&root, &[wasm_build::PLUGINS]);
    // sqlx's `migrate!` embeds the store's migrations when this crate
    // compiles, and tells cargo of the files it found, not of the folder: a
    // migration added alone must compile the crate again.
    println!("cargo:rerun-if-changed=migrations");
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

    let sdk = guest_sdk_files(&root).unwrap_or_else(|error| wasm_build::fail(error));
    let path = out_dir.join("guest_sdk_files.rs");
    std::fs::write(&path, sdk)
        .unwrap_or_else(|error| wasm_build::fail(BuildError::Io { path, error }));
}

/// The code of `guest_sdk_files.rs`: `SDK_FILES`, every file of `guest-sdk/`
/// and `wit/` by its path relative to the workspace root, and
/// `VENDORED_SDK_VERSION`.
fn guest_sdk_files(root: &Path) -> Result<String, BuildError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error| BuildError::Io { path, error }
    };
    let mut files = Vec::new();
    for folder in ["guest-sdk", "wit"] {
        collect_files(&root.join(folder), &mut files)?;
    }
    files.sort();
    let sdk_manifest_path = root.join("guest-sdk/Cargo.toml");
    let sdk_manifest =
        std::fs::read_to_string(&sdk_manifest_path).map_err(io(&sdk_manifest_path))?;
    let workspace_manifest_path = root.join("Cargo.toml");
    let workspace_manifest =
        std::fs::read_to_string(&workspace_manifest_path).map_err(io(&workspace_manifest_path))?;
    let (manifest, version) =
        standalone_manifest(&sdk_manifest, &workspace_manifest).map_err(|why| BuildError::Io {
            path: sdk_manifest_path.clone(),
            error: std::io::Error::other(why),
        })?;

    let mut code = String::from(
        "/// The guest SDK (`guest-sdk/`) and the WIT package (`wit/`) of the source\n\
         /// this binary was built from: each file's path and its text. The SDK's\n\
         /// manifest names its dependencies itself (no workspace inheritance).\n\
         pub const SDK_FILES: &[(&str, &str)] = &[\n",
    );
    for file in &files {
        let relative = file
            .strip_prefix(root)
            .expect("collected under the root")
            .to_str()
            .expect("source paths are UTF-8")
            .replace('\\', "/");
        if relative == "guest-sdk/Cargo.toml" {
            let _ = writeln!(code, "    ({relative:?}, {manifest:?}),");
        } else {
            let absolute = file.to_str().expect("source paths are UTF-8");
            let _ = writeln!(code, "    ({relative:?}, include_str!({absolute:?})),");
        }
    }
    code.push_str("];\n\n/// The version of the SDK in [`SDK_FILES`].\n");
    let _ = writeln!(code, "pub const VENDORED_SDK_VERSION: &str = {version:?};");
    let lock = root.join("Cargo.lock");
    let _ = writeln!(
        code,
        "\n/// The workspace's `Cargo.lock`: the dependency versions the SDK was\n\
         /// tested with, a new plugin crate's starting point (cargo drops what\n\
         /// the crate does not use).\n\
         pub const WORKSPACE_LOCK: &str = include_str!({:?});",
        lock.to_str().expect("source paths are UTF-8")
    );
    Ok(code)
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), BuildError> {
    let io = |error| BuildError::Io {
        path: dir.to_owned(),
        error,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// The SDK's manifest with every `x.workspace = true` replaced by the
/// workspace's value and the `[lints]` table (which only inherits) left out,
/// and the SDK's version.
fn standalone_manifest(sdk: &str, workspace: &str) -> Result<(String, String), String> {
    let table_entry = |table: &str, key: &str| -> Result<String, String> {
        let mut in_table = false;
        for line in workspace.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('[') {
                in_table = trimmed == format!("[{table}]");
                continue;
            }
            if in_table
                && let Some((found, value)) = trimmed.split_once('=')
                && found.trim() == key
            {
                return Ok(value.trim().to_owned());
            }
        }
        Err(format!("the workspace's [{table}] has no `{key}`"))
    };
    let mut out = String::from(
        "# rescind's guest SDK, copied by `rescind plugin new`. To upgrade, replace\n\
         # vendor/rescind with the copy of a newer rescind (see the README).\n",
    );
    let mut table = String::new();
    let mut version = None;
    for line in sdk.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            table = trimmed.to_owned();
        }
        if table == "[lints]" {
            continue;
        }
        match trimmed.strip_suffix(".workspace = true") {
            Some(key) => {
                let source = if table == "[package]" {
                    "workspace.package"
                } else {
                    "workspace.dependencies"
                };
                let value = table_entry(source, key)?;
                if key == "version" && table == "[package]" {
                    version = Some(value.trim_matches('"').to_owned());
                }
                let _ = writeln!(out, "{key} = {value}");
            }
            None if trimmed.contains("workspace") => {
                return Err(format!(
                    "cannot make `{trimmed}` standalone: write it as `name.workspace = true`"
                ));
            }
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    let version = version.ok_or("the SDK's manifest has no `version.workspace = true`")?;
    Ok((out, version))
}
