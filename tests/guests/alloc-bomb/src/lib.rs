//! Test guest `alloc-bomb`: allocates 1 MiB blocks and writes to every page of
//! each, keeping them all, until the allocator fails. The host's memory cap
//! must stop it (the guest aborts with "memory allocation of … failed" on its
//! stderr) and go on serving.

use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError};

const BLOCK: usize = 1024 * 1024;
const PAGE: usize = 4096;

/// Hoards memory until there is none left.
pub struct AllocBomb;

impl IntegrationProcessor for AllocBomb {
    fn submit_cancellation(_cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut block = vec![0u8; BLOCK];
            // Touch every page so that the memory is really used, not just
            // reserved.
            for offset in (0..BLOCK).step_by(PAGE) {
                block[offset] = 1;
            }
            hoard.push(std::hint::black_box(block));
        }
    }
}

rescind_guest::register_integration_processor!(AllocBomb);
