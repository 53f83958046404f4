//! The text a plugin hands back (the ack's ERP reference and message, the
//! rejected / transient / misconfigured message, a panic message): stored
//! with the job and shown to staff, so bounded and redacted before anything
//! keeps it, exactly as the call's log is.
//!
//! Pure text handling (no wasmtime).

use std::borrow::Cow;

use crate::plugins::log::Redactor;

/// The most bytes kept of one text a plugin returns. Longer text is cut on
/// a character boundary and ends with [`cut_marker`].
pub const MAX_RETURNED_TEXT_BYTES: usize = 4 * 1024;

/// What ends a cut text: says that it was cut and how long it was.
pub fn cut_marker(original_bytes: usize) -> String {
    format!("… [cut: {original_bytes} bytes returned, {MAX_RETURNED_TEXT_BYTES} kept]")
}

/// `text` with every secret value of the connection replaced by
/// `[redacted]`, cut to [`MAX_RETURNED_TEXT_BYTES`] with a marker when
/// longer. A secret that straddles the cut is redacted too: no prefix of it
/// survives.
pub(crate) fn bound_returned_text(text: &str, redactor: &Redactor) -> String {
    bound_text(text, text.len(), MAX_RETURNED_TEXT_BYTES, redactor, || {
        cut_marker(text.len())
    })
}

/// `window`, the start of a text `original_bytes` long, with every secret
/// redacted and cut to `max` bytes ending with `marker()` when the text (or
/// its redaction) is longer; the marker is made only then (most texts are
/// short). The window must reach at least `redactor.longest()` bytes past
/// `max` when the text does, so that a secret straddling the cut is
/// recognised and redacted whole.
pub(crate) fn bound_text(
    window: &str,
    original_bytes: usize,
    max: usize,
    redactor: &Redactor,
    marker: impl FnOnce() -> String,
) -> String {
    if window.len() >= original_bytes && window.len() <= max {
        let redacted = redactor.redact(window);
        if redacted.len() <= max {
            return redacted.into_owned();
        }
    }
    // Keep enough beyond the bound to recognise a secret that starts just
    // before it, redact, then cut.
    let end = floor_char_boundary(window, max + redactor.longest());
    let cut = end < window.len() || window.len() < original_bytes;
    let redacted: Cow<'_, str> = redactor.redact_with_cut(&window[..end], cut);
    let marker = marker();
    let keep = floor_char_boundary(&redacted, max.saturating_sub(marker.len()));
    format!("{}{marker}", &redacted[..keep])
}

/// The largest char boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut end = at.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::log::REDACTED;

    const SECRET: &str = "s3cret-value-0123";

    fn redactor() -> Redactor {
        Redactor::new([SECRET])
    }

    #[test]
    fn short_text_is_kept_with_secrets_redacted() {
        let r = redactor();
        for (text, expected) in [
            ("ok", "ok".to_owned()),
            ("", String::new()),
            (
                &format!("ERP said: bad token {SECRET}"),
                format!("ERP said: bad token {REDACTED}"),
            ),
        ] {
            assert_eq!(bound_returned_text(text, &r), expected, "{text:?}");
        }
    }

    #[test]
    fn text_at_the_bound_is_kept_whole_and_one_byte_more_is_cut() {
        let r = redactor();
        let at = "a".repeat(MAX_RETURNED_TEXT_BYTES);
        assert_eq!(bound_returned_text(&at, &r), at);

        let over = "a".repeat(MAX_RETURNED_TEXT_BYTES + 1);
        let kept = bound_returned_text(&over, &r);
        assert_eq!(kept.len(), MAX_RETURNED_TEXT_BYTES);
        assert!(
            kept.ends_with(&cut_marker(MAX_RETURNED_TEXT_BYTES + 1)),
            "{kept}"
        );
    }

    #[test]
    fn five_megabytes_become_four_kibibytes_with_the_marker() {
        let text = "x".repeat(5 * 1024 * 1024);
        let kept = bound_returned_text(&text, &redactor());
        assert!(kept.len() <= MAX_RETURNED_TEXT_BYTES, "{}", kept.len());
        assert!(kept.starts_with("xxxx"));
        assert!(
            kept.ends_with("… [cut: 5242880 bytes returned, 4096 kept]"),
            "{kept}"
        );
    }

    #[test]
    fn a_secret_straddling_the_cut_leaves_no_prefix() {
        let r = redactor();
        // Every position of the secret around the cut point.
        for offset in 0..SECRET.len() + 60 {
            let mut text = "y".repeat(MAX_RETURNED_TEXT_BYTES - 50 - offset);
            text.push_str(SECRET);
            text.push_str(&"z".repeat(200));
            let kept = bound_returned_text(&text, &r);
            assert!(kept.len() <= MAX_RETURNED_TEXT_BYTES, "{offset}");
            assert!(!kept.contains("s3cr"), "{offset}: {kept}");
            assert!(!kept.contains(SECRET), "{offset}");
        }
    }

    #[test]
    fn redaction_that_lengthens_text_past_the_bound_is_cut_too() {
        // A one-byte secret that becomes `[redacted]` everywhere.
        let r = Redactor::new(["q"]);
        let text = "q".repeat(MAX_RETURNED_TEXT_BYTES);
        let kept = bound_returned_text(&text, &r);
        assert!(kept.len() <= MAX_RETURNED_TEXT_BYTES);
        assert!(!kept.contains('q'), "{kept}");
    }

    #[test]
    fn multibyte_text_is_cut_on_a_character_boundary() {
        let text = "é".repeat(MAX_RETURNED_TEXT_BYTES);
        let kept = bound_returned_text(&text, &Redactor::default());
        assert!(kept.len() <= MAX_RETURNED_TEXT_BYTES);
        assert!(kept.starts_with('é'));
    }
}
