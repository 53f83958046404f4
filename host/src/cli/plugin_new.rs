//! `rescind plugin new NAME`: writes a plugin crate that builds as a
//! component, passes its own tests with plain `cargo test`, and can be
//! tried with `rescind plugin test` and uploaded with `rescind plugin push`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

/// Options of `rescind plugin new`.
#[derive(Debug, Clone, Args)]
pub struct NewArgs {
    /// The plugin's name, also its crate's (`my-erp`): lower-case ASCII
    /// letters, digits and `-`, starting with a letter.
    pub name: String,
    /// The folder to create the crate in (`<dir>/<name>`).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The rescind-guest SDK crate to depend on (a checkout's `guest-sdk`).
    /// Default: the SDK of the source tree this `rescind` was built from.
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// The SDK of the source tree this binary was built from.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// Creates the crate; answers its folder.
pub fn new_plugin(args: &NewArgs) -> anyhow::Result<PathBuf> {
    let name = args.name.as_str();
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        bail!(
            "{name:?} cannot name a plugin crate: use lower-case ASCII letters, digits and `-`, \
             starting with a letter (at most 64)"
        );
    }
    let sdk = args
        .sdk
        .clone()
        .unwrap_or_else(|| PathBuf::from(BUILT_FROM_SDK));
    let sdk = sdk
        .canonicalize()
        .ok()
        .filter(|p| p.join("Cargo.toml").is_file())
        .with_context(|| {
            format!(
                "the rescind-guest SDK is not at {}: pass --sdk <path to rescind's guest-sdk>",
                sdk.display()
            )
        })?;
    let root = args.dir.join(name);
    if root.exists() {
        bail!(
            "{} already exists: choose another name or folder",
            root.display()
        );
    }
    let lib = name.replace('-', "_");
    let files = [
        ("Cargo.toml", cargo_toml(name, &sdk)),
        ("src/lib.rs", LIB_RS.to_owned()),
        (
            "README.md",
            README_MD.replace("{name}", name).replace("{lib}", &lib),
        ),
        (".gitignore", "/target\n".to_owned()),
    ];
    for (file, text) in files {
        write(&root.join(file), &text)?;
    }
    Ok(root)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
description = "rescind integration processor for …"
publish = false

[lib]
# cdylib: the component the host loads; rlib: so that `cargo test` runs the
# tests natively against rescind_guest::testing.
crate-type = ["cdylib", "rlib"]

[dependencies]
rescind-guest = {{ path = {sdk:?} }}
serde_json = "1"

# Small components: `cargo build --target wasm32-wasip2 --profile plugin`.
[profile.plugin]
inherits = "release"
opt-level = "s"
lto = true
codegen-units = 1
strip = true
panic = "abort"

# A crate of its own, even when created inside another workspace.
[workspace]
"#,
        sdk = sdk.display().to_string()
    )
}

const LIB_RS: &str = r#"//! An integration processor: tells the ERP that an order (or some of its
//! lines) was cancelled.
//!
//! Connection settings: `path` (default `/cancellations`). Secrets:
//! `apiToken` (sent as a bearer token).

use rescind_guest::http::Request;
use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError, config, log};

/// The processor.
pub struct Processor;

impl IntegrationProcessor for Processor {
    fn submit_cancellation(cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        let token = config::required_secret("apiToken")?;
        let path = config::setting_or("path", "/cancellations");
        log::info!(
            "cancelling order {} (attempt {})",
            cancellation.order_number,
            cancellation.attempt
        );
        let lines: Vec<_> = cancellation
            .lines
            .iter()
            .map(|l| serde_json::json!({"lineNumber": l.line_number, "sku": l.sku, "quantity": l.quantity}))
            .collect();
        let answer = Request::post(config::url(&path))
            .bearer_auth(&token)
            // The same on every attempt: the ERP can drop duplicates.
            .header("Idempotency-Key", &cancellation.request_id)
            .json(&serde_json::json!({
                "orderNumber": cancellation.order_number,
                "erpOrderNumber": cancellation.erp_order_number,
                "full": cancellation.full,
                "reason": cancellation.reason.code(),
                "lines": lines,
            }))?
            .send()?
            // 408/429/5xx: transient (retried); other 4xx: rejected.
            .error_for_status()?;
        let reference = answer.json::<serde_json::Value>()?["id"]
            .as_str()
            .map(str::to_owned);
        Ok(match reference {
            Some(reference) => Ack::with_reference(reference),
            None => Ack::new(),
        })
    }
}

rescind_guest::register_integration_processor!(Processor);

#[cfg(test)]
mod tests {
    use rescind_guest::http::Response;
    use rescind_guest::testing::{Connection, sample_cancellation};

    use super::Processor;

    fn erp() -> Connection {
        Connection::new("https://erp.example.com/api").secret("apiToken", "t0k")
    }

    #[test]
    fn posts_the_cancellation_and_keeps_the_erp_reference() {
        let erp = erp().respond_with(Response::new(201).with_json(&serde_json::json!({"id": "E-7"})));
        let ack = erp.submit::<Processor>(&sample_cancellation()).unwrap();
        assert_eq!(ack.erp_reference.as_deref(), Some("E-7"));
        let sent = &erp.requests()[0];
        assert_eq!(sent.url, "https://erp.example.com/api/cancellations");
        assert_eq!(sent.header("authorization"), Some("Bearer t0k"));
        let body: serde_json::Value = sent.json().unwrap();
        assert_eq!(body["orderNumber"], sample_cancellation().order_number);
    }

    #[test]
    fn a_busy_erp_is_a_passing_failure_and_a_refusal_is_final() {
        let busy = erp().respond_with(Response::new(503));
        assert!(busy.submit::<Processor>(&sample_cancellation()).unwrap_err().is_transient());
        let refused = erp().respond_with(
            Response::new(422).with_json(&serde_json::json!({"message": "already shipped"})),
        );
        let error = refused.submit::<Processor>(&sample_cancellation()).unwrap_err();
        assert!(!error.is_transient());
        assert!(error.message().contains("already shipped"));
    }

    #[test]
    fn a_missing_token_names_the_secret() {
        let erp = Connection::new("https://erp.example.com/api");
        let error = erp.submit::<Processor>(&sample_cancellation()).unwrap_err();
        assert!(error.message().contains("apiToken"));
    }
}
"#;

const README_MD: &str = r#"# {name}

A rescind integration processor.

```sh
cargo test                                                   # its tests, natively
rustup target add wasm32-wasip2
cargo build --target wasm32-wasip2 --profile plugin          # the component
rescind plugin test target/wasm32-wasip2/plugin/{lib}.wasm \
  --secret apiToken=t0k --erp-status 201 --erp-body '{"id":"E-1"}'
rescind plugin push {name} target/wasm32-wasip2/plugin/{lib}.wasm \
  --host http://127.0.0.1:8080 --token "$TOKEN"
```

Then bind a job definition to it: `"integrationProcessor": "{name}"`.
"#;
