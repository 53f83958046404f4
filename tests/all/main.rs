//! Integration tests: one binary, on the embedded SQLite store (the
//! binary `postgres` runs the service, job and hot-load tests again on
//! PostgreSQL).

/// The store of this binary's test services.
const BACKEND: service::Backend = service::Backend::Sqlite;

mod adapter_aaas;
mod adapter_figures;
mod adapter_personalization;
mod adapter_webhook;
mod adapter_websphere;
mod api_audit;
mod api_auth;
mod api_cancel;
mod api_contract;
mod api_errors;
mod api_fuzz;
mod api_keys;
mod api_ops;
mod api_schema;
mod cli_plugin_new;
mod cli_plugin_test;
mod console;
mod egress;
mod egress_keepalive;
mod egress_service;
mod hostile_runtime;
mod hostile_service;
mod hotload_api;
mod hotload_jobs;
mod hotload_support;
mod jobs_applies_to;
mod jobs_delivery;
mod jobs_exchange;
mod jobs_lease;
mod jobs_outage;
mod jobs_queue;
mod jobs_records;
mod jobs_retention;
mod jobs_share;
mod plugin_cache;
mod plugin_refusals;
mod plugin_sandbox;
mod plugin_shadow;
mod plugin_signatures;
mod registry_guard;
mod registry_lifecycle;
mod registry_refusals;
mod registry_shared;
mod registry_support;
mod registry_swap;
mod registry_watch;
mod secrets_at_rest;
mod service;
mod store_refusals;
mod store_schema;
mod store_unwritable;
