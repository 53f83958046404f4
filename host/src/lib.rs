//! The rescind host: an order-cancellation service that applies the cancel
//! workflow's rules, commits the result, and tells the customer's ERP through
//! hot-loaded WebAssembly integration processors.
//!
//! [`domain`] holds the rules themselves, pure and documented as a rulebook.
#![deny(missing_docs)]

pub mod domain;
