//! The `rescind` binary as a plugin author's shell, CI and an operator see
//! it: exit statuses and output, and the documentation in `docs/` run
//! command by command.

mod docs;
mod exit_status;
mod jobs_show;
mod keys;
mod process;
mod replay;
mod runner;
