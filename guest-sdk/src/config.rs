//! The job's ERP connection as the operator configured it
//! (`PUT /v1/admin/connections/{name}`): base URL, plain settings and secrets.
//!
//! The `required_*` functions answer a ready-made
//! [`SubmitError::Misconfigured`] that names the missing key and where to add
//! it, so `config::required_secret("apiToken")?` is the whole check.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use crate::SubmitError;
use crate::host;

/// The connection's base URL, e.g. `https://erp.example.com/api`.
pub fn base_url() -> String {
    host::base_url()
}

/// The base URL joined with `path` by exactly one `/`:
/// `url("/orders")` on `https://erp/api/` is `https://erp/api/orders`. Encode
/// values you put in `path` with
/// [`http::encode_path_segment`](crate::http::encode_path_segment).
pub fn url(path: &str) -> String {
    join(&base_url(), path)
}

/// A plain setting of the connection (e.g. `businessCode`); `None` when the
/// connection has no such setting.
pub fn setting(key: &str) -> Option<String> {
    host::setting(key)
}

/// A setting, or `default` when the connection has none.
pub fn setting_or(key: &str, default: &str) -> String {
    setting(key).unwrap_or_else(|| default.to_owned())
}

/// A setting the plugin cannot work without; missing or empty is
/// misconfigured, naming the key and the connection field to add it to.
pub fn required_setting(key: &str) -> Result<String, SubmitError> {
    required(key, setting(key), "setting", "settings")
}

/// A setting that picks one of a few modes (`"bearer"` or `"basic"`), or
/// `default` when it is not set. Any other value is misconfigured, listing
/// the allowed ones.
pub fn setting_one_of(key: &str, allowed: &[&str], default: &str) -> Result<String, SubmitError> {
    let Some(value) = setting(key) else {
        return Ok(default.to_owned());
    };
    if allowed.contains(&value.as_str()) {
        return Ok(value);
    }
    let expected = allowed
        .iter()
        .map(|choice| format!("`{choice}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(SubmitError::Misconfigured(format!(
        "setting `{key}` of the connection is `{value}`; expected one of {expected}"
    )))
}

/// A setting parsed into `T` (a number, a flag); `None` when it is not set,
/// misconfigured when it does not parse.
pub fn parse_setting<T>(key: &str) -> Result<Option<T>, SubmitError>
where
    T: FromStr,
    T::Err: Display,
{
    let Some(value) = setting(key) else {
        return Ok(None);
    };
    value.trim().parse().map(Some).map_err(|error| {
        SubmitError::Misconfigured(format!(
            "setting `{key}` of the connection is `{value}`, which is not valid: {error}"
        ))
    })
}

/// The setting that bounds how long each outbound request waits (to
/// connect, for the answer to start, between its chunks), in milliseconds.
/// [`Request::send`](crate::http::Request::send) applies it to every request
/// that sets no [`timeout`](crate::http::Request::timeout) of its own, so every
/// plugin honours the connection's timeout without code of its own. The job's
/// deadline bounds the whole call either way.
pub const TIMEOUT_SETTING: &str = "timeoutMs";

/// The connection's [`TIMEOUT_SETTING`]; `None` when it is not set,
/// misconfigured when it is not a whole number of milliseconds above zero.
pub fn request_timeout() -> Result<Option<Duration>, SubmitError> {
    match parse_setting::<u64>(TIMEOUT_SETTING)? {
        None => Ok(None),
        Some(0) => Err(SubmitError::Misconfigured(format!(
            "setting `{TIMEOUT_SETTING}` of the connection is 0; expected a number of milliseconds above zero"
        ))),
        Some(millis) => Ok(Some(Duration::from_millis(millis))),
    }
}

/// A secret of the connection (e.g. an API token); `None` when the
/// connection has no such secret. The host redacts secret values from the
/// job's log, but do not log them anyway.
pub fn secret(key: &str) -> Option<String> {
    host::secret(key)
}

/// A secret the plugin cannot work without; missing or empty is
/// misconfigured, naming the key and the connection field to add it to.
pub fn required_secret(key: &str) -> Result<String, SubmitError> {
    required(key, secret(key), "secret", "secrets")
}

fn required(
    key: &str,
    value: Option<String>,
    what: &str,
    field: &str,
) -> Result<String, SubmitError> {
    match value {
        Some(value) if !value.trim().is_empty() => Ok(value),
        Some(_) => Err(SubmitError::Misconfigured(format!(
            "{what} `{key}` of the connection is empty: set it in the connection's \"{field}\""
        ))),
        None => Err(SubmitError::Misconfigured(format!(
            "the connection has no {what} `{key}`: add it to the connection's \"{field}\""
        ))),
    }
}

