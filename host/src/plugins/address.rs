//! What kind of address a plugin's request would reach: the classification
//! behind the egress policy (`outbound.rs`).
//!
//! Pure, no I/O. Every IPv6 form that carries an IPv4 address (mapped,
//! compatible, NAT64, 6to4) is classified by the IPv4 address inside it, so
//! `[::ffff:127.0.0.1]` is loopback like `127.0.0.1`. Host names that C
//! resolvers read as IPv4 addresses (`2130706433`, `0x7f.1`, `127.1`) are
//! recognised by [`legacy_ipv4`] so that they are never handed to a
//! resolver as names.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Cloud instance-metadata addresses: they hand out the machine's cloud
/// credentials, so no plugin may ever reach them, whatever the connection
/// allows.
///
/// - `169.254.169.254`: AWS EC2, Google Cloud, Azure, Oracle Cloud,
///   OpenStack, DigitalOcean, Hetzner and others.
/// - `169.254.170.2`: AWS ECS task metadata and credentials.
/// - `169.254.170.23`, `fd00:ec2::23`: AWS EKS Pod Identity agent.
/// - `fd00:ec2::254`: AWS EC2 metadata over IPv6.
/// - `100.100.100.200`: Alibaba Cloud.
/// - `169.254.0.23`: Tencent Cloud.
/// - `192.0.0.192`: Oracle Cloud Infrastructure Classic.
pub const METADATA_ADDRESSES: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 0, 23)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 0, 192)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)),
];

/// Host names of cloud metadata services (resolving, inside the cloud, to
/// one of [`METADATA_ADDRESSES`]): refused as names too, so that the refusal
/// does not depend on what a resolver answers.
///
/// - `metadata.google.internal`, `metadata.goog`, `metadata`: Google Cloud
///   (`metadata` is the short name its resolvers complete).
/// - `instance-data`, `instance-data.ec2.internal`: AWS EC2.
/// - `metadata.tencentyun.com`: Tencent Cloud.
/// - `metadata.azure.com`: Azure's metadata service name.
pub const METADATA_NAMES: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.tencentyun.com",
    "metadata.azure.com",
];

/// What kind of destination an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// A globally routable address: an ERP on the internet.
    Public,
    /// A cloud metadata endpoint ([`METADATA_ADDRESSES`]): never reachable.
    Metadata,
    /// `127.0.0.0/8`, `::1`: this machine.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`) and unique-local
    /// `fc00::/7`.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// Carrier-grade NAT, RFC 6598 `100.64/10`.
    SharedAddressSpace,
    /// `0.0.0.0/8`, `::`: "this host" (connecting to it reaches loopback).
    Unspecified,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// RFC 5737 `192.0.2/24`, `198.51.100/24`, `203.0.113/24`; RFC 3849
    /// `2001:db8::/32`; RFC 9637 `3fff::/20`.
    Documentation,
    /// RFC 2544 `198.18/15`, RFC 5180 `2001:2::/48`.
    Benchmarking,
    /// Other special-purpose ranges (IANA registries): `240/4`, `192.0.0/24`,
    /// `100::/64`, `2001::/23`, `64:ff9b:1::/48`, `fec0::/10`, the rest of
    /// `::/8`.
    Reserved,
}

