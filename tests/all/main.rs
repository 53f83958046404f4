//! Integration tests: one binary.

mod plugin_cache;
mod plugin_refusals;
mod plugin_sandbox;
mod registry_guard;
mod registry_lifecycle;
mod registry_refusals;
mod registry_support;
mod registry_swap;
mod registry_watch;
mod webhook;
