//! Runs a markdown document the way a reader follows it: its ```` ```sh ````
//! blocks as one bash script, in the order they appear, with each file a
//! ```` ```lang file=PATH ```` block shows written at that point of the
//! script (relative to where the script then is). Blocks marked `norun`
//! (` ```sh norun `) are shown to readers but not run; a document may
//! forbid them.
//!
//! The script runs with `set -euo pipefail`, so the first failing command
//! fails the run, with `rescind` on the `PATH` (this build's binary), curl
//! calls that fail on an HTTP error status, and cargo building into the
//! shared target directory of the test guests (through a `target` symlink,
//! so that the paths the document names stay true) and offline.

use std::fmt::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A fenced code block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The first word of the info string: `sh`, `rust`, `json` …
    pub lang: String,
    /// The other words: `file=src/lib.rs`, `norun`.
    pub attributes: Vec<String>,
    /// The content, indentation of the fence removed, ending in a newline.
    pub text: String,
    /// The line of the opening fence, from 1.
    pub line: usize,
}

impl Block {
    /// The file a `file=PATH` block is.
    pub fn file(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| a.strip_prefix("file="))
    }

    /// Whether the block is shown but not run.
    pub fn norun(&self) -> bool {
        self.attributes.iter().any(|a| a == "norun")
    }

    /// Whether the script runs or writes it.
    pub fn is_run(&self) -> bool {
        !self.norun() && (self.lang == "sh" || self.file().is_some())
    }
}

/// The fenced code blocks of `markdown`, in order.
pub fn blocks(markdown: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        let ticks = trimmed.bytes().take_while(|b| *b == b'`').count();
        if ticks < 3 {
            continue;
        }
        let mut words = trimmed[ticks..].split_whitespace();
        let lang = words.next().unwrap_or_default().to_owned();
        let attributes = words.map(str::to_owned).collect();
        let mut text = String::new();
        for (_, content) in lines.by_ref() {
            let closing = content.trim_start();
            if closing.len() >= ticks && closing.bytes().all(|b| b == b'`') {
                break;
            }
            let strip = content
                .bytes()
                .take(indent)
                .take_while(|b| *b == b' ')
                .count();
            text.push_str(&content[strip..]);
            text.push('\n');
        }
        found.push(Block {
            lang,
            attributes,
            text,
            line: number + 1,
        });
    }
    found
}

/// What every run starts with.
const PRELUDE: &str = r#"set -euo pipefail
PS4='+ docs: '
set -x
# Whatever the document started in the background ends with it.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
# A call the host refuses fails the run, with the host's answer shown.
curl() { local status=0; command curl --silent --show-error --fail-with-body "$@" || status=$?; echo; return "$status"; }
# Builds go to the shared target directory; `target/…` paths stay true.
cargo() { [ -e target ] || ln -s "$DOCS_CARGO_TARGET" target; command cargo "$@"; }
"#;

/// The script of `blocks`: `setup` (the test's, before the document), then
/// every `sh` block, and every `file=` block written with a here-document.
pub fn script(setup: &str, blocks: &[Block]) -> String {
    let mut script = String::from(PRELUDE);
    script.push_str(setup);
    for block in blocks.iter().filter(|b| b.is_run()) {
        let _ = writeln!(script, "# line {}", block.line);
        match block.file() {
            Some(path) => {
                assert!(
                    !block.text.contains("RESCIND_DOC_EOF"),
                    "line {}: the block holds the here-document's end marker",
                    block.line
                );
                let _ = write!(
                    script,
                    "mkdir -p \"$(dirname '{path}')\"\ncat > '{path}' <<'RESCIND_DOC_EOF'\n{}RESCIND_DOC_EOF\n",
                    block.text
                );
            }
            None => script.push_str(&block.text),
        }
    }
    script
}

/// How a run ended.
#[derive(Debug)]
pub struct Run {
    /// The exit status, `None` when it was stopped at its ceiling.
    pub status: Option<i32>,
    /// What it printed.
    pub stdout: String,
    /// Its errors, and every command it ran (`+ docs: …`).
    pub stderr: String,
}

impl Run {
    /// Panics with the run's output unless it succeeded.
    pub fn assert_success(&self, what: &str) {
        assert_eq!(
            self.status,
            Some(0),
            "{what} failed; the last of its output:\n--- stdout\n{}\n--- stderr\n{}",
            tail(&self.stdout, 150),
            tail(&self.stderr, 150)
        );
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The target directory the test guests are built in, shared by the
/// documents' builds.
pub fn shared_target() -> PathBuf {
    Path::new(rescind_test_artifacts::WEBHOOK)
        .ancestors()
        .nth(3)
        .expect("<target>/wasm-components")
        .to_owned()
}

/// A fresh folder for a document's run, at a fixed place under the shared
/// target directory: cargo keys a path crate's build by its location, so a
/// fixed place reuses the last run's work.
pub fn workdir(name: &str) -> PathBuf {
    let dir = shared_target().join("docs").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("the last run's folder removed");
    }
    std::fs::create_dir_all(dir.join("bin")).expect("a folder for the run");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rescind"), dir.join("bin/rescind"))
        .expect("rescind on the PATH");
    dir
}

/// Runs `script` with bash in `dir`, with `env` added, stopping it (and
/// whatever it started) at `ceiling`.
pub fn run(dir: &Path, script: &str, env: &[(&str, String)], ceiling: Duration) -> Run {
    // The documents talk to the host with curl, as their readers do.
    let curl = Command::new("curl").arg("--version").output();
    assert!(
        curl.is_ok_and(|o| o.status.success()),
        "the docs are run as their readers run them, with curl: install it \
         (e.g. `apt-get install curl`)"
    );
    let script_path = dir.join("docs.sh");
    std::fs::write(&script_path, script).expect("script written");
    let stdout_path = dir.join("stdout.log");
    let stderr_path = dir.join("stderr.log");
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .arg(&script_path)
        .current_dir(dir)
        .env("PATH", path)
        .env("DOCS_CARGO_TARGET", shared_target())
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("CARGO_TARGET_DIR")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for bash") {
            break status.code();
        }
        if started.elapsed() > ceiling {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Whatever is left of the group (a server the script started).
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    Run {
        status,
        stdout: std::fs::read_to_string(&stdout_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
    }
}

#[test]
fn blocks_and_scripts() {
    let markdown = "text\n\n```sh\necho one\n```\n\n- item\n\n  ```json file=a/b.json\n  {\"x\": 1}\n  ```\n\n````rust norun\nfn main() {}\n````\n";
    let found = blocks(markdown);
    let summary: Vec<(&str, Option<&str>, bool, &str, usize)> = found
        .iter()
        .map(|b| {
            (
                b.lang.as_str(),
                b.file(),
                b.norun(),
                b.text.as_str(),
                b.line,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("sh", None, false, "echo one\n", 3),
            ("json", Some("a/b.json"), false, "{\"x\": 1}\n", 9),
            ("rust", None, true, "fn main() {}\n", 13),
        ]
    );
    let script = script("echo setup\n", &found);
    assert!(script.starts_with(&format!("{PRELUDE}echo setup\n")));
    assert!(script.contains("# line 3\necho one\n"), "{script}");
    assert!(
        script.contains("cat > 'a/b.json' <<'RESCIND_DOC_EOF'\n{\"x\": 1}\nRESCIND_DOC_EOF\n"),
        "{script}"
    );
    assert!(!script.contains("fn main"), "{script}");
}
