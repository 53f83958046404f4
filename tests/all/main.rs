//! Integration tests: one binary.

mod adapter_aaas;
mod adapter_figures;
mod adapter_personalization;
mod adapter_websphere;
mod plugin_cache;
mod plugin_refusals;
mod plugin_sandbox;
mod webhook;
