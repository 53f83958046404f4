//! How the pool's workers write the results of their attempts and claim
//! their next jobs: the attempts that end together are written in one
//! transaction.
//!
//! A busy worker moves from one job to the next with one write: its
//! attempt's record and the claim of its next job. The pool's claims take
//! turns (the lanes' lock), so that two workers cannot both take the last
//! place of a definition's share of retries; with one transaction per
//! worker, each delivery waited for every other one's whole transaction. So
//! a worker leaves its record with the [`Recorder`] and waits for the turn.
//! The one that gets it writes every record left so far in one
//! transaction, each followed by its worker's claim (a claim sees the share
//! as the records before it left it), and answers them all before it gives
//! the turn up: a worker that gets the turn after its record was written
//! finds its answer waiting. Alone, a worker writes its own record at once,
//! as a group of one, with no other task in between.
//!
//! When the group's transaction fails, nothing of it was written; each
//! record is then written again in a transaction of its own, so that a
//! record the store refuses fails alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Notify, oneshot, watch};

use super::worker::RetryLanes;
use crate::store::{AttemptResult, ClaimedJob, JobWrites, Store, StoreError};

/// What a worker is told once its record is written: whether the result
/// was recorded (false: the lease was lost, and nothing of the attempt was
/// written), and the job it claimed with it, with the moment before its
/// lease was asked for.
type Recorded = (Result<bool, StoreError>, Option<(ClaimedJob, Instant)>);

/// An attempt's result on its way to the store.
struct Record {
    /// The worker that ran it (and holds the lease).
    worker: String,
    /// The job as the worker claimed it.
    claimed: ClaimedJob,
    /// What to record.
    result: AttemptResult,
    /// Whether to claim the worker's next job with it.
    claim_next: bool,
    /// Where the answer goes.
    reply: oneshot::Sender<Recorded>,
}

/// Where the pool's workers leave their records; shared by them.
pub(super) struct Recorder {
    store: Store,
    lanes: Arc<RetryLanes>,
    wakeup: Arc<Notify>,
    /// The pool's lease length, in ms.
    lease_ms: i64,
    /// Set when the pool stops: records are still written, but no new job
    /// is claimed.
    stop: watch::Receiver<bool>,
    /// Records left by workers waiting for the turn.
    waiting: std::sync::Mutex<Vec<Record>>,
}

/// One record's answer in a group, before it is sent.
struct Answer {
    recorded: bool,
    next: Option<ClaimedJob>,
}

impl Answer {
    /// What the worker is told, its next job's lease asked for no earlier
    /// than `claimed_at`.
    fn into_recorded(self, claimed_at: Instant) -> Recorded {
        (Ok(self.recorded), self.next.map(|job| (job, claimed_at)))
    }
}

impl Recorder {
    /// The recorder of a pool whose leases last `lease_ms`.
    pub(super) fn new(
        store: Store,
        lanes: Arc<RetryLanes>,
        wakeup: Arc<Notify>,
        lease_ms: i64,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Recorder {
            store,
            lanes,
            wakeup,
            lease_ms,
            stop,
            waiting: std::sync::Mutex::default(),
        }
    }

    /// Records `worker`'s attempt of `claimed` and, when `claim_next`,
    /// claims the worker's next job with it: leaves the record and waits
    /// until it is written, by this worker or by the one that has the turn.
    /// The attempt's place in its definition's share of retries (when it is
    /// a retry) is given back first, so that the claim sees the share as it
    /// is once the attempt is recorded.
    pub(super) async fn record(
        &self,
        worker: &str,
        claimed: &ClaimedJob,
        result: &AttemptResult,
        claim_next: bool,
    ) -> Recorded {
        let (reply, mut answer) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Record {
                worker: worker.to_owned(),
                claimed: claimed.clone(),
                result: result.clone(),
                claim_next,
                reply,
            });
        tokio::select! {
            biased;
            written = &mut answer => written.unwrap_or((Err(StoreError::Closed), None)),
            running = self.lanes.running.lock() => {
                // Every group is answered before the turn is given up: if
                // this record is not answered yet, it is still waiting.
                if let Ok(written) = answer.try_recv() {
                    return written;
                }
                let group = std::mem::take(
                    &mut *self.waiting.lock().unwrap_or_else(|p| p.into_inner()),
                );
                self.write(group, running).await;
                answer.await.unwrap_or((Err(StoreError::Closed), None))
            }
        }
    }

    /// Writes a group and answers each of its workers, holding the turn.
    async fn write(
        &self,
        group: Vec<Record>,
        mut running: tokio::sync::MutexGuard<'_, BTreeMap<String, usize>>,
    ) {
        let stopping = *self.stop.borrow();
        // The retry places the group's attempts held are given back whether
        // or not their records are written: the attempts are over.
        let mut woken = false;
        for record in &group {
            if record.claimed.attempt_in_round > 1 {
                woken |= self
                    .lanes
                    .leave(&mut running, &record.claimed.job.definition);
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
                for (record, answer) in group.into_iter().zip(answers) {
                    let _ = record.reply.send(answer.into_recorded(claimed_at));
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
            }
            Err(e) => {
                if let Some(record) = group.into_iter().next() {
                    let _ = record.reply.send((Err(e), None));
                }
            }
        }
        drop(running);
        if woken {
            self.wakeup.notify_waiters();
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
        match self
            .write_group(std::slice::from_ref(record), stopping, &mut lanes)
            .await
        {
            Ok(mut answers) => {
                *running = lanes;
                match answers.pop() {
                    Some(answer) => answer.into_recorded(claimed_at),
                    None => (Ok(false), None),
                }
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
