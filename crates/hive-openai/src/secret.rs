//! [`ApiKey`]: a credential that never shows in Debug output, logs, errors or metrics.

use std::fmt;

/// An API key. Its `Debug` prints `ApiKey(***)`; it has no `Display`, and the only way to
/// read it is [`ApiKey::expose`], used once per request to build the header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}
