//! The retry schedule: exponential backoff with full jitter.
//!
//! Policy only, no clock and no randomness of its own: the caller passes
//! the random fraction, so the table tests below pin every case.
//! (Full jitter as in the AWS architecture note "Exponential Backoff And
//! Jitter": sleep a uniform random time in `[0, ceiling]`, which spreads
//! retries of many failing jobs instead of synchronising them.)

use std::time::Duration;

use crate::store::RetryPolicy;

/// What the worker does after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// No attempts left: the job fails.
    GiveUp,
}

/// The backoff ceiling after attempt `attempt` (1-based) failed:
/// `initial * 2^(attempt-1)`, capped at `max`.
pub fn ceiling(policy: &RetryPolicy, attempt: u32) -> Duration {
    // 2^64 and beyond do not fit: the factor saturates, and so does the
    // product, which the cap then bounds.
    let factor = 1u64
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u64::MAX);
    let ms = policy
        .initial_backoff_ms
        .saturating_mul(factor)
        .min(policy.max_backoff_ms.max(policy.initial_backoff_ms));
    Duration::from_millis(ms)
}

/// Decides what follows a transient failure of attempt `attempt` (counted
/// within the current round of attempts). `jitter` is a random fraction in
/// `[0, 1]`; the delay is that fraction of the ceiling.
pub fn after_transient_failure(policy: &RetryPolicy, attempt: u32, jitter: f64) -> RetryDecision {
    if attempt >= policy.max_attempts {
        return RetryDecision::GiveUp;
    }
    let ceiling = ceiling(policy, attempt);
    let fraction = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        1.0
    };
    RetryDecision::RetryAfter(ceiling.mul_f64(fraction))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: u32, initial: u64, max: u64) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff_ms: initial,
            max_backoff_ms: max,
        }
    }

    #[test]
    fn ceilings_double_until_the_cap() {
        let p = policy(10, 1_000, 300_000);
        let table = [
            (1, 1_000),
            (2, 2_000),
            (3, 4_000),
            (8, 128_000),
            (9, 256_000),
            (10, 300_000),
            (64, 300_000),
            (u32::MAX, 300_000),
        ];
        for (attempt, ms) in table {
            assert_eq!(
                ceiling(&p, attempt),
                Duration::from_millis(ms),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn huge_values_saturate_instead_of_overflowing() {
        let p = policy(3, u64::MAX / 2, u64::MAX);
        assert_eq!(ceiling(&p, 40), Duration::from_millis(u64::MAX));
        // From 1 ms, the 65th attempt's ceiling passes 2^64 ms: it reaches
        // a cap above 2^63 ms rather than stopping short of it.
        let p = policy(100, 1, (1 << 63) + 1);
        assert_eq!(ceiling(&p, 64), Duration::from_millis(1 << 63));
        assert_eq!(ceiling(&p, 65), Duration::from_millis((1 << 63) + 1));
    }

    #[test]
    fn a_cap_below_the_initial_backoff_keeps_the_initial() {
        let p = policy(3, 5_000, 1_000);
        assert_eq!(ceiling(&p, 3), Duration::from_millis(5_000));
    }

    #[test]
    fn decisions() {
        let p = policy(3, 100, 1_000);
        let table = [
            (1, 0.0, RetryDecision::RetryAfter(Duration::ZERO)),
            (
                1,
                1.0,
                RetryDecision::RetryAfter(Duration::from_millis(100)),
            ),
            (
                2,
                0.5,
                RetryDecision::RetryAfter(Duration::from_millis(100)),
            ),
            (
                2,
                7.0,
                RetryDecision::RetryAfter(Duration::from_millis(200)),
            ),
            (2, -1.0, RetryDecision::RetryAfter(Duration::ZERO)),
            (
                2,
                f64::NAN,
                RetryDecision::RetryAfter(Duration::from_millis(200)),
            ),
            (3, 0.5, RetryDecision::GiveUp),
            (4, 0.5, RetryDecision::GiveUp),
        ];
        for (attempt, jitter, expected) in table {
            assert_eq!(
                after_transient_failure(&p, attempt, jitter),
                expected,
                "attempt {attempt}, jitter {jitter}"
            );
        }
    }

    #[test]
    fn one_attempt_means_no_retry() {
        assert_eq!(
            after_transient_failure(&policy(1, 100, 100), 1, 0.3),
            RetryDecision::GiveUp
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn policies() -> impl Strategy<Value = RetryPolicy> {
            (
                1u32..=100,
                prop_oneof![0u64..=10_000, any::<u64>()],
                prop_oneof![0u64..=1_000_000, any::<u64>()],
            )
                .prop_map(|(max_attempts, initial, max)| policy(max_attempts, initial, max))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            /// The ceiling never shrinks, at most doubles from one attempt
            /// to the next, and stops at the cap (or the initial backoff
            /// when the cap is below it), whatever the attempt number.
            #[test]
            fn ceilings_grow_monotonically_to_the_cap(p in policies(), attempt in 1u32..=10_000) {
                let (now, next) = (ceiling(&p, attempt), ceiling(&p, attempt + 1));
                let cap = Duration::from_millis(p.max_backoff_ms.max(p.initial_backoff_ms));
                prop_assert!(now <= next);
                prop_assert!(next <= now.saturating_mul(2));
                prop_assert!(next <= cap);
                prop_assert_eq!(ceiling(&p, 1), Duration::from_millis(p.initial_backoff_ms.min(cap.as_millis() as u64)));
                prop_assert_eq!(ceiling(&p, 10_000), if p.initial_backoff_ms == 0 { Duration::ZERO } else { cap });
            }

            /// A delay lies within its jitter bounds (`[0, ceiling]`), grows
            /// with the random fraction, and attempts run out exactly at
            /// `maxAttempts`.
            #[test]
            fn delays_stay_within_their_jitter_bounds(
                p in policies(),
                attempt in prop_oneof![1u32..=200, 1u32..=u32::MAX],
                low in 0.0f64..=1.0,
                high in 0.0f64..=1.0,
            ) {
                let (low, high) = (low.min(high), low.max(high));
                match (after_transient_failure(&p, attempt, low), after_transient_failure(&p, attempt, high)) {
                    (RetryDecision::RetryAfter(a), RetryDecision::RetryAfter(b)) => {
                        prop_assert!(attempt < p.max_attempts);
                        prop_assert!(a <= b, "{a:?} > {b:?}");
                        prop_assert!(b <= ceiling(&p, attempt));
                        // The fraction is applied, give or take a rounding.
                        let expected = ceiling(&p, attempt).as_secs_f64() * high;
                        prop_assert!((b.as_secs_f64() - expected).abs() <= 1e-6 * expected.max(1.0));
                    }
                    (RetryDecision::GiveUp, RetryDecision::GiveUp) => {
                        prop_assert!(attempt >= p.max_attempts);
                    }
                    other => prop_assert!(false, "the fraction changed the decision: {other:?}"),
                }
            }
        }
    }
}
