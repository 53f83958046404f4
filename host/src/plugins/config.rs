//! How the runtime is set up (once per process) and what bounds each call.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Set-up of the [`crate::plugins::PluginRuntime`], fixed for its lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// How many calls may run at once; further calls wait for a free slot.
    /// The instance pool is sized for this many plugin instances.
    pub max_concurrent_calls: u32,
    /// How many threads run plugin code: the most cores that plugins can
    /// keep busy at once, however many calls run. Calls share these
    /// threads, taking turns every epoch tick; on Linux they run at a lower
    /// priority (nice 10) than the rest of the host. Default: one less than
    /// the machine's cores (at least one), so that plugins busy until their
    /// deadline always leave a core to the HTTP API and the store.
    pub plugin_threads: usize,
    /// The largest memory cap a call may ask for, in bytes. Every linear
    /// memory slot of the pool is this big; a call's own
    /// [`CallLimits::memory_bytes`] is clamped to it.
    pub max_memory_bytes: u64,
    /// Where compiled plugins are cached (`<sha256>-<engine>.cwasm`); `None`
    /// compiles every plugin on every load.
    pub cache_dir: Option<PathBuf>,
    /// How often the engine's epoch advances: the granularity at which a
    /// busy guest yields and its deadline is checked.
    pub epoch_tick: Duration,
    /// Outbound HTTP: the longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Outbound HTTP: the longest wait for the response's first byte.
    pub first_byte_timeout: Duration,
    /// Outbound HTTP: the longest pause between two chunks of a response.
    pub between_bytes_timeout: Duration,
    /// Outbound HTTP: how long a connection stays open after a response
    /// read to its end, for the same plugin's next request to the same
    /// destination through the same connection settings (less when the ERP
    /// announces a shorter `Keep-Alive: timeout`). Zero closes every
    /// connection after its response. Default 3 s; at most
    /// [`MAX_OUTBOUND_KEEP_ALIVE`].
    pub keep_alive: Duration,
    /// Host names answered without asking the system resolver, like curl's
    /// `--resolve` (`rescind serve --resolve NAME=IP`). The addresses pass
    /// the same egress checks as resolved ones.
    pub resolve: ResolveOverrides,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 16,
            plugin_threads: default_plugin_threads(),
            max_memory_bytes: 256 * MIB,
            cache_dir: None,
            epoch_tick: Duration::from_millis(10),
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(10),
            between_bytes_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(3),
            resolve: ResolveOverrides::default(),
        }
    }
}

const MIB: u64 = 1024 * 1024;

/// The longest [`RuntimeConfig::keep_alive`]: a kept connection holds a
/// socket on both sides.
pub const MAX_OUTBOUND_KEEP_ALIVE: Duration = Duration::from_secs(300);

/// One less than the cores this process may use, at least one.
fn default_plugin_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get().saturating_sub(1).max(1))
}

/// Elements a plugin's table may grow to (`table.grow`): growing past it
/// traps with "table limit exceeded". The pool's own bound.
pub const MAX_TABLE_ELEMENTS: usize = 20_000;

/// The WebAssembly stack a call may use, in bytes: deeper recursion traps
/// with "call stack exhausted".
pub const MAX_WASM_STACK_BYTES: usize = 512 * 1024;

