//! A loaded plugin and how it is called.

use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpCtx;

use crate::plugins::RecordedAnswer;
use crate::plugins::bindings::IntegrationProcessorPre;
use crate::plugins::bindings::rescind::erp::types as wit;
use crate::plugins::call::{self, CallState, Failure, MemoryCap};
use crate::plugins::cancellation::Cancellation;
use crate::plugins::capture::CaptureAnswers;
use crate::plugins::compat::SdkStamp;
use crate::plugins::config::CallLimits;
use crate::plugins::connection::ConnectionContext;
use crate::plugins::exchange::ExchangeRecorder;
use crate::plugins::exchange_tap::RecordingGate;
use crate::plugins::log::{CallLog, LogBounds};
use crate::plugins::outbound::{AllowedHosts, EgressPolicy};
use crate::plugins::outbound_impl::{EgressVerdict, OutboundGate, OutboundTimeouts, TrustError};
use crate::plugins::outcome::{CallOutcome, CallReport};
use crate::plugins::returned_text::bound_returned_text;
use crate::plugins::runtime::Shared;
use crate::plugins::send_window::SendWindow;

/// A validated, compiled and pre-instantiated integration processor. Each
/// [`Plugin::submit`] runs on a fresh instance.
pub struct Plugin {
    name: Arc<str>,
    sha256: Arc<str>,
    stamp: Option<SdkStamp>,
    warnings: Vec<String>,
    pre: IntegrationProcessorPre<CallState>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("stamp", &self.stamp)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// Why a call ended without an answer from the plugin.
enum Stop {
    Instantiate(wasmtime::Error),
    Call(wasmtime::Error),
}

impl Plugin {
    pub(crate) fn new(
        name: String,
        sha256: String,
        stamp: Option<SdkStamp>,
        warnings: Vec<String>,
        pre: IntegrationProcessorPre<CallState>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            name: Arc::from(name),
            sha256: Arc::from(sha256),
            stamp,
            warnings,
            pre,
            shared,
        }
    }

    /// The name it was loaded under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component's SHA-256, as `sha256:<hex>`: its version.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The rescind-guest version that built it, when it carries the stamp.
    pub fn sdk_version(&self) -> Option<&str> {
        self.stamp.as_ref().map(|s| s.sdk.as_str())
    }

    /// The WIT package it was built for (`rescind:erp@0.1.0`), when stamped.
    pub fn wit_version(&self) -> Option<&str> {
        self.stamp.as_ref().map(|s| s.wit.as_str())
    }

    /// Things worth telling the operator that did not prevent loading (e.g.
    /// a missing SDK stamp).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Asks the plugin to tell the ERP about a cancellation, on a fresh
    /// instance, within `limits`. Never fails: every way a call can end is a
    /// [`CallOutcome`]. Text the plugin returns is redacted and bounded like
    /// its log (see [`crate::plugins::MAX_RETURNED_TEXT_BYTES`]). The
    /// cancellation becomes the plugin's input as it is, without a copy.
    ///
    /// The returned future borrows nothing from the caller. Called on the
    /// runtime's plugin threads (a job worker), the call runs where the
    /// future is polled; called on any other thread, it is handed to the
    /// plugin threads at once, and aborted if the future is dropped first.
    pub fn submit(
        &self,
        cancellation: Cancellation,
        connection: &ConnectionContext,
        limits: &CallLimits,
    ) -> impl Future<Output = CallReport> + Send + use<> {
        self.submit_within(cancellation, connection, limits, None)
    }

    /// [`Plugin::submit`], with every outbound request refused, before
    /// anything is sent, once `window` has closed.
    pub fn submit_within(
        &self,
        cancellation: Cancellation,
        connection: &ConnectionContext,
        limits: &CallLimits,
        window: Option<&SendWindow>,
    ) -> impl Future<Output = CallReport> + Send + use<> {
        self.call(cancellation, connection, limits, window.cloned(), None)
            .dispatch()
    }

