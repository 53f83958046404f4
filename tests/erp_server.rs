//! A real HTTP server on 127.0.0.1 standing in for an ERP: it records every
//! request and answers from a script.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

/// The largest request body the server reads.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// One answer of the script.
#[derive(Debug, Clone)]
pub struct Scripted {
    /// HTTP status.
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: String,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Scripted {
    /// An empty answer with this status.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_owned(),
            ..Self::status(status)
        }
    }

    /// The same answer, after waiting this long.
    pub fn after(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// All headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
}

impl RecordedRequest {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Answers what the script does not: the API a fake ERP imitates.
type Api = Arc<dyn Fn(&RecordedRequest) -> Scripted + Send + Sync>;

#[derive(Default)]
struct Recorder {
    requests: Vec<RecordedRequest>,
    script: VecDeque<Scripted>,
}

/// The running server; stops when dropped.
pub struct ErpServer {
    addr: SocketAddr,
    recorder: Arc<Mutex<Recorder>>,
    task: tokio::task::JoinHandle<()>,
}

impl ErpServer {
    /// Starts on 127.0.0.1 with an ephemeral port, on the current tokio
    /// runtime. Unscripted requests get `200 {}`.
    pub async fn start() -> Self {
        Self::start_with(|_| Scripted::json(200, "{}")).await
    }

    /// Starts like [`start`](Self::start), but `api` answers the requests
    /// the script does not: a fake of a real API that checks each request
    /// and answers the way that API would. The script still goes first, to
    /// inject failures.
    pub async fn start_with(
        api: impl Fn(&RecordedRequest) -> Scripted + Send + Sync + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        Self::start_on(listener, api)
    }

    /// Starts like [`start_with`](Self::start_with) on a listener of the
    /// caller's, e.g. one on the port an ERP was down on.
    pub fn start_on(
        listener: tokio::net::TcpListener,
        api: impl Fn(&RecordedRequest) -> Scripted + Send + Sync + 'static,
    ) -> Self {
        let recorder = Arc::new(Mutex::new(Recorder::default()));
        let api: Api = Arc::new(api);
        let app = Router::new()
            .fallback(answer)
            .with_state((Arc::clone(&recorder), api));
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self {
            addr,
            recorder,
            task,
        }
    }

    /// Queues answers, used in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        lock(&self.recorder).script.extend(answers);
    }

    /// `127.0.0.1:<port>`: what goes into a connection's allowedHosts.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:<port>` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.recorder).requests.clone()
    }
}

impl Drop for ErpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(recorder: &Mutex<Recorder>) -> MutexGuard<'_, Recorder> {
    recorder.lock().unwrap_or_else(|e| e.into_inner())
}

async fn answer(
    State((recorder, api)): State<(Arc<Mutex<Recorder>>, Api)>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let received = RecordedRequest {
        method: parts.method,
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers: parts.headers,
        body,
    };
    let scripted = {
        let mut recorder = lock(&recorder);
        recorder.requests.push(received.clone());
        recorder.script.pop_front()
    };
    // Outside the lock: the API may take its own.
    let scripted = scripted.unwrap_or_else(|| api(&received));
    tokio::time::sleep(scripted.delay).await;
    let mut response =
        Response::builder().status(StatusCode::from_u16(scripted.status).expect("valid status"));
    for (name, value) in &scripted.headers {
        response = response.header(name, value);
    }
    response
        .body(Body::from(scripted.body))
        .expect("valid response")
}
