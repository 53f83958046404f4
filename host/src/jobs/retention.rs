//! Job retention: finished jobs (`succeeded`, `failed`) and their attempts
//! are deleted once they finished longer ago than the retention period, so
//! that the job table stays bounded however long the host runs. Queued,
//! running and retrying jobs are never deleted, nor is any cancellation.
//!
//! The service runs [`run_periodically`]; an operator prunes by hand with
//! `POST /v1/admin/jobs/prune` (`rescind jobs prune --older-than 30d`).
//! Both delete in small batches, each a short write transaction of its own
//! with a rest after it at least [`REST_PER_BATCH`] times as long as the
//! batch took, so that a prune holds at most about an eighth of the
//! writer's time and cancellations and workers, which take the same
//! writer, never wait long behind it.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use crate::store::{Pruned, Store, StoreError, now_ms};

/// Jobs deleted by one write transaction.
pub const BATCH: u32 = 200;

/// The shortest rest between two batches, leaving the writer to others.
pub const PAUSE: Duration = Duration::from_millis(10);

/// How many times as long as a batch took (waiting for the writer
/// included) the rest after it lasts at least: the prune's share of the
/// writer's time stays at or below one part in `REST_PER_BATCH + 1`,
/// whatever this machine's speed, and it gives way more while the writer
/// is busy with others.
pub const REST_PER_BATCH: u32 = 7;

/// The longest rest between two batches, so that a prune goes on after a
/// batch that waited long (behind a checkpoint, say).
pub const LONGEST_REST: Duration = Duration::from_secs(1);

/// The rest after a batch that took `took`: [`REST_PER_BATCH`] times as
/// long, between [`PAUSE`] and [`LONGEST_REST`].
pub fn rest_after(took: Duration) -> Duration {
    took.saturating_mul(REST_PER_BATCH)
        .clamp(PAUSE, LONGEST_REST)
}

/// The retention period a host keeps finished jobs by default.
pub const DEFAULT_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// How often the service looks for jobs past the retention period.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(3600);

/// Why an age (`--job-retention`, `--older-than`, `olderThan`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgeError {
    /// Nothing was given.
    #[error("the age is empty: write a duration such as `30d`, `12h` or `90m`")]
    Empty,
    /// A negative age.
    #[error("the age {0:?} is negative: write a duration such as `30d`, `12h` or `90m`")]
    Negative(String),
    /// Not a duration.
    #[error("{given:?} is not a duration ({reason}): write one such as `30d`, `12h` or `90m`")]
    Garbled {
        /// What was given.
        given: String,
        /// What the parser said.
        reason: String,
    },
    /// Longer than the clock can count back from now.
    #[error("the age {0:?} reaches back before 1970: write a shorter duration")]
    TooLong(String),
}

/// Parses an age: `30d`, `12h`, `90m`, `1d 12h`, `0s` (humantime's
/// durations). Negative and garbled ages are refused.
pub fn parse_age(text: &str) -> Result<Duration, AgeError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(AgeError::Empty);
    }
    if trimmed.starts_with('-') {
        return Err(AgeError::Negative(trimmed.to_owned()));
    }
    let age = humantime::parse_duration(trimmed).map_err(|e| AgeError::Garbled {
        given: trimmed.to_owned(),
        reason: e.to_string(),
    })?;
    if i64::try_from(age.as_millis()).map_or(true, |ms| ms > now_ms()) {
        return Err(AgeError::TooLong(trimmed.to_owned()));
    }
    Ok(age)
}

/// How long the service keeps finished jobs (`rescind serve
/// --job-retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobRetention {
    /// Forever (`off` or `0`): nothing is pruned.
    Off,
    /// Finished jobs older than this are deleted.
    Keep(Duration),
}

impl Default for JobRetention {
    fn default() -> Self {
        JobRetention::Keep(DEFAULT_KEEP)
    }
}

impl FromStr for JobRetention {
    type Err = AgeError;
    fn from_str(text: &str) -> Result<Self, AgeError> {
        match text.trim() {
            "off" | "0" => Ok(JobRetention::Off),
            other => match parse_age(other)? {
                age if age.is_zero() => Ok(JobRetention::Off),
                age => Ok(JobRetention::Keep(age)),
            },
        }
    }
}

