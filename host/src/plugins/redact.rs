//! Secret redaction: every text a plugin or an ERP produced (its log, what
//! it returns, the host's own notes about it) has the connection's secret
//! values replaced by [`REDACTED`] before anything stores or shows it.
//!
//! A secret leaks in more forms than its plain value, so each is searched
//! for in the forms it travels in:
//!
//! - plain;
//! - base64, standard and URL-safe alphabets, padded and unpadded, and the
//!   part of its encoding that does not depend on what surrounds it at each
//!   of the three byte alignments: so the secret is found inside the base64
//!   of a longer text too, such as HTTP Basic auth's `user:secret`;
//! - percent-encoded (RFC 3986, upper- and lower-case hex; the
//!   `application/x-www-form-urlencoded` form with `+` for space; the form
//!   JavaScript's `encodeURIComponent` writes);
//! - JSON-escaped (as `serde_json` writes a string, with non-ASCII as
//!   `\uXXXX`, and with `/` as `\/`).
//!
//! All forms of all secrets go into one Aho-Corasick automaton, so a text is
//! scanned once whatever the number of secrets: linear in its length.
//! Building that automaton costs more than the rest of a short plugin call,
//! so the runtime keeps the redactors it built ([`RedactorCache`]), one per
//! set of secret values, and a connection's calls share one.
//!
//! Pure text handling (no wasmtime, no I/O).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hashlink::LruCache;

/// What replaces a secret value in stored text.
pub const REDACTED: &str = "[redacted]";

/// The shortest fragment of a base64 encoding searched for on its own (the
/// part that encodes the secret at one alignment inside a longer text).
/// Shorter fragments would redact unrelated base64 by chance.
const MIN_BASE64_FRAGMENT: usize = 6;

/// Replaces every occurrence of any secret value, in any of the forms it
/// leaks in (see the module docs), by [`REDACTED`]. Cheap to clone.
#[derive(Clone, Default)]
pub struct Redactor {
    /// The patterns (every form of every secret), deduplicated.
    patterns: Arc<[String]>,
    /// One automaton over all patterns; `None` without secrets.
    automaton: Option<AhoCorasick>,
    /// The longest pattern, in bytes.
    longest: usize,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The patterns are the secrets: never print them.
        f.debug_struct("Redactor")
            .field("patterns", &self.patterns.len())
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor for these secret values (empty ones are ignored).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut patterns: Vec<String> = Vec::new();
        for secret in secrets.into_iter().map(Into::into) {
            if !secret.is_empty() {
                patterns.extend(forms(&secret));
            }
        }
        patterns.retain(|p| !p.is_empty());
        patterns.sort_unstable();
        patterns.dedup();
        let longest = patterns.iter().map(String::len).max().unwrap_or(0);
        // Standard match semantics: the only ones that report overlapping
        // matches, which redaction needs (see `redact_with_cut`).
        let automaton = (!patterns.is_empty()).then(|| {
            AhoCorasick::new(&patterns).expect("an automaton over a few short patterns builds")
        });
        Self {
            patterns: patterns.into(),
            automaton,
            longest,
        }
    }

    /// The longest form of any secret, in bytes (0 without secrets): how far
    /// past a cut a caller keeps text so that a secret straddling the cut
    /// is still recognised.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// Redacts whole occurrences. Matches may overlap (`abc` and `bcd` in
    /// `abcd`, or two forms of one secret); their union is redacted as one
    /// span so that no fragment of either survives.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.redact_with_cut(text, false)
    }

    /// Like [`Self::redact`], and when `cut` is set (the text was cut off
    /// in the middle), a tail that could be the start of a secret in any of
    /// its forms is redacted too.
    pub fn redact_with_cut<'a>(&self, text: &'a str, cut: bool) -> Cow<'a, str> {
        let Some(automaton) = &self.automaton else {
            return Cow::Borrowed(text);
        };
        let mut spans = Spans::new(text);
        for found in automaton.find_overlapping_iter(text) {
            spans.push(found.start(), found.end());
            // Matches come in order of their end, and none is longer than
            // `longest`: no later one starts before this one's end less
            // `longest`, so the spans ending before that are final.
            spans.write_final(found.end().saturating_sub(self.longest));
        }
        if cut && let Some(start) = self.partial_tail(text) {
            spans.push(start, text.len());
        }
        spans.finish()
    }

    /// Where the longest tail of `text` that is a proper prefix of a
    /// pattern starts. Only the last `longest - 1` bytes can be one; each
    /// pattern is matched against them with KMP, so the cost does not
    /// depend on the text's length nor grow with the square of a pattern's.
    fn partial_tail(&self, text: &str) -> Option<usize> {
        let window = self.longest.saturating_sub(1);
        let mut from = text.len().saturating_sub(window);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let tail = &text.as_bytes()[from..];
        self.patterns
            .iter()
            .map(|pattern| longest_prefix_at_end(pattern.as_bytes(), tail))
            .max()
            .filter(|&n| n > 0)
            // A pattern starts with a character's first byte, so the tail
            // it matches starts on a character boundary.
            .map(|n| text.len() - n)
    }
}

