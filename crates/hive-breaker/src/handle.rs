//! [`BreakerHandle`]: reads and controls one breaker from outside the request path.

use std::{fmt, sync::Arc, time::Duration};

use hive_core::{CircuitState, ModelId};

use crate::{breaker::Breaker, snapshot::BreakerMetrics};

/// Reads and controls one breaker from outside the request path (dashboards, recovery,
/// operators). Cheap to clone.
#[derive(Clone)]
pub struct BreakerHandle {
    breaker: Arc<Breaker>,
}

impl BreakerHandle {
    pub(crate) fn new(breaker: Arc<Breaker>) -> Self {
        Self { breaker }
    }

    /// The model the breaker guards.
    pub fn model(&self) -> &ModelId {
        &self.breaker.config.model
    }

    /// The state now (one atomic load).
    pub fn state(&self) -> CircuitState {
        self.breaker.state()
    }

    /// A snapshot of state and window.
    pub fn metrics(&self) -> BreakerMetrics {
        self.breaker.snapshot()
    }

    /// Rejects every call until [`reset`](Self::reset) (or another forced state). Returns
    /// whether the state changed (forcing the state the breaker is in does nothing: no
    /// event, no new generation).
    pub fn force_open(&self) -> bool {
        self.breaker.force(CircuitState::ForcedOpen)
    }

    /// Closes the breaker with an empty window, whatever its state (a closed breaker keeps
    /// its generation and only empties its window). Returns whether the state changed.
    pub fn reset(&self) -> bool {
        self.breaker.force(CircuitState::Closed)
    }

    /// Moves to half-open now, whatever the state, so probes go without waiting out the
    /// open duration (an operator's action). Returns whether the state changed.
    pub fn half_open(&self) -> bool {
        self.breaker.force(CircuitState::HalfOpen)
    }

    /// Moves to half-open only if the breaker is open now, in one conditional step (what
    /// automatic recovery does when a health check sees the model back: a breaker that
    /// closed or was forced open meanwhile is left alone). Returns whether it moved.
    pub fn half_open_if_open(&self) -> bool {
        self.breaker.half_open_if_open()
    }

    /// Opens the breaker for `open_for` from now, or lengthens an open break to end then at
    /// the earliest: what a replica applies when another replica of its cluster opened this
    /// model's breaker, or heard its provider ask to wait (`retry_after`: then no early
    /// probe cuts the break short). A breaker an operator forced, disabled or set to
    /// metrics-only is left alone. Returns the generation it moved to, when it moved (its
    /// transition event is emitted as any other; the generation tells it apart).
    pub fn hold_open(&self, open_for: Duration, retry_after: bool) -> Option<u64> {
        self.breaker.hold_open(open_for, retry_after)
    }

    /// Closes the breaker if it is open or half-open now, in one conditional step (a
    /// replica applying another's successful trial; a forced state is left alone). Returns
    /// the generation it moved to, when it moved.
    pub fn close_if_tripped(&self) -> Option<u64> {
        self.breaker.close_if_tripped()
    }

    /// Lets every call through and records nothing until [`reset`](Self::reset). Returns
    /// whether the state changed.
    pub fn disable(&self) -> bool {
        self.breaker.force(CircuitState::Disabled)
    }

    /// Lets every call through and records outcomes, never changing state, until
    /// [`reset`](Self::reset). Returns whether the state changed.
    pub fn metrics_only(&self) -> bool {
        self.breaker.force(CircuitState::MetricsOnly)
    }
}

impl hive_core::Available for BreakerHandle {
    /// Whether a call now would be admitted: closed, disabled, metrics-only, half-open with
    /// a free permit, or open past its open duration.
    fn available(&self) -> bool {
        self.breaker.would_admit()
    }

    /// Zero when a call would be admitted now; the rest of the break when open, except
    /// inside a provider's `Retry-After` (`None`); `None` when forced open or when every
    /// half-open permit is taken.
    fn ready_in(&self) -> Option<Duration> {
        self.breaker.ready_in()
    }

    /// Ends an open break early for one probe (the breaker goes half-open), unless a
    /// provider's `Retry-After` still runs or an early probe went less than `min_interval`
    /// ago.
    fn probe_early(&self, min_interval: Duration) -> bool {
        self.breaker.probe_early(min_interval)
    }
}

impl fmt::Debug for BreakerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerHandle")
            .field("model", self.model())
            .field("state", &self.state())
            .finish()
    }
}
