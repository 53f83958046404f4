//! The one error mapping every plugin shares (issue: "error mapping, shared
//! through the SDK, not copied"):
//!
//! | what happened | outcome |
//! |---|---|
//! | 2xx | accepted |
//! | 408, 429, 5xx | transient: retried |
//! | 3xx (redirects are not followed) | misconfigured: the URL is probably wrong |
//! | other 4xx | rejected, with the API's own error text ([`Response::error_text`], or a plugin's own extractor) |
//! | connection refused or reset, DNS or TLS failure, timeout, broken answer | transient |
//! | host not in the connection's `allowedHosts` | misconfigured, naming the host |
//! | host resolves to a refused address (loopback, private, metadata) | misconfigured |
//! | TLS certificate not trusted | misconfigured: add the CA to `caCertificates` |
//! | a host limit (requests per call, header or body size) | rejected: retrying would not change it |
//! | malformed URL or header | misconfigured |
//! | 2xx whose body is not the expected JSON | rejected: retrying will not change it |

use crate::SubmitError;
use crate::http::{Error, Response};

/// How long the ERP's own error text may get in a job's record.
const MAX_ERROR_TEXT: usize = 500;

impl SubmitError {
    /// Classifies an answer that is not a success, carrying the API's own
    /// error text ([`Response::error_text`]): 408, 429 and 5xx are transient,
    /// other 4xx are rejected, redirects are misconfigured.
    ///
    /// For a 2xx answer this still returns a (rejected) error saying the
    /// answer was a success; call it only for failures, or use
    /// [`Response::error_for_status`].
    pub fn from_response(response: &Response) -> SubmitError {
        SubmitError::from_response_with(response, |_| None)
    }

    /// [`from_response`](SubmitError::from_response) with the error text
    /// taken by `extract` when it finds one, else by
    /// [`Response::error_text`]: for an ERP whose error documents have a
    /// shape of their own. The status alone picks the outcome either way,
    /// and the text is trimmed and bounded the same.
    pub fn from_response_with(
        response: &Response,
        extract: impl FnOnce(&Response) -> Option<String>,
    ) -> SubmitError {
        let status = response.status;
        let summary = format!("the ERP answered {}", status_line(status));
        let text = extract(response)
            .map(|text| excerpt(&text, MAX_ERROR_TEXT))
            .filter(|text| !text.is_empty())
            .or_else(|| response.error_text());
        let with_text = || match &text {
            Some(text) => format!("{summary}: {text}"),
            None => summary.clone(),
        };
        match status {
            408 | 429 | 500..=599 => SubmitError::Transient(with_text()),
            300..=399 => SubmitError::Misconfigured(match response.header("location") {
                Some(location) => format!(
                    "{summary}, redirecting to `{}`; redirects are not followed: check the connection's baseUrl",
                    excerpt(location, 200)
                ),
                None => format!("{summary}; check the connection's baseUrl"),
            }),
            200..=299 => SubmitError::Rejected(format!(
                "{summary}, a success: the plugin should not treat it as a failure"
            )),
            400..=499 => SubmitError::Rejected(with_text()),
            // 1xx never ends an exchange and anything else is not HTTP:
            // something between us and the ERP is broken, which may pass.
            _ => SubmitError::Transient(with_text()),
        }
    }
}

impl Response {
    /// Passes a 2xx answer through and turns any other into the shared
    /// [`SubmitError`] ([`SubmitError::from_response`]), so that
    /// `request.send()?.error_for_status()?` is all most plugins need.
    pub fn error_for_status(self) -> Result<Response, SubmitError> {
        self.error_for_status_with(|_| None)
    }

