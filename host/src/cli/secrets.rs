//! `rescind secrets rotate-key`: seals every connection secret of a stopped
//! host's data directory again under a new key, in one transaction.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{Exit, report_error};
use crate::store::{SecretsKey, SecretsKeySource, StoreOptions, rotate_secrets_key};

/// `rescind secrets …`.
#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SecretsCommand,
}

/// The secrets subcommands.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Seal every connection secret again under a new key, in one
    /// transaction, against the data directory of a stopped host. The
    /// current key is `RESCIND_SECRETS_KEY` or `<data-dir>/secrets.key`;
    /// the new one is `RESCIND_NEW_SECRETS_KEY` (64 hex digits) or, for a
    /// host with a key file, generated and written to the key file.
    RotateKey(RotateKeyArgs),
}

/// Options of `rescind secrets rotate-key`.
#[derive(Debug, Clone, Args)]
pub struct RotateKeyArgs {
    /// The stopped host's data directory.
    #[arg(long, default_value = "data", env = "RESCIND_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The PostgreSQL store (as `rescind serve --database-url`). Stop every
    /// replica first and start them again with the new key.
    #[arg(long, env = "RESCIND_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// Runs a secrets subcommand; the answer is the exit status.
pub fn run(args: SecretsArgs) -> Exit {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
    {
        Ok(runtime) => runtime,
        Err(error) => return report_error(&error, Exit::FAILURE),
    };
    match args.command {
        SecretsCommand::RotateKey(rotate) => match runtime.block_on(rotate_key(&rotate)) {
            Ok(message) => {
                println!("{message}");
                Exit::SUCCESS
            }
            Err(error) => report_error(&error, Exit::FAILURE),
        },
    }
}

async fn rotate_key(args: &RotateKeyArgs) -> anyhow::Result<String> {
    let mut options = StoreOptions::new(&args.data_dir);
    options.secrets_key = key_source_from_env("RESCIND_SECRETS_KEY")?;
    options.database_url = args.database_url.clone().filter(|url| !url.is_empty());
    let new_key = match key_source_from_env("RESCIND_NEW_SECRETS_KEY")? {
        SecretsKeySource::Given(key) => Some(key),
        SecretsKeySource::KeyFile => None,
    };
    let rotation = rotate_secrets_key(&options, new_key)
        .await
        .with_context(|| format!("rotating the secrets key of {}", args.data_dir.display()))?;
    let kept = match &rotation.key_file {
        Some(path) => format!("the new key is in {}", path.display()),
        None => "set RESCIND_SECRETS_KEY to the new key before starting the host".to_owned(),
    };
    let plural = if rotation.values == 1 { "" } else { "s" };
    Ok(format!(
        "sealed {} secret value{plural} again: key {} replaced by key {}; {kept}",
        rotation.values, rotation.old_fingerprint, rotation.new_fingerprint
    ))
}

/// The key in environment variable `name` when it is set (and not empty),
/// otherwise the data directory's key file.
pub(crate) fn key_source_from_env(name: &str) -> anyhow::Result<SecretsKeySource> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => SecretsKey::parse(&text)
            .map(SecretsKeySource::Given)
            .with_context(|| name.to_owned()),
        _ => Ok(SecretsKeySource::KeyFile),
    }
}