    /// [`Plugin::submit`] in a capture-only sandbox, as a shadow run does:
    /// every outbound request passes the same checks, is recorded, and is
    /// answered with the next of `answers` (the active version's recorded
    /// ones) instead of being sent; past them it is refused. Nothing leaves
    /// the host.
    pub fn submit_captured(
        &self,
        cancellation: Cancellation,
        connection: &ConnectionContext,
        limits: &CallLimits,
        answers: Vec<RecordedAnswer>,
    ) -> impl Future<Output = CallReport> + Send + use<> {
        self.call(
            cancellation,
            connection,
            limits,
            None,
            Some(CaptureAnswers::new(answers)),
        )
        .dispatch()
    }

    /// The call, made before its future: the future holds the plugin's
    /// input once, moved out of the caller's cancellation without a copy,
    /// and borrows nothing from the caller.
    fn call(
        &self,
        cancellation: Cancellation,
        connection: &ConnectionContext,
        limits: &CallLimits,
        window: Option<SendWindow>,
        capture: Option<CaptureAnswers>,
    ) -> Call {
        Call {
            started: Instant::now(),
            plugin: Arc::clone(&self.name),
            sha256: Arc::clone(&self.sha256),
            pre: self.pre.clone(),
            shared: Arc::clone(&self.shared),
            input: wit::Cancellation::from(cancellation),
            connection: Arc::new(connection.clone()),
            limits: *limits,
            window,
            capture,
        }
    }
}

/// One call, owning all it needs so that it can run on the plugin threads.
struct Call {
    /// When the caller asked for it.
    started: Instant,
    plugin: Arc<str>,
    /// The component's digest (`sha256:…`).
    sha256: Arc<str>,
    pre: IntegrationProcessorPre<CallState>,
    shared: Arc<Shared>,
    /// The cancellation as the plugin receives it.
    input: wit::Cancellation,
    /// Shared with the call's WASI state, which the host functions read.
    connection: Arc<ConnectionContext>,
    limits: CallLimits,
    window: Option<SendWindow>,
    capture: Option<CaptureAnswers>,
}

impl Call {
    /// Runs the call on the runtime's plugin threads, never on the
    /// caller's: a plugin busy until its deadline must not hold a thread of
    /// the API.
    fn dispatch(self) -> impl Future<Output = CallReport> + Send + use<> {
        let (started, plugin) = (self.started, Arc::clone(&self.plugin));
        let shared = Arc::clone(&self.shared);
        // Boxed once here: every layer above (the combinator, the executor's
        // future or task, the caller's own future) then moves a pointer, not
        // the call's (large) future. A combinator, not an `async` block: a
        // block would keep the call's future twice, once as what it captured
        // and once where it awaits it.
        shared
            .executor
            .run(Box::pin(self.report()))
            .map(move |ran| match ran {
                Ok(report) => report,
                Err(failed) => CallReport {
                    outcome: CallOutcome::Transient(format!(
                        "the call of plugin `{plugin}` failed inside the host: {failed}"
                    )),
                    log: Vec::new(),
                    exchange: Default::default(),
                    elapsed: started.elapsed(),
                },
            })
    }

    async fn report(self) -> CallReport {
        let started = self.started;
        let redactor = self
            .shared
            .redactors
            .redactor(self.connection.secrets.values().map(String::as_str));
        let limits = &self.limits;
        let log = CallLog::new(
            LogBounds {
                max_lines: limits.log_lines,
                max_bytes: limits.log_bytes,
                max_line_bytes: limits.log_line_bytes.max(16),
            },
            redactor.clone(),
        );
        let recorder = ExchangeRecorder::new(redactor.clone(), self.limits.recorded_exchanges);
        let outcome = self
            .run(&log, &recorder, started)
            .await
            .map_text(|text| bound_returned_text(&text, &redactor));
        CallReport {
            outcome,
            log: log.with(|book| book.finish()),
            exchange: recorder.finish(),
            elapsed: started.elapsed(),
        }
    }

