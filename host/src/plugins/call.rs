//! One plugin call: the store's state, its memory limiter, and how a
//! failure is told apart (deadline, memory cap, trap).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{ResourceTable, ResourceTableError};
use wasmtime::{ResourceLimiter, Trap, WasmBacktrace};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::plugins::config::{MAX_TABLE_ELEMENTS, MAX_WASM_STACK_BYTES};
use crate::plugins::connection::ConnectionContext;
use crate::plugins::exchange_tap::RecordingGate;
use crate::plugins::host_impl::ErpHostView;
use crate::plugins::log::CallLog;
use crate::plugins::outcome::CallOutcome;
use crate::plugins::stdio_impl::CapturedOutput;

/// The `T` of a call's `Store<T>`: everything the guest's imports reach.
pub(crate) struct CallState {
    /// The call's WASI context, made on the guest's first use of WASI (see
    /// [`sandbox`]): a call that never asks for a clock, random bytes or
    /// its standard streams does not pay for one.
    pub wasi: Option<WasiCtx>,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub outbound: RecordingGate,
    pub connection: Arc<ConnectionContext>,
    pub log: CallLog,
    pub limiter: MemoryCap,
}

impl CallState {
    /// The view `rescind:erp/host` is implemented on.
    pub fn erp_host(&mut self) -> ErpHostView<'_> {
        ErpHostView {
            connection: &self.connection,
            log: &self.log,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(|| sandbox(&self.log)),
            table: &mut self.table,
        }
    }
}

/// WASI for one call: no preopened directories, no environment, no
/// arguments, no stdin, no sockets or name lookups (outbound HTTP goes
/// through wasi:http only), stdout and stderr into the call's log.
fn sandbox(log: &CallLog) -> WasiCtx {
    WasiCtxBuilder::new()
        .stdout(CapturedOutput::stdout(log.clone()))
        .stderr(CapturedOutput::stderr(log.clone()))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .build()
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// Caps the sum of a call's linear memories and remembers whether the guest
/// ran into the cap, because the guest usually reacts by aborting in its
/// allocator and the trap alone would not say why.
#[derive(Debug)]
pub(crate) struct MemoryCap {
    cap: usize,
    used: usize,
    hit: bool,
}

impl MemoryCap {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            used: 0,
            hit: false,
        }
    }

    pub fn was_hit(&self) -> bool {
        self.hit
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grown = self.used - current.min(self.used) + desired;
        if grown > self.cap {
            self.hit = true;
            return Ok(false);
        }
        self.used = grown;
        Ok(true)
    }

    /// Growing a table past [`MAX_TABLE_ELEMENTS`] traps rather than
    /// failing quietly (`table.grow` answering -1), so that the outcome names
    /// the limit.
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(wasmtime::Error::new(TableLimitExceeded { desired }));
        }
        Ok(true)
    }
}

/// Why a `table.grow` trapped.
#[derive(Debug, thiserror::Error)]
#[error(
    "table limit exceeded: the plugin grew a table to {desired} elements, more than the \
     {MAX_TABLE_ELEMENTS} a plugin may have"
)]
pub(crate) struct TableLimitExceeded {
    desired: usize,
}

/// What stopped a call that did not return normally.
pub(crate) struct Failure<'a> {
    pub error: &'a wasmtime::Error,
    pub memory_cap_hit: bool,
    pub memory_cap: u64,
    pub deadline: Duration,
    pub started: Instant,
    pub stderr_tail: Vec<String>,
    /// The call's [`crate::plugins::CallLimits::resources`].
    pub resource_limit: usize,
}

/// Tells a deadline, a memory overrun and a plain trap apart.
pub(crate) fn classify(failure: Failure<'_>) -> CallOutcome {
    let trap = failure.error.downcast_ref::<Trap>();
    if trap == Some(&Trap::Interrupt)
        || (trap.is_none() && failure.started.elapsed() >= failure.deadline)
    {
        return CallOutcome::DeadlineExceeded(failure.deadline);
    }
    if failure.memory_cap_hit || mentions_allocation_failure(&failure.stderr_tail) {
        return CallOutcome::MemoryCapExceeded(failure.memory_cap);
    }
    if let Some(table) = failure.error.downcast_ref::<TableLimitExceeded>() {
        return CallOutcome::Trapped(table.to_string());
    }
    if let Some(ResourceTableError::Full) = failure.error.downcast_ref::<ResourceTableError>() {
        return CallOutcome::Trapped(format!(
            "resource limit exceeded: the plugin held more than {} WASI resources at once \
             (streams, pollables, HTTP requests and fields); drop the ones it no longer needs",
            failure.resource_limit
        ));
    }
    let backtrace = guest_backtrace(failure.error);
    if trap == Some(&Trap::StackOverflow) {
        return CallOutcome::Trapped(format!(
            "call stack exhausted: the plugin recursed deeper than its {} KiB of WebAssembly \
             stack allow{backtrace}",
            MAX_WASM_STACK_BYTES / 1024
        ));
    }
    let what = match trap {
        Some(trap) => trap.to_string(),
        // wasmtime wraps what a host function failed with in a backtrace
        // ("error while executing at wasm backtrace: …"): say the cause.
        None => first_line(&failure.error.root_cause().to_string()).to_owned(),
    };
    match panic_message(&failure.stderr_tail) {
        Some(panic) => CallOutcome::Trapped(format!("{panic} ({what}){backtrace}")),
        None => CallOutcome::Trapped(format!("{what}{backtrace}")),
    }
}

