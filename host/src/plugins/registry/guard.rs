//! Guarded activation: whether a newly activated version should be rolled
//! back, judged from the outcomes of its first attempts.
//!
//! Pure policy (no clock, no I/O, no wasmtime) so that every decision is
//! table tested. The registry feeds it tallies and acts on the verdict.

use std::fmt;

/// How a newly activated version is watched: over its first
/// `observe_jobs` attempts, at most `max_failure_rate` of them may fail
/// (transient, trap, deadline, memory cap or misconfigured).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Guard {
    /// How many attempts on the new version to observe before the guard
    /// passes. At least 1.
    pub observe_jobs: u32,
    /// The largest share of failed attempts tolerated, from 0.0 to 1.0.
    pub max_failure_rate: f64,
}

impl Guard {
    /// Checks the guard's numbers, saying how to fix them.
    pub fn check(&self) -> Result<(), String> {
        if self.observe_jobs == 0 {
            return Err("observeJobs must be at least 1".to_owned());
        }
        if !(0.0..=1.0).contains(&self.max_failure_rate) {
            return Err(format!(
                "maxFailureRate must be between 0.0 and 1.0, not {}",
                self.max_failure_rate
            ));
        }
        Ok(())
    }
}

/// Attempts and failures counted for one version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    /// Attempts whose outcome was recorded.
    pub attempts: u32,
    /// How many of them failed.
    pub failures: u32,
}

impl Tally {
    /// Counts a series of outcomes (`true` = failed).
    pub fn of(outcomes: impl IntoIterator<Item = bool>) -> Self {
        outcomes
            .into_iter()
            .fold(Self::default(), |tally, failed| tally.record(failed))
    }

    /// This tally with one more outcome.
    #[must_use]
    pub fn record(self, failed: bool) -> Self {
        Self {
            attempts: self.attempts + 1,
            failures: self.failures + u32::from(failed),
        }
    }

    /// The share of failed attempts, or `None` before the first attempt.
    pub fn rate(&self) -> Option<f64> {
        (self.attempts > 0).then(|| f64::from(self.failures) / f64::from(self.attempts))
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rate() {
            Some(rate) => write!(
                f,
                "{} of {} attempts failed ({:.0}%)",
                self.failures,
                self.attempts,
                rate * 100.0
            ),
            None => f.write_str("no attempts recorded"),
        }
    }
}

/// What the guard concludes after an outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Not enough attempts yet to decide.
    Observing,
    /// The new version stayed within the bound over the observed attempts:
    /// the guard ends and the version stays.
    Passed,
    /// The new version fails beyond the bound while the previous one did
    /// not: switch back.
    RollBack,
    /// The new version failed beyond the bound, but so did the previous one
    /// recently: the failures are likely the ERP's, not the plugin's, so the
    /// new version stays and the guard ends.
    KeptBothFailing,
}

/// Judges the new version's tally against the guard and the previous
/// version's recent tally (taken when the new version was activated).
///
/// The decision comes early when it cannot change any more: once more than
/// `max_failure_rate × observe_jobs` attempts failed, the rate over the whole
/// window must exceed the bound, so the plugin is rolled back without
/// failing the rest of the window's jobs.
pub fn judge(guard: &Guard, new: Tally, previous: Tally) -> Verdict {
    let allowed_failures = guard.max_failure_rate * f64::from(guard.observe_jobs);
    let complete = new.attempts >= guard.observe_jobs;
    let new_exceeds = if complete {
        new.rate().is_some_and(|rate| rate > guard.max_failure_rate)
    } else {
        f64::from(new.failures) > allowed_failures
    };
    let previous_exceeds = previous
        .rate()
        .is_some_and(|rate| rate > guard.max_failure_rate);
    match (new_exceeds, previous_exceeds, complete) {
        (false, _, false) => Verdict::Observing,
        (false, _, true) => Verdict::Passed,
        (true, false, _) => Verdict::RollBack,
        (true, true, false) => Verdict::Observing,
        (true, true, true) => Verdict::KeptBothFailing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(attempts: u32, failures: u32) -> Tally {
        Tally { attempts, failures }
    }

    #[test]
    fn verdicts_table() {
        let guard = Guard {
            observe_jobs: 10,
            max_failure_rate: 0.2,
        };
        let healthy = tally(50, 1);
        let failing = tally(50, 20);
        let unknown = Tally::default();
        for (what, new, previous, expected) in [
            ("nothing yet", tally(0, 0), healthy, Verdict::Observing),
            (
                "two failures are within 20% of 10",
                tally(2, 2),
                healthy,
                Verdict::Observing,
            ),
            (
                "the third failure decides early",
                tally(3, 3),
                healthy,
                Verdict::RollBack,
            ),
            (
                "early, previous never observed",
                tally(3, 3),
                unknown,
                Verdict::RollBack,
            ),
            (
                "window complete and clean",
                tally(10, 0),
                healthy,
                Verdict::Passed,
            ),
            (
                "exactly at the bound passes",
                tally(10, 2),
                healthy,
                Verdict::Passed,
            ),
            (
                "complete, above the bound",
                tally(10, 3),
                healthy,
                Verdict::RollBack,
            ),
            (
                "previous failing too: keep watching",
                tally(4, 4),
                failing,
                Verdict::Observing,
            ),
            (
                "previous failing too: kept",
                tally(10, 5),
                failing,
                Verdict::KeptBothFailing,
            ),
            (
                "previous failing, new fine",
                tally(10, 1),
                failing,
                Verdict::Passed,
            ),
            (
                "late failures beyond the window",
                tally(12, 3),
                healthy,
                Verdict::RollBack,
            ),
        ] {
            assert_eq!(judge(&guard, new, previous), expected, "{what}");
        }
    }

    #[test]
    fn zero_tolerance_rolls_back_on_the_first_failure() {
        let guard = Guard {
            observe_jobs: 50,
            max_failure_rate: 0.0,
        };
        assert_eq!(judge(&guard, tally(5, 0), tally(0, 0)), Verdict::Observing);
        assert_eq!(judge(&guard, tally(6, 1), tally(0, 0)), Verdict::RollBack);
    }

    #[test]
    fn full_tolerance_never_rolls_back() {
        let guard = Guard {
            observe_jobs: 3,
            max_failure_rate: 1.0,
        };
        assert_eq!(judge(&guard, tally(2, 2), tally(9, 0)), Verdict::Observing);
        assert_eq!(judge(&guard, tally(3, 3), tally(9, 0)), Verdict::Passed);
    }

    #[test]
    fn guard_numbers_are_checked() {
        let ok = Guard {
            observe_jobs: 1,
            max_failure_rate: 0.5,
        };
        assert!(ok.check().is_ok());
        let no_jobs = Guard {
            observe_jobs: 0,
            ..ok
        };
        assert_eq!(
            no_jobs.check().unwrap_err(),
            "observeJobs must be at least 1"
        );
        for rate in [-0.1, 1.5, f64::NAN] {
            let bad = Guard {
                max_failure_rate: rate,
                ..ok
            };
            assert!(
                bad.check().unwrap_err().contains("maxFailureRate"),
                "{rate}"
            );
        }
    }

    #[test]
    fn tallies_count_and_describe() {
        let t = Tally::of([false, true, false, true]);
        assert_eq!(t, tally(4, 2));
        assert_eq!(t.rate(), Some(0.5));
        assert_eq!(t.to_string(), "2 of 4 attempts failed (50%)");
        assert_eq!(Tally::default().rate(), None);
        assert_eq!(Tally::default().to_string(), "no attempts recorded");
    }
}
