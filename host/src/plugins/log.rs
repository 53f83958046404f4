//! The log of one plugin call: host `log` calls, stdout and stderr lines and
//! the runtime's own notes, bounded and with the connection's secrets
//! redacted before anything is stored.
//!
//! Pure bookkeeping (no wasmtime); `stdio_impl.rs` feeds the guest's output
//! streams into it.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;

pub use crate::plugins::redact::{REDACTED, Redactor};

/// How many stderr lines are kept, outside the log's bounds, to explain a
/// trap (the panic message) even when the log itself is full.
const STDERR_TAIL_LINES: usize = 16;

/// The severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that the plugin coped with.
    Warn,
    /// A failure.
    Error,
}

impl LogLevel {
    /// The lower-case name, as in the WIT `log-level` enum.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogSource {
    /// The plugin called the host's `log` function.
    Plugin,
    /// A line the plugin wrote to stdout.
    Stdout,
    /// A line the plugin wrote to stderr (panic messages land here).
    Stderr,
    /// The runtime itself, e.g. a denied outbound request or dropped lines.
    Runtime,
}

impl LogSource {
    /// A short lower-case name: `plugin`, `stdout`, `stderr`, `runtime`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plugin => "plugin",
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::Runtime => "runtime",
        }
    }
}

impl fmt::Display for LogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored line of a call's log; its text is already redacted and
/// bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Severity (stdout lines are `info`, stderr lines `warn`).
    pub level: LogLevel,
    /// Where it came from.
    pub source: LogSource,
    /// The text, without a trailing newline.
    pub message: String,
}

/// The bounds of a call's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogBounds {
    pub max_lines: usize,
    pub max_bytes: usize,
    pub max_line_bytes: usize,
}

/// A line of stdout or stderr still waiting for its newline.
#[derive(Debug, Default)]
struct PendingLine {
    bytes: Vec<u8>,
    /// Bytes beyond the kept window were thrown away.
    cut: bool,
}

/// The log of one call.
#[derive(Debug)]
pub(crate) struct LogBook {
    bounds: LogBounds,
    redactor: Redactor,
    lines: Vec<LogLine>,
    bytes: usize,
    dropped: usize,
    stdout: PendingLine,
    stderr: PendingLine,
    stderr_tail: VecDeque<String>,
}

impl LogBook {
    pub fn new(bounds: LogBounds, redactor: Redactor) -> Self {
        Self {
            bounds,
            redactor,
            lines: Vec::new(),
            bytes: 0,
            dropped: 0,
            stdout: PendingLine::default(),
            stderr: PendingLine::default(),
            stderr_tail: VecDeque::new(),
        }
    }

    /// Stores a whole line (a host `log` call or a runtime note).
    pub fn line(&mut self, source: LogSource, level: LogLevel, message: &str) {
        let text = self.redactor.redact(message);
        self.store(source, level, &text);
    }

    /// `text` with the connection's secrets redacted, as a line would be.
    pub fn redacted(&self, text: &str) -> String {
        self.redactor.redact(text).into_owned()
    }

    /// Feeds bytes the guest wrote to stdout or stderr; complete lines are
    /// stored, the rest waits for its newline (or [`Self::finish`]).
    pub fn output(&mut self, source: LogSource, mut bytes: &[u8]) {
        // Keep enough of an overlong line to redact a secret that starts
        // just before the cut, then throw the rest away.
        let window = self.bounds.max_line_bytes + self.redactor.longest();
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let (chunk, rest) = match newline {
                Some(i) => (&bytes[..i], Some(&bytes[i + 1..])),
                None => (bytes, None),
            };
            let pending = self.pending(source);
            let room = window.saturating_sub(pending.bytes.len());
            if chunk.len() > room {
                pending.cut = true;
            }
            pending
                .bytes
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
            match rest {
                Some(rest) => {
                    self.flush(source);
                    bytes = rest;
                }
                None => break,
            }
        }
    }

    /// Stores the pending partial lines and the dropped-lines marker, and
    /// hands back the lines.
    pub fn finish(&mut self) -> Vec<LogLine> {
        self.flush(LogSource::Stdout);
        self.flush(LogSource::Stderr);
        let mut lines = std::mem::take(&mut self.lines);
        if self.dropped > 0 {
            lines.push(LogLine {
                level: LogLevel::Warn,
                source: LogSource::Runtime,
                message: format!("… {} lines dropped", self.dropped),
            });
        }
        lines
    }

    /// The last stderr lines (redacted), kept even when the log is full.
    pub fn stderr_tail(&self) -> impl Iterator<Item = &str> {
        self.stderr_tail.iter().map(String::as_str)
    }

    fn pending(&mut self, source: LogSource) -> &mut PendingLine {
        match source {
            LogSource::Stderr => &mut self.stderr,
            _ => &mut self.stdout,
        }
    }

    fn flush(&mut self, source: LogSource) {
        let pending = std::mem::take(self.pending(source));
        if pending.bytes.is_empty() && !pending.cut {
            return;
        }
        let raw = String::from_utf8_lossy(&pending.bytes);
        let raw = raw.strip_suffix('\r').unwrap_or(&raw);
        let text = self.redactor.redact_with_cut(raw, pending.cut);
        let level = match source {
            LogSource::Stderr => {
                if self.stderr_tail.len() == STDERR_TAIL_LINES {
                    self.stderr_tail.pop_front();
                }
                self.stderr_tail
                    .push_back(truncate(&text, self.bounds.max_line_bytes).into_owned());
                LogLevel::Warn
            }
            _ => LogLevel::Info,
        };
        self.store(source, level, &text);
    }

    /// Stores redacted text, cut to the line bound, if the log has room.
    /// Once a line does not fit, every later line is dropped too so that the
    /// log stays a faithful prefix of what happened.
    fn store(&mut self, source: LogSource, level: LogLevel, text: &str) {
        let text = truncate(text, self.bounds.max_line_bytes);
        if self.dropped > 0
            || self.lines.len() >= self.bounds.max_lines
            || self.bytes + text.len() > self.bounds.max_bytes
        {
            self.dropped += 1;
            return;
        }
        self.bytes += text.len();
        self.lines.push(LogLine {
            level,
            source,
            message: text.into_owned(),
        });
    }
}

