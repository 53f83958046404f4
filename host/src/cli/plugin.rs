//! `rescind plugin push`: uploads a plugin component to a running host
//! (`PUT /v1/admin/plugins/{name}`), showing the upload's progress, and
//! says plainly what the host answered. `rescind plugin test`: runs one
//! locally against a mock ERP. `rescind plugin new`: scaffolds a crate.
//! `rescind plugin keygen` and `rescind plugin sign`: a signing key, and
//! the signature a host that trusts it requires (`NAME.wasm.sig`, which
//! `push` sends).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use futures_util::StreamExt;

pub use super::plugin_new::{NewArgs, new_plugin};
pub use super::plugin_shadow::{ShadowArgs, render_shadow, shadow};
use super::plugin_test::test_plugin as run_test;
pub use super::plugin_test::{
    Expect, MAX_ANSWER_DELAY, MAX_INPUT_FILE_BYTES, MAX_SCRIPT_ANSWERS, ReceivedRequest,
    ReplayReport, RequestPattern, Script, ScriptMode, ScriptedAnswer, ScriptedErp, TestArgs,
    TestReport, parse_cancellation, replay, sample_json,
};
use super::{Exit, report_error};
use crate::api::SIGNATURE_HEADER;
use crate::plugins::registry::PluginSigningKey;
pub use crate::plugins::sample_cancellation;
use sha2::Digest as _;

/// Runs a component once against a cancellation and a mock ERP; see
/// [`TestArgs`].
pub async fn test_plugin(args: &TestArgs) -> anyhow::Result<TestReport> {
    run_test(args).await
}

/// `rescind plugin …`.
#[derive(Debug, Args)]
pub struct PluginArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// The plugin subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Upload a component (`.wasm`) to a running host and activate it.
    Push(PushArgs),
    /// Run a component once against a sample cancellation and a mock ERP
    /// on loopback, in the sandbox job attempts get; print what the ERP
    /// received, the plugin's log and the outcome.
    Test(TestArgs),
    /// Create a plugin crate: an integration processor with its tests,
    /// ready to build, try and push.
    New(NewArgs),
    /// Sign a component for a plugin name: writes the detached signature
    /// over `rescind-plugin-v1\nNAME\nSHA256` (base64) to `FILE.sig`, which
    /// `plugin push` sends.
    Sign(SignArgs),
    /// Run a stored, inactive version beside the active one on the plugin's
    /// next real jobs, in a capture-only sandbox (its requests are answered
    /// with the active version's recorded ERP answers and never sent), and
    /// report per job how its requests differ; or show or stop that run.
    Shadow(ShadowArgs),
    /// Create a plugin signing key: the private key goes to a new file
    /// (mode 0600), the public key to trust (`rescind serve --trusted-key`)
    /// is printed.
    Keygen(KeygenArgs),
}

/// Options of `rescind plugin sign`.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// The plugin's name, as it will be uploaded: the signature is valid
    /// for this name only.
    pub name: String,
    /// The component.
    pub file: PathBuf,
    /// The private key file (`rescind plugin keygen`): the 32-byte ed25519
    /// seed as 64 hex digits.
    #[arg(long, env = "RESCIND_PLUGIN_SIGNING_KEY")]
    pub key: PathBuf,
    /// Where to write the signature. Default: `FILE.sig`.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Options of `rescind plugin keygen`.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// The new private key file (never overwritten).
    #[arg(long)]
    pub out: PathBuf,
}

/// Options of `rescind plugin push`.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// The plugin's name: job definitions name it as their
    /// `integrationProcessor`.
    pub name: String,
    /// The component, e.g.
    /// `target/wasm32-wasip2/plugin/my_plugin.wasm`.
    pub file: PathBuf,
    /// The host's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "RESCIND_HOST")]
    pub host: String,
    /// An admin token.
    #[arg(long, env = "RESCIND_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The file's signature for this plugin name (`rescind plugin sign`;
    /// raw 64 bytes or base64), for a host that only runs signed plugins.
    /// Default: `FILE.sig` when it exists.
    #[arg(long)]
    pub signature: Option<PathBuf>,
    /// Store the version without activating it.
    #[arg(long)]
    pub no_activate: bool,
    /// Do not print progress.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What the host said about an accepted upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `sha256:…`.
    pub version: String,
    /// Whether it is now the active version.
    pub active: bool,
    /// Whether the host already had these bytes.
    pub already_stored: bool,
}

