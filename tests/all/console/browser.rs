//! A real browser for the console's tests: Debian's `chromium`, headless,
//! with a fresh profile, started by the test as its own child, and
//! `chromedriver` (package `chromium-driver`) on a free loopback port
//! attached to it. Both are ended by their process ids when the test's
//! [`Browser`] is dropped, passing or failing.
//!
//! Where either program is missing, [`Browser::start`] prints why and the
//! test skips; with `RESCIND_TEST_BROWSER=required` (what `.ci/run` sets) a
//! missing browser fails the test instead.
//!
//! Each screen is checked with axe-core, the accessibility rules engine,
//! injected into the page: no violation of serious or critical impact. Its
//! pinned release is taken from the npm registry on the first run (checked
//! against its published SHA-512) and kept under the target directory, or
//! read from the file `RESCIND_TEST_AXE` names.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
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

/// The axe-core release the checks run, and the SHA-512 of its npm
/// package as the registry publishes it (`dist.integrity`).
const AXE_VERSION: &str = "4.14.1";
const AXE_SHA512: &str = "1477dafa598d8d065f273d6af302aa203c02e83131707b7fa648cd41bd3d6b734f8c22a0dab86ee6a6f64b8afbe804b214d36db85a2826965edfb3a0b9d546b5";

/// Whether a missing browser (or axe-core) fails the test.
fn required() -> bool {
    std::env::var("RESCIND_TEST_BROWSER").as_deref() == Ok("required")
}

/// Says why a check is skipped, straight to the process's stderr: the test
/// harness would hide what `eprintln!` writes in a passing test.
fn skipped(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

/// axe-core's `axe.min.js`, fetched once per test process (and once per
/// target directory), or `None` with the reason printed.
fn axe_source() -> Option<&'static str> {
    static SOURCE: OnceLock<Result<String, String>> = OnceLock::new();
    match SOURCE.get_or_init(load_axe) {
        Ok(source) => Some(source),
        Err(reason) => {
            assert!(!required(), "RESCIND_TEST_BROWSER=required, but {reason}");
            skipped(reason);
            None
        }
    }
}

fn load_axe() -> Result<String, String> {
    if let Some(path) = std::env::var_os("RESCIND_TEST_AXE") {
        return std::fs::read_to_string(&path)
            .map_err(|e| format!("RESCIND_TEST_AXE names {path:?}, which cannot be read: {e}"));
    }
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("axe-core-{AXE_VERSION}"));
    let script = folder.join("axe.min.js");
    if let Ok(source) = std::fs::read_to_string(&script) {
        return Ok(source);
    }
    std::fs::create_dir_all(&folder).map_err(|e| format!("creating {folder:?}: {e}"))?;
    // A name of this process's own, so that two test binaries fetching at
    // once do not write one file; the script is moved into place whole.
    let package = folder.join(format!("package-{}.tgz", std::process::id()));
    let url = format!("https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz");
    let why = format!(
        "the accessibility check needs axe-core {AXE_VERSION} from {url} (curl and tar), \
         or RESCIND_TEST_AXE naming its axe.min.js"
    );
    let fetched = Command::new("curl")
        .args(["-sSfL", "--max-time", "120", "-o"])
        .arg(&package)
        .arg(&url)
        .status();
    if !fetched.is_ok_and(|status| status.success()) {
        let _ = std::fs::remove_file(&package);
        return Err(format!("{why}: it could not be fetched"));
    }
    let bytes = std::fs::read(&package).map_err(|e| format!("{why}: {e}"))?;
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha512::digest(&bytes))
    };
    if digest != AXE_SHA512 {
        let _ = std::fs::remove_file(&package);
        return Err(format!(
            "{why}: what was fetched is not the published package (SHA-512 {digest})"
        ));
    }
    let unpacked = folder.join(format!("unpacked-{}", std::process::id()));
    std::fs::create_dir_all(&unpacked).map_err(|e| format!("{why}: {e}"))?;
    let untarred = Command::new("tar")
        .arg("-xzf")
        .arg(&package)
        .arg("-C")
        .arg(&unpacked)
        .arg("package/axe.min.js")
        .status();
    let _ = std::fs::remove_file(&package);
    if !untarred.is_ok_and(|status| status.success()) {
        let _ = std::fs::remove_dir_all(&unpacked);
        return Err(format!("{why}: the package could not be unpacked"));
    }
    let moved = std::fs::rename(unpacked.join("package/axe.min.js"), &script);
    let _ = std::fs::remove_dir_all(&unpacked);
    moved.map_err(|e| format!("{why}: {e}"))?;
    std::fs::read_to_string(&script).map_err(|e| format!("{why}: {e}"))
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
            assert!(!required(), "RESCIND_TEST_BROWSER=required, but {reason}");
            skipped(reason);
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
    /// no axe-core violation of serious or critical impact, `lang`, one
    /// `h1`, a label (or accessible name) for every control, and no
    /// sideways scrolling in a window 640 CSS pixels wide, which is a
    /// 1280-pixel screen at 200 % zoom. Answers what is missing.
    pub async fn accessibility_gaps(&self) -> Vec<String> {
        let mut gaps = self.axe_violations().await;
        gaps.extend(self.own_gaps().await);
        gaps
    }

    /// axe-core's violations of serious or critical impact on the page, one
    /// line each with the elements concerned (empty when axe-core is not at
    /// hand and the browser is not required).
    async fn axe_violations(&self) -> Vec<String> {
        let Some(source) = axe_source() else {
            return Vec::new();
        };
        self.client
            .execute(&format!("{source}\nreturn typeof axe;"), Vec::new())
            .await
            .expect("axe-core loads into the page");
        let found = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                axe.run(document, {resultTypes: ["violations"]}).then(result => done(
                  result.violations
                    .filter(v => v.impact === "serious" || v.impact === "critical")
                    .map(v => `axe ${v.id} (${v.impact}): ${v.help}: ` +
                      v.nodes.slice(0, 5).map(n => n.target.join(" ")).join(", "))
                )).catch(error => done([`axe-core failed: ${error}`]));"#,
                Vec::new(),
            )
            .await
            .expect("axe-core runs");
        found
            .as_array()
            .expect("a list")
            .iter()
            .map(|g| g.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// What axe-core does not look for: the zoom test and our own rules.
    async fn own_gaps(&self) -> Vec<String> {
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

/// The check itself: a page with what the console must never have (an
/// image without a text alternative, an unlabelled field, text too faint
/// to read, a page without a language or title) is found wanting, each by
/// its axe-core rule, so a console screen that passes was really checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accessibility_check_finds_what_a_bad_page_lacks() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    if axe_source().is_none() {
        return;
    }
    let page = r#"<!doctype html><html><body><main>
        <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
        <input type="text" name="q">
        <p style="color:#eee;background:#fff">faint text</p>
        </main></body></html>"#;
    let url = format!(
        "data:text/html;base64,{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, page)
    );
    browser.goto(&url).await;
    let gaps = browser.accessibility_gaps().await;
    for rule in [
        "axe image-alt (critical)",
        "axe label (critical)",
        "axe color-contrast (serious)",
        "axe html-has-lang (serious)",
        "axe document-title (serious)",
    ] {
        assert!(
            gaps.iter().any(|gap| gap.starts_with(rule)),
            "{rule} not found in {gaps:#?}"
        );
    }
    browser.close().await;
}
