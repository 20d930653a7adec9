//! Retry's metrics, registered once per config; retries and give-ups are the cold path, and
//! each (model, label) handle is resolved at its first use.

use std::sync::OnceLock;

use hive_core::{FailureClass, ModelId, RetryStop, metric};
use metrics::Counter;

const STOPS: [RetryStop; 5] = [
    RetryStop::Exhausted,
    RetryStop::BudgetDenied,
    RetryStop::DeadlineTooClose,
    RetryStop::RetryAfterTooLong,
    RetryStop::Unavailable,
];

/// Retry's handles on the installed `metrics` recorder.
#[derive(Debug)]
pub(crate) struct Instruments {
    model: ModelId,
    retries: [OnceLock<Counter>; FailureClass::ALL.len()],
    stops: [OnceLock<Counter>; STOPS.len()],
}

impl Instruments {
    pub(crate) fn new(model: ModelId) -> Self {
        Self {
            model,
            retries: Default::default(),
            stops: Default::default(),
        }
    }

    /// Counts a retry of a failure of `class`.
    pub(crate) fn retry(&self, class: FailureClass) {
        self.retries[class as usize]
            .get_or_init(|| {
                metrics::counter!(
                    metric::RETRIES_TOTAL,
                    "model" => self.model.as_str(),
                    "class" => class.as_str()
                )
            })
            .increment(1);
    }

    /// Counts a failure returned without a further attempt.
    pub(crate) fn stop(&self, reason: RetryStop) {
        let index = STOPS.iter().position(|r| *r == reason).unwrap_or(0);
        self.stops[index]
            .get_or_init(|| {
                metrics::counter!(
                    metric::RETRY_STOPS_TOTAL,
                    "model" => self.model.as_str(),
                    "reason" => reason.as_str()
                )
            })
            .increment(1);
    }
}
