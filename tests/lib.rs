//! Shared helpers for the integration tests: a loopback ERP that records
//! what it receives, and plugin fixtures loaded once per test binary.

pub mod erp_server;
pub mod fakes;
pub mod plugin_fixtures;
pub mod raw_erp;
