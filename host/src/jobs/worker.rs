//! The worker pool and one attempt of a job.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::PluginProcessors;
use super::backoff::{RetryDecision, after_transient_failure};
use super::recorder::Recorder;
use crate::metrics::Metrics;
use crate::plugins::{CallOutcome, ConnectionContext, RecordedExchanges, SendWindow};
use crate::store::{
    AttemptLogLine, AttemptResult, CancellationRecord, ClaimedJob, JobState, Store, StoreError,
    now_ms,
};

/// Everything an integration processor is given for one attempt.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The job this attempt belongs to.
    pub job_id: String,
    /// The cancellation to tell the ERP about.
    pub cancellation: CancellationRecord,
    /// The ERP idempotency key: the job's request id, the same every attempt.
    pub request_id: String,
    /// This attempt's number (1-based).
    pub attempt: u32,
    /// The job's parameters.
    pub parameters: BTreeMap<String, String>,
    /// The ERP connection as the plugin sees it (secrets included: the
    /// plugin may ask for them).
    pub connection: ConnectionContext,
}

/// How an attempt ended: the plugin call's own outcome, or no call at all
/// because the job names no plugin that can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The plugin ran (or the attempt ended before it could, with the
    /// outcome a call would have had: a misconfiguration, a store failure
    /// worth retrying).
    Call(CallOutcome),
    /// No plugin of that name is loaded, or it has no active version.
    UnknownProcessor(String),
}

impl DeliveryOutcome {
    /// The outcome's name as recorded with the attempt.
    pub fn name(&self) -> &'static str {
        match self {
            DeliveryOutcome::Call(outcome) => match outcome {
                CallOutcome::Accepted { .. } => "accepted",
                CallOutcome::Rejected(_) => "rejected",
                CallOutcome::Transient(_) => "transient",
                CallOutcome::Misconfigured(_) => "misconfigured",
                CallOutcome::Trapped(_) => "trapped",
                CallOutcome::DeadlineExceeded(_) => "deadline-exceeded",
                CallOutcome::MemoryCapExceeded(_) => "memory-cap-exceeded",
            },
            DeliveryOutcome::UnknownProcessor(_) => "unknown-processor",
        }
    }

    /// The outcome's message, if it has one.
    pub(super) fn message(&self) -> Option<String> {
        match self {
            DeliveryOutcome::Call(outcome) => match outcome {
                CallOutcome::Accepted { message, .. } => message.clone(),
                CallOutcome::Rejected(m)
                | CallOutcome::Transient(m)
                | CallOutcome::Misconfigured(m)
                | CallOutcome::Trapped(m) => Some(m.clone()),
                CallOutcome::DeadlineExceeded(d) => {
                    Some(format!("the plugin ran past its deadline of {d:?}"))
                }
                CallOutcome::MemoryCapExceeded(bytes) => Some(format!(
                    "the plugin tried to use more than its memory cap of {bytes} bytes"
                )),
            },
            DeliveryOutcome::UnknownProcessor(name) => {
                Some(format!("no integration processor named {name:?} is loaded"))
            }
        }
    }

    /// Whether another attempt may succeed.
    fn is_transient(&self) -> bool {
        matches!(self, DeliveryOutcome::Call(outcome) if outcome.is_retryable())
    }

    /// The ERP's reference, when it accepted.
    fn erp_reference(&self) -> Option<String> {
        match self {
            DeliveryOutcome::Call(CallOutcome::Accepted { erp_reference, .. }) => {
                erp_reference.clone()
            }
            _ => None,
        }
    }
}

impl From<CallOutcome> for DeliveryOutcome {
    fn from(outcome: CallOutcome) -> Self {
        DeliveryOutcome::Call(outcome)
    }
}

/// What one attempt produced.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// How it ended.
    pub outcome: DeliveryOutcome,
    /// The plugin's log lines (bounded, secrets redacted by the runtime).
    pub log: Vec<AttemptLogLine>,
    /// What the plugin sent to the ERP and what it answered (bounded,
    /// secrets redacted by the runtime); `None` when no plugin ran.
    pub exchange: Option<RecordedExchanges>,
    /// Wall time of the call.
    pub elapsed: Duration,
    /// The plugin version that ran, e.g. `sha256:…`.
    pub plugin_version: Option<String>,
}

