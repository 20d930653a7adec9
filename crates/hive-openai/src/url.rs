//! The provider's base URL: the endpoints built from it, the credentials it may carry, and
//! how it is shown (never with its credentials or query).

use hive_core::ConfigError;
use http::Uri;

/// A validated base URL, split into what the endpoints are built from.
#[derive(Debug)]
pub(crate) struct BaseUrl {
    /// `http` or `https`.
    scheme: String,
    /// `host[:port]`, without credentials.
    host_port: String,
    /// The path, without a trailing `/`.
    path: String,
    /// The query, kept on every endpoint (`?api-version=…`).
    query: Option<String>,
    /// `user[:password]`, percent-encoded as in the URL.
    userinfo: Option<String>,
}

impl BaseUrl {
    /// Parses and checks a base URL; errors show it redacted.
    pub(crate) fn parse(text: &str) -> Result<Self, ConfigError> {
        let shown = redact_url(text);
        let uri: Uri = text
            .trim()
            .parse()
            .map_err(|e| ConfigError::new("base_url", format!("`{shown}` is not a URL: {e}")))?;
        let scheme = match uri.scheme_str() {
            Some(scheme @ ("http" | "https")) => scheme.to_owned(),
            _ => {
                return Err(ConfigError::new(
                    "base_url",
                    format!("`{shown}` must start with http:// or https://"),
                ));
            }
        };
        let Some(authority) = uri.authority() else {
            return Err(ConfigError::new(
                "base_url",
                format!("`{shown}` has no host"),
            ));
        };
        let (userinfo, host_port) = match authority.as_str().rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo.to_owned()), host_port.to_owned()),
            None => (None, authority.as_str().to_owned()),
        };
        Ok(Self {
            scheme,
            host_port,
            path: uri.path().trim_end_matches('/').to_owned(),
            query: uri.query().map(str::to_owned),
            userinfo,
        })
    }

    /// The URL of an endpoint: `path` appended to the base path, the base query kept, the
    /// credentials left out (they travel in a header).
    pub(crate) fn endpoint(&self, path: &str) -> Result<Uri, ConfigError> {
        let query = self
            .query
            .as_deref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        format!(
            "{}://{}{}{path}{query}",
            self.scheme, self.host_port, self.path
        )
        .parse()
        .map_err(|e| {
            ConfigError::new(
                "base_url",
                format!(
                    "`{}` gives no valid endpoint URL: {e}",
                    redact_url(&format!(
                        "{}://{}{}",
                        self.scheme, self.host_port, self.path
                    ))
                ),
            )
        })
    }

    /// The URL's credentials as an HTTP Basic credential (`base64(user:password)`, each
    /// percent-decoded), as curl and reqwest send them.
    pub(crate) fn basic_credentials(&self) -> Option<String> {
        self.userinfo
            .as_deref()
            .map(|userinfo| base64(&percent_decode(userinfo)))
    }
}

/// A URL as it may be shown: its credentials (`user:password@`) and its query and fragment
/// (which often carry keys: `?key=…`) replaced by `***`. Works on any text, URL or not.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    let (path, hidden) = tail.split_at(path_end);
    let hidden = match hidden.chars().next() {
        Some(mark) => format!("{mark}***"),
        None => String::new(),
    };
    format!("{scheme}{host}{path}{hidden}")
}

/// `%XX` sequences decoded; anything else kept as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    decoded
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let word = group
            .iter()
            .enumerate()
            .fold(0u32, |word, (i, &b)| word | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                encoded.push(char::from(ALPHABET[(word >> (18 - 6 * i)) as usize & 63]));
            } else {
                encoded.push('=');
            }
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_query_and_fragment_are_redacted() {
        assert_eq!(
            redact_url("https://user:secret@host/v1?key=abc"),
            "https://***@host/v1?***"
        );
        assert_eq!(redact_url("https://host:8443"), "https://host:8443");
        assert_eq!(redact_url("http://h/p#frag"), "http://h/p#***");
        assert_eq!(redact_url("u:p@host?k=v"), "***@host?***", "not even a URL");
        assert_eq!(
            redact_url("https://a@b:pw@host/x"),
            "https://***@host/x",
            "up to the last @"
        );
    }

    #[test]
    fn endpoints_keep_the_path_and_query_and_drop_the_credentials() {
        let base = BaseUrl::parse("https://user:p%40ss@host:8443/openai/?api-version=1").unwrap();
        assert_eq!(
            base.endpoint("/v1/models").unwrap().to_string(),
            "https://host:8443/openai/v1/models?api-version=1"
        );
        // `user:p@ss`, percent-decoded, as Basic.
        assert_eq!(base.basic_credentials().as_deref(), Some("dXNlcjpwQHNz"));
        let plain = BaseUrl::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(
            plain.endpoint("/v1/chat/completions").unwrap().to_string(),
            "http://127.0.0.1:8000/v1/chat/completions"
        );
        assert_eq!(plain.basic_credentials(), None);
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
        assert_eq!(percent_decode("a%2Fb%zz%4"), b"a/b%zz%4");
    }
}
