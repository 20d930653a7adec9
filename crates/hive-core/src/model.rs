//! [`ModelId`]: the name of a model, `Copy` and free to clone.

use std::{
    collections::HashSet,
    fmt,
    sync::{OnceLock, RwLock},
};

/// The name of one model (or one endpoint of a model), as the provider spells it.
///
/// A `ModelId` is `Copy`: layers put it in futures, events and errors without touching a
/// reference count. Names are interned: each distinct name is stored once for the life of
/// the process, so create ids from configuration, never from request data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(&'static str);

fn interner() -> &'static RwLock<HashSet<&'static str>> {
    static NAMES: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

impl ModelId {
    /// A model id from a name known at compile time (no interning needed).
    pub const fn from_static(name: &'static str) -> Self {
        Self(name)
    }

    /// A model id from its name; the name is interned on first use.
    pub fn new(name: impl AsRef<str>) -> Self {
        let name = name.as_ref();
        if let Some(known) = Self::lookup(name) {
            return known;
        }
        let mut names = interner()
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(interned) = names.get(name) {
            return Self(interned);
        }
        let interned: &'static str = Box::leak(name.to_owned().into_boxed_str());
        names.insert(interned);
        Self(interned)
    }

    /// The id of `name` if the process already created it with [`new`](Self::new), interning
    /// nothing: the lookup for names that come from outside (a request's `model` field), so
    /// that a stream of made-up names cannot grow the interner.
    pub fn lookup(name: &str) -> Option<Self> {
        interner()
            .read()
            .map(|names| names.get(name).copied())
            .unwrap_or_else(|poisoned| poisoned.into_inner().get(name).copied())
            .map(Self)
    }

    /// The model's name.
    pub const fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl From<&str> for ModelId {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for ModelId {
    fn from(name: String) -> Self {
        Self::new(name)
    }
}

impl AsRef<str> for ModelId {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl PartialEq<str> for ModelId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ModelId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Default for ModelId {
    /// The placeholder `"model"`, used when a layer was not told which model it guards.
    fn default() -> Self {
        Self::from_static("model")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_interned_once_and_compare_by_name() {
        let a = ModelId::new(String::from("gpt-4o"));
        let b = ModelId::new("gpt-4o");
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert_eq!(a, ModelId::from_static("gpt-4o"));
        assert_eq!(a, "gpt-4o");
        assert_eq!(format!("{a} {a:?}"), "gpt-4o \"gpt-4o\"");
    }

    #[test]
    fn lookup_finds_known_names_and_interns_nothing() {
        assert_eq!(ModelId::lookup("never-configured-model-7f3a"), None);
        assert_eq!(ModelId::lookup("never-configured-model-7f3a"), None);
        let known = ModelId::new("claude-4-sonnet");
        assert_eq!(ModelId::lookup("claude-4-sonnet"), Some(known));
    }
}
