//! Unit tests for plugin logic with plain `cargo test`, no host needed.
//!
//! On the host target (anything but `wasm32`) the SDK's host functions and
//! its HTTP client talk to a [`Connection`] that the test sets up: its base
//! URL, settings and secrets, and a closure that answers each outbound
//! request as the ERP would. The test then submits a cancellation and
//! inspects what the ERP received and what the plugin logged.
//!
//! ```
//! use rescind_guest::http::{self, Request, Response};
//! use rescind_guest::testing::{self, Connection};
//! use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError, config};
//!
//! struct Erp;
//! impl IntegrationProcessor for Erp {
//!     fn submit_cancellation(c: &Cancellation) -> Result<Ack, SubmitError> {
//!         let token = config::required_secret("apiToken")?;
//!         let answer = Request::post(config::url("/cancellations"))
//!             .bearer_auth(&token)
//!             .json(&serde_json::json!({ "order": c.order_number }))?
//!             .send()?
//!             .error_for_status()?;
//!         Ok(Ack::with_reference(answer.text()))
//!     }
//! }
//!
//! let erp = Connection::new("https://erp.example.com/api")
//!     .secret("apiToken", "t0k")
//!     .respond(|request| {
//!         assert_eq!(request.header("authorization"), Some("Bearer t0k"));
//!         Ok(Response::new(201).with_text("ERP-7"))
//!     });
//! let ack = erp.submit::<Erp>(&testing::sample_cancellation()).unwrap();
//! assert_eq!(ack.erp_reference.as_deref(), Some("ERP-7"));
//! let sent = &erp.requests()[0];
//! assert_eq!(sent.url, "https://erp.example.com/api/cancellations");
//! assert_eq!(sent.json::<serde_json::Value>().unwrap()["order"], "1001");
//!
//! // Failures are answers too.
//! let down = Connection::new("https://erp.example.com/api")
//!     .secret("apiToken", "t0k")
//!     .respond(|_| Err(http::Error::Connection {
//!         host: "erp.example.com".into(),
//!         detail: "connection refused".into(),
//!     }));
//! assert!(down.submit::<Erp>(&testing::sample_cancellation()).unwrap_err().is_transient());
//! ```
//!
//! State is per thread, so tests run in parallel without seeing each
//! other's connections. Calling a host function outside
//! [`Connection::run`] / [`Connection::submit`] panics with a hint.
//!
//! Like the real host, a request to a host that the connection does not
//! allow fails with [`http::Error::Denied`]: the
//! base URL's host is allowed, others with [`Connection::allow_host`]. The
//! real host also redacts secrets from log lines; the recorded
//! [`logs`](Connection::logs) are verbatim, so a test can check that a plugin
//! never logs a secret.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::http::{self, Method, Request, Response};
use crate::log::Level;
use crate::{
    Ack, BankDetails, Cancellation, CancellationReason, CancelledLine, Channel,
    IntegrationProcessor, LineKind, Money, Refund, RefundDestination, SubmitError, Tracking,
};

type Responder = Rc<dyn Fn(&RecordedRequest) -> Result<Response, http::Error>>;

/// A stand-in for the job's ERP connection and the ERP behind it, for one
/// test. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Connection {
    state: Rc<RefCell<State>>,
}

struct State {
    base_url: String,
    settings: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    allowed_hosts: Vec<String>,
    responder: Option<Responder>,
    requests: Vec<RecordedRequest>,
    logs: Vec<LogLine>,
}

impl Connection {
    /// A connection with `base_url` (e.g. `https://erp.example.com/api`), no
    /// settings, no secrets, and no answers yet. The base URL's host is
    /// allowed.
    pub fn new(base_url: impl Into<String>) -> Self {
        let base_url = base_url.into();
        let allowed_hosts = vec![http::authority_of(&base_url)];
        Connection {
            state: Rc::new(RefCell::new(State {
                base_url,
                settings: BTreeMap::new(),
                secrets: BTreeMap::new(),
                allowed_hosts,
                responder: None,
                requests: Vec::new(),
                logs: Vec::new(),
            })),
        }
    }