/// Frames of a guest backtrace shown in a trap's outcome, youngest first.
pub const MAX_BACKTRACE_FRAMES: usize = 20;

/// Frames the engine collects per trap: more than are shown, so that the
/// outcome can say how many were left out.
pub(crate) const COLLECTED_BACKTRACE_FRAMES: usize = 64;

/// Characters kept of one frame's function name.
const MAX_FRAME_NAME_CHARS: usize = 120;

/// The guest's call stack when it trapped, as lines to append to the
/// outcome: `guest backtrace:` and one line per frame, youngest first, with
/// the function's demangled name from the component's name section (or
/// `function N` for a component built without one) and its offset in the
/// core module. Empty when wasmtime recorded no frame.
fn guest_backtrace(error: &wasmtime::Error) -> String {
    let Some(trace) = error.downcast_ref::<WasmBacktrace>() else {
        return String::new();
    };
    let frames = trace.frames();
    if frames.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nguest backtrace:");
    for (n, frame) in frames.iter().take(MAX_BACKTRACE_FRAMES).enumerate() {
        let name = match frame.func_name() {
            Some(raw) => frame_name(raw),
            None => format!("function {}", frame.func_index()),
        };
        let _ = write!(out, "\n  {n:>2}: {name}");
        if let Some(offset) = frame.module_offset() {
            let _ = write!(out, " @ {offset:#x}");
        }
    }
    let more = frames.len().saturating_sub(MAX_BACKTRACE_FRAMES);
    if more > 0 {
        let at_least = if frames.len() >= COLLECTED_BACKTRACE_FRAMES {
            "at least "
        } else {
            ""
        };
        let _ = write!(out, "\n  … {at_least}{more} older frames not shown");
    }
    out
}

/// Characters kept of the start of a name longer than
/// [`MAX_FRAME_NAME_CHARS`]; the rest are its end, which names the method.
const FRAME_NAME_HEAD_CHARS: usize = 30;

