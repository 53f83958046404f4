//! Where telling the ERPs about one cancellation stands, as its customer
//! sees it: one state summing up the cancellation's jobs (`erpSync.state`
//! in the API).

use crate::store::{Job, JobState, PrunedJobs};

/// The aggregate state of a cancellation's ERP jobs. A failed job outweighs
/// every other state, since that ERP will not hear of the cancellation
/// without an operator; the cancellation has succeeded only when every ERP
/// has accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErpSyncState {
    /// No ERP will hear of the cancellation: no enabled job definition
    /// applied to it when it was committed.
    NotConfigured,
    /// Every job waits for its first attempt.
    Queued,
    /// Some job is being attempted and none failed or waits for a retry.
    Running,
    /// Some job waits for a retry after a passing failure, and none failed.
    Retrying,
    /// Every job was accepted by its ERP.
    Succeeded,
    /// Some job failed for good.
    Failed,
}

impl ErpSyncState {
    /// The state of a cancellation's `jobs`. `erp_configured` is what the
    /// cancellation recorded at commit: whether any job definition applied.
    /// `pruned` are its jobs the job retention deleted, each in the final
    /// state it had: they count as they did before they were deleted.
    pub fn of(erp_configured: bool, jobs: &[Job], pruned: PrunedJobs) -> ErpSyncState {
        let gone = |state: JobState, n: u64| {
            std::iter::repeat_n(state, usize::try_from(n).unwrap_or(usize::MAX))
        };
        ErpSyncState::of_states(
            erp_configured,
            jobs.iter()
                .map(|j| j.state)
                .chain(gone(JobState::Succeeded, pruned.succeeded))
                .chain(gone(JobState::Failed, pruned.failed)),
        )
    }

    fn of_states(
        erp_configured: bool,
        states: impl Iterator<Item = JobState> + Clone,
    ) -> ErpSyncState {
        let mut all = states.clone().peekable();
        if all.peek().is_none() {
            return if erp_configured {
                ErpSyncState::Queued
            } else {
                ErpSyncState::NotConfigured
            };
        }
        let any = |wanted: JobState| states.clone().any(|s| s == wanted);
        if all.all(|s| s == JobState::Succeeded) {
            ErpSyncState::Succeeded
        } else if any(JobState::Failed) {
            ErpSyncState::Failed
        } else if any(JobState::Retrying) {
            ErpSyncState::Retrying
        } else if any(JobState::Running) {
            ErpSyncState::Running
        } else {
            ErpSyncState::Queued
        }
    }

    /// The state's name in the API: `not-configured`, `queued`, `running`,
    /// `retrying`, `succeeded` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErpSyncState::NotConfigured => "not-configured",
            ErpSyncState::Queued => "queued",
            ErpSyncState::Running => "running",
            ErpSyncState::Retrying => "retrying",
            ErpSyncState::Succeeded => "succeeded",
            ErpSyncState::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use JobState::{Failed, Queued, Retrying, Running, Succeeded};

    fn sample_job() -> Job {
        Job {
            id: "j".to_owned(),
            definition: "OrderCancel".to_owned(),
            order_number: "SO-1".to_owned(),
            cancellation_id: Some("c".to_owned()),
            request_id: "r".to_owned(),
            parameters: Default::default(),
            state: Queued,
            attempts: 0,
            retry: Default::default(),
            run_at_ms: 0,
            erp_reference: None,
            last_error: None,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn the_jobs_sum_up_to_the_state_a_customer_sees() {
        let cases: &[(bool, &[JobState], ErpSyncState)] = &[
            (false, &[], ErpSyncState::NotConfigured),
            (true, &[], ErpSyncState::Queued),
            (true, &[Queued], ErpSyncState::Queued),
            (true, &[Succeeded], ErpSyncState::Succeeded),
            (true, &[Succeeded, Succeeded], ErpSyncState::Succeeded),
            (true, &[Succeeded, Queued], ErpSyncState::Queued),
            (true, &[Succeeded, Running], ErpSyncState::Running),
            (true, &[Running, Retrying], ErpSyncState::Retrying),
            (true, &[Retrying, Failed, Running], ErpSyncState::Failed),
            (true, &[Succeeded, Failed], ErpSyncState::Failed),
        ];
        for (configured, states, expected) in cases {
            // Pruned jobs count as the jobs they were.
            let succeeded = states.iter().filter(|s| **s == Succeeded).count() as u64;
            let failed = states.iter().filter(|s| **s == Failed).count() as u64;
            let left: Vec<JobState> = states
                .iter()
                .copied()
                .filter(|s| !matches!(s, Succeeded | Failed))
                .collect();
            let jobs: Vec<Job> = left
                .iter()
                .map(|state| Job {
                    state: *state,
                    ..sample_job()
                })
                .collect();
            assert_eq!(
                ErpSyncState::of(*configured, &jobs, PrunedJobs { succeeded, failed }),
                *expected,
                "{states:?} with the finished ones pruned"
            );
            assert_eq!(
                ErpSyncState::of_states(*configured, states.iter().copied()),
                *expected,
                "{states:?}"
            );
        }
    }
}
