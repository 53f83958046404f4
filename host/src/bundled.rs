//! The example plugins of `plugins/`, compiled to components by the build
//! script and carried in the binary, so that `rescind serve` (and the demo)
//! can run the `webhook` integration processor without any upload.

include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));
