//! Outbound HTTP from a plugin: one line per request.
//!
//! ```no_run
//! use rescind_guest::http::Request;
//! # fn demo() -> Result<(), rescind_guest::SubmitError> {
//! # let token = String::new();
//! let answer = Request::post("https://erp.example.com/api/cancellations")
//!     .bearer_auth(&token)
//!     .header("Idempotency-Key", "req-1")
//!     .json(&serde_json::json!({"orderNumber": "1001"}))?
//!     .send()?
//!     .error_for_status()?;
//! let id: Option<String> = answer.json::<serde_json::Value>()?["id"].as_str().map(String::from);
//! # Ok(()) }
//! ```
//!
//! Inside the host the request goes out through `wasi:http/outgoing-handler`,
//! and only to the hosts the job's ERP connection allows; the call blocks
//! until the answer's body has arrived. In a native `cargo test` the request
//! goes to the answers registered with [`crate::testing`] instead.
//!
//! Failures are typed ([`Error`]) and convert with `?` into the
//! [`SubmitError`](crate::SubmitError) every plugin should answer: see
//! [`Response::error_for_status`] and [`SubmitError::from_response`](crate::SubmitError::from_response).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

mod cookie;
mod url;
#[cfg(target_arch = "wasm32")]
mod wasi;

pub use cookie::CookieJar;
pub use url::encode_path_segment;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use url::{authority_of, parse as parse_url};

/// The largest answer body the client reads. Larger answers fail with
/// [`Error::Limit`]: an ERP acknowledgement is small, and the host reads at
/// most this many response body bytes per call anyway.
pub const MAX_RESPONSE_BODY: usize = 8 * 1024 * 1024;

/// The host's default bound on outgoing requests per call: later requests
/// fail with [`Error::Limit`] before anything is sent.
pub const MAX_REQUESTS_PER_CALL: u32 = 16;

/// The user agent sent unless the plugin sets its own `User-Agent` header.
pub const USER_AGENT: &str = concat!("rescind-guest/", env!("CARGO_PKG_VERSION"));

/// An HTTP request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
}

impl Method {
    /// The method's name on the wire, e.g. `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    /// Methods whose request normally has a body; they always send a
    /// `Content-Length`, even for an empty body, as servers expect.
    fn expects_body(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request got no answer. `?` turns it into the matching
/// [`SubmitError`](crate::SubmitError): see the table there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be built: a malformed URL, an unsupported
    /// scheme, an invalid header, a body that would not encode. Usually the
    /// connection's `baseUrl` or a setting is wrong.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The host refused to let the request out because the ERP connection's
    /// `allowedHosts` does not list `host` (or lists it for https only and
    /// the URL is plain http). Nothing was sent.
    #[error(
        "the connection does not allow requests to `{host}`: add it to the connection's allowedHosts"
    )]
    Denied {
        /// `host` or `host:port`, as the request named it.
        host: String,
    },
    /// The host refused to connect because `host` resolves to an address
    /// the connection does not open: loopback, a private network, a cloud
    /// metadata endpoint. Nothing was sent.
    #[error(
        "`{host}` resolves to an address the connection does not allow (loopback, private \
         network or cloud metadata): list the address in allowedHosts or set \
         allowPrivateNetwork on the connection"
    )]
    AddressRefused {
        /// `host` or `host:port`, as the request named it.
        host: String,
    },
    /// The ERP's TLS certificate is not trusted for this connection (an
    /// unknown issuer, another name, expired). Nothing was sent.
    #[error(
        "the TLS certificate of `{host}` was not accepted: if the ERP uses a private CA, \
         put it in the connection's caCertificates"
    )]
    Certificate {
        /// `host` or `host:port`.
        host: String,
    },
    /// A bound of the host was reached: outgoing requests per call, request
    /// or response header size, response body bytes per call (see the SDK
    /// README). The same request would hit it again.
    #[error("{detail} (request to `{host}`)")]
    Limit {
        /// `host` or `host:port`.
        host: String,
        /// Which limit, and its value.
        detail: String,
    },
    /// The ERP could not be reached or the connection broke: name resolution,
    /// connection refused or reset, TLS failure.
    #[error("could not reach `{host}`: {detail}")]
    Connection {
        /// `host` or `host:port`.
        host: String,
        /// What went wrong, as the host reported it.
        detail: String,
    },
    /// No answer in time (connecting, or waiting for the answer).
    #[error("no answer from `{host}` in time: {detail}")]
    Timeout {
        /// `host` or `host:port`.
        host: String,
        /// Which wait ran out.
        detail: String,
    },
    /// The answer broke the HTTP protocol or a size limit.
    #[error("unusable HTTP answer from `{host}`: {detail}")]
    Protocol {
        /// `host` or `host:port`.
        host: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// The answer's body is not the JSON the plugin expected
    /// ([`Response::json`]).
    #[error("the answer is not the expected JSON: {0}")]
    Decode(String),
}

/// An outbound request, built one call at a time and sent with
/// [`send`](Request::send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

