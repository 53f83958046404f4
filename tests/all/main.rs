//! Integration tests: one binary.

mod adapter_aaas;
mod adapter_figures;
mod adapter_personalization;
mod adapter_websphere;
mod api_auth;
mod api_cancel;
mod api_errors;
mod api_ops;
mod cli_plugin_new;
mod cli_plugin_test;
mod hotload_api;
mod hotload_jobs;
mod hotload_support;
mod jobs_delivery;
mod jobs_queue;
mod plugin_cache;
mod plugin_refusals;
mod plugin_sandbox;
mod registry_guard;
mod registry_lifecycle;
mod registry_refusals;
mod registry_support;
mod registry_swap;
mod registry_watch;
mod service;
mod webhook;
