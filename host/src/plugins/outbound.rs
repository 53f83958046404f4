//! The outbound allow-list: which hosts a plugin may reach over wasi:http.
//!
//! Pure policy, no wasmtime: the mechanism that enforces it lives in
//! `outbound_impl.rs`. An ERP connection lists its `allowedHosts` as
//! `host`, `host:port` or `scheme://host[:port]` entries (`*.` may start a
//! host to allow its subdomains). An entry without a port allows the default
//! port of the request's scheme (80 for http, 443 for https), or of its own
//! scheme when it names one.
//!
//! A host name is matched as written: the list does not stop a name from
//! resolving to an internal address, so list only names you control.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The parsed allow-list of one ERP connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    scheme: Option<Scheme>,
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            _ => None,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// This host only (lower case, no trailing dot; IPv6 without brackets).
    Exact(String),
    /// Any host strictly below this domain (`*.example.com`).
    Subdomains(String),
}

/// Why an `allowedHosts` entry was refused. Each message names the entry and
/// says what a correct one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllowedHostError {
    /// The entry is empty or blank.
    #[error("an allowedHosts entry is empty: write a host such as `erp.example.com:443`")]
    Empty,
    /// The entry allows every host.
    #[error(
        "allowedHosts entry `{0}` would allow every host: list the ERP's hosts one by one, \
         e.g. `erp.example.com:443`"
    )]
    Everything(String),
    /// The entry names a scheme other than http or https.
    #[error(
        "allowedHosts entry `{0}` uses an unsupported scheme: plugins speak only `http://` \
         and `https://`"
    )]
    Scheme(String),
    /// The entry has a path, query, fragment or user info.
    #[error(
        "allowedHosts entry `{0}` has more than a host: list only scheme, host and port \
         (e.g. `https://erp.example.com:8443`); the plugin may then use any path on it"
    )]
    NotJustAHost(String),
    /// The entry's port is not a number from 1 to 65535.
    #[error("allowedHosts entry `{0}` has an invalid port: use a number from 1 to 65535")]
    Port(String),
    /// The entry's host is not a valid DNS name or IP address.
    #[error(
        "allowedHosts entry `{0}` has an invalid host: use a DNS name (`erp.example.com`, \
         `*.example.com` for its subdomains), an IPv4 address or a bracketed IPv6 address \
         (`[::1]`)"
    )]
    Host(String),
}

impl AllowedHosts {
    /// Parses a connection's entries; the first invalid entry is reported.
    pub fn parse<I, S>(entries: I) -> Result<Self, AllowedHostError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let entries = entries
            .into_iter()
            .map(|e| AllowedHost::parse(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    /// Whether a request to `scheme://authority` may go out. The authority is
    /// `host[:port]` as in a URI; without a port the scheme's default applies.
    /// Unknown schemes and unreadable authorities are never allowed.
    pub fn permits(&self, scheme: &str, authority: &str) -> bool {
        let Some(scheme) = Scheme::parse(scheme) else {
            return false;
        };
        let Some((host, port)) = split_authority(authority) else {
            return false;
        };
        let Ok(host) = normalize_host(host) else {
            return false;
        };
        let port = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(p) => p,
                Err(_) => return false,
            },
            None => scheme.default_port(),
        };
        self.entries
            .iter()
            .any(|entry| entry.matches(scheme, &host, port))
    }

    /// Whether the list is empty (then every request is denied).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl AllowedHost {
    fn parse(raw: &str) -> Result<Self, AllowedHostError> {
        let entry = raw.trim();
        if entry.is_empty() {
            return Err(AllowedHostError::Empty);
        }
        let (scheme, rest) = match entry.split_once("://") {
            Some((scheme, rest)) => (
                Some(Scheme::parse(scheme).ok_or_else(|| AllowedHostError::Scheme(raw.into()))?),
                rest,
            ),
            None => (None, entry),
        };
        // A single trailing slash is how URLs are often pasted; anything
        // more is a path the allow-list cannot express.
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(AllowedHostError::NotJustAHost(raw.into()));
        }
        let (host, port) =
            split_authority(rest).ok_or_else(|| AllowedHostError::Host(raw.into()))?;
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p != 0 => Some(p),
                _ => return Err(AllowedHostError::Port(raw.into())),
            },
        };
        if host == "*" {
            return Err(AllowedHostError::Everything(raw.into()));
        }
        let host = match host.strip_prefix("*.") {
            Some(domain) => HostPattern::Subdomains(
                normalize_host(domain)
                    .ok()
                    .filter(|d| is_dns_name(d))
                    .ok_or_else(|| AllowedHostError::Host(raw.into()))?,
            ),
            None => HostPattern::Exact(
                normalize_host(host).map_err(|()| AllowedHostError::Host(raw.into()))?,
            ),
        };
        Ok(Self { scheme, host, port })
    }

    fn matches(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if self.scheme.is_some_and(|s| s != scheme) {
            return false;
        }
        let wanted_port = self
            .port
            .unwrap_or_else(|| self.scheme.unwrap_or(scheme).default_port());
        if wanted_port != port {
            return false;
        }
        match &self.host {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        }
    }
}

/// The normalized entries, comma separated, e.g. for an error message.
impl fmt::Display for AllowedHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{entry}")?;
        }
        Ok(())
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.scheme {
            write!(f, "{}://", s.as_str())?;
        }
        match &self.host {
            HostPattern::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostPattern::Exact(h) => f.write_str(h)?,
            HostPattern::Subdomains(d) => write!(f, "*.{d}")?,
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// Splits `host[:port]` or `[v6][:port]`; `None` when brackets do not close
/// or something follows them other than a port.
fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    // An IPv6 address must be bracketed, or its last group reads as a port.
    (!host.contains(':')).then_some((host, port))
}