/// Cuts text to at most `max` bytes on a character boundary, marking the
/// cut with `…`.
fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: LogBounds = LogBounds {
        max_lines: 4,
        max_bytes: 200,
        max_line_bytes: 40,
    };

    fn book(secrets: &[&str]) -> LogBook {
        LogBook::new(BOUNDS, Redactor::new(secrets.iter().copied()))
    }

    fn messages(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.message.as_str()).collect()
    }

    #[test]
    fn output_is_split_into_lines_across_writes() {
        let mut log = book(&[]);
        log.output(LogSource::Stdout, b"hel");
        log.output(LogSource::Stdout, b"lo\nwor");
        log.output(LogSource::Stderr, b"oops\r\n");
        log.output(LogSource::Stdout, b"ld");
        let lines = log.finish();
        assert_eq!(messages(&lines), ["hello", "oops", "world"]);
        assert_eq!(lines[1].source, LogSource::Stderr);
        assert_eq!(lines[1].level, LogLevel::Warn);
        assert_eq!(lines[2].level, LogLevel::Info);
    }

    #[test]
    fn a_secret_split_across_writes_is_redacted() {
        let mut log = book(&["hunter2"]);
        log.output(LogSource::Stdout, b"password: hun");
        log.output(LogSource::Stdout, b"ter2\n");
        log.line(LogSource::Plugin, LogLevel::Info, "sending hunter2 now");
        assert_eq!(
            messages(&log.finish()),
            ["password: [redacted]", "sending [redacted] now"]
        );
    }

    #[test]
    fn a_secret_straddling_the_line_bound_does_not_leak() {
        let secret = "0123456789abcdef";
        let mut log = book(&[secret]);
        let mut line = "x".repeat(BOUNDS.max_line_bytes - 4);
        line.push_str(secret);
        line.push_str(&"y".repeat(200));
        line.push('\n');
        log.output(LogSource::Stdout, line.as_bytes());
        let lines = log.finish();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].message.len() <= BOUNDS.max_line_bytes);
        assert!(!lines[0].message.contains("0123"), "{}", lines[0].message);
        assert!(lines[0].message.ends_with('…'));
    }

    #[test]
    fn lines_are_bounded_with_a_marker() {
        let mut log = book(&[]);
        for i in 0..10 {
            log.line(LogSource::Plugin, LogLevel::Info, &format!("line {i}"));
        }
        let lines = log.finish();
        assert_eq!(
            messages(&lines),
            ["line 0", "line 1", "line 2", "line 3", "… 6 lines dropped"]
        );
        assert_eq!(lines[4].source, LogSource::Runtime);
    }

    #[test]
    fn bytes_are_bounded() {
        let mut log = LogBook::new(
            LogBounds {
                max_lines: 100,
                max_bytes: 50,
                max_line_bytes: 40,
            },
            Redactor::default(),
        );
        log.line(LogSource::Plugin, LogLevel::Info, &"a".repeat(30));
        log.line(LogSource::Plugin, LogLevel::Info, &"b".repeat(30));
        log.line(LogSource::Plugin, LogLevel::Info, "c");
        let lines = log.finish();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].message, "… 2 lines dropped");
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let mut log = book(&[]);
        log.line(LogSource::Plugin, LogLevel::Info, &"é".repeat(50));
        let lines = log.finish();
        assert!(lines[0].message.len() <= BOUNDS.max_line_bytes);
        assert!(lines[0].message.ends_with('…'));
    }

    #[test]
    fn stderr_tail_survives_a_full_log() {
        let mut log = book(&["pw"]);
        for i in 0..10 {
            log.line(LogSource::Plugin, LogLevel::Info, &format!("noise {i}"));
        }
        log.output(LogSource::Stderr, b"panicked at src/lib.rs:1:1:\nboom pw\n");
        let tail: Vec<&str> = log.stderr_tail().collect();
        assert_eq!(tail, ["panicked at src/lib.rs:1:1:", "boom [redacted]"]);
    }
}

/// A call's [`LogBook`], shared by the host interface, the guest's output
/// streams and the outbound-request hook (which runs on its own task).
#[derive(Debug, Clone)]
pub(crate) struct CallLog(std::sync::Arc<std::sync::Mutex<LogBook>>);

impl CallLog {
    pub fn new(bounds: LogBounds, redactor: Redactor) -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(LogBook::new(
            bounds, redactor,
        ))))
    }

    /// Runs `f` on the book. A poisoned lock only means another writer
    /// panicked mid-line; the book is still usable.
    pub fn with<R>(&self, f: impl FnOnce(&mut LogBook) -> R) -> R {
        let mut book = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut book)
    }
}
