//! Refusals that go out before the request body was read (a role that may
//! not use the route, an upload too large) must still reach a client that
//! is sending that body. Closing the connection with unread bytes in it
//! makes the kernel reset it, and the client then loses the answer in the
//! middle of its upload ("broken pipe"). So the rest of a refused request's
//! body is read and thrown away first, within bounds.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

/// At most this much of a refused request's body is read and thrown away;
/// a longer one is cut off (reset) after it.
pub const DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// At most this long is spent reading it.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The request body, shared between the handler (which reads it through
/// this) and the middleware (which reads what is left after a refusal).
struct Shared(Arc<Mutex<Body>>);

fn lock(body: &Mutex<Body>) -> MutexGuard<'_, Body> {
    body.lock().unwrap_or_else(|e| e.into_inner())
}

impl http_body::Body for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut *lock(&self.0)).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        lock(&self.0).is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        lock(&self.0).size_hint()
    }
}

/// A request's body as its handler reads it, with the hold on what the
/// handler leaves of it, to drain after a refusal (see the module docs).
pub struct HeldBody(Arc<Mutex<Body>>);

impl HeldBody {
    /// The request with its body read through the hold, and the hold.
    pub fn hold(request: Request) -> (Request, HeldBody) {
        let (parts, body) = request.into_parts();
        let held = Arc::new(Mutex::new(body));
        let request = Request::from_parts(parts, Body::new(Shared(Arc::clone(&held))));
        (request, HeldBody(held))
    }

    /// Reads and drops what is left of the body, within [`DRAIN_BYTES`]
    /// and [`DRAIN_TIME`].
    pub async fn drain(self) {
        let rest = std::mem::replace(&mut *lock(&self.0), Body::empty());
        let _ = tokio::time::timeout(DRAIN_TIME, drain(rest)).await;
    }
}

async fn drain(mut body: Body) {
    let mut read = 0;
    while read <= DRAIN_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
            Some(Err(_)) | None => return,
        }
    }
}
