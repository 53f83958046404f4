//! A cookie jar for ERPs with a session login: the login answer's
//! `Set-Cookie` headers are kept and sent back as `Cookie` on the later
//! requests of the same call, by the rules of RFC 6265 §5 that matter within
//! one call (domain, path, `Secure`, `Max-Age`/`Expires`).
//!
//! The jar lives as long as the plugin keeps it, which is at most one call:
//! the host runs every attempt on a fresh instance, so each attempt logs in
//! again. It keeps no public-suffix list: the requests of a call only reach
//! the hosts its connection allows anyway.

use std::time::{SystemTime, UNIX_EPOCH};

use super::url::{self, Scheme};
use super::{Error, Request, Response};

/// The cookies of one session with the ERP.
///
/// [`send`](CookieJar::send) sends a request with the cookies that apply to
/// its URL and keeps the cookies its answer sets:
///
/// ```
/// use rescind_guest::http::{CookieJar, Request, Response};
/// use rescind_guest::testing::Connection;
/// use rescind_guest::{SubmitError, config};
///
/// fn cancel(order: &str) -> Result<Response, SubmitError> {
///     let mut session = CookieJar::new();
///     session
///         .send(Request::post(config::url("/login")).form(&[("user", "rescind"), ("password", "…")]))?
///         .error_for_status()?;
///     // Sent with `Cookie: SID=abc`, the session cookie the login answer set.
///     Ok(session.send(Request::post(config::url(&format!("/orders/{order}/cancel"))))?.error_for_status()?)
/// }
///
/// let erp = Connection::new("https://erp.example.com").respond(|request| {
///     Ok(match request.path() {
///         "/login" => Response::new(204).with_header("Set-Cookie", "SID=abc; Path=/; HttpOnly"),
///         _ if request.header("cookie") == Some("SID=abc") => Response::new(201),
///         _ => Response::new(401),
///     })
/// });
/// assert_eq!(erp.run(|| cancel("1001")).unwrap().status, 201);
/// ```
///
/// A cookie whose `Domain` does not cover the host that set it is ignored;
/// one without `Domain` goes back to that host only. `Path` limits it to a
/// path and below (default: the setting URL's directory). `Secure` cookies go
/// only to `https` URLs and to loopback hosts (as browsers treat them).
/// `Max-Age=0` or an `Expires` in the past removes a cookie (a logout).
/// `HttpOnly` and `SameSite` mean nothing outside a browser and are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieJar {
    cookies: Vec<StoredCookie>,
    /// Orders cookies of equal path length by when they were first set
    /// (RFC 6265 §5.4 step 2).
    created: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredCookie {
    name: String,
    value: String,
    /// Lower case, without a leading dot.
    domain: String,
    /// Set without `Domain`: only the very host that set it gets it back.
    host_only: bool,
    path: String,
    secure: bool,
    /// Seconds since the Unix epoch; `None` lasts as long as the jar.
    expires: Option<i64>,
    created: u64,
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> Self {
        CookieJar::default()
    }

    /// Sends `request` with the jar's cookies for its URL
    /// ([`add_to`](CookieJar::add_to)) and keeps the cookies the answer sets
    /// ([`store`](CookieJar::store)), whatever its status.
    pub fn send(&mut self, request: Request) -> Result<Response, Error> {
        let url = request.url().to_owned();
        let response = self.add_to(request).send()?;
        self.store(&url, &response);
        Ok(response)
    }

    /// `request` with a `Cookie` header carrying the jar's cookies for its
    /// URL. A `Cookie` header the request already has is kept, with the
    /// jar's cookies appended to it; with no cookie to send the request is
    /// unchanged.
    pub fn add_to(&self, mut request: Request) -> Request {
        let Some(cookies) = self.cookie_header(request.url()) else {
            return request;
        };
        match request
            .headers
            .iter_mut()
            .find(|(name, _)| name.eq_ignore_ascii_case("cookie"))
        {
            Some((_, value)) => {
                value.push_str("; ");
                value.push_str(&cookies);
                request
            }
            None => request.header("Cookie", cookies),
        }
    }

    /// Keeps the cookies of every `Set-Cookie` header of `response`, the
    /// answer to a request for `url`. Malformed ones, and ones for a domain
    /// that does not cover `url`'s host, are ignored, as a browser would.
    pub fn store(&mut self, url: &str, response: &Response) {
        self.store_at(url, response, now());
    }

    /// The `Cookie` header value the jar would send to `url`
    /// (`name=value; other=value`, longest path first), if any cookie applies.
    pub fn cookie_header(&self, url: &str) -> Option<String> {
        self.cookie_header_at(url, now())
    }

    /// The value of the cookie `name` (the first one set, if several
    /// domains or paths have one), unless it expired: for ERPs that want a
    /// cookie's value echoed in a header, such as a CSRF token.
    pub fn get(&self, name: &str) -> Option<&str> {
        let now = now();
        self.cookies
            .iter()
            .filter(|cookie| cookie.name == name && !cookie.expired(now))
            .min_by_key(|cookie| cookie.created)
            .map(|cookie| cookie.value.as_str())
    }

    /// Whether the jar holds no cookie.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    fn store_at(&mut self, url: &str, response: &Response, now: i64) {
        let Some(origin) = Origin::of(url) else {
            return;
        };
        for header in response.header_all("set-cookie") {
            if let Some(cookie) = parse_set_cookie(header, &origin, now) {
                self.keep(cookie, now);
            }
        }
    }

    /// RFC 6265 §5.3 steps 11–12: a cookie replaces the one with the same
    /// name, domain and path, keeping its creation order; an expired one
    /// only removes it.
    fn keep(&mut self, mut cookie: StoredCookie, now: i64) {
        let same = |old: &StoredCookie| {
            old.name == cookie.name && old.domain == cookie.domain && old.path == cookie.path
        };
        let previous = self.cookies.iter().position(same);
        if cookie.expired(now) {
            if let Some(index) = previous {
                self.cookies.remove(index);
            }
            return;
        }
        match previous {
            Some(index) => {
                cookie.created = self.cookies[index].created;
                self.cookies[index] = cookie;
            }
            None => {
                self.created += 1;
                cookie.created = self.created;
                self.cookies.push(cookie);
            }
        }
    }

    fn cookie_header_at(&self, url: &str, now: i64) -> Option<String> {
        let origin = Origin::of(url)?;
        let mut matching: Vec<&StoredCookie> = self
            .cookies
            .iter()
            .filter(|cookie| cookie.applies_to(&origin, now))
            .collect();
        if matching.is_empty() {
            return None;
        }
        matching.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then(a.created.cmp(&b.created))
        });
        let pairs: Vec<String> = matching
            .iter()
            .map(|cookie| format!("{}={}", cookie.name, cookie.value))
            .collect();
        Some(pairs.join("; "))
    }
}

