//! Shared helpers for the integration tests: a loopback ERP that records
//! what it receives, plugin fixtures loaded once per test binary, the
//! process's resident memory, and PostgreSQL databases made for one test.

pub mod erp_server;
pub mod fakes;
pub mod plugin_fixtures;
pub mod raw_erp;
pub mod rss;
pub mod serve_process;
pub mod test_database;
