//! The client over `wasi:http/outgoing-handler`, blocking on pollables: a
//! plugin makes one or two requests per call, so an async runtime would only
//! add size.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, FutureIncomingResponse, HeaderError, IncomingBody, IncomingResponse, Method as Verb,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme as WasiScheme,
};
use wasip2::http::types::{Fields, http_error_code};
use wasip2::io::streams::StreamError;

use super::url::{self, Scheme};
use super::{Error, MAX_RESPONSE_BODY, Method, Request, Response};

/// wasi:http streams take at most this much per blocking write.
const WRITE_CHUNK: usize = 4096;
const READ_CHUNK: u64 = 64 * 1024;

pub(super) fn send(request: &Request) -> Result<Response, Error> {
    let target = url::parse(request.url())?;
    let host = target.authority.clone();

    let fields = Fields::new();
    for (name, value) in request.wire_headers() {
        fields
            .append(&name, value.as_bytes())
            .map_err(|error| header_error(&name, error))?;
    }
    let outgoing = OutgoingRequest::new(fields);
    let invalid = |what: &str| Error::InvalidRequest(format!("{what} of `{}`", request.url()));
    outgoing
        .set_method(&verb(request.method()))
        .map_err(|()| invalid("the host refused the method"))?;
    outgoing
        .set_scheme(Some(&match target.scheme {
            Scheme::Http => WasiScheme::Http,
            Scheme::Https => WasiScheme::Https,
        }))
        .map_err(|()| invalid("the host refused the scheme"))?;
    outgoing
        .set_authority(Some(&target.authority))
        .map_err(|()| invalid("the host refused the host part"))?;
    outgoing
        .set_path_with_query(Some(&target.path_and_query))
        .map_err(|()| invalid("the host refused the path"))?;
    let body = outgoing
        .body()
        .map_err(|()| invalid("the host gave no body stream"))?;
    let options = request.timeout_value().map(|timeout| {
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let options = RequestOptions::new();
        // A host that does not support one of the timeouts answers Err; the
        // job's deadline still bounds the call, so that is fine to ignore.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        options
    });

    let future =
        outgoing_handler::handle(outgoing, options).map_err(|code| from_code(code, &host))?;
    // A failed write is not reported by itself: when the host refuses the
    // request (a host outside the allow-list) or the connection fails, the
    // response future carries the real reason, and a server may answer (413,
    // 401) before reading the whole body.
    let _ = write_body(body, request.body_bytes());
    let response = wait(&future).map_err(|code| from_code(code, &host))?;
    read_response(response, &host)
}

fn verb(method: Method) -> Verb {
    match method {
        Method::Get => Verb::Get,
        Method::Head => Verb::Head,
        Method::Post => Verb::Post,
        Method::Put => Verb::Put,
        Method::Patch => Verb::Patch,
        Method::Delete => Verb::Delete,
        Method::Options => Verb::Options,
    }
}

fn header_error(name: &str, error: HeaderError) -> Error {
    let why = match error {
        HeaderError::InvalidSyntax => "has an invalid name or value",
        HeaderError::Forbidden => "may not be set by a plugin",
        HeaderError::Immutable => "cannot be changed",
    };
    Error::InvalidRequest(format!("header `{name}` {why}"))
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), ErrorCode> {
    {
        let stream = body
            .write()
            .map_err(|()| ErrorCode::InternalError(Some("no body stream".into())))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(stream_code)?;
        }
        // The stream must be gone before the body is finished.
    }
    OutgoingBody::finish(body, None)
}

fn wait(future: &FutureIncomingResponse) -> Result<IncomingResponse, ErrorCode> {
    loop {
        match future.get() {
            Some(Ok(result)) => return result,
            Some(Err(())) => {
                return Err(ErrorCode::InternalError(Some(
                    "the response was already taken".into(),
                )));
            }
            None => future.subscribe().block(),
        }
    }
}

fn read_response(response: IncomingResponse, host: &str) -> Result<Response, Error> {
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect();
    let incoming = response.consume().map_err(|()| Error::Protocol {
        host: host.to_owned(),
        detail: "the answer's body was already taken".into(),
    })?;
    let body = read_body(&incoming, host);
    drop(IncomingBody::finish(incoming));
    Ok(Response {
        status,
        headers,
        body: body?,
    })
}

