//! Credentials at the command line, with the real binary: `rescind serve`
//! refuses a short admin token, and `rescind keys create` makes a key in a
//! stopped host's data directory (refusing a running host's) that the host
//! then accepts.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A generous ceiling for a host to start (it compiles the bundled plugins
/// on a fresh data directory); a working start ends far earlier.
const START_CEILING: Duration = Duration::from_secs(600);

fn rescind() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rescind"));
    command
        .env_remove("RESCIND_ADMIN_TOKEN")
        .env_remove("RESCIND_DATA_DIR")
        .env("RUST_LOG", "error");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `rescind keys create --data-dir DIR ARGS…`.
fn create_key(dir: &Path, arguments: &[&str]) -> Output {
    rescind()
        .args(["keys", "create", "--data-dir"])
        .arg(dir)
        .args(arguments)
        .output()
        .expect("rescind runs")
}

/// Waits for a child to exit, killing it after `ceiling`.
fn wait_exit(mut child: Child, ceiling: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > ceiling {
            let _ = child.kill();
            panic!("still running after {ceiling:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn serve_refuses_an_admin_token_shorter_than_32_characters_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let child = rescind()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("RESCIND_ADMIN_TOKEN", "x".repeat(31))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rescind serve starts");
    let output = wait_exit(child, START_CEILING);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("RESCIND_ADMIN_TOKEN is 31 characters long; it must be at least 32"),
        "{stderr}"
    );
    assert!(stderr.contains("openssl rand -hex 32"), "{stderr}");
    assert!(!text(&output.stdout).contains("listening"));
    // Refused before anything was opened.
    assert!(!dir.path().join("rescind.db").exists());
}

#[test]
fn keys_create_refuses_bad_flags_without_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let output = create_key(
        dir.path(),
        &[
            "--name",
            "shop",
            "--role",
            "customer",
            "--expires-at",
            "soon",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("error: --customer-number: a customer key needs"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--expires-at: is not an RFC 3339 time"),
        "{stderr}"
    );
    assert!(
        stderr.trim_end().ends_with("no key was created"),
        "{stderr}"
    );
    assert_eq!(text(&output.stdout), "");
    assert!(!dir.path().join("rescind.db").exists());
}

/// A running `rescind serve` without an admin token.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = rescind()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--workers", "0"])
            .arg("--data-dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("rescind serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = sender.send(line);
            }
        });
        let started = Instant::now();
        let mut seen = Vec::new();
        let base = loop {
            let line = receiver
                .recv_timeout(START_CEILING.saturating_sub(started.elapsed()))
                .unwrap_or_else(|_| panic!("no address printed: {seen:?}"));
            if let Some(rest) = line.strip_prefix("rescind listening on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
            seen.push(line);
        };
        Server { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_on_the_command_line_works_once_the_host_serves() {
    let dir = tempfile::tempdir().unwrap();
    let made = create_key(dir.path(), &["--name", "first admin", "--role", "admin"]);
    assert_eq!(made.status.code(), Some(0), "{made:?}");
    let admin = text(&made.stdout).trim().to_owned();
    assert!(admin.starts_with("rsk_") && admin.len() == 68, "{admin}");
    assert_eq!(text(&made.stdout).lines().count(), 1, "the token alone");
    let stderr = text(&made.stderr);
    assert!(
        stderr.contains("created key \"first admin\" (admin)"),
        "{stderr}"
    );
    assert!(!stderr.contains(&admin), "the token goes to stdout only");
    let made = create_key(dir.path(), &["--name", "ci", "--role", "service"]);
    assert_eq!(made.status.code(), Some(0), "{made:?}");
    let ci = text(&made.stdout).trim().to_owned();

    let server = Server::start(dir.path());
    let client = reqwest::Client::new();
    let get = |path: &str, token: &str| {
        client
            .get(format!("{}{path}", server.base))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(get("/v1/admin/jobs", &ci).await.unwrap().status(), 200);
    assert_eq!(get("/v1/admin/settings", &ci).await.unwrap().status(), 403);
    let keys: Value = get("/v1/admin/api-keys", &admin)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first admin", "ci"]);
    assert_eq!(keys[0]["createdBy"], "command line");
    let audit: Value = get("/v1/admin/audit", &admin)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["actor"], "command-line", "{audit}");
    assert_eq!(audit[0]["path"], "rescind keys create");
    assert!(
        audit[0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("created key \"ci\" (service)"),
        "{audit}"
    );

    // While the host runs, its data directory is its own.
    let refused = create_key(dir.path(), &["--name", "late", "--role", "service"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let stderr = text(&refused.stderr);
    assert!(
        stderr.starts_with("error: another rescind process is using the data directory"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(text(&refused.stdout), "");
    drop(server);
}
