//! The plugin runtime: integration processors (WebAssembly components of
//! the `rescind:erp@0.1.0` world) loaded once and called in a sandbox.
//!
//! ```no_run
//! # async fn demo(bytes: Vec<u8>, cancellation: rescind_host::plugins::Cancellation)
//! # -> Result<(), rescind_host::plugins::PluginError> {
//! use rescind_host::plugins::{CallLimits, ConnectionContext, PluginRuntime, RuntimeConfig};
//!
//! let runtime = PluginRuntime::new(RuntimeConfig::default())?;
//! let plugin = runtime.load("webhook", &bytes)?;
//! let connection = ConnectionContext {
//!     base_url: "https://erp.example.com/hooks/cancel".into(),
//!     allowed_hosts: vec!["erp.example.com".into()],
//!     ..Default::default()
//! };
//! let report = plugin.submit(cancellation, &connection, &CallLimits::default()).await;
//! println!("{} ({} log lines)", report.outcome, report.log.len());
//! # Ok(()) }
//! ```
//!
//! Layout: policy in small pure modules (`compat`, `outbound` with
//! `address`, `trust`, `log`, `redact`), one
//! `*_impl.rs` per host-side interface (`host_impl` for `rescind:erp/host`,
//! `outbound_impl` for the wasi:http send hook, `exchange_tap` recording
//! what passes it, `stdio_impl` for captured output; `exchange` keeps the
//! recorded ERP exchange), generated bindings in `bindings`.

mod address;
mod answers;
mod bindings;
mod cache;
mod call;
mod cancellation;
mod capture;
pub mod compare;
mod compat;
mod config;
mod connection;
mod engine;
mod error;
mod exchange;
mod exchange_tap;
mod executor;
mod host_impl;
mod keepalive;
mod log;
mod name;
mod outbound;
mod outbound_impl;
mod outcome;
mod plugin;
mod redact;
pub mod registry;
mod returned_text;
mod runtime;
mod send_window;
mod stdio_impl;
mod trust;

pub use address::{AddressClass, METADATA_ADDRESSES, METADATA_NAMES};
pub use answers::{RecordedAnswer, recorded_answers};
pub use call::MAX_BACKTRACE_FRAMES;
pub use cancellation::{
    BankDetails, Cancellation, CancellationReason, CancelledLine, CancelledLineKind, Channel,
    Money, Refund, RefundDestination, Tracking, WitName, sample_cancellation,
};
pub use compat::{PROCESSOR_EXPORT, SDK_SECTION, SUPPORTED_WIT, SdkStamp};
pub use config::{
    CallLimits, MAX_OUTBOUND_KEEP_ALIVE, MAX_TABLE_ELEMENTS, MAX_WASM_STACK_BYTES,
    ResolveOverrides, RuntimeConfig,
};
pub use connection::ConnectionContext;
pub use error::PluginError;
pub use exchange::{
    ErpExchange, MAX_RECORDED_BODY_BYTES, MAX_RECORDED_EXCHANGES, MAX_RECORDED_HEADER_BYTES,
    RecordedBody, RecordedExchanges, RecordedHeader, UNANSWERED, body_cut_marker,
};
pub use log::{LogLevel, LogLine, LogSource, REDACTED};
pub use name::{MAX_PLUGIN_NAME_BYTES, validate_plugin_name};
pub use outbound::{
    AllowedHostError, AllowedHosts, BaseUrlError, Destination, DestinationHost, EgressPolicy,
    EgressRefusal, check_base_url,
};
pub use outcome::{CallOutcome, CallReport};
pub use plugin::Plugin;
pub use redact::{Redactor, RedactorCache};
pub use returned_text::{MAX_RETURNED_TEXT_BYTES, cut_marker};
pub use runtime::PluginRuntime;
pub use send_window::SendWindow;
pub use trust::{CaCertificatesError, MAX_CA_CERTIFICATES, parse_ca_certificates};
