//! Sign-in rate limiting: at most [`MAX_FAILURES`] failed sign-ins per
//! client address in a [`WINDOW`]; past it, every sign-in from that
//! address is refused (the right key too) until the window ends. Memory is
//! bounded: at most [`MAX_ADDRESSES`] addresses are tracked, and when that
//! many are, the expired go first, then the oldest window.
//!
//! The address is the TCP peer's. Behind a proxy every client shares the
//! proxy's address, so the limit is then the proxy's: a flood of wrong keys
//! locks out sign-in for everyone behind it for the rest of the window.
//! (Headers such as `X-Forwarded-For` are not trusted for this: a client
//! could name any address in them.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::store::now_ms;

/// Failed sign-ins an address may make in one window.
pub const MAX_FAILURES: u32 = 10;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Most addresses tracked at once.
pub const MAX_ADDRESSES: usize = 10_000;

/// One address's failures in its current window.
#[derive(Debug, Clone, Copy)]
struct Failures {
    window_start_ms: i64,
    count: u32,
}

/// The failed sign-ins of every recent client address.
#[derive(Debug, Default)]
pub struct SignInThrottle {
    by_address: Mutex<HashMap<Option<IpAddr>, Failures>>,
}

fn window_ms() -> i64 {
    i64::try_from(WINDOW.as_millis()).unwrap_or(i64::MAX)
}

impl SignInThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Option<IpAddr>, Failures>> {
        self.by_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `address` may try to sign in at `now_ms`; when not, how long
    /// until it may (whole seconds, at least 1).
    pub fn check_at(&self, address: Option<IpAddr>, now_ms: i64) -> Result<(), u64> {
        let by_address = self.lock();
        match by_address.get(&address) {
            Some(f)
                if f.count >= MAX_FAILURES
                    && now_ms.saturating_sub(f.window_start_ms) < window_ms() =>
            {
                let left_ms = window_ms() - now_ms.saturating_sub(f.window_start_ms);
                Err(u64::try_from((left_ms + 999) / 1000).unwrap_or(1).max(1))
            }
            _ => Ok(()),
        }
    }

    /// [`check_at`](Self::check_at) now.
    pub fn check(&self, address: Option<IpAddr>) -> Result<(), u64> {
        self.check_at(address, now_ms())
    }

    /// Counts a failed sign-in from `address` at `now_ms`.
    pub fn failed_at(&self, address: Option<IpAddr>, now_ms: i64) {
        let mut by_address = self.lock();
        if !by_address.contains_key(&address) && by_address.len() >= MAX_ADDRESSES {
            by_address.retain(|_, f| now_ms.saturating_sub(f.window_start_ms) < window_ms());
            if by_address.len() >= MAX_ADDRESSES
                && let Some(oldest) = by_address
                    .iter()
                    .min_by_key(|(_, f)| f.window_start_ms)
                    .map(|(a, _)| *a)
            {
                by_address.remove(&oldest);
            }
        }
        let entry = by_address.entry(address).or_insert(Failures {
            window_start_ms: now_ms,
            count: 0,
        });
        if now_ms.saturating_sub(entry.window_start_ms) >= window_ms() {
            *entry = Failures {
                window_start_ms: now_ms,
                count: 0,
            };
        }
        entry.count = entry.count.saturating_add(1);
    }

    /// [`failed_at`](Self::failed_at) now.
    pub fn failed(&self, address: Option<IpAddr>) {
        self.failed_at(address, now_ms());
    }

    /// Addresses tracked (for the tests of the bound).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> Option<IpAddr> {
        Some(IpAddr::from(n.to_be_bytes()))
    }

    #[test]
    fn an_address_is_refused_after_its_failures_until_the_window_ends() {
        let throttle = SignInThrottle::default();
        let start = 1_000_000;
        for i in 0..MAX_FAILURES {
            assert_eq!(throttle.check_at(ip(1), start + i64::from(i)), Ok(()));
            throttle.failed_at(ip(1), start + i64::from(i));
        }
        let wait = throttle.check_at(ip(1), start + 1000).expect_err("limited");
        assert_eq!(wait, WINDOW.as_secs() - 1);
        assert_eq!(
            throttle.check_at(ip(2), start + 1000),
            Ok(()),
            "others go on"
        );
        assert_eq!(throttle.check_at(ip(1), start + window_ms()), Ok(()));
        // A new window starts its count again.
        throttle.failed_at(ip(1), start + window_ms());
        assert_eq!(throttle.check_at(ip(1), start + window_ms() + 1), Ok(()));
    }

    #[test]
    fn memory_stays_bounded_however_many_addresses_fail() {
        let throttle = SignInThrottle::default();
        let count = u32::try_from(MAX_ADDRESSES).unwrap() + 500;
        for n in 0..count {
            throttle.failed_at(ip(n), 1_000 + i64::from(n));
        }
        assert!(throttle.tracked() <= MAX_ADDRESSES);
        // The newest are the ones kept.
        for _ in 0..MAX_FAILURES {
            throttle.failed_at(ip(count - 1), 2_000_000);
        }
        assert!(throttle.check_at(ip(count - 1), 2_000_001).is_err());
    }
}
