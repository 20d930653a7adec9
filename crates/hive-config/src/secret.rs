//! [`Secret`]: a credential read from the environment or a file when the config is loaded,
//! shown everywhere by where it came from and never by its value.

use std::{fmt, path::PathBuf, sync::Arc};

use serde::{Serialize, Serializer};

/// Where a secret comes from, as the config file says it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretSource {
    /// `{ env: NAME }`: the environment variable `NAME`.
    Env(String),
    /// `{ file: path }`: the contents of a file, the path relative to the config directory.
    File {
        /// The path as written in the config.
        written: String,
        /// The path read (the config directory joined with `written`).
        path: PathBuf,
    },
}

impl fmt::Display for SecretSource {
    /// `env:NAME` or `file:path` (as written).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File { written, .. } => write!(f, "file:{written}"),
        }
    }
}

/// A credential (an API key, a token, a password, a webhook URL) resolved when the config
/// was loaded.
///
/// Its `Debug`, `Display` and serialised forms show only its source (`env:OPENAI_API_KEY`,
/// `file:secrets/smtp`), never the value; [`expose`](Self::expose) is the one way to the
/// value, for the code that sends it. Two secrets are equal when both their sources and
/// their values are, so a rotated key (same source, new value) is a change.
///
/// ```
/// use hive_config::{Secret, SecretSource};
///
/// let key = Secret::new(SecretSource::Env("OPENAI_API_KEY".into()), "sk-test-123");
/// assert_eq!(format!("{key:?}"), "Secret(env:OPENAI_API_KEY)");
/// assert_eq!(key.to_string(), "env:OPENAI_API_KEY");
/// assert_eq!(key.expose(), "sk-test-123");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    source: SecretSource,
    value: Arc<str>,
}

impl Secret {
    /// A secret with this source and value (the loader makes them; tests and embedded
    /// configs may too).
    pub fn new(source: SecretSource, value: impl Into<Arc<str>>) -> Self {
        Self {
            source,
            value: value.into(),
        }
    }

    /// Where it came from.
    pub fn source(&self) -> &SecretSource {
        &self.source
    }

    /// The value, for the code that sends it. Never log it.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.source)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl Serialize for Secret {
    /// As its source: `"env:OPENAI_API_KEY"`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.source)
    }
}

/// Where `{ env: NAME }` secrets are looked up.
#[derive(Clone, Default)]
pub enum Environment {
    /// The process environment (what the gateway uses).
    #[default]
    Process,
    /// These variables only (tests, embedded configs): nothing is read from the process.
    Vars(std::collections::BTreeMap<String, String>),
}

impl Environment {
    /// Only these variables.
    pub fn vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self::Vars(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    pub(crate) fn get(&self, name: &str) -> Result<String, EnvError> {
        match self {
            Self::Process => std::env::var(name).map_err(|error| match error {
                std::env::VarError::NotPresent => EnvError::NotSet,
                std::env::VarError::NotUnicode(_) => EnvError::NotUnicode,
            }),
            Self::Vars(vars) => vars.get(name).cloned().ok_or(EnvError::NotSet),
        }
    }
}

impl fmt::Debug for Environment {
    /// The variables' names, never their values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Process => f.write_str("Environment::Process"),
            Self::Vars(vars) => f
                .debug_tuple("Environment::Vars")
                .field(&vars.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// Why a variable could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EnvError {
    NotSet,
    NotUnicode,
}