    /// Adds a plain setting.
    pub fn setting(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.state
            .borrow_mut()
            .settings
            .insert(key.into(), value.into());
        self
    }

    /// Adds a secret.
    pub fn secret(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.state
            .borrow_mut()
            .secrets
            .insert(key.into(), value.into());
        self
    }

    /// Allows requests to `authority` (`host` or `host:port`, as the URL
    /// writes it) besides the base URL's.
    pub fn allow_host(self, authority: impl Into<String>) -> Self {
        self.state.borrow_mut().allowed_hosts.push(authority.into());
        self
    }

    /// Answers every allowed request with `answer`, which sees the request as
    /// it went on the wire. Return `Err` to simulate a transport failure
    /// (refused connection, timeout). Replaces any earlier answer.
    pub fn respond<F>(self, answer: F) -> Self
    where
        F: Fn(&RecordedRequest) -> Result<Response, http::Error> + 'static,
    {
        self.state.borrow_mut().responder = Some(Rc::new(answer));
        self
    }

    /// Answers every allowed request with a copy of `response`.
    pub fn respond_with(self, response: Response) -> Self {
        self.respond(move |_| Ok(response.clone()))
    }

    /// Calls `P::submit_cancellation` with this connection in place.
    pub fn submit<P: IntegrationProcessor>(
        &self,
        cancellation: &Cancellation,
    ) -> Result<Ack, SubmitError> {
        self.run(|| P::submit_cancellation(cancellation))
    }

    /// Runs `body` with this connection in place of the host, on this thread.
    pub fn run<T>(&self, body: impl FnOnce() -> T) -> T {
        /// Puts the previous connection back even when `body` panics.
        struct Restore(Option<Connection>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|current| *current.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|current| current.borrow_mut().replace(self.clone()));
        let _restore = Restore(previous);
        body()
    }

    /// The requests the ERP received, in order. Requests refused because of
    /// the allow-list or an invalid URL never reach it and are not here.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.borrow().requests.clone()
    }

    /// The lines the plugin logged, in order.
    pub fn logs(&self) -> Vec<LogLine> {
        self.state.borrow().logs.clone()
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("Connection")
            .field("base_url", &state.base_url)
            .field("settings", &state.settings)
            .field("secrets", &state.secrets.keys().collect::<Vec<_>>())
            .field("allowed_hosts", &state.allowed_hosts)
            .field("requests", &state.requests.len())
            .finish_non_exhaustive()
    }
}

/// A request as it reached the (simulated) ERP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method.
    pub method: Method,
    /// The full URL, query included.
    pub url: String,
    /// The headers as sent: the plugin's plus `Content-Length` and the
    /// default `User-Agent` (the host adds `Host`).
    pub headers: Vec<(String, String)>,
    /// The body bytes exactly as sent.
    pub body: Vec<u8>,
    /// The timeout the plugin set, if any.
    pub timeout: Option<Duration>,
}

impl RecordedRequest {
    /// The first value of header `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The path, without the query: `/api/orders/1001`.
    pub fn path(&self) -> &str {
        let after_scheme = self
            .url
            .split_once("://")
            .map_or(&*self.url, |(_, rest)| rest);
        let path_start = after_scheme.find('/').unwrap_or(after_scheme.len());
        let path = &after_scheme[path_start..];
        path.split(['?', '#']).next().unwrap_or_default()
    }

    /// The query string's pairs, decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        let query = self
            .url
            .split_once('?')
            .map(|(_, query)| query.split('#').next().unwrap_or_default())
            .unwrap_or_default();
        decode_form(query.as_bytes())
    }

    /// The body as text; invalid UTF-8 is replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body decoded as an `application/x-www-form-urlencoded` form.
    pub fn form(&self) -> Vec<(String, String)> {
        decode_form(&self.body)
    }
}

/// A line the plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its severity.
    pub level: Level,
    /// Its text, verbatim.
    pub message: String,
}

