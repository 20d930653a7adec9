//! The breaker's metrics, registered once per breaker: the call path only bumps a counter it
//! already holds.

use std::sync::OnceLock;

use hive_core::{CircuitState, ModelId, Outcome, metric};
use metrics::{Counter, Gauge};

const STATES: usize = CircuitState::ALL.len();

/// The breaker's handles on the installed `metrics` recorder.
#[derive(Debug)]
pub(crate) struct Instruments {
    model: ModelId,
    /// Calls by outcome, in [`Outcome::LABELS`] order.
    calls: [Counter; Outcome::LABELS.len()],
    /// 1 for the current state, 0 for the others.
    state: [Gauge; STATES],
    /// Transitions by (from, to), each registered at its first use.
    transitions: [[OnceLock<Counter>; STATES]; STATES],
}

impl Instruments {
    pub(crate) fn register(model: ModelId) -> Self {
        let name = model.as_str();
        let state = CircuitState::ALL.map(|state| {
            metrics::gauge!(metric::BREAKER_STATE, "model" => name, "state" => state.as_str())
        });
        state[CircuitState::Closed.index()].set(1.0);
        Self {
            model,
            calls: Outcome::LABELS.map(|outcome| {
                metrics::counter!(metric::CALLS_TOTAL, "model" => name, "outcome" => outcome)
            }),
            state,
            transitions: Default::default(),
        }
    }

    /// Counts one call's outcome.
    #[inline]
    pub(crate) fn call(&self, outcome: &Outcome) {
        self.calls[outcome.label_index()].increment(1);
    }

    /// Moves the state gauges. Called under the breaker's transition lock, so that two
    /// transitions can never leave two states at 1.
    pub(crate) fn state_changed(&self, from: CircuitState, to: CircuitState) {
        self.state[from.index()].set(0.0);
        self.state[to.index()].set(1.0);
    }

    /// Counts a transition.
    pub(crate) fn transition(&self, from: CircuitState, to: CircuitState) {
        self.transitions[from.index()][to.index()]
            .get_or_init(|| {
                metrics::counter!(
                    metric::BREAKER_TRANSITIONS_TOTAL,
                    "model" => self.model.as_str(),
                    "from" => from.as_str(),
                    "to" => to.as_str()
                )
            })
            .increment(1);
    }
}
