//! What every request goes through around its route: the request metrics
//! and log line, the refusal of overlong URIs, problem documents for the
//! refusals of lower layers, and the draining of a refused request's body.
//!
//! It is one tower service rather than a middleware function per concern:
//! an `axum::middleware::from_fn` layer clones the service below it and
//! boxes a future for every request, and every layer added to a router on
//! its own puts one more boxed route between the request and its handler.
//! Here the work before the route is synchronous, so the service calls the
//! one below it in place, and all of it costs a request one boxed future.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::drain::HeldBody;
use super::error::AppError;
use crate::metrics::Metrics;

/// The longest request URI (path and query) the API reads. Longer ones are
/// `414 uri-too-long`; beyond 64 KiB the HTTP parser itself refuses them
/// (with an empty 414) before the API sees them.
pub const URI_LIMIT: usize = 8 * 1024;

/// How much of a lower layer's own refusal text is kept as the problem's
/// detail.
const REJECTION_DETAIL_BYTES: usize = 512;

/// The layer: [`EdgeService`] around every route and the fallbacks.
#[derive(Clone)]
pub struct Edge {
    metrics: Arc<Metrics>,
}

impl Edge {
    /// Counts requests in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Edge { metrics }
    }
}

impl<S> Layer<S> for Edge {
    type Service = EdgeService<S>;

    fn layer(&self, inner: S) -> EdgeService<S> {
        EdgeService {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct EdgeService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for EdgeService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = method_label(request.method());
        let metrics = Arc::clone(&self.metrics);
        let uri_length = request
            .uri()
            .path_and_query()
            .map_or(0, |p| p.as_str().len());
        let (request, held) = HeldBody::hold(request);
        let answer = (uri_length <= URI_LIMIT).then(|| self.inner.call(request));
        Box::pin(async move {
            let response = match answer {
                Some(answer) => answer.await?,
                None => AppError::UriTooLong { limit: URI_LIMIT }.into_response(),
            };
            let status = response.status();
            let response = if status.is_client_error() || status.is_server_error() {
                held.drain().await;
                as_problem(response).await
            } else {
                response
            };
            let status = response.status().as_u16();
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            metrics.http_request(method, route, status);
            tracing::info!(
                %method,
                %route,
                status,
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "request served"
            );
            Ok(response)
        })
    }
}

/// A refusal in a lower layer's own, non-JSON format (axum's extractors
/// answer `text/plain`, e.g. for a path that is not UTF-8) as the problem
/// of its status; the API's own answers as they are.
async fn as_problem(response: Response) -> Response {
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .unwrap_or("");
    // JSON answers are the API's own (problems, and `/readyz`'s report).
    // So are the console's HTML pages (`crate::console`), whose refusals
    // are pages a browser shows.
    let own = ["application/json", "application/problem+json", "text/html"]
        .iter()
        .any(|own| content_type.starts_with(own));
    if own {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), REJECTION_DETAIL_BYTES * 4)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let mut detail: String = text.trim().chars().take(REJECTION_DETAIL_BYTES).collect();
    if detail.is_empty() {
        detail = status.canonical_reason().unwrap_or("refused").to_owned();
    }
    AppError::Rejected { status, detail }.into_response()
}

/// The `method` label of the request metrics: the standard methods by
/// name, anything else as `other`, so that callers cannot mint series.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}
