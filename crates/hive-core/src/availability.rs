//! [`Available`]: whether a model can take a call now, as a breaker or a health registry
//! sees it. Routers read it to skip models without knowing where the answer comes from.

use std::{fmt, sync::Arc};

/// Something that knows whether a model can take a call now. Must be cheap (a few atomic
/// loads): routers ask before every attempt.
pub trait Available: Send + Sync {
    /// Whether a call now would be admitted.
    fn available(&self) -> bool;
}

impl<T: Available + ?Sized> Available for Arc<T> {
    fn available(&self) -> bool {
        (**self).available()
    }
}

impl fmt::Debug for dyn Available {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Available")
            .field("available", &self.available())
            .finish()
    }
}
