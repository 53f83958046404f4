//! Credentials: what the bootstrap admin token must be, what a new API key
//! must be, and how one is made. `POST /v1/admin/api-keys` and `rescind keys
//! create` both go through [`KeyRequest::validate`] and [`create_key`], so a
//! key made on the command line obeys the same rules as one made over HTTP.
//!
//! Tokens are `rsk_` and 64 hex digits (256 random bits). The store keeps a
//! SHA-256 of each and its first [`TOKEN_PREFIX_CHARS`] characters, so that
//! an operator can tell keys apart in a list without the list revealing
//! anything that signs a request in.

use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::{FieldError, identifier_problem};
use crate::store::{ApiKey, AuditActor, Role, Store, StoreError, now_ms};

/// The shortest bootstrap admin token accepted (`RESCIND_ADMIN_TOKEN`), in
/// characters: anything shorter can be guessed by someone who may try it
/// against the API.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// How many characters of a token the store keeps to show in key lists
/// (`rsk_` and four hex digits).
pub const TOKEN_PREFIX_CHARS: usize = 8;

/// The bootstrap admin token is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminTokenError {
    /// Shorter than [`MIN_ADMIN_TOKEN_CHARS`].
    #[error(
        "RESCIND_ADMIN_TOKEN is {length} characters long; it must be at least \
         {MIN_ADMIN_TOKEN_CHARS}: generate one with `openssl rand -hex 32`"
    )]
    TooShort {
        /// Its length in characters.
        length: usize,
    },
}

/// Checks the bootstrap admin token: at least [`MIN_ADMIN_TOKEN_CHARS`]
/// characters.
pub fn check_admin_token(token: &str) -> Result<(), AdminTokenError> {
    let length = token.chars().count();
    if length < MIN_ADMIN_TOKEN_CHARS {
        return Err(AdminTokenError::TooShort { length });
    }
    Ok(())
}

/// Hex SHA-256 of a token: what the store keeps.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token: `rsk_` and 64 hex digits (256 bits).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("rsk_{}", hex::encode(bytes))
}

/// How a key's token is shown in lists: its stored prefix and an ellipsis
/// (`rsk_3f2a…`).
pub fn shown_prefix(prefix: &str) -> String {
    format!("{prefix}…")
}

/// A key as asked for, before its checks (the API body, the command line's
/// flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRequest {
    /// Its name; required.
    pub name: Option<String>,
    /// `admin`, `service` or `customer`.
    pub role: String,
    /// The customer a customer key is bound to.
    pub customer_number: Option<String>,
    /// RFC 3339 time from which it is refused; `None`: never.
    pub expires_at: Option<String>,
}

/// A key that passed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// What to call the key, checked: 1 to 100 characters, not unique.
    pub name: String,
    /// What the key may do.
    pub role: Role,
    /// Bound customer (customer keys only).
    pub customer_number: Option<String>,
    /// Expiry, Unix milliseconds.
    pub expires_at_ms: Option<i64>,
}

impl KeyRequest {
    /// Checks the request at `now_ms`: a name (1 to 100 characters, no
    /// control characters, no space at either end; names need not be
    /// unique, so that a rotated key can keep its name), a known role, a
    /// customer number exactly for customer keys, an expiry in the future.
    /// Answers every problem at once.
    pub fn validate(self, now_ms: i64) -> Result<NewKey, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = match self.name {
            None => {
                errors.push(FieldError::new(
                    "name",
                    "is required: name the key after who uses it (\"storefront\", \"ci\")",
                ));
                None
            }
            Some(name) => match identifier_problem(&name) {
                Some(problem) => {
                    errors.push(FieldError::new("name", problem));
                    None
                }
                None => Some(name),
            },
        };
        let role = Role::parse(&self.role);
        if role.is_none() {
            errors.push(FieldError::new(
                "role",
                "expected \"admin\", \"service\" or \"customer\"",
            ));
        }
        let customer_number = self.customer_number;
        match (role, &customer_number) {
            (Some(Role::Customer), None) => errors.push(FieldError::new(
                "customerNumber",
                "a customer key needs the customer number it is bound to",
            )),
            (Some(Role::Admin | Role::Service), Some(_)) => errors.push(FieldError::new(
                "customerNumber",
                "only customer keys are bound to a customer",
            )),
            (Some(Role::Customer), Some(number)) => {
                if let Some(problem) = identifier_problem(number) {
                    errors.push(FieldError::new("customerNumber", problem));
                }
            }
            _ => {}
        }
        let expires_at_ms = match self.expires_at.as_deref().map(parse_time) {
            None => None,
            Some(Ok(at)) if at > now_ms => Some(at),
            Some(Ok(_)) => {
                errors.push(FieldError::new(
                    "expiresAt",
                    "is not in the future: a key must be usable when it is made",
                ));
                None
            }
            Some(Err(())) => {
                errors.push(FieldError::new(
                    "expiresAt",
                    "is not an RFC 3339 time such as 2030-01-31T00:00:00Z",
                ));
                None
            }
        };
        match (name, role) {
            (Some(name), Some(role)) if errors.is_empty() => Ok(NewKey {
                name,
                role,
                customer_number,
                expires_at_ms,
            }),
            _ => Err(errors),
        }
    }
}

