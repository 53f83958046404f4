//! The egress policy: which destinations a plugin may reach over wasi:http.
//!
//! Pure policy, no wasmtime and no I/O: the mechanism that enforces it
//! (resolving, connecting, TLS) lives in `outbound_impl.rs`, and the API
//! validates a connection with this same parser.
//!
//! **Entries.** An ERP connection lists its `allowedHosts` as `host`,
//! `host:port` or `scheme://host[:port]` (`*.` may start a host to allow
//! its subdomains). An entry without a scheme means `https://`: plain
//! `http://` sends the connection's secrets in clear, so it is allowed only
//! where the entry names `http://`, or where the entry is a loopback IP
//! literal (`127.0.0.1:9000`: the traffic never leaves the machine). An
//! entry without a port allows the default port of the scheme (443, or 80
//! for http). Refused: `*`, port 0, user info, a path, cloud metadata
//! endpoints, and addresses no request may go to (unspecified, multicast,
//! broadcast).
//!
//! **Addresses.** A request's host name is resolved once and *every*
//! address it resolves to must pass ([`EgressPolicy::check_addresses`]):
//! public addresses pass; loopback, private, link-local and carrier-grade
//! NAT addresses pass when the connection sets `allowPrivateNetwork` or
//! lists the address itself; documentation, benchmarking and reserved
//! ranges only when listed; metadata, unspecified, multicast and broadcast
//! addresses never. A request to an IP literal must match an entry naming
//! that address, and then reaches exactly it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::plugins::address::{self, AddressClass, METADATA_NAMES};

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
    /// This DNS name only (lower case, no trailing dot).
    Name(String),
    /// This address only.
    Ip(IpAddr),
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
    /// The entry has a path, query or fragment.
    #[error(
        "allowedHosts entry `{0}` has more than a host: list only scheme, host and port \
         (e.g. `https://erp.example.com:8443`); the plugin may then use any path on it"
    )]
    NotJustAHost(String),
    /// The entry carries user info (`user:password@`).
    #[error(
        "allowedHosts entry `{0}` carries user info (`…@`): list only the host, and put \
         credentials in the connection's secrets"
    )]
    UserInfo(String),
    /// The entry's port is not a number from 1 to 65535.
    #[error("allowedHosts entry `{0}` has an invalid port: use a number from 1 to 65535")]
    Port(String),
    /// The entry's host is not a valid DNS name or IP address.
    #[error(
        "allowedHosts entry `{0}` has an invalid host: use a DNS name (`erp.example.com`, \
         `*.example.com` for its subdomains), an IPv4 address or a bracketed IPv6 address \
         (`[2001:db8::1]`)"
    )]
    Host(String),
    /// The entry names a cloud metadata endpoint.
    #[error(
        "allowedHosts entry `{0}` is a cloud metadata endpoint, which hands out the \
         machine's credentials: plugins may never reach it, remove the entry"
    )]
    Metadata(String),
    /// The entry is an address no request may go to.
    #[error(
        "allowedHosts entry `{entry}` is {} {class} address, not a host a request can go \
         to: list the ERP's own address or name",
        article(.class)
    )]
    NotADestination {
        /// The refused entry.
        entry: String,
        /// What kind of address it is.
        class: AddressClass,
    },
    /// The entry writes an IPv4 address in a form other than the dotted
    /// quad (`2130706433`, `0x7f.1`, `127.1`, or an IPv6 form of it).
    #[error(
        "allowedHosts entry `{entry}` writes the IPv4 address {address} unusually: write `{address}`"
    )]
    UnusualIpv4 {
        /// The refused entry.
        entry: String,
        /// The address it stands for.
        address: Ipv4Addr,
    },
}

fn article(class: &AddressClass) -> &'static str {
    match class {
        AddressClass::Unspecified => "an",
        _ => "a",
    }
}

