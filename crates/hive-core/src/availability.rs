//! [`Available`]: whether a model can take a call now, as a breaker or a health registry
//! sees it. Routers read it to skip models without knowing where the answer comes from.

use std::{fmt, sync::Arc, time::Duration};

/// Something that knows whether a model can take a call now. Must be cheap (a few atomic
/// loads): routers ask before every attempt.
///
/// Beside the yes or no, it may say when the model will be available by itself
/// ([`ready_in`](Self::ready_in): the rest of a breaker's break) and let one probe through
/// early ([`probe_early`](Self::probe_early)): a router uses both as its last resort when
/// every model of a request is unavailable, in the spirit of Envoy's panic threshold.
pub trait Available: Send + Sync {
    /// Whether a call now would be admitted.
    fn available(&self) -> bool;

    /// How long until a call would be admitted without anybody acting: zero when it would
    /// be now, the rest of a break, or `None` when it will not be by itself (an operator
    /// forced it out, a provider's `Retry-After` still runs, it is unhealthy). The default
    /// knows only now.
    fn ready_in(&self) -> Option<Duration> {
        self.available().then_some(Duration::ZERO)
    }

    /// Lets one call through now although the model is unavailable, if this signal allows
    /// an early probe (an open breaker outside a `Retry-After`, at most once per
    /// `min_interval`). Returns whether a call now would be admitted. The default allows
    /// no early probe.
    fn probe_early(&self, min_interval: Duration) -> bool {
        let _ = min_interval;
        self.available()
    }
}

impl<T: Available + ?Sized> Available for Arc<T> {
    fn available(&self) -> bool {
        (**self).available()
    }

    fn ready_in(&self) -> Option<Duration> {
        (**self).ready_in()
    }

    fn probe_early(&self, min_interval: Duration) -> bool {
        (**self).probe_early(min_interval)
    }
}

impl fmt::Debug for dyn Available {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Available")
            .field("available", &self.available())
            .finish()
    }
}
