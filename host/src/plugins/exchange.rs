//! The ERP exchange of one call: for each outbound HTTP request the plugin
//! made, what it sent and what the ERP answered, kept with the job's
//! attempt so that staff can see why an ERP said what it said.
//!
//! Everything kept is bounded and has the connection's secrets redacted
//! before it leaves the call:
//!
//! - at most [`MAX_RECORDED_EXCHANGES`] requests per call; later ones are
//!   only counted ([`RecordedExchanges::not_recorded`]);
//! - each body is copied while it streams, never more than
//!   [`MAX_RECORDED_BODY_BYTES`] (plus the length of the longest secret
//!   form, so that a secret straddling the cut is still recognised), and
//!   kept cut to that bound with a marker ([`body_cut_marker`]); a body that
//!   is not UTF-8 text is kept as the note `(N bytes, not text)`;
//! - header fields of one message take at most
//!   [`MAX_RECORDED_HEADER_BYTES`]; `Authorization`,
//!   `Proxy-Authorization`, `Cookie` and `Set-Cookie`, and any field whose
//!   value holds a secret in any form the redactor knows, are kept as
//!   `[redacted]`;
//! - the URL has its secrets redacted and is cut like returned text.
//!
//! Pure bookkeeping (no wasmtime); `exchange_tap.rs` feeds it from the
//! wasi:http send hook.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::plugins::redact::{REDACTED, Redactor};
use crate::plugins::returned_text::{bound_returned_text, bound_text};

/// Requests recorded per call; later requests are counted, not recorded.
pub const MAX_RECORDED_EXCHANGES: usize = 16;

/// Bytes kept of one request or response body. A longer body is cut on a
/// character boundary and ends with [`body_cut_marker`].
pub const MAX_RECORDED_BODY_BYTES: usize = 16 * 1024;

/// Bytes of header fields (names and values) kept per request or response;
/// the fields past it are summed up in one last entry named `…`.
pub const MAX_RECORDED_HEADER_BYTES: usize = 8 * 1024;

/// Header fields whose value is never kept: they carry credentials.
const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// The `error` of a request that neither got an answer nor failed before
/// the call ended: the call's deadline cut it off (or the plugin stopped
/// waiting for it).
pub const UNANSWERED: &str = "no-answer-before-the-call-ended";

/// What ends a cut body: how long the body was and how much is kept.
pub fn body_cut_marker(body_bytes: u64) -> String {
    format!("… [cut: {body_bytes} bytes in the body, {MAX_RECORDED_BODY_BYTES} kept]")
}

/// What the plugin sent and the ERP answered, in the order the requests
/// were made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedExchanges {
    /// At most [`MAX_RECORDED_EXCHANGES`].
    pub exchanges: Vec<ErpExchange>,
    /// Requests made past the bound, not recorded.
    #[serde(default)]
    pub not_recorded: u32,
}

/// One outbound HTTP request and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErpExchange {
    /// `GET`, `POST`, …
    pub method: String,
    /// The URL as the plugin gave it, secrets redacted.
    pub url: String,
    /// The request's header fields in order, redacted.
    pub request_headers: Vec<RecordedHeader>,
    /// The request body as far as it was sent (or read before a refusal).
    pub request_body: RecordedBody,
    /// The response status, when a response came.
    pub status: Option<u16>,
    /// The response's header fields in order, redacted; empty without a
    /// response.
    pub response_headers: Vec<RecordedHeader>,
    /// The response body as far as the plugin read it; `None` without a
    /// response.
    pub response_body: Option<RecordedBody>,
    /// From handing the request over to the end of the response body (or
    /// its head, when the plugin did not read the body to its end, or the
    /// failure).
    pub duration_ms: u64,
    /// The wasi:http error code the request or the response body failed
    /// with (e.g. `HTTP-request-denied` when the egress policy refused the
    /// destination, `connection-refused`, `HTTP-response-body-size`).
    pub error: Option<String>,
}

/// One header field as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedHeader {
    /// The field name, lower-case (`…` for the summary of fields past the
    /// bound).
    pub name: String,
    /// The value, `[redacted]`, or `(N bytes, not text)`.
    pub value: String,
}

/// A body as recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedBody {
    /// The body as text, secrets redacted, cut at
    /// [`MAX_RECORDED_BODY_BYTES`] with [`body_cut_marker`]; or
    /// `(N bytes, not text)` when it is not UTF-8.
    pub text: String,
    /// How many bytes passed: sent, or read by the plugin.
    pub bytes: u64,
}