impl StoredCookie {
    fn expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|expires| expires <= now)
    }

    /// RFC 6265 §5.4 step 1.
    fn applies_to(&self, origin: &Origin, now: i64) -> bool {
        let domain = if self.host_only {
            origin.host == self.domain
        } else {
            domain_match(&origin.host, &self.domain)
        };
        domain
            && path_match(&origin.path, &self.path)
            && (!self.secure || origin.trustworthy())
            && !self.expired(now)
    }
}

/// What a cookie is matched against: the request URL's scheme, host and path.
struct Origin {
    https: bool,
    /// Lower case, without port; an IPv6 literal keeps its brackets.
    host: String,
    /// The path without the query, `/` at least.
    path: String,
}

impl Origin {
    fn of(url: &str) -> Option<Origin> {
        let target = url::parse(url).ok()?;
        let authority = target.authority.to_ascii_lowercase();
        let host = match authority.strip_prefix('[') {
            Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or_default()),
            None => authority
                .rsplit_once(':')
                .map_or(authority.as_str(), |(host, _)| host)
                .to_owned(),
        };
        let path = target
            .path_and_query
            .split('?')
            .next()
            .filter(|path| path.starts_with('/'))
            .unwrap_or("/")
            .to_owned();
        Some(Origin {
            https: target.scheme == Scheme::Https,
            host,
            path,
        })
    }

    /// `https`, or a loopback host, which browsers also trust with
    /// `Secure` cookies: a plugin tried against a local mock ERP over plain
    /// http behaves as it will against the real ERP.
    fn trustworthy(&self) -> bool {
        self.https
            || self.host == "localhost"
            || self.host == "[::1]"
            || (self.host.starts_with("127.") && is_ip_address(&self.host))
    }
}