impl Request {
    /// A request with `method` to the absolute `url` (`http://` or
    /// `https://`), no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Request::new(Method::Get, url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Request::new(Method::Post, url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Self {
        Request::new(Method::Put, url)
    }

    /// A `PATCH` request.
    pub fn patch(url: impl Into<String>) -> Self {
        Request::new(Method::Patch, url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> Self {
        Request::new(Method::Delete, url)
    }

    /// Adds a header. Calling it twice with the same name sends both values.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer_auth(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }

    /// Adds `Authorization: Basic …` (RFC 7617) for `user` and `password`.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let credentials = url::base64(format!("{user}:{password}").as_bytes());
        self.header("Authorization", format!("Basic {credentials}"))
    }

    /// Appends `pairs` to the URL's query string, form-encoded
    /// (`?a=1&b=x+y`). Any fragment (`#…`) is dropped; it never goes on the
    /// wire.
    pub fn query<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        if let Some(fragment) = self.url.find('#') {
            self.url.truncate(fragment);
        }
        if pairs.is_empty() {
            return self;
        }
        let separator = if !self.url.contains('?') {
            "?"
        } else if self.url.ends_with(['?', '&']) {
            ""
        } else {
            "&"
        };
        self.url.push_str(separator);
        self.url.push_str(&url::encode_form(pairs));
        self
    }

    /// Sends `value` as the JSON body, with `Content-Type: application/json`
    /// unless a content type is already set.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, Error> {
        self.body = serde_json::to_vec(value).map_err(|error| {
            Error::InvalidRequest(format!("could not encode the body as JSON: {error}"))
        })?;
        Ok(self.default_content_type("application/json"))
    }

    /// Sends `pairs` as an `application/x-www-form-urlencoded` body, with
    /// that content type unless one is already set.
    pub fn form<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        self.body = url::encode_form(pairs).into_bytes();
        self.default_content_type("application/x-www-form-urlencoded")
    }

    /// Sends `body` as it is; set the `Content-Type` header yourself.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Gives up after `timeout` while connecting, waiting for the answer to
    /// start, or between two chunks of it. Without one, the host's own
    /// per-connection timeouts and the job's deadline apply.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request and waits for the whole answer. Any status is an
    /// answer: use [`Response::error_for_status`] to turn a failure status
    /// into a [`SubmitError`](crate::SubmitError).
    ///
    /// A request without a [`timeout`](Request::timeout) of its own gets the
    /// connection's `timeoutMs` setting ([`config::TIMEOUT_SETTING`](crate::config::TIMEOUT_SETTING)),
    /// when it has one; an invalid value fails with [`Error::InvalidRequest`]
    /// (misconfigured) before anything is sent.
    pub fn send(mut self) -> Result<Response, Error> {
        if self.timeout.is_none() {
            self.timeout = crate::config::request_timeout()
                .map_err(|error| Error::InvalidRequest(error.message().to_owned()))?;
        }
        #[cfg(target_arch = "wasm32")]
        {
            wasi::send(&self)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            crate::testing::send(&self)
        }
    }

    /// The request method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The URL, with any [`query`](Request::query) pairs added.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The headers set so far, in order, as given.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first value of header `name` (compared case-insensitively).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body bytes exactly as they will be sent: sign these.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// The timeout set with [`timeout`](Request::timeout).
    pub fn timeout_value(&self) -> Option<Duration> {
        self.timeout
    }

    /// The headers as they go on the wire: the plugin's, plus
    /// `Content-Length` and a default `User-Agent`. (The host adds `Host`.)
    pub(crate) fn wire_headers(&self) -> Vec<(String, String)> {
        let mut headers = self.headers.clone();
        if find_header(&headers, "user-agent").is_none() {
            headers.push(("User-Agent".to_owned(), USER_AGENT.to_owned()));
        }
        if find_header(&headers, "content-length").is_none()
            && (!self.body.is_empty() || self.method.expects_body())
        {
            headers.push(("Content-Length".to_owned(), self.body.len().to_string()));
        }
        headers
    }

    fn default_content_type(self, content_type: &str) -> Self {
        if self.header_value("content-type").is_some() {
            self
        } else {
            self.header("Content-Type", content_type)
        }
    }
}