impl AllowedHosts {
    /// Parses a connection's entries; the first invalid entry is reported.
    pub fn parse<I, S>(entries: I) -> Result<Self, AllowedHostError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::parse_each(entries).map_err(|mut errors| errors.swap_remove(0).1)
    }

    /// Parses a connection's entries, reporting every invalid one with its
    /// index (what the API answers as `allowedHosts[i]`).
    pub fn parse_each<I, S>(entries: I) -> Result<Self, Vec<(usize, AllowedHostError)>>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut parsed = Vec::new();
        let mut errors = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            match AllowedHost::parse(entry.as_ref()) {
                Ok(entry) => parsed.push(entry),
                Err(error) => errors.push((i, error)),
            }
        }
        if errors.is_empty() {
            Ok(Self { entries: parsed })
        } else {
            Err(errors)
        }
    }

    /// Whether the list is empty (then every request is denied).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn lists_address(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.entries
            .iter()
            .any(|e| matches!(e.host, HostPattern::Ip(ip) if ip == address))
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
        if rest.contains('@') {
            return Err(AllowedHostError::UserInfo(raw.into()));
        }
        if rest.contains(['/', '?', '#']) {
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
                normalize_name(domain).ok_or_else(|| AllowedHostError::Host(raw.into()))?,
            ),
            None => Self::parse_host(raw, host)?,
        };
        Ok(Self { scheme, host, port })
    }

    fn parse_host(raw: &str, host: &str) -> Result<HostPattern, AllowedHostError> {
        let ip = match parse_ip(host) {
            Some(ip) => ip,
            None => {
                if let Some(address) = address::legacy_ipv4(host) {
                    return Err(AllowedHostError::UnusualIpv4 {
                        entry: raw.into(),
                        address,
                    });
                }
                let name =
                    normalize_name(host).ok_or_else(|| AllowedHostError::Host(raw.into()))?;
                if is_metadata_name(&name) {
                    return Err(AllowedHostError::Metadata(raw.into()));
                }
                return Ok(HostPattern::Name(name));
            }
        };
        if let IpAddr::V6(v6) = ip
            && (v6.to_ipv4_mapped().is_some() || is_compatible(v6))
            && let Some(address) = address::embedded_ipv4(v6)
        {
            return Err(AllowedHostError::UnusualIpv4 {
                entry: raw.into(),
                address,
            });
        }
        match address::classify(ip) {
            AddressClass::Metadata => Err(AllowedHostError::Metadata(raw.into())),
            class if class.is_never_reachable() => Err(AllowedHostError::NotADestination {
                entry: raw.into(),
                class,
            }),
            _ => Ok(HostPattern::Ip(ip)),
        }
    }

    /// Whether this entry allows `scheme` to `host:port`; `PlainHttp` when
    /// only the scheme stands in the way.
    fn matches(&self, scheme: Scheme, host: &DestinationHost, port: u16) -> Match {
        let host_matches = match (&self.host, host) {
            (HostPattern::Name(a), DestinationHost::Name(b)) => a == b,
            (HostPattern::Ip(a), DestinationHost::Ip(b)) => a == b,
            (HostPattern::Subdomains(domain), DestinationHost::Name(name)) => name
                .strip_suffix(domain.as_str())
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            _ => false,
        };
        if !host_matches {
            return Match::No;
        }
        let schemes_allowed: &[Scheme] = match self.scheme {
            Some(Scheme::Http) => &[Scheme::Http],
            Some(Scheme::Https) => &[Scheme::Https],
            None if self.is_loopback_literal() => &[Scheme::Http, Scheme::Https],
            None => &[Scheme::Https],
        };
        let wanted_port = self
            .port
            .unwrap_or_else(|| self.scheme.unwrap_or(scheme).default_port());
        if wanted_port != port {
            return Match::No;
        }
        if schemes_allowed.contains(&scheme) {
            Match::Yes
        } else if self.scheme.is_none() && scheme == Scheme::Http {
            Match::PlainHttp
        } else {
            Match::No
        }
    }

    fn is_loopback_literal(&self) -> bool {
        matches!(self.host, HostPattern::Ip(ip) if address::classify(ip) == AddressClass::Loopback)
    }
}

enum Match {
    Yes,
    No,
    PlainHttp,
}