/// The spans to redact in one text, and the redacted text written so far:
/// a span is written out as soon as no later match can reach it, so the
/// text is copied right behind the scan (while it is still in the cache)
/// instead of in a second pass over all of it.
struct Spans<'a> {
    text: &'a str,
    /// Spans not yet final, sorted and disjoint: later matches may still
    /// merge into them.
    pending: VecDeque<(usize, usize)>,
    /// The redacted text up to `copied`; `None` until the first span.
    out: Option<String>,
    /// How much of `text` `out` covers.
    copied: usize,
}

impl<'a> Spans<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            pending: VecDeque::new(),
            out: None,
            copied: 0,
        }
    }

    /// Adds a match. Overlapping matches come in order of their end:
    /// merging each into the spans before it keeps the spans sorted and
    /// disjoint in one pass (amortised: a span is merged away at most
    /// once). Touching spans merge too, so that no fragment survives
    /// between two secrets.
    fn push(&mut self, start: usize, end: usize) {
        let (mut start, mut end) = (start, end);
        while let Some(&(s, e)) = self.pending.back() {
            if e < start {
                break;
            }
            start = start.min(s);
            end = end.max(e);
            self.pending.pop_back();
        }
        self.pending.push_back((start, end));
    }

    /// Writes out the spans that end before `before`, which no later match
    /// can merge with.
    fn write_final(&mut self, before: usize) {
        while let Some(&(start, end)) = self.pending.front() {
            if end >= before {
                break;
            }
            self.pending.pop_front();
            self.write(start, end);
        }
    }

    fn write(&mut self, start: usize, end: usize) {
        let text = self.text;
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[self.copied..start]);
        out.push_str(REDACTED);
        self.copied = end;
    }

    /// The redacted text: borrowed when there was nothing to redact.
    fn finish(mut self) -> Cow<'a, str> {
        while let Some((start, end)) = self.pending.pop_front() {
            self.write(start, end);
        }
        match self.out {
            None => Cow::Borrowed(self.text),
            Some(mut out) => {
                out.push_str(&self.text[self.copied..]);
                Cow::Owned(out)
            }
        }
    }
}

/// The redactors built so far, by the secret values they redact, so that
/// the calls of one connection share one instead of building the same
/// automaton for each call. Bounded: past `capacity` sets of secrets, the
/// one used least recently is dropped (a rotated secret's old redactor
/// goes that way too). The values are held as long as their redactor is,
/// in the memory of the process that already holds them for the calls.
pub struct RedactorCache {
    built: Mutex<LruCache<Vec<String>, Redactor>>,
}

