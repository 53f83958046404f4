#![doc = include_str!("../README.md")]

use rescind_guest::http::{Request, Response};
use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError, config, log};

/// Where the command lives, below the connection's base URL.
pub const COMMAND_PATH: &str = "/webapp/wcs/stores/servlet/OrderCancel";

/// The setting holding the command's `URL` parameter: where WebSphere
/// redirects once the order is cancelled. Required by the command.
pub const SUCCESS_URL_SETTING: &str = "successUrl";

/// The setting sent as `storeId`: the store the orders belong to.
/// Required: WebSphere runs a URL command in the context of a store and
/// refuses one without it.
pub const STORE_ID_SETTING: &str = "storeId";

/// The optional setting sent as `langId`.
pub const LANG_ID_SETTING: &str = "langId";

/// The setting choosing how the parameters travel: `query` (a `GET`, the
/// default) or `form` (a form `POST`).
pub const PARAMETER_STYLE_SETTING: &str = "parameterStyle";

/// The setting naming the parameter that carries the user a staff member
/// cancelled for: `forUser` (a logon ID, the default) or `forUserId` (an
/// internal user ID).
pub const FOR_USER_PARAMETER_SETTING: &str = "forUserParameter";

/// The setting choosing authentication: `none` (the default) or `basic`.
pub const AUTH_SETTING: &str = "auth";

/// The secret holding the basic-auth user (`auth` = `basic`).
pub const USERNAME_SECRET: &str = "username";

/// The secret holding the basic-auth password (`auth` = `basic`).
pub const PASSWORD_SECRET: &str = "password";

/// The WebSphere Commerce integration processor.
pub struct WebSphere;

impl IntegrationProcessor for WebSphere {
    fn submit_cancellation(cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        refuse_partial(cancellation)?;
        let style = config::setting_one_of(PARAMETER_STYLE_SETTING, &["query", "form"], "query")?;
        let for_user_parameter = config::setting_one_of(
            FOR_USER_PARAMETER_SETTING,
            &["forUser", "forUserId"],
            "forUser",
        )?;
        let success_url = config::required_setting(SUCCESS_URL_SETTING)?;
        let store_id = config::required_setting(STORE_ID_SETTING)?;
        let credentials =
            match config::setting_one_of(AUTH_SETTING, &["none", "basic"], "none")?.as_str() {
                "basic" => Some((
                    config::required_secret(USERNAME_SECRET)?,
                    config::required_secret(PASSWORD_SECRET)?,
                )),
                _ => None,
            };
        let parameters = parameters(
            cancellation,
            &success_url,
            &for_user_parameter,
            &store_id,
            config::setting(LANG_ID_SETTING),
        );
        let order_id = order_id(cancellation);

        let url = config::url(COMMAND_PATH);
        log::info!(
            "cancelling order {order_id} with OrderCancel ({}) at {url}, attempt {}",
            if style == "form" {
                "form POST"
            } else {
                "query GET"
            },
            cancellation.attempt
        );
        let request = if style == "form" {
            Request::post(&url).form(&parameters)
        } else {
            Request::get(&url).query(&parameters)
        };
        let request = match &credentials {
            Some((username, password)) => request.basic_auth(username, password),
            None => request,
        };
        let answer = request.send()?;
        let ack = outcome(&answer, order_id, &success_url)?;
        log::info!(
            "WebSphere cancelled order {order_id}: HTTP {}",
            answer.status
        );
        Ok(ack)
    }
}

rescind_guest::register_integration_processor!(WebSphere);

/// `OrderCancel` has no way to name order items: it cancels the whole order.
/// A cancellation that leaves lines active must not reach it, or WebSphere
/// would cancel what the customer keeps. It is rejected (permanent: no
/// retry could make it sendable) before anything is read or sent; bind the
/// job definition with `"appliesTo": "full"` so that such cancellations make
/// no job. The cancellation that ends the order is `full`, whichever lines
/// it names, and is sent.
pub fn refuse_partial(cancellation: &Cancellation) -> Result<(), SubmitError> {
    if cancellation.full {
        return Ok(());
    }
    let lines: Vec<String> = cancellation
        .cancelled_line_numbers()
        .iter()
        .map(u32::to_string)
        .collect();
    log::warn!(
        "order {} keeps active lines after this cancellation (lines {}): not sent",
        cancellation.order_number,
        lines.join(", ")
    );
    Err(SubmitError::rejected(format!(
        "WebSphere's OrderCancel cancels whole orders; this partial cancellation was not sent \
         (order {}, lines {}); bind the job definition with \"appliesTo\": \"full\"",
        order_id(cancellation),
        lines.join(", ")
    )))
}

/// The order as WebSphere knows it: the ERP's order number when the order
/// has one, else rescind's.
pub fn order_id(cancellation: &Cancellation) -> &str {
    cancellation
        .erp_order_number
        .as_deref()
        .map(str::trim)
        .filter(|number| !number.is_empty())
        .unwrap_or(&cancellation.order_number)
}

