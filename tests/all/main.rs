//! Integration tests: one binary.

mod api_cancel;
mod api_errors;
mod service;