    async fn run(
        &self,
        log: &CallLog,
        recorder: &ExchangeRecorder,
        started: Instant,
    ) -> CallOutcome {
        let (connection, limits) = (&self.connection, &self.limits);
        let allowed = match AllowedHosts::parse(&connection.allowed_hosts) {
            Ok(allowed) => allowed,
            Err(err) => return CallOutcome::Misconfigured(err.to_string()),
        };
        let policy = Arc::new(EgressPolicy::new(
            connection.name.as_str(),
            allowed,
            connection.allow_private_network,
        ));
        let trust = match self
            .shared
            .network
            .trust(connection.ca_certificates.as_deref())
        {
            Ok(trust) => trust,
            Err(err @ TrustError::Certificates(_)) => {
                return CallOutcome::Misconfigured(err.to_string());
            }
            Err(err @ TrustError::Tls(_)) => return CallOutcome::Transient(err.to_string()),
        };
        let verdict = EgressVerdict::default();
        // The semaphore is never closed, so acquiring cannot fail.
        let Ok(_slot) = self.shared.slots.acquire().await else {
            return CallOutcome::Transient("the plugin runtime is shutting down".into());
        };

        let config = &self.shared.config;
        let memory_cap = limits.memory_bytes.min(config.max_memory_bytes);
        let deadline = Instant::now() + limits.deadline;
        let state = CallState {
            wasi: None,
            http: WasiHttpCtx::new(),
            table: resource_table(limits.resources),
            outbound: RecordingGate {
                gate: OutboundGate {
                    plugin: Arc::clone(&self.sha256),
                    policy,
                    trust,
                    network: Arc::clone(&self.shared.network),
                    log: log.clone(),
                    deadline,
                    timeouts: OutboundTimeouts {
                        connect: config.connect_timeout,
                        first_byte: config.first_byte_timeout,
                        between_bytes: config.between_bytes_timeout,
                    },
                    limits: *limits,
                    verdict: verdict.clone(),
                    requests: 0,
                    body_bytes: Default::default(),
                    send_window: self.window.clone(),
                    capture: self.capture.clone(),
                },
                recorder: recorder.clone(),
            },
            connection: Arc::clone(connection),
            log: log.clone(),
            limiter: MemoryCap::new(usize::try_from(memory_cap).unwrap_or(usize::MAX)),
        };
        let mut store = Store::new(&self.shared.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Every epoch tick a running guest yields to the executor (so the
        // timeout below can fire and other calls progress); past the
        // deadline it is interrupted outright, in case nobody polls it.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });

        let input = &self.input;
        let attempt = async {
            let processor = self
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(Stop::Instantiate)?;
            processor
                .rescind_erp_processor()
                .call_submit_cancellation(&mut store, input)
                .await
                .map_err(Stop::Call)
        };
        // The deadline covers host calls too (an outbound request that hangs),
        // where no guest code runs to notice the epoch.
        let answer =
            tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), attempt).await;

        let failure = |error| Failure {
            error,
            memory_cap_hit: store.data().limiter.was_hit(),
            memory_cap,
            deadline: limits.deadline,
            started,
            stderr_tail: log.with(|book| book.stderr_tail().map(str::to_owned).collect()),
            resource_limit: limits.resources,
        };
        // A refused destination or an untrusted certificate is the host's
        // call, not the plugin's: whatever it answered (a retryable failure
        // would only repeat the refusal), the connection needs fixing. A
        // request held back because the job's lease ran out is the host's
        // too: the plugin saw a refusal it would take for the allow-list's,
        // but nothing was sent and the connection is fine, so the attempt
        // is a passing failure.
        if let Some(verdict) = verdict.take() {
            return verdict;
        }
        match answer {
            Err(_elapsed) => CallOutcome::DeadlineExceeded(limits.deadline),
            Ok(Ok(Ok(ack))) => CallOutcome::Accepted {
                erp_reference: ack.erp_reference,
                message: ack.message,
            },
            Ok(Ok(Err(wit::SubmitError::Rejected(m)))) => CallOutcome::Rejected(m),
            Ok(Ok(Err(wit::SubmitError::Transient(m)))) => CallOutcome::Transient(m),
            Ok(Ok(Err(wit::SubmitError::Misconfigured(m)))) => CallOutcome::Misconfigured(m),
            Ok(Err(Stop::Call(error))) => call::classify(failure(&error)),
            Ok(Err(Stop::Instantiate(error))) => match call::classify(failure(&error)) {
                outcome
                @ (CallOutcome::MemoryCapExceeded(_) | CallOutcome::DeadlineExceeded(_)) => outcome,
                _ => CallOutcome::Transient(format!(
                    "plugin `{}` could not be instantiated: {error:#}",
                    self.plugin
                )),
            },
        }
    }
}

/// The table of a call's WASI resources, holding at most `limit` at once.
fn resource_table(limit: usize) -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(limit);
    table
}
