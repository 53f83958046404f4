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
//! as a group of one, with no other task in between. On SQLite the group's
//! transaction runs on the store's writer thread, one trip there and back
//! for the whole group ([`Store::record_attempts`]).
//!
//! When the group's transaction fails, nothing of it was written; each
//! record is then written again in a transaction of its own, so that a
//! record the store refuses fails alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Notify, oneshot, watch};

use super::worker::RetryLanes;
use crate::store::{
    AttemptRecord, AttemptResult, ClaimedJob, RecordedAttempt, RetryShares, Store, StoreError,
};

/// What a worker is told once its record is written: whether the result
/// was recorded (false: the lease was lost, and nothing of the attempt was
/// written), and the job it claimed with it, with the moment before its
/// lease was asked for.
type Recorded = (Result<bool, StoreError>, Option<(ClaimedJob, Instant)>);

/// An attempt's result on its way to the store, and where its answer goes.
struct Record {
    record: AttemptRecord,
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

/// A copy of the pool's retry lanes for a group's claims: kept only if the
/// group commits.
struct Shares {
    running: BTreeMap<String, usize>,
    share: usize,
}

impl RetryShares for Shares {
    fn held(&self) -> Vec<String> {
        RetryLanes::held(&self.running, self.share)
    }

    fn enter(&mut self, job: &ClaimedJob) {
        RetryLanes::enter(&mut self.running, job);
    }
}

/// What the worker is told of a record written, its next job's lease asked
/// for no earlier than `claimed_at`.
fn into_recorded(answer: RecordedAttempt, claimed_at: Instant) -> Recorded {
    (
        Ok(answer.recorded),
        answer.next.map(|job| (job, claimed_at)),
    )
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
                record: AttemptRecord {
                    worker: worker.to_owned(),
                    claimed: claimed.clone(),
                    result: result.clone(),
                    claim_next,
                },
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
        let mut freed: Vec<String> = Vec::new();
        let (mut records, replies): (Vec<AttemptRecord>, Vec<_>) =
            group.into_iter().map(|r| (r.record, r.reply)).unzip();
        for record in &mut records {
            // `leave` answers true only while the share is full, so once
            // per definition in a group.
            let definition = &record.claimed.job.definition;
            if record.claimed.attempt_in_round > 1 && self.lanes.leave(&mut running, definition) {
                freed.push(definition.clone());
            }
            record.claim_next &= !stopping;
        }
        // Taken before the claims: each lease the store grants runs from a
        // moment no earlier than this one.
        let claimed_at = Instant::now();
        match self.write_group(&records, &running).await {
            Ok((answers, lanes)) => {
                *running = lanes;
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(into_recorded(answer, claimed_at));
                }
            }
            Err(e) if records.len() > 1 => {
                tracing::warn!(
                    error = %e,
                    records = records.len(),
                    "a group of attempt records failed; writing each alone"
                );
                for (record, reply) in records.iter().zip(replies) {
                    let answer = self.write_alone(record, &mut running).await;
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send((Err(e), None));
                }
            }
        }
        // The idle workers passed over the retries of the definitions that
        // held their whole share; they are woken only for a share that has
        // a place left once the group's claims are made. A worker that
        // claimed the next retry of the same definition with its record
        // filled the place again, and waking every idle worker for it
        // would only have them claim nothing and go back to sleep, each
        // after a trip to the store while holding the turn (a definition
        // that always fails would do this after every attempt).
        let woken = self.lanes.any_reopened(&freed, &running);
        drop(running);
        if woken {
            self.wakeup.notify_waiters();
        }
    }

    /// The group's transaction: each record, then its worker's claim, on a
    /// copy of the lanes; answers the copy as the claims left it.
    async fn write_group(
        &self,
        records: &[AttemptRecord],
        running: &BTreeMap<String, usize>,
    ) -> Result<(Vec<RecordedAttempt>, BTreeMap<String, usize>), StoreError> {
        let shares = Shares {
            running: running.clone(),
            share: self.lanes.share,
        };
        let (answers, shares) = self
            .store
            .record_attempts(records, self.lease_ms, shares)
            .await?;
        Ok((answers, shares.running))
    }

    /// One record alone, in its own transaction.
    async fn write_alone(
        &self,
        record: &AttemptRecord,
        running: &mut BTreeMap<String, usize>,
    ) -> Recorded {
        let claimed_at = Instant::now();
        match self
            .write_group(std::slice::from_ref(record), running)
            .await
        {
            Ok((mut answers, lanes)) => {
                *running = lanes;
                match answers.pop() {
                    Some(answer) => into_recorded(answer, claimed_at),
                    None => (Ok(false), None),
                }
            }
            Err(e) => (Err(e), None),
        }
    }
}
