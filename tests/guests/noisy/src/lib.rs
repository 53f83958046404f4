//! Test guest `noisy`: floods every output the host captures, secret
//! included, then accepts with the reference `noisy`. The host must bound what
//! it keeps and redact the secret everywhere.
//!
//! It writes, in this order:
//! - host log, info: `apiToken is <value of secret apiToken>`, then
//!   `noisy line 1` … `noisy line 9999` (10,000 log lines in all);
//! - stdout: `stdout: apiToken is <value>`, then `stdout line 1` …
//!   `stdout line 9999`;
//! - stderr: `stderr: apiToken is <value>`.

use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError, config, log};

/// How many lines go to the host log, and to stdout.
pub const LINES: usize = 10_000;

/// Logs and prints a lot.
pub struct Noisy;

impl IntegrationProcessor for Noisy {
    fn submit_cancellation(_cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        let token = config::secret("apiToken").unwrap_or_default();
        log::info!("apiToken is {token}");
        for line in 1..LINES {
            log::info!("noisy line {line}");
        }
        println!("stdout: apiToken is {token}");
        for line in 1..LINES {
            println!("stdout line {line}");
        }
        eprintln!("stderr: apiToken is {token}");
        Ok(Ack::with_reference("noisy"))
    }
}

rescind_guest::register_integration_processor!(Noisy);

#[cfg(test)]
mod tests {
    use super::*;
    use rescind_guest::testing::{Connection, sample_cancellation};

    #[test]
    fn logs_ten_thousand_lines_leading_with_the_secret() {
        let connection = Connection::new("http://127.0.0.1:9").secret("apiToken", "tok-123");
        let ack = connection.submit::<Noisy>(&sample_cancellation()).unwrap();
        assert_eq!(ack.erp_reference.as_deref(), Some("noisy"));
        let logs = connection.logs();
        assert_eq!(logs.len(), LINES);
        assert_eq!(logs[0].message, "apiToken is tok-123");
        assert_eq!(logs[LINES - 1].message, "noisy line 9999");
    }
}
