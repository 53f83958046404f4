//! The `rescind` binary.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    rescind_host::cli::Cli::parse().run()
}