/// The bounds of one plugin call. Every outbound timeout is further cut to
/// what is left of the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Wall-clock time for the whole call: instantiation, guest code and the
    /// time spent in host calls (outbound requests included). Default 10 s.
    pub deadline: Duration,
    /// Memory cap across the plugin's linear memories, in bytes. Default 64
    /// MiB; clamped to [`RuntimeConfig::max_memory_bytes`].
    pub memory_bytes: u64,
    /// At most this many log lines are kept (a final "… N lines dropped"
    /// line tells how many were not). Default 200.
    pub log_lines: usize,
    /// At most this many bytes of log text are kept. Default 32 KiB.
    pub log_bytes: usize,
    /// A longer line is cut to this many bytes. Default 1 KiB.
    pub log_line_bytes: usize,
    /// Outgoing HTTP requests the call may make; later ones fail with
    /// `connection-limit-reached` before anything is sent. Default 16.
    pub outbound_requests: u32,
    /// Bytes of one outgoing request's header section: every field's name
    /// and value plus 4 bytes (`: ` and CRLF) each. A larger one fails with
    /// `HTTP-request-header-section-size` before anything is sent. Default
    /// 64 KiB.
    pub request_header_bytes: usize,
    /// Bytes of one response's head as received (status line, header
    /// fields, the blank line). A larger one fails the request with
    /// `HTTP-response-header-section-size`. Default 64 KiB.
    pub response_header_bytes: usize,
    /// Header fields of one response; more fail the request like an
    /// oversized head. Default 100.
    pub response_header_fields: usize,
    /// Response body bytes the call may read, all its requests together,
    /// counted as they stream in: the body that crosses it fails with
    /// `HTTP-response-body-size`. Default 8 MiB.
    pub response_body_bytes: u64,
    /// Outgoing requests whose exchange (what was sent, what the ERP
    /// answered) the call records, at most
    /// [`crate::plugins::MAX_RECORDED_EXCHANGES`]; later ones are counted.
    /// `0` records none. Default 16.
    pub recorded_exchanges: usize,
    /// WASI resources (streams, pollables, HTTP requests, header fields, …)
    /// the plugin may hold at once; creating one more traps with
    /// "resource limit exceeded". Default 1,024.
    pub resources: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(10),
            memory_bytes: 64 * MIB,
            log_lines: 200,
            log_bytes: 32 * 1024,
            log_line_bytes: 1024,
            outbound_requests: 16,
            request_header_bytes: 64 * 1024,
            response_header_bytes: 64 * 1024,
            response_header_fields: 100,
            response_body_bytes: 8 * MIB,
            recorded_exchanges: crate::plugins::MAX_RECORDED_EXCHANGES,
            resources: 1024,
        }
    }
}

/// Host names pinned to addresses, like curl's `--resolve`: an operator
/// pins an ERP's name (`erp.customer.test=10.0.0.5`), a test points a name
/// at loopback. Names are compared case-insensitively, without a trailing
/// dot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveOverrides {
    names: BTreeMap<String, Vec<IpAddr>>,
}

impl ResolveOverrides {
    /// Adds `address` to what `name` resolves to.
    pub fn insert(&mut self, name: &str, address: IpAddr) {
        let addresses = self.names.entry(normalize(name)).or_default();
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }

    /// Parses `NAME=IP` (the `--resolve` flag) and adds it.
    pub fn add_flag(&mut self, flag: &str) -> Result<(), String> {
        let (name, address) = flag
            .split_once('=')
            .ok_or_else(|| format!("`{flag}` is not NAME=IP (e.g. erp.customer.test=10.0.0.5)"))?;
        let name = name.trim();
        if name.is_empty() || name.contains([':', '/', '@', ' ']) {
            return Err(format!("`{flag}`: `{name}` is not a host name"));
        }
        let address = address
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map_err(|_| format!("`{flag}`: `{address}` is not an IP address"))?;
        self.insert(name, address);
        Ok(())
    }

    /// The addresses `name` is pinned to, if it is.
    pub fn get(&self, name: &str) -> Option<&[IpAddr]> {
        self.names.get(&normalize(name)).map(Vec::as_slice)
    }

    /// Whether no name is pinned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_flags_table() {
        let mut overrides = ResolveOverrides::default();
        overrides.add_flag("erp.customer.test=127.0.0.1").unwrap();
        overrides.add_flag("ERP.customer.test.=::1").unwrap();
        overrides.add_flag("v6.test=[fd00::5]").unwrap();
        assert_eq!(
            overrides.get("erp.customer.test").unwrap(),
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(
            overrides.get("V6.test").unwrap(),
            ["fd00::5".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(overrides.get("other.test"), None);
        for bad in [
            "erp.test",
            "erp.test=",
            "=127.0.0.1",
            "erp.test=localhost",
            "a:1=127.0.0.1",
        ] {
            assert!(overrides.add_flag(bad).is_err(), "{bad}");
        }
    }
}