    /// [`error_for_status`](Response::error_for_status) with an error text
    /// extractor of the plugin's own, tried before the SDK's
    /// ([`SubmitError::from_response_with`]):
    ///
    /// ```
    /// use rescind_guest::http::Response;
    ///
    /// /// This ERP answers `{"result": {"status": "ERR", "text": "…"}}`.
    /// fn erp_error(response: &Response) -> Option<String> {
    ///     let document: serde_json::Value = response.json().ok()?;
    ///     Some(document["result"]["text"].as_str()?.to_owned())
    /// }
    ///
    /// let answer = Response::new(409)
    ///     .with_json(&serde_json::json!({"result": {"status": "ERR", "text": "order 1001 is shipped"}}));
    /// let error = answer.error_for_status_with(erp_error).unwrap_err();
    /// assert_eq!(error.message(), "the ERP answered 409 Conflict: order 1001 is shipped");
    /// ```
    pub fn error_for_status_with(
        self,
        extract: impl FnOnce(&Response) -> Option<String>,
    ) -> Result<Response, SubmitError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(SubmitError::from_response_with(&self, extract))
        }
    }

    /// The API's own words about a failure, as the shared mapping quotes
    /// them: the text of the first error shape the body matches, else the
    /// plain text (an HTML page's title), whitespace collapsed and cut at
    /// 500 characters. `None` for an empty body.
    ///
    /// | shape | example | text |
    /// |---|---|---|
    /// | OData (v2 and v4) | `{"error": {"code": "SY/530", "message": {"lang": "en", "value": "Order is delivered"}}}` | `Order is delivered` |
    /// | nested `error.message` | `{"error": {"code": 7, "message": "unknown order"}}` | `unknown order` |
    /// | `message` | `{"message": "IBAN invalid"}` | `IBAN invalid` |
    /// | WebSphere Commerce `errorMessage` | `{"errors": [{"errorKey": "_ERR_STATUS", "errorMessage": "order status is S"}]}` | `order status is S` |
    /// | `error` string, OAuth `error_description` | `{"error": "invalid_grant", "error_description": "expired"}` | `invalid_grant: expired` |
    /// | RFC 9457 problem | `{"title": "Bad Request", "detail": "date in the future"}` | `date in the future` (`title` without `detail`) |
    /// | a list of messages | `{"message": ["iban must be an IBAN", "date is required"]}` | `iban must be an IBAN; date is required` |
    /// | `errors[]` (JSON:API, GraphQL, lists of the above) | `{"errors": [{"detail": "a"}, "b"]}` | `a; b` |
    /// | a JSON string or list | `"order locked"`, `[{"message": "x"}]` | `order locked`, `x` |
    /// | anything else | `{"code": 17}` | the body itself |
    pub fn error_text(&self) -> Option<String> {
        error_text(self)
    }
}

impl From<Error> for SubmitError {
    fn from(error: Error) -> Self {
        match &error {
            Error::Denied { host } => SubmitError::Misconfigured(format!(
                "the connection does not allow requests to `{host}`: add \"{host}\" to the connection's allowedHosts"
            )),
            Error::AddressRefused { .. } | Error::Certificate { .. } => {
                SubmitError::Misconfigured(error.to_string())
            }
            Error::Limit { .. } => {
                SubmitError::Rejected(format!("{error}: retrying would not change it"))
            }
            Error::InvalidRequest(_) => SubmitError::Misconfigured(format!(
                "{error}; check the connection's baseUrl and settings"
            )),
            Error::Connection { .. } | Error::Timeout { .. } | Error::Protocol { .. } => {
                SubmitError::Transient(error.to_string())
            }
            Error::Decode(_) => {
                SubmitError::Rejected(format!("unexpected answer from the ERP: {error}"))
            }
        }
    }
}

/// `422 Unprocessable Content`, or just the number for codes without a
/// standard reason phrase.
fn status_line(status: u16) -> String {
    let reason = match status {
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return status.to_string(),
    };
    format!("{status} {reason}")
}

/// See [`Response::error_text`].
fn error_text(response: &Response) -> Option<String> {
    let text = response.text();
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(found) = json_error_text(&json) {
            return Some(excerpt(&found, MAX_ERROR_TEXT));
        }
        return Some(excerpt(text, MAX_ERROR_TEXT));
    }
    if text.starts_with('<') {
        // An HTML error page: its title says it; the markup is noise.
        return html_title(text).map(|title| excerpt(&title, MAX_ERROR_TEXT));
    }
    Some(excerpt(text, MAX_ERROR_TEXT))
}

