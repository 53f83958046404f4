//! The rescind host: an order-cancellation service that applies the cancel
//! workflow's rules, commits the result, and tells the customer's ERP through
//! hot-loaded WebAssembly integration processors.
//!
//! [`domain`] holds the rules themselves, pure and documented as a rulebook;
//! [`store`] keeps orders, configuration and the job outbox durably;
//! [`api`] is the HTTP API; [`jobs`] runs the outbox through the [`plugins`]
//! runtime.
#![deny(missing_docs)]

pub mod api;
pub mod bundled;
pub mod cancel;
pub mod cli;
pub mod config_rules;
pub mod console;
pub mod demo;
pub mod domain;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod plugins;
pub mod service;
pub mod store;