impl AddressClass {
    /// Its name in messages, e.g. `private`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Metadata => "cloud metadata",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::SharedAddressSpace => "carrier-grade NAT",
            Self::Unspecified => "unspecified",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Reserved => "reserved",
        }
    }

    /// The local networks an ERP behind a company firewall lives in: what a
    /// connection's `allowPrivateNetwork` opens to names that resolve there.
    pub fn is_private_network(self) -> bool {
        matches!(
            self,
            Self::Loopback | Self::Private | Self::LinkLocal | Self::SharedAddressSpace
        )
    }

    /// Addresses no TCP connection should ever go to, whatever the
    /// connection allows: metadata endpoints, and the unspecified, multicast
    /// and broadcast addresses (connecting to `0.0.0.0` reaches this
    /// machine; the others are not a single host).
    pub fn is_never_reachable(self) -> bool {
        matches!(
            self,
            Self::Metadata | Self::Unspecified | Self::Multicast | Self::Broadcast
        )
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies an address; IPv6 forms carrying an IPv4 address are
/// classified by that address.
pub fn classify(address: IpAddr) -> AddressClass {
    if METADATA_ADDRESSES.contains(&address) {
        return AddressClass::Metadata;
    }
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Some(v4) => classify(IpAddr::V4(v4)),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(v4: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = v4.octets();
    match (a, b, c) {
        (0, _, _) => AddressClass::Unspecified,
        (127, _, _) => AddressClass::Loopback,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => AddressClass::Private,
        (169, 254, _) => AddressClass::LinkLocal,
        (100, 64..=127, _) => AddressClass::SharedAddressSpace,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Documentation,
        (198, 18..=19, _) => AddressClass::Benchmarking,
        (224..=239, _, _) => AddressClass::Multicast,
        _ if v4 == Ipv4Addr::BROADCAST => AddressClass::Broadcast,
        (240..=255, _, _) | (192, 0, 0) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(v6: Ipv6Addr) -> AddressClass {
    let s = v6.segments();
    if v6.is_unspecified() {
        AddressClass::Unspecified
    } else if v6.is_loopback() {
        AddressClass::Loopback
    } else if s[0] & 0xfe00 == 0xfc00 {
        AddressClass::Private
    } else if s[0] & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if s[0] & 0xff00 == 0xff00 {
        AddressClass::Multicast
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || s[0] & 0xfff0 == 0x3ff0 {
        AddressClass::Documentation
    } else if s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0 {
        AddressClass::Benchmarking
    } else if s[0] & 0xff00 == 0
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
        || (s[0] == 0x2001 && s[1] < 0x0200)
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001)
        || s[0] & 0xffc0 == 0xfec0
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// The IPv4 address an IPv6 address stands for, in the forms that carry
/// one: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`
/// (deprecated, still routed by some stacks), NAT64 `64:ff9b::a.b.c.d`
/// (RFC 6052: a NAT64 gateway connects to the IPv4 address) and 6to4
/// `2002:aabb:ccdd::/48` (RFC 3056: relayed to `aa.bb.cc.dd`).
pub fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let last = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(last(hi, lo)),
        // `::` and `::1` are themselves, not 0.0.0.0 and 0.0.0.1.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => Some(last(hi, lo)),
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(last(hi, lo)),
        [0x2002, hi, lo, ..] => Some(last(hi, lo)),
        _ => None,
    }
}

/// The address a C resolver (`inet_aton`, used by `getaddrinfo`) reads in a
/// host name written in a legacy IPv4 form: one to four parts, each
/// decimal, octal (`0` prefix) or hexadecimal (`0x` prefix), the last part
/// filling the remaining bytes (`127.1`, `2130706433`, `0x7f.1`,
/// `0177.0.0.1`). `None` for the canonical dotted quad (parse that as an
/// [`Ipv4Addr`]) and for anything that is not such a form.
pub fn legacy_ipv4(host: &str) -> Option<Ipv4Addr> {
    if host.parse::<Ipv4Addr>().is_ok() {
        return None;
    }
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let numbers = parts
        .iter()
        .map(|part| parse_legacy_part(part))
        .collect::<Option<Vec<u64>>>()?;
    let (last, leading) = numbers.split_last()?;
    if leading.iter().any(|&n| n > 0xff) {
        return None;
    }
    let rest_bits = 8 * (4 - leading.len() as u32);
    if *last >= 1u64 << rest_bits {
        return None;
    }
    let value = leading
        .iter()
        .fold(0u64, |acc, &n| (acc << 8) | n)
        .checked_shl(rest_bits)?
        | last;
    Some(Ipv4Addr::from(u32::try_from(value).ok()?))
}

fn parse_legacy_part(part: &str) -> Option<u64> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classes_table() {
        use AddressClass as C;
        let cases = [
            ("93.184.215.14", C::Public),
            ("8.8.8.8", C::Public),
            ("2606:4700::6810:84e5", C::Public),
            ("127.0.0.1", C::Loopback),
            ("127.255.255.254", C::Loopback),
            ("::1", C::Loopback),
            ("10.0.0.5", C::Private),
            ("172.16.0.1", C::Private),
            ("172.31.255.255", C::Private),
            ("172.32.0.1", C::Public),
            ("192.168.1.1", C::Private),
            ("fc00::1", C::Private),
            ("fd12:3456::1", C::Private),
            ("169.254.1.1", C::LinkLocal),
            ("fe80::1", C::LinkLocal),
            ("100.64.0.1", C::SharedAddressSpace),
            ("100.127.255.255", C::SharedAddressSpace),
            ("100.128.0.1", C::Public),
            ("0.0.0.0", C::Unspecified),
            ("0.1.2.3", C::Unspecified),
            ("::", C::Unspecified),
            ("224.0.0.1", C::Multicast),
            ("239.255.255.250", C::Multicast),
            ("ff02::1", C::Multicast),
            ("255.255.255.255", C::Broadcast),
            ("192.0.2.1", C::Documentation),
            ("198.51.100.7", C::Documentation),
            ("203.0.113.9", C::Documentation),
            ("2001:db8::1", C::Documentation),
            ("3fff::1", C::Documentation),
            ("198.18.0.1", C::Benchmarking),
            ("198.19.255.255", C::Benchmarking),
            ("2001:2::1", C::Benchmarking),
            ("240.0.0.1", C::Reserved),
            ("192.0.0.8", C::Reserved),
            ("100::1", C::Reserved),
            ("2001::1", C::Reserved),
            ("64:ff9b:1::1", C::Reserved),
            ("fec0::1", C::Reserved),
            // metadata, always
            ("169.254.169.254", C::Metadata),
            ("169.254.170.2", C::Metadata),
            ("100.100.100.200", C::Metadata),
            ("fd00:ec2::254", C::Metadata),
            ("192.0.0.192", C::Metadata),
            // IPv6 forms of IPv4 addresses are what they carry
            ("::ffff:127.0.0.1", C::Loopback),
            ("::ffff:7f00:1", C::Loopback),
            ("::127.0.0.1", C::Loopback),
            ("::ffff:10.0.0.5", C::Private),
            ("::ffff:169.254.169.254", C::Metadata),
            ("::169.254.169.254", C::Metadata),
            ("64:ff9b::127.0.0.1", C::Loopback),
            ("64:ff9b::a9fe:a9fe", C::Metadata),
            ("64:ff9b::8.8.8.8", C::Public),
            ("2002:7f00:1::", C::Loopback),
            ("2002:a00:5::1", C::Private),
            ("::ffff:8.8.8.8", C::Public),
        ];
        for (address, class) in cases {
            assert_eq!(classify(ip(address)), class, "{address}");
        }
    }

    #[test]
    fn legacy_ipv4_forms_table() {
        let lo = Some(Ipv4Addr::LOCALHOST);
        let cases = [
            ("2130706433", lo),
            ("0x7f.1", lo),
            ("127.1", lo),
            ("127.0.1", lo),
            ("0177.0.0.1", lo),
            ("0x7f000001", lo),
            ("0x7F.0.0.0x1", lo),
            ("017700000001", lo),
            ("2852039166", Some(Ipv4Addr::new(169, 254, 169, 254))),
            (
                "0xa9.0xfe.0xa9.0xfe",
                Some(Ipv4Addr::new(169, 254, 169, 254)),
            ),
            ("10.5", Some(Ipv4Addr::new(10, 0, 0, 5))),
            ("0", Some(Ipv4Addr::UNSPECIFIED)),
            // the canonical form is an IP, not a legacy form
            ("127.0.0.1", None),
            // not numbers, or too big for the bytes left
            ("erp.example.com", None),
            ("127.0.0.1.nip.io", None),
            ("4294967296", None),
            ("256.1", None),
            ("1.2.3.4.5", None),
            ("08", None),
            ("1e3", None),
            ("", None),
            ("1..2", None),
        ];
        for (host, expected) in cases {
            assert_eq!(legacy_ipv4(host), expected, "{host:?}");
        }
    }

    #[test]
    fn legacy_forms_land_in_the_right_class() {
        for host in ["2130706433", "0x7f.1", "127.1"] {
            let v4 = legacy_ipv4(host).unwrap();
            assert_eq!(classify(IpAddr::V4(v4)), AddressClass::Loopback, "{host}");
        }
    }

    #[test]
    fn opt_in_groups() {
        use AddressClass as C;
        for class in [C::Loopback, C::Private, C::LinkLocal, C::SharedAddressSpace] {
            assert!(class.is_private_network(), "{class}");
            assert!(!class.is_never_reachable(), "{class}");
        }
        for class in [C::Metadata, C::Unspecified, C::Multicast, C::Broadcast] {
            assert!(!class.is_private_network(), "{class}");
            assert!(class.is_never_reachable(), "{class}");
        }
        for class in [C::Public, C::Documentation, C::Benchmarking, C::Reserved] {
            assert!(!class.is_private_network(), "{class}");
            assert!(!class.is_never_reachable(), "{class}");
        }
    }
}
