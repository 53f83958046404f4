//! The requests one call sent to its ERP against the ones another sent,
//! request by request (method, URL path and query, header fields, body):
//! what `plugin test --replay` shows (a recorded attempt against a local
//! build) and what a shadow run reports (the active version's attempt
//! against the shadow version's capture). Pure: both sides come from the
//! host's own recording ([`ErpExchange`]), so that both went through the
//! same bounds and redaction.
//!
//! What the record does not hold is not counted as a difference, and is
//! listed as skipped: a value recorded as `[redacted]` (or holding it)
//! matches any text in its place; a body cut at the recording bound is
//! compared up to the cut; a body that was not text is compared by length.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::plugins::{ErpExchange, REDACTED, body_cut_marker};

/// Lines of one body's diff shown; the rest are counted.
const MAX_DIFF_LINES: usize = 200;

/// What the two sides of a comparison are called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sides {
    /// The side compared against, as an adjective: `recorded`.
    pub before: &'static str,
    /// The side compared, as an adjective: `new build`.
    pub after: &'static str,
    /// Who sent the first side's requests: `the recorded attempt`.
    pub before_sender: &'static str,
    /// Who sent the second side's requests: `the new build`.
    pub after_sender: &'static str,
}

impl Sides {
    /// A recorded attempt against a local build (`plugin test --replay`).
    pub const REPLAY: Sides = Sides {
        before: "recorded",
        after: "new build",
        before_sender: "the recorded attempt",
        after_sender: "the new build",
    };

    /// The active version's attempt against the shadow version's capture.
    pub const SHADOW: Sides = Sides {
        before: "active",
        after: "shadow",
        before_sender: "the active version",
        after_sender: "the shadow version",
    };
}

/// One request as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    /// `POST`.
    pub method: String,
    /// The URL as recorded (secrets redacted).
    pub url: String,
    /// Header fields in order, names lower-case, values as recorded.
    pub headers: Vec<(String, String)>,
    /// The body as recorded: text, cut with the marker, or the not-text note.
    pub body: String,
    /// How many bytes the body had.
    pub body_bytes: u64,
}

impl From<&ErpExchange> for SentRequest {
    fn from(e: &ErpExchange) -> Self {
        SentRequest {
            method: e.method.clone(),
            url: e.url.clone(),
            headers: e
                .request_headers
                .iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
            body: e.request_body.text.clone(),
            body_bytes: e.request_body.bytes,
        }
    }
}

impl SentRequest {
    /// The URL's path and query: the ERP's address is the mock's in a
    /// replay, so it is not compared.
    pub fn path(&self) -> &str {
        path_of(&self.url)
    }
}

/// The path and query of `url` (`/` when it has none).
pub fn path_of(url: &str) -> &str {
    let Some((_, rest)) = url.split_once("://") else {
        return url;
    };
    match rest.find('/') {
        Some(at) => &rest[at..],
        None => "/",
    }
}

/// How one request of the replay compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestComparison {
    /// `METHOD /path` of the recorded request, if the attempt sent one.
    pub recorded: Option<String>,
    /// `METHOD /path` of the new build's request, if it sent one.
    pub now: Option<String>,
    /// What differs, one entry per field (a body's entry is a diff of
    /// several lines).
    pub differences: Vec<String>,
    /// What was not compared, and why.
    pub skipped: Vec<String>,
}

impl RequestComparison {
    /// Whether the request is the same in both.
    pub fn identical(&self) -> bool {
        self.recorded.is_some() && self.now.is_some() && self.differences.is_empty()
    }
}

/// Every request of two calls compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// What the two sides are called.
    pub sides: Sides,
    /// In order: the n-th recorded request against the n-th new one.
    pub requests: Vec<RequestComparison>,
}

impl Comparison {
    /// Whether the new build sent what the recorded attempt sent.
    pub fn identical(&self) -> bool {
        self.requests.iter().all(RequestComparison::identical)
    }

    /// How many requests differ.
    pub fn differing(&self) -> usize {
        self.requests.iter().filter(|r| !r.identical()).count()
    }

    /// How many values were skipped.
    pub fn skipped(&self) -> usize {
        self.requests.iter().map(|r| r.skipped.len()).sum()
    }