impl fmt::Debug for RedactorCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys are the secrets: never print them.
        f.debug_struct("RedactorCache")
            .field("held", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl RedactorCache {
    /// A cache of at most `capacity` redactors (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            built: Mutex::new(LruCache::new(capacity.max(1))),
        }
    }

    /// The redactor of these secret values, as [`Redactor::new`] builds
    /// it: the one built before for the same values (in any order, empty
    /// ones and repeats ignored), or a new one, kept for the next call.
    pub fn redactor<I, S>(&self, secrets: I) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut key: Vec<String> = secrets
            .into_iter()
            .map(Into::into)
            .filter(|secret| !secret.is_empty())
            .collect();
        if key.is_empty() {
            return Redactor::default();
        }
        key.sort_unstable();
        key.dedup();
        if let Some(redactor) = self.lock().get(&key) {
            return redactor.clone();
        }
        // Built outside the lock: calls of other connections go on. Two
        // calls missing at once both build it; the second insert wins.
        let redactor = Redactor::new(key.iter().map(String::as_str));
        self.lock().insert(key, redactor.clone());
        redactor
    }

    /// How many redactors are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Vec<String>, Redactor>> {
        // A panic while holding the lock leaves a consistent cache (each
        // operation is one call on it).
        self.built
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The length of the longest proper prefix of `pattern` that `text` ends
/// with (Knuth-Morris-Pratt).
fn longest_prefix_at_end(pattern: &[u8], text: &[u8]) -> usize {
    if pattern.is_empty() {
        return 0;
    }
    // failure[i]: the longest proper border of pattern[..=i].
    let mut failure = vec![0usize; pattern.len()];
    let mut k = 0;
    for i in 1..pattern.len() {
        while k > 0 && pattern[i] != pattern[k] {
            k = failure[k - 1];
        }
        if pattern[i] == pattern[k] {
            k += 1;
        }
        failure[i] = k;
    }
    let mut matched = 0;
    for &byte in text {
        if matched == pattern.len() {
            matched = failure[matched - 1];
        }
        while matched > 0 && byte != pattern[matched] {
            matched = failure[matched - 1];
        }
        if byte == pattern[matched] {
            matched += 1;
        }
    }
    if matched == pattern.len() {
        // A whole occurrence is redacted as a match; a proper prefix of the
        // pattern may still end here.
        matched = failure[matched - 1];
    }
    matched
}

/// Every form `secret` is searched for in.
fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned()];
    forms.extend(base64_forms(secret.as_bytes()));
    forms.extend(percent_forms(secret));
    forms.extend(json_forms(secret));
    forms
}

/// The secret's base64 (both alphabets, padded and not) and the fragments
/// that encode it at each alignment inside a longer encoded text.
fn base64_forms(secret: &[u8]) -> Vec<String> {
    let mut forms = Vec::new();
    for (padded, unpadded) in [(&STANDARD, &STANDARD_NO_PAD), (&URL_SAFE, &URL_SAFE_NO_PAD)] {
        forms.push(padded.encode(secret));
        for offset in 0..3 {
            // `offset` bytes before the secret: base64 characters encode 6
            // bits, so only those whose bits all come from the secret are
            // the same whatever surrounds it.
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(secret);
            let encoded = unpadded.encode(&shifted);
            let first = (8 * offset).div_ceil(6);
            let end = (8 * (offset + secret.len())) / 6;
            if end >= first + MIN_BASE64_FRAGMENT {
                forms.push(encoded[first..end].to_owned());
            }
        }
    }
    forms
}

/// The secret percent-encoded as URLs and forms carry it.
fn percent_forms(secret: &str) -> Vec<String> {
    // RFC 3986 unreserved characters stay as they are.
    let rfc3986 = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    // What `encodeURIComponent` leaves alone.
    let component = |b: u8| b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b);
    // application/x-www-form-urlencoded (WHATWG URL standard).
    let form = |b: u8| b.is_ascii_alphanumeric() || b"*-._".contains(&b);
    vec![
        percent_encode(secret, rfc3986, false, true),
        percent_encode(secret, rfc3986, false, false),
        percent_encode(secret, component, false, true),
        percent_encode(secret, form, true, true),
        percent_encode(secret, form, true, false),
    ]
}

fn percent_encode(secret: &str, keep: impl Fn(u8) -> bool, plus: bool, upper: bool) -> String {
    let mut out = String::with_capacity(secret.len() * 3);
    for &byte in secret.as_bytes() {
        if keep(byte) {
            out.push(char::from(byte));
        } else if plus && byte == b' ' {
            out.push('+');
        } else if upper {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push_str(&format!("%{byte:02x}"));
        }
    }
    out
}

