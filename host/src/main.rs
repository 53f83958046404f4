//! The `rescind` binary.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system's allocator: every request allocates
/// and frees its buffers, headers and JSON on whichever async thread runs
/// it, where glibc's malloc spends much of its time on locks and
/// consolidation (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    rescind_host::cli::Cli::parse().run().into()
}
