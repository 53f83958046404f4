//! Test guest `sandbox-probe`: tries what a sandboxed plugin must not be able
//! to do, and reports what it saw as JSON in `Ack.message` (reference
//! `sandbox-probe`), so that a host test can assert nothing was reachable:
//!
//! ```json
//! { "env": {"count": 0, "names": []},
//!   "args": [],
//!   "cwd": {"error": "…"},
//!   "fsRoot": {"error": "…"},           // or {"ok": ["bin", "etc", …]}
//!   "fileRead": {"error": "…"},         // /etc/passwd, {"ok": <bytes read>}
//!   "tcp": {"error": "…"},              // connect to setting probeAddress
//!   "udp": {"error": "…"},              // bind 0.0.0.0:0
//!   "dns": {"error": "…"} }             // resolve localhost
//! ```
//!
//! The TCP target is the connection setting `probeAddress` (default
//! `127.0.0.1:80`): point it at a listener of the test to check that no
//! connection arrives.

use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError, config};
use serde_json::{Value, json};

/// The default TCP target when the connection has no `probeAddress`.
pub const DEFAULT_PROBE_ADDRESS: &str = "127.0.0.1:80";

/// Probes the sandbox.
pub struct SandboxProbe;

impl IntegrationProcessor for SandboxProbe {
    fn submit_cancellation(_cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        let address = config::setting_or("probeAddress", DEFAULT_PROBE_ADDRESS);
        Ok(Ack::with_reference("sandbox-probe").with_message(probe(&address).to_string()))
    }
}

rescind_guest::register_integration_processor!(SandboxProbe);

/// Tries each door and writes down what happened.
pub fn probe(tcp_address: &str) -> Value {
    let names: Vec<String> = std::env::vars_os()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
    let args: Vec<String> = std::env::args_os()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let cwd = std::env::current_dir().map(|dir| dir.display().to_string());
    let fs_root = std::fs::read_dir("/").map(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .take(100)
            .collect::<Vec<_>>()
    });
    let file_read = std::fs::read("/etc/passwd").map(|bytes| bytes.len());
    let tcp = tcp_address
        .to_socket_addrs()
        .and_then(|mut addresses| {
            addresses
                .next()
                .ok_or_else(|| std::io::Error::other("no address"))
        })
        .and_then(|address| TcpStream::connect_timeout(&address, Duration::from_secs(2)))
        .map(|stream| {
            stream
                .peer_addr()
                .map(|peer| peer.to_string())
                .unwrap_or_default()
        });
    let udp = UdpSocket::bind("0.0.0.0:0").map(|socket| {
        socket
            .local_addr()
            .map(|local| local.to_string())
            .unwrap_or_default()
    });
    let dns = ("localhost", 80).to_socket_addrs().map(|addresses| {
        addresses
            .map(|address| address.to_string())
            .collect::<Vec<_>>()
    });
    json!({
        "env": {"count": names.len(), "names": names},
        "args": args,
        "cwd": outcome(cwd),
        "fsRoot": outcome(fs_root),
        "fileRead": outcome(file_read),
        "tcp": outcome(tcp),
        "udp": outcome(udp),
        "dns": outcome(dns),
    })
}

fn outcome<T: Into<Value>>(result: std::io::Result<T>) -> Value {
    match result {
        Ok(value) => json!({ "ok": value.into() }),
        Err(error) => json!({ "error": error.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rescind_guest::testing::{Connection, sample_cancellation};

    /// Outside a sandbox the probe must see the doors open; otherwise a
    /// sandbox test that finds them shut would prove nothing.
    #[test]
    fn sees_what_an_unsandboxed_process_can_reach() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let connection =
            Connection::new("http://127.0.0.1:9").setting("probeAddress", address.clone());
        let ack = connection
            .submit::<SandboxProbe>(&sample_cancellation())
            .unwrap();
        let report: Value = serde_json::from_str(ack.message.as_deref().unwrap()).unwrap();

        assert_eq!(report["tcp"]["ok"], address.as_str());
        assert!(report["env"]["count"].as_u64().unwrap() > 0, "{report}");
        assert!(
            report["fsRoot"]["ok"]
                .as_array()
                .is_some_and(|e| !e.is_empty()),
            "{report}"
        );
        assert!(report["cwd"]["ok"].is_string(), "{report}");
        assert!(report["udp"]["ok"].is_string(), "{report}");
    }

    #[test]
    fn reports_a_refused_connection_as_an_error() {
        // Bind then drop: nothing listens on that port any more.
        let address = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let report = probe(&address);
        assert!(report["tcp"]["error"].is_string(), "{report}");
        assert!(report["tcp"].get("ok").is_none(), "{report}");
    }
}