/// RFC 6265 §5.2: one `Set-Cookie` value, received from `origin`, as the
/// cookie to store; `None` when it must be ignored.
fn parse_set_cookie(header: &str, origin: &Origin, now: i64) -> Option<StoredCookie> {
    let (pair, attributes) = header.split_once(';').unwrap_or((header, ""));
    let (name, value) = pair.split_once('=')?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() {
        return None;
    }
    let mut domain = None;
    let mut path = None;
    let mut secure = false;
    let mut max_age = None;
    let mut expires = None;
    for attribute in attributes.split(';') {
        let (key, value) = attribute.split_once('=').unwrap_or((attribute, ""));
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "expires" => {
                if let Some(date) = parse_cookie_date(value) {
                    expires = Some(date);
                }
            }
            "max-age" => {
                if let Some(seconds) = parse_max_age(value) {
                    max_age = Some(seconds);
                }
            }
            "domain" if !value.is_empty() => {
                domain = Some(value.trim_start_matches('.').to_ascii_lowercase());
            }
            "path" => {
                path = value.starts_with('/').then(|| value.to_owned());
            }
            "secure" => secure = true,
            _ => {}
        }
    }
    // Max-Age wins over Expires (§5.3 step 3); zero or less expires it now.
    let expires = match max_age {
        Some(seconds) if seconds <= 0 => Some(i64::MIN),
        Some(seconds) => Some(now.saturating_add(seconds)),
        None => expires,
    };
    let (domain, host_only) = match domain {
        Some(domain) if domain_match(&origin.host, &domain) => (domain, false),
        Some(_) => return None,
        None => (origin.host.clone(), true),
    };
    Some(StoredCookie {
        name: name.to_owned(),
        value: value.to_owned(),
        domain,
        host_only,
        path: path.unwrap_or_else(|| default_path(&origin.path)),
        secure,
        expires,
        created: 0,
    })
}

/// `Max-Age`: an optional `-` and digits (§5.2.2); anything else is ignored.
fn parse_max_age(value: &str) -> Option<i64> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Out of range: as good as forever (or, negative, as expired).
    Some(value.parse().unwrap_or(if value.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    }))
}

/// RFC 6265 §5.1.3.
fn domain_match(host: &str, domain: &str) -> bool {
    host == domain
        || (!is_ip_address(host)
            && host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.')))
}

fn is_ip_address(host: &str) -> bool {
    host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// RFC 6265 §5.1.4: the directory of the request path.
fn default_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(last) => path[..last].to_owned(),
    }
}

/// RFC 6265 §5.1.4: `/api` matches `/api`, `/api/` and `/api/orders`, not
/// `/apiary`.
fn path_match(request_path: &str, cookie_path: &str) -> bool {
    request_path == cookie_path
        || request_path
            .strip_prefix(cookie_path)
            .is_some_and(|rest| cookie_path.ends_with('/') || rest.starts_with('/'))
}

