//! A `rescind serve` process started by a test or a benchmark: its base
//! URL read from the line it prints once it listens, signals by its own
//! process id (never a group's), and killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `rescind serve`.
pub struct ServeProcess {
    /// The process.
    pub child: Child,
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub base: String,
}

impl ServeProcess {
    /// Starts `command` (the binary with `serve` and its flags, set up by
    /// the caller), its standard output piped, and waits up to `limit` for
    /// the `rescind listening on URL` line.
    ///
    /// # Panics
    /// When the process cannot start or prints no address within `limit`.
    pub fn spawn(mut command: Command, limit: Duration) -> ServeProcess {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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
            .recv_timeout(limit)
            .expect("rescind serve printed its address");
        ServeProcess { child, base }
    }

    /// Sends `signal` (`TERM`, `STOP`, `CONT`, …) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("send a signal");
        assert!(status.success(), "kill -{signal}");
    }

    /// `SIGTERM`, then waits for the process to exit.
    pub fn terminate(mut self) {
        self.signal("TERM");
        let _ = self.child.wait();
    }

    /// `SIGKILL`: no shutdown at all. Waits for the process to be gone.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
