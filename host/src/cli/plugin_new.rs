//! `rescind plugin new NAME`: writes a plugin crate that builds as a
//! component, passes its own tests with plain `cargo test`, and can be
//! tried with `rescind plugin test` and uploaded with `rescind plugin push`.
//!
//! The crate builds on any machine and in CI: it carries a copy of the guest
//! SDK and the WIT package (`vendor/rescind/`, from this binary), or, with
//! `--sdk`, depends on a checkout's `guest-sdk` by a path relative to the
//! crate. Never by an absolute path, which would only hold on the machine
//! that ran the command.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

mod vendored {
    include!(concat!(env!("OUT_DIR"), "/guest_sdk_files.rs"));
}

pub use vendored::VENDORED_SDK_VERSION;

/// Where in a new crate the SDK copy goes.
pub const VENDOR_DIR: &str = "vendor/rescind";

/// Options of `rescind plugin new`.
#[derive(Debug, Clone, Args)]
pub struct NewArgs {
    /// The plugin's name, also its crate's (`my-erp`): lower-case ASCII
    /// letters, digits and `-`, starting with a letter.
    pub name: String,
    /// The folder to create the crate in (`<dir>/<name>`).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Depend on this rescind-guest SDK folder (a rescind checkout's
    /// `guest-sdk`) by a path relative to the new crate, instead of a copy
    /// of the SDK in `vendor/rescind/`.
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

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
    let root = args.dir.join(name);
    if root.exists() {
        bail!(
            "{} already exists: choose another name or folder",
            root.display()
        );
    }
    let sdk_dependency = match &args.sdk {
        Some(sdk) => {
            let sdk = sdk
                .canonicalize()
                .ok()
                .filter(|p| p.join("Cargo.toml").is_file())
                .with_context(|| {
                    format!(
                        "{} is not the rescind-guest SDK (a folder with its Cargo.toml): pass \
                         rescind's guest-sdk folder, or leave --sdk out to vendor a copy",
                        sdk.display()
                    )
                })?;
            let dir = absolute(&args.dir)?;
            let relative = relative_path(&dir.join(name), &sdk).with_context(|| {
                format!(
                    "no relative path leads from {} to {}: leave --sdk out to vendor a copy",
                    dir.display(),
                    sdk.display()
                )
            })?;
            relative
                .to_str()
                .map(|p| p.replace('\\', "/"))
                .with_context(|| format!("{} is not UTF-8", relative.display()))?
        }
        None => format!("{VENDOR_DIR}/guest-sdk"),
    };
    let lib = name.replace('-', "_");
    let vendored = args.sdk.is_none();
    let readme = README_MD
        .replace(
            "{sdk_source}",
            if vendored {
                SDK_SOURCE_VENDORED
            } else {
                SDK_SOURCE_PATH
            },
        )
        .replace("{name}", name)
        .replace("{lib}", &lib)
        .replace("{sdk_version}", VENDORED_SDK_VERSION)
        .replace("{sdk_path}", &sdk_dependency);
    let mut files = vec![
        ("Cargo.toml".to_owned(), cargo_toml(name, &sdk_dependency)),
        ("src/lib.rs".to_owned(), LIB_RS.to_owned()),
        ("README.md".to_owned(), readme),
        (
            "scripts/login-cancel.json".to_owned(),
            LOGIN_CANCEL_SCRIPT.to_owned(),
        ),
        (".gitignore".to_owned(), "/target\n".to_owned()),
    ];
    if vendored {
        // The versions the vendored SDK was tested with; cargo trims it to
        // what the crate uses on its first build.
        files.push(("Cargo.lock".to_owned(), vendored::WORKSPACE_LOCK.to_owned()));
        files.extend(
            vendored::SDK_FILES
                .iter()
                .map(|(path, text)| (format!("{VENDOR_DIR}/{path}"), (*text).to_owned())),
        );
    }
    for (file, text) in files {
        write(&root.join(file), &text)?;
    }
    Ok(root)
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    path.canonicalize()
        .with_context(|| format!("resolving {}", path.display()))
}

