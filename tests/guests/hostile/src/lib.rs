//! Test guest `hostile`: one plugin for the rows of the hostile-plugin
//! matrix that need no special build. The connection setting `attack` says
//! what it does:
//!
//! | `attack` | what the plugin does |
//! |---|---|
//! | `recursion` | recurses until the call stack runs out |
//! | `log-flood` | writes [`FLOOD_LINES`] host log lines and as many stdout lines, then accepts (reference `flooded`) |
//! | `big-reply` | accepts with an ERP reference and a message of [`BIG_REPLY_BYTES`] each |
//! | `big-rejection` | rejects with a message of [`BIG_REPLY_BYTES`] |
//! | `echo-secret` | puts the secret `apiToken` into the answer the setting `reply` names: `accepted` (reference and message), `rejected`, `transient`, `misconfigured` or `panic`; in the form the setting `form` names: `plain` (default), `base64`, `base64url`, `basic` (an `Authorization: Basic` header of `svc-user:<secret>`), `url` (percent-encoded), `form` (`+` for space) or `json` (JSON-escaped); `log` also writes it to the log in every form |
//! | `resources` | creates WASI pollables and never drops them, `count` of them (setting; default [`MAX_RESOURCES_TRIED`]); if none is refused, accepts with the reference `holding <count> resources` |
//! | `hold-memory` | fills `mib` MiB (setting; default 32), then sends `GET` to the base URL and waits for the answer while holding it; accepts with the reference `held <mib> MiB` (what a plugin at its memory budget costs the host while its ERP is slow) |
//!
//! Without `attack` it accepts at once (reference `harmless`).

use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError, config, log};

/// Lines `log-flood` writes to the host log, and again to stdout.
pub const FLOOD_LINES: usize = 1_000_000;
/// The size of each text `big-reply` and `big-rejection` return: 5 MB.
pub const BIG_REPLY_BYTES: usize = 5_000_000;
/// How many resources `resources` creates at most.
pub const MAX_RESOURCES_TRIED: usize = 1_000_000;

/// Does whatever the connection's `attack` setting says.
pub struct Hostile;

impl IntegrationProcessor for Hostile {
    fn submit_cancellation(_cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        match config::setting("attack").as_deref() {
            None => Ok(Ack::with_reference("harmless")),
            Some("recursion") => {
                // Read at run time so the depth cannot be folded away.
                let depth = config::parse_setting::<u64>("depth")?.unwrap_or(u64::MAX);
                Ok(Ack::with_reference(format!("recursed: {}", recurse(depth))))
            }
            Some("log-flood") => {
                for line in 0..FLOOD_LINES {
                    log::info!("flood line {line}");
                }
                for line in 0..FLOOD_LINES {
                    println!("stdout flood line {line}");
                }
                Ok(Ack::with_reference("flooded"))
            }
            Some("big-reply") => {
                Ok(Ack::with_reference(big("reference")).with_message(big("message")))
            }
            Some("big-rejection") => Err(SubmitError::rejected(big("rejection"))),
            Some("echo-secret") => echo_secret(),
            Some("resources") => {
                let count = config::parse_setting::<usize>("count")?.unwrap_or(MAX_RESOURCES_TRIED);
                let held = hold_resources(count);
                Ok(Ack::with_reference(format!("holding {held} resources")))
            }
            Some("hold-memory") => {
                let mib = config::parse_setting::<usize>("mib")?.unwrap_or(32);
                let held = hold_memory(mib);
                rescind_guest::http::Request::get(config::base_url())
                    .send()
                    .map_err(|e| SubmitError::transient(e.to_string()))?;
                Ok(Ack::with_reference(format!(
                    "held {} MiB",
                    std::hint::black_box(held).len()
                )))
            }
            Some(other) => Err(SubmitError::misconfigured(format!(
                "unknown attack {other:?}"
            ))),
        }
    }
}

rescind_guest::register_integration_processor!(Hostile);

/// `mib` blocks of 1 MiB, every page written so that the memory is really
/// used, not only reserved.
pub fn hold_memory(mib: usize) -> Vec<Vec<u8>> {
    (0..mib)
        .map(|n| {
            let mut block = vec![0u8; 1024 * 1024];
            for offset in (0..block.len()).step_by(4096) {
                block[offset] = n as u8 | 1;
            }
            block
        })
        .collect()
}

/// A text of [`BIG_REPLY_BYTES`] that starts with `what`.
pub fn big(what: &str) -> String {
    let mut text = format!("{what}:");
    text.extend(std::iter::repeat_n('x', BIG_REPLY_BYTES - text.len()));
    text
}

/// Recursion that the optimiser cannot turn into a loop (the work after the
/// call is not an accumulation it knows).
pub fn recurse(depth: u64) -> u64 {
    if depth == 0 {
        return 1;
    }
    recurse(depth - 1).wrapping_mul(31).rotate_left(3) ^ depth
}