/// The secret as it appears inside a JSON string.
fn json_forms(secret: &str) -> Vec<String> {
    let quoted = serde_json::to_string(secret).unwrap_or_default();
    let escaped = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned();
    // Non-ASCII as `\uXXXX` (surrogate pairs beyond the BMP), as encoders
    // that write ASCII-only JSON do.
    let mut ascii = String::with_capacity(escaped.len());
    for c in escaped.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    let slashes = escaped.replace('/', "\\/");
    let ascii_upper = upper_hex_escapes(&ascii);
    vec![escaped, ascii, ascii_upper, slashes]
}

/// `\u00e9` → `\u00E9`.
fn upper_hex_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\\u") {
        out.push_str(&rest[..at + 2]);
        let hex_end = (at + 6).min(rest.len());
        out.push_str(&rest[at + 2..hex_end].to_ascii_uppercase());
        rest = &rest[hex_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_redactor_redacts_as_a_new_one_and_is_shared_by_equal_secrets() {
        let cache = RedactorCache::new(4);
        let first = cache.redactor(["hunter2", "s3cret", ""]);
        // The same values in another order, repeated: the same redactor.
        let again = cache.redactor(["s3cret", "hunter2", "s3cret"]);
        assert!(Arc::ptr_eq(&first.patterns, &again.patterns));
        assert_eq!(cache.len(), 1);
        let fresh = Redactor::new(["hunter2", "s3cret"]);
        let text = format!(
            "Basic {} and s3cret and {} and %73%33cret",
            STANDARD.encode("user:hunter2"),
            serde_json::to_string("hunter2").unwrap()
        );
        assert_eq!(again.redact(&text), fresh.redact(&text));
        assert!(!again.redact(&text).contains("s3cret"));
        assert!(!again.redact(&text).contains("hunter2"));
    }

    #[test]
    fn a_rotated_secret_gets_a_redactor_of_its_own() {
        let cache = RedactorCache::new(4);
        let old = cache.redactor(["old-secret-value"]);
        let new = cache.redactor(["new-secret-value"]);
        assert_eq!(new.redact("x new-secret-value y"), "x [redacted] y");
        assert_eq!(old.redact("x new-secret-value y"), "x new-secret-value y");
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity_and_drops_the_least_recently_used() {
        let cache = RedactorCache::new(3);
        let kept = cache.redactor(["kept-secret"]);
        let first_other = cache.redactor(["secret-0"]);
        for n in 1..10 {
            // Used between the others: never the least recent.
            let again = cache.redactor(["kept-secret"]);
            assert!(Arc::ptr_eq(&kept.patterns, &again.patterns));
            cache.redactor([format!("secret-{n}")]);
            assert!(cache.len() <= 3, "{} held", cache.len());
        }
        let again = cache.redactor(["kept-secret"]);
        assert!(Arc::ptr_eq(&kept.patterns, &again.patterns));
        // The first of the others was dropped long ago: built anew.
        assert_eq!(cache.len(), 3);
        let rebuilt = cache.redactor(["secret-0"]);
        assert!(!Arc::ptr_eq(&first_other.patterns, &rebuilt.patterns));
        assert_eq!(rebuilt.redact("a secret-0 b"), "a [redacted] b");
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn no_secrets_redact_nothing_and_are_not_held() {
        let cache = RedactorCache::new(2);
        let none = cache.redactor(["", ""]);
        assert_eq!(none.redact("anything at all"), "anything at all");
        assert_eq!(cache.len(), 0);
        // The cache's debug output names no secret.
        cache.redactor(["do-not-print-me"]);
        assert!(!format!("{cache:?}").contains("do-not-print-me"));
    }

    #[test]
    fn redaction_table() {
        let r = Redactor::new(["s3cret", "abc", "bcd", ""]);
        let cases = [
            ("no secret here", "no secret here"),
            ("token=s3cret;", "token=[redacted];"),
            ("s3crets3cret", "[redacted]"),
            ("abcd", "[redacted]"),
            ("abc bcd", "[redacted] [redacted]"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(r.redact(input), expected, "{input:?}");
        }
    }

    #[test]
    fn a_cut_line_loses_a_possible_secret_prefix() {
        let r = Redactor::new(["topsecret"]);
        assert_eq!(r.redact_with_cut("key=tops", true), "key=[redacted]");
        assert_eq!(r.redact_with_cut("key=tops", false), "key=tops");
        assert_eq!(r.redact_with_cut("key=xyz", true), "key=xyz");
        // The start of an encoded form, too.
        let b64 = STANDARD.encode("topsecret");
        let text = format!("auth={}", &b64[..5]);
        assert_eq!(r.redact_with_cut(&text, true), "auth=[redacted]");
    }

    #[test]
    fn prefixes_at_the_end_table() {
        for (pattern, text, expected) in [
            ("abcab", "xxabca", 4),
            ("abcab", "xxabcab", 2),
            ("aaaa", "baaa", 3),
            ("aaaa", "aaaaaaa", 3),
            ("abc", "xyz", 0),
            ("abc", "", 0),
            ("", "abc", 0),
        ] {
            assert_eq!(
                longest_prefix_at_end(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern:?} in {text:?}"
            );
        }
    }

    /// The forms a secret leaks in, each in a sentence, and what is left
    /// of the sentence.
    #[test]
    fn every_form_of_a_secret_is_redacted() {
        let secret = "p@ss w/rd+ü\"é:1";
        let r = Redactor::new([secret]);
        let b64 = |alphabet: &base64::engine::GeneralPurpose, text: &str| alphabet.encode(text);
        let basic = b64(&STANDARD, &format!("alice:{secret}"));
        let cases: Vec<(&str, String)> = vec![
            ("plain", format!("token {secret} refused")),
            (
                "base64",
                format!("token {} refused", b64(&STANDARD, secret)),
            ),
            (
                "base64 url-safe",
                format!("token {} refused", b64(&URL_SAFE, secret)),
            ),
            (
                "base64 unpadded",
                format!("token {} refused", b64(&URL_SAFE_NO_PAD, secret)),
            ),
            ("basic auth", format!("Authorization: Basic {basic}")),
            (
                "basic auth, url-safe",
                format!("Basic {}", b64(&URL_SAFE, &format!("bob:{secret}"))),
            ),
            (
                "base64 of a longer text",
                format!("{} end", b64(&STANDARD, &format!("xy{secret}tail"))),
            ),
            (
                "percent-encoded",
                format!(
                    "?token={}&x=1",
                    percent_encode(secret, |b| b.is_ascii_alphanumeric(), false, true)
                ),
            ),
            (
                "form-encoded",
                format!("token={}&x=1", percent_forms(secret)[3]),
            ),
            (
                "json",
                format!("{{\"token\":{}}}", serde_json::to_string(secret).unwrap()),
            ),
            (
                "json ascii",
                format!("{{\"token\":\"{}\"}}", json_forms(secret)[1]),
            ),
        ];
        for (what, text) in cases {
            let redacted = r.redact(&text);
            assert!(redacted.contains(REDACTED), "{what}: {text} → {redacted}");
            for leak in [
                "ss w",
                "w/rd",
                "ss%20w",
                "ss+w",
                &b64(&STANDARD, secret)[..8],
            ] {
                assert!(
                    !redacted.contains(leak),
                    "{what}: {leak:?} left in {redacted}"
                );
            }
        }
    }

    #[test]
    fn the_base64_of_user_and_secret_keeps_no_decodable_part_of_the_secret() {
        let secret = "correct-horse-battery-staple";
        let r = Redactor::new([secret]);
        for user in ["", "a", "ab", "abc", "svc-account"] {
            let encoded = STANDARD.encode(format!("{user}:{secret}"));
            let redacted = r.redact(&encoded);
            // What is left around `[redacted]` is the encoding of `user:`
            // and at most the few characters that mix in bits of the
            // secret at either edge: no three-byte run of it.
            let kept = redacted.replace(REDACTED, "");
            let prefix = STANDARD.encode(format!("{user}:")).len();
            assert!(kept.len() <= prefix + 4, "{user:?}: {redacted}");
            for window in secret.as_bytes().windows(3) {
                let piece = STANDARD_NO_PAD.encode(window);
                assert!(!kept.contains(&piece), "{user:?}: {redacted}");
            }
        }
    }

    #[test]
    fn short_secrets_do_not_redact_unrelated_base64() {
        // A three-byte secret has only short base64 fragments: they are not
        // searched for on their own, only its full encoding.
        let r = Redactor::new(["abc"]);
        assert_eq!(r.redact("WWWabcWWW YWJj"), "WWW[redacted]WWW [redacted]");
        assert_eq!(r.redact("eHlhYmN6"), "eHlhYmN6");
    }

    #[test]
    fn a_long_line_with_many_secrets_is_redacted_exactly() {
        // 200 secrets whose JSON and percent-encoded forms differ from
        // their plain value.
        let secrets: Vec<String> = (0..200)
            .map(|i| format!("secret {i:03}/\"{}", "z".repeat(i % 17)))
            .collect();
        let r = Redactor::new(secrets.iter().cloned());
        // One line of about 2 MB: every tenth chunk carries a secret in one
        // of its forms.
        let mut text = String::new();
        let mut expected = String::new();
        for i in 0..60_000 {
            let filler = format!("chunk {i} of plain words, ");
            text.push_str(&filler);
            expected.push_str(&filler);
            if i % 10 == 0 {
                let secret = &secrets[(i / 10) % secrets.len()];
                let form = match (i / 10) % 4 {
                    0 => secret.clone(),
                    1 => STANDARD.encode(secret),
                    2 => json_forms(secret)[0].clone(),
                    _ => percent_forms(secret)[3].clone(),
                };
                text.push_str(&form);
                expected.push_str(REDACTED);
                text.push(' ');
                expected.push(' ');
            }
        }
        assert!(text.len() > 1_500_000, "{}", text.len());
        assert_eq!(text.lines().count(), 1);
        assert_eq!(r.redact(&text), expected);
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// What redaction must give, the slow way: every byte inside any
        /// occurrence of any pattern (overlaps included) is covered, each
        /// run of covered bytes becomes one [`REDACTED`], and two
        /// occurrences that touch make one run.
        fn reference(r: &Redactor, text: &str) -> String {
            let mut spans: Vec<(usize, usize)> = Vec::new();
            for pattern in r.patterns.iter() {
                for start in 0..text.len() {
                    if text.as_bytes()[start..].starts_with(pattern.as_bytes()) {
                        spans.push((start, start + pattern.len()));
                    }
                }
            }
            spans.sort_unstable();
            let mut merged: Vec<(usize, usize)> = Vec::new();
            for (start, end) in spans {
                match merged.last_mut() {
                    Some(last) if start <= last.1 => last.1 = last.1.max(end),
                    _ => merged.push((start, end)),
                }
            }
            let mut out = String::new();
            let mut copied = 0;
            for (start, end) in merged {
                out.push_str(&text[copied..start]);
                out.push_str(REDACTED);
                copied = end;
            }
            out.push_str(&text[copied..]);
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]

            /// Texts over a small alphabet, so that secrets overlap, touch
            /// and repeat often, redact exactly as the slow reference does,
            /// and nothing is copied when nothing matched.
            #[test]
            fn redaction_matches_the_slow_reference(
                secrets in proptest::collection::vec("[ab%2]{1,6}", 1..4),
                text in "[ab%2 ]{0,300}",
            ) {
                let r = Redactor::new(secrets.iter().cloned());
                let redacted = r.redact(&text);
                let expected = reference(&r, &text);
                prop_assert_eq!(redacted.as_ref(), expected.as_str());
                if redacted.as_ref() == text.as_str() {
                    prop_assert!(matches!(redacted, Cow::Borrowed(_)));
                }
            }
        }
    }

    #[test]
    fn debug_does_not_show_secrets() {
        let r = Redactor::new(["hunter2"]);
        let shown = format!("{r:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains(&STANDARD.encode("hunter2")), "{shown}");
    }
}
