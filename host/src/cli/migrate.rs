//! `rescind migrate-store`: moves a stopped host's SQLite store into an
//! empty PostgreSQL database, where several replicas can share it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::secrets::key_source_from_env;
use super::{Exit, report_error};
use crate::store::copy_sqlite_to_postgres;

/// Options of `rescind migrate-store`.
#[derive(Debug, Clone, Args)]
pub struct MigrateStoreArgs {
    /// The data directory of the stopped host whose SQLite store is copied
    /// (it is left as it was). Its secrets key is `RESCIND_SECRETS_KEY` or
    /// the directory's key file, as for `rescind serve`.
    #[arg(long)]
    pub from: PathBuf,
    /// The PostgreSQL database to copy into (`postgres://…`): it must exist
    /// and hold no rescind data; the schema is created.
    #[arg(long)]
    pub to: String,
}

/// Runs `rescind migrate-store`.
pub fn run(args: MigrateStoreArgs) -> Exit {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
    {
        Ok(runtime) => runtime,
        Err(error) => return report_error(&error, Exit::FAILURE),
    };
    match runtime.block_on(migrate(&args)) {
        Ok(report) => {
            print!("{report}");
            Exit::SUCCESS
        }
        Err(error) => report_error(&error, Exit::FAILURE),
    }
}

async fn migrate(args: &MigrateStoreArgs) -> anyhow::Result<String> {
    let key = key_source_from_env("RESCIND_SECRETS_KEY")?;
    let copied = copy_sqlite_to_postgres(&args.from, key, &args.to)
        .await
        .with_context(|| {
            format!(
                "copying the store of {} into PostgreSQL",
                args.from.display()
            )
        })?;
    let mut report = String::from("copied, with the same row count on both sides:\n");
    for table in &copied {
        report.push_str(&format!("  {:<20} {:>10}\n", table.table, table.rows));
    }
    report.push_str(&format!(
        "start the replicas with --database-url and the same secrets key as {} \
         (RESCIND_SECRETS_KEY, or its secrets.key file); the plugins are in its \
         plugins/store folder\n",
        args.from.display()
    ));
    Ok(report)
}
