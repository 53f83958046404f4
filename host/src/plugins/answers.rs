//! The answers an ERP gave one call, made ready to be given again: to a
//! local build replaying a job (`plugin test --replay`, through its mock
//! ERP) and to a shadow version (its capture-only sandbox answers each
//! request with the active version's recorded answer, in order).
//!
//! A record is bounded and redacted, so an answer given again is not
//! always the one given then; each difference is said in a note.

use http::{HeaderName, HeaderValue, StatusCode};

use crate::plugins::{ErpExchange, REDACTED, body_cut_marker};

/// Response header fields not repeated: whoever answers again sets them for
/// the body it sends.
const HOP_HEADERS: [&str; 4] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

/// One answer as it will be given again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAnswer {
    /// The recorded status; 502 for a request that got no answer.
    pub status: StatusCode,
    /// The recorded header fields that can be sent again, in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The recorded body, as far as it was recorded.
    pub body: Vec<u8>,
}

/// The answers of `exchanges`, in order, and what cannot be answered as
/// recorded.
pub fn recorded_answers(exchanges: &[ErpExchange]) -> (Vec<RecordedAnswer>, Vec<String>) {
    let mut notes = Vec::new();
    let answers = exchanges
        .iter()
        .enumerate()
        .map(|(n, exchange)| answer(n + 1, exchange, &mut notes))
        .collect();
    (answers, notes)
}

fn answer(n: usize, exchange: &ErpExchange, notes: &mut Vec<String>) -> RecordedAnswer {
    let status = match exchange.status.and_then(|s| StatusCode::from_u16(s).ok()) {
        Some(status) => status,
        None => {
            notes.push(format!(
                "request {n} ({} {}) got no answer from the ERP ({}); it is answered 502",
                exchange.method,
                crate::plugins::compare::path_of(&exchange.url),
                exchange.error.as_deref().unwrap_or("no response")
            ));
            StatusCode::BAD_GATEWAY
        }
    };
    let mut headers = Vec::new();
    for header in &exchange.response_headers {
        if HOP_HEADERS.contains(&header.name.as_str()) || header.name == "…" {
            continue;
        }
        let name = HeaderName::from_bytes(header.name.as_bytes());
        let value = HeaderValue::from_str(&header.value);
        match (name, value) {
            (Ok(name), Ok(value)) => headers.push((name, value)),
            _ => notes.push(format!(
                "request {n}: the answer's header {} is not repeated (not valid as recorded)",
                header.name
            )),
        }
        if header.value == REDACTED {
            notes.push(format!(
                "request {n}: the answer's header {} was redacted in the record; it is sent \
                 as {REDACTED:?}",
                header.name
            ));
        }
    }
    let body = match &exchange.response_body {
        Some(body) if body.text == format!("({} bytes, not text)", body.bytes) => {
            notes.push(format!(
                "request {n}: the answer's body ({} bytes) was not text and is not recorded; \
                 it is answered with an empty body",
                body.bytes
            ));
            Vec::new()
        }
        Some(body) => match body.text.strip_suffix(&body_cut_marker(body.bytes)) {
            Some(kept) => {
                notes.push(format!(
                    "request {n}: the answer's body was cut in the record; it is answered \
                     with its first {} of {} bytes",
                    kept.len(),
                    body.bytes
                ));
                kept.as_bytes().to_vec()
            }
            None => body.text.as_bytes().to_vec(),
        },
        None => Vec::new(),
    };
    RecordedAnswer {
        status,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::{RecordedBody, RecordedHeader};

    #[test]
    fn recorded_answers_are_given_again_as_far_as_recorded() {
        let header = |name: &str, value: &str| RecordedHeader {
            name: name.into(),
            value: value.into(),
        };
        let exchange = |status, body: Option<RecordedBody>| ErpExchange {
            method: "POST".into(),
            url: "http://erp/x".into(),
            request_headers: vec![],
            request_body: RecordedBody::default(),
            status,
            response_headers: vec![
                header("content-type", "application/json"),
                header("content-length", "9"),
                header("set-cookie", "[redacted]"),
            ],
            response_body: body,
            duration_ms: 1,
            error: None,
        };
        let cut = format!("{}{}", "a".repeat(10), body_cut_marker(40_000));
        let (answers, notes) = recorded_answers(&[
            exchange(
                Some(201),
                Some(RecordedBody {
                    text: r#"{"id":"E-1"}"#.into(),
                    bytes: 12,
                }),
            ),
            exchange(
                Some(200),
                Some(RecordedBody {
                    text: cut,
                    bytes: 40_000,
                }),
            ),
            exchange(None, None),
            exchange(
                Some(200),
                Some(RecordedBody {
                    text: "(3 bytes, not text)".into(),
                    bytes: 3,
                }),
            ),
        ]);
        assert_eq!(answers.len(), 4);
        assert_eq!(answers[0].status, StatusCode::CREATED);
        assert_eq!(answers[0].body, br#"{"id":"E-1"}"#);
        let names: Vec<&str> = answers[0].headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["content-type", "set-cookie"]);
        assert_eq!(answers[1].body, b"aaaaaaaaaa");
        assert_eq!(answers[2].status, StatusCode::BAD_GATEWAY);
        assert!(answers[3].body.is_empty());
        let notes = notes.join("\n");
        assert!(notes.contains("was cut in the record"), "{notes}");
        assert!(
            notes.contains(
                "request 3 (POST /x) got no answer from the ERP (no response); it is answered 502"
            ),
            "{notes}"
        );
        assert!(notes.contains("set-cookie was redacted"), "{notes}");
        assert!(
            notes.contains("request 4: the answer's body (3 bytes) was not text"),
            "{notes}"
        );
    }
}