    /// The comparison as `plugin test --replay` prints it, ending with the
    /// verdict line (`identical: …` or `differs: …`).
    pub fn render(&self) -> String {
        let Sides {
            before_sender,
            after_sender,
            ..
        } = self.sides;
        let mut out = String::new();
        for (n, request) in self.requests.iter().enumerate() {
            let n = n + 1;
            match (&request.recorded, &request.now) {
                (Some(recorded), None) => {
                    let _ = writeln!(out, "request {n}: {recorded}: sent by {before_sender} only");
                }
                (None, Some(now)) => {
                    let _ = writeln!(out, "request {n}: {now}: sent by {after_sender} only");
                }
                (Some(recorded), Some(_)) if request.differences.is_empty() => {
                    let _ = writeln!(out, "request {n}: {recorded}: identical");
                }
                (Some(recorded), Some(_)) => {
                    let _ = writeln!(out, "request {n}: {recorded}: differs");
                }
                (None, None) => {}
            }
            for difference in &request.differences {
                for line in difference.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            for skipped in &request.skipped {
                let _ = writeln!(out, "    skipped: {skipped}");
            }
        }
        let total = self.requests.len();
        let skipped = match self.skipped() {
            0 => String::new(),
            n => format!(
                "; {n} recorded value{} redacted or cut, skipped (not counted as differences)",
                if n == 1 { "" } else { "s" }
            ),
        };
        if self.identical() {
            let _ = writeln!(
                out,
                "identical: {after_sender} sent the same {total} request{} as \
                 {before_sender}{skipped}",
                if total == 1 { "" } else { "s" }
            );
        } else {
            let differing = self.differing();
            let _ = writeln!(
                out,
                "differs: {differing} of {total} request{} differ{} from \
                 {before_sender}{skipped}",
                if total == 1 { "" } else { "s" },
                if differing == 1 { "s" } else { "" }
            );
        }
        out
    }
}

/// Compares the recorded requests with the new ones, in order.
pub fn compare(recorded: &[SentRequest], now: &[SentRequest], sides: Sides) -> Comparison {
    let count = recorded.len().max(now.len());
    let requests = (0..count)
        .map(|n| match (recorded.get(n), now.get(n)) {
            (Some(recorded), Some(now)) => compare_request(recorded, now, sides),
            (recorded, now) => RequestComparison {
                recorded: recorded.map(summary),
                now: now.map(summary),
                differences: Vec::new(),
                skipped: Vec::new(),
            },
        })
        .collect();
    Comparison { sides, requests }
}

fn summary(request: &SentRequest) -> String {
    format!("{} {}", request.method, request.path())
}

/// How a recorded value compares with a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Same,
    /// Equal where the record holds text; it holds `[redacted]` elsewhere.
    Redacted,
    Differs,
}

/// A value holding `[redacted]` is never known to be the same, even when
/// the new run redacted the same place: it is skipped where it matches.
fn verdict(recorded: &str, now: &str) -> Verdict {
    if recorded.contains(REDACTED) {
        if matches_redacted(recorded, now) {
            Verdict::Redacted
        } else {
            Verdict::Differs
        }
    } else if recorded == now {
        Verdict::Same
    } else {
        Verdict::Differs
    }
}

/// Whether `now` is `recorded` with each `[redacted]` in it standing for
/// any text.
fn matches_redacted(recorded: &str, now: &str) -> bool {
    let mut parts = recorded.split(REDACTED);
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = now.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

fn compare_request(recorded: &SentRequest, now: &SentRequest, sides: Sides) -> RequestComparison {
    let Sides { before, after, .. } = sides;
    let mut differences = Vec::new();
    let mut skipped = Vec::new();
    if !recorded.method.eq_ignore_ascii_case(&now.method) {
        differences.push(format!(
            "method: {before} {}, {after} {}",
            recorded.method, now.method
        ));
    }
    match verdict(recorded.path(), now.path()) {
        Verdict::Same => {}
        Verdict::Redacted => skipped.push("the URL's redacted parts".to_owned()),
        Verdict::Differs => differences.push(format!(
            "URL path: {before} {}, {after} {}",
            recorded.path(),
            now.path()
        )),
    }
    let body_exact = compare_body(recorded, now, sides, &mut differences, &mut skipped);
    compare_headers(
        recorded,
        now,
        sides,
        body_exact,
        &mut differences,
        &mut skipped,
    );
    RequestComparison {
        recorded: Some(summary(recorded)),
        now: Some(summary(now)),
        differences,
        skipped,
    }
}

/// Header fields by name, values in order; `host` (the ERP's address, the
/// mock's in a replay) and the record's `…` summary left out.
fn by_name(headers: &[(String, String)]) -> BTreeMap<&str, Vec<&str>> {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, value) in headers {
        if name != "host" && name != "…" {
            map.entry(name.as_str()).or_default().push(value.as_str());
        }
    }
    map
}

