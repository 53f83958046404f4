//! The `rescind` binary.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    rescind_host::cli::Cli::parse().run().into()
}
