//! The recording side of the wasi:http send hook: [`RecordingGate`] wraps
//! the call's [`OutboundGate`] and hands every request it passes on, and
//! the response that comes back, to the call's [`ExchangeRecorder`]. Bodies
//! are tapped while they stream (the recorder copies only their first
//! bytes), so recording never holds a whole body.
//!
//! The gate itself decides nothing here: a request it refuses is recorded
//! with the refusal's error code, as one that failed on the way.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderName;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::plugins::exchange::{ExchangeId, ExchangeRecorder, Side};
use crate::plugins::outbound_impl::OutboundGate;

type ResponseIo = Box<dyn Future<Output = Result<(), Error>> + Send>;
type ResponseFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, ResponseIo), Error>> + Send>;

/// The outbound hook of a call: the gate, with every request recorded.
pub(crate) struct RecordingGate {
    /// Decides and sends.
    pub gate: OutboundGate,
    /// Keeps what went out and came back.
    pub recorder: ExchangeRecorder,
}

impl WasiHttpHooks for RecordingGate {
    fn is_forbidden_header(&mut self, name: &HeaderName) -> bool {
        self.gate.is_forbidden_header(name)
    }

    fn forbidden_header_filter(&mut self) -> wasmtime_wasi_http::ForbiddenHeaderFilter {
        self.gate.forbidden_header_filter()
    }

    fn is_supported_scheme(&mut self, scheme: &http::uri::Scheme) -> bool {
        self.gate.is_supported_scheme(scheme)
    }

    fn set_host_header(&mut self) -> bool {
        self.gate.set_host_header()
    }

    fn default_scheme(&mut self) -> Option<http::uri::Scheme> {
        self.gate.default_scheme()
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        request_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        let Some(id) = self.recorder.open(
            request.method().as_str(),
            &request.uri().to_string(),
            request.headers(),
        ) else {
            return self.gate.send_request(request, options, request_errors);
        };
        let recorder = self.recorder.clone();
        let request = request.map(|body| tap(body, recorder.clone(), id, Side::Request));
        let response = Box::into_pin(self.gate.send_request(request, options, request_errors));
        Box::new(async move {
            match response.await {
                Ok((response, io)) => {
                    recorder.response_head(id, response.status().as_u16(), response.headers());
                    Ok((
                        response.map(|body| tap(body, recorder, id, Side::Response)),
                        io,
                    ))
                }
                Err(error) => {
                    recorder.failed(id, error_code(&error));
                    Err(error)
                }
            }
        })
    }
}

fn tap(body: WasiBody, recorder: ExchangeRecorder, id: ExchangeId, side: Side) -> WasiBody {
    TappedBody {
        body,
        recorder,
        id,
        side,
    }
    .boxed_unsync()
}

/// A body that reports the bytes passing through it to the recorder.
struct TappedBody {
    body: WasiBody,
    recorder: ExchangeRecorder,
    id: ExchangeId,
    side: Side,
}

impl Body for TappedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.recorder.body_bytes(this.id, this.side, data);
                }
            }
            Poll::Ready(Some(Err(error))) => this.recorder.failed(this.id, error_code(error)),
            Poll::Ready(None) if this.side == Side::Response => {
                this.recorder.response_ended(this.id);
            }
            Poll::Ready(None) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The wasi:http `error-code` case an error stands for, as the WIT names
/// it (`HTTP-request-denied`, `connection-refused`, …).
pub(crate) fn error_code(error: &Error) -> String {
    let name = match error {
        // What hyper reports mid-message: the peer broke the protocol or
        // the connection.
        Error::Hyper(_) => return "HTTP-protocol-error".to_owned(),
        Error::Connect(_) => return "connection-terminated".to_owned(),
        Error::Tls(_) => return "TLS-protocol-error".to_owned(),
        other => format!("{other:?}"),
    };
    let variant = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    let mut words = Vec::new();
    let mut word = String::new();
    for c in variant.chars() {
        if c.is_ascii_uppercase() && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.push(c);
    }
    words.push(word);
    words
        .iter()
        .map(|word| match word.as_str() {
            "Http" | "Dns" | "Ip" | "Tls" | "Uri" => word.to_ascii_uppercase(),
            _ => word.to_ascii_lowercase(),
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_named_as_in_the_wit() {
        for (error, code) in [
            (Error::HttpRequestDenied, "HTTP-request-denied"),
            (Error::ConnectionRefused, "connection-refused"),
            (Error::DnsTimeout, "DNS-timeout"),
            (Error::DestinationIpProhibited, "destination-IP-prohibited"),
            (Error::TlsCertificateError, "TLS-certificate-error"),
            (
                Error::HttpResponseBodySize(Some(8)),
                "HTTP-response-body-size",
            ),
            (
                Error::DnsError {
                    rcode: Some("x".into()),
                    info_code: None,
                },
                "DNS-error",
            ),
            (Error::ConnectionLimitReached, "connection-limit-reached"),
            (
                Error::InternalError(Some("TLS set-up".into())),
                "internal-error",
            ),
        ] {
            assert_eq!(error_code(&error), code);
        }
    }
}
