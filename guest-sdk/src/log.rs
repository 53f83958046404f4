//! Log lines that land in the job attempt's log, where the operator reads
//! them (`GET /v1/admin/jobs/{id}`). The host bounds their number and size
//! and redacts the connection's secret values.
//!
//! ```no_run
//! use rescind_guest::log;
//! # let order = "1001";
//! log::info!("cancelling order {order}");
//! log::log(log::Level::Warn, "the ERP answered slowly");
//! ```
//!
//! The macros are also at the crate root (`rescind_guest::info!`).

/// The severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Fine detail, for following one call step by step.
    Trace,
    /// Detail useful when something goes wrong.
    Debug,
    /// What the plugin did.
    Info,
    /// Something odd that did not stop the submission.
    Warn,
    /// Why the submission failed.
    Error,
}

impl Level {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Writes one line at `level` to the job attempt's log.
pub fn log(level: Level, message: &str) {
    crate::host::log(level, message);
}

/// Logs a `format!`-style line at trace level.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style line at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style line at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style line at warn level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style line at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)+)) };
}

#[doc(inline)]
pub use crate::{debug, error, info, trace, warn};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Connection;

    #[test]
    fn lines_reach_the_host_log_in_order() {
        let connection = Connection::new("http://h");
        connection.run(|| {
            crate::info!("order {}", 1001);
            crate::log::warn!("slow");
            log(Level::Error, "failed");
        });
        let lines: Vec<(Level, String)> = connection
            .logs()
            .into_iter()
            .map(|line| (line.level, line.message))
            .collect();
        assert_eq!(
            lines,
            [
                (Level::Info, "order 1001".to_owned()),
                (Level::Warn, "slow".to_owned()),
                (Level::Error, "failed".to_owned()),
            ]
        );
    }
}
