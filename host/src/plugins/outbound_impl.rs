//! The gate on outbound HTTP: every wasi:http request passes
//! [`WasiHttpHooks::send_request`] here, is checked against the connection's
//! allow-list (`outbound.rs`) and, if allowed, is sent with timeouts that
//! never outlast the call's deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::plugins::log::{CallLog, LogLevel, LogSource};
use crate::plugins::outbound::AllowedHosts;

/// How much of a denied request's body is read (and thrown away) before the
/// denial is returned.
const DENIED_BODY_DRAIN_BYTES: usize = 1024 * 1024;

/// The runtime's default outbound timeouts (`RuntimeConfig`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutboundTimeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

/// The outbound-request hook of one call.
pub(crate) struct OutboundGate {
    pub allowed: Arc<AllowedHosts>,
    pub log: CallLog,
    pub deadline: Instant,
    pub timeouts: OutboundTimeouts,
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundGate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _request_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or_default();
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        if !self.allowed.permits(scheme, authority) {
            let target = format!("{scheme}://{authority}");
            self.log.with(|book| {
                book.line(
                    LogSource::Runtime,
                    LogLevel::Warn,
                    &format!(
                        "outbound request to {target} denied: not in the connection's allowedHosts"
                    ),
                )
            });
            return Box::new(async move {
                // The guest writes the body after handing over the request;
                // reading it first lets the guest see the denial rather than
                // a reset connection.
                drain(request.into_body()).await;
                Err(Error::HttpRequestDenied)
            });
        }

        let options = bounded_options(
            options.unwrap_or_default(),
            self.timeouts,
            self.deadline.saturating_duration_since(Instant::now()),
        );
        Box::new(async move {
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

/// The guest's timeouts (if it set any) or the runtime's, each cut to what
/// is left of the call's deadline.
fn bounded_options(
    guest: RequestOptions,
    defaults: OutboundTimeouts,
    remaining: Duration,
) -> RequestOptions {
    let bound = |asked: Option<Duration>, default: Duration| {
        Some(asked.unwrap_or(default).min(default).min(remaining))
    };
    RequestOptions {
        connect_timeout: bound(guest.connect_timeout, defaults.connect),
        first_byte_timeout: bound(guest.first_byte_timeout, defaults.first_byte),
        between_bytes_timeout: bound(guest.between_bytes_timeout, defaults.between_bytes),
    }
}

/// Reads and discards up to [`DENIED_BODY_DRAIN_BYTES`] of a body.
async fn drain(mut body: WasiBody) {
    let mut read = 0;
    while read < DENIED_BODY_DRAIN_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
            Some(Err(_)) | None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: OutboundTimeouts = OutboundTimeouts {
        connect: Duration::from_secs(5),
        first_byte: Duration::from_secs(10),
        between_bytes: Duration::from_secs(10),
    };

    #[test]
    fn timeouts_never_outlast_the_deadline_or_the_defaults() {
        let secs = Duration::from_secs;
        let guest = RequestOptions {
            connect_timeout: Some(secs(1)),
            first_byte_timeout: Some(secs(600)),
            between_bytes_timeout: None,
        };
        assert_eq!(
            bounded_options(guest, DEFAULTS, secs(60)),
            RequestOptions {
                connect_timeout: Some(secs(1)),
                first_byte_timeout: Some(secs(10)),
                between_bytes_timeout: Some(secs(10)),
            }
        );
        assert_eq!(
            bounded_options(RequestOptions::default(), DEFAULTS, secs(2)),
            RequestOptions {
                connect_timeout: Some(secs(2)),
                first_byte_timeout: Some(secs(2)),
                between_bytes_timeout: Some(secs(2)),
            }
        );
    }
}