/// IPv4-compatible `::a.b.c.d` (not `::` or `::1`).
fn is_compatible(v6: Ipv6Addr) -> bool {
    matches!(v6.segments(), [0, 0, 0, 0, 0, 0, hi, _] if hi != 0)
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
            HostPattern::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]")?,
            HostPattern::Ip(ip) => write!(f, "{ip}")?,
            HostPattern::Name(h) => f.write_str(h)?,
            HostPattern::Subdomains(d) => write!(f, "*.{d}")?,
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// Where a request goes, as its URL names it: checked against the
/// allow-list by [`EgressPolicy::check_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    scheme: Scheme,
    host: DestinationHost,
    port: u16,
}

/// A destination's host: a name to resolve, or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationHost {
    /// A DNS name (lower case, no trailing dot).
    Name(String),
    /// An IP literal, including the legacy IPv4 forms (`2130706433`) that a
    /// resolver would read as one.
    Ip(IpAddr),
}

impl Destination {
    /// The host to resolve or connect to.
    pub fn host(&self) -> &DestinationHost {
        &self.host
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the request goes over TLS.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::Https
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

impl fmt::Display for DestinationHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The egress policy of one connection: its allow-list and whether names
/// may resolve into private networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    connection: String,
    hosts: AllowedHosts,
    allow_private_network: bool,
}

/// Why a request may not go out. The message says what was refused and what
/// to change; it becomes the attempt's `misconfigured` outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressRefusal {
    /// The URL's scheme is neither http nor https.
    #[error("egress refused: scheme `{scheme}` is not supported; plugins speak http and https")]
    Scheme {
        /// The scheme the request named.
        scheme: String,
    },
    /// The URL's host part is unreadable.
    #[error("egress refused: `{authority}` is not a host[:port] a request can go to")]
    Authority {
        /// The authority the request named.
        authority: String,
    },
    /// The URL carries user info (`http://allowed@evil`).
    #[error(
        "egress refused: the request to `{authority}` carries user info (`…@`), which \
         plugins may not send: put credentials in headers, from the connection's secrets"
    )]
    UserInfo {
        /// The authority the request named.
        authority: String,
    },
    /// The destination is not in the connection's allow-list.
    #[error(
        "egress refused: {destination} is not in the allowedHosts of connection \
         \"{connection}\"; add it there if the plugin should reach it"
    )]
    NotListed {
        /// Where the request would go.
        destination: String,
        /// The connection's name.
        connection: String,
    },
    /// The destination is listed for https only and the request is plain
    /// http.
    #[error(
        "egress refused: plain http to {destination} would send the connection's secrets \
         unencrypted; use https, or write `http://{host}:{port}` in the allowedHosts of \
         connection \"{connection}\""
    )]
    PlainHttp {
        /// Where the request would go.
        destination: String,
        /// Its host, as an entry would write it.
        host: String,
        /// Its port.
        port: u16,
        /// The connection's name.
        connection: String,
    },
    /// The host is a cloud metadata service's name.
    #[error("egress refused: {host} is a cloud metadata endpoint, which plugins may never reach")]
    MetadataName {
        /// The host.
        host: String,
    },
    /// An address the destination resolved to may never be reached.
    #[error(
        "egress refused: {host} resolved to {address} ({class}), which plugins may never reach"
    )]
    NeverReachable {
        /// The host the request named.
        host: String,
        /// The address it resolved to.
        address: IpAddr,
        /// Its class.
        class: AddressClass,
    },
    /// An address the destination resolved to is in a private network and
    /// the connection does not open it.
    #[error(
        "egress refused: {host} resolved to {address} ({class}); list the address or set \
         allowPrivateNetwork on connection \"{connection}\""
    )]
    PrivateNetwork {
        /// The host the request named.
        host: String,
        /// The address it resolved to.
        address: IpAddr,
        /// Its class.
        class: AddressClass,
        /// The connection's name.
        connection: String,
    },
    /// An address the destination resolved to is in a special-purpose range
    /// that only an explicit entry opens.
    #[error(
        "egress refused: {host} resolved to {address} ({class}); list the address in the \
         allowedHosts of connection \"{connection}\" to reach it"
    )]
    SpecialPurpose {
        /// The host the request named.
        host: String,
        /// The address it resolved to.
        address: IpAddr,
        /// Its class.
        class: AddressClass,
        /// The connection's name.
        connection: String,
    },
}

