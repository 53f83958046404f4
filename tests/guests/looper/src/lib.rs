//! Test guest `looper`: never returns. The host must stop it at the call's
//! deadline and go on serving the next call.

use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError};

/// Spins forever.
pub struct Looper;

impl IntegrationProcessor for Looper {
    fn submit_cancellation(_cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        let mut turns: u64 = 0;
        loop {
            // black_box keeps the optimiser from reasoning the loop away.
            turns = std::hint::black_box(turns.wrapping_add(1));
        }
    }
}

rescind_guest::register_integration_processor!(Looper);
