//! The client's stream metrics, registered once per client.

use std::time::Duration;

use hive_core::{ModelId, metric};
use metrics::{Counter, Histogram};

/// One model's stream handles on the installed `metrics` recorder.
#[derive(Debug)]
pub(crate) struct Instruments {
    first_token: Histogram,
    cuts: Counter,
    stalls: Counter,
}

impl Instruments {
    pub(crate) fn register(model: ModelId) -> Self {
        let name = model.as_str();
        Self {
            first_token: metrics::histogram!(metric::STREAM_FIRST_TOKEN_SECONDS, "model" => name),
            cuts: metrics::counter!(metric::STREAM_CUTS_TOTAL, "model" => name),
            stalls: metrics::counter!(metric::STREAM_STALLS_TOTAL, "model" => name),
        }
    }

    pub(crate) fn first_token(&self, after: Duration) {
        self.first_token.record(after.as_secs_f64());
    }

    pub(crate) fn cut(&self) {
        self.cuts.increment(1);
    }

    pub(crate) fn stall(&self) {
        self.stalls.increment(1);
    }
}