/// An answer from the ERP: status, headers and the whole body.
///
/// Build one in tests with [`Response::new`] and the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code, e.g. `201`.
    pub status: u16,
    /// The headers, names in lower case, in the order received. A value that
    /// is not UTF-8 is converted lossily.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// An answer with `status`, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header (its name is stored in lower case, as received answers
    /// have them).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    ///
    /// # Panics
    /// If `value` cannot be encoded as JSON (a map with non-string keys); this
    /// is meant for tests.
    pub fn with_json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("test answer encodes as JSON");
        self.with_header("content-type", "application/json")
            .with_body(body)
    }

    /// Sets a plain-text body and `content-type: text/plain; charset=utf-8`.
    pub fn with_text(self, text: impl Into<String>) -> Self {
        self.with_header("content-type", "text/plain; charset=utf-8")
            .with_body(text.into().into_bytes())
    }

    /// The first value of header `name` (compared case-insensitively).
    /// A header the ERP sends several times, such as `Set-Cookie`, has more:
    /// see [`header_all`](Response::header_all).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every value of header `name` (compared case-insensitively), in the
    /// order received: each `Set-Cookie` of a login answer, say. (For
    /// cookies, [`CookieJar`] does the bookkeeping.)
    ///
    /// ```
    /// use rescind_guest::http::Response;
    ///
    /// let login = Response::new(200)
    ///     .with_header("Set-Cookie", "SID=abc; Path=/")
    ///     .with_header("Set-Cookie", "lang=en");
    /// let cookies: Vec<&str> = login.header_all("set-cookie").collect();
    /// assert_eq!(cookies, ["SID=abc; Path=/", "lang=en"]);
    /// ```
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text; invalid UTF-8 is replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON into `T`. A body that does not fit fails with
    /// [`Error::Decode`], quoting the start of the body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|error| {
            Error::Decode(format!(
                "{error} (status {}, body: {})",
                self.status,
                crate::mapping::excerpt(&self.text(), 200)
            ))
        })
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_body_sets_content_type_and_exact_bytes() {
        let request = Request::post("http://h/x")
            .json(&json!({"orderNumber": "1001", "lines": [1, 2]}))
            .unwrap();
        assert_eq!(
            request.body_bytes(),
            br#"{"lines":[1,2],"orderNumber":"1001"}"#
        );
        assert_eq!(
            request.header_value("content-type"),
            Some("application/json")
        );
    }

    #[test]
    fn a_content_type_set_first_is_kept() {
        let request = Request::post("http://h/x")
            .header("Content-Type", "application/vnd.erp+json")
            .json(&json!({}))
            .unwrap();
        let types: Vec<_> = request
            .headers()
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .collect();
        assert_eq!(types.len(), 1);
        assert_eq!(types[0].1, "application/vnd.erp+json");
    }

    #[test]
    fn form_body_is_urlencoded() {
        let request = Request::post("http://h/cancel.pagex").form(&[
            ("session", "123|abc"),
            ("cuid", "09|Z0"),
            ("orderNo", "1001"),
        ]);
        assert_eq!(
            request.body_bytes(),
            b"session=123%7Cabc&cuid=09%7CZ0&orderNo=1001"
        );
        assert_eq!(
            request.header_value("Content-Type"),
            Some("application/x-www-form-urlencoded")
        );
    }

    #[test]
    fn query_pairs_extend_the_url() {
        let url = |base: &str| {
            Request::get(base)
                .query(&[("orderId", "10 01"), ("URL", "https://shop/ok?x=1")])
                .url()
                .to_owned()
        };
        assert_eq!(
            url("http://h/OrderCancel"),
            "http://h/OrderCancel?orderId=10+01&URL=https%3A%2F%2Fshop%2Fok%3Fx%3D1"
        );
        assert_eq!(
            url("http://h/OrderCancel?storeId=1#top"),
            "http://h/OrderCancel?storeId=1&orderId=10+01&URL=https%3A%2F%2Fshop%2Fok%3Fx%3D1"
        );
        assert_eq!(
            url("http://h/x?"),
            "http://h/x?orderId=10+01&URL=https%3A%2F%2Fshop%2Fok%3Fx%3D1"
        );
    }

    #[test]
    fn wire_headers_add_length_and_user_agent() {
        let post = Request::post("http://h/").body(b"abc".to_vec());
        let headers = post.wire_headers();
        assert_eq!(find_header(&headers, "content-length"), Some("3"));
        assert_eq!(find_header(&headers, "user-agent"), Some(USER_AGENT));

        let empty_post = Request::post("http://h/").wire_headers();
        assert_eq!(find_header(&empty_post, "content-length"), Some("0"));

        let delete = Request::delete("http://h/x")
            .header("User-Agent", "mine")
            .wire_headers();
        assert_eq!(find_header(&delete, "content-length"), None);
        assert_eq!(find_header(&delete, "user-agent"), Some("mine"));
    }

    #[test]
    fn auth_helpers() {
        let request = Request::get("http://h/")
            .basic_auth("Aladdin", "open sesame")
            .bearer_auth("t0k");
        let values: Vec<_> = request.headers().iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Bearer t0k"]);
    }

    #[test]
    fn response_accessors() {
        let response = Response::new(201)
            .with_header("X-Request-Id", "abc")
            .with_json(&json!({"id": "E-1"}));
        assert_eq!(response.header("x-request-id"), Some("abc"));
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(response.header_all("nothing").count(), 0);
        assert!(response.is_success());
        let value: serde_json::Value = response.json().unwrap();
        assert_eq!(value["id"], "E-1");

        let html = Response::new(200).with_text("<html>oops</html>");
        let error = html.json::<serde_json::Value>().unwrap_err();
        assert!(
            matches!(&error, Error::Decode(m) if m.contains("<html>oops</html>")),
            "{error}"
        );
    }
}