/// Parses an RFC 3339 time into Unix milliseconds.
fn parse_time(text: &str) -> Result<i64, ()> {
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| ())?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| ())
}

/// A key just made, with its token (shown once, never stored).
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The key as the store keeps it: the token's digest and prefix, not
    /// the token.
    pub key: ApiKey,
    /// The bearer token itself, for the one answer that shows it.
    pub token: String,
}

/// Makes a key: a fresh token, stored as its digest and prefix.
pub async fn create_key(
    store: &Store,
    new: NewKey,
    created_by: &AuditActor,
) -> Result<CreatedKey, StoreError> {
    let token = new_token();
    let key = ApiKey {
        id: uuid::Uuid::now_v7().to_string(),
        token_sha256: token_digest(&token),
        token_prefix: Some(token.chars().take(TOKEN_PREFIX_CHARS).collect()),
        name: new.name,
        role: new.role,
        customer_number: new.customer_number,
        created_by: created_by.to_string(),
        created_at_ms: now_ms(),
        last_used_at_ms: None,
        expires_at_ms: new.expires_at_ms,
    };
    store.insert_api_key(&key).await?;
    Ok(CreatedKey { key, token })
}

/// A few words on a key for the audit log and the command line: name, role,
/// customer, expiry and id; never the token.
pub fn describe(key: &ApiKey) -> String {
    let mut text = format!("key {:?} ({}", key.name, key.role.as_str());
    if let Some(customer) = &key.customer_number {
        text.push_str(&format!(" of customer {customer}"));
    }
    if let Some(at) = key.expires_at_ms {
        text.push_str(&format!(", expires {}", format_time(at)));
    }
    text.push_str(&format!(") {}", key.id));
    text
}

/// Unix milliseconds as RFC 3339 UTC.
pub fn format_time(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_725_000_000_000;

    fn request(name: Option<&str>, role: &str, customer: Option<&str>) -> KeyRequest {
        KeyRequest {
            name: name.map(str::to_owned),
            role: role.to_owned(),
            customer_number: customer.map(str::to_owned),
            expires_at: None,
        }
    }

    fn fields(result: Result<NewKey, Vec<FieldError>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn key_requests_table() {
        let ok = request(Some("ci"), "service", None).validate(NOW).unwrap();
        assert_eq!((ok.name.as_str(), ok.role), ("ci", Role::Service));
        let customer = request(Some("storefront"), "customer", Some("C-1"))
            .validate(NOW)
            .unwrap();
        assert_eq!(customer.customer_number.as_deref(), Some("C-1"));

        let cases: &[(KeyRequest, &[&str])] = &[
            (request(None, "service", None), &["name"]),
            (request(Some(""), "service", None), &["name"]),
            (request(Some(" ci"), "service", None), &["name"]),
            (request(Some("ci"), "root", None), &["role"]),
            (request(Some("ci"), "customer", None), &["customerNumber"]),
            (
                request(Some("ci"), "admin", Some("C-1")),
                &["customerNumber"],
            ),
            (
                request(Some("ci"), "customer", Some("C\n1")),
                &["customerNumber"],
            ),
            (request(None, "root", None), &["name", "role"]),
        ];
        for (request, expected) in cases {
            assert_eq!(
                fields(request.clone().validate(NOW)),
                *expected,
                "{request:?}"
            );
        }
    }

    #[test]
    fn expiry_must_be_a_future_rfc3339_time() {
        let at = |text: &str| KeyRequest {
            expires_at: Some(text.to_owned()),
            ..request(Some("ci"), "service", None)
        };
        let future = format_time(NOW + 1000);
        assert_eq!(
            at(&future).validate(NOW).unwrap().expires_at_ms,
            Some(NOW + 1000)
        );
        assert_eq!(fields(at(&format_time(NOW)).validate(NOW)), ["expiresAt"]);
        assert_eq!(fields(at("tomorrow").validate(NOW)), ["expiresAt"]);
        assert_eq!(fields(at("2030-01-31").validate(NOW)), ["expiresAt"]);
    }

    #[test]
    fn admin_tokens_shorter_than_32_characters_are_refused_with_a_way_out() {
        assert!(check_admin_token(&"x".repeat(32)).is_ok());
        let error = check_admin_token(&"x".repeat(31)).unwrap_err();
        assert_eq!(error, AdminTokenError::TooShort { length: 31 });
        assert!(
            error.to_string().contains("openssl rand -hex 32"),
            "{error}"
        );
        // characters, not bytes
        assert!(check_admin_token(&"é".repeat(31)).is_err());
    }

    #[test]
    fn tokens_are_random_and_only_their_prefix_is_shown() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert!(a.starts_with("rsk_"));
        let prefix: String = a.chars().take(TOKEN_PREFIX_CHARS).collect();
        assert_eq!(shown_prefix(&prefix), format!("{}…", &a[..8]));
    }
}