impl Delivery {
    /// An attempt that ended before any plugin ran.
    pub fn without_call(outcome: DeliveryOutcome) -> Self {
        Delivery {
            outcome,
            log: Vec::new(),
            exchange: None,
            elapsed: Duration::ZERO,
            plugin_version: None,
        }
    }
}

/// Worker pool settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Number of workers (each runs one attempt at a time).
    pub workers: usize,
    /// How long a claim holds a job without news from its worker. A running
    /// attempt renews it every third of this, so an attempt may outlast it
    /// (waiting for a plugin slot, loading the plugin); a worker that died
    /// stops renewing, and its job is taken up once the lease expires.
    pub lease: Duration,
    /// How often an idle worker looks for due jobs (it is also woken when
    /// jobs are enqueued).
    pub poll_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            workers: 2,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// How many of a pool's workers the retries of one job definition may hold
/// at once: half of them, rounded up. A definition whose every attempt
/// fails (a plugin that traps, an ERP that is down) is retried again and
/// again; without a share its retries would hold every worker, and the
/// first attempts of every other definition would wait behind them.
/// First attempts have no share: a definition with work to do may use the
/// whole pool.
pub fn retry_share(workers: usize) -> usize {
    workers.max(1).div_ceil(2)
}

/// The retries each definition's workers are running now, in this pool.
#[derive(Debug)]
pub(super) struct RetryLanes {
    pub(super) share: usize,
    pub(super) running: tokio::sync::Mutex<BTreeMap<String, usize>>,
}

impl RetryLanes {
    /// Gives back a place in `definition`'s share; answers whether the
    /// definition held its whole share before.
    pub(super) fn leave(&self, running: &mut BTreeMap<String, usize>, definition: &str) -> bool {
        let Some(n) = running.get_mut(definition) else {
            return false;
        };
        let was_full = *n >= self.share;
        *n -= 1;
        if *n == 0 {
            running.remove(definition);
        }
        was_full
    }

    /// Takes a place in the share of `job`'s definition if it is a retry.
    pub(super) fn enter(running: &mut BTreeMap<String, usize>, job: &ClaimedJob) {
        if job.attempt_in_round > 1 {
            *running.entry(job.job.definition.clone()).or_default() += 1;
        }
    }

    /// Whether any of `freed`, definitions that held their whole share
    /// before some of their retries ended, has a place left in `running`
    /// (the lanes once the claims made with those retries' records are
    /// counted): only then may a worker that passed over their retries
    /// claim one now.
    pub(super) fn any_reopened(&self, freed: &[String], running: &BTreeMap<String, usize>) -> bool {
        freed
            .iter()
            .any(|definition| running.get(definition).copied().unwrap_or(0) < self.share)
    }

    /// The definitions whose retries hold their whole share.
    pub(super) fn held(running: &BTreeMap<String, usize>, share: usize) -> Vec<String> {
        running
            .iter()
            .filter(|(_, n)| **n >= share)
            .map(|(definition, _)| definition.clone())
            .collect()
    }
}

/// What a worker does after an attempt.
#[derive(Debug, Default)]
struct AfterAttempt {
    /// The job claimed with the attempt's record, to attempt next.
    next: Option<(ClaimedJob, Instant)>,
    /// Whether the attempt's place in its definition's share of retries
    /// was given back with the record.
    lane_left: bool,
}

/// What an attempt submits, read before it runs.
struct Prepared {
    /// The definition's integration processor.
    processor: String,
    /// What the processor is given.
    submission: Submission,
    /// Whether the processor's plugin had a shadow run that may still take
    /// a job when the input was read: only then is the job offered to it.
    shadow_run_wants_jobs: bool,
}

/// Running workers.
#[derive(Debug)]
pub struct WorkerPool {
    ids: Vec<String>,
    handles: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    store: Store,
}