fn compare_headers(
    recorded: &SentRequest,
    now: &SentRequest,
    sides: Sides,
    body_exact: bool,
    differences: &mut Vec<String>,
    skipped: &mut Vec<String>,
) {
    let Sides {
        before: before_side,
        after: after_side,
        before_sender,
        after_sender,
    } = sides;
    if recorded.headers.iter().any(|(name, _)| name == "…") {
        skipped.push(
            "header fields past the recording bound (8 KiB per message): only the recorded \
             ones are compared"
                .to_owned(),
        );
    }
    let old = by_name(&recorded.headers);
    let new = by_name(&now.headers);
    let names: std::collections::BTreeSet<&str> = old.keys().chain(new.keys()).copied().collect();
    for name in names {
        let (before, after) = (old.get(name), new.get(name));
        match (before, after) {
            (Some(before), None) => {
                if before.iter().all(|v| *v == REDACTED) {
                    // A credential the new build may send only with a
                    // secret given locally.
                    skipped.push(format!(
                        "header {name} (redacted in the record; not sent by {after_sender})"
                    ));
                } else {
                    differences.push(format!(
                        "header {name}: sent by {before_sender} only: {}",
                        quoted(before)
                    ));
                }
            }
            (None, Some(after)) => differences.push(format!(
                "header {name}: sent by {after_sender} only: {}",
                quoted(after)
            )),
            (Some(before), Some(after)) => {
                if name == "content-length" && !body_exact {
                    if before != after {
                        skipped.push(
                            "header content-length (the recorded body was redacted or cut)"
                                .to_owned(),
                        );
                    }
                    continue;
                }
                let verdicts: Vec<Verdict> = before
                    .iter()
                    .zip(after.iter())
                    .map(|(b, a)| verdict(b, a))
                    .collect();
                if before.len() != after.len() || verdicts.contains(&Verdict::Differs) {
                    differences.push(format!(
                        "header {name}: {before_side} {}, {after_side} {}",
                        quoted(before),
                        quoted(after)
                    ));
                } else if verdicts.contains(&Verdict::Redacted) {
                    skipped.push(format!("header {name} (redacted in the record)"));
                }
            }
            (None, None) => {}
        }
    }
}

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares the bodies; answers whether they were compared in full
/// (nothing redacted or cut), so that `content-length` means something.
fn compare_body(
    recorded: &SentRequest,
    now: &SentRequest,
    sides: Sides,
    differences: &mut Vec<String>,
    skipped: &mut Vec<String>,
) -> bool {
    let Sides { before, after, .. } = sides;
    if recorded.body == now.body
        && recorded.body_bytes == now.body_bytes
        && !recorded.body.contains(REDACTED)
    {
        return true;
    }
    let not_text = format!("({} bytes, not text)", recorded.body_bytes);
    if recorded.body == not_text {
        skipped.push(
            "the body's content (not text in the record: only its length is compared)".to_owned(),
        );
        if now.body_bytes != recorded.body_bytes {
            differences.push(format!(
                "body: {before} {} bytes, {after} {} bytes",
                recorded.body_bytes, now.body_bytes
            ));
        }
        return false;
    }
    let recorded_marker = body_cut_marker(recorded.body_bytes);
    if let Some(kept) = recorded.body.strip_suffix(&recorded_marker) {
        let new_text = now
            .body
            .strip_suffix(&body_cut_marker(now.body_bytes))
            .unwrap_or(&now.body);
        let prefix = prefix_of(new_text, kept.len());
        skipped.push(format!(
            "the body past its first {} bytes (cut in the record, which kept {} of {})",
            kept.len(),
            kept.len(),
            recorded.body_bytes
        ));
        if verdict(kept, prefix) == Verdict::Differs {
            differences.push(format!(
                "body (the first {} bytes):\n{}",
                kept.len(),
                unified(kept, prefix, sides)
            ));
        }
        return false;
    }
    if let (Ok(old), Ok(mut new)) = (
        serde_json::from_str::<serde_json::Value>(&recorded.body),
        serde_json::from_str::<serde_json::Value>(&now.body),
    ) {
        let mut redacted = 0;
        align_redacted(&old, &mut new, &mut redacted);
        let (old, new) = (normalised(&old), normalised(&new));
        if redacted > 0 {
            skipped.push(format!(
                "{redacted} redacted value{} in the JSON body",
                if redacted == 1 { "" } else { "s" }
            ));
        }
        if old != new {
            differences.push(format!(
                "body (JSON, compared normalised):\n{}",
                unified(&old, &new, sides)
            ));
        }
        return redacted == 0;
    }
    match verdict(&recorded.body, &now.body) {
        Verdict::Same => true,
        Verdict::Redacted => {
            skipped.push("the body's redacted parts".to_owned());
            false
        }
        Verdict::Differs => {
            // One side JSON, the other not: the JSON side pretty, so that
            // the diff reads line by line.
            let readable = |text: &str| {
                serde_json::from_str::<serde_json::Value>(text)
                    .map_or_else(|_| text.to_owned(), |value| normalised(&value))
            };
            differences.push(format!(
                "body:\n{}",
                unified(&readable(&recorded.body), &readable(&now.body), sides)
            ));
            !recorded.body.contains(REDACTED)
        }
    }
}

