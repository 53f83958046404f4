//! The capture-only sandbox of a shadow run: a call whose outbound requests
//! pass every check of the gate (limits, the connection's egress policy by
//! name, the send window) and are then recorded and answered from a list of
//! recorded answers, in order, instead of being sent. Nothing leaves the
//! host: no name is looked up, no connection opened.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::{Error, WasiBody};

use crate::plugins::RecordedAnswer;
use crate::plugins::log::{CallLog, LogLevel, LogSource};

type ResponseIo = Box<dyn Future<Output = Result<(), Error>> + Send>;
type ResponseFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, ResponseIo), Error>> + Send>;

/// The answers a capture-only call gives, in order. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct CaptureAnswers {
    answers: Arc<Mutex<VecDeque<RecordedAnswer>>>,
    given: usize,
}

impl CaptureAnswers {
    /// Answers `answers`, one per request, in order.
    pub fn new(answers: Vec<RecordedAnswer>) -> Self {
        CaptureAnswers {
            answers: Arc::new(Mutex::new(answers.into())),
            given: 0,
        }
    }

    /// Answers `request` with the next recorded answer once its body is read
    /// (so that the recording sees it); refuses it, sending nothing, when
    /// none is left.
    pub fn answer(&mut self, request: http::Request<WasiBody>, log: &CallLog) -> ResponseFuture {
        let next = self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
        self.given += 1;
        let n = self.given;
        let Some(answer) = next else {
            log.with(|book| {
                book.line(
                    LogSource::Runtime,
                    LogLevel::Warn,
                    &format!(
                        "outbound request {n} refused: this is a shadow run, which sends \
                         nothing and answers from the active version's recorded answers, and \
                         the active version made only {} request{}",
                        n - 1,
                        if n == 2 { "" } else { "s" }
                    ),
                );
            });
            return Box::new(async move {
                read_to_end(request.into_body()).await;
                Err(Error::HttpRequestDenied)
            });
        };
        Box::new(async move {
            read_to_end(request.into_body()).await;
            let mut response = http::Response::new(
                Full::new(Bytes::from(answer.body))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            *response.status_mut() = answer.status;
            let headers = response.headers_mut();
            for (name, value) in answer.headers {
                headers.append(name, value);
            }
            let io: ResponseIo = Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

/// Reads a request body to its end (the call's deadline bounds how long).
async fn read_to_end(mut body: WasiBody) {
    while let Some(Ok(_)) = body.frame().await {}
}
