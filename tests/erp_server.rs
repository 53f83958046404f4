//! A real HTTP server on 127.0.0.1 standing in for an ERP: it records every
//! request and answers from a script.
//!
//! [`ErpServer::signed`] is the receiver of the `webhook` plugin: it checks
//! each request's `X-Rescind-Signature` against the shared signing key, as
//! the plugin's README tells a receiver to, and answers 401 when it does not
//! match, before the script or the API: a job configured with a wrong or
//! stale key fails instead of passing.
//!
//! A request body over [`MAX_BODY`] is answered 413 and is an error of the
//! test: [`ErpServer::requests`] panics with it, and so does dropping the
//! server, so that a body the server could not read is never taken for an
//! empty one. A body whose sender went away before its end (a host killed
//! mid-request) is what a real ERP never sees either: it is not recorded,
//! only counted ([`ErpServer::cut_off`]).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use hyper_util::rt::TokioIo;

/// The largest request body the server reads.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// The header carrying the webhook's signature.
pub const SIGNATURE_HEADER: &str = "x-rescind-signature";

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
    /// Why request bodies could not be read (over the limit).
    unreadable: Vec<String>,
    /// Requests whose body ended before its end: the sender went away.
    cut_off: usize,
    /// Requests being handled now, by `Idempotency-Key`.
    in_flight: HashMap<String, usize>,
    /// Keys of requests that arrived while another request with the same
    /// key was still being handled, once per such arrival.
    overlapping: Vec<String>,
}

/// A request with an `Idempotency-Key` being handled: counted in
/// [`Recorder::in_flight`] from the moment the whole request is in (the
/// last byte of its body) until its answer is sent or its client goes
/// away. Not from its first byte: a sender frozen halfway through a body
/// (a host stopped by `SIGSTOP` past its lease, whose job another host
/// then delivers) has not delivered anything yet, and its late request
/// arrives whole after the other's answer.
struct InFlight {
    recorder: Arc<Mutex<Recorder>>,
    key: String,
}

impl InFlight {
    fn arrive(recorder: &Arc<Mutex<Recorder>>, key: &str) -> Self {
        let mut locked = lock(recorder);
        let n = locked.in_flight.entry(key.to_owned()).or_default();
        *n += 1;
        if *n > 1 {
            locked.overlapping.push(key.to_owned());
        }
        Self {
            recorder: Arc::clone(recorder),
            key: key.to_owned(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut locked = lock(&self.recorder);
        if let Some(n) = locked.in_flight.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                locked.in_flight.remove(&self.key);
            }
        }
    }
}

/// What every request goes through before the script: the signature check
/// of a signed server.
#[derive(Clone)]
struct Receiver {
    recorder: Arc<Mutex<Recorder>>,
    api: Api,
    signing_key: Option<Arc<str>>,
}

#[derive(Default)]
struct Connections {
    accepted: AtomicUsize,
    closed: AtomicUsize,
}

/// The running server; stops when dropped, closing its connections.
pub struct ErpServer {
    addr: SocketAddr,
    recorder: Arc<Mutex<Recorder>>,
    connections: Arc<Connections>,
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
        Self::serve(None, Arc::new(api), Self::bind().await)
    }

    /// Starts like [`start_with`](Self::start_with) on a listener of the
    /// caller's, e.g. one on the port an ERP was down on.
    pub fn start_on(
        listener: tokio::net::TcpListener,
        api: impl Fn(&RecordedRequest) -> Scripted + Send + Sync + 'static,
    ) -> Self {
        Self::serve(None, Arc::new(api), listener)
    }

    /// A receiver of the `webhook` plugin that shares `signing_key` with
    /// it: a request whose `X-Rescind-Signature` is missing or is not the
    /// HMAC-SHA256 of its body under that key gets `401` (recorded, the
    /// script untouched); the others get the script's answers, then
    /// `200 {}`.
    pub async fn signed(signing_key: &str) -> Self {
        Self::signed_with(signing_key, |_| Scripted::json(200, "{}")).await
    }

    /// [`signed`](Self::signed), with `api` answering the well-signed
    /// requests the script does not.
    pub async fn signed_with(
        signing_key: &str,
        api: impl Fn(&RecordedRequest) -> Scripted + Send + Sync + 'static,
    ) -> Self {
        Self::serve(
            Some(Arc::from(signing_key)),
            Arc::new(api),
            Self::bind().await,
        )
    }

    async fn bind() -> tokio::net::TcpListener {
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0")
    }

    fn serve(signing_key: Option<Arc<str>>, api: Api, listener: tokio::net::TcpListener) -> Self {
        let recorder = Arc::new(Mutex::new(Recorder::default()));
        let app = Router::new().fallback(answer).with_state(Receiver {
            recorder: Arc::clone(&recorder),
            api,
            signing_key,
        });
        let addr = listener.local_addr().expect("local address");
        let connections = Arc::new(Connections::default());
        let counted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            // Each connection is served by a task of this set, so that
            // dropping the server closes them all, as an ERP that goes down
            // closes its kept-alive connections.
            let mut served = tokio::task::JoinSet::new();
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        // Out of descriptors, say: wait rather than spin.
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    Some(_) = served.join_next(), if !served.is_empty() => continue,
                };
                counted.accepted.fetch_add(1, Ordering::SeqCst);
                let service = hyper::service::service_fn({
                    let app = app.clone();
                    move |request: Request<hyper::body::Incoming>| {
                        tower::ServiceExt::oneshot(app.clone(), request.map(Body::new))
                    }
                });
                let counted = Arc::clone(&counted);
                served.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    counted.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            recorder,
            connections,
            task,
        }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.accepted.load(Ordering::SeqCst)
    }

    /// TCP connections open now: accepted, and not yet closed by either
    /// side.
    pub fn open_connections(&self) -> usize {
        // Closed first: a connection is counted closed after accepted.
        let closed = self.connections.closed.load(Ordering::SeqCst);
        self.connections.accepted.load(Ordering::SeqCst) - closed
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
    ///
    /// # Panics
    /// When a request body could not be read (over [`MAX_BODY`]): the test
    /// sent something the ERP never saw.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        let recorder = lock(&self.recorder);
        assert!(
            recorder.unreadable.is_empty(),
            "the loopback ERP could not read request bodies: {:?}",
            recorder.unreadable
        );
        recorder.requests.clone()
    }

    /// The `Idempotency-Key`s of requests that arrived whole while another
    /// request with the same key was still being handled (whole, not yet
    /// answered, its client still there): deliveries of one job that
    /// overlapped.
    pub fn overlapping(&self) -> Vec<String> {
        lock(&self.recorder).overlapping.clone()
    }

    /// How many requests were cut off by their sender before the body's
    /// end (not recorded: the ERP never had them whole).
    pub fn cut_off(&self) -> usize {
        lock(&self.recorder).cut_off
    }
}