/// The longest prefix of `text` of at most `len` bytes.
fn prefix_of(text: &str, len: usize) -> &str {
    let mut end = len.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Where the record holds a redacted string and the new body a string it
/// matches, takes the record's string, counting each.
fn align_redacted(recorded: &serde_json::Value, now: &mut serde_json::Value, count: &mut usize) {
    use serde_json::Value;
    match (recorded, now) {
        (Value::String(old), Value::String(new))
            if old.contains(REDACTED) && matches_redacted(old, new) =>
        {
            new.clone_from(old);
            *count += 1;
        }
        (Value::Object(old), Value::Object(new)) => {
            for (key, value) in old {
                if let Some(slot) = new.get_mut(key) {
                    align_redacted(value, slot, count);
                }
            }
        }
        (Value::Array(old), Value::Array(new)) => {
            for (value, slot) in old.iter().zip(new.iter_mut()) {
                align_redacted(value, slot, count);
            }
        }
        _ => {}
    }
}

/// Pretty JSON with every object's keys sorted, ending in a newline.
fn normalised(value: &serde_json::Value) -> String {
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut text = serde_json::to_string_pretty(&sorted(value)).unwrap_or_default();
    text.push('\n');
    text
}

/// A unified diff of two texts (`-` the first side, `+` the second), at
/// most [`MAX_DIFF_LINES`] lines.
fn unified(recorded: &str, now: &str, sides: Sides) -> String {
    let with_newline = |text: &str| {
        if text.ends_with('\n') {
            text.to_owned()
        } else {
            format!("{text}\n")
        }
    };
    let (old, new) = (with_newline(recorded), with_newline(now));
    let diff = similar::TextDiff::from_lines(&old, &new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(sides.before, sides.after)
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines
        .iter()
        .take(MAX_DIFF_LINES)
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n");
    if lines.len() > MAX_DIFF_LINES {
        let _ = write!(
            out,
            "\n  … {} more lines of the diff",
            lines.len() - MAX_DIFF_LINES
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, headers: &[(&str, &str)], body: &str) -> SentRequest {
        SentRequest {
            method: "POST".into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.into(),
            body_bytes: body.len() as u64,
        }
    }

    #[test]
    fn paths_leave_out_the_address() {
        assert_eq!(path_of("http://127.0.0.1:9/a/b?c=1"), "/a/b?c=1");
        assert_eq!(path_of("https://erp.example"), "/");
        assert_eq!(path_of("/x"), "/x");
    }

    #[test]
    fn redacted_parts_match_anything() {
        for (recorded, now, matches) in [
            ("Bearer [redacted]", "Bearer abc", true),
            ("Bearer [redacted]", "Bearer ", true),
            ("Bearer [redacted]", "Basic abc", false),
            ("[redacted]", "anything", true),
            ("a[redacted]b[redacted]c", "a1b2c", true),
            ("a[redacted]b[redacted]c", "a1c", false),
            ("?token=[redacted]&x=1", "?token=t&x=1", true),
            ("?token=[redacted]&x=1", "?token=t&x=2", false),
            ("plain", "plain", true),
            ("plain", "plainer", false),
        ] {
            assert_eq!(
                matches_redacted(recorded, now),
                matches,
                "{recorded} ~ {now}"
            );
        }
    }

    #[test]
    fn the_same_requests_are_identical_whatever_the_address() {
        let old = request(
            "http://erp.example:8443/hooks?x=1",
            &[
                ("host", "erp.example:8443"),
                ("content-type", "application/json"),
            ],
            r#"{"a":1,"b":[1,2]}"#,
        );
        let new = request(
            "http://127.0.0.1:4000/hooks?x=1",
            &[
                ("content-type", "application/json"),
                ("host", "127.0.0.1:4000"),
            ],
            r#"{"b":[1,2],"a":1}"#,
        );
        let comparison = compare(&[old], &[new], Sides::REPLAY);
        assert!(comparison.identical(), "{comparison:?}");
        let shown = comparison.render();
        assert!(
            shown.contains("request 1: POST /hooks?x=1: identical"),
            "{shown}"
        );
        assert!(
            shown.ends_with(
                "identical: the new build sent the same 1 request as the recorded attempt\n"
            ),
            "{shown}"
        );
    }

    #[test]
    fn redacted_and_cut_values_are_skipped_not_differences() {
        let kept = "k".repeat(100);
        let mut old = request(
            "http://erp/x?token=[redacted]",
            &[
                ("authorization", "[redacted]"),
                ("content-length", "99999"),
                ("x-key", "[redacted]"),
            ],
            "",
        );
        old.body_bytes = 99_999;
        old.body = format!("{kept}{}", body_cut_marker(99_999));
        let new = request(
            "http://mock/x?token=local",
            &[("content-length", "120"), ("x-key", "k-1")],
            &format!("{kept}and more"),
        );
        let comparison = compare(&[old], &[new], Sides::REPLAY);
        assert!(comparison.identical(), "{comparison:#?}");
        let skipped = &comparison.requests[0].skipped;
        assert_eq!(skipped.len(), 5, "{skipped:#?}");
        let shown = comparison.render();
        assert!(
            shown.contains(
                "skipped: header authorization (redacted in the record; not sent by the new build)"
            ),
            "{shown}"
        );
        assert!(
            shown.contains("skipped: the body past its first 100 bytes"),
            "{shown}"
        );
        assert!(
            shown.contains(
                "5 recorded values redacted or cut, skipped (not counted as differences)"
            ),
            "{shown}"
        );
    }

    #[test]
    fn differences_are_named_field_by_field_with_a_body_diff() {
        let old = request(
            "http://erp/hooks/v1",
            &[("x-sig", "a"), ("x-old", "1")],
            r#"{"order":"SO-1","reason":"OUT_OF_STOCK","secret":"[redacted]"}"#,
        );
        let mut new = request(
            "http://mock/hooks/v2",
            &[("x-sig", "b"), ("x-new", "2")],
            r#"{"order":"SO-1","reason":"CUSTOMER_REQUEST","secret":"s3"}"#,
        );
        new.method = "PUT".into();
        let comparison = compare(&[old.clone(), old], &[new], Sides::REPLAY);
        assert!(!comparison.identical());
        let shown = comparison.render();
        for expected in [
            "request 1: POST /hooks/v1: differs\n",
            "    method: recorded POST, new build PUT\n",
            "    URL path: recorded /hooks/v1, new build /hooks/v2\n",
            "    header x-new: sent by the new build only: \"2\"\n",
            "    header x-old: sent by the recorded attempt only: \"1\"\n",
            "    header x-sig: recorded \"a\", new build \"b\"\n",
            "    body (JSON, compared normalised):\n",
            "      --- recorded\n      +++ new build\n",
            "      -  \"reason\": \"OUT_OF_STOCK\",\n      +  \"reason\": \"CUSTOMER_REQUEST\",\n",
            "    skipped: 1 redacted value in the JSON body\n",
            "request 2: POST /hooks/v1: sent by the recorded attempt only\n",
            "differs: 2 of 2 requests differ from the recorded attempt",
        ] {
            assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
        }
        assert!(!shown.contains("s3\""), "{shown}");
    }

    #[test]
    fn a_json_body_against_another_kind_is_shown_pretty() {
        let old = request("http://erp/x", &[], r#"{"b":1,"a":"x"}"#);
        let new = request("http://mock/x", &[], "a=x&b=1");
        let shown = compare(&[old], &[new], Sides::REPLAY).render();
        assert!(
            shown.contains(
                "      -{\n      -  \"a\": \"x\",\n      -  \"b\": 1\n      -}\n      +a=x&b=1\n"
            ),
            "{shown}"
        );
    }

    #[test]
    fn a_value_redacted_on_both_sides_is_skipped_not_the_same() {
        let old = request("http://erp/x", &[("authorization", "[redacted]")], "");
        let new = request("http://mock/x", &[("authorization", "[redacted]")], "");
        let comparison = compare(&[old], &[new], Sides::REPLAY);
        assert!(comparison.identical());
        assert_eq!(
            comparison.requests[0].skipped,
            ["header authorization (redacted in the record)"]
        );
    }

    #[test]
    fn text_bodies_get_a_line_diff() {
        let old = request("http://erp/x", &[], "a=1\nb=2\n");
        let new = request("http://mock/x", &[], "a=1\nb=3\n");
        let shown = compare(&[old], &[new], Sides::REPLAY).render();
        assert!(shown.contains("    body:\n"), "{shown}");
        assert!(shown.contains("      -b=2\n      +b=3\n"), "{shown}");
    }
}