fn read_body(incoming: &IncomingBody, host: &str) -> Result<Vec<u8>, Error> {
    let stream = incoming.stream().map_err(|()| Error::Protocol {
        host: host.to_owned(),
        detail: "the answer's body stream was already taken".into(),
    })?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                if body.len() + chunk.len() > MAX_RESPONSE_BODY {
                    return Err(Error::Limit {
                        host: host.to_owned(),
                        detail: format!(
                            "the answer's body exceeds the client's limit of {MAX_RESPONSE_BODY} bytes"
                        ),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok(body),
            Err(error) => return Err(from_code(stream_code(error), host)),
        }
    }
}

fn stream_code(error: StreamError) -> ErrorCode {
    match error {
        StreamError::LastOperationFailed(io) => http_error_code(&io).unwrap_or_else(|| {
            // The host (wasmtime-wasi-http 48) hands a failed body stream's
            // reason over as text only; its body limit is one we act on.
            let text = io.to_debug_string();
            if text.contains("response body size exceeds limit") {
                ErrorCode::HttpResponseBodySize(None)
            } else {
                ErrorCode::InternalError(Some(text))
            }
        }),
        StreamError::Closed => ErrorCode::ConnectionTerminated,
    }
}

/// Sorts the wasi:http error codes into the kinds a plugin acts on.
fn from_code(code: ErrorCode, host: &str) -> Error {
    use ErrorCode as C;
    let host = host.to_owned();
    let detail = describe(&code);
    match code {
        C::HttpRequestDenied => Error::Denied { host },
        C::DestinationIpProhibited => Error::AddressRefused { host },
        C::TlsCertificateError => Error::Certificate { host },
        C::ConnectionLimitReached
        | C::HttpRequestHeaderSectionSize(_)
        | C::HttpResponseHeaderSectionSize(_)
        | C::HttpResponseBodySize(_) => Error::Limit { host, detail },
        C::DnsTimeout
        | C::ConnectionTimeout
        | C::ConnectionReadTimeout
        | C::ConnectionWriteTimeout
        | C::HttpResponseTimeout => Error::Timeout { host, detail },
        C::DnsError(_)
        | C::DestinationNotFound
        | C::DestinationUnavailable
        | C::DestinationIpUnroutable
        | C::ConnectionRefused
        | C::ConnectionTerminated
        | C::TlsProtocolError
        | C::TlsAlertReceived(_) => Error::Connection { host, detail },
        C::HttpRequestLengthRequired
        | C::HttpRequestBodySize(_)
        | C::HttpRequestMethodInvalid
        | C::HttpRequestUriInvalid
        | C::HttpRequestUriTooLong
        | C::HttpRequestHeaderSize(_)
        | C::HttpRequestTrailerSectionSize(_)
        | C::HttpRequestTrailerSize(_)
        | C::ConfigurationError => Error::InvalidRequest(format!("{detail} (to `{host}`)")),
        _ => Error::Protocol { host, detail },
    }
}

fn bytes(size: Option<u32>) -> String {
    size.map(|s| format!(" ({s} bytes)")).unwrap_or_default()
}

fn describe(code: &ErrorCode) -> String {
    use ErrorCode as C;
    match code {
        C::DnsTimeout => "name resolution timed out".into(),
        C::DnsError(payload) => format!(
            "name resolution failed{}",
            payload
                .rcode
                .as_deref()
                .map(|rcode| format!(" ({rcode})"))
                .unwrap_or_default()
        ),
        C::DestinationNotFound => "host not found".into(),
        C::DestinationUnavailable => "host unavailable".into(),
        C::DestinationIpUnroutable => "address unroutable".into(),
        C::ConnectionRefused => "connection refused".into(),
        C::ConnectionTerminated => "connection closed before the answer was complete".into(),
        C::ConnectionTimeout => "connecting timed out".into(),
        C::ConnectionReadTimeout => "reading the answer timed out".into(),
        C::ConnectionWriteTimeout => "sending the request timed out".into(),
        C::ConnectionLimitReached => {
            "the host's limit of outgoing requests per call was reached".into()
        }
        C::HttpRequestHeaderSectionSize(size) => format!(
            "the request's headers are larger than the host allows{}",
            bytes(*size)
        ),
        C::HttpResponseHeaderSectionSize(limit) => format!(
            "the answer's headers exceed the host's limit{}",
            limit.map(|l| format!(" of {l} bytes")).unwrap_or_default()
        ),
        C::HttpResponseBodySize(limit) => format!(
            "the answer's body exceeds the host's limit{} of response body bytes per call",
            limit.map(|l| format!(" of {l}")).unwrap_or_default()
        ),
        C::TlsProtocolError => "TLS handshake failed".into(),
        C::TlsCertificateError => "the server's TLS certificate was not accepted".into(),
        C::TlsAlertReceived(_) => "the server sent a TLS alert".into(),
        C::HttpResponseTimeout => "the answer did not start in time".into(),
        C::HttpResponseIncomplete => "the answer was cut short".into(),
        C::InternalError(Some(message)) => message.clone(),
        other => format!("{other:?}"),
    }
}
