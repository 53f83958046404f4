//! Integration tests: one binary.

mod api_auth;
mod api_cancel;
mod api_errors;
mod api_ops;
mod jobs_delivery;
mod jobs_queue;
mod plugin_cache;
mod plugin_refusals;
mod plugin_sandbox;
mod service;
mod webhook;
