use std::{fmt, sync::Arc, time::Duration};

use hive_core::{CircuitState, ModelId};

use crate::breaker::Breaker;

/// Reads and controls one breaker from outside the request path (dashboards, recovery,
/// operators). Cheap to clone.
#[derive(Clone)]
pub struct BreakerHandle {
    breaker: Arc<Breaker>,
}

/// A snapshot of a breaker's state and window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerMetrics {
    /// The state now. An open breaker whose open duration has passed still reads `Open`
    /// until the next call moves it to half-open.
    pub state: CircuitState,
    /// Transitions so far.
    pub generation: u64,
    /// Calls in the window.
    pub calls: u64,
    /// Failed calls in the window.
    pub failed_calls: u64,
    /// Slow calls in the window.
    pub slow_calls: u64,
    /// Failure rate of the window (0..=1).
    pub failure_rate: f64,
    /// Slow-call rate of the window (0..=1).
    pub slow_call_rate: f64,
    /// Probe permits free now, when half-open.
    pub half_open_permits_free: u32,
    /// Time until probes may go, when open.
    pub open_remaining: Option<Duration>,
    /// Calls rejected since the breaker was built.
    pub rejected_calls: u64,
    /// Results that arrived after the breaker left the generation they started in.
    pub late_results: u64,
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

    /// Rejects every call until [`reset`](Self::reset) (or another forced state).
    pub fn force_open(&self) {
        self.breaker.force(CircuitState::ForcedOpen);
    }

    /// Closes the breaker with an empty window, whatever its state.
    pub fn reset(&self) {
        self.breaker.force(CircuitState::Closed);
    }

    /// Moves to half-open now, so probes go without waiting out the open duration (used by
    /// recovery when a health checker sees the model back).
    pub fn half_open(&self) {
        self.breaker.force(CircuitState::HalfOpen);
    }

    /// Lets every call through and records nothing until [`reset`](Self::reset).
    pub fn disable(&self) {
        self.breaker.force(CircuitState::Disabled);
    }

    /// Lets every call through and records outcomes, never changing state, until
    /// [`reset`](Self::reset).
    pub fn metrics_only(&self) {
        self.breaker.force(CircuitState::MetricsOnly);
    }
}

impl hive_core::Available for BreakerHandle {
    /// Whether a call now would be admitted: closed, disabled, metrics-only, half-open with
    /// a free permit, or open past its open duration.
    fn available(&self) -> bool {
        self.breaker.would_admit()
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