/// A request's place in the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExchangeId(usize);

/// Which body of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Request,
    Response,
}

/// The first bytes of a body and how many passed in all.
#[derive(Debug, Default)]
struct RawBody {
    copied: Vec<u8>,
    total: u64,
}

/// An exchange while the call runs: bodies still raw.
#[derive(Debug)]
struct OpenExchange {
    method: String,
    url: String,
    request_headers: Vec<RecordedHeader>,
    request_body: RawBody,
    status: Option<u16>,
    response_headers: Vec<RecordedHeader>,
    response_body: Option<RawBody>,
    started: Instant,
    duration: Duration,
    error: Option<String>,
}

/// The exchanges of one call.
#[derive(Debug)]
struct ExchangeBook {
    redactor: Redactor,
    /// Requests recorded at most (the call's limit).
    most: usize,
    /// Bytes copied per body: the bound plus the longest secret form.
    window: usize,
    open: Vec<OpenExchange>,
    not_recorded: u32,
}

/// The book of a call, shared by the send hook and the body taps (which
/// run on hyper's tasks). Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct ExchangeRecorder(Arc<Mutex<ExchangeBook>>);

impl ExchangeRecorder {
    /// A recorder redacting with `redactor`, recording at most `most`
    /// requests (at most [`MAX_RECORDED_EXCHANGES`]).
    pub fn new(redactor: Redactor, most: usize) -> Self {
        let window = MAX_RECORDED_BODY_BYTES + redactor.longest();
        Self(Arc::new(Mutex::new(ExchangeBook {
            redactor,
            most: most.min(MAX_RECORDED_EXCHANGES),
            window,
            open: Vec::new(),
            not_recorded: 0,
        })))
    }

    fn with<R>(&self, f: impl FnOnce(&mut ExchangeBook) -> R) -> R {
        // A poisoned lock only means a tap panicked mid-copy.
        let mut book = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut book)
    }

    /// Starts recording a request; `None` past [`MAX_RECORDED_EXCHANGES`]
    /// (the request is only counted).
    pub fn open(&self, method: &str, url: &str, headers: &http::HeaderMap) -> Option<ExchangeId> {
        self.with(|book| {
            if book.open.len() >= book.most {
                book.not_recorded = book.not_recorded.saturating_add(1);
                return None;
            }
            let exchange = OpenExchange {
                method: method.to_owned(),
                url: bound_returned_text(url, &book.redactor),
                request_headers: recorded_headers(headers, &book.redactor),
                request_body: RawBody::default(),
                status: None,
                response_headers: Vec::new(),
                response_body: None,
                started: Instant::now(),
                duration: Duration::ZERO,
                error: None,
            };
            book.open.push(exchange);
            Some(ExchangeId(book.open.len() - 1))
        })
    }

    /// The response's head arrived.
    pub fn response_head(&self, id: ExchangeId, status: u16, headers: &http::HeaderMap) {
        self.with(|book| {
            let headers = recorded_headers(headers, &book.redactor);
            let exchange = &mut book.open[id.0];
            exchange.status = Some(status);
            exchange.response_headers = headers;
            exchange.response_body = Some(RawBody::default());
            exchange.duration = exchange.started.elapsed();
        });
    }

    /// Bytes of a body passed: the first ones are copied.
    pub fn body_bytes(&self, id: ExchangeId, side: Side, bytes: &[u8]) {
        self.with(|book| {
            let window = book.window;
            let exchange = &mut book.open[id.0];
            let body = match side {
                Side::Request => &mut exchange.request_body,
                Side::Response => exchange.response_body.get_or_insert_with(RawBody::default),
            };
            body.total = body.total.saturating_add(bytes.len() as u64);
            let room = window.saturating_sub(body.copied.len());
            body.copied
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
        });
    }

    /// The response body reached its end.
    pub fn response_ended(&self, id: ExchangeId) {
        self.with(|book| {
            let exchange = &mut book.open[id.0];
            exchange.duration = exchange.started.elapsed();
        });
    }

    /// The request or its response body failed with `error` (the first
    /// failure is kept).
    pub fn failed(&self, id: ExchangeId, error: String) {
        self.with(|book| {
            let exchange = &mut book.open[id.0];
            exchange.duration = exchange.started.elapsed();
            exchange.error.get_or_insert(error);
        });
    }

    /// What was recorded, bodies redacted and bounded.
    pub fn finish(&self) -> RecordedExchanges {
        self.with(|book| {
            let redactor = &book.redactor;
            let exchanges = book
                .open
                .iter()
                .map(|open| {
                    // Neither answered nor failed: the call ended first.
                    let unanswered = open.status.is_none() && open.error.is_none();
                    ErpExchange {
                        method: open.method.clone(),
                        url: open.url.clone(),
                        request_headers: open.request_headers.clone(),
                        request_body: recorded_body(&open.request_body, redactor),
                        status: open.status,
                        response_headers: open.response_headers.clone(),
                        response_body: open
                            .response_body
                            .as_ref()
                            .map(|body| recorded_body(body, redactor)),
                        duration_ms: u64::try_from(
                            if unanswered {
                                open.started.elapsed()
                            } else {
                                open.duration
                            }
                            .as_millis(),
                        )
                        .unwrap_or(u64::MAX),
                        error: if unanswered {
                            Some(UNANSWERED.to_owned())
                        } else {
                            open.error.clone()
                        },
                    }
                })
                .collect();
            RecordedExchanges {
                exchanges,
                not_recorded: book.not_recorded,
            }
        })
    }
}

