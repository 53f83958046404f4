//! The `rescind` command line: `serve` runs the host; `plugin new`, `plugin
//! test`, `plugin sign` and `plugin push` take a plugin from an empty folder
//! to a running host, `plugin shadow` tries a new version on real jobs
//! before it is activated; `keys create` makes an API key while the host is
//! stopped; `secrets rotate-key` replaces the key that seals connection
//! secrets; `jobs show` prints a job of a running host with the ERP
//! exchange of each attempt.

pub mod jobs;
pub mod keys;
mod migrate;
pub mod plugin;
mod plugin_new;
mod plugin_shadow;
mod plugin_test;
mod secrets;
mod serve;

use clap::{Parser, Subcommand};

pub use secrets::{SecretsArgs, SecretsCommand};
pub use serve::ServeArgs;

/// rescind: an order-cancellation host that tells your ERP through
/// sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "rescind", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `rescind`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the host: HTTP API, job workers and plugin runtime.
    Serve(ServeArgs),
    /// Create, try and upload plugins.
    Plugin(plugin::PluginArgs),
    /// Look at the jobs of a running host: each attempt, the plugin's log
    /// and what it sent to the ERP and got back.
    Jobs(jobs::JobsArgs),
    /// Manage API keys in the data directory of a stopped host.
    Keys(keys::KeysArgs),
    /// Manage the key that seals connection secrets.
    Secrets(SecretsArgs),
    /// Copy a stopped host's SQLite store into an empty PostgreSQL
    /// database, every table's row count checked on both sides.
    MigrateStore(migrate::MigrateStoreArgs),
}

/// How a command ended: the process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(u8);

impl Exit {
    /// 0: done; for `plugin test`, the expected outcome; for `plugin test
    /// --replay`, the same requests as the recorded attempt.
    pub const SUCCESS: Exit = Exit(0);
    /// 1: failed; for `plugin test`, another outcome than expected, or
    /// requests off the script; for `plugin test --replay`, requests that
    /// differ from the recorded attempt's.
    pub const FAILURE: Exit = Exit(1);
    /// 2: could not run: unusable input (a file that is not a component, a
    /// bad script, a job the host cannot show) or, from clap, bad
    /// arguments.
    pub const UNUSABLE: Exit = Exit(2);

    /// The numeric status.
    pub fn code(self) -> u8 {
        self.0
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.0)
    }
}

/// Prints `error` as one line of causes (`error: reading x: not found`),
/// never with a backtrace, and answers `exit`.
pub(crate) fn report_error(error: &anyhow::Error, exit: Exit) -> Exit {
    eprintln!("error: {error:#}");
    exit
}

impl Cli {
    /// Runs the parsed command to completion. Errors are printed to stderr;
    /// the answer is the exit status.
    pub fn run(self) -> Exit {
        match self.command {
            Command::Serve(args) => match serve::run(args) {
                Ok(()) => Exit::SUCCESS,
                Err(error) => report_error(&error, Exit::FAILURE),
            },
            Command::Plugin(args) => plugin::run(args),
            Command::Jobs(args) => jobs::run(args),
            Command::Keys(args) => keys::run(args),
            Command::Secrets(args) => secrets::run(args),
            Command::MigrateStore(args) => migrate::run(args),
        }
    }
}
