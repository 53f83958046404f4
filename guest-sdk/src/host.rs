//! Where the host functions go: the WIT `host` imports inside a component,
//! the thread's [`testing`](crate::testing) connection in a native test.

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::abi::bindings::rescind::erp::host as wit;
    use crate::log::Level;

    pub(crate) fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => wit::LogLevel::Trace,
            Level::Debug => wit::LogLevel::Debug,
            Level::Info => wit::LogLevel::Info,
            Level::Warn => wit::LogLevel::Warn,
            Level::Error => wit::LogLevel::Error,
        };
        wit::log(level, message);
    }

    pub(crate) fn base_url() -> String {
        wit::base_url()
    }

    pub(crate) fn setting(key: &str) -> Option<String> {
        wit::setting(key)
    }

    pub(crate) fn secret(key: &str) -> Option<String> {
        wit::secret(key)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    pub(crate) use crate::testing::host::{base_url, log, secret, setting};
}

pub(crate) use imp::{base_url, log, secret, setting};
