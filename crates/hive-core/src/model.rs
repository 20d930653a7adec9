//! [`ModelId`]: the name of a model, cheap to clone.

use std::{fmt, sync::Arc};

/// The name of one model (or one endpoint of a model), as the provider spells it.
///
/// Cloning is one reference-count increment; the string is never copied after creation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(Arc<str>);

impl ModelId {
    /// Creates a model id from its name.
    pub fn new(name: impl AsRef<str>) -> Self {
        Self(Arc::from(name.as_ref()))
    }

    /// The model's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ModelId {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for ModelId {
    fn from(name: String) -> Self {
        Self(Arc::from(name))
    }
}

impl AsRef<str> for ModelId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Default for ModelId {
    /// The placeholder `"model"`, used when a layer was not told which model it guards.
    fn default() -> Self {
        Self::new("model")
    }
}
