//! What the mock ERP of `rescind plugin test` answers: a script of
//! **steps** (the first request gets the first answer, the second the
//! second, …) or of **routes** (each request gets the first answer whose
//! request pattern it matches), read from a JSON file:
//!
//! ```json
//! {"steps": [
//!   {"request": {"method": "POST", "path": "/api/login"},
//!    "status": 200, "headers": {"Set-Cookie": ["SID=s3ss10n; Path=/api; HttpOnly"]},
//!    "body": {"user": "rescind"}},
//!   {"request": {"method": "POST", "path": "/api/orders/*", "headers": {"Cookie": "SID=s3ss10n"}},
//!    "status": 201, "body": {"id": "CX-1"}, "delayMs": 50}
//! ]}
//! ```
//!
//! A step's `request` is what the request is expected to be (a mismatch is
//! reported, and the step still answers); a route's is what selects it. A
//! request the script has no answer for gets `500` (steps) or `404`
//! (routes), and is reported too. Pure: parsing and matching only, the
//! server is in `mock_erp`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use serde::Deserialize;

/// The largest script or cancellation file `plugin test` reads.
pub const MAX_INPUT_FILE_BYTES: usize = 1024 * 1024;

/// The most answers a script may hold (a plugin call makes at most 16
/// requests by default).
pub const MAX_SCRIPT_ANSWERS: usize = 100;

/// The longest `delayMs` of an answer: longer than any call's deadline.
pub const MAX_ANSWER_DELAY: Duration = Duration::from_secs(60);

/// How the answers are picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptMode {
    /// The n-th request gets the n-th answer.
    Steps,
    /// A request gets the first answer whose pattern it matches.
    Routes,
}

/// A parsed, checked script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Steps or routes.
    pub mode: ScriptMode,
    /// The answers, in the file's order.
    pub answers: Vec<ScriptedAnswer>,
}

/// One answer of the script and the request it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedAnswer {
    /// What the request must look like.
    pub request: RequestPattern,
    /// The status to answer with.
    pub status: StatusCode,
    /// The headers to answer with, in order (a name may repeat).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body to answer with.
    pub body: Vec<u8>,
    /// How long to wait before answering.
    pub delay: Duration,
}

/// What a request must look like; every part left out matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestPattern {
    /// The method, upper case.
    pub method: Option<String>,
    /// The path; a final `*` matches any rest; with a `?` the query is
    /// compared too.
    pub path: Option<String>,
    /// Headers that must be present with exactly these values (names in
    /// lower case).
    pub headers: Vec<(String, String)>,
}

/// A request as far as a script looks at it.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// `POST`.
    pub method: &'a str,
    /// Path and query, `/api/orders?x=1`.
    pub path_and_query: &'a str,
    /// Headers, names in lower case.
    pub headers: &'a [(String, String)],
}

/// Which answer a request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// The answer at this index (0-based), and, for a step whose pattern the
    /// request does not match, why.
    Answer(usize, Option<String>),
    /// No answer: why.
    Unscripted(String),
}

