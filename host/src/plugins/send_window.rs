//! Until when a call may still send outbound requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Until when a call may still send outbound requests: once it has passed,
/// every request the call makes is refused before anything is sent.
///
/// The job worker opens one per attempt, closing when the job's lease runs
/// out, and moves it on each time it renews the lease. A worker paused
/// past its lease (a frozen process, a stalled machine) may wake up in the
/// middle of the attempt while another worker, which took the job over,
/// is sending the same request: the window has closed, so the late worker
/// sends nothing, and no job is ever delivered by two workers at once.
#[derive(Debug, Clone)]
pub struct SendWindow {
    opened: Instant,
    /// Nanoseconds after `opened` at which the window closes.
    closes_after_ns: Arc<AtomicU64>,
}

impl SendWindow {
    /// A window that closes at `closes`.
    pub fn until(closes: Instant) -> Self {
        let opened = Instant::now();
        let window = Self {
            opened,
            closes_after_ns: Arc::new(AtomicU64::new(0)),
        };
        window.extend_to(closes);
        window
    }

    /// Moves the close to `closes`, if that is later than it is now.
    pub fn extend_to(&self, closes: Instant) {
        let after = closes.saturating_duration_since(self.opened);
        let ns = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
        self.closes_after_ns.fetch_max(ns, Ordering::AcqRel);
    }

    /// When the window closes.
    pub fn closes(&self) -> Instant {
        let ns = self.closes_after_ns.load(Ordering::Acquire);
        self.opened
            .checked_add(Duration::from_nanos(ns))
            .unwrap_or(self.opened)
    }

    /// Whether a request may still be sent now.
    pub fn is_open(&self) -> bool {
        Instant::now() < self.closes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_opens_until_its_close_and_only_moves_later() {
        let now = Instant::now();
        let window = SendWindow::until(now + Duration::from_secs(60));
        assert!(window.is_open());
        // An earlier close is ignored: a late renewal never shortens it.
        window.extend_to(now + Duration::from_secs(1));
        assert!(window.closes() >= now + Duration::from_secs(60));
        window.extend_to(now + Duration::from_secs(120));
        assert!(window.closes() >= now + Duration::from_secs(120));

        let closed = SendWindow::until(now);
        assert!(!closed.is_open());
        // A clone shares the close: the worker moves what the call reads.
        let shared = closed.clone();
        closed.extend_to(Instant::now() + Duration::from_secs(60));
        assert!(shared.is_open());
    }
}
