//! Crash safety of the real binary: `rescind serve` is killed (`SIGKILL`)
//! while cancellations stream in; after a restart on the same data
//! directory every cancellation it had answered is there with its queued
//! job, and every order is either wholly cancelled or untouched.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;

const ADMIN: &str = "kill-test-admin-token";
/// Orders in the test; each is cancelled at most once.
const ORDERS: usize = 300;
/// Answered cancellations after which the process is killed.
const KILL_AFTER: usize = 120;
/// Concurrent clients, so that requests are in flight at the kill.
const CLIENTS: usize = 16;

/// A running `rescind serve` and its base URL.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts the binary on `dir` (no job workers: jobs stay queued) and
    /// waits for the address it prints.
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rescind"))
            .args(["serve", "--listen", "127.0.0.1:0", "--workers", "0"])
            .arg("--data-dir")
            .arg(dir)
            .arg("--no-plugins-watch")
            .env("RESCIND_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rescind serve");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("rescind listening on ") {
                    let base = rest.split_whitespace().next().unwrap_or_default();
                    let _ = sender.send(base.to_owned());
                }
            }
        });
        let base = receiver
            .recv_timeout(Duration::from_secs(120))
            .expect("rescind serve printed its address");
        Server { child, base }
    }

    /// `SIGKILL`: no shutdown, no final checkpoint.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> reqwest::Result<(u16, Value)> {
    let mut request = client.request(method, url).bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

fn order(n: usize) -> Value {
    json!({
        "businessCode": "B1", "customerNumber": format!("C-{n}"), "website": "main",
        "status": "Submitted", "orderDate": "2024-09-01", "currency": "EUR",
        "erpOrderNumber": format!("ERP-{n}"),
        "lines": [
            {"lineNumber": 1, "sku": "CHAIR", "quantity": 1, "amountMinor": 20000, "taxMinor": 3800},
            {"lineNumber": 2, "sku": "WARRANTY", "quantity": 1, "amountMinor": 1500, "taxMinor": 285, "parentLine": 1}
        ],
        "payments": [{"id": format!("pay-{n}"), "method": "card", "authorizedMinor": 25585, "depositedMinor": 0}],
        "allocations": [{"lineNumber": 1, "warehouse": "W1", "quantity": 1, "kind": "existing"}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_keeps_every_cancellation_it_answered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let server = Server::start(dir.path());
    let base = server.base.clone();
    let setup = [
        (
            reqwest::Method::POST,
            "/v1/admin/presets/insite".to_owned(),
            None,
        ),
        (
            reqwest::Method::PUT,
            "/v1/admin/websites/main".to_owned(),
            Some(json!({"allowCancellationRequest": true})),
        ),
        (
            reqwest::Method::PUT,
            "/v1/admin/connections/erp".to_owned(),
            Some(json!({"baseUrl": "http://127.0.0.1:9", "allowedHosts": ["127.0.0.1:9"]})),
        ),
        (
            reqwest::Method::PUT,
            "/v1/admin/job-definitions/OrderCancel".to_owned(),
            Some(json!({"jobType": "Execution", "connection": "erp",
                        "integrationProcessor": "webhook",
                        "parameters": [{"name": "OrderNumber", "valueType": "String", "defaultValue": "", "prompt": "Order Number"}],
                        "enabled": true})),
        ),
    ];
    for (method, path, body) in setup {
        let (status, answer) = call(&client, method, format!("{base}{path}"), body)
            .await
            .expect("setup call");
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
    }
    for n in 0..ORDERS {
        let (status, answer) = call(
            &client,
            reqwest::Method::PUT,
            format!("{base}/v1/orders/KO-{n:04}"),
            Some(order(n)),
        )
        .await
        .expect("put order");
        assert!((200..300).contains(&status), "{status} {answer}");
    }

    // Clients cancel orders one after another; the test kills the process
    // once KILL_AFTER cancellations were answered, with others in flight.
    let next = Arc::new(AtomicUsize::new(0));
    let answered: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let killed = Arc::new(tokio::sync::Notify::new());
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, base, next, answered, killed) = (
            client.clone(),
            base.clone(),
            Arc::clone(&next),
            Arc::clone(&answered),
            Arc::clone(&killed),
        );
        clients.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= ORDERS {
                    break;
                }
                let number = format!("KO-{n:04}");
                let url = format!("{base}/v1/orders/{number}/cancellations");
                let body = Some(json!({"cancellationReason": "OUT_OF_STOCK"}));
                match call(&client, reqwest::Method::POST, url, body).await {
                    Ok((201, answer)) => {
                        let id = answer["internalRequestId"].as_str().expect("id").to_owned();
                        let mut answered = answered.lock().await;
                        answered.push((number, id));
                        if answered.len() == KILL_AFTER {
                            killed.notify_one();
                        }
                    }
                    Ok((status, answer)) => panic!("{number}: {status} {answer}"),
                    // The process is gone: whatever was in flight has no answer.
                    Err(_) => break,
                }
            }
        });
    }
    tokio::time::timeout(Duration::from_secs(120), killed.notified())
        .await
        .expect("enough cancellations answered before the kill");
    server.kill();
    tokio::time::timeout(Duration::from_secs(60), async {
        while clients.join_next().await.is_some() {}
    })
    .await
    .expect("clients stop once the process is gone");
    let answered = answered.lock().await.clone();
    assert!(answered.len() >= KILL_AFTER);

    let server = Server::start(dir.path());
    let base = server.base.clone();
    for (number, id) in &answered {
        let (status, cancellation) = call(
            &client,
            reqwest::Method::GET,
            format!("{base}/v1/cancellations/{id}"),
            None,
        )
        .await
        .expect("get cancellation");
        assert_eq!(status, 200, "answered cancellation {id} of {number} lost");
        let jobs = &cancellation["erpSync"]["jobs"];
        assert_eq!(jobs.as_array().map(Vec::len), Some(1), "{cancellation}");
        assert_eq!(jobs[0]["state"], "queued", "{cancellation}");
    }
    // Every order is wholly cancelled (with exactly one cancellation) or
    // untouched; the answered ones are cancelled.
    let mut cancelled = 0;
    for n in 0..ORDERS {
        let number = format!("KO-{n:04}");
        let (status, order) = call(
            &client,
            reqwest::Method::GET,
            format!("{base}/v1/orders/{number}"),
            None,
        )
        .await
        .expect("get order");
        assert_eq!(status, 200, "{order}");
        let cancellations = order["cancellations"].as_array().map_or(0, Vec::len);
        match order["status"].as_str() {
            Some("Cancelled") => {
                assert_eq!(cancellations, 1, "{number}: {order}");
                cancelled += 1;
            }
            Some("Submitted") => {
                assert_eq!(cancellations, 0, "{number}: {order}");
                assert!(
                    !answered.iter().any(|(answered, _)| *answered == number),
                    "{number} was answered but is not cancelled"
                );
            }
            other => panic!("{number}: status {other:?}"),
        }
    }
    assert!(cancelled >= answered.len());
    server.kill();
}