/// The path that leads from the folder `from` to `to`, both absolute
/// and free of `.` and `..`: `../../rescind/guest-sdk`. `None` when they
/// share no root (two Windows drives).
fn relative_path(from: &Path, to: &Path) -> Option<PathBuf> {
    let from: Vec<Component<'_>> = from.components().collect();
    let to: Vec<Component<'_>> = to.components().collect();
    if from.first() != to.first() {
        return None;
    }
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for component in &to[common..] {
        path.push(component.as_os_str());
    }
    if path.as_os_str().is_empty() {
        path.push(".");
    }
    Some(path)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn cargo_toml(name: &str, sdk: &str) -> String {
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
# rescind's guest SDK (not on crates.io); the README says how to pin it.
rescind-guest = {{ path = {sdk:?} }}
serde_json = "1"

# Small components: `cargo build --target wasm32-wasip2 --profile plugin`.
[profile.plugin]
inherits = "release"
opt-level = "s"
lto = true
codegen-units = 1
strip = "debuginfo"
panic = "abort"

# A crate of its own, even when created inside another workspace.
[workspace]
"#
    )
}

const LIB_RS: &str = r#"//! An integration processor: tells the ERP that an order (or some of its
//! lines) was cancelled.
//!
//! Connection settings: `path` (default `/cancellations`); `loginPath` when
//! the ERP wants a session login first. Secrets: `apiToken` (sent as a
//! bearer token), or with `loginPath`, `username` and `password`.

use rescind_guest::http::{CookieJar, Request};
use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError, config, log};

/// The processor.
pub struct Processor;

impl IntegrationProcessor for Processor {
    fn submit_cancellation(cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        let path = config::setting_or("path", "/cancellations");
        log::info!(
            "cancelling order {} (attempt {})",
            cancellation.order_number,
            cancellation.attempt
        );
        // Keeps the cookies of a login for the requests after it.
        let mut session = CookieJar::new();
        let mut request = Request::post(config::url(&path));
        match config::setting("loginPath") {
            Some(login_path) => log_in(&mut session, &login_path)?,
            None => request = request.bearer_auth(&config::required_secret("apiToken")?),
        }
        let lines: Vec<_> = cancellation
            .lines
            .iter()
            .map(|l| serde_json::json!({"lineNumber": l.line_number, "sku": l.sku, "quantity": l.quantity}))
            .collect();
        let request = request
            // The same on every attempt: the ERP can drop duplicates.
            .header("Idempotency-Key", &cancellation.request_id)
            .json(&serde_json::json!({
                "orderNumber": cancellation.order_number,
                "erpOrderNumber": cancellation.erp_order_number,
                "full": cancellation.full,
                "reason": cancellation.reason.code(),
                "lines": lines,
            }))?;
        let answer = session
            .send(request)?
            // 408/429/5xx: transient (retried); other 4xx: rejected, quoting
            // the ERP's own error text.
            .error_for_status()?;
        // The ERP's reference, when its answer has one: `{"id": "…"}`.
        let reference = answer
            .json::<serde_json::Value>()
            .ok()
            .and_then(|body| body["id"].as_str().map(str::to_owned));
        Ok(match reference {
            Some(reference) => Ack::with_reference(reference),
            None => Ack::new(),
        })
    }
}

/// Logs in with the connection's `username` and `password` secrets; the
/// answer's session cookie goes with the later requests of `session`.
fn log_in(session: &mut CookieJar, login_path: &str) -> Result<(), SubmitError> {
    let username = config::required_secret("username")?;
    let password = config::required_secret("password")?;
    let login = Request::post(config::url(login_path)).json(&serde_json::json!({
        "username": username,
        "password": password,
    }))?;
    session.send(login)?.error_for_status()?;
    Ok(())
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
    fn logs_in_first_and_sends_the_session_cookie() {
        let erp = Connection::new("https://erp.example.com/api")
            .setting("loginPath", "/login")
            .secret("username", "rescind")
            .secret("password", "s3cret")
            .respond(|request| {
                Ok(match (request.path(), request.header("cookie")) {
                    ("/api/login", _) => Response::new(200).with_header("Set-Cookie", "SID=abc; Path=/api; HttpOnly"),
                    ("/api/cancellations", Some("SID=abc")) => Response::new(204),
                    _ => Response::new(401),
                })
            });
        let ack = erp.submit::<Processor>(&sample_cancellation()).unwrap();
        assert_eq!(ack.erp_reference, None);
        let sent = erp.requests();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].json::<serde_json::Value>().unwrap()["username"], "rescind");
        assert_eq!(sent[1].header("authorization"), None);
    }

    #[test]
    fn a_busy_erp_is_a_passing_failure_and_a_refusal_is_final() {
        let busy = erp().respond_with(Response::new(503));
        assert!(busy.submit::<Processor>(&sample_cancellation()).unwrap_err().is_transient());
        // An OData error document: the message quotes its text only.
        let refused = erp().respond_with(Response::new(422).with_json(&serde_json::json!(
            {"error": {"code": "SO/12", "message": {"lang": "en", "value": "already shipped"}}}
        )));
        let error = refused.submit::<Processor>(&sample_cancellation()).unwrap_err();
        assert!(!error.is_transient());
        assert_eq!(error.message(), "the ERP answered 422 Unprocessable Content: already shipped");
    }

    #[test]
    fn a_missing_token_names_the_secret() {
        let erp = Connection::new("https://erp.example.com/api");
        let error = erp.submit::<Processor>(&sample_cancellation()).unwrap_err();
        assert!(error.message().contains("apiToken"));
        assert!(erp.requests().is_empty());
    }
}
"#;

