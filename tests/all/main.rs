//! Integration tests: one binary.

mod plugin_cache;
mod plugin_refusals;
mod plugin_sandbox;
mod webhook;
