//! The canonical JSON form of a [`Config`] and its [`ConfigHash`].

use std::{fmt, str::FromStr};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Config;

/// What the hash input starts with: the version of the canonical form.
const CANONICAL_VERSION: &[u8] = b"hive-config canonical v1\n";

/// The SHA-256 of a config's canonical form: the same for two configs that say the same
/// thing, whatever their comments, key order, spelling of values (`0.5` or `50%`) or
/// defaults written out; secrets count by their source (`env:OPENAI_API_KEY`), never their
/// value. Shown as `sha256:` and 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigHash([u8; 32]);

impl ConfigHash {
    /// The digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 12 hex digits, for logs and the dashboard.
    pub fn short(&self) -> String {
        hex(&self.0[..6])
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for ConfigHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex(&self.0))
    }
}

impl fmt::Debug for ConfigHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigHash({self})")
    }
}

/// A text that is not `sha256:` and 64 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a config hash: expected `sha256:` and 64 hex digits")]
pub struct HashParseError;

impl FromStr for ConfigHash {
    type Err = HashParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.strip_prefix("sha256:").ok_or(HashParseError)?;
        if digits.len() != 64 || !digits.is_ascii() {
            return Err(HashParseError);
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte =
                u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| HashParseError)?;
        }
        Ok(Self(out))
    }
}

impl Config {
    /// The canonical JSON form: every section, defaults filled in, durations as `"30s"`,
    /// secrets as their source. What the dashboard may show, and what [`hash`](Self::hash)
    /// digests.
    pub fn to_json(&self) -> Value {
        // Serialising plain data into a `Value` cannot fail: every map key is a string and
        // every number finite (NaN is refused by the loader; it would become `null`).
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The stable hash of the canonical form (see [`ConfigHash`]).
    pub fn hash(&self) -> ConfigHash {
        ConfigHash(Sha256::digest(canonical_bytes(&self.to_json())).into())
    }
}

/// The bytes hashed: a version line, then the JSON with object keys sorted and no spaces.
pub(crate) fn canonical_bytes(value: &Value) -> Vec<u8> {
    let mut out = CANONICAL_VERSION.to_vec();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(Value::String(key.clone()).to_string().as_bytes());
                out.push(b':');
                if let Some(value) = map.get(key) {
                    write_canonical(value, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend(scalar.to_string().as_bytes()),
    }
}
