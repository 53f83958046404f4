//! Test guest `table-grower`: grows its function table by `step` entries
//! (connection setting, default 1,000) again and again with `table.grow`,
//! up to [`MAX_ELEMENTS_TRIED`] in all. The host must stop it with a trap
//! that names the table limit. If the host only refuses a growth
//! (`table.grow` answering -1), it accepts with the reference
//! `refused at <size>`; if nothing stops it, `grew to <size>`.
//!
//! The `table.grow` itself comes from an object file that `build.rs`
//! writes: stable Rust has no way to emit the instruction.

use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError, config};

/// The most table elements it tries to reach.
pub const MAX_ELEMENTS_TRIED: u64 = 10_000_000;

/// Grows its table.
pub struct TableGrower;

impl IntegrationProcessor for TableGrower {
    fn submit_cancellation(_cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        let step = config::parse_setting::<u32>("step")?.unwrap_or(1_000);
        let mut grown: u64 = 0;
        while grown < MAX_ELEMENTS_TRIED {
            let before = grow(step);
            if before < 0 {
                return Ok(Ack::with_reference(format!("refused at {grown}")));
            }
            grown = u64::from(before.unsigned_abs()) + u64::from(step);
        }
        Ok(Ack::with_reference(format!("grew to {grown}")))
    }
}

rescind_guest::register_integration_processor!(TableGrower);

/// `table.grow` on the function table: the old size, or -1.
#[cfg(target_arch = "wasm32")]
fn grow(step: u32) -> i32 {
    unsafe extern "C" {
        fn rescind_table_grow(delta: i32) -> i32;
    }
    // SAFETY: the function only grows the table with null entries, which
    // no call_indirect of this module reaches.
    unsafe { rescind_table_grow(step as i32) }
}

/// Natively there is no table: growth is refused at once.
#[cfg(not(target_arch = "wasm32"))]
fn grow(_step: u32) -> i32 {
    -1
}