fn now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(elapsed) => i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// RFC 6265 §5.1.1: the lenient date parser browsers use for `Expires`,
/// which accepts `Wed, 21 Oct 2015 07:28:00 GMT`, `Wednesday, 21-Oct-15
/// 07:28:00 GMT`, `Wed Oct 21 07:28:00 2015` and their relatives. Answers
/// seconds since the Unix epoch (UTC), `None` when it is not a date.
fn parse_cookie_date(text: &str) -> Option<i64> {
    let is_delimiter = |c: char| matches!(c, '\x09' | '\x20'..='\x2f' | '\x3b'..='\x40' | '\x5b'..='\x60' | '\x7b'..='\x7e');
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for token in text.split(is_delimiter).filter(|token| !token.is_empty()) {
        // Each token fills the first field, in this order, that is still
        // empty and that it fits.
        if time.is_none()
            && let Some(found) = parse_time(token)
        {
            time = Some(found);
        } else if day.is_none()
            && let Some(found) = leading_digits(token, 1, 2)
        {
            day = Some(found);
        } else if month.is_none()
            && let Some(found) = parse_month(token)
        {
            month = Some(found);
        } else if year.is_none()
            && let Some(found) = leading_digits(token, 2, 4)
        {
            year = Some(found);
        }
    }
    let (hour, minute, second) = time?;
    let (day, month, mut year) = (day?, month?, year?);
    year += match year {
        70..=99 => 1900,
        0..=69 => 2000,
        _ => 0,
    };
    if !(1..=31).contains(&day) || year < 1601 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    if day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

/// `hms-time`: `1*2DIGIT ":" 1*2DIGIT ":" 1*2DIGIT`, then anything not a digit.
fn parse_time(token: &str) -> Option<(u32, u32, u32)> {
    let mut parts = token.splitn(3, ':');
    let hour = all_digits(parts.next()?, 1, 2)?;
    let minute = all_digits(parts.next()?, 1, 2)?;
    let second = leading_digits(parts.next()?, 1, 2)?;
    Some((hour, minute, second))
}

fn all_digits(text: &str, min: usize, max: usize) -> Option<u32> {
    (text.len() >= min && text.len() <= max && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// `min` to `max` digits at the start of `token`, then nothing or a
/// non-digit.
fn leading_digits(token: &str, min: usize, max: usize) -> Option<u32> {
    let count = token.bytes().take_while(u8::is_ascii_digit).count();
    (count >= min && count <= max)
        .then(|| token[..count].parse().ok())
        .flatten()
}

fn parse_month(token: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let prefix = token.get(..3)?.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|month| *month == prefix)
        .and_then(|index| u32::try_from(index + 1).ok())
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian
/// calendar (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn jar_after(url: &str, set_cookies: &[&str]) -> CookieJar {
        let mut response = Response::new(200);
        for header in set_cookies {
            response = response.with_header("Set-Cookie", *header);
        }
        let mut jar = CookieJar::new();
        jar.store_at(url, &response, NOW);
        jar
    }

    #[test]
    fn cookie_dates_in_the_forms_servers_send() {
        let cases = [
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(1_445_412_480)),
            ("Wednesday, 21-Oct-15 07:28:00 GMT", Some(1_445_412_480)),
            ("Wed Oct 21 07:28:00 2015", Some(1_445_412_480)),
            ("21 oct 2015 7:28:0", Some(1_445_412_480)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("Sat, 29 Feb 2020 12:00:00 GMT", Some(1_582_977_600)),
            ("Fri, 01 Jan 1601 00:00:00 GMT", Some(-11_644_473_600)),
            ("Mon, 30 Feb 2015 07:28:00 GMT", None),
            ("Wed, 21 Oct 1600 07:28:00 GMT", None),
            ("Wed, 21 Oct 2015 24:00:00 GMT", None),
            ("Wed, 32 Oct 2015 07:28:00 GMT", None),
            ("Wed, 21 Foo 2015 07:28:00 GMT", None),
            ("tomorrow", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_cookie_date(text), expected, "{text:?}");
        }
    }

    #[test]
    fn a_session_cookie_goes_back_to_its_host_only() {
        let jar = jar_after(
            "https://erp.example.com/api/login",
            &["SID=abc; Path=/; HttpOnly; SameSite=Strict"],
        );
        let header = |url| jar.cookie_header_at(url, NOW);
        assert_eq!(
            header("https://erp.example.com/api/orders"),
            Some("SID=abc".into())
        );
        assert_eq!(
            header("https://ERP.example.com:443/"),
            Some("SID=abc".into())
        );
        assert_eq!(header("https://sub.erp.example.com/api"), None);
        assert_eq!(header("https://example.com/api"), None);
        assert_eq!(jar.get("SID"), Some("abc"));
        assert_eq!(jar.get("sid"), None);
    }

    #[test]
    fn domain_cookies_cover_subdomains_and_foreign_domains_are_ignored() {
        let jar = jar_after(
            "https://login.erp.example.com/",
            &[
                "a=1; Domain=.erp.example.com",
                "b=2; Domain=other.example.com",
                "c=3; Domain=xample.com",
                "d=4; Domain=login.erp.example.com",
            ],
        );
        let header = |url| jar.cookie_header_at(url, NOW);
        assert_eq!(header("https://api.erp.example.com/x"), Some("a=1".into()));
        assert_eq!(
            header("https://login.erp.example.com/x"),
            Some("a=1; d=4".into())
        );
        assert_eq!(header("https://erp.example.com/"), Some("a=1".into()));
        assert_eq!(header("https://other.example.com/"), None);

        // An IP address only ever matches itself.
        let ip = jar_after("http://127.0.0.1:9000/", &["e=5; Domain=0.0.1", "f=6"]);
        assert_eq!(
            ip.cookie_header_at("http://127.0.0.1:9001/x", NOW),
            Some("f=6".into())
        );
    }

    #[test]
    fn paths_limit_and_order_the_cookies() {
        let jar = jar_after(
            "https://erp.example.com/api/v1/login",
            &[
                "default=1",
                "root=2; Path=/",
                "api=3; Path=/api",
                "bad=4; Path=relative",
            ],
        );
        let header = |url| jar.cookie_header_at(url, NOW);
        // `default` and `bad` got the login URL's directory, /api/v1.
        assert_eq!(
            header("https://erp.example.com/api/v1/orders?x=1"),
            Some("default=1; bad=4; api=3; root=2".into())
        );
        assert_eq!(
            header("https://erp.example.com/api/v1"),
            Some("default=1; bad=4; api=3; root=2".into())
        );
        assert_eq!(
            header("https://erp.example.com/api"),
            Some("api=3; root=2".into())
        );
        assert_eq!(
            header("https://erp.example.com/apiary"),
            Some("root=2".into())
        );
        assert_eq!(header("https://erp.example.com/"), Some("root=2".into()));
        assert_eq!(default_path("/login"), "/");
        assert_eq!(default_path("/"), "/");
    }

    #[test]
    fn secure_cookies_need_https_or_loopback() {
        let jar = jar_after("https://erp.example.com/", &["s=1; Secure", "p=2"]);
        assert_eq!(
            jar.cookie_header_at("http://erp.example.com/", NOW),
            Some("p=2".into())
        );
        assert_eq!(
            jar.cookie_header_at("https://erp.example.com/", NOW),
            Some("s=1; p=2".into())
        );
        for local in [
            "http://127.0.0.1:9000/",
            "http://localhost:9000/",
            "http://[::1]:9000/",
        ] {
            let jar = jar_after(local, &["s=1; Secure"]);
            assert_eq!(
                jar.cookie_header_at(local, NOW),
                Some("s=1".into()),
                "{local}"
            );
        }
    }

    #[test]
    fn expiry_removes_and_replaces() {
        let url = "https://erp.example.com/";
        let mut jar = jar_after(
            url,
            &[
                "a=1",
                "b=2; Max-Age=60",
                "c=3; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
                "d=4; Expires=Wed, 21 Oct 2099 07:28:00 GMT",
                "e=5; Max-Age=60; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
                "f=6; Max-Age=soon",
            ],
        );
        // c expired on arrival; Max-Age beats Expires for e.
        assert_eq!(
            jar.cookie_header_at(url, NOW),
            Some("a=1; b=2; d=4; e=5; f=6".into())
        );
        assert_eq!(
            jar.cookie_header_at(url, NOW + 61),
            Some("a=1; d=4; f=6".into())
        );

        // A logout: the session cookie is cleared, a new value replaces an
        // old one in place.
        let logout = Response::new(200)
            .with_header("Set-Cookie", "a=; Max-Age=0")
            .with_header("set-cookie", "d=new; Expires=Wed, 21 Oct 2099 07:28:00 GMT");
        jar.store_at(url, &logout, NOW);
        assert_eq!(
            jar.cookie_header_at(url, NOW),
            Some("b=2; d=new; e=5; f=6".into())
        );
        let all_gone = Response::new(200)
            .with_header("Set-Cookie", "b=; Max-Age=-1")
            .with_header("Set-Cookie", "d=; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
            .with_header("Set-Cookie", "e=; Max-Age=0")
            .with_header("Set-Cookie", "f=; max-age=0");
        jar.store_at(url, &all_gone, NOW);
        assert!(jar.is_empty(), "{jar:?}");
        assert_eq!(jar.cookie_header_at(url, NOW), None);
    }

    #[test]
    fn malformed_set_cookies_are_ignored() {
        let jar = jar_after(
            "https://erp.example.com/",
            &[
                "novalue",
                "=nameless",
                "  ok = fine ; path=/",
                "q=\"quoted\"",
            ],
        );
        assert_eq!(
            jar.cookie_header_at("https://erp.example.com/", NOW),
            Some("ok=fine; q=\"quoted\"".into())
        );
        let mut nowhere = CookieJar::new();
        nowhere.store_at(
            "not a url",
            &Response::new(200).with_header("Set-Cookie", "a=1"),
            NOW,
        );
        assert!(nowhere.is_empty());
    }

    #[test]
    fn add_to_merges_with_a_cookie_the_plugin_set() {
        let jar = jar_after("https://erp.example.com/", &["SID=abc"]);
        let own = Request::get("https://erp.example.com/x").header("Cookie", "lang=en");
        let request = jar.add_to(own);
        assert_eq!(request.header_value("cookie"), Some("lang=en; SID=abc"));
        assert_eq!(request.headers().len(), 1);
        let elsewhere = jar.add_to(Request::get("https://other.example.com/"));
        assert_eq!(elsewhere.headers().len(), 0);
    }
}
