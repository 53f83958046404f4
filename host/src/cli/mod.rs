//! The `rescind` command line: `serve` runs the host, `plugin push`
//! uploads a plugin to a running one.

pub mod plugin;
mod plugin_new;
mod plugin_test;
mod serve;

use clap::{Parser, Subcommand};

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
    /// Manage the plugins of a running host.
    Plugin(plugin::PluginArgs),
}

impl Cli {
    /// Runs the parsed command to completion.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve(args) => serve::run(args),
            Command::Plugin(args) => plugin::run(args),
        }
    }
}