impl Script {
    /// The script that answers every request the same: `plugin test`'s
    /// `--erp-status` and `--erp-body`.
    pub fn always(status: StatusCode, json_body: &str) -> Script {
        Script {
            mode: ScriptMode::Routes,
            answers: vec![ScriptedAnswer {
                request: RequestPattern::default(),
                status,
                headers: vec![(
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body: json_body.as_bytes().to_vec(),
                delay: Duration::ZERO,
            }],
        }
    }

    /// Parses and checks a script file's text; the error says what is wrong
    /// and where.
    pub fn parse(text: &str) -> Result<Script, String> {
        let file: ScriptFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let (mode, answers) = match (file.steps, file.routes) {
            (Some(steps), None) => (ScriptMode::Steps, steps),
            (None, Some(routes)) => (ScriptMode::Routes, routes),
            _ => return Err("a script has either \"steps\" or \"routes\", not both".into()),
        };
        let noun = match mode {
            ScriptMode::Steps => "step",
            ScriptMode::Routes => "route",
        };
        if answers.is_empty() {
            return Err(format!("the script has no {noun}"));
        }
        if answers.len() > MAX_SCRIPT_ANSWERS {
            return Err(format!(
                "the script has {} {noun}s; at most {MAX_SCRIPT_ANSWERS}",
                answers.len()
            ));
        }
        let answers = answers
            .into_iter()
            .enumerate()
            .map(|(index, answer)| {
                answer
                    .check()
                    .map_err(|why| format!("{noun} {}: {why}", index + 1))
            })
            .collect::<Result<_, _>>()?;
        Ok(Script { mode, answers })
    }

    /// The answer for the `index`-th request (0-based) of a call.
    pub fn pick(&self, index: usize, request: &RequestView<'_>) -> Pick {
        match self.mode {
            ScriptMode::Steps => match self.answers.get(index) {
                Some(step) => Pick::Answer(index, step.request.mismatch(request)),
                None => Pick::Unscripted(format!(
                    "the script has {} step{} and this is request {}",
                    self.answers.len(),
                    if self.answers.len() == 1 { "" } else { "s" },
                    index + 1
                )),
            },
            ScriptMode::Routes => self
                .answers
                .iter()
                .position(|route| route.request.mismatch(request).is_none())
                .map_or_else(
                    || Pick::Unscripted("no route of the script matches it".into()),
                    |found| Pick::Answer(found, None),
                ),
        }
    }
}

impl RequestPattern {
    /// Why `request` does not match, or `None` when it does.
    pub fn mismatch(&self, request: &RequestView<'_>) -> Option<String> {
        if let Some(method) = &self.method
            && !method.eq_ignore_ascii_case(request.method)
        {
            return Some(format!(
                "the method is {}, expected {method}",
                request.method
            ));
        }
        if let Some(pattern) = &self.path {
            let actual = if pattern.contains('?') {
                request.path_and_query
            } else {
                request.path_and_query.split('?').next().unwrap_or_default()
            };
            let matches = match pattern.strip_suffix('*') {
                Some(prefix) => actual.starts_with(prefix),
                None => actual == pattern,
            };
            if !matches {
                return Some(format!("the path is {actual}, expected {pattern}"));
            }
        }
        for (name, expected) in &self.headers {
            let values: Vec<&str> = request
                .headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect();
            if !values.contains(&expected.as_str()) {
                return Some(match values.as_slice() {
                    [] => format!("there is no {name} header, expected `{expected}`"),
                    found => format!(
                        "the {name} header is `{}`, expected `{expected}`",
                        found.join("`, `")
                    ),
                });
            }
        }
        None
    }

    /// `POST /api/login`, `any request`.
    pub fn describe(&self) -> String {
        match (&self.method, &self.path) {
            (None, None) => "any request".to_owned(),
            (method, path) => format!(
                "{} {}",
                method.as_deref().unwrap_or("any method"),
                path.as_deref().unwrap_or("any path")
            ),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    steps: Option<Vec<AnswerFile>>,
    routes: Option<Vec<AnswerFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AnswerFile {
    #[serde(default)]
    request: PatternFile,
    #[serde(default = "ok")]
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, OneOrMany>,
    body: Option<serde_json::Value>,
    #[serde(default)]
    delay_ms: u64,
}

fn ok() -> u16 {
    200
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternFile {
    method: Option<String>,
    path: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl AnswerFile {
    fn check(self) -> Result<ScriptedAnswer, String> {
        if !(100..=599).contains(&self.status) {
            return Err(format!(
                "status {} is not an HTTP status (100 to 599)",
                self.status
            ));
        }
        let status = StatusCode::from_u16(self.status).map_err(|e| e.to_string())?;
        let delay = Duration::from_millis(self.delay_ms);
        if delay > MAX_ANSWER_DELAY {
            return Err(format!(
                "delayMs {} is over the limit of {} ms",
                self.delay_ms,
                MAX_ANSWER_DELAY.as_millis()
            ));
        }
        let mut headers = Vec::new();
        for (name, values) in self.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a header name"))?;
            let values = match values {
                OneOrMany::One(value) => vec![value],
                OneOrMany::Many(values) => values,
            };
            for value in values {
                let value = HeaderValue::from_str(&value)
                    .map_err(|_| format!("the value `{value}` of {name} is not a header value"))?;
                headers.push((header.clone(), value));
            }
        }
        let has_content_type = headers
            .iter()
            .any(|(name, _)| name == axum::http::header::CONTENT_TYPE);
        let (body, content_type) = match self.body {
            None => (Vec::new(), None),
            // A string is the body's text as it is; anything else is JSON.
            Some(serde_json::Value::String(text)) => {
                (text.into_bytes(), Some("text/plain; charset=utf-8"))
            }
            Some(json) => (json.to_string().into_bytes(), Some("application/json")),
        };
        if let Some(content_type) = content_type
            && !has_content_type
        {
            headers.push((
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            ));
        }
        Ok(ScriptedAnswer {
            request: self.request.check()?,
            status,
            headers,
            body,
            delay,
        })
    }
}

impl PatternFile {
    fn check(self) -> Result<RequestPattern, String> {
        let method = match self.method {
            Some(method)
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) =>
            {
                return Err(format!("`{method}` is not an HTTP method"));
            }
            method => method.map(|m| m.to_ascii_uppercase()),
        };
        if let Some(path) = &self.path
            && !path.starts_with('/')
            && path != "*"
        {
            return Err(format!("the path `{path}` does not start with /"));
        }
        let headers = self
            .headers
            .into_iter()
            .map(|(name, value)| {
                HeaderName::from_bytes(name.as_bytes())
                    .map(|header| (header.as_str().to_owned(), value))
                    .map_err(|_| format!("`{name}` is not a header name"))
            })
            .collect::<Result<_, _>>()?;
        Ok(RequestPattern {
            method,
            path: self.path,
            headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(
        method: &'a str,
        path_and_query: &'a str,
        headers: &'a [(String, String)],
    ) -> RequestView<'a> {
        RequestView {
            method,
            path_and_query,
            headers,
        }
    }

    const LOGIN_CANCEL: &str = r#"{"steps": [
        {"request": {"method": "post", "path": "/api/login"},
         "headers": {"Set-Cookie": ["SID=1; Path=/", "lang=en"], "X-Trace": "t"},
         "body": {"user": "rescind"}},
        {"request": {"method": "POST", "path": "/api/orders/*", "headers": {"Cookie": "SID=1; lang=en"}},
         "status": 201, "body": "CX-1", "delayMs": 50}
    ]}"#;

    #[test]
    fn steps_answer_in_order_and_report_what_differs() {
        let script = Script::parse(LOGIN_CANCEL).unwrap();
        assert_eq!(script.mode, ScriptMode::Steps);
        let login = &script.answers[0];
        assert_eq!(login.status, StatusCode::OK);
        let headers: Vec<(&str, &str)> = login
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            headers,
            [
                ("set-cookie", "SID=1; Path=/"),
                ("set-cookie", "lang=en"),
                ("x-trace", "t"),
                ("content-type", "application/json")
            ]
        );
        assert_eq!(login.body, br#"{"user":"rescind"}"#);
        let cancel = &script.answers[1];
        assert_eq!(cancel.body, b"CX-1");
        assert_eq!(cancel.delay, Duration::from_millis(50));

        let cookie = [("cookie".to_owned(), "SID=1; lang=en".to_owned())];
        let no_cookie = [];
        let cases = [
            (
                0,
                view("POST", "/api/login", &no_cookie),
                Pick::Answer(0, None),
            ),
            (
                0,
                view("POST", "/api/login?x=1", &no_cookie),
                Pick::Answer(0, None),
            ),
            (
                0,
                view("GET", "/api/login", &no_cookie),
                Pick::Answer(0, Some("the method is GET, expected POST".into())),
            ),
            (
                1,
                view("POST", "/api/orders/ERP-1001/cancel", &cookie),
                Pick::Answer(1, None),
            ),
            (
                1,
                view("POST", "/api/orders/1", &no_cookie),
                Pick::Answer(
                    1,
                    Some("there is no cookie header, expected `SID=1; lang=en`".into()),
                ),
            ),
            (
                1,
                view("POST", "/api/order", &cookie),
                Pick::Answer(
                    1,
                    Some("the path is /api/order, expected /api/orders/*".into()),
                ),
            ),
            (
                2,
                view("POST", "/api/logout", &cookie),
                Pick::Unscripted("the script has 2 steps and this is request 3".into()),
            ),
        ];
        for (index, request, expected) in cases {
            assert_eq!(script.pick(index, &request), expected, "{request:?}");
        }
    }

    #[test]
    fn routes_pick_the_first_match_whatever_the_order() {
        let script = Script::parse(
            r#"{"routes": [
                {"request": {"path": "/api/login"}, "status": 204},
                {"request": {"method": "POST", "path": "/OrderCancel?orderId=1001*"}, "status": 200},
                {"request": {"method": "POST"}, "status": 503, "body": {"message": "busy"}}
            ]}"#,
        )
        .unwrap();
        let none = [];
        let cases = [
            (view("GET", "/api/login", &none), Pick::Answer(0, None)),
            (view("POST", "/api/login", &none), Pick::Answer(0, None)),
            (
                view("POST", "/OrderCancel?orderId=1001&storeId=1", &none),
                Pick::Answer(1, None),
            ),
            (
                view("POST", "/OrderCancel?orderId=1002", &none),
                Pick::Answer(2, None),
            ),
            (
                view("DELETE", "/x", &none),
                Pick::Unscripted("no route of the script matches it".into()),
            ),
        ];
        for (index, (request, expected)) in cases.into_iter().enumerate() {
            assert_eq!(script.pick(index, &request), expected, "{request:?}");
        }
        let always = Script::always(StatusCode::CREATED, "{}");
        assert_eq!(
            always.pick(7, &view("PUT", "/", &none)),
            Pick::Answer(0, None)
        );
    }

    #[test]
    fn bad_scripts_are_refused_with_what_to_fix() {
        let many = format!(
            r#"{{"routes": [{}]}}"#,
            vec![r#"{"status": 200}"#; MAX_SCRIPT_ANSWERS + 1].join(",")
        );
        let at_limit = format!(
            r#"{{"routes": [{}]}}"#,
            vec![r#"{"status": 200}"#; MAX_SCRIPT_ANSWERS].join(",")
        );
        assert_eq!(
            Script::parse(&at_limit).unwrap().answers.len(),
            MAX_SCRIPT_ANSWERS
        );
        let cases = [
            (r#"{}"#.to_owned(), "either \"steps\" or \"routes\""),
            (
                r#"{"steps": [], "routes": []}"#.to_owned(),
                "either \"steps\" or \"routes\"",
            ),
            (r#"{"steps": []}"#.to_owned(), "the script has no step"),
            (many, "at most 100"),
            (
                r#"{"steps": [{"stauts": 200}]}"#.to_owned(),
                "unknown field `stauts`",
            ),
            (
                r#"{"steps": [{"status": 99}]}"#.to_owned(),
                "step 1: status 99 is not an HTTP status",
            ),
            (
                r#"{"steps": [{}, {"status": 600}]}"#.to_owned(),
                "step 2: status 600",
            ),
            (
                r#"{"routes": [{"delayMs": 60001}]}"#.to_owned(),
                "route 1: delayMs 60001 is over the limit of 60000 ms",
            ),
            (
                r#"{"steps": [{"headers": {"bad name": "x"}}]}"#.to_owned(),
                "`bad name` is not a header name",
            ),
            (
                r#"{"steps": [{"headers": {"x": "a\nb"}}]}"#.to_owned(),
                "is not a header value",
            ),
            (
                r#"{"steps": [{"request": {"method": "PO ST"}}]}"#.to_owned(),
                "`PO ST` is not an HTTP method",
            ),
            (
                r#"{"steps": [{"request": {"path": "api/login"}}]}"#.to_owned(),
                "does not start with /",
            ),
            (
                r#"{"steps": [{"request": {"url": "/x"}}]}"#.to_owned(),
                "unknown field `url`",
            ),
            ("not json".to_owned(), "expected"),
        ];
        for (text, expected) in cases {
            let error = Script::parse(&text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let delay_at_limit = Script::parse(r#"{"routes": [{"delayMs": 60000}]}"#).unwrap();
        assert_eq!(delay_at_limit.answers[0].delay, MAX_ANSWER_DELAY);
    }

    #[test]
    fn a_content_type_of_the_script_wins() {
        let script = Script::parse(
            r#"{"steps": [{"headers": {"Content-Type": "application/xml"}, "body": "<ok/>"}]}"#,
        )
        .unwrap();
        let types: Vec<_> = script.answers[0]
            .headers
            .iter()
            .filter(|(n, _)| n == axum::http::header::CONTENT_TYPE)
            .map(|(_, v)| v.to_str().unwrap())
            .collect();
        assert_eq!(types, ["application/xml"]);
    }
}
