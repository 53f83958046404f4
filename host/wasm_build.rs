//! Builds rescind's guest crates (`plugins/*`, `tests/guests/*`) into
//! `wasm32-wasip2` components with a nested `cargo build`, the way wasmtime's
//! test-programs are built. The product's build script (`host/build.rs`)
//! uses it for the bundled example plugins; the test artifacts' build script
//! (`tests/artifacts/build.rs`) includes it (through `#[path]`) for the test
//! guests too, so both produce the same components in the same place.
//!
//! The nested build uses its own target directory, `<target>/wasm-components`,
//! beside the outer one: the outer cargo holds the lock on its own directory
//! while build scripts run, and a different profile and target would
//! otherwise churn the outer build's artifacts.

// Each includer uses a different subset of these items.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The compilation target of every component.
pub const TARGET: &str = "wasm32-wasip2";

/// The cargo profile components are built with (small: `opt-level = "s"`,
/// LTO, stripped; see the workspace `Cargo.toml`).
pub const PROFILE: &str = "plugin";

/// A folder of guest crates whose package names share a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The folder, relative to the workspace root.
    pub dir: &'static str,
    /// The package name is this prefix plus the crate's folder name.
    pub package_prefix: &'static str,
    /// What one member is, for doc comments: "plugin", "test guest".
    pub noun: &'static str,
}

/// The example plugins shipped with rescind.
pub const PLUGINS: Family = Family {
    dir: "plugins",
    package_prefix: "rescind-plugin-",
    noun: "plugin",
};

/// The fault-injection guests of the host's tests.
pub const TEST_GUESTS: Family = Family {
    dir: "tests/guests",
    package_prefix: "rescind-guest-",
    noun: "test guest",
};

/// A guest crate found on disk.
#[derive(Debug, Clone)]
pub struct GuestCrate {
    /// The crate's folder name, which names the component (`webhook`).
    pub name: String,
    /// Its package name (`rescind-plugin-webhook`).
    pub package: String,
    /// Its `description` from `Cargo.toml`, if any.
    pub description: Option<String>,
    /// Where it was found.
    pub family: Family,
}

/// A built component.
#[derive(Debug, Clone)]
pub struct Component {
    /// The crate that was built.
    pub source: GuestCrate,
    /// The absolute path of the `.wasm` component.
    pub path: PathBuf,
}

/// Why components could not be built; the message says what to do.
#[derive(Debug)]
pub enum BuildError {
    /// The `wasm32-wasip2` standard library is not installed.
    TargetMissing,
    /// A guest crate's folder does not hold the package its name implies.
    UnexpectedPackage { manifest: PathBuf, expected: String },
    /// The nested cargo failed (its output is above this message).
    CargoFailed { command: String },
    /// The nested cargo succeeded but a component is not where expected.
    ComponentMissing { path: PathBuf },
    /// Reading the workspace failed.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::TargetMissing => write!(
                f,
                "the {TARGET} target is not installed, so the plugins cannot be built: \
                 run `rustup target add {TARGET}`"
            ),
            BuildError::UnexpectedPackage { manifest, expected } => write!(
                f,
                "{} must declare `name = \"{expected}\"`: a guest crate's package is named \
                 after its folder",
                manifest.display()
            ),
            BuildError::CargoFailed { command } => write!(
                f,
                "building the wasm components failed (see the compiler output above); \
                 the command was: {command}"
            ),
            BuildError::ComponentMissing { path } => write!(
                f,
                "the nested cargo build succeeded but {} is missing: is the crate's \
                 crate-type [\"cdylib\", \"rlib\"]?",
                path.display()
            ),
            BuildError::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

/// Prints the error the way cargo shows a build script's failure, and stops.
pub fn fail(error: BuildError) -> ! {
    eprintln!("error: {error}");
    std::process::exit(1)
}

/// The workspace root: the nearest ancestor of the including crate whose
/// `Cargo.toml` has a `[workspace]` table.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    manifest_dir
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.lines().any(|line| line.trim() == "[workspace]"))
        })
        .unwrap_or(&manifest_dir)
        .to_path_buf()
}

