//! The one error mapping every plugin shares (issue: "error mapping, shared
//! through the SDK, not copied"):
//!
//! | what happened | outcome |
//! |---|---|
//! | 2xx | accepted |
//! | 408, 429, 5xx | transient: retried |
//! | 3xx (redirects are not followed) | misconfigured: the URL is probably wrong |
//! | other 4xx | rejected, with the API's own error text |
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
    /// error text: 408, 429 and 5xx are transient, other 4xx are rejected,
    /// redirects are misconfigured.
    ///
    /// For a 2xx answer this still returns a (rejected) error saying the
    /// answer was a success; call it only for failures, or use
    /// [`Response::error_for_status`].
    pub fn from_response(response: &Response) -> SubmitError {
        let status = response.status;
        let summary = format!("the ERP answered {}", status_line(status));
        let with_text = || match error_text(response) {
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
        if self.is_success() {
            Ok(self)
        } else {
            Err(SubmitError::from_response(&self))
        }
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

/// The API's own words about the failure: a JSON `message`, `errorMessage`,
/// `error`, `detail`, `title` or `errors[]` field, else the plain text (or an HTML
/// page's title), trimmed and bounded. `None` for an empty body.
pub(crate) fn error_text(response: &Response) -> Option<String> {
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

fn json_error_text(json: &serde_json::Value) -> Option<String> {
    let object = json.as_object()?;
    // `errorMessage`: WebSphere Commerce's error documents, among others.
    for key in [
        "message",
        "errorMessage",
        "error",
        "detail",
        "title",
        "error_description",
    ] {
        match object.get(key) {
            Some(serde_json::Value::String(text)) if !text.trim().is_empty() => {
                return Some(text.trim().to_owned());
            }
            // {"error": {"message": "..."}} and the like
            Some(nested @ serde_json::Value::Object(_)) => {
                if let Some(text) = json_error_text(nested) {
                    return Some(text);
                }
            }
            _ => {}
        }
    }
    let errors = object.get("errors")?.as_array()?;
    let texts: Vec<String> = errors
        .iter()
        .filter_map(|error| match error {
            serde_json::Value::String(text) => Some(text.trim().to_owned()),
            other => json_error_text(other),
        })
        .filter(|text| !text.is_empty())
        .collect();
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