/// The command's parameters, in the order the documentation lists them.
/// Optional ones are left out when they would carry their default, so the
/// command sees what a hand-written URL would send.
pub fn parameters(
    cancellation: &Cancellation,
    success_url: &str,
    for_user_parameter: &str,
    store_id: &str,
    lang_id: Option<String>,
) -> Vec<(String, String)> {
    let mut parameters = vec![
        ("orderId".to_owned(), order_id(cancellation).to_owned()),
        ("storeId".to_owned(), store_id.trim().to_owned()),
    ];
    let mut optional = |name: &str, value: Option<String>| {
        if let Some(value) = value.filter(|value| !value.trim().is_empty()) {
            parameters.push((name.to_owned(), value.trim().to_owned()));
        }
    };
    optional("langId", lang_id);
    optional(for_user_parameter, cancellation.for_user.clone());
    if cancellation.forced_cancel {
        parameters.push(("forcedCancel".to_owned(), "true".to_owned()));
    }
    if cancellation.forced_cancel_with_refund {
        parameters.push(("forcedCancelWithRefund".to_owned(), "true".to_owned()));
    }
    parameters.push(("URL".to_owned(), success_url.to_owned()));
    parameters
}

/// What WebSphere's answer means.
///
/// The command redirects to `URL` when it completes; a redirect elsewhere
/// (a logon page, another view) means it did not, and goes to the shared
/// mapping like any other redirect. A 2xx is a success unless its body is
/// WebSphere's error document: the command failed and the store's error view
/// rendered it. Every other status follows the shared mapping, reading the
/// error document's `errorMessage`.
fn outcome(answer: &Response, order_id: &str, success_url: &str) -> Result<Ack, SubmitError> {
    match answer.status {
        300..=399 => match answer.header("location") {
            Some(location) if same_target(location, success_url) => Ok(Ack::new().with_message(
                format!("WebSphere cancelled order {order_id} and redirected to {location}"),
            )),
            _ => Err(SubmitError::from_response(answer)),
        },
        200..=299 => match command_error(answer) {
            Some(error) => Err(SubmitError::rejected(format!(
                "WebSphere did not cancel order {order_id}: {error}"
            ))),
            None => Ok(Ack::new().with_message(format!(
                "WebSphere cancelled order {order_id}: HTTP {}",
                answer.status
            ))),
        },
        _ => Err(SubmitError::from_response(&unwrapped(answer))),
    }
}

/// Whether a redirect's `Location` points at the success URL: the same path,
/// whatever the host part (WebSphere makes a relative `URL` absolute) and
/// whatever it appended to the query.
fn same_target(location: &str, success_url: &str) -> bool {
    fn path(url: &str) -> &str {
        let without_origin = match url.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |start| &rest[start..]),
            None => url,
        };
        let path = without_origin.split(['?', '#']).next().unwrap_or_default();
        match path.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        }
    }
    path(location) == path(success_url)
}

/// The answer with WebSphere's `/* … */` guard around a JSON body removed,
/// so that the shared mapping can read the document's message.
fn unwrapped(answer: &Response) -> Response {
    Response {
        body: strip_comment_guard(&answer.text()).as_bytes().to_vec(),
        ..answer.clone()
    }
}

/// WebSphere wraps JSON answers in `/* … */` so that a browser never runs
/// them as a script.
fn strip_comment_guard(body: &str) -> &str {
    let trimmed = body.trim();
    trimmed
        .strip_prefix("/*")
        .and_then(|inner| inner.strip_suffix("*/"))
        .map_or(trimmed, str::trim)
}

/// The message of WebSphere's error document in a 2xx answer, with its
/// message key: `{"errorMessage": "…", "errorMessageKey": "_ERR_…"}`, or the
/// REST form `{"errors": [{"errorMessage": "…", "errorKey": "_ERR_…"}]}`.
fn command_error(answer: &Response) -> Option<String> {
    let document: serde_json::Value =
        serde_json::from_str(strip_comment_guard(&answer.text())).ok()?;
    let describe = |error: &serde_json::Value| -> Option<String> {
        let text = |key: &str| {
            error
                .get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::trim)
                .filter(|text| !text.is_empty())
        };
        let key = text("errorMessageKey").or_else(|| text("errorKey"));
        match (text("errorMessage"), key) {
            (Some(message), Some(key)) => Some(format!("{message} ({key})")),
            (Some(message), None) => Some(message.to_owned()),
            (None, Some(key)) => Some(key.to_owned()),
            (None, None) => None,
        }
    };
    describe(&document).or_else(|| {
        let errors: Vec<String> = document
            .get("errors")?
            .as_array()?
            .iter()
            .filter_map(describe)
            .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    })
}

#[cfg(test)]
mod tests;