/// A script for `rescind plugin test --script`: the login, then the
/// cancellation, as `lib.rs` makes them.
const LOGIN_CANCEL_SCRIPT: &str = r#"{
  "steps": [
    {
      "request": {"method": "POST", "path": "/login"},
      "status": 200,
      "headers": {"Set-Cookie": ["SID=s3ss10n; Path=/; HttpOnly"]},
      "body": {"user": "rescind"}
    },
    {
      "request": {"method": "POST", "path": "/cancellations", "headers": {"cookie": "SID=s3ss10n"}},
      "status": 201,
      "body": {"id": "ERP-CANCEL-1"}
    }
  ]
}
"#;

const SDK_SOURCE_VENDORED: &str = "\
The guest SDK (rescind-guest {sdk_version}) and its WIT package are copied in
`vendor/rescind/`, so that this crate builds on any machine and in CI without
a rescind checkout, and `Cargo.lock` starts from the dependency versions the
SDK was tested with. **Commit both**: they are the team's pin of the SDK.
The SDK version is stamped into the component, and the host refuses one
built for a WIT version it does not serve.

To move to another SDK version, replace the folder with the copy a newer
`rescind` writes (`rescind plugin new {name} --dir ../fresh`, then copy
`../fresh/{name}/vendor/rescind` over `vendor/rescind`), run the tests and
commit. A team that can reach rescind's repository can instead depend on it
by git, pinned to a tag or commit, and delete `vendor/`:

```toml
rescind-guest = { git = \"<rescind repository URL>\", tag = \"<release tag>\" }
```";

const SDK_SOURCE_PATH: &str = "\
The guest SDK is rescind's `guest-sdk` folder, by a path relative to this
crate (`{sdk_path}`): keep the rescind checkout at that place beside it (a
git submodule pins it for the team, at the commit it records), or move to
a copy of the SDK inside this crate with `rescind plugin new` (without
`--sdk`), which builds anywhere.";

const README_MD: &str = r#"# {name}

A rescind integration processor: it tells the ERP about a cancellation with
one `POST` (JSON, bearer token or a session login first).

```sh
cargo test                                                   # its tests, natively
rustup target add wasm32-wasip2                              # once
cargo build --target wasm32-wasip2 --profile plugin          # the component
rescind plugin test target/wasm32-wasip2/plugin/{lib}.wasm \
  --secret apiToken=t0k --erp-status 201 --erp-body '{"id":"E-1"}'
rescind plugin push {name} target/wasm32-wasip2/plugin/{lib}.wasm \
  --host http://127.0.0.1:8080 --token "$TOKEN"
```

Then bind a job definition to it: `"integrationProcessor": "{name}"`.

## Trying it against a scripted ERP

`scripts/login-cancel.json` plays an ERP that wants a login first: it answers
the login with a session cookie and the cancellation with a reference, and
checks that the cookie came back:

```sh
rescind plugin test target/wasm32-wasip2/plugin/{lib}.wasm \
  --script scripts/login-cancel.json --setting loginPath=/login \
  --secret username=rescind --secret password=s3cret --expect accepted
```

`--cancellation FILE` submits a cancellation of your own (start from
`rescind plugin test --print-sample > cancellation.json`); `--expect
rejected|transient|misconfigured` makes the exit status 0 for that outcome,
for CI. The plugin guide of rescind (`docs/plugin-guide.md`) has the whole
path, every option and every error.