struct Worker {
    id: String,
    store: Store,
    lanes: Arc<RetryLanes>,
    /// Where the pool's workers leave the records of their attempts.
    recorder: Arc<Recorder>,
    processors: Arc<PluginProcessors>,
    metrics: Arc<Metrics>,
    wakeup: Arc<Notify>,
    config: WorkerConfig,
}

impl WorkerPool {
    /// Starts `config.workers` workers.
    pub fn start(
        store: Store,
        processors: Arc<PluginProcessors>,
        metrics: Arc<Metrics>,
        wakeup: Arc<Notify>,
        config: WorkerConfig,
    ) -> WorkerPool {
        let (stop, _) = watch::channel(false);
        let plugins = processors.registry().runtime().clone();
        // On an SQLite store the workers run on the plugin threads: their
        // calls need no hop there (two thread wake-ups each), and their
        // own work never takes a thread of the API. Not on PostgreSQL: a
        // database connection a worker opened would belong to the plugin
        // threads' I/O driver, and a request of the API that used it later
        // would wait for a low-priority thread, perhaps busy with a looping
        // plugin, to learn that its query was answered.
        let on_plugin_threads = store.backend() == "sqlite";
        // A fresh instance id per start: a restarted host never mistakes a
        // lease of its previous life for its own.
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let mut ids = Vec::new();
        let mut handles = Vec::new();
        let lanes = Arc::new(RetryLanes {
            share: retry_share(config.workers),
            running: tokio::sync::Mutex::default(),
        });
        let recorder = Arc::new(Recorder::new(
            store.clone(),
            Arc::clone(&lanes),
            Arc::clone(&wakeup),
            i64::try_from(config.lease.as_millis()).unwrap_or(i64::MAX),
            stop.subscribe(),
        ));
        for n in 0..config.workers.max(1) {
            let id = format!("worker-{}-{n}", &instance[..8]);
            let worker = Worker {
                id: id.clone(),
                store: store.clone(),
                lanes: Arc::clone(&lanes),
                recorder: Arc::clone(&recorder),
                processors: Arc::clone(&processors),
                metrics: Arc::clone(&metrics),
                wakeup: Arc::clone(&wakeup),
                config: config.clone(),
            };
            let run = worker.run(stop.subscribe());
            handles.push(if on_plugin_threads {
                plugins.spawn(run)
            } else {
                tokio::spawn(run)
            });
            ids.push(id);
        }
        WorkerPool {
            ids,
            handles,
            stop,
            store,
        }
    }

    /// Whether every worker is still running.
    pub fn running(&self) -> bool {
        self.handles.iter().all(|h| !h.is_finished())
    }

    /// Stops claiming, lets running attempts finish up to `grace`, then
    /// stops the rest and gives their jobs back to the queue.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        for handle in std::mem::take(&mut self.handles) {
            let abort = handle.abort_handle();
            if tokio::time::timeout_at(deadline, handle).await.is_err() {
                abort.abort();
            }
        }
        for id in &self.ids {
            match self.store.release_jobs(id).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(worker = %id, jobs = n, "released unfinished jobs"),
                Err(e) => tracing::error!(worker = %id, error = %e, "cannot release jobs"),
            }
        }
    }
}

/// A pool dropped without [`WorkerPool::shutdown`] stops its workers at
/// once, as a crash would: their jobs stay claimed until their leases
/// expire. (On the plugin threads they would otherwise keep going after
/// whatever started them is gone.)
impl Drop for WorkerPool {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

impl Worker {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::debug!(worker = %self.id, "worker started");
        // The job claimed in the transaction that recorded the last one:
        // a claimed job is attempted, stopping or not, as one claimed alone.
        let mut next: Option<(ClaimedJob, Instant)> = None;
        loop {
            let (job, claimed_at) = match next.take() {
                Some(claimed) => claimed,
                None => {
                    if *stop.borrow() {
                        break;
                    }
                    // Taken before the claim: the lease the store grants
                    // runs from a moment no earlier than this one.
                    let claimed_at = Instant::now();
                    let (claimed, held) = self.claim().await;
                    let Some(job) = claimed else {
                        let wait = self.idle_wait(&held).await;
                        tokio::select! {
                            _ = self.wakeup.notified() => {}
                            _ = tokio::time::sleep(wait) => {}
                            _ = stop.changed() => {}
                        }
                        continue;
                    };
                    (job, claimed_at)
                }
            };
            let retry = (job.attempt_in_round > 1).then(|| job.job.definition.clone());
            let after = self.attempt(job, claimed_at, &stop).await;
            if let Some(definition) = retry
                && !after.lane_left
            {
                self.leave_lane(&definition).await;
            }
            next = after.next;
        }
        tracing::debug!(worker = %self.id, "worker stopped");
    }