/// A function name as a person reads it: Rust's mangling undone (without
/// the hash), one line, at most [`MAX_FRAME_NAME_CHARS`] (a longer one
/// keeps its start and its end, which names the function, around `…`).
fn frame_name(raw: &str) -> String {
    let demangled = format!("{:#}", rustc_demangle::demangle(raw));
    let chars: Vec<char> = demangled
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if chars.len() <= MAX_FRAME_NAME_CHARS {
        return chars.into_iter().collect();
    }
    let tail = MAX_FRAME_NAME_CHARS - FRAME_NAME_HEAD_CHARS - 1;
    let mut name: String = chars[..FRAME_NAME_HEAD_CHARS].iter().collect();
    name.push('…');
    name.extend(&chars[chars.len() - tail..]);
    name
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Rust's allocator reports `memory allocation of N bytes failed` before it
/// aborts.
fn mentions_allocation_failure(stderr: &[String]) -> bool {
    stderr.iter().any(|line| {
        line.contains("memory allocation failed")
            || (line.contains("memory allocation of") && line.contains("failed"))
    })
}

/// The message of a Rust panic, from the lines the panic hook printed:
/// `thread '…' panicked at src/lib.rs:7:5:` followed by the message and a
/// `note:` line.
fn panic_message(stderr: &[String]) -> Option<String> {
    let at = stderr.iter().rposition(|l| l.contains("panicked at"))?;
    let location = stderr[at]
        .split_once("panicked at ")
        .map(|(_, loc)| loc.trim_end_matches(':').trim())
        .unwrap_or_default();
    let message: Vec<&str> = stderr[at + 1..]
        .iter()
        .map(String::as_str)
        .take_while(|l| !l.starts_with("note:"))
        .collect();
    let message = message.join(" / ");
    Some(match (location.is_empty(), message.is_empty()) {
        (_, true) => format!("plugin panicked at {location}"),
        (true, false) => format!("plugin panicked: {message}"),
        (false, false) => format!("plugin panicked at {location}: {message}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn panic_messages_are_found() {
        let stderr = lines(
            "starting\n\
             thread '<unnamed>' panicked at src/lib.rs:7:5:\n\
             plugin panicked on purpose\n\
             note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        );
        assert_eq!(
            panic_message(&stderr).as_deref(),
            Some("plugin panicked at src/lib.rs:7:5: plugin panicked on purpose")
        );
        assert_eq!(panic_message(&lines("just noise")), None);
    }

    #[test]
    fn allocation_failures_are_recognised() {
        assert!(mentions_allocation_failure(&lines(
            "memory allocation of 1048576 bytes failed"
        )));
        assert!(!mentions_allocation_failure(&lines("all fine")));
    }

    #[test]
    fn memory_cap_counts_every_memory() {
        let mut cap = MemoryCap::new(100);
        assert!(cap.memory_growing(0, 60, None).unwrap());
        assert!(cap.memory_growing(0, 30, None).unwrap());
        assert!(!cap.was_hit());
        assert!(!cap.memory_growing(30, 50, None).unwrap());
        assert!(cap.was_hit());
        assert!(cap.memory_growing(60, 70, None).unwrap());
    }

    #[test]
    fn a_trap_after_hitting_the_cap_is_a_memory_overrun() {
        let error = wasmtime::Error::new(Trap::UnreachableCodeReached);
        let outcome = classify(Failure {
            error: &error,
            memory_cap_hit: true,
            memory_cap: 64,
            deadline: Duration::from_secs(10),
            started: Instant::now(),
            stderr_tail: Vec::new(),
            resource_limit: 8,
        });
        assert_eq!(outcome, CallOutcome::MemoryCapExceeded(64));
    }

    fn trapped_with(error: wasmtime::Error) -> CallOutcome {
        classify(Failure {
            error: &error,
            memory_cap_hit: false,
            memory_cap: 64,
            deadline: Duration::from_secs(10),
            started: Instant::now(),
            stderr_tail: Vec::new(),
            resource_limit: 1024,
        })
    }

    #[test]
    fn each_limit_is_named_in_the_trap() {
        for (error, says) in [
            (
                wasmtime::Error::new(Trap::StackOverflow),
                "call stack exhausted: the plugin recursed deeper than its 512 KiB",
            ),
            (
                wasmtime::Error::new(TableLimitExceeded { desired: 20_001 }),
                "table limit exceeded: the plugin grew a table to 20001 elements, more than \
                 the 20000",
            ),
            (
                wasmtime::Error::new(ResourceTableError::Full),
                "resource limit exceeded: the plugin held more than 1024 WASI resources",
            ),
            (
                wasmtime::Error::new(TableLimitExceeded { desired: 30_000 })
                    .context("error while executing at wasm backtrace"),
                "table limit exceeded",
            ),
        ] {
            match trapped_with(error) {
                CallOutcome::Trapped(message) => assert!(message.starts_with(says), "{message}"),
                other => panic!("expected a trap, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_host_error_is_told_by_its_cause_not_its_backtrace() {
        let error = wasmtime::Error::msg("stream closed by the host")
            .context("error while executing at wasm backtrace:\n    0: 0x1 - <unknown>");
        assert_eq!(
            trapped_with(error),
            CallOutcome::Trapped("stream closed by the host".into())
        );
    }

    #[test]
    fn frame_names_are_demangled_and_bounded() {
        assert_eq!(
            frame_name("_ZN4core9panicking9panic_fmt17h0123456789abcdefE"),
            "core::panicking::panic_fmt"
        );
        assert_eq!(frame_name("cabi_realloc"), "cabi_realloc");
        let long = frame_name(&format!(
            "<{} as Guest>::submit_cancellation",
            "x".repeat(500)
        ));
        assert_eq!(long.chars().count(), MAX_FRAME_NAME_CHARS);
        assert!(long.starts_with("<xxxx"), "{long}");
        assert!(long.ends_with("x as Guest>::submit_cancellation"), "{long}");
        assert!(long.contains('…'), "{long}");
        assert_eq!(frame_name("a\nb"), "a b");
    }

    #[test]
    fn growing_a_table_past_the_limit_traps() {
        let mut cap = MemoryCap::new(100);
        assert!(cap.table_growing(0, MAX_TABLE_ELEMENTS, None).unwrap());
        let error = cap
            .table_growing(MAX_TABLE_ELEMENTS, MAX_TABLE_ELEMENTS + 1, None)
            .unwrap_err();
        assert!(error.downcast_ref::<TableLimitExceeded>().is_some());
    }

    #[test]
    fn an_interrupt_is_a_deadline() {
        let error = wasmtime::Error::new(Trap::Interrupt);
        let outcome = classify(Failure {
            error: &error,
            memory_cap_hit: false,
            memory_cap: 64,
            deadline: Duration::from_millis(300),
            started: Instant::now(),
            stderr_tail: Vec::new(),
            resource_limit: 8,
        });
        assert_eq!(
            outcome,
            CallOutcome::DeadlineExceeded(Duration::from_millis(300))
        );
    }
}