/// The error text of a JSON error document, by the shapes listed on
/// [`Response::error_text`].
fn json_error_text(json: &serde_json::Value) -> Option<String> {
    use serde_json::Value;

    let text_of = |value: &Value| match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    };
    let object = match json {
        Value::String(_) => return text_of(json),
        Value::Array(items) => return joined(items),
        Value::Object(object) => object,
        _ => return None,
    };
    // OAuth 2.0 (RFC 6749 §5.2): the code, then what it means.
    if let (Some(code), Some(description)) = (
        object.get("error").and_then(text_of),
        object.get("error_description").and_then(text_of),
    ) {
        return Some(format!("{code}: {description}"));
    }
    // RFC 9457 puts the occurrence in `detail` and the kind in `title`.
    for key in [
        "message",
        "errorMessage",
        "error",
        "detail",
        "title",
        "error_description",
    ] {
        match object.get(key) {
            Some(value @ Value::String(_)) => {
                if let Some(text) = text_of(value) {
                    return Some(text);
                }
            }
            Some(value @ Value::Object(nested)) => {
                // OData v2: "message": {"lang": "en", "value": "…"}
                if let Some(text) = nested.get("value").and_then(text_of) {
                    return Some(text);
                }
                if let Some(text) = json_error_text(value) {
                    return Some(text);
                }
            }
            // NestJS and others: "message": ["iban must be an IBAN", …]
            Some(Value::Array(items)) => {
                if let Some(text) = joined(items) {
                    return Some(text);
                }
            }
            _ => {}
        }
    }
    joined(object.get("errors")?.as_array()?)
}

/// The texts of a list of errors (strings or documents), joined by `; `.
fn joined(items: &[serde_json::Value]) -> Option<String> {
    let texts: Vec<String> = items.iter().filter_map(json_error_text).collect();
    (!texts.is_empty()).then(|| texts.join("; "))
}

fn html_title(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower[start..].find("</title>")?;
    let title = html[start..end].trim();
    (!title.is_empty()).then(|| title.to_owned())
}