/// Lower-cases a DNS name and drops a trailing dot; IP literals are written
/// canonically so that `127.000.0.1` cannot slip past as a different string.
fn normalize_host(host: &str) -> Result<String, ()> {
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return Ok(v6.to_string());
    }
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return Ok(v4.to_string());
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if is_dns_name(&host) {
        Ok(host)
    } else {
        Err(())
    }
}

fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(entries).expect("valid entries")
    }

    #[test]
    fn permits_table() {
        // (entries, scheme, authority, allowed)
        let cases: &[(&[&str], &str, &str, bool)] = &[
            (&["127.0.0.1:9000"], "http", "127.0.0.1:9000", true),
            (&["127.0.0.1:9000"], "https", "127.0.0.1:9000", true),
            (&["127.0.0.1:9000"], "http", "127.0.0.1:9001", false),
            (&["127.0.0.1:9000"], "http", "127.0.0.2:9000", false),
            (&["127.0.0.1:9000"], "http", "localhost:9000", false),
            // no port: the request scheme's default port
            (&["erp.example.com"], "https", "erp.example.com", true),
            (&["erp.example.com"], "https", "erp.example.com:443", true),
            (&["erp.example.com"], "http", "erp.example.com", true),
            (&["erp.example.com"], "http", "erp.example.com:443", false),
            (&["erp.example.com"], "https", "erp.example.com:8443", false),
            // a scheme pins both the scheme and its default port
            (
                &["https://erp.example.com"],
                "https",
                "erp.example.com:443",
                true,
            ),
            (
                &["https://erp.example.com"],
                "http",
                "erp.example.com:443",
                false,
            ),
            (
                &["https://erp.example.com"],
                "http",
                "erp.example.com",
                false,
            ),
            (
                &["http://erp.example.com:8080"],
                "http",
                "erp.example.com:8080",
                true,
            ),
            (
                &["http://erp.example.com:8080/"],
                "http",
                "erp.example.com:8080",
                true,
            ),
            // case and trailing dots do not matter
            (&["ERP.Example.COM"], "https", "erp.example.com.", true),
            // subdomains
            (&["*.example.com:443"], "https", "erp.example.com", true),
            (&["*.example.com:443"], "https", "a.b.example.com", true),
            (&["*.example.com:443"], "https", "example.com", false),
            (&["*.example.com:443"], "https", "badexample.com", false),
            // IPv6 and canonical IP forms
            (&["[::1]:9000"], "http", "[::1]:9000", true),
            (&["[::1]:9000"], "http", "[0:0:0:0:0:0:0:1]:9000", true),
            (&["[::1]:9000"], "http", "::1:9000", false),
            // several entries, any one suffices
            (
                &["a.example.com", "127.0.0.1:1"],
                "http",
                "127.0.0.1:1",
                true,
            ),
            // an empty list denies everything
            (&[], "https", "erp.example.com", false),
            // other schemes and broken authorities are never allowed
            (&["erp.example.com"], "ftp", "erp.example.com", false),
            (&["erp.example.com"], "https", "erp.example.com:http", false),
            (&["erp.example.com"], "https", "", false),
        ];
        for (entries, scheme, authority, allowed) in cases {
            assert_eq!(
                list(entries).permits(scheme, authority),
                *allowed,
                "{entries:?} vs {scheme}://{authority}"
            );
        }
    }

    #[test]
    fn refused_entries_table() {
        let cases: &[(&str, AllowedHostError)] = &[
            ("", AllowedHostError::Empty),
            ("   ", AllowedHostError::Empty),
            ("*", AllowedHostError::Everything("*".into())),
            ("*:443", AllowedHostError::Everything("*:443".into())),
            (
                "ftp://erp.example.com",
                AllowedHostError::Scheme("ftp://erp.example.com".into()),
            ),
            (
                "https://erp.example.com/api",
                AllowedHostError::NotJustAHost("https://erp.example.com/api".into()),
            ),
            (
                "user@erp.example.com",
                AllowedHostError::NotJustAHost("user@erp.example.com".into()),
            ),
            (
                "erp.example.com:0",
                AllowedHostError::Port("erp.example.com:0".into()),
            ),
            (
                "erp.example.com:99999",
                AllowedHostError::Port("erp.example.com:99999".into()),
            ),
            (
                "erp.example.com:",
                AllowedHostError::Port("erp.example.com:".into()),
            ),
            ("erp example", AllowedHostError::Host("erp example".into())),
            ("[::1", AllowedHostError::Host("[::1".into())),
            ("::1", AllowedHostError::Host("::1".into())),
            ("*.", AllowedHostError::Host("*.".into())),
            ("a.*.com", AllowedHostError::Host("a.*.com".into())),
        ];
        for (entry, expected) in cases {
            assert_eq!(
                AllowedHosts::parse([entry]).unwrap_err(),
                *expected,
                "{entry:?}"
            );
        }
    }

    #[test]
    fn errors_say_how_to_fix_the_entry() {
        let err = AllowedHosts::parse(["https://erp.example.com/api"]).unwrap_err();
        assert!(
            err.to_string().contains("https://erp.example.com:8443"),
            "{err}"
        );
        let err = AllowedHosts::parse(["erp.example.com:99999"]).unwrap_err();
        assert!(err.to_string().contains("1 to 65535"), "{err}");
    }

    #[test]
    fn entries_display_as_normalized() {
        let hosts = list(&["HTTPS://ERP.example.com:8443", "*.Example.com", "[::1]:80"]);
        assert_eq!(
            hosts.to_string(),
            "https://erp.example.com:8443, *.example.com, [::1]:80"
        );
    }
}
