//! [`BreakerMetrics`]: what a breaker reports of itself.

use std::time::Duration;

use hive_core::CircuitState;

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
    /// The part of the break a provider's `Retry-After` asked for, still to run: no early
    /// probe goes before it ends.
    pub retry_after_remaining: Option<Duration>,
    /// Failures in a row while closed (the consecutive-failure trip counts them).
    pub consecutive_failures: u32,
    /// Calls rejected since the breaker was built.
    pub rejected_calls: u64,
    /// Results dropped because they arrived after the breaker left the generation they
    /// started in. A success arriving while the window is full of successes is not checked
    /// (it could change nothing, in any generation) and so not counted here.
    pub late_results: u64,
}