fn echo_secret() -> Result<Ack, SubmitError> {
    let secret = config::required_secret("apiToken")?;
    let form = config::setting_or("form", "plain");
    let secret = in_form(&secret, &form)
        .ok_or_else(|| SubmitError::misconfigured(format!("unknown form {form:?}")))?;
    if config::setting("log").is_some() {
        let plain = config::required_secret("apiToken")?;
        for form in FORMS {
            log::info!("{form}: {}", in_form(&plain, form).unwrap_or_default());
        }
    }
    let said = format!("the ERP answered 401 for token {secret}");
    match config::setting_or("reply", "accepted").as_str() {
        "accepted" => Ok(Ack::with_reference(format!("ref-{secret}")).with_message(said)),
        "rejected" => Err(SubmitError::rejected(said)),
        "transient" => Err(SubmitError::transient(said)),
        "misconfigured" => Err(SubmitError::misconfigured(said)),
        "panic" => panic!("{said}"),
        other => Err(SubmitError::misconfigured(format!(
            "unknown reply {other:?}"
        ))),
    }
}

/// The forms `echo-secret` can echo a secret in.
pub const FORMS: [&str; 7] = [
    "plain",
    "base64",
    "base64url",
    "basic",
    "url",
    "form",
    "json",
];

/// `secret` in one of [`FORMS`], encoded here so that the guest needs no
/// encoding crate.
pub fn in_form(secret: &str, form: &str) -> Option<String> {
    Some(match form {
        "plain" => secret.to_owned(),
        "base64" => base64(secret.as_bytes(), STANDARD_ALPHABET, true),
        "base64url" => base64(secret.as_bytes(), URL_SAFE_ALPHABET, false),
        "basic" => format!(
            "Authorization: Basic {}",
            base64(
                format!("svc-user:{secret}").as_bytes(),
                STANDARD_ALPHABET,
                true
            )
        ),
        "url" => percent(secret, false),
        "form" => percent(secret, true),
        "json" => {
            let mut out = String::new();
            for c in secret.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out
        }
        _ => return None,
    })
}

const STANDARD_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let bits = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                out.push(char::from(alphabet[((bits >> (18 - 6 * i)) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

fn percent(text: &str, plus_for_space: bool) -> String {
    let mut out = String::new();
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' if plus_for_space => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Creates up to `at_most` pollables without dropping any; answers how many
/// it holds if the host never refused one.
#[cfg(target_arch = "wasm32")]
fn hold_resources(at_most: usize) -> usize {
    for held in 0..at_most {
        let pollable = wasip2::clocks::monotonic_clock::subscribe_duration(1_000_000_000);
        std::mem::forget(pollable);
        if held % 100_000 == 0 {
            log::info!("holding {held} resources");
        }
    }
    at_most
}

/// Natively there is no WASI table to fill.
#[cfg(not(target_arch = "wasm32"))]
fn hold_resources(_at_most: usize) -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rescind_guest::testing::{Connection, sample_cancellation};

    fn attack(name: &str) -> Connection {
        Connection::new("http://127.0.0.1:9")
            .setting("attack", name)
            .secret("apiToken", "tok-1")
    }

    #[test]
    fn big_texts_are_five_megabytes() {
        let ack = attack("big-reply")
            .submit::<Hostile>(&sample_cancellation())
            .unwrap();
        assert_eq!(ack.erp_reference.unwrap().len(), BIG_REPLY_BYTES);
        assert_eq!(ack.message.unwrap().len(), BIG_REPLY_BYTES);
    }

    #[test]
    fn every_reply_carries_the_secret() {
        for reply in ["accepted", "rejected", "transient", "misconfigured"] {
            let result = attack("echo-secret")
                .setting("reply", reply)
                .submit::<Hostile>(&sample_cancellation());
            let text = match result {
                Ok(ack) => ack.message.unwrap(),
                Err(error) => error.message().to_owned(),
            };
            assert!(text.contains("tok-1"), "{reply}: {text}");
        }
    }

    #[test]
    fn secrets_are_encoded_as_the_usual_encoders_do() {
        for (form, expected) in [
            ("plain", "a b/\"c"),
            ("base64", "YSBiLyJj"),
            ("base64url", "YSBiLyJj"),
            ("url", "a%20b%2F%22c"),
            ("form", "a+b%2F%22c"),
            ("json", "a b/\\\"c"),
            ("basic", "Authorization: Basic c3ZjLXVzZXI6YSBiLyJj"),
        ] {
            assert_eq!(in_form("a b/\"c", form).unwrap(), expected, "{form}");
        }
        assert_eq!(in_form("?>?", "base64").unwrap(), "Pz4/");
        assert_eq!(in_form("?>?", "base64url").unwrap(), "Pz4_");
        assert_eq!(in_form("ab", "base64").unwrap(), "YWI=");
        assert_eq!(in_form("ab", "base64url").unwrap(), "YWI");
        assert_eq!(in_form("x", "rot13"), None);
    }

    #[test]
    fn a_shallow_recursion_returns() {
        let ack = attack("recursion")
            .setting("depth", "10")
            .submit::<Hostile>(&sample_cancellation())
            .unwrap();
        assert!(ack.erp_reference.unwrap().starts_with("recursed: "));
    }
}