/// A realistic cancellation to start tests from: the whole of order `1001`
/// (a chair, its warranty and a discount: the example order of `docs/api.md`), cancelled
/// out of stock with a refund to an alternative bank account, attempt 1.
pub fn sample_cancellation() -> Cancellation {
    let eur = |amount| Money::new(amount, "EUR");
    Cancellation {
        request_id: "6f1d2c3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f".into(),
        attempt: 1,
        order_number: "1001".into(),
        erp_order_number: Some("ERP-1001".into()),
        business_code: "B1".into(),
        customer_number: "C-1".into(),
        website: "main".into(),
        order_date: "2024-09-01".into(),
        full: true,
        lines: vec![
            CancelledLine {
                line_number: 1,
                sku: "CHAIR".into(),
                quantity: 2,
                kind: LineKind::Product,
                amount: eur(20000),
                tax: eur(3800),
                parent_line: None,
                erp_line_ref: Some("ERP-1001-1".into()),
            },
            CancelledLine {
                line_number: 2,
                sku: "WARRANTY".into(),
                quantity: 1,
                kind: LineKind::Product,
                amount: eur(1500),
                tax: eur(285),
                parent_line: Some(1),
                erp_line_ref: None,
            },
            CancelledLine {
                line_number: 3,
                sku: "PROMO10".into(),
                quantity: 1,
                kind: LineKind::Discount,
                amount: eur(-2000),
                tax: eur(-380),
                parent_line: None,
                erp_line_ref: None,
            },
        ],
        all_line_numbers: vec![1, 2, 3],
        reason: CancellationReason::OutOfStock,
        date: "2024-09-09".into(),
        invoice_reference: Some("IDE12345678901".into()),
        forced_cancel: true,
        forced_cancel_with_refund: true,
        refund: Some(Refund {
            amount: eur(23205),
            to: RefundDestination::BankAccount,
        }),
        bank_details: Some(BankDetails {
            account_owner: "Max Mustermann".into(),
            iban: "DE89370400440532013000".into(),
            bic: Some("COBADEFFXXX".into()),
        }),
        for_user: None,
        tracking: Some(Tracking {
            channel: Channel::Online,
            session: Some("123|abc".into()),
            cuid: Some("09|Z0".into()),
            offline_channel: None,
        }),
        parameters: vec![("OrderNumber".into(), "1001".into())],
    }
}

fn decode_form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