fn join(base: &str, path: &str) -> String {
    if path.is_empty() {
        return base.to_owned();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Connection;

    #[test]
    fn joins_with_one_slash() {
        assert_eq!(join("https://erp/api", "/orders"), "https://erp/api/orders");
        assert_eq!(join("https://erp/api/", "orders"), "https://erp/api/orders");
        assert_eq!(
            join("https://erp/api//", "//orders"),
            "https://erp/api/orders"
        );
        assert_eq!(join("https://erp/api", ""), "https://erp/api");
    }

    #[test]
    fn missing_and_empty_values_name_the_key_and_field() {
        let connection = Connection::new("https://erp.example.com/api/")
            .setting("businessCode", "B1")
            .setting("blank", " ")
            .secret("apiToken", "t0k");
        connection.run(|| {
            assert_eq!(url("orders"), "https://erp.example.com/api/orders");
            assert_eq!(required_setting("businessCode"), Ok("B1".to_owned()));
            assert_eq!(required_secret("apiToken"), Ok("t0k".to_owned()));
            assert_eq!(
                required_setting("storeId"),
                Err(SubmitError::Misconfigured(
                    "the connection has no setting `storeId`: add it to the connection's \"settings\""
                        .into()
                ))
            );
            assert_eq!(
                required_secret("signingKey"),
                Err(SubmitError::Misconfigured(
                    "the connection has no secret `signingKey`: add it to the connection's \"secrets\""
                        .into()
                ))
            );
            assert_eq!(
                required_setting("blank"),
                Err(SubmitError::Misconfigured(
                    "setting `blank` of the connection is empty: set it in the connection's \"settings\""
                        .into()
                ))
            );
            // A secret is never a setting, and the other way round.
            assert_eq!(setting("apiToken"), None);
            assert_eq!(secret("businessCode"), None);
            assert_eq!(setting_or("langId", "-1"), "-1");
        });
    }

    #[test]
    fn choices_and_parsed_settings() {
        let connection = Connection::new("http://h")
            .setting("auth", "digest")
            .setting("mode", "form")
            .setting("timeoutMs", "1500")
            .setting("retries", "many");
        connection.run(|| {
            assert_eq!(setting_one_of("mode", &["query", "form"], "query"), Ok("form".into()));
            assert_eq!(setting_one_of("unset", &["query", "form"], "query"), Ok("query".into()));
            assert_eq!(
                setting_one_of("auth", &["bearer", "basic"], "bearer"),
                Err(SubmitError::Misconfigured(
                    "setting `auth` of the connection is `digest`; expected one of `bearer`, `basic`"
                        .into()
                ))
            );
            assert_eq!(parse_setting::<u64>("timeoutMs"), Ok(Some(1500)));
            assert_eq!(parse_setting::<u64>("unset"), Ok(None));
            assert_eq!(request_timeout(), Ok(Some(Duration::from_millis(1500))));
            let error = parse_setting::<u32>("retries").unwrap_err();
            assert!(
                error.message().starts_with("setting `retries` of the connection is `many`, which is not valid"),
                "{error}"
            );
        });
    }

    #[test]
    fn request_timeout_is_optional_and_checked() {
        Connection::new("http://h").run(|| assert_eq!(request_timeout(), Ok(None)));
        for (value, expected) in [
            (
                "0",
                "setting `timeoutMs` of the connection is 0; expected a number of milliseconds above zero",
            ),
            (
                "1.5s",
                "setting `timeoutMs` of the connection is `1.5s`, which is not valid: invalid digit found in string",
            ),
        ] {
            Connection::new("http://h")
                .setting(TIMEOUT_SETTING, value)
                .run(|| {
                    assert_eq!(
                        request_timeout(),
                        Err(SubmitError::Misconfigured(expected.into()))
                    );
                });
        }
    }

    #[test]
    fn send_applies_the_connection_timeout_unless_the_request_has_its_own() {
        use crate::http::{Request, Response};

        let erp = Connection::new("http://h")
            .setting(TIMEOUT_SETTING, "250")
            .respond_with(Response::new(204));
        erp.run(|| {
            Request::get("http://h/a").send().unwrap();
            Request::get("http://h/b")
                .timeout(Duration::from_secs(3))
                .send()
                .unwrap();
        });
        let timeouts: Vec<_> = erp.requests().iter().map(|r| r.timeout).collect();
        assert_eq!(
            timeouts,
            [
                Some(Duration::from_millis(250)),
                Some(Duration::from_secs(3))
            ]
        );

        let bad = Connection::new("http://h")
            .setting(TIMEOUT_SETTING, "soon")
            .respond_with(Response::new(204));
        let error = SubmitError::from(bad.run(|| Request::get("http://h/").send()).unwrap_err());
        assert!(
            matches!(&error, SubmitError::Misconfigured(m) if m.contains("`timeoutMs`")),
            "{error}"
        );
        assert!(bad.requests().is_empty());
    }
}
