//! A real browser for the console's tests: Debian's `chromium`, headless,
//! with a fresh profile, started by the test as its own child, and
//! `chromedriver` (package `chromium-driver`) on a free loopback port
//! attached to it. Both are ended by their process ids when the test's
//! [`Browser`] is dropped, passing or failing.
//!
//! Where either program is missing, [`Browser::start`] prints why and the
//! test skips; with `RESCIND_TEST_BROWSER=required` (what `.ci/run` sets) a
//! missing browser fails the test instead.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long any wait of these tests may last.
pub const CEILING: Duration = Duration::from_secs(60);

/// Chromium's switches: headless, no sandbox (containers), nothing that
/// reaches the network by itself.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    // Tall enough for a screenshot to show most of a screen.
    "--window-size=1100,1600",
];

fn program(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// A headless Chromium driven by chromedriver, both ended when dropped.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    // Dropped in this order: the driver, then Chromium, then its profile.
    _driver: Killed,
    _chromium: Killed,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a Chromium session, or says why it cannot
    /// and answers `None` (a failure when the browser is required).
    pub async fn start() -> Option<Browser> {
        let chromium = program("RESCIND_TEST_CHROMIUM", &["/usr/bin/chromium"]);
        let driver = program("RESCIND_TEST_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let reason = "the console's browser test needs Debian's chromium and chromedriver \
                          (apt-get install -y chromium chromium-driver), or \
                          RESCIND_TEST_CHROMIUM and RESCIND_TEST_CHROMEDRIVER naming them";
            assert!(
                std::env::var("RESCIND_TEST_BROWSER").as_deref() != Ok("required"),
                "RESCIND_TEST_BROWSER=required, but {reason}"
            );
            // Straight to the process's stderr: the test harness would hide
            // what `eprintln!` writes in a passing test.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
            return None;
        };
        Some(Self::launch(&chromium, &driver).await)
    }

    async fn launch(chromium: &std::path::Path, driver: &std::path::Path) -> Browser {
        // Chromium is this test's own child (chromedriver attaches to it),
        // so that it is ended by its id whatever becomes of the session.
        let profile = tempfile::tempdir().expect("a profile directory");
        let browser = Command::new(chromium)
            .args(CHROMIUM_ARGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--remote-debugging-address=127.0.0.1")
            .arg("--remote-debugging-port=0")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromium.display()));
        let mut browser = Killed(browser);
        // Chromium writes the port it took into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let started = Instant::now();
        let devtools_port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| text.lines().next()?.trim().parse::<u16>().ok())
            {
                break port;
            }
            if let Ok(Some(status)) = browser.0.try_wait() {
                panic!("{} exited with {status} at start", chromium.display());
            }
            assert!(
                started.elapsed() < CEILING,
                "Chromium did not open its DevTools port within {CEILING:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };

        let port = {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port");
            listener.local_addr().expect("address").port()
        };
        let driver_process = Command::new(driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver.display()));
        let mut driver_process = Killed(driver_process);
        let url = format!("http://127.0.0.1:{port}");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".to_owned(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({"debuggerAddress": format!("127.0.0.1:{devtools_port}")}),
        );
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(error) => {
                    if let Ok(Some(status)) = driver_process.0.try_wait() {
                        panic!("chromedriver exited with {status} before it answered");
                    }
                    assert!(
                        started.elapsed() < CEILING,
                        "no WebDriver session from chromedriver on {url} within {CEILING:?}: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        Browser {
            client,
            _driver: driver_process,
            _chromium: browser,
            _profile: profile,
        }
    }

    /// Ends the WebDriver session; the processes end when dropped.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Loads `url`.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("page loads");
    }

    /// The path of the page shown.
    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("current URL")
            .path()
            .to_owned()
    }

    /// The text of the first element matching `css`, waiting (bounded) for
    /// it to exist.
    pub async fn text(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let found = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match found {
                Ok(text) => return text,
                Err(error) => assert!(
                    started.elapsed() < CEILING,
                    "no {css} on the page after {CEILING:?}: {error}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends keys (WebDriver key codes: `\u{E007}` Enter, `\u{E004}` Tab)
    /// to the element matching `css`.
    pub async fn press(&self, css: &str, keys: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .send_keys(keys)
            .await
            .unwrap_or_else(|e| panic!("keys to {css}: {e}"));
    }

    /// [`press`](Self::press), then waits for the page it loads, as
    /// [`click_to_load`](Self::click_to_load) does.
    pub async fn press_to_load(&self, css: &str, keys: &str) {
        self.run("window.consoleLeaving = true; return null").await;
        self.press(css, keys).await;
        self.wait_for_load(css).await;
    }

    /// Clicks what `css` names and waits (bounded) until the page it leads
    /// to has loaded: the page clicked on is marked, and the mark is gone
    /// from the next one.
    pub async fn click_to_load(&self, css: &str) {
        self.run("window.consoleLeaving = true; return null").await;
        self.click(css).await;
        self.wait_for_load(css).await;
    }

    async fn wait_for_load(&self, css: &str) {
        let started = Instant::now();
        loop {
            let loaded = self
                .client
                .execute(
                    "return window.consoleLeaving === undefined && document.readyState === 'complete'",
                    Vec::new(),
                )
                .await
                .is_ok_and(|v| v == Value::Bool(true));
            if loaded {
                return;
            }
            assert!(
                started.elapsed() < CEILING,
                "{css} loaded no page within {CEILING:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An attribute of the first element matching `css`.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .attr(name)
            .await
            .expect("attribute")
    }

    /// Types into the field matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Runs a script in the page and answers its value.
    pub async fn run(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .expect("script runs")
    }

    /// What a page must have to be usable without a mouse and zoomed in:
    /// `lang`, one `h1`, a label (or accessible name) for every control,
    /// and no sideways scrolling in a window 640 CSS pixels wide, which is
    /// a 1280-pixel screen at 200 % zoom. Answers what is missing.
    pub async fn accessibility_gaps(&self) -> Vec<String> {
        let (width, height) = {
            let rect = self.client.get_window_rect().await.expect("window size");
            (rect.2, rect.3)
        };
        self.client
            .set_window_size(640, 900)
            .await
            .expect("narrow window");
        let gaps = self
            .run(
                r#"const gaps = [];
                if (!document.documentElement.lang) gaps.push("no lang");
                const h1 = document.querySelectorAll("h1").length;
                if (h1 !== 1) gaps.push(h1 + " h1 headings");
                document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(c => {
                  if (!(c.labels && c.labels.length) && !c.getAttribute("aria-label")) gaps.push("unlabelled " + c.outerHTML);
                });
                document.querySelectorAll("button, a[href]").forEach(c => {
                  if (!c.textContent.trim() && !c.getAttribute("aria-label")) gaps.push("nameless " + c.outerHTML);
                });
                if (document.documentElement.scrollWidth > window.innerWidth)
                  gaps.push("scrolls sideways: " + document.documentElement.scrollWidth + " > " + window.innerWidth);
                return gaps;"#,
            )
            .await;
        self.client
            .set_window_size(
                u32::try_from(width).unwrap_or(1280),
                u32::try_from(height).unwrap_or(900),
            )
            .await
            .expect("window size back");
        gaps.as_array()
            .expect("a list")
            .iter()
            .map(|g| g.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits (bounded) until the text of `css` is `expected`.
    pub async fn wait_for_text(&self, css: &str, expected: &str) {
        let started = Instant::now();
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text == expected {
                return;
            }
            assert!(
                started.elapsed() < CEILING,
                "{css} still reads {text:?}, not {expected:?}, after {CEILING:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A process this test started, ended (by its id) and reaped when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
