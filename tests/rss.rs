//! The resident memory of this process, read from `/proc/self/status`, and a
//! sampler that records its highest value while an attack runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The bound the hostile-plugin tests hold the host to: resident memory of
/// the whole test process (the host, its tests and every plugin instance
/// running at the time) stays below 1 GiB.
pub const RSS_BOUND_BYTES: u64 = 1024 * 1024 * 1024;

/// `VmRSS` of this process, in bytes.
pub fn resident_bytes() -> u64 {
    status_field("VmRSS:")
}

/// `VmHWM` (the highest resident size so far) of this process, in bytes.
pub fn peak_resident_bytes() -> u64 {
    status_field("VmHWM:")
}

/// `VmRSS` of process `pid` (a `rescind serve` a benchmark started), in
/// bytes.
pub fn resident_bytes_of(pid: u32) -> u64 {
    field_of(&format!("/proc/{pid}/status"), "VmRSS:")
}

fn status_field(field: &str) -> u64 {
    field_of("/proc/self/status", field)
}

fn field_of(status_file: &str, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(status_file).unwrap_or_else(|e| panic!("read {status_file}: {e}"));
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status_file}"));
    kib * 1024
}

/// Samples [`resident_bytes`] every 5 ms on a thread of its own until
/// stopped.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    highest: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling.
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let highest = Arc::new(AtomicU64::new(resident_bytes()));
        let thread = {
            let (stop, highest) = (Arc::clone(&stop), Arc::clone(&highest));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    highest.fetch_max(resident_bytes(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Self {
            stop,
            highest,
            thread: Some(thread),
        }
    }

    /// Stops sampling and answers the highest resident size seen.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the sampler ends");
        }
        self.highest.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