impl EgressPolicy {
    /// The policy of connection `connection`.
    pub fn new(
        connection: impl Into<String>,
        hosts: AllowedHosts,
        allow_private_network: bool,
    ) -> Self {
        Self {
            connection: connection.into(),
            hosts,
            allow_private_network,
        }
    }

    /// The connection's name.
    pub fn connection(&self) -> &str {
        &self.connection
    }

    /// Checks a request's `scheme` and `authority` (`host[:port]` as in a
    /// URI; without a port the scheme's default) against the allow-list,
    /// before anything is resolved.
    pub fn check_request(
        &self,
        scheme: &str,
        authority: &str,
    ) -> Result<Destination, EgressRefusal> {
        let destination = self.destination(scheme, authority)?;
        if let DestinationHost::Name(name) = &destination.host
            && is_metadata_name(name)
        {
            return Err(EgressRefusal::MetadataName { host: name.clone() });
        }
        let mut plain_http = false;
        for entry in &self.hosts.entries {
            match entry.matches(destination.scheme, &destination.host, destination.port) {
                Match::Yes => return Ok(destination),
                Match::PlainHttp => plain_http = true,
                Match::No => {}
            }
        }
        Err(if plain_http {
            EgressRefusal::PlainHttp {
                destination: destination.to_string(),
                host: destination.host.to_string(),
                port: destination.port,
                connection: self.connection.clone(),
            }
        } else {
            EgressRefusal::NotListed {
                destination: destination.to_string(),
                connection: self.connection.clone(),
            }
        })
    }

    fn destination(&self, scheme: &str, authority: &str) -> Result<Destination, EgressRefusal> {
        let scheme = Scheme::parse(scheme).ok_or_else(|| EgressRefusal::Scheme {
            scheme: scheme.to_owned(),
        })?;
        if authority.contains('@') {
            return Err(EgressRefusal::UserInfo {
                authority: authority.to_owned(),
            });
        }
        let unreadable = || EgressRefusal::Authority {
            authority: authority.to_owned(),
        };
        let (host, port) = split_authority(authority).ok_or_else(unreadable)?;
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(unreadable)?,
            None => scheme.default_port(),
        };
        let host = match parse_ip(host).or_else(|| address::legacy_ipv4(host).map(IpAddr::V4)) {
            Some(ip) => DestinationHost::Ip(ip),
            None => DestinationHost::Name(normalize_name(host).ok_or_else(unreadable)?),
        };
        Ok(Destination { scheme, host, port })
    }

    /// Checks every address the destination resolved to (for an IP literal:
    /// that address). All must pass: one refused address refuses the
    /// request, so that which one a connection would pick does not matter.
    pub fn check_addresses(
        &self,
        destination: &Destination,
        addresses: &[IpAddr],
    ) -> Result<(), EgressRefusal> {
        let host = destination.host.to_string();
        for &address in addresses {
            let class = address::classify(address);
            let listed = match destination.host {
                // check_request matched an entry naming this very address.
                DestinationHost::Ip(ip) => ip == address || self.hosts.lists_address(address),
                DestinationHost::Name(_) => self.hosts.lists_address(address),
            };
            if class.is_never_reachable() {
                return Err(EgressRefusal::NeverReachable {
                    host,
                    address,
                    class,
                });
            }
            if class == AddressClass::Public || listed {
                continue;
            }
            if class.is_private_network() {
                if self.allow_private_network {
                    continue;
                }
                return Err(EgressRefusal::PrivateNetwork {
                    host,
                    address,
                    class,
                    connection: self.connection.clone(),
                });
            }
            return Err(EgressRefusal::SpecialPurpose {
                host,
                address,
                class,
                connection: self.connection.clone(),
            });
        }
        Ok(())
    }
}

/// Why a connection's `baseUrl` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BaseUrlError {
    /// Not an http or https URL.
    #[error("must start with http:// or https://")]
    Scheme,
    /// Nothing between the scheme and the path.
    #[error("has no host")]
    NoHost,
    /// `user:password@` before the host.
    #[error(
        "carries credentials (`user:password@`): put credentials in secrets, which are \
         write-only and redacted from logs"
    )]
    Credentials,
}