/// The note that stands for bytes that are not UTF-8 text.
fn not_text(bytes: u64) -> String {
    format!("({bytes} bytes, not text)")
}

/// A body's copied bytes as kept: text redacted and bounded, or the note.
fn recorded_body(raw: &RawBody, redactor: &Redactor) -> RecordedBody {
    let cut = raw.total > raw.copied.len() as u64;
    let text = match std::str::from_utf8(&raw.copied) {
        Ok(text) => Some(text),
        // The copy ended inside a character: the text up to it.
        Err(e) if cut && e.error_len().is_none() => {
            std::str::from_utf8(&raw.copied[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    };
    let text = match text {
        Some(text) => bound_text(
            text,
            usize::try_from(raw.total).unwrap_or(usize::MAX),
            MAX_RECORDED_BODY_BYTES,
            redactor,
            || body_cut_marker(raw.total),
        ),
        None => not_text(raw.total),
    };
    RecordedBody {
        text,
        bytes: raw.total,
    }
}

/// A message's header fields as kept: credentials and any value holding a
/// secret as `[redacted]`, at most [`MAX_RECORDED_HEADER_BYTES`] of names
/// and values, then one `…` entry saying what was left out.
fn recorded_headers(headers: &http::HeaderMap, redactor: &Redactor) -> Vec<RecordedHeader> {
    let mut kept = Vec::new();
    let mut used = 0usize;
    let (mut left_out, mut left_out_bytes) = (0usize, 0usize);
    for (name, value) in headers {
        let name = name.as_str();
        if left_out > 0 || used + name.len() + value.len() > MAX_RECORDED_HEADER_BYTES {
            left_out += 1;
            left_out_bytes += name.len() + value.len();
            continue;
        }
        let value = if CREDENTIAL_HEADERS.contains(&name) {
            REDACTED.to_owned()
        } else {
            match std::str::from_utf8(value.as_bytes()) {
                Ok(text) if redactor.redact(text) == text => text.to_owned(),
                Ok(_) => REDACTED.to_owned(),
                Err(_) => not_text(value.len() as u64),
            }
        };
        used += name.len() + value.len();
        kept.push(RecordedHeader {
            name: name.to_owned(),
            value,
        });
    }
    if left_out > 0 {
        kept.push(RecordedHeader {
            name: "…".to_owned(),
            value: format!(
                "{left_out} more header fields ({left_out_bytes} bytes) not recorded \
                 (limit: {MAX_RECORDED_HEADER_BYTES} bytes of header fields per message)"
            ),
        });
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret-t0ken-value";

    fn recorder() -> ExchangeRecorder {
        ExchangeRecorder::new(Redactor::new([SECRET]), MAX_RECORDED_EXCHANGES)
    }

    fn headers(fields: &[(&str, &[u8])]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in fields {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn credentials_and_secret_values_are_redacted_in_headers() {
        let basic = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("svc:{SECRET}"),
        );
        let recorded = recorded_headers(
            &headers(&[
                ("authorization", b"Bearer abc"),
                ("proxy-authorization", b"Basic xyz"),
                ("cookie", b"session=1"),
                ("set-cookie", b"session=2; HttpOnly"),
                ("x-api-key", SECRET.as_bytes()),
                ("x-basic", basic.as_bytes()),
                ("content-type", b"application/json"),
                ("x-binary", b"\xff\xfe"),
            ]),
            &Redactor::new([SECRET]),
        );
        let shown: Vec<(&str, &str)> = recorded
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("authorization", REDACTED),
                ("proxy-authorization", REDACTED),
                ("cookie", REDACTED),
                ("set-cookie", REDACTED),
                ("x-api-key", REDACTED),
                ("x-basic", REDACTED),
                ("content-type", "application/json"),
                ("x-binary", "(2 bytes, not text)"),
            ]
        );
    }

    #[test]
    fn header_fields_past_the_bound_are_summed_up() {
        let value = "v".repeat(1000);
        let fields: Vec<(String, &[u8])> = (0..20)
            .map(|i| (format!("x-field-{i:02}"), value.as_bytes()))
            .collect();
        let map = headers(
            &fields
                .iter()
                .map(|(n, v)| (n.as_str(), *v))
                .collect::<Vec<_>>(),
        );
        let recorded = recorded_headers(&map, &Redactor::default());
        // 1,010 bytes a field: eight fit in 8 KiB.
        assert_eq!(recorded.len(), 9);
        let last = recorded.last().unwrap();
        assert_eq!(last.name, "…");
        assert!(
            last.value
                .starts_with("12 more header fields (12120 bytes) not recorded"),
            "{}",
            last.value
        );
    }

    #[test]
    fn a_body_at_the_bound_is_whole_and_one_byte_more_is_cut_with_the_marker() {
        let r = recorder();
        let id = r
            .open("POST", "http://erp/x", &http::HeaderMap::new())
            .unwrap();
        r.body_bytes(
            id,
            Side::Request,
            "a".repeat(MAX_RECORDED_BODY_BYTES).as_bytes(),
        );
        r.response_head(id, 200, &http::HeaderMap::new());
        // Streamed in pieces: 40,000 bytes.
        for _ in 0..40 {
            r.body_bytes(id, Side::Response, "b".repeat(1000).as_bytes());
        }
        let recorded = r.finish();
        let exchange = &recorded.exchanges[0];
        assert_eq!(exchange.request_body.text.len(), MAX_RECORDED_BODY_BYTES);
        assert!(!exchange.request_body.text.contains('…'));
        let response = exchange.response_body.as_ref().unwrap();
        assert_eq!(response.bytes, 40_000);
        assert!(response.text.len() <= MAX_RECORDED_BODY_BYTES);
        assert!(response.text.starts_with("bbbb"));
        assert!(
            response
                .text
                .ends_with("… [cut: 40000 bytes in the body, 16384 kept]"),
            "{}",
            &response.text[response.text.len() - 60..]
        );
    }

    #[test]
    fn only_the_window_is_copied_however_long_the_body() {
        let r = recorder();
        let id = r
            .open("POST", "http://erp/x", &http::HeaderMap::new())
            .unwrap();
        let chunk = vec![b'z'; 64 * 1024];
        for _ in 0..64 {
            r.body_bytes(id, Side::Request, &chunk);
        }
        let copied = r.with(|book| book.open[0].request_body.copied.len());
        assert_eq!(
            copied,
            MAX_RECORDED_BODY_BYTES + Redactor::new([SECRET]).longest()
        );
        assert_eq!(r.finish().exchanges[0].request_body.bytes, 64 * 64 * 1024);
    }

    #[test]
    fn a_secret_straddling_the_body_cut_leaves_no_prefix() {
        for offset in 0..SECRET.len() + 40 {
            let r = recorder();
            let id = r
                .open("POST", "http://erp/x", &http::HeaderMap::new())
                .unwrap();
            let mut body = "y".repeat(MAX_RECORDED_BODY_BYTES - 60 - offset);
            body.push_str(SECRET);
            body.push_str(&"z".repeat(500));
            r.body_bytes(id, Side::Request, body.as_bytes());
            let text = r.finish().exchanges[0].request_body.text.clone();
            assert!(text.len() <= MAX_RECORDED_BODY_BYTES, "{offset}");
            assert!(
                !text.contains("s3cr"),
                "{offset}: {}",
                &text[text.len() - 100..]
            );
        }
    }

    #[test]
    fn secrets_in_bodies_and_urls_are_redacted() {
        let r = recorder();
        let id = r
            .open(
                "GET",
                &format!("https://erp.example/orders?token={SECRET}"),
                &http::HeaderMap::new(),
            )
            .unwrap();
        r.response_head(id, 401, &http::HeaderMap::new());
        r.body_bytes(
            id,
            Side::Response,
            format!(r#"{{"error":"bad token {SECRET}"}}"#).as_bytes(),
        );
        r.response_ended(id);
        let exchange = r.finish().exchanges.remove(0);
        assert_eq!(exchange.url, "https://erp.example/orders?token=[redacted]");
        assert_eq!(
            exchange.response_body.unwrap().text,
            r#"{"error":"bad token [redacted]"}"#
        );
        assert_eq!(exchange.status, Some(401));
    }

    #[test]
    fn bodies_that_are_not_text_are_a_note() {
        let r = recorder();
        let id = r
            .open("POST", "http://erp/x", &http::HeaderMap::new())
            .unwrap();
        r.body_bytes(id, Side::Request, &[0x89, b'P', b'N', b'G', 0xff, 0x00]);
        let body = r.finish().exchanges.remove(0).request_body;
        assert_eq!(body.text, "(6 bytes, not text)");
        assert_eq!(body.bytes, 6);
    }

    #[test]
    fn a_cut_inside_a_character_keeps_the_text_before_it() {
        let r = recorder();
        let id = r
            .open("POST", "http://erp/x", &http::HeaderMap::new())
            .unwrap();
        // 'é' is two bytes: the window ends inside one.
        let body = "é".repeat(MAX_RECORDED_BODY_BYTES);
        r.body_bytes(id, Side::Request, body.as_bytes());
        let text = r.finish().exchanges.remove(0).request_body.text;
        assert!(text.starts_with("éé"), "{}", &text[..10]);
        assert!(text.ends_with("kept]"));
        assert!(text.len() <= MAX_RECORDED_BODY_BYTES);
    }

    #[test]
    fn requests_past_the_bound_are_only_counted() {
        let r = recorder();
        for n in 0..MAX_RECORDED_EXCHANGES + 5 {
            let id = r.open("GET", &format!("http://erp/{n}"), &http::HeaderMap::new());
            assert_eq!(id.is_some(), n < MAX_RECORDED_EXCHANGES, "{n}");
        }
        let recorded = r.finish();
        assert_eq!(recorded.exchanges.len(), MAX_RECORDED_EXCHANGES);
        assert_eq!(recorded.not_recorded, 5);
        assert_eq!(recorded.exchanges[15].url, "http://erp/15");
    }

    #[test]
    fn a_lower_limit_records_fewer_and_zero_records_none() {
        for (most, recorded) in [
            (0, 0),
            (2, 2),
            (MAX_RECORDED_EXCHANGES + 10, MAX_RECORDED_EXCHANGES),
        ] {
            let r = ExchangeRecorder::new(Redactor::new([SECRET]), most);
            for n in 0..MAX_RECORDED_EXCHANGES + 1 {
                r.open("GET", &format!("http://erp/{n}"), &http::HeaderMap::new());
            }
            let book = r.finish();
            assert_eq!(book.exchanges.len(), recorded, "{most}");
            assert_eq!(
                book.not_recorded as usize,
                MAX_RECORDED_EXCHANGES + 1 - recorded
            );
        }
    }

    #[test]
    fn a_request_the_call_ended_before_is_marked_unanswered() {
        let r = recorder();
        let id = r
            .open("POST", "http://erp/slow", &http::HeaderMap::new())
            .unwrap();
        r.body_bytes(id, Side::Request, b"{}");
        std::thread::sleep(Duration::from_millis(2));
        let exchange = r.finish().exchanges.remove(0);
        assert_eq!(exchange.status, None);
        assert_eq!(exchange.error.as_deref(), Some(UNANSWERED));
        assert!(exchange.duration_ms >= 2, "{exchange:?}");
        assert_eq!(exchange.request_body.text, "{}");
    }

    #[test]
    fn the_first_failure_is_kept() {
        let r = recorder();
        let id = r
            .open("GET", "http://erp/", &http::HeaderMap::new())
            .unwrap();
        r.failed(id, "connection-refused".into());
        r.failed(id, "later".into());
        let exchange = r.finish().exchanges.remove(0);
        assert_eq!(exchange.error.as_deref(), Some("connection-refused"));
        assert_eq!(exchange.status, None);
        assert_eq!(exchange.response_body, None);
    }
}