/// Runs a plugin subcommand; errors are printed, the answer is the exit
/// status. `plugin test` exits 0 on the expected outcome, 1 on another (or
/// on requests off the script), 2 when it could not run the plugin.
pub fn run(args: PluginArgs) -> Exit {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
    {
        Ok(runtime) => runtime,
        Err(error) => return report_error(&error, Exit::FAILURE),
    };
    match args.command {
        PluginCommand::Push(push_args) => match runtime.block_on(push(&push_args)) {
            Ok(pushed) => {
                let state = if pushed.active {
                    "active"
                } else {
                    "stored, not active"
                };
                let stored = if pushed.already_stored {
                    " (the host already had these bytes)"
                } else {
                    ""
                };
                println!("{} {} {state}{stored}", push_args.name, pushed.version);
                Exit::SUCCESS
            }
            Err(error) => report_error(&error, Exit::FAILURE),
        },
        PluginCommand::New(new_args) => match new_plugin(&new_args) {
            Ok(root) => {
                let lib = new_args.name.replace('-', "_");
                println!(
                    "created {dir}\n\nnext:\n  cd {dir}\n  cargo test\n  \
                     cargo build --target wasm32-wasip2 --profile plugin\n  \
                     rescind plugin test target/wasm32-wasip2/plugin/{lib}.wasm --secret apiToken=t0k\n  \
                     rescind plugin test target/wasm32-wasip2/plugin/{lib}.wasm --script scripts/login-cancel.json \\\n      \
                     --setting loginPath=/login --secret username=u --secret password=p --expect accepted\n  \
                     rescind plugin push {name} target/wasm32-wasip2/plugin/{lib}.wasm --host http://127.0.0.1:8080 --token \"$TOKEN\"",
                    dir = root.display(),
                    name = new_args.name,
                );
                Exit::SUCCESS
            }
            Err(error) => report_error(&error, Exit::FAILURE),
        },
        PluginCommand::Sign(sign_args) => match sign(&sign_args) {
            Ok(signed) => {
                println!(
                    "signed {} ({}) with the key {}: {}",
                    sign_args.name,
                    signed.version,
                    signed.public_key,
                    signed.signature_file.display()
                );
                Exit::SUCCESS
            }
            Err(error) => report_error(&error, Exit::FAILURE),
        },
        PluginCommand::Shadow(shadow_args) => match runtime.block_on(shadow(&shadow_args)) {
            Ok(run) => {
                print!("{}", render_shadow(&run));
                Exit::SUCCESS
            }
            Err(error) => report_error(&error, Exit::FAILURE),
        },
        PluginCommand::Keygen(keygen_args) => match keygen(&keygen_args) {
            Ok(public_key) => {
                println!(
                    "wrote the private key to {} (keep it secret)\npublic key: {public_key}\n\
                     trust it with: rescind serve --trusted-key {public_key}",
                    keygen_args.out.display()
                );
                Exit::SUCCESS
            }
            Err(error) => report_error(&error, Exit::FAILURE),
        },
        PluginCommand::Test(test_args) => {
            if test_args.print_sample {
                println!("{}", sample_json());
                return Exit::SUCCESS;
            }
            if let Some(job) = &test_args.replay {
                return match runtime.block_on(replay(&test_args, job)) {
                    Ok(report) => {
                        print!("{}", report.render());
                        if report.identical() {
                            Exit::SUCCESS
                        } else {
                            Exit::FAILURE
                        }
                    }
                    Err(error) => report_error(&error, Exit::UNUSABLE),
                };
            }
            let report = match runtime.block_on(test_plugin(&test_args)) {
                Ok(report) => report,
                Err(error) => return report_error(&error, Exit::UNUSABLE),
            };
            print!("{}", report.render());
            match report.verdict(test_args.expect) {
                Ok(verdict) => {
                    println!("{verdict}");
                    Exit::SUCCESS
                }
                Err(verdict) => {
                    println!("{verdict}");
                    Exit::FAILURE
                }
            }
        }
    }
}

/// What `rescind plugin sign` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `sha256:…` of the component.
    pub version: String,
    /// The signing key's public half (base64).
    pub public_key: String,
    /// Where the signature is.
    pub signature_file: PathBuf,
}

/// Signs `args.file` as plugin `args.name` and writes the signature (base64)
/// to `args.out` or `FILE.sig`.
pub fn sign(args: &SignArgs) -> anyhow::Result<Signed> {
    crate::plugins::validate_plugin_name(&args.name)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("the plugin name")?;
    let key = PluginSigningKey::read(&args.key).map_err(|e| anyhow::anyhow!(e))?;
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let signature = key.sign(&args.name, &bytes);
    let out = args.out.clone().unwrap_or_else(|| {
        let mut beside = args.file.clone().into_os_string();
        beside.push(".sig");
        PathBuf::from(beside)
    });
    std::fs::write(&out, format!("{signature}\n"))
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(Signed {
        version: format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes))),
        public_key: key.public_key().id(),
        signature_file: out,
    })
}

