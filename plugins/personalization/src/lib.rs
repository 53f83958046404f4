#![doc = include_str!("../README.md")]

use rescind_guest::http::{Request, encode_path_segment};
use rescind_guest::{
    Ack, Cancellation, Channel, IntegrationProcessor, SubmitError, Tracking, config, log,
};

/// The setting naming the site at Optimizely (`<sitename>` in the tracker
/// path, the `site` header of the offline API).
pub const SITE_NAME_SETTING: &str = "siteName";

/// The setting naming the tracker API version, e.g. `v1_4`.
pub const API_VERSION_SETTING: &str = "apiVersion";

/// The tracker API version used when the connection does not name one: the
/// one Optimizely documents for order cancellation.
pub const DEFAULT_API_VERSION: &str = "v1_4";

/// The setting naming the offline channel (`store`, `phone`, …) for offline
/// orders whose tracking data does not name one.
pub const OFFLINE_CHANNEL_SETTING: &str = "offlineChannel";

/// The secret sent as the offline API's `siteToken` header.
pub const SITE_TOKEN_SECRET: &str = "siteToken";

/// The Optimizely Personalization integration processor.
pub struct Personalization;

impl IntegrationProcessor for Personalization {
    fn submit_cancellation(cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        refuse_partial(cancellation)?;
        let site_name = config::required_setting(SITE_NAME_SETTING)?;
        let Some(tracking) = &cancellation.tracking else {
            return Err(untracked(cancellation, "carries no tracking data"));
        };
        match tracking.channel {
            Channel::Online => cancel_online(cancellation, tracking, &site_name),
            Channel::Offline => cancel_offline(cancellation, tracking, &site_name),
        }
    }
}

rescind_guest::register_integration_processor!(Personalization);

/// Both of Optimizely's APIs cancel a whole order (the online form names
/// only `orderNo`; the offline call deletes the order). A cancellation that
/// leaves lines active must not reach them, or Optimizely would stop counting
/// what the customer keeps. It is rejected (permanent: no retry could make
/// it sendable) before anything is read or sent; bind the job definition
/// with `"appliesTo": "full"` so that such cancellations make no job. The
/// cancellation that ends the order is `full`, whichever lines it names,
/// and is sent.
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
        "Optimizely Personalization cancels whole orders; this partial cancellation was not sent \
         (order {}, lines {}); bind the job definition with \"appliesTo\": \"full\"",
        cancellation.order_number,
        lines.join(", ")
    )))
}

/// `POST …/tracker/api/{apiVersion}/{siteName}/order/cancel.pagex` with the
/// visitor's session, cuid and the order number as a form.
fn cancel_online(
    cancellation: &Cancellation,
    tracking: &Tracking,
    site_name: &str,
) -> Result<Ack, SubmitError> {
    let api_version = config::setting(API_VERSION_SETTING)
        .filter(|version| !version.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_API_VERSION.to_owned());
    let session = present(&tracking.session).ok_or_else(|| {
        untracked(
            cancellation,
            "is an online order without a tracking session",
        )
    })?;
    let cuid = present(&tracking.cuid)
        .ok_or_else(|| untracked(cancellation, "is an online order without a tracking cuid"))?;
    let url = config::url(&online_path(api_version.trim(), site_name));
    log::info!(
        "telling Optimizely that online order {} was cancelled: {url}, attempt {}",
        cancellation.order_number,
        cancellation.attempt
    );
    let answer = Request::post(&url)
        .form(&[
            ("session", session),
            ("cuid", cuid),
            ("orderNo", cancellation.order_number.as_str()),
        ])
        .send()?
        .error_for_status()?;
    Ok(Ack::new().with_message(format!(
        "Optimizely recorded the cancellation of online order {}: HTTP {}",
        cancellation.order_number, answer.status
    )))
}

/// `DELETE …/smart-api/orders/offline/{orderNo}` with the site, its token
/// and the channel the order was created with as headers.
fn cancel_offline(
    cancellation: &Cancellation,
    tracking: &Tracking,
    site_name: &str,
) -> Result<Ack, SubmitError> {
    let site_token = config::required_secret(SITE_TOKEN_SECRET)?;
    let channel = match present(&tracking.offline_channel) {
        Some(channel) => channel.to_owned(),
        None => config::setting(OFFLINE_CHANNEL_SETTING)
            .map(|channel| channel.trim().to_owned())
            .filter(|channel| !channel.is_empty())
            .ok_or_else(|| {
                SubmitError::misconfigured(format!(
                    "offline order {} names no channel and the connection has no setting \
                     `{OFFLINE_CHANNEL_SETTING}`: add the default channel (e.g. \"store\") to the \
                     connection's \"settings\"",
                    cancellation.order_number
                ))
            })?,
    };
    let url = config::url(&offline_path(&cancellation.order_number));
    log::info!(
        "telling Optimizely that offline order {} (channel {channel}) was cancelled: {url}, attempt {}",
        cancellation.order_number,
        cancellation.attempt
    );
    let answer = Request::delete(&url)
        .header("site", site_name)
        .header("siteToken", &site_token)
        .header("channel", &channel)
        .header("Content-Type", "application/json")
        .send()?
        .error_for_status()?;
    Ok(Ack::new().with_message(format!(
        "Optimizely deleted offline order {}: HTTP {}",
        cancellation.order_number, answer.status
    )))
}

/// `/tracker/api/{apiVersion}/{siteName}/order/cancel.pagex`, each value
/// percent-encoded as one path segment.
pub fn online_path(api_version: &str, site_name: &str) -> String {
    format!(
        "/tracker/api/{}/{}/order/cancel.pagex",
        encode_path_segment(api_version),
        encode_path_segment(site_name)
    )
}

/// `/smart-api/orders/offline/{orderNo}`, the order number percent-encoded.
pub fn offline_path(order_number: &str) -> String {
    format!(
        "/smart-api/orders/offline/{}",
        encode_path_segment(order_number)
    )
}

fn present(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// The order lacks what Optimizely needs to find it. That is a fact about
/// the order, not the connection, and retrying will not change it: rejected,
/// so the job fails at once and says why, instead of succeeding silently and
/// leaving the order counted as a sale.
fn untracked(cancellation: &Cancellation, what: &str) -> SubmitError {
    SubmitError::rejected(format!(
        "order {} {what}, so Optimizely cannot be told about its cancellation \
         (the order's tracking data needs its channel, and for an online order a session and cuid)",
        cancellation.order_number
    ))
}

#[cfg(test)]
mod tests;