    /// Claims the next due job, passing over the retries of definitions
    /// that hold their share of the pool; answers the job, if any, and the
    /// definitions passed over. The pool's claims take turns, so that two
    /// workers cannot both take the last place of a definition's share.
    async fn claim(&self) -> (Option<ClaimedJob>, Vec<String>) {
        let lease_ms = i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX);
        let mut running = self.lanes.running.lock().await;
        let held = RetryLanes::held(&running, self.lanes.share);
        let claimed = match self
            .store
            .claim_due_jobs_passing_over(&self.id, 1, lease_ms, &held)
            .await
        {
            Ok(claimed) => claimed.into_iter().next(),
            Err(e) => {
                tracing::error!(worker = %self.id, error = %e, "cannot claim jobs");
                None
            }
        };
        if let Some(job) = &claimed {
            RetryLanes::enter(&mut running, job);
        }
        (claimed, held)
    }

    /// Gives back a place in `definition`'s share of the pool; wakes the
    /// idle workers when the definition held its whole share, since they
    /// may have passed over its retries.
    async fn leave_lane(&self, definition: &str) {
        let mut running = self.lanes.running.lock().await;
        if self.lanes.leave(&mut running, definition) {
            self.wakeup.notify_waiters();
        }
    }

    /// Sleeps no longer than until the next job it may claim is due.
    async fn idle_wait(&self, held: &[String]) -> Duration {
        match self.store.next_due_ms_passing_over(held).await {
            Ok(Some(due)) => {
                let ms = (due - now_ms()).clamp(1, 1_000_000);
                Duration::from_millis(ms as u64).min(self.config.poll_interval)
            }
            _ => self.config.poll_interval,
        }
    }

    async fn attempt(
        &self,
        claimed: ClaimedJob,
        claimed_at: Instant,
        stop: &watch::Receiver<bool>,
    ) -> AfterAttempt {
        let job = &claimed.job;
        let span = tracing::info_span!(
            "job",
            job = %job.id,
            definition = %job.definition,
            order = %job.order_number,
            attempt = claimed.attempt,
            request_id = %job.request_id,
        );
        self.run_attempt(&claimed, claimed_at, stop)
            .instrument(span)
            .await
    }

    async fn run_attempt(
        &self,
        claimed: &ClaimedJob,
        claimed_at: Instant,
        stop: &watch::Receiver<bool>,
    ) -> AfterAttempt {
        // The plugin may send requests while the lease is surely ours; the
        // heartbeat moves the window on with each renewal.
        let window = SendWindow::until(self.send_until(claimed_at));
        // Waiting for an instance slot and loading the plugin come before
        // the plugin's deadline starts: the heartbeat keeps the lease for as
        // long as the attempt is alive, whatever that takes.
        let attempt = async {
            match self.prepare(claimed).await {
                Ok(prepared) => {
                    let delivery = self
                        .processors
                        .submit(&prepared.processor, &prepared.submission, Some(&window))
                        .await;
                    (Some(prepared), delivery)
                }
                Err(outcome) => (None, Delivery::without_call(outcome)),
            }
        };
        let (prepared, delivery) = tokio::select! {
            done = attempt => done,
            () = self.keep_lease(claimed, claimed_at, &window) => {
                // Another worker may run the job now: stop this attempt
                // rather than deliver twice at once; its outcome is not ours
                // to record.
                tracing::warn!("lease lost while the attempt ran; attempt stopped");
                return AfterAttempt::default();
            }
        };
        let recorded = delivery.clone();
        self.metrics
            .job_attempt(delivery.outcome.name(), delivery.elapsed.as_secs_f64());
        let result = self.decide(claimed, delivery);
        tracing::info!(outcome = %result.outcome, next = result.next.as_str(), "attempt finished");
        // A worker that goes on claims its next job as it records this one.
        // The attempt's place in its definition's share of retries is
        // given back with the record, before the claim.
        let claim_next = !*stop.borrow();
        let (stored, next) = self
            .recorder
            .record(&self.id, claimed, &result, claim_next)
            .await;
        let after = AfterAttempt {
            next,
            lane_left: true,
        };
        match stored {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("lease lost before the result was recorded");
                return after;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot record the attempt");
                return after;
            }
        }
        // Only an outcome that was recorded counts toward an activation
        // guard: a lost lease means another attempt's outcome will.
        let Some(prepared) = prepared else {
            return after;
        };
        let requeue = self
            .processors
            .attempt_recorded(&prepared.processor, &claimed.job.id, &recorded)
            .await;
        if !requeue.is_empty() {
            match self.store.requeue_jobs(&requeue).await {
                Ok(n) => {
                    tracing::info!(
                        jobs = n,
                        "re-queued jobs that failed on a rolled-back plugin"
                    );
                    self.wakeup.notify_waiters();
                }
                Err(e) => tracing::error!(error = %e, "cannot re-queue jobs after a rollback"),
            }
        }
        // Last: the job is settled, and the worker's next attempt waits
        // for this call, which never leaves the host (the next job's lease
        // is renewed on time meanwhile, counted from its claim).
        if prepared.shadow_run_wants_jobs {
            self.processors
                .shadow(
                    &self.store,
                    &prepared.processor,
                    &prepared.submission,
                    &recorded,
                )
                .await;
        }
        after
    }

    /// Renews the job's lease every third of its length, counted from the
    /// claim (`claimed_at`: a job claimed with the previous one's record
    /// waits for that one's last steps), while the attempt runs; returns
    /// only when the lease is lost. A failed renewal (the store busy or
    /// down) is tried again at the next beat: the lease still has two
    /// thirds to run.
    async fn keep_lease(&self, claimed: &ClaimedJob, claimed_at: Instant, window: &SendWindow) {
        let lease_ms = i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX);
        let beat = self.config.lease / 3;
        let mut granted = claimed_at;
        loop {
            tokio::time::sleep_until((granted + beat).into()).await;
            let asked = Instant::now();
            granted = asked;
            match self.store.renew_lease(claimed, &self.id, lease_ms).await {
                Ok(true) => window.extend_to(self.send_until(asked)),
                Ok(false) => return,
                Err(e) => tracing::error!(error = %e, "cannot renew the job's lease"),
            }
        }
    }

    /// Until when an attempt may send requests under a lease granted (or
    /// renewed) no earlier than `granted`: a tenth of the lease before it
    /// runs out, so that a request is never sent just as another worker
    /// takes the job over.
    fn send_until(&self, granted: Instant) -> Instant {
        let lease = self.config.lease;
        granted + lease.saturating_sub(lease / 10)
    }

    /// Loads what the attempt needs, in one read; a missing piece fails the
    /// job at once.
    async fn prepare(&self, claimed: &ClaimedJob) -> Result<Prepared, DeliveryOutcome> {
        let job = &claimed.job;
        let misconfigured =
            |message: String| DeliveryOutcome::from(CallOutcome::Misconfigured(message));
        let input = self.store.attempt_input(job).await.map_err(|e| match e {
            // A record the store cannot decode will not decode on a retry,
            // and must not reach an ERP as something else; nor will a
            // secret that does not open. Reading may work next time.
            StoreError::Corrupt(_) => misconfigured(format!("the stored job cannot be read: {e}")),
            StoreError::Secrets(e) => misconfigured(e.to_string()),
            e => CallOutcome::Transient(format!("store: {e}")).into(),
        })?;
        let definition = input.definition.ok_or_else(|| {
            misconfigured(format!(
                "job definition {:?} no longer exists",
                job.definition
            ))
        })?;
        let connection = input.connection.ok_or_else(|| {
            misconfigured(format!(
                "connection {:?} of job definition {:?} does not exist",
                definition.connection, definition.name
            ))
        })?;
        let cancellation = input
            .cancellation
            .ok_or_else(|| misconfigured("the job names no committed cancellation".to_owned()))?;
        Ok(Prepared {
            processor: definition.integration_processor,
            submission: Submission {
                job_id: job.id.clone(),
                cancellation,
                request_id: job.request_id.clone(),
                attempt: claimed.attempt,
                parameters: job.parameters.clone(),
                connection: connection.into(),
            },
            shadow_run_wants_jobs: input.shadow_run_wants_jobs,
        })
    }

    fn decide(&self, claimed: &ClaimedJob, delivery: Delivery) -> AttemptResult {
        let outcome = delivery.outcome;
        let mut retry_at_ms = now_ms();
        let next = match &outcome {
            DeliveryOutcome::Call(CallOutcome::Accepted { .. }) => JobState::Succeeded,
            o if o.is_transient() => {
                let jitter: f64 = rand::rng().random();
                match after_transient_failure(&claimed.job.retry, claimed.attempt_in_round, jitter)
                {
                    RetryDecision::RetryAfter(delay) => {
                        retry_at_ms += i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
                        JobState::Retrying
                    }
                    RetryDecision::GiveUp => JobState::Failed,
                }
            }
            _ => JobState::Failed,
        };
        AttemptResult {
            outcome: outcome.name().to_owned(),
            message: outcome.message(),
            erp_reference: outcome.erp_reference(),
            plugin_version: delivery.plugin_version,
            log: delivery.log,
            exchange: delivery.exchange,
            next,
            retry_at_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(workers: usize) -> RetryLanes {
        RetryLanes {
            share: retry_share(workers),
            running: tokio::sync::Mutex::default(),
        }
    }

    fn running(of: &[(&str, usize)]) -> BTreeMap<String, usize> {
        of.iter().map(|(d, n)| ((*d).to_owned(), *n)).collect()
    }

    #[test]
    fn the_retries_of_a_definition_hold_half_the_workers_rounded_up() {
        assert_eq!(retry_share(0), 1);
        assert_eq!(retry_share(1), 1);
        assert_eq!(retry_share(2), 1);
        assert_eq!(retry_share(4), 2);
        assert_eq!(retry_share(5), 3);
        let held = RetryLanes::held(&running(&[("Poison", 2), ("Deliver", 1)]), 2);
        assert_eq!(held, ["Poison"]);
    }

    #[test]
    fn leaving_a_full_share_says_so_and_an_empty_lane_is_forgotten() {
        let lanes = lanes(4);
        let mut now = running(&[("Poison", 2), ("Deliver", 1)]);
        assert!(
            lanes.leave(&mut now, "Poison"),
            "Poison held its whole share"
        );
        assert!(
            !lanes.leave(&mut now, "Deliver"),
            "Deliver held one place of two"
        );
        assert_eq!(now, running(&[("Poison", 1)]));
        assert!(
            !lanes.leave(&mut now, "Unknown"),
            "no retry of it was running"
        );
    }

    #[test]
    fn idle_workers_are_woken_only_for_a_share_with_a_place_left() {
        let lanes = lanes(4);
        let freed = vec!["Poison".to_owned()];
        // The worker that recorded Poison's retry claimed Poison's next
        // retry with it: the share is full again, the idle workers would
        // pass over its retries as before.
        assert!(!lanes.any_reopened(&freed, &running(&[("Poison", 2)])));
        // It claimed something else (or nothing): one place is free.
        assert!(lanes.any_reopened(&freed, &running(&[("Poison", 1)])));
        assert!(lanes.any_reopened(&freed, &running(&[])));
        // Other definitions' places do not count; nothing freed, no wake.
        assert!(!lanes.any_reopened(&freed, &running(&[("Poison", 2), ("Deliver", 0)])));
        assert!(!lanes.any_reopened(&[], &running(&[])));
    }
}
