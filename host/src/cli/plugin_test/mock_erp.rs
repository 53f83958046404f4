//! The mock ERP of `rescind plugin test`: an HTTP server on loopback that
//! answers by a [`Script`] and records every request it receives with the
//! answer it gave.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::script::{Pick, RequestView, Script, ScriptMode};

/// The most body bytes of one request the mock ERP keeps (the host bounds
/// what a plugin may send long before this).
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// A request the mock ERP received, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body (lossy UTF-8).
    pub body: String,
    /// The status the mock ERP answered with.
    pub status: u16,
    /// The step or route (1-based) that answered, if one did.
    pub answered_by: Option<usize>,
    /// Why the request did not follow the script, if it did not.
    pub off_script: Option<String>,
}

/// A mock ERP serving a script on `127.0.0.1`, until dropped.
pub struct ScriptedErp {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
    script: Arc<Script>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    script: Arc<Script>,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
}

impl ScriptedErp {
    /// Starts the server on a free loopback port.
    pub async fn start(script: Script) -> anyhow::Result<ScriptedErp> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("starting the mock ERP")?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            script: Arc::new(script),
            received: Arc::default(),
        };
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let server = tokio::spawn(async move {
            // Ends only when aborted, or when the socket fails, which the
            // plugin then sees as a refused connection.
            let _ = axum::serve(listener, app).await;
        });
        Ok(ScriptedErp {
            addr,
            received: shared.received,
            script: shared.script,
            server,
        })
    }

    /// Where it listens: the connection's base URL is `http://{addr}`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it received so far, in order.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The script it serves.
    pub fn script(&self) -> &Script {
        &self.script
    }

    /// What the script expected and did not get: unused steps. (Requests
    /// off the script are marked on each [`ReceivedRequest`].)
    pub fn unused_steps(&self) -> Option<String> {
        let used = self
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        let steps = self.script.answers.len();
        (self.script.mode == ScriptMode::Steps && used < steps).then(|| {
            let unused: Vec<String> = (used + 1..=steps)
                .map(|n| format!("{n} ({})", self.script.answers[n - 1].request.describe()))
                .collect();
            format!(
                "the plugin made {used} of the script's {steps} steps; not used: {}",
                unused.join(", ")
            )
        })
    }
}

impl Drop for ScriptedErp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_REQUEST_BODY)
        .await
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let method = parts.method.to_string();
    // Numbered on arrival: the guest SDK sends one request at a time.
    let (pick, index) = {
        let mut received = shared.received.lock().unwrap_or_else(|e| e.into_inner());
        let index = received.len();
        let view = RequestView {
            method: &method,
            path_and_query: &path,
            headers: &headers,
        };
        let pick = shared.script.pick(index, &view);
        received.push(ReceivedRequest {
            method: method.clone(),
            path: path.clone(),
            headers: headers.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
            status: 0,
            answered_by: None,
            off_script: None,
        });
        (pick, index)
    };
    let (response, answered_by, off_script) = match pick {
        Pick::Answer(found, mismatch) => {
            let scripted = &shared.script.answers[found];
            if !scripted.delay.is_zero() {
                tokio::time::sleep(scripted.delay).await;
            }
            let mut response = Response::new(Body::from(scripted.body.clone()));
            *response.status_mut() = scripted.status;
            for (name, value) in &scripted.headers {
                response.headers_mut().append(name.clone(), value.clone());
            }
            (response, Some(found + 1), mismatch)
        }
        Pick::Unscripted(why) => {
            let status = match shared.script.mode {
                ScriptMode::Steps => StatusCode::INTERNAL_SERVER_ERROR,
                ScriptMode::Routes => StatusCode::NOT_FOUND,
            };
            let mut response = Response::new(Body::from(format!(
                "rescind plugin test: the script has no answer for {method} {path}: {why}"
            )));
            *response.status_mut() = status;
            (response, None, Some(why))
        }
    };
    let mut received = shared.received.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = received.get_mut(index) {
        entry.status = response.status().as_u16();
        entry.answered_by = answered_by;
        entry.off_script = off_script;
    }
    response
}
