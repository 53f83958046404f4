#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

/// The WIT package this SDK speaks, as a literal for `concat!`.
macro_rules! wit_package {
    () => {
        "rescind:erp@0.1.0"
    };
}

mod abi;
mod cancellation;
pub mod config;
mod host;
pub mod http;
pub mod log;
mod mapping;
mod outcome;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use cancellation::{
    BankDetails, Cancellation, CancellationReason, CancelledLine, Channel, LineKind, Money, Refund,
    RefundDestination, Tracking,
};
pub use outcome::{Ack, SubmitError};

/// The version of this SDK, stamped into every plugin built with it.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The WIT package plugins built with this SDK implement.
pub const WIT_PACKAGE: &str = wit_package!();

/// The name of the custom section that carries the SDK stamp
/// (`sdk=<version>\nwit=<package>\n`) in a plugin's core module.
pub const STAMP_SECTION: &str = "rescind:sdk";

/// An integration processor: tells one ERP about cancellations.
///
/// Implement it on a type of your own and register that type with
/// [`register_integration_processor!`]. The host calls
/// [`submit_cancellation`](IntegrationProcessor::submit_cancellation) once per
/// job attempt on a fresh instance, so there is no state to keep between
/// calls; read the connection with [`config`], talk to the ERP with
/// [`http`], and log with [`log`].
pub trait IntegrationProcessor {
    /// Tells the ERP about `cancellation`.
    ///
    /// Answer [`Ack`] when the ERP accepted it, or the [`SubmitError`] that
    /// says what the host should do next; `?` on HTTP and configuration
    /// errors picks the right one.
    fn submit_cancellation(cancellation: &Cancellation) -> Result<Ack, SubmitError>;
}

/// Makes a type implementing [`IntegrationProcessor`] the plugin's export, and
/// stamps the SDK and WIT versions into the component (custom section
/// `rescind:sdk`) so that the host can refuse a plugin it cannot serve.
///
/// Call it once, at the root of the plugin crate:
///
/// ```
/// use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError};
///
/// struct Webhook;
///
/// impl IntegrationProcessor for Webhook {
///     fn submit_cancellation(cancellation: &Cancellation) -> Result<Ack, SubmitError> {
///         Ok(Ack::with_reference(cancellation.order_number.clone()))
///     }
/// }
///
/// rescind_guest::register_integration_processor!(Webhook);
/// # fn main() {}
/// ```
///
/// The export exists only in a `wasm32` build; on the host target the macro
/// just checks the trait is implemented, so the plugin's own unit tests build
/// as usual.
#[macro_export]
macro_rules! register_integration_processor {
    ($processor:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type RescindIntegrationProcessor = $crate::__private::Export<$processor>;
            $crate::__private::bindings::export_processor!(
                RescindIntegrationProcessor with_types_in $crate::__private::bindings
            );

            // In the plugin's own crate, so the linker keeps it in the
            // component's core module, where the host looks for it.
            #[used]
            #[unsafe(link_section = "rescind:sdk")]
            static RESCIND_SDK_STAMP: [u8; $crate::__private::STAMP_LEN] = $crate::__private::STAMP;
        };

        const _: fn() = || {
            fn implements_integration_processor<P: $crate::IntegrationProcessor>() {}
            implements_integration_processor::<$processor>();
        };
    };
}

/// What [`register_integration_processor!`] expands to needs these paths.
/// Not part of the API: anything here may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::abi::{Export, STAMP, STAMP_LEN, bindings};
}
