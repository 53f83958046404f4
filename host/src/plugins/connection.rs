//! What a plugin call may know about the ERP connection it talks to.

use std::collections::BTreeMap;
use std::fmt;

/// The ERP connection of one call: what the `rescind:erp/host` interface
/// answers, and the outbound allow-list.
///
/// `Debug` shows secret names only, never their values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectionContext {
    /// The connection's name, as job definitions reference it: egress
    /// refusals name it so that the operator knows which one to fix.
    pub name: String,
    /// The ERP's base URL, e.g. `https://erp.example.com/api` (`base-url`).
    pub base_url: String,
    /// The hosts the plugin may reach, as `host`, `host:port` or
    /// `scheme://host[:port]` (see [`crate::plugins::AllowedHosts`]). An
    /// invalid entry makes the call `Misconfigured` without running the plugin.
    pub allowed_hosts: Vec<String>,
    /// Whether host names in `allowed_hosts` may resolve to loopback,
    /// private, link-local or carrier-grade NAT addresses (an ERP behind
    /// the company firewall). Cloud metadata addresses stay unreachable.
    pub allow_private_network: bool,
    /// Certificate authorities trusted for this connection's TLS, besides
    /// the public web roots: PEM, one or more certificates. Invalid PEM makes
    /// the call `Misconfigured` without running the plugin.
    pub ca_certificates: Option<String>,
    /// Plain settings by name (`setting`).
    pub settings: BTreeMap<String, String>,
    /// Secrets by name (`secret`); their values are redacted from the log.
    pub secrets: BTreeMap<String, String>,
}

impl fmt::Debug for ConnectionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionContext")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allow_private_network", &self.allow_private_network)
            .field("ca_certificates", &self.ca_certificates.is_some())
            .field("settings", &self.settings)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secret_values() {
        let connection = ConnectionContext {
            secrets: BTreeMap::from([("token".to_owned(), "s3cret-value".to_owned())]),
            ..Default::default()
        };
        let shown = format!("{connection:?}");
        assert!(shown.contains("token"), "{shown}");
        assert!(!shown.contains("s3cret-value"), "{shown}");
    }
}
