//! The few URL and encoding rules the client needs, kept small on purpose: a
//! full URL crate would add hundreds of kilobytes to every plugin.

use super::Error;

/// `http` or `https`: the only schemes wasi:http carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

/// A URL split the way wasi:http wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) scheme: Scheme,
    /// `host` or `host:port`, as written; what a connection's `allowedHosts`
    /// lists.
    pub(crate) authority: String,
    /// Path and query, never empty (`/` at least); the fragment is dropped,
    /// as it never goes on the wire.
    pub(crate) path_and_query: String,
}

/// Splits an absolute `http(s)://authority/path?query` URL.
pub(crate) fn parse(url: &str) -> Result<Target, Error> {
    let invalid = |why: &str| Error::InvalidRequest(format!("URL `{url}` {why}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("is not absolute (expected http://… or https://…)"))?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else {
        return Err(invalid("has a scheme other than http or https"));
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let split_at = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(split_at);
    if authority.is_empty() {
        return Err(invalid("has no host"));
    }
    if authority.contains('@') {
        return Err(invalid(
            "carries credentials; send them as a header (Request::basic_auth) instead",
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("contains whitespace or control characters"));
    }
    let path_and_query = match path_and_query {
        "" => "/".to_owned(),
        query if query.starts_with('?') => format!("/{query}"),
        path => path.to_owned(),
    };
    Ok(Target {
        scheme,
        authority: authority.to_owned(),
        path_and_query,
    })
}

/// The `host[:port]` part of a URL; the URL itself when it has none.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn authority_of(url: &str) -> String {
    parse(url)
        .map(|target| target.authority)
        .unwrap_or_else(|_| url.to_owned())
}

/// Percent-encodes `segment` for use as one path segment: everything but the
/// RFC 3986 unreserved characters is encoded, so a `/` or `?` in an order
/// number cannot change the path.
pub fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `application/x-www-form-urlencoded` serialization of `pairs`, the encoding
/// of HTML forms and of query strings.
pub(crate) fn encode_form<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        serializer.append_pair(key.as_ref(), value.as_ref());
    }
    serializer.finish()
}

/// Standard base64 with padding (RFC 4648 §4), for Basic credentials.
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_absolute_urls() {
        let target = parse("https://erp.example.com:8443/api/v1?x=1#frag").unwrap();
        assert_eq!(target.scheme, Scheme::Https);
        assert_eq!(target.authority, "erp.example.com:8443");
        assert_eq!(target.path_and_query, "/api/v1?x=1");

        let target = parse("HTTP://127.0.0.1:9000").unwrap();
        assert_eq!(target.scheme, Scheme::Http);
        assert_eq!(target.path_and_query, "/");

        let target = parse("http://h?only=query").unwrap();
        assert_eq!(target.authority, "h");
        assert_eq!(target.path_and_query, "/?only=query");
    }

    #[test]
    fn refuses_what_wasi_http_cannot_send() {
        for (url, why) in [
            ("/relative/path", "is not absolute"),
            ("ftp://h/x", "scheme other than http"),
            ("http:///nohost", "has no host"),
            ("http://user:pw@h/x", "carries credentials"),
            ("http://h/a b", "whitespace"),
        ] {
            let error = parse(url).unwrap_err().to_string();
            assert!(error.contains(why), "{url}: {error}");
            assert!(error.contains(url), "{url}: {error}");
        }
    }

    #[test]
    fn path_segments_cannot_escape() {
        assert_eq!(encode_path_segment("1001"), "1001");
        assert_eq!(encode_path_segment("A/B?c d#ü"), "A%2FB%3Fc%20d%23%C3%BC");
        assert_eq!(encode_path_segment("a-b.c_d~e"), "a-b.c_d~e");
    }

    #[test]
    fn form_encoding_follows_html_forms() {
        assert_eq!(
            encode_form(&[("orderNo", "1001"), ("session", "123|abc def&x=y")]),
            "orderNo=1001&session=123%7Cabc+def%26x%3Dy"
        );
        assert_eq!(encode_form::<&str, &str>(&[]), "");
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input}");
        }
    }
}