thread_local! {
    static CURRENT: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

fn current() -> Connection {
    CURRENT
        .with(|current| current.borrow().clone())
        .unwrap_or_else(|| {
            panic!(
                "a rescind_guest host function was called outside a test connection: \
             wrap the call in rescind_guest::testing::Connection::run or use Connection::submit"
            )
        })
}

/// The host functions of a native build.
pub(crate) mod host {
    use super::{LogLine, current};
    use crate::log::Level;

    pub(crate) fn log(level: Level, message: &str) {
        current().state.borrow_mut().logs.push(LogLine {
            level,
            message: message.to_owned(),
        });
    }

    pub(crate) fn base_url() -> String {
        current().state.borrow().base_url.clone()
    }

    pub(crate) fn setting(key: &str) -> Option<String> {
        current().state.borrow().settings.get(key).cloned()
    }

    pub(crate) fn secret(key: &str) -> Option<String> {
        current().state.borrow().secrets.get(key).cloned()
    }
}

/// The HTTP client of a native build: the same checks as the real path,
/// then the registered answer.
pub(crate) fn send(request: &Request) -> Result<Response, http::Error> {
    let connection = current();
    // The same URL rules as on the wire: an invalid URL fails before anything
    // is sent.
    let authority = crate::http::parse_url(request.url())?.authority;
    let responder = {
        let state = connection.state.borrow();
        if !state.allowed_hosts.contains(&authority) {
            return Err(http::Error::Denied { host: authority });
        }
        state.responder.clone()
    };
    let recorded = RecordedRequest {
        method: request.method(),
        url: request.url().to_owned(),
        headers: request.wire_headers(),
        body: request.body_bytes().to_vec(),
        timeout: request.timeout_value(),
    };
    connection
        .state
        .borrow_mut()
        .requests
        .push(recorded.clone());
    match responder {
        Some(answer) => answer(&recorded),
        None => Err(http::Error::Connection {
            host: authority,
            detail: "the test connection has no answer registered (Connection::respond)".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_outside_the_allow_list_are_denied_and_never_reach_the_erp() {
        let erp = Connection::new("https://erp.example.com:8443/api")
            .allow_host("auth.example.com")
            .respond_with(Response::new(204));
        erp.run(|| {
            assert_eq!(
                Request::get("https://erp.example.com:8443/api/x")
                    .send()
                    .map(|r| r.status),
                Ok(204)
            );
            assert_eq!(
                Request::get("https://auth.example.com/token")
                    .send()
                    .map(|r| r.status),
                Ok(204)
            );
            assert_eq!(
                Request::get("https://evil.example.com/").send(),
                Err(http::Error::Denied {
                    host: "evil.example.com".into()
                })
            );
            // Same host, other port: a different authority.
            assert!(matches!(
                Request::get("https://erp.example.com/api").send(),
                Err(http::Error::Denied { .. })
            ));
            assert!(matches!(
                Request::get("/relative").send(),
                Err(http::Error::InvalidRequest(_))
            ));
        });
        let urls: Vec<String> = erp.requests().into_iter().map(|r| r.url).collect();
        assert_eq!(
            urls,
            [
                "https://erp.example.com:8443/api/x",
                "https://auth.example.com/token"
            ]
        );
    }

    #[test]
    fn recorded_requests_decode_path_query_and_form() {
        let erp = Connection::new("http://127.0.0.1:9000").respond_with(Response::new(200));
        erp.run(|| {
            Request::post("http://127.0.0.1:9000/tracker/api/v1/site/order/cancel.pagex")
                .query(&[("storeId", "10151"), ("x", "a b")])
                .form(&[("orderNo", "1001"), ("session", "123|abc")])
                .timeout(Duration::from_secs(2))
                .send()
                .unwrap();
        });
        let request = &erp.requests()[0];
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.path(), "/tracker/api/v1/site/order/cancel.pagex");
        assert_eq!(
            request.query(),
            [
                ("storeId".to_owned(), "10151".to_owned()),
                ("x".to_owned(), "a b".to_owned())
            ]
        );
        assert_eq!(
            request.form(),
            [
                ("orderNo".to_owned(), "1001".to_owned()),
                ("session".to_owned(), "123|abc".to_owned())
            ]
        );
        assert_eq!(request.header("content-length"), Some("30"));
        assert_eq!(request.body.len(), 30);
        assert_eq!(request.timeout, Some(Duration::from_secs(2)));
    }

    #[test]
    fn no_answer_registered_is_a_connection_failure() {
        let erp = Connection::new("http://127.0.0.1:9000");
        let error = erp
            .run(|| Request::delete("http://127.0.0.1:9000/x").send())
            .unwrap_err();
        assert!(
            matches!(&error, http::Error::Connection { detail, .. } if detail.contains("Connection::respond")),
            "{error}"
        );
        assert_eq!(erp.requests().len(), 1);
    }

    #[test]
    fn connections_are_per_thread_and_restored_after_run() {
        let outer = Connection::new("http://outer").setting("k", "outer");
        let inner = Connection::new("http://inner").setting("k", "inner");
        outer.run(|| {
            assert_eq!(crate::config::setting("k").as_deref(), Some("outer"));
            inner.run(|| assert_eq!(crate::config::setting("k").as_deref(), Some("inner")));
            assert_eq!(crate::config::setting("k").as_deref(), Some("outer"));
            let other_thread = std::thread::spawn(|| CURRENT.with(|c| c.borrow().is_none()));
            assert!(other_thread.join().unwrap());
        });
        assert!(CURRENT.with(|c| c.borrow().is_none()));
    }

    #[test]
    #[should_panic(expected = "outside a test connection")]
    fn host_calls_without_a_connection_explain_themselves() {
        let _ = crate::config::base_url();
    }

    #[test]
    fn sample_refund_adds_up() {
        let sample = sample_cancellation();
        let total: i64 = sample
            .lines
            .iter()
            .map(|line| line.amount.amount_minor + line.tax.amount_minor)
            .sum();
        assert_eq!(sample.refund.unwrap().amount.amount_minor, total);
    }
}