/// `text` with its whitespace runs collapsed, cut at `max` characters with an
/// ellipsis, so one error stays one readable line.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(max).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(error: &SubmitError) -> &'static str {
        match error {
            SubmitError::Rejected(_) => "rejected",
            SubmitError::Transient(_) => "transient",
            SubmitError::Misconfigured(_) => "misconfigured",
        }
    }

    #[test]
    fn status_table() {
        for (status, expected) in [
            (200, "ok"),
            (201, "ok"),
            (204, "ok"),
            (299, "ok"),
            (301, "misconfigured"),
            (302, "misconfigured"),
            (400, "rejected"),
            (401, "rejected"),
            (403, "rejected"),
            (404, "rejected"),
            (408, "transient"),
            (409, "rejected"),
            (422, "rejected"),
            (429, "transient"),
            (499, "rejected"),
            (500, "transient"),
            (502, "transient"),
            (503, "transient"),
            (504, "transient"),
            (599, "transient"),
        ] {
            let outcome = match Response::new(status).error_for_status() {
                Ok(response) => {
                    assert_eq!(response.status, status);
                    "ok"
                }
                Err(error) => kind(&error),
            };
            assert_eq!(outcome, expected, "status {status}");
        }
    }

    #[test]
    fn rejection_carries_the_apis_own_text() {
        let cases = [
            (json!({"message": " IBAN invalid "}), "IBAN invalid"),
            (json!({"error": "unknown order"}), "unknown order"),
            (
                json!({"errorMessage": "order status is S", "errorMessageKey": "_ERR_STATUS"}),
                "order status is S",
            ),
            (
                json!({"error": {"code": 7, "message": "nested text"}}),
                "nested text",
            ),
            (
                json!({"type": "about:blank", "title": "Bad Request", "detail": "cancellationDate in the future"}),
                "cancellationDate in the future",
            ),
            (json!({"title": "Conflict"}), "Conflict"),
            (
                json!({"errors": [{"message": "a"}, "b", {"field": "x"}]}),
                "a; b",
            ),
            (json!({"unrelated": 1}), r#"{"unrelated":1}"#),
            // OData v2 (SAP Gateway) and v4
            (
                json!({"error": {"code": "SY/530", "message": {"lang": "en", "value": "Order 4711 is already delivered"},
                                 "innererror": {"transactionid": "0A1B"}}}),
                "Order 4711 is already delivered",
            ),
            (
                json!({"error": {"code": "501", "message": "Unsupported functionality", "target": "query"}}),
                "Unsupported functionality",
            ),
            // WebSphere Commerce REST
            (
                json!({"errors": [{"errorKey": "_ERR_ORDER_STATUS", "errorParameters": ["S"],
                                   "errorMessage": "The order status S does not allow cancellation.", "errorCode": "CMN1000E"}]}),
                "The order status S does not allow cancellation.",
            ),
            // OAuth 2.0
            (
                json!({"error": "invalid_grant", "error_description": "the session expired"}),
                "invalid_grant: the session expired",
            ),
            (
                json!({"statusCode": 400, "message": ["iban must be an IBAN", "date is required"], "error": "Bad Request"}),
                "iban must be an IBAN; date is required",
            ),
            (json!("order is locked"), "order is locked"),
            (json!([{"message": "x", "errorCode": "E1"}]), "x"),
            (
                json!({"message": "  ", "detail": "blank message skipped"}),
                "blank message skipped",
            ),
        ];
        for (body, expected) in cases {
            let response = Response::new(422).with_json(&body);
            let error = SubmitError::from_response(&response);
            assert_eq!(
                error,
                SubmitError::Rejected(format!(
                    "the ERP answered 422 Unprocessable Content: {expected}"
                )),
                "{body}"
            );
        }
    }

    #[test]
    fn plain_text_and_html_and_empty_bodies() {
        let text = Response::new(400).with_text("  order 1001 is\n already shipped \n");
        assert_eq!(
            SubmitError::from_response(&text).message(),
            "the ERP answered 400 Bad Request: order 1001 is already shipped"
        );

        let html = Response::new(503).with_body(
            "<!DOCTYPE html><html><head><TITLE>Maintenance</TITLE></head><body>…</body></html>",
        );
        assert_eq!(
            SubmitError::from_response(&html),
            SubmitError::Transient("the ERP answered 503 Service Unavailable: Maintenance".into())
        );

        let empty = Response::new(429);
        assert_eq!(
            SubmitError::from_response(&empty),
            SubmitError::Transient("the ERP answered 429 Too Many Requests".into())
        );

        let odd = Response::new(418).with_text("teapot");
        assert_eq!(
            SubmitError::from_response(&odd).message(),
            "the ERP answered 418: teapot"
        );
    }

    #[test]
    fn a_plugins_own_extractor_comes_first_and_the_status_still_decides() {
        // SOAP faults: a shape the SDK does not know.
        let fault = |response: &Response| {
            let text = response.text();
            let start = text.find("<faultstring>")? + "<faultstring>".len();
            let end = start + text[start..].find("</faultstring>")?;
            Some(text[start..end].to_owned())
        };
        let soap = |status| {
            Response::new(status).with_body(
                "<soap:Envelope><soap:Body><soap:Fault><faultcode>soap:Client</faultcode>\
                 <faultstring>Order 1001\n is locked</faultstring></soap:Fault></soap:Body></soap:Envelope>",
            )
        };
        assert_eq!(
            soap(422).error_for_status_with(fault).unwrap_err(),
            SubmitError::Rejected(
                "the ERP answered 422 Unprocessable Content: Order 1001 is locked".into()
            )
        );
        assert_eq!(
            SubmitError::from_response_with(&soap(503), fault),
            SubmitError::Transient(
                "the ERP answered 503 Service Unavailable: Order 1001 is locked".into()
            )
        );
        // Without it, the SDK sees markup without a title.
        assert_eq!(
            soap(422).error_for_status().unwrap_err(),
            SubmitError::Rejected("the ERP answered 422 Unprocessable Content".into())
        );
        // Nothing found, or only blanks: the SDK's own extraction.
        let plain = Response::new(400).with_json(&json!({"message": "bad iban"}));
        assert_eq!(
            plain
                .clone()
                .error_for_status_with(|_| None)
                .unwrap_err()
                .message(),
            "the ERP answered 400 Bad Request: bad iban"
        );
        assert_eq!(
            plain
                .clone()
                .error_for_status_with(|_| Some(" \n ".into()))
                .unwrap_err()
                .message(),
            "the ERP answered 400 Bad Request: bad iban"
        );
        // A success passes, whatever the extractor would say.
        let ok = Response::new(201).error_for_status_with(|_| panic!("not called for a success"));
        assert_eq!(ok.map(|r| r.status), Ok(201));
        // The plugin's text is bounded like the SDK's.
        let long = plain
            .error_for_status_with(|_| Some("y".repeat(5000)))
            .unwrap_err();
        assert!(
            long.message().chars().count() < MAX_ERROR_TEXT + 60,
            "{long}"
        );
    }

    #[test]
    fn error_text_is_bounded() {
        let long = "x".repeat(5000);
        let response = Response::new(400).with_json(&json!({ "message": long }));
        let message = SubmitError::from_response(&response).message().to_owned();
        assert!(message.ends_with('…'));
        assert!(
            message.chars().count() < MAX_ERROR_TEXT + 60,
            "{}",
            message.len()
        );
    }

    #[test]
    fn redirects_point_at_the_base_url() {
        let response = Response::new(301).with_header("Location", "https://erp.example.com/api/");
        let error = SubmitError::from_response(&response);
        assert_eq!(kind(&error), "misconfigured");
        assert!(
            error.message().contains("https://erp.example.com/api/"),
            "{error}"
        );
        assert!(error.message().contains("baseUrl"), "{error}");
    }

    #[test]
    fn host_refusals_and_limits_are_not_retried() {
        let host = || "erp.example.com:443".to_owned();
        for (error, expected) in [
            (Error::AddressRefused { host: host() }, "misconfigured"),
            (Error::Certificate { host: host() }, "misconfigured"),
            (
                Error::Limit {
                    host: host(),
                    detail: "the host's limit of outgoing requests per call was reached".into(),
                },
                "rejected",
            ),
        ] {
            let mapped = SubmitError::from(error.clone());
            assert_eq!(kind(&mapped), expected, "{error}");
            assert!(mapped.message().contains("erp.example.com:443"), "{mapped}");
        }
        let certificate = SubmitError::from(Error::Certificate { host: host() });
        assert!(
            certificate.message().contains("caCertificates"),
            "{certificate}"
        );
        let address = SubmitError::from(Error::AddressRefused { host: host() });
        assert!(
            address.message().contains("allowPrivateNetwork"),
            "{address}"
        );
    }

    #[test]
    fn transport_errors_map_by_kind() {
        let host = || "erp.example.com:443".to_owned();
        let denied = SubmitError::from(Error::Denied { host: host() });
        assert_eq!(
            denied,
            SubmitError::Misconfigured(
                "the connection does not allow requests to `erp.example.com:443`: add \"erp.example.com:443\" to the connection's allowedHosts".into()
            )
        );
        for error in [
            Error::Connection {
                host: host(),
                detail: "connection refused".into(),
            },
            Error::Timeout {
                host: host(),
                detail: "the answer did not start in time".into(),
            },
            Error::Protocol {
                host: host(),
                detail: "the answer was cut short".into(),
            },
        ] {
            let text = error.to_string();
            let mapped = SubmitError::from(error);
            assert!(mapped.is_transient(), "{mapped}");
            assert_eq!(mapped.message(), text);
        }
        let invalid = SubmitError::from(Error::InvalidRequest("URL `x` is not absolute".into()));
        assert_eq!(kind(&invalid), "misconfigured");
        let decode = SubmitError::from(Error::Decode("missing field `id`".into()));
        assert_eq!(kind(&decode), "rejected");
    }
}
