//! What came of one plugin call.

use std::fmt;
use std::time::Duration;

use crate::plugins::exchange::RecordedExchanges;
use crate::plugins::log::LogLine;

/// The result of one call: its outcome, its log and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    /// What happened.
    pub outcome: CallOutcome,
    /// The call's log: bounded, secrets redacted, oldest first.
    pub log: Vec<LogLine>,
    /// Every outbound HTTP request the plugin made and what came back:
    /// bounded, secrets redacted, in order.
    pub exchange: RecordedExchanges,
    /// Wall-clock time from the call's start to its outcome (waiting for a
    /// free slot included).
    pub elapsed: Duration,
}

/// What happened when the plugin was asked to submit a cancellation.
///
/// The first four are the plugin's own answer (`result<ack, submit-error>`);
/// the rest are the runtime stopping a plugin that misbehaved. Every text in
/// it is at most [`crate::plugins::MAX_RETURNED_TEXT_BYTES`] long (cut with a
/// marker) and has the connection's secrets redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallOutcome {
    /// The ERP accepted the cancellation.
    Accepted {
        /// The ERP's reference for the request, if it gave one.
        erp_reference: Option<String>,
        /// Anything the plugin wants kept in the job's record.
        message: Option<String>,
    },
    /// The ERP refused for good, with its message: do not retry.
    Rejected(String),
    /// A passing failure (timeout, refused connection, 408/429/5xx): retry.
    Transient(String),
    /// The connection lacks a setting or secret, or one is invalid (the
    /// allow-list included): fix the connection; do not retry as is.
    Misconfigured(String),
    /// The plugin trapped; the text includes its panic message when it
    /// printed one.
    Trapped(String),
    /// The call ran out of its wall-clock deadline (which was this long).
    DeadlineExceeded(Duration),
    /// The plugin tried to grow its memory past the cap (this many bytes).
    MemoryCapExceeded(u64),
}

impl CallOutcome {
    /// Whether another attempt may succeed: transient failures and every way
    /// the runtime stopped a plugin (SPEC §3.3: a trap, timeout or memory
    /// overrun is transient, and the host carries on).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Accepted { .. } | Self::Rejected(_) | Self::Misconfigured(_) => false,
            Self::Transient(_)
            | Self::Trapped(_)
            | Self::DeadlineExceeded(_)
            | Self::MemoryCapExceeded(_) => true,
        }
    }

    /// Whether the ERP accepted the cancellation.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }

    /// The outcome with `f` applied to every text in it (how the runtime
    /// bounds and redacts what a plugin returns).
    pub(crate) fn map_text(self, f: impl Fn(String) -> String) -> Self {
        match self {
            Self::Accepted {
                erp_reference,
                message,
            } => Self::Accepted {
                erp_reference: erp_reference.map(&f),
                message: message.map(&f),
            },
            Self::Rejected(m) => Self::Rejected(f(m)),
            Self::Transient(m) => Self::Transient(f(m)),
            Self::Misconfigured(m) => Self::Misconfigured(f(m)),
            Self::Trapped(m) => Self::Trapped(f(m)),
            other @ (Self::DeadlineExceeded(_) | Self::MemoryCapExceeded(_)) => other,
        }
    }
}

impl fmt::Display for CallOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Accepted {
                erp_reference,
                message,
            } => {
                f.write_str("accepted")?;
                if let Some(r) = erp_reference {
                    write!(f, " (ERP reference {r})")?;
                }
                if let Some(m) = message {
                    write!(f, ": {m}")?;
                }
                Ok(())
            }
            Self::Rejected(m) => write!(f, "rejected by the ERP: {m}"),
            Self::Transient(m) => write!(f, "transient failure: {m}"),
            Self::Misconfigured(m) => write!(f, "connection misconfigured: {m}"),
            Self::Trapped(m) => write!(f, "plugin trapped: {m}"),
            Self::DeadlineExceeded(d) => {
                write!(f, "plugin stopped at its deadline of {} ms", d.as_millis())
            }
            Self::MemoryCapExceeded(cap) => write!(
                f,
                "plugin stopped: memory cap exceeded ({} MiB)",
                cap / (1024 * 1024)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_table() {
        let cases = [
            (
                CallOutcome::Accepted {
                    erp_reference: None,
                    message: None,
                },
                false,
            ),
            (CallOutcome::Rejected("no".into()), false),
            (CallOutcome::Misconfigured("no token".into()), false),
            (CallOutcome::Transient("503".into()), true),
            (CallOutcome::Trapped("unreachable".into()), true),
            (CallOutcome::DeadlineExceeded(Duration::from_secs(1)), true),
            (CallOutcome::MemoryCapExceeded(1), true),
        ];
        for (outcome, retryable) in cases {
            assert_eq!(outcome.is_retryable(), retryable, "{outcome}");
        }
    }
}
