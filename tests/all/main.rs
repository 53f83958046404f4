//! Integration tests: one binary.

mod api_auth;
mod api_cancel;
mod api_errors;
mod api_ops;
mod jobs_queue;
mod service;