impl Drop for ErpServer {
    fn drop(&mut self) {
        self.task.abort();
        let unreadable = std::mem::take(&mut lock(&self.recorder).unreadable);
        if !unreadable.is_empty() && !std::thread::panicking() {
            panic!("the loopback ERP could not read request bodies: {unreadable:?}");
        }
    }
}

/// Whether `request` carries `sha256=<hex HMAC-SHA256 of its body>` under
/// `key` in `X-Rescind-Signature` (compared in constant time); the error
/// says what is wrong.
pub fn verify_signature(key: &[u8], request: &RecordedRequest) -> Result<(), String> {
    use hmac::{Hmac, Mac};
    let header = request
        .header(SIGNATURE_HEADER)
        .ok_or("no X-Rescind-Signature header")?;
    let hex_signature = header
        .strip_prefix("sha256=")
        .ok_or("X-Rescind-Signature does not start with sha256=")?;
    let signature =
        hex::decode(hex_signature).map_err(|e| format!("X-Rescind-Signature is not hex: {e}"))?;
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(key).map_err(|e| format!("unusable key: {e}"))?;
    mac.update(&request.body);
    mac.verify_slice(&signature)
        .map_err(|_| "X-Rescind-Signature does not match the body under the shared key".to_owned())
}

fn lock(recorder: &Mutex<Recorder>) -> MutexGuard<'_, Recorder> {
    recorder.lock().unwrap_or_else(|e| e.into_inner())
}

async fn answer(State(receiver): State<Receiver>, request: Request) -> Response {
    let Receiver {
        recorder,
        api,
        signing_key,
    } = receiver;
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(e) if !over_the_limit(&e) => {
            lock(&recorder).cut_off += 1;
            return respond(Scripted::json(
                400,
                r#"{"message": "the body ended early"}"#,
            ))
            .await;
        }
        Err(e) => {
            let problem = format!(
                "{} {}: the body could not be read (limit {MAX_BODY} bytes): {e}",
                parts.method, parts.uri
            );
            lock(&recorder).unreadable.push(problem.clone());
            return respond(Scripted::json(
                413,
                &serde_json::json!({ "message": problem }).to_string(),
            ))
            .await;
        }
    };
    let _in_flight = parts
        .headers
        .get("idempotency-key")
        .and_then(|key| key.to_str().ok())
        .map(|key| InFlight::arrive(&recorder, key));
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
    let signature = signing_key
        .as_deref()
        .map(|key| verify_signature(key.as_bytes(), &received));
    let scripted = {
        let mut recorder = lock(&recorder);
        recorder.requests.push(received.clone());
        match signature {
            Some(Err(_)) => None,
            _ => recorder.script.pop_front(),
        }
    };
    let scripted = match signature {
        Some(Err(why)) => Scripted::json(
            401,
            &serde_json::json!({ "message": format!("signature refused: {why}") }).to_string(),
        ),
        // Outside the lock: the API may take its own.
        _ => scripted.unwrap_or_else(|| api(&received)),
    };
    respond(scripted).await
}

