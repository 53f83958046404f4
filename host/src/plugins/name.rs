//! What a plugin name may be: the one rule that the API upload, the
//! registry, the watched folder, job definitions and the CLI all call.
//!
//! Names are lowercase so that `Webhook` and `webhook` can never be two
//! plugins: on a case-insensitive file system (the watched folder on macOS)
//! they would be one file, and an operator reading a job definition could
//! not tell them apart.

use crate::plugins::error::PluginError;

/// The longest plugin name, in bytes.
pub const MAX_PLUGIN_NAME_BYTES: usize = 64;

/// Checks a plugin name: 1 to [`MAX_PLUGIN_NAME_BYTES`] lowercase ASCII
/// letters, digits, `-` or `_`. The refusal says what to write instead
/// when the only fault is case.
pub fn validate_plugin_name(name: &str) -> Result<(), PluginError> {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
    if !name.is_empty() && name.len() <= MAX_PLUGIN_NAME_BYTES && name.bytes().all(allowed) {
        return Ok(());
    }
    let lowercase = name.to_ascii_lowercase();
    let only_case = name.bytes().any(|b| b.is_ascii_uppercase())
        && lowercase.len() <= MAX_PLUGIN_NAME_BYTES
        && lowercase.bytes().all(allowed);
    Err(PluginError::InvalidName {
        name: name.to_owned(),
        hint: if only_case {
            format!("plugin names are lowercase: use `{lowercase}`")
        } else {
            format!("use 1 to {MAX_PLUGIN_NAME_BYTES} lowercase ASCII letters, digits, `-` or `_`")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_table() {
        for (name, ok) in [
            ("webhook", true),
            ("aaas-v2_test", true),
            ("erp9", true),
            (&"x".repeat(MAX_PLUGIN_NAME_BYTES), true),
            ("", false),
            ("Webhook", false),
            ("WEBHOOK", false),
            ("has space", false),
            ("../etc", false),
            ("café", false),
            (&"x".repeat(MAX_PLUGIN_NAME_BYTES + 1), false),
        ] {
            assert_eq!(validate_plugin_name(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn a_name_wrong_only_in_case_is_told_its_lowercase_form() {
        let error = validate_plugin_name("Webhook").unwrap_err().to_string();
        assert_eq!(
            error,
            "`Webhook` is not a valid plugin name: plugin names are lowercase: use `webhook`"
        );
        let error = validate_plugin_name("Web hook").unwrap_err().to_string();
        assert!(error.contains("lowercase ASCII letters"), "{error}");
    }
}