/// Tells cargo to run the build script again when anything the components
/// of `families` are built from changes.
pub fn watch(root: &Path, families: &[Family]) {
    let shared = ["guest-sdk", "wit", "Cargo.toml", "Cargo.lock"];
    let inputs = families.iter().map(|family| family.dir).chain(shared);
    for input in inputs {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS");
}

/// The guest crates of `family`, sorted by name.
pub fn discover(root: &Path, family: Family) -> Result<Vec<GuestCrate>, BuildError> {
    let dir = root.join(family.dir);
    let io = |error| BuildError::Io {
        path: dir.clone(),
        error,
    };
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let manifest_path = path.join("Cargo.toml");
        if !manifest_path.is_file() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("crate folders have UTF-8 names")
            .to_owned();
        let manifest = std::fs::read_to_string(&manifest_path).map_err(|error| BuildError::Io {
            path: manifest_path.clone(),
            error,
        })?;
        let package = format!("{}{name}", family.package_prefix);
        if manifest_value(&manifest, "name").as_deref() != Some(package.as_str()) {
            return Err(BuildError::UnexpectedPackage {
                manifest: manifest_path,
                expected: package,
            });
        }
        crates.push(GuestCrate {
            name,
            package,
            description: manifest_value(&manifest, "description"),
            family,
        });
    }
    crates.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(crates)
}

/// Builds `crates` in one nested cargo invocation and returns their
/// components, in the same order.
pub fn build(root: &Path, crates: &[GuestCrate]) -> Result<Vec<Component>, BuildError> {
    if crates.is_empty() {
        return Ok(Vec::new());
    }
    check_target()?;
    let target_dir = components_dir();
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(root)
        .arg("build")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target")
        .arg(TARGET)
        .arg("--profile")
        .arg(PROFILE)
        .arg("--target-dir")
        .arg(&target_dir);
    for guest in crates {
        cargo.arg("-p").arg(&guest.package);
    }
    for name in leaking_env_vars() {
        cargo.env_remove(name);
    }
    // A build script's stdout is cargo directives: keep the nested cargo's
    // chatter on stderr, where cargo shows it when the build fails.
    cargo.stdout(Stdio::from(std::io::stderr()));
    let command = format!("{cargo:?}");
    let status = cargo.status().map_err(|error| BuildError::Io {
        path: PathBuf::from("cargo"),
        error,
    })?;
    if !status.success() {
        return Err(BuildError::CargoFailed { command });
    }
    crates
        .iter()
        .map(|guest| {
            let path = target_dir
                .join(TARGET)
                .join(PROFILE)
                .join(format!("{}.wasm", guest.package.replace('-', "_")));
            if path.is_file() {
                Ok(Component {
                    source: guest.clone(),
                    path,
                })
            } else {
                Err(BuildError::ComponentMissing { path })
            }
        })
        .collect()
}

/// `<outer target dir>/wasm-components`. The outer target directory is the
/// nearest ancestor of `OUT_DIR` holding cargo's `CACHEDIR.TAG`, whichever
/// `--target-dir` or `CARGO_TARGET_DIR` chose it.
pub fn components_dir() -> PathBuf {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let target_dir = out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .unwrap_or(&out_dir);
    target_dir.join("wasm-components")
}

/// `webhook` → `WEBHOOK`, `alloc-bomb` → `ALLOC_BOMB`.
pub fn const_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Environment a build script gets from the outer cargo that must not steer
/// the nested one: flags meant for the host target (or for clippy), the outer
/// target choice, and the per-package variables cargo sets for this build
/// script, which would leak into the nested build scripts.
fn leaking_env_vars() -> Vec<OsString> {
    const EXACT: &[&str] = &[
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CARGO_PRIMARY_PACKAGE",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "OPT_LEVEL",
        "PROFILE",
        "DEBUG",
        "NUM_JOBS",
        "RUSTC_LINKER",
    ];
    const PREFIXES: &[&str] = &[
        "CARGO_CFG_",
        "CARGO_FEATURE_",
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
    ];
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| {
            let name = name.to_string_lossy();
            EXACT.contains(&name.as_ref()) || PREFIXES.iter().any(|p| name.starts_with(p))
        })
        .collect()
}

fn check_target() -> Result<(), BuildError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|error| BuildError::Io {
            path: PathBuf::from("rustc"),
            error,
        })?;
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    // rustc prints the directory whether or not the target is installed.
    let installed = output.status.success()
        && std::fs::read_dir(&libdir).is_ok_and(|mut entries| {
            entries.any(|entry| {
                entry.is_ok_and(|entry| entry.file_name().to_string_lossy().starts_with("libstd-"))
            })
        });
    if installed {
        Ok(())
    } else {
        Err(BuildError::TargetMissing)
    }
}

/// The string value of the first `key = "..."` line of a manifest: enough
/// for the `name` and `description` of the `[package]` table, which comes
/// first in our crates.
fn manifest_value(manifest: &str, key: &str) -> Option<String> {
    manifest.lines().find_map(|line| {
        let (found, value) = line.split_once('=')?;
        if found.trim() != key {
            return None;
        }
        let value = value.trim();
        Some(value.strip_prefix('"')?.strip_suffix('"')?.to_owned())
    })
}