## The SDK

{sdk_source}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_table() {
        for (from, to, expected) in [
            (
                "/src/plugins/acme",
                "/src/rescind/guest-sdk",
                Some("../../rescind/guest-sdk"),
            ),
            ("/src/acme", "/src/acme/vendor/sdk", Some("vendor/sdk")),
            ("/a/b/c", "/a/b/c", Some(".")),
            (
                "/var/x/acme",
                "/home/me/rescind/guest-sdk",
                Some("../../../home/me/rescind/guest-sdk"),
            ),
        ] {
            assert_eq!(
                relative_path(Path::new(from), Path::new(to)),
                expected.map(PathBuf::from),
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn the_vendored_sdk_is_complete_and_standalone() {
        let paths: Vec<&str> = vendored::SDK_FILES.iter().map(|(path, _)| *path).collect();
        for needed in [
            "guest-sdk/Cargo.toml",
            "guest-sdk/README.md",
            "guest-sdk/src/lib.rs",
            "guest-sdk/src/http/cookie.rs",
            "wit/v0.1.0/rescind-erp.wit",
        ] {
            assert!(paths.contains(&needed), "{needed} in {paths:?}");
        }
        let manifest = vendored::SDK_FILES
            .iter()
            .find(|(path, _)| *path == "guest-sdk/Cargo.toml")
            .unwrap()
            .1;
        assert!(!manifest.contains("workspace"), "{manifest}");
        assert!(manifest.contains("name = \"rescind-guest\""), "{manifest}");
        assert!(
            manifest.contains("wit-bindgen = { version = \"0.57.1\""),
            "{manifest}"
        );
        assert_eq!(VENDORED_SDK_VERSION, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn a_new_crate_names_no_absolute_path() {
        let dir = tempfile::tempdir().unwrap();
        let vendored = new_plugin(&NewArgs {
            name: "acme-erp".into(),
            dir: dir.path().to_owned(),
            sdk: None,
        })
        .unwrap();
        let sdk_checkout = dir.path().join("checkout/guest-sdk");
        std::fs::create_dir_all(&sdk_checkout).unwrap();
        std::fs::write(sdk_checkout.join("Cargo.toml"), "[package]\n").unwrap();
        let by_path = new_plugin(&NewArgs {
            name: "beta-erp".into(),
            dir: dir.path().join("plugins"),
            sdk: Some(sdk_checkout),
        })
        .unwrap();
        let tmp = dir.path().canonicalize().unwrap();
        for root in [&vendored, &by_path] {
            for file in ["Cargo.toml", "README.md", "src/lib.rs"] {
                let text = std::fs::read_to_string(root.join(file)).unwrap();
                assert!(!text.contains(tmp.to_str().unwrap()), "{file}: {text}");
                assert!(!text.contains(dir.path().to_str().unwrap()), "{file}");
            }
        }
        let manifest = |root: &Path| std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(
            manifest(&vendored)
                .contains(r#"rescind-guest = { path = "vendor/rescind/guest-sdk" }"#)
        );
        assert!(
            vendored
                .join("vendor/rescind/guest-sdk/src/lib.rs")
                .is_file()
        );
        assert!(
            vendored
                .join("vendor/rescind/wit/v0.1.0/rescind-erp.wit")
                .is_file()
        );
        assert!(
            manifest(&by_path).contains(r#"rescind-guest = { path = "../../checkout/guest-sdk" }"#)
        );
        assert!(!by_path.join("vendor").exists());
        let readme = std::fs::read_to_string(vendored.join("README.md")).unwrap();
        assert!(readme.contains("**Commit both**"), "{readme}");
        let lock = std::fs::read_to_string(vendored.join("Cargo.lock")).unwrap();
        assert!(lock.contains("name = \"wit-bindgen\""), "{lock}");
        assert!(!by_path.join("Cargo.lock").exists());
        for placeholder in ["{name}", "{lib}", "{sdk_"] {
            assert!(!readme.contains(placeholder), "{readme}");
        }
        assert!(
            readme.contains(&format!("rescind-guest {VENDORED_SDK_VERSION}")),
            "{readme}"
        );
        let script = std::fs::read_to_string(vendored.join("scripts/login-cancel.json")).unwrap();
        crate::cli::plugin::Script::parse(&script).unwrap();
    }
}
