//! The console's sessions: a random id in an `HttpOnly`, `SameSite=Strict`
//! cookie names a session kept **in this process's memory**, holding the
//! SHA-256 of the key that signed in (never the key) and the session's
//! CSRF token. A restart signs everyone out, and a session is known only to
//! the replica that made it (a balancer in front of several replicas must
//! keep an operator on one). A session ends at sign-out or after
//! [`IDLE_TIMEOUT`] without a request.
//!
//! The key is checked again on every request ([`crate::api::Auth::authenticate_digest`],
//! the API's own check): a revoked or expired key ends its sessions at
//! their next request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use rand::RngCore;

use crate::store::now_ms;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "rescind_console";
/// The cookie carrying the sign-in form's CSRF token before there is a
/// session (a double-submit token: the form must send the cookie's value).
pub const SIGN_IN_COOKIE: &str = "rescind_console_sign_in";
/// A session ends after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// Most sessions one process keeps; past it, the least recently used goes.
pub const MAX_SESSIONS: usize = 10_000;

/// A signed-in operator's session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Hex SHA-256 of the key that signed in.
    pub key_digest: String,
    /// The token every form of this session must carry.
    pub csrf: String,
    /// When the session last served a request (Unix ms).
    pub last_seen_ms: i64,
}

/// Every session of this process.
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

fn lock(sessions: &Sessions) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
    sessions
        .by_id
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn idle_ms() -> i64 {
    i64::try_from(IDLE_TIMEOUT.as_millis()).unwrap_or(i64::MAX)
}

impl Sessions {
    /// Starts a session for the key with this digest: answers its id.
    pub fn create(&self, key_digest: String) -> String {
        let now = now_ms();
        let id = random_token();
        let mut by_id = lock(self);
        by_id.retain(|_, s| now.saturating_sub(s.last_seen_ms) < idle_ms());
        while by_id.len() >= MAX_SESSIONS {
            let Some(oldest) = by_id
                .iter()
                .min_by_key(|(_, s)| s.last_seen_ms)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            by_id.remove(&oldest);
        }
        by_id.insert(
            id.clone(),
            Session {
                key_digest,
                csrf: random_token(),
                last_seen_ms: now,
            },
        );
        id
    }

    /// The live session with this id, its idle clock restarted; an expired
    /// one is removed.
    pub fn touch(&self, id: &str) -> Option<Session> {
        let now = now_ms();
        let mut by_id = lock(self);
        let session = by_id.get_mut(id)?;
        if now.saturating_sub(session.last_seen_ms) >= idle_ms() {
            by_id.remove(id);
            return None;
        }
        session.last_seen_ms = now;
        Some(session.clone())
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        lock(self).remove(id);
    }
}

/// Whether two tokens are equal, in time that does not depend on where
/// they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// A cookie's value in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// Whether the request reached the host over TLS: its URI says `https`, or
/// the proxy in front says so (`X-Forwarded-Proto: https`, `Forwarded:
/// proto=https`). The cookies are then marked `Secure`. (A client that
/// claims TLS falsely only makes its own cookie stricter.)
pub fn over_tls(uri: &axum::http::Uri, headers: &HeaderMap) -> bool {
    if uri.scheme_str() == Some("https") {
        return true;
    }
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get("forwarded")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| {
            first.split(';').any(|pair| {
                pair.trim().split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("proto")
                        && v.trim().trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        });
    forwarded_proto || forwarded
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` over TLS;
/// `max_age` `Some(0)` removes the cookie, `None` makes it last as long as
/// the browser (the server ends the session).
pub fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<u64>,
    secure: bool,
) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_idle_too_long_and_at_sign_out() {
        let sessions = Sessions::default();
        let id = sessions.create("digest".to_owned());
        assert!(sessions.touch(&id).is_some());
        lock(&sessions).get_mut(&id).expect("session").last_seen_ms -= idle_ms();
        assert!(sessions.touch(&id).is_none(), "idle for the whole timeout");
        assert!(sessions.touch(&id).is_none(), "and removed");
        let id = sessions.create("digest".to_owned());
        sessions.end(&id);
        assert!(sessions.touch(&id).is_none());
    }

    #[test]
    fn cookies_are_read_by_name_and_tls_is_seen_through_a_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; rescind_console=xyz"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), None);
        let uri: axum::http::Uri = "/console".parse().expect("uri");
        assert!(!over_tls(&uri, &headers));
        headers.insert(
            "forwarded",
            HeaderValue::from_static("for=1.2.3.4;proto=https"),
        );
        assert!(over_tls(&uri, &headers));
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("a", "ab"));
    }
}