/// Writes a new signing key to `args.out`; answers its public key (base64).
pub fn keygen(args: &KeygenArgs) -> anyhow::Result<String> {
    let key = PluginSigningKey::generate();
    key.write_new(&args.out)
        .with_context(|| format!("writing the new key to {}", args.out.display()))?;
    Ok(key.public_key().id())
}

/// Uploads `args.file` as plugin `args.name`. An error carries the host's
/// own explanation (the problem's `detail`).
pub async fn push(args: &PushArgs) -> anyhow::Result<Pushed> {
    let bytes = tokio::fs::read(&args.file)
        .await
        .with_context(|| format!("reading {}", args.file.display()))?;
    let signature_file = args.signature.clone().or_else(|| {
        let mut beside = args.file.clone().into_os_string();
        beside.push(".sig");
        let beside = PathBuf::from(beside);
        beside.is_file().then_some(beside)
    });
    let signature = match &signature_file {
        Some(path) => {
            let raw = tokio::fs::read(path)
                .await
                .with_context(|| format!("reading the signature {}", path.display()))?;
            Some(signature_header(&raw))
        }
        None => None,
    };
    let total = bytes.len();
    let url = format!(
        "{}/v1/admin/plugins/{}{}",
        args.host.trim_end_matches('/'),
        args.name,
        if args.no_activate {
            "?activate=false"
        } else {
            ""
        }
    );
    let quiet = args.quiet;
    let chunks: Vec<bytes::Bytes> = bytes::Bytes::from(bytes)
        .chunks(64 * 1024)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let mut sent = 0usize;
    let body = futures_util::stream::iter(chunks).map(move |chunk| {
        sent += chunk.len();
        if !quiet {
            let mut err = std::io::stderr();
            let _ = write!(
                err,
                "\ruploading: {:>3}% ({sent} of {total} bytes)",
                sent * 100 / total.max(1)
            );
            if sent == total {
                let _ = writeln!(err, " — validating and compiling on the host…");
            }
        }
        Ok::<_, std::io::Error>(chunk)
    });
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    check_token(&client, &args.host, &args.token).await?;
    let mut request = client
        .put(&url)
        .bearer_auth(&args.token)
        .header(reqwest::header::CONTENT_TYPE, "application/wasm")
        .header(reqwest::header::CONTENT_LENGTH, total)
        .body(reqwest::Body::wrap_stream(body));
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("sending the plugin to {}", args.host))?;
    let status = response.status();
    let answer: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("reading the host's answer (HTTP {status})"))?;
    if !status.is_success() {
        let detail = answer["detail"].as_str().unwrap_or("no detail");
        let code = answer["code"].as_str().unwrap_or("unknown");
        bail!("the host refused the plugin (HTTP {status}, {code}): {detail}");
    }
    Ok(Pushed {
        version: answer["version"].as_str().unwrap_or_default().to_owned(),
        active: answer["active"].as_bool().unwrap_or(false),
        already_stored: status == reqwest::StatusCode::OK,
    })
}

/// Asks the host something cheap that needs an admin token (`GET
/// /v1/admin/plugins`), so that a wrong token is refused before megabytes
/// are sent.
async fn check_token(client: &reqwest::Client, host: &str, token: &str) -> anyhow::Result<()> {
    if token.trim().is_empty() {
        bail!(
            "the admin token is empty: pass --token or set RESCIND_ADMIN_TOKEN; nothing was uploaded"
        );
    }
    let url = format!("{}/v1/admin/plugins", host.trim_end_matches('/'));
    let response = client
        .get(&url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .with_context(|| format!("reaching the host at {host}"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    let detail = answer["detail"].as_str().unwrap_or("no detail");
    match status {
        reqwest::StatusCode::UNAUTHORIZED => bail!(
            "the host refused the token (HTTP 401 unauthenticated: {detail}); nothing was uploaded: \
             use the host's RESCIND_ADMIN_TOKEN or an admin API key"
        ),
        reqwest::StatusCode::FORBIDDEN => bail!(
            "the token's role may not upload plugins (HTTP 403 forbidden: {detail}); nothing was \
             uploaded: plugins need an admin token"
        ),
        other => bail!(
            "the host answered HTTP {other} to GET /v1/admin/plugins ({detail}); nothing was \
             uploaded: is {host} a rescind host?"
        ),
    }
}

/// The header value for a signature file: base64 text as it is, raw bytes
/// encoded.
fn signature_header(raw: &[u8]) -> String {
    use base64::Engine;
    match std::str::from_utf8(raw) {
        Ok(text) if raw.len() != 64 => text.trim().to_owned(),
        _ => base64::engine::general_purpose::STANDARD.encode(raw),
    }
}