/// Whether reading a body failed on [`MAX_BODY`], not on the connection.
fn over_the_limit(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

async fn respond(scripted: Scripted) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_request(key: &str, body: &str) -> (String, String) {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("a key");
        mac.update(body.as_bytes());
        (
            body.to_owned(),
            format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        )
    }

    async fn post(server: &ErpServer, body: String, signature: Option<&str>) -> u16 {
        let mut request = reqwest::Client::new().post(server.url("/hooks")).body(body);
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        request.send().await.expect("sent").status().as_u16()
    }

    #[tokio::test]
    async fn a_signed_server_answers_401_to_a_wrong_or_missing_signature_before_the_script() {
        let server = ErpServer::signed("shared-key").await;
        server.script([Scripted::json(201, r#"{"id": "scripted"}"#)]);
        let (body, wrong) = signed_request("stale-key", r#"{"orderNumber":"1"}"#);
        assert_eq!(post(&server, body.clone(), Some(&wrong)).await, 401);
        assert_eq!(post(&server, body.clone(), None).await, 401);
        let (_, tampered) = signed_request("shared-key", r#"{"orderNumber":"2"}"#);
        assert_eq!(post(&server, body.clone(), Some(&tampered)).await, 401);
        // The script was kept for the first well-signed request.
        let (body, right) = signed_request("shared-key", &body);
        assert_eq!(post(&server, body.clone(), Some(&right)).await, 201);
        assert_eq!(post(&server, body, Some(&right)).await, 200);
        assert_eq!(server.requests().len(), 5);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_an_error_of_the_test() {
        let server = ErpServer::start().await;
        let status = post(&server, "x".repeat(MAX_BODY + 1), None).await;
        assert_eq!(status, 413);
        let looked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.requests()));
        let message = looked.expect_err("requests() panics");
        let message = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("could not read"), "{message}");
        // A test that never looks at the requests fails when the server goes.
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(server)));
        assert!(dropped.is_err(), "dropping the server panics too");
    }

    #[tokio::test]
    async fn a_body_its_sender_cut_off_is_not_recorded_and_not_an_error() {
        use tokio::io::AsyncWriteExt as _;
        let server = ErpServer::start().await;
        let mut stream = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connected");
        stream
            .write_all(b"POST /hooks HTTP/1.1\r\nhost: erp\r\ncontent-length: 100\r\n\r\n{\"order")
            .await
            .expect("sent");
        drop(stream);
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while server.cut_off() == 0 {
            assert!(std::time::Instant::now() < until, "the server saw the cut");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(server.requests().is_empty(), "nothing whole arrived");
        assert_eq!(post(&server, "{}".to_owned(), None).await, 200);
        assert_eq!(server.requests().len(), 1);
    }

    /// The head of a raw `POST` of `key` whose body is the 7 bytes
    /// `{"n":1}`.
    fn keyed_head(key: &str) -> String {
        format!(
            "POST /hooks HTTP/1.1\r\nhost: erp\r\nidempotency-key: {key}\r\n\
             content-type: application/json\r\ncontent-length: 7\r\n\r\n"
        )
    }

    async fn keyed_post(server: &ErpServer, key: &str) -> u16 {
        reqwest::Client::new()
            .post(server.url("/hooks"))
            .header("idempotency-key", key)
            .body(r#"{"n":1}"#)
            .send()
            .await
            .expect("sent")
            .status()
            .as_u16()
    }

    /// A sender stopped halfway through its body has delivered nothing
    /// yet: a delivery of the same key answered meanwhile is not an
    /// overlap, and neither is the first request once it comes in whole.
    #[tokio::test]
    async fn a_request_stalled_in_its_body_does_not_overlap_one_answered_meanwhile() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let server = ErpServer::start().await;
        let mut stalled = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connected");
        let head = keyed_head("job-1");
        stalled
            .write_all(format!("{head}{{\"n\"").as_bytes())
            .await
            .expect("sent the start");
        assert_eq!(keyed_post(&server, "job-1").await, 200);
        stalled.write_all(b":1}").await.expect("sent the rest");
        let mut answer = [0u8; 12];
        stalled.read_exact(&mut answer).await.expect("answered");
        assert_eq!(&answer, b"HTTP/1.1 200");
        assert_eq!(server.requests().len(), 2);
        assert_eq!(server.overlapping(), Vec::<String>::new());
    }

    /// Two whole requests of one key, the second in while the first waits
    /// for its answer: an overlap.
    #[tokio::test]
    async fn two_whole_requests_of_one_key_at_once_overlap() {
        let server = Arc::new(
            ErpServer::start_with(|_| Scripted::json(200, "{}").after(Duration::from_secs(30)))
                .await,
        );
        let mut waiting = tokio::task::JoinSet::new();
        for _ in 0..2 {
            let server = Arc::clone(&server);
            waiting.spawn(async move { keyed_post(&server, "job-2").await });
        }
        // Both are in long before either is answered.
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while server.requests().len() < 2 {
            assert!(std::time::Instant::now() < until, "both requests arrived");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(server.overlapping(), ["job-2"]);
        waiting.abort_all();
    }
}
