//! Shared helpers for the integration tests: a loopback ERP that records
//! what it receives, plugin fixtures loaded once per test binary, and the
//! process's resident memory.

pub mod erp_server;
pub mod fakes;
pub mod plugin_fixtures;
pub mod raw_erp;
pub mod rss;
