//! The service, job and hot-load integration tests again, on PostgreSQL:
//! the same test bodies as the binary `all` (included from there), each
//! service on an empty database of its own, so that what differs between
//! the two stores shows up as a failing test.
//!
//! Needs a PostgreSQL server: `RESCIND_TEST_POSTGRES`, by default
//! `postgres://postgres@127.0.0.1:5432/postgres`.

/// The store of this binary's test services.
const BACKEND: service::Backend = service::Backend::Postgres;

#[path = "../all/api_audit.rs"]
mod api_audit;
#[path = "../all/api_auth.rs"]
mod api_auth;
#[path = "../all/api_cancel.rs"]
#[allow(
    dead_code,
    reason = "shared with the binary `all`, whose other tests use the rest"
)]
mod api_cancel;
#[path = "../all/api_contract.rs"]
mod api_contract;
#[path = "../all/api_ops.rs"]
mod api_ops;
#[path = "../all/console/mod.rs"]
mod console;
#[path = "../all/hotload_api.rs"]
mod hotload_api;
#[path = "../all/hotload_jobs.rs"]
mod hotload_jobs;
#[path = "../all/hotload_support.rs"]
#[allow(
    dead_code,
    reason = "shared with the binary `all`, whose other tests use the rest"
)]
mod hotload_support;
#[path = "../all/jobs_applies_to.rs"]
mod jobs_applies_to;
#[path = "../all/jobs_delivery.rs"]
mod jobs_delivery;
#[path = "../all/jobs_exchange.rs"]
mod jobs_exchange;
#[path = "../all/jobs_lease.rs"]
mod jobs_lease;
#[path = "../all/jobs_outage.rs"]
mod jobs_outage;
#[path = "../all/jobs_records.rs"]
mod jobs_records;
#[path = "../all/jobs_retention.rs"]
mod jobs_retention;
#[path = "../all/jobs_share.rs"]
mod jobs_share;
mod migrate;
mod plugin_replicas;
#[path = "../all/plugin_shadow.rs"]
mod plugin_shadow;
#[path = "../all/registry_support.rs"]
#[allow(
    dead_code,
    reason = "shared with the binary `all`, whose other tests use the rest"
)]
mod registry_support;
mod replicas;
#[path = "../all/service/mod.rs"]
#[allow(
    dead_code,
    reason = "shared with the binary `all`, whose other tests use the rest"
)]
mod service;
