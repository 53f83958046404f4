//! Test guest `old-sdk`: implements the right world (`rescind:erp@0.1.0`
//! `integration-processor`), but its `rescind:sdk` section claims an SDK and a
//! WIT package the host does not serve:
//! `sdk=0.0.1\nwit=rescind:erp@0.0.9\n`. The host must refuse it with a
//! message naming those versions. Written against raw bindings because the
//! SDK's macro would stamp the current versions.

#[allow(missing_docs, unsafe_op_in_unsafe_fn)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/v0.1.0",
        world: "integration-processor",
    });
}

use bindings::exports::rescind::erp::processor::Guest;
use bindings::rescind::erp::types::{Ack, Cancellation, SubmitError};

/// What the section claims.
pub const CLAIMED_STAMP: &[u8] = b"sdk=0.0.1\nwit=rescind:erp@0.0.9\n";

/// Would accept, if it were ever run.
pub struct OldSdk;

impl Guest for OldSdk {
    fn submit_cancellation(_cancellation: Cancellation) -> Result<Ack, SubmitError> {
        Ok(Ack {
            erp_reference: Some("old-sdk".into()),
            message: None,
        })
    }
}

#[cfg(target_arch = "wasm32")]
bindings::export!(OldSdk with_types_in bindings);

#[cfg(target_arch = "wasm32")]
#[used]
#[unsafe(link_section = "rescind:sdk")]
static RESCIND_SDK_STAMP: [u8; CLAIMED_STAMP.len()] = *b"sdk=0.0.1\nwit=rescind:erp@0.0.9\n";
