//! What an identifier of an order may be: its number, customer number,
//! business code, website, status code, ERP numbers, SKUs, payment ids and
//! methods, warehouses. The API takes them from callers and hands them to
//! ERPs, logs and URLs, so each has a bound and no invisible characters.
//!
//! **Choice:** 1 to [`MAX_IDENTIFIER_CHARS`] characters, none of them a
//! control character, with no space at either end (`" SO-1"` and `"SO-1"`
//! would otherwise be two orders that look the same). An order holds at most
//! [`MAX_LINES`] lines, [`MAX_PAYMENTS`] payments and [`MAX_ALLOCATIONS`]
//! allocations.

/// The longest identifier, in characters.
pub const MAX_IDENTIFIER_CHARS: usize = 100;
/// The most lines an order may have.
pub const MAX_LINES: usize = 1_000;
/// The most payments an order may have.
pub const MAX_PAYMENTS: usize = 50;
/// The most allocations an order may have.
pub const MAX_ALLOCATIONS: usize = 5_000;

/// What is wrong with an identifier, as the field error says it.
pub fn identifier_problem(value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return Some("must not be blank".to_owned());
    }
    let length = value.chars().count();
    if length > MAX_IDENTIFIER_CHARS {
        return Some(format!(
            "is {length} characters long; at most {MAX_IDENTIFIER_CHARS} are allowed"
        ));
    }
    if value.chars().any(char::is_control) {
        return Some("must not contain control characters".to_owned());
    }
    if value.trim() != value {
        return Some("must not start or end with a space".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_table() {
        let long = "x".repeat(MAX_IDENTIFIER_CHARS);
        let too_long = "x".repeat(MAX_IDENTIFIER_CHARS + 1);
        let accented = "é".repeat(MAX_IDENTIFIER_CHARS);
        let cases: &[(&str, Option<&str>)] = &[
            ("SO-1001", None),
            ("Order 17/B", None),
            (&long, None),
            // characters, not bytes
            (&accented, None),
            ("", Some("must not be blank")),
            ("   ", Some("must not be blank")),
            (
                &too_long,
                Some("is 101 characters long; at most 100 are allowed"),
            ),
            ("SO\n1", Some("must not contain control characters")),
            ("SO\u{7f}", Some("must not contain control characters")),
            (" SO-1", Some("must not start or end with a space")),
            ("SO-1 ", Some("must not start or end with a space")),
        ];
        for (value, expected) in cases {
            assert_eq!(identifier_problem(value).as_deref(), *expected, "{value:?}");
        }
    }
}
