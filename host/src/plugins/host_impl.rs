//! The host side of `rescind:erp/host`: logging and the connection's
//! settings, answered from the call's own [`ConnectionContext`].

use wasmtime::component::HasData;

use crate::plugins::bindings::rescind::erp::{host, types};
use crate::plugins::connection::ConnectionContext;
use crate::plugins::log::{CallLog, LogSource};

/// Selects [`ErpHostView`] as the data the generated `add_to_linker` hands
/// to our implementation.
pub(crate) struct ErpHost;

impl HasData for ErpHost {
    type Data<'a> = ErpHostView<'a>;
}

/// What the host interface may see of a call's state, borrowed from the
/// store for the length of one host call.
pub(crate) struct ErpHostView<'a> {
    pub connection: &'a ConnectionContext,
    pub log: &'a CallLog,
}

impl host::Host for ErpHostView<'_> {
    fn log(&mut self, level: host::LogLevel, message: String) {
        self.log
            .with(|book| book.line(LogSource::Plugin, level.into(), &message));
    }

    fn base_url(&mut self) -> String {
        self.connection.base_url.clone()
    }

    fn setting(&mut self, key: String) -> Option<String> {
        self.connection.settings.get(&key).cloned()
    }

    fn secret(&mut self, key: String) -> Option<String> {
        self.connection.secrets.get(&key).cloned()
    }
}

/// `rescind:erp/types` declares types only.
impl types::Host for ErpHostView<'_> {}