/// What a prune deleted, and whether it deleted all it should.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Jobs and attempts deleted.
    pub pruned: Pruned,
    /// Jobs finished before this time (ms since the epoch) were deleted.
    pub finished_before_ms: i64,
    /// False when the prune stopped at its time limit with older finished
    /// jobs left (run it again).
    pub complete: bool,
}

/// Deletes the jobs that finished longer than `older_than` ago, batch by
/// batch, for at most `limit` (the rest is left for the next call). Counts
/// what it deleted in `metrics`.
pub async fn prune(
    store: &Store,
    metrics: &Metrics,
    older_than: Duration,
    limit: Duration,
) -> Result<PruneReport, StoreError> {
    let age_ms = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
    let finished_before_ms = now_ms().saturating_sub(age_ms);
    let started = Instant::now();
    let mut report = PruneReport {
        finished_before_ms,
        ..PruneReport::default()
    };
    loop {
        let batch_started = Instant::now();
        let batch = store.prune_finished_jobs(finished_before_ms, BATCH).await?;
        let took = batch_started.elapsed();
        metrics.jobs_pruned(batch);
        report.pruned.jobs += batch.jobs;
        report.pruned.attempts += batch.attempts;
        if batch.jobs < u64::from(BATCH) {
            report.complete = true;
            return Ok(report);
        }
        if started.elapsed() >= limit {
            return Ok(report);
        }
        tokio::time::sleep(rest_after(took)).await;
    }
}

/// Prunes by `retention` now and then every `every`, until `stop` turns
/// true. A failed prune is logged and tried again at the next turn.
pub async fn run_periodically(
    store: Store,
    metrics: Arc<Metrics>,
    keep: Duration,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        // However many there are: a turn ends when none is left, and one
        // turn at a time.
        let pass = prune(&store, &metrics, keep, Duration::MAX);
        let result = tokio::select! {
            result = pass => result,
            _ = stop.wait_for(|s| *s) => return,
        };
        match result {
            Ok(report) if report.pruned.jobs > 0 => tracing::info!(
                jobs = report.pruned.jobs,
                attempts = report.pruned.attempts,
                retention = %humantime::format_duration(keep),
                "pruned finished jobs past the retention period"
            ),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "pruning finished jobs failed; trying again later")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_and_bad_ones_are_refused_with_a_reason() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age(" 12h "), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_age("0s"), Ok(Duration::ZERO));
        assert!(matches!(parse_age("-5d"), Err(AgeError::Negative(_))));
        assert!(matches!(parse_age(""), Err(AgeError::Empty)));
        assert!(matches!(parse_age("soon"), Err(AgeError::Garbled { .. })));
        assert!(matches!(parse_age("30"), Err(AgeError::Garbled { .. })));
        assert!(matches!(parse_age("99999y"), Err(AgeError::TooLong(_))));
        let message = parse_age("-5d").unwrap_err().to_string();
        assert!(message.contains("negative"), "{message}");
    }

    #[test]
    fn a_prune_rests_seven_times_as_long_as_its_batch_took_within_bounds() {
        assert_eq!(rest_after(Duration::ZERO), PAUSE);
        assert_eq!(rest_after(Duration::from_millis(1)), PAUSE);
        assert_eq!(
            rest_after(Duration::from_millis(3)),
            Duration::from_millis(21)
        );
        assert_eq!(rest_after(Duration::from_secs(5)), LONGEST_REST);
        assert_eq!(rest_after(Duration::MAX), LONGEST_REST);
    }

    #[test]
    fn retention_is_on_by_default_and_off_by_name_or_zero() {
        assert_eq!(JobRetention::default(), JobRetention::Keep(DEFAULT_KEEP));
        assert_eq!("off".parse(), Ok(JobRetention::Off));
        assert_eq!("0".parse(), Ok(JobRetention::Off));
        assert_eq!("0d".parse(), Ok(JobRetention::Off));
        assert_eq!(
            "7d".parse(),
            Ok(JobRetention::Keep(Duration::from_secs(7 * 86_400)))
        );
        assert!("-1d".parse::<JobRetention>().is_err());
        assert!("forever".parse::<JobRetention>().is_err());
    }
}
