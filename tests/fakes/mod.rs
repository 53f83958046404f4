//! Faithful fakes of the ERP APIs the example plugins speak, each a real
//! HTTP server on 127.0.0.1 ([`ErpServer`](crate::erp_server::ErpServer))
//! that checks every request the way the real API would — method, path,
//! content type, required and forbidden fields, enum values, credentials —
//! keeps the state the API would (which orders exist, which lines are
//! cancelled), and answers with the API's documented shapes, its error
//! answers included. Failures can be injected with `script`, ahead of the
//! checks.
//!
//! - [`aaas`]: the Accounting-as-a-Service Cancel Order API.
//! - [`websphere`]: the WebSphere Commerce `OrderCancel` URL command.
//! - [`personalization`]: Optimizely Personalization's online and offline
//!   order cancellation.

use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, MutexGuard};

use crate::erp_server::{RecordedRequest, Scripted};

pub mod aaas;
pub mod personalization;
pub mod websphere;

/// A JSON answer `{"message": …}`, the error shape of the fakes' JSON APIs.
fn json_error(status: u16, message: &str) -> Scripted {
    Scripted::json(
        status,
        &serde_json::json!({ "status": status, "message": message }).to_string(),
    )
}

/// `answer` with one more header.
fn with_header(mut answer: Scripted, name: &str, value: &str) -> Scripted {
    answer.headers.push((name.to_owned(), value.to_owned()));
    answer
}

/// The request's path without its query, percent-decoding left to the
/// caller.
fn path_of(request: &RecordedRequest) -> &str {
    request.path.split('?').next().unwrap_or_default()
}

/// The request's query pairs, decoded.
fn query_of(request: &RecordedRequest) -> Vec<(String, String)> {
    let query = request.path.split_once('?').map_or("", |(_, query)| query);
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The media type of the request's `Content-Type`, lower case, without
/// parameters (`application/json; charset=utf-8` → `application/json`).
fn media_type(request: &RecordedRequest) -> Option<String> {
    let value = request.header("content-type")?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Percent-decodes one path segment; `None` when it is not UTF-8.
fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `Basic <base64(user:password)>` (RFC 7617), what a client with these
/// credentials sends.
fn basic_credentials(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let mut encoded = String::new();
    for chunk in input.as_bytes().chunks(3) {
        let bits = chunk.iter().enumerate().fold(0u32, |acc, (i, byte)| {
            acc | u32::from(*byte) << (16 - 8 * i)
        });
        for i in 0..4 {
            if i <= chunk.len() {
                encoded.push(char::from(ALPHABET[(bits >> (18 - 6 * i)) as usize & 63]));
            } else {
                encoded.push('=');
            }
        }
    }
    format!("Basic {encoded}")
}

/// A random version 4 UUID, as AaaS hands out for `internalRequestId`.
fn random_uuid() -> String {
    // std's hasher keys are random per process and per `RandomState`: enough
    // randomness for unique ids without a dependency.
    let random_u64 = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0);
        hasher.finish()
    };
    let high = random_u64();
    let low = random_u64();
    let high = (high & !0xf000) | 0x4000; // version 4
    let low = (low & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

/// A port on 127.0.0.1 that is bound but never listened on: connections to
/// it are refused, and no other test can take the port while this value
/// lives (a port that was merely free a moment ago could be).
#[derive(Debug)]
pub struct ClosedPort {
    socket: tokio::net::TcpSocket,
    authority: String,
}

impl ClosedPort {
    /// Binds the port (not listening).
    pub fn bind() -> ClosedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind("127.0.0.1:0".parse().expect("an address"))
            .expect("bind 127.0.0.1:0");
        let authority = socket.local_addr().expect("local address").to_string();
        ClosedPort { socket, authority }
    }

    /// `127.0.0.1:<port>`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The ERP comes back: the port starts listening (no other socket can
    /// have taken it meanwhile).
    pub fn listen(self) -> tokio::net::TcpListener {
        self.socket.listen(1024).expect("listen on the closed port")
    }

    /// A connection whose base URL and only allowed host is this port.
    pub fn connection(&self) -> rescind_host::plugins::ConnectionContext {
        rescind_host::plugins::ConnectionContext {
            base_url: format!("http://{}", self.authority),
            allowed_hosts: vec![self.authority.clone()],
            ..Default::default()
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_match_rfc_7617() {
        assert_eq!(
            basic_credentials("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic_credentials("a", ""), "Basic YTo=");
        assert_eq!(basic_credentials("ab", "c"), "Basic YWI6Yw==");
    }

    #[test]
    fn segments_decode() {
        assert_eq!(
            decode_segment("WEB%2F2024%2017").as_deref(),
            Some("WEB/2024 17")
        );
        assert_eq!(decode_segment("plain").as_deref(), Some("plain"));
        assert_eq!(decode_segment("bad%zz"), None);
        assert_eq!(decode_segment("cut%2"), None);
    }

    #[test]
    fn uuids_are_version_4_and_differ() {
        let (a, b) = (random_uuid(), random_uuid());
        assert_ne!(a, b);
        for id in [a, b] {
            assert_eq!(id.len(), 36, "{id}");
            assert_eq!(&id[14..15], "4", "{id}");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        }
    }
}