/// Checks a connection's `baseUrl`: an http or https URL with a host and no
/// credentials in it (a plugin's requests under it would carry them, and
/// the URL is shown wherever the connection is).
pub fn check_base_url(url: &str) -> Result<(), BaseUrlError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(BaseUrlError::Scheme);
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(BaseUrlError::Credentials);
    }
    if authority.is_empty() {
        return Err(BaseUrlError::NoHost);
    }
    Ok(())
}

fn is_metadata_name(name: &str) -> bool {
    METADATA_NAMES.contains(&name)
}

fn parse_ip(host: &str) -> Option<IpAddr> {
    host.parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .or_else(|_| host.parse::<Ipv6Addr>().map(IpAddr::V6))
        .ok()
}

/// Splits `host[:port]` or `[v6][:port]`; `None` when brackets do not close
/// or something follows them other than a port.
fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<Ipv6Addr>().ok()?;
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

/// Lower-cases a DNS name and drops a trailing dot; `None` when it is not a
/// DNS name.
fn normalize_name(host: &str) -> Option<String> {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    is_dns_name(&host).then_some(host)
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

    fn policy(entries: &[&str], allow_private_network: bool) -> EgressPolicy {
        EgressPolicy::new(
            "erp",
            AllowedHosts::parse(entries).expect("valid entries"),
            allow_private_network,
        )
    }

    fn permits(entries: &[&str], scheme: &str, authority: &str) -> bool {
        policy(entries, false)
            .check_request(scheme, authority)
            .is_ok()
    }

    #[test]
    fn requests_table() {
        // (entries, scheme, authority, allowed)
        let cases: &[(&[&str], &str, &str, bool)] = &[
            // a loopback IP literal allows http and https on its port
            (&["127.0.0.1:9000"], "http", "127.0.0.1:9000", true),
            (&["127.0.0.1:9000"], "https", "127.0.0.1:9000", true),
            (&["127.0.0.1:9000"], "http", "127.0.0.1:9001", false),
            (&["127.0.0.1:9000"], "http", "127.0.0.2:9000", false),
            (&["127.0.0.1:9000"], "http", "localhost:9000", false),
            // IPv6 and legacy forms of a listed address are other strings
            (
                &["127.0.0.1:9000"],
                "http",
                "[::ffff:127.0.0.1]:9000",
                false,
            ),
            (&["127.0.0.1:9000"], "http", "[::127.0.0.1]:9000", false),
            // …but a legacy form reads as the address a resolver would see
            (&["127.0.0.1:9000"], "http", "2130706433:9000", true),
            (&["erp.example.com"], "http", "2130706433", false),
            // no scheme: https, on its default port
            (&["erp.example.com"], "https", "erp.example.com", true),
            (&["erp.example.com"], "https", "erp.example.com:443", true),
            (&["erp.example.com"], "http", "erp.example.com", false),
            (&["erp.example.com"], "http", "erp.example.com:443", false),
            (&["erp.example.com"], "https", "erp.example.com:8443", false),
            (
                &["erp.example.com:8080"],
                "http",
                "erp.example.com:8080",
                false,
            ),
            (&["10.0.0.5:8000"], "http", "10.0.0.5:8000", false),
            (&["10.0.0.5:8000"], "https", "10.0.0.5:8000", true),
            // `localhost` is a name like any other
            (&["localhost:9000"], "http", "localhost:9000", false),
            (&["http://localhost:9000"], "http", "localhost:9000", true),
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
            (&["http://erp.example.com"], "http", "erp.example.com", true),
            (
                &["http://erp.example.com"],
                "https",
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
            // other schemes, user info and broken authorities never pass
            (&["erp.example.com"], "ftp", "erp.example.com", false),
            (&["erp.example.com"], "https", "erp.example.com:http", false),
            (&["erp.example.com"], "https", "erp.example.com:0", false),
            (&["erp.example.com"], "https", "", false),
            (
                &["allowed.example.com"],
                "https",
                "allowed.example.com@evil.example",
                false,
            ),
            (&["evil.example"], "https", "allowed@evil.example", false),
        ];
        for (entries, scheme, authority, allowed) in cases {
            assert_eq!(
                permits(entries, scheme, authority),
                *allowed,
                "{entries:?} vs {scheme}://{authority}"
            );
        }
    }

    #[test]
    fn refusals_say_what_to_change() {
        let p = policy(&["erp.example.com:8080", "127.0.0.1:9000"], false);
        let refusal =
            |scheme, authority| p.check_request(scheme, authority).unwrap_err().to_string();
        assert_eq!(
            refusal("http", "erp.example.com:8080"),
            "egress refused: plain http to http://erp.example.com:8080 would send the \
             connection's secrets unencrypted; use https, or write \
             `http://erp.example.com:8080` in the allowedHosts of connection \"erp\""
        );
        assert_eq!(
            refusal("https", "other.example.com"),
            "egress refused: https://other.example.com:443 is not in the allowedHosts of \
             connection \"erp\"; add it there if the plugin should reach it"
        );
        assert!(refusal("http", "allowed@evil").contains("user info"));
        assert!(refusal("https", "metadata.google.internal").contains("cloud metadata"));
        assert!(refusal("https", "Metadata.Google.Internal.").contains("cloud metadata"));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_table() {
        // (entries, allowPrivateNetwork, authority, resolved, verdict)
        // verdict: Ok(()) or the refusal's kind
        /// (entries, allowPrivateNetwork, authority, resolved, verdict)
        type Case = (
            &'static [&'static str],
            bool,
            &'static str,
            &'static [&'static str],
            &'static str,
        );
        let cases: &[Case] = &[
            (
                &["erp.example.com"],
                false,
                "erp.example.com",
                &["93.184.215.14"],
                "ok",
            ),
            (
                &["erp.example.com"],
                false,
                "erp.example.com",
                &["10.0.0.5"],
                "private",
            ),
            (
                &["erp.example.com"],
                true,
                "erp.example.com",
                &["10.0.0.5"],
                "ok",
            ),
            (
                &["erp.example.com"],
                false,
                "erp.example.com",
                &["127.0.0.1"],
                "private",
            ),
            (
                &["erp.example.com"],
                true,
                "erp.example.com",
                &["127.0.0.1"],
                "ok",
            ),
            (
                &["erp.example.com"],
                false,
                "erp.example.com",
                &["::ffff:127.0.0.1"],
                "private",
            ),
            (
                &["erp.example.com"],
                false,
                "erp.example.com",
                &["::127.0.0.1"],
                "private",
            ),
            (
                &["erp.example.com"],
                false,
                "erp.example.com",
                &["100.64.1.1"],
                "private",
            ),
            (
                &["erp.example.com"],
                false,
                "erp.example.com",
                &["fe80::1"],
                "private",
            ),
            // one bad address among good ones refuses the request
            (
                &["erp.example.com"],
                false,
                "erp.example.com",
                &["93.184.215.14", "10.0.0.5"],
                "private",
            ),
            // the address itself listed opens it for names resolving there
            (
                &["erp.example.com", "10.0.0.5:443"],
                false,
                "erp.example.com",
                &["10.0.0.5"],
                "ok",
            ),
            (
                &["erp.example.com", "10.0.0.5"],
                false,
                "erp.example.com",
                &["::ffff:10.0.0.5"],
                "ok",
            ),
            (
                &["erp.example.com", "10.0.0.5"],
                false,
                "erp.example.com",
                &["10.0.0.6"],
                "private",
            ),
            // metadata, unspecified, multicast, broadcast: never
            (
                &["erp.example.com"],
                true,
                "erp.example.com",
                &["169.254.169.254"],
                "never",
            ),
            (
                &["erp.example.com"],
                true,
                "erp.example.com",
                &["::ffff:169.254.169.254"],
                "never",
            ),
            (
                &["erp.example.com"],
                true,
                "erp.example.com",
                &["fd00:ec2::254"],
                "never",
            ),
            (
                &["erp.example.com"],
                true,
                "erp.example.com",
                &["100.100.100.200"],
                "never",
            ),
            (
                &["erp.example.com"],
                true,
                "erp.example.com",
                &["0.0.0.0"],
                "never",
            ),
            (
                &["erp.example.com"],
                true,
                "erp.example.com",
                &["224.0.0.1"],
                "never",
            ),
            (
                &["erp.example.com"],
                true,
                "erp.example.com",
                &["255.255.255.255"],
                "never",
            ),
            // special-purpose ranges: only when listed
            (
                &["erp.example.com"],
                true,
                "erp.example.com",
                &["198.18.0.1"],
                "special",
            ),
            (
                &["erp.example.com"],
                true,
                "erp.example.com",
                &["192.0.2.1"],
                "special",
            ),
            (
                &["erp.example.com", "198.18.0.1"],
                false,
                "erp.example.com",
                &["198.18.0.1"],
                "ok",
            ),
            // an IP literal request reaches exactly the listed address
            (
                &["127.0.0.1:9000"],
                false,
                "127.0.0.1:9000",
                &["127.0.0.1"],
                "ok",
            ),
            (&["10.0.0.5:443"], false, "10.0.0.5", &["10.0.0.5"], "ok"),
            (
                &["198.18.0.1:443"],
                false,
                "198.18.0.1",
                &["198.18.0.1"],
                "ok",
            ),
        ];
        for (entries, private, authority, resolved, verdict) in cases {
            let p = policy(entries, *private);
            let destination = p
                .check_request("https", authority)
                .or_else(|_| p.check_request("http", authority))
                .unwrap_or_else(|e| panic!("{entries:?} {authority}: {e}"));
            let addresses: Vec<IpAddr> = resolved.iter().map(|a| ip(a)).collect();
            let got = match p.check_addresses(&destination, &addresses) {
                Ok(()) => "ok",
                Err(EgressRefusal::PrivateNetwork { .. }) => "private",
                Err(EgressRefusal::NeverReachable { .. }) => "never",
                Err(EgressRefusal::SpecialPurpose { .. }) => "special",
                Err(other) => panic!("unexpected {other}"),
            };
            assert_eq!(
                got, *verdict,
                "{entries:?} private={private} {authority} -> {resolved:?}"
            );
        }
    }

    #[test]
    fn the_private_network_refusal_names_the_fix() {
        let p = policy(&["erp.example.com"], false);
        let destination = p.check_request("https", "erp.example.com").unwrap();
        let refusal = p
            .check_addresses(&destination, &[ip("10.0.0.5")])
            .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "egress refused: erp.example.com resolved to 10.0.0.5 (private); list the \
             address or set allowPrivateNetwork on connection \"erp\""
        );
    }

    #[test]
    fn refused_entries_table() {
        use AllowedHostError as E;
        let class = |entry: &str, class| E::NotADestination {
            entry: entry.into(),
            class,
        };
        let unusual = |entry: &str| E::UnusualIpv4 {
            entry: entry.into(),
            address: Ipv4Addr::LOCALHOST,
        };
        let cases: &[(&str, AllowedHostError)] = &[
            ("", E::Empty),
            ("   ", E::Empty),
            ("*", E::Everything("*".into())),
            ("*:443", E::Everything("*:443".into())),
            (
                "ftp://erp.example.com",
                E::Scheme("ftp://erp.example.com".into()),
            ),
            (
                "https://erp.example.com/api",
                E::NotJustAHost("https://erp.example.com/api".into()),
            ),
            (
                "erp.example.com?x",
                E::NotJustAHost("erp.example.com?x".into()),
            ),
            (
                "user@erp.example.com",
                E::UserInfo("user@erp.example.com".into()),
            ),
            (
                "https://user:pw@erp.example.com",
                E::UserInfo("https://user:pw@erp.example.com".into()),
            ),
            ("erp.example.com:0", E::Port("erp.example.com:0".into())),
            (
                "erp.example.com:99999",
                E::Port("erp.example.com:99999".into()),
            ),
            ("erp.example.com:", E::Port("erp.example.com:".into())),
            ("erp example", E::Host("erp example".into())),
            ("[::1", E::Host("[::1".into())),
            ("[erp.example.com]", E::Host("[erp.example.com]".into())),
            ("::1", E::Host("::1".into())),
            ("*.", E::Host("*.".into())),
            ("a.*.com", E::Host("a.*.com".into())),
            // cloud metadata, by address or name
            ("169.254.169.254", E::Metadata("169.254.169.254".into())),
            (
                "169.254.169.254:80",
                E::Metadata("169.254.169.254:80".into()),
            ),
            (
                "http://169.254.169.254",
                E::Metadata("http://169.254.169.254".into()),
            ),
            ("[fd00:ec2::254]", E::Metadata("[fd00:ec2::254]".into())),
            ("100.100.100.200", E::Metadata("100.100.100.200".into())),
            (
                "metadata.google.internal",
                E::Metadata("metadata.google.internal".into()),
            ),
            (
                "Metadata.Google.Internal.",
                E::Metadata("Metadata.Google.Internal.".into()),
            ),
            ("metadata.goog:80", E::Metadata("metadata.goog:80".into())),
            // never a destination
            ("0.0.0.0:80", class("0.0.0.0:80", AddressClass::Unspecified)),
            ("[::]:80", class("[::]:80", AddressClass::Unspecified)),
            ("224.0.0.1", class("224.0.0.1", AddressClass::Multicast)),
            (
                "255.255.255.255",
                class("255.255.255.255", AddressClass::Broadcast),
            ),
            // one spelling per IPv4 address
            ("2130706433", unusual("2130706433")),
            ("0x7f.1:9000", unusual("0x7f.1:9000")),
            ("127.1", unusual("127.1")),
            ("[::ffff:127.0.0.1]", unusual("[::ffff:127.0.0.1]")),
            ("[::127.0.0.1]:9000", unusual("[::127.0.0.1]:9000")),
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
    fn base_urls_table() {
        let cases = [
            ("http://127.0.0.1:9000", Ok(())),
            ("https://erp.example.com/api/v1?x=1", Ok(())),
            ("HTTPS://erp.example.com", Ok(())),
            ("https://erp.example.com/path@with-at", Ok(())),
            (
                "http://user:pw@erp.example.com",
                Err(BaseUrlError::Credentials),
            ),
            (
                "https://token@erp.example.com/api",
                Err(BaseUrlError::Credentials),
            ),
            ("ftp://erp.example.com", Err(BaseUrlError::Scheme)),
            ("erp.example.com", Err(BaseUrlError::Scheme)),
            ("http://", Err(BaseUrlError::NoHost)),
            ("https:///path", Err(BaseUrlError::NoHost)),
        ];
        for (url, expected) in cases {
            assert_eq!(check_base_url(url), expected, "{url}");
        }
        assert!(
            BaseUrlError::Credentials
                .to_string()
                .contains("put credentials in secrets")
        );
    }

    #[test]
    fn accepted_entries() {
        for entry in [
            "erp.example.com",
            "https://erp.example.com",
            "http://erp.example.com:8080",
            "*.example.com",
            "127.0.0.1:9000",
            "localhost:9000",
            "10.0.0.5",
            "[::1]:9000",
            "[2001:db8::1]:443",
            "192.0.2.10",
            "169.254.10.1",
        ] {
            AllowedHosts::parse([entry]).unwrap_or_else(|e| panic!("{entry}: {e}"));
        }
    }

    #[test]
    fn every_refused_entry_is_reported_with_its_index() {
        let errors = AllowedHosts::parse_each(["erp.example.com", "*", "host:0"]).unwrap_err();
        let indexes: Vec<usize> = errors.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, [1, 2]);
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
        let err = AllowedHosts::parse(["0x7f.1"]).unwrap_err();
        assert!(err.to_string().contains("write `127.0.0.1`"), "{err}");
    }

    #[test]
    fn entries_display_as_normalized() {
        let hosts =
            AllowedHosts::parse(["HTTPS://ERP.example.com:8443", "*.Example.com", "[::1]:80"])
                .unwrap();
        assert_eq!(
            hosts.to_string(),
            "https://erp.example.com:8443, *.example.com, [::1]:80"
        );
    }
}
