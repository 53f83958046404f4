//! The pool's recorder: one task that writes the results of the workers'
//! attempts and claims their next jobs, a group of workers per write
//! transaction.
//!
//! A busy worker moves from one job to the next with one write: its
//! attempt's record and the claim of its next job. Each of those writes
//! used to be a transaction of its own, and the claims of the pool take
//! turns (so that two workers cannot both take the last place of a
//! definition's share of retries): with many workers, each delivery waited
//! for every other one's whole transaction. The recorder takes whatever
//! records are waiting when it is free and writes them in one transaction,
//! each record followed by its worker's claim, so that a claim sees the
//! share as the records before it left it. Alone, a record is a group of
//! one, and waits for nothing.
//!
//! When the group's transaction fails, nothing of it was written; each
//! record is then written again in a transaction of its own, so that a
//! record the store refuses fails alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::worker::RetryLanes;
use crate::store::{AttemptResult, ClaimedJob, JobWrites, Store, StoreError};

/// Most records written in one transaction.
const MAX_GROUP: usize = 64;

/// What a worker is told once its record is written: whether the result
/// was recorded (false: the lease was lost, and nothing of the attempt was
/// written), and the job it claimed with it, with the moment before its
/// lease was asked for.
pub(super) type Recorded = (Result<bool, StoreError>, Option<(ClaimedJob, Instant)>);

/// An attempt's result on its way to the store.
pub(super) struct Record {
    /// The worker that ran it (and holds the lease).
    pub worker: String,
    /// The job as the worker claimed it.
    pub claimed: ClaimedJob,
    /// What to record.
    pub result: AttemptResult,
    /// Whether to claim the worker's next job with it.
    pub claim_next: bool,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Recorded>,
}

/// The recorder task's side: the pool's store, lanes and wake-up.
pub(super) struct Recorder {
    pub store: Store,
    pub lanes: Arc<RetryLanes>,
    pub wakeup: Arc<Notify>,
    /// The pool's lease length, in ms.
    pub lease_ms: i64,
    /// Set when the pool stops: records are still written, but no new job
    /// is claimed.
    pub stop: watch::Receiver<bool>,
}

/// One record's answer in a group, before it is sent.
struct Answer {
    recorded: bool,
    next: Option<ClaimedJob>,
}

impl Recorder {
    /// Writes records until every worker has dropped its sender.
    pub(super) async fn run(self, mut records: mpsc::Receiver<Record>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while let Some(record) = records.recv().await {
            group.push(record);
            while group.len() < MAX_GROUP {
                match records.try_recv() {
                    Ok(record) => group.push(record),
                    Err(_) => break,
                }
            }
            self.write(std::mem::take(&mut group)).await;
        }
    }

    /// Writes a group and answers each of its workers.
    async fn write(&self, group: Vec<Record>) {
        let stopping = *self.stop.borrow();
        let mut running = self.lanes.running.lock().await;
        // The retry places the group's attempts held are given back whether
        // or not their records are written: the attempts are over.
        let mut woken = false;
        for record in &group {
            if record.claimed.attempt_in_round > 1 {
                woken |= self.lanes.leave(&mut running, &record.claimed.job.definition);
            }
        }
        // Taken before the claims: each lease the store grants runs from a
        // moment no earlier than this one.
        let claimed_at = Instant::now();
        // The claims enter a copy of the lanes, kept only if the group
        // commits.
        let mut lanes = running.clone();
        match self.write_group(&group, stopping, &mut lanes).await {
            Ok(answers) => {
                *running = lanes;
                drop(running);
                if woken {
                    self.wakeup.notify_waiters();
                }
                for (record, answer) in group.into_iter().zip(answers) {
                    let next = answer.next.map(|job| (job, claimed_at));
                    let _ = record.reply.send((Ok(answer.recorded), next));
                }
            }
            Err(e) if group.len() > 1 => {
                tracing::warn!(
                    error = %e,
                    records = group.len(),
                    "a group of attempt records failed; writing each alone"
                );
                for record in group {
                    let answer = self.write_alone(&record, stopping, &mut running).await;
                    let _ = record.reply.send(answer);
                }
                drop(running);
                if woken {
                    self.wakeup.notify_waiters();
                }
            }
            Err(e) => {
                drop(running);
                if woken {
                    self.wakeup.notify_waiters();
                }
                if let Some(record) = group.into_iter().next() {
                    let _ = record.reply.send((Err(e), None));
                }
            }
        }
    }

    /// The group's transaction: each record, then its worker's claim.
    async fn write_group(
        &self,
        group: &[Record],
        stopping: bool,
        lanes: &mut BTreeMap<String, usize>,
    ) -> Result<Vec<Answer>, StoreError> {
        let mut writes = self.store.job_writes().await?;
        let mut answers = Vec::with_capacity(group.len());
        for record in group {
            let answer = self.write_one(&mut writes, record, stopping, lanes).await?;
            answers.push(answer);
        }
        writes.commit().await?;
        Ok(answers)
    }

    /// One record alone, in its own transaction.
    async fn write_alone(
        &self,
        record: &Record,
        stopping: bool,
        running: &mut BTreeMap<String, usize>,
    ) -> Recorded {
        let claimed_at = Instant::now();
        let mut lanes = running.clone();
        let written = async {
            let mut writes = self.store.job_writes().await?;
            let answer = self
                .write_one(&mut writes, record, stopping, &mut lanes)
                .await?;
            writes.commit().await?;
            Ok::<_, StoreError>(answer)
        }
        .await;
        match written {
            Ok(answer) => {
                *running = lanes;
                (
                    Ok(answer.recorded),
                    answer.next.map(|job| (job, claimed_at)),
                )
            }
            Err(e) => (Err(e), None),
        }
    }

    /// Records one attempt and, unless the pool is stopping, claims its
    /// worker's next job, passing over the retries of the definitions that
    /// hold their share in `lanes` (which the claimed job then enters).
    async fn write_one(
        &self,
        writes: &mut JobWrites,
        record: &Record,
        stopping: bool,
        lanes: &mut BTreeMap<String, usize>,
    ) -> Result<Answer, StoreError> {
        let recorded = writes
            .finish(&record.claimed, &record.worker, &record.result)
            .await?;
        let mut next = None;
        if record.claim_next && !stopping {
            let held = RetryLanes::held(lanes, self.lanes.share);
            next = writes
                .claim(&record.worker, 1, self.lease_ms, &held)
                .await?
                .into_iter()
                .next();
            if let Some(job) = &next {
                RetryLanes::enter(lanes, job);
            }
        }
        Ok(Answer { recorded, next })
    }
}
