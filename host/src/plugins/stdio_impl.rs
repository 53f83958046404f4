//! The guest's stdout and stderr: captured into the call's log, never the
//! host's own streams.
//!
//! Writes always succeed: output beyond the log's bounds is counted and
//! dropped rather than refused, because a refused write would trap the guest
//! (wasmtime's `MemoryOutputPipe` does that) and turn chattiness into a
//! failed job.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::plugins::log::{CallLog, LogSource};

/// How much the guest may write per `check-write` permit.
const WRITE_PERMIT: usize = 64 * 1024;

/// One of the guest's output streams, writing into the call's log.
#[derive(Debug, Clone)]
pub(crate) struct CapturedOutput {
    log: CallLog,
    source: LogSource,
}

impl CapturedOutput {
    pub fn stdout(log: CallLog) -> Self {
        Self {
            log,
            source: LogSource::Stdout,
        }
    }

    pub fn stderr(log: CallLog) -> Self {
        Self {
            log,
            source: LogSource::Stderr,
        }
    }

    fn take(&self, bytes: &[u8]) {
        self.log.with(|book| book.output(self.source, bytes));
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.take(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.take(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
