//! `rescind keys create`: an API key made against a stopped host's data
//! directory, for a first setup without `RESCIND_ADMIN_TOKEN` (or a CI key
//! provisioned before the service starts). The same rules as
//! `POST /v1/admin/api-keys` apply, and the creation is in the audit log.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{Exit, report_error};
use crate::keys::{self, CreatedKey, KeyRequest};
use crate::store::{AdminWrite, AuditActor, Store, StoreError, StoreOptions, now_ms};

/// `rescind keys …`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// The subcommands of `rescind keys`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key in a data directory whose host is stopped; prints
    /// its token once, on stdout.
    Create(CreateArgs),
}

/// Options of `rescind keys create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The data directory of the (stopped) host.
    #[arg(long, env = "RESCIND_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// The PostgreSQL store the replicas share (as `rescind serve
    /// --database-url`): the key is created there, and every replica
    /// accepts it on its next request.
    #[arg(long, env = "RESCIND_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// What to call the key (`ci`, `storefront`).
    #[arg(long)]
    pub name: String,
    /// `admin`, `service` or `customer`.
    #[arg(long)]
    pub role: String,
    /// The customer a customer key is bound to.
    #[arg(long)]
    pub customer_number: Option<String>,
    /// When the key stops working, RFC 3339 (`2030-01-31T00:00:00Z`).
    #[arg(long)]
    pub expires_at: Option<String>,
}

/// Runs `rescind keys …`.
pub fn run(args: KeysArgs) -> Exit {
    match args.command {
        KeysCommand::Create(args) => create(args),
    }
}

fn create(args: CreateArgs) -> Exit {
    let request = KeyRequest {
        name: Some(args.name),
        role: args.role,
        customer_number: args.customer_number,
        expires_at: args.expires_at,
    };
    let new = match request.validate(now_ms()) {
        Ok(new) => new,
        Err(errors) => {
            let flags = errors
                .iter()
                .map(|e| format!("--{}: {}", flag(&e.field), e.message))
                .collect::<Vec<_>>()
                .join("; ");
            return report_error(
                &anyhow::anyhow!("{flags}; no key was created"),
                Exit::UNUSABLE,
            );
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return report_error(
                &anyhow::Error::new(error).context("starting the async runtime"),
                Exit::FAILURE,
            );
        }
    };
    let data_dir = args.data_dir;
    let mut options = StoreOptions::new(&data_dir);
    options.database_url = args.database_url.filter(|url| !url.is_empty());
    let created = runtime.block_on(async {
        let store = Store::open(&options).await.map_err(|error| match error {
            // Its own words say what to do.
            StoreError::DataDirInUse { .. } => anyhow::Error::new(error),
            other => anyhow::Error::new(other)
                .context(format!("opening the store in {}", data_dir.display())),
        })?;
        let result = async {
            let created = keys::create_key(&store, new, &AuditActor::CommandLine).await?;
            store
                .append_audit(&AdminWrite {
                    actor: AuditActor::CommandLine,
                    method: "CLI".to_owned(),
                    path: "rescind keys create".to_owned(),
                    status: 0,
                    summary: format!("created {}", keys::describe(&created.key)),
                    request_id: None,
                })
                .await?;
            anyhow::Ok(created)
        }
        .await
        .context("creating the key");
        store.close().await;
        result
    });
    match created {
        Ok(CreatedKey { key, token }) => {
            eprintln!(
                "created {} in {}; its token follows, shown this once:",
                keys::describe(&key),
                data_dir.display()
            );
            println!("{token}");
            Exit::SUCCESS
        }
        Err(error) => report_error(&error, Exit::FAILURE),
    }
}

/// The flag of a key field (`customerNumber` → `customer-number`).
fn flag(field: &str) -> String {
    let mut flag = String::new();
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            flag.push('-');
            flag.push(c.to_ascii_lowercase());
        } else {
            flag.push(c);
        }
    }
    flag
}
