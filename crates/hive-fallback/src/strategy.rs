//! How a router spreads one request over its models.

use std::time::Duration;

use hive_core::{Budget, SharedRandom};

/// When a hedging router starts the next model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HedgeDelay {
    /// After a fixed time.
    Fixed(Duration),
    /// After the given percentile (0..1) of the first model's recent answer latencies, once
    /// `min_samples` answers are known; after `otherwise` until then.
    Percentile {
        /// The percentile, e.g. 0.95.
        percentile: f64,
        /// Answers needed before the percentile is trusted.
        min_samples: u64,
        /// The delay used until then.
        otherwise: Duration,
    },
}

/// How a router spreads one request over its models.
#[derive(Clone, Debug)]
pub enum Strategy {
    /// One model at a time in priority order; the next only after a failure.
    Sequential,
    /// Race the first `first` available models (all when `None`) at once; the first answer
    /// wins and the others are cancelled. A failure starts the next model in priority order.
    Parallel {
        /// How many models to start at once.
        first: Option<usize>,
    },
    /// Start the first model; if it has not answered after `delay`, start the next beside
    /// it, at most `max_hedges` times per request, and only while `budget` (when set)
    /// allows. A failure starts the next model at once. The first answer wins.
    Hedged {
        /// When to start another model.
        delay: HedgeDelay,
        /// Most extra models started per request.
        max_hedges: u32,
        /// Caps hedges to a share of requests (deposit per request, withdraw per hedge).
        budget: Option<Budget>,
    },
    /// Start with a model drawn at random in proportion to its live score (success-rate
    /// EWMA per second of latency EWMA), among the available ones; then fall back in
    /// priority order.
    Weighted {
        /// The random source (seed it in tests).
        random: SharedRandom,
    },
}

impl Strategy {
    /// A short stable name, for spans and logs.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::Parallel { .. } => "parallel",
            Self::Hedged { .. } => "hedged",
            Self::Weighted { .. } => "weighted",
        }
    }

    /// Whether the routes' live statistics are used (and so must be kept).
    pub(crate) fn tracks_stats(&self) -> bool {
        matches!(
            self,
            Self::Weighted { .. }
                | Self::Hedged {
                    delay: HedgeDelay::Percentile { .. },
                    ..
                }
        )
    }
}
