//! Test guest `egress-probe`: makes the wasi:http requests its connection's
//! settings describe, straight through `wasi:http/outgoing-handler` (not the
//! SDK's client, so that nothing but the host stands in the way), and
//! reports what each one got.
//!
//! Settings:
//! - `urls`: a JSON array of absolute URLs, requested with `GET` in order;
//!   the authority is sent as written (`http://allowed@evil/` included).
//! - `repeat`: how many times to go through the list (default 1).
//! - `padHeaderBytes`: the length of an `x-pad` header added to every
//!   request (default: none).
//! - `answer`: `accept` (default) or `transient`: what the plugin answers
//!   after its requests, to show that the host's verdict wins.
//!
//! Each request's result is logged as one line `probe <n> <json>`, with
//! `{"url", "status", "location", "bodyBytes", "bodyError", "error"}`
//! (errors are the wasi:http error codes' names, e.g. `HttpRequestDenied`,
//! or the host's text when a body stream fails without a code), and the
//! whole list is the
//! `Ack.message` (reference `egress-probe`).

use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError, config, log};
use serde_json::Value;
#[cfg(not(target_arch = "wasm32"))]
use serde_json::json;

/// Probes the egress.
pub struct EgressProbe;

/// What the settings ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// URLs in order, already repeated.
    pub urls: Vec<String>,
    /// Length of the `x-pad` header value, if any.
    pub pad_header_bytes: Option<usize>,
    /// Answer `Transient` at the end instead of accepting.
    pub transient: bool,
}

impl Plan {
    /// Reads the plan from the connection's settings.
    pub fn from_settings() -> Result<Plan, SubmitError> {
        let urls: Vec<String> = serde_json::from_str(&config::setting_or("urls", "[]"))
            .map_err(|e| SubmitError::Misconfigured(format!("setting urls: {e}")))?;
        let repeat: usize = config::setting_or("repeat", "1")
            .parse()
            .map_err(|e| SubmitError::Misconfigured(format!("setting repeat: {e}")))?;
        let pad_header_bytes =
            match config::setting("padHeaderBytes") {
                None => None,
                Some(n) => Some(n.parse().map_err(|e| {
                    SubmitError::Misconfigured(format!("setting padHeaderBytes: {e}"))
                })?),
            };
        Ok(Plan {
            urls: std::iter::repeat_n(urls, repeat).flatten().collect(),
            pad_header_bytes,
            transient: config::setting_or("answer", "accept") == "transient",
        })
    }
}

impl IntegrationProcessor for EgressProbe {
    fn submit_cancellation(_cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        let plan = Plan::from_settings()?;
        let mut results = Vec::new();
        for (n, url) in plan.urls.iter().enumerate() {
            let result = request(url, plan.pad_header_bytes);
            log::info!("probe {n} {result}");
            results.push(result);
        }
        if plan.transient {
            return Err(SubmitError::Transient(
                "the probe asks to be retried".into(),
            ));
        }
        Ok(Ack::with_reference("egress-probe").with_message(Value::from(results).to_string()))
    }
}

rescind_guest::register_integration_processor!(EgressProbe);

/// Splits an absolute URL into scheme, authority and path-with-query,
/// without judging the authority.
pub fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let cut = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(cut);
    Some((scheme, authority, if path.is_empty() { "/" } else { path }))
}

#[cfg(target_arch = "wasm32")]
fn request(url: &str, pad: Option<usize>) -> Value {
    wasi::request(url, pad)
}

#[cfg(not(target_arch = "wasm32"))]
fn request(url: &str, _pad: Option<usize>) -> Value {
    json!({"url": url, "error": "wasi:http exists only inside a component"})
}

#[cfg(target_arch = "wasm32")]
mod wasi {
    use serde_json::{Value, json};
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        Fields, IncomingBody, Method, OutgoingRequest, Scheme, http_error_code,
    };
    use wasip2::io::streams::StreamError;

    pub(super) fn request(url: &str, pad: Option<usize>) -> Value {
        let Some((scheme, authority, path)) = super::split_url(url) else {
            return json!({"url": url, "error": "not an absolute URL"});
        };
        let headers = Fields::new();
        if let Some(n) = pad
            && let Err(e) = headers.append("x-pad", &vec![b'p'; n])
        {
            return json!({"url": url, "error": format!("x-pad: {e:?}")});
        }
        let outgoing = OutgoingRequest::new(headers);
        let scheme = match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => Scheme::Other(other.to_owned()),
        };
        let set = outgoing.set_method(&Method::Get).is_ok()
            && outgoing.set_scheme(Some(&scheme)).is_ok()
            && outgoing.set_authority(Some(authority)).is_ok()
            && outgoing.set_path_with_query(Some(path)).is_ok();
        if !set {
            return json!({"url": url, "error": "the request could not be built"});
        }
        let future = match outgoing_handler::handle(outgoing, None) {
            Ok(future) => future,
            Err(code) => return json!({"url": url, "error": name(&code)}),
        };
        let response = loop {
            match future.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(code))) => return json!({"url": url, "error": name(&code)}),
                Some(Err(())) => return json!({"url": url, "error": "response taken twice"}),
                None => future.subscribe().block(),
            }
        };
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .first()
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let Ok(body) = response.consume() else {
            return json!({"url": url, "status": status, "error": "no body"});
        };
        let (read, body_error) = read_all(&body);
        drop(IncomingBody::finish(body));
        json!({"url": url, "status": status, "location": location,
               "bodyBytes": read, "bodyError": body_error})
    }

    /// The error code as the WIT names its case, e.g. `HttpRequestDenied`.
    fn name(code: &wasip2::http::types::ErrorCode) -> String {
        let debug = format!("{code:?}");
        debug
            .strip_prefix("ErrorCode::")
            .unwrap_or(&debug)
            .to_owned()
    }

    /// Reads and discards the body, counting its bytes.
    fn read_all(body: &IncomingBody) -> (u64, Option<String>) {
        let Ok(stream) = body.stream() else {
            return (0, Some("no body stream".into()));
        };
        let mut read = 0u64;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => read += chunk.len() as u64,
                Err(StreamError::Closed) => return (read, None),
                Err(StreamError::LastOperationFailed(e)) => {
                    let code = http_error_code(&e)
                        .map(|c| name(&c))
                        .unwrap_or_else(|| e.to_debug_string());
                    return (read, Some(code));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rescind_guest::testing::{Connection, sample_cancellation};

    #[test]
    fn urls_split_without_judging_the_authority() {
        assert_eq!(
            split_url("http://allowed@evil:80/x?y=1"),
            Some(("http", "allowed@evil:80", "/x?y=1"))
        );
        assert_eq!(
            split_url("https://[::ffff:127.0.0.1]:9"),
            Some(("https", "[::ffff:127.0.0.1]:9", "/"))
        );
        assert_eq!(split_url("no-scheme"), None);
    }

    #[test]
    fn the_plan_comes_from_the_settings() {
        let connection = Connection::new("http://127.0.0.1:9")
            .setting("urls", r#"["http://a/", "http://b/"]"#)
            .setting("repeat", "2")
            .setting("padHeaderBytes", "10")
            .setting("answer", "transient");
        let plan = connection.run(Plan::from_settings).unwrap();
        assert_eq!(plan.urls.len(), 4);
        assert_eq!(plan.pad_header_bytes, Some(10));
        assert!(plan.transient);

        let error = connection.submit::<EgressProbe>(&sample_cancellation());
        assert!(matches!(error, Err(SubmitError::Transient(_))), "{error:?}");
    }
}
