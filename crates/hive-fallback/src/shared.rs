//! What every request of one router shares: the routes, the strategy and the settings; and
//! the answer type. The bottom of the crate: the futures and the router build on it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use hive_core::{ModelId, SharedRandom, micros};
use tokio::time::Instant;

use crate::{FallbackPolicy, Route, RouterMetrics, Strategy};

/// An answer from the router, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routed<T> {
    /// The answer.
    pub response: T,
    /// The model that answered; `None` for a degraded answer.
    pub model: Option<ModelId>,
    /// Attempts made (models called), the answering one included.
    pub attempts: u32,
    /// Whether this is the configured degraded answer because no model answered.
    pub degraded: bool,
}

pub(crate) type Fallback<Res> = Arc<dyn Fn() -> Option<Res> + Send + Sync>;
pub(crate) type OnAnswer<Res> = Arc<dyn Fn(&Res) + Send + Sync>;
pub(crate) type OnResult = Arc<dyn Fn(RequestEnd) + Send + Sync>;

/// How a request through a router ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestEnd {
    /// A model answered: an answer, or its refusal of the request (a bad request …).
    Answered = 0,
    /// No model could; the degraded answer went back.
    Degraded = 1,
    /// The request got an error.
    Failed = 2,
}

impl RequestEnd {
    /// A short stable name, for metric labels and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
        }
    }
}

pub(crate) struct Shared<S, Res> {
    /// The route's name, in spans and metrics.
    pub(crate) name: Option<String>,
    pub(crate) routes: Vec<Route<S>>,
    pub(crate) strategy: Strategy,
    pub(crate) track_stats: bool,
    /// Whether attempts are timed (for statistics or failover events); else the success
    /// path reads no clock.
    pub(crate) timed: bool,
    /// An instant ten years after the router was built: the timer of a request without a
    /// deadline, never reached.
    pub(crate) far: tokio::time::Instant,
    pub(crate) timeout: Option<Duration>,
    pub(crate) policy: FallbackPolicy,
    /// When every model is unavailable: the gate of last-resort probes (`None`: fail at
    /// once).
    pub(crate) last_resort: Option<Arc<LastResort>>,
    pub(crate) degraded: Option<Fallback<Res>>,
    pub(crate) on_answer: Option<OnAnswer<Res>>,
    pub(crate) on_result: Option<OnResult>,
    pub(crate) events: hive_core::EventSink,
    pub(crate) metrics: Option<RouterMetrics>,
}

impl<S, Res> Shared<S, Res> {
    /// For weighted routing: a first route drawn in proportion to the live scores (times
    /// their weights) of the available routes.
    pub(crate) fn weighted_first(&self, random: &SharedRandom) -> Option<usize> {
        let score = |r: &Route<S>| {
            if r.is_available() {
                r.stats.score() * r.weight
            } else {
                0.0
            }
        };
        let total: f64 = self.routes.iter().map(score).sum();
        if total <= 0.0 {
            return None;
        }
        let mut target = random.unit() * total;
        for (index, route) in self.routes.iter().enumerate() {
            let s = score(route);
            if s > 0.0 && target < s {
                return Some(index);
            }
            target -= s;
        }
        self.routes.iter().rposition(|r| score(r) > 0.0)
    }

    /// The last resort when every route was skipped as unavailable: the route whose model
    /// will be back soonest by itself (the end of its break), if one lets an early probe
    /// through now. Returns it and how much of its break was left.
    pub(crate) fn last_resort(&self) -> Option<(usize, Duration)> {
        let gate = self.last_resort.as_ref()?;
        let (index, left) = self
            .routes
            .iter()
            .enumerate()
            .filter_map(|(i, route)| route.ready_in().map(|left| (i, left)))
            .min_by_key(|(_, left)| *left)?;
        (gate.try_claim() && self.routes[index].probe_early(gate.interval)).then_some((index, left))
    }
}

/// The pace of last-resort probes: at most one per interval among the routers that share
/// it (see [`FallbackRouterBuilder::last_resort`](crate::FallbackRouterBuilder::last_resort)).
#[derive(Debug)]
pub struct LastResort {
    interval: Duration,
    epoch: Instant,
    /// µs since `epoch` when the next probe may go.
    next_at: AtomicU64,
}

impl LastResort {
    /// At most one last-resort probe per `interval` among the routers given this gate.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            epoch: Instant::now(),
            next_at: AtomicU64::new(0),
        }
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Takes the turn of the next probe, if its time has come.
    fn try_claim(&self) -> bool {
        let now = micros(Instant::now().saturating_duration_since(self.epoch));
        let next = self.next_at.load(Ordering::Acquire);
        now >= next
            && self
                .next_at
                .compare_exchange(
                    next,
                    now.saturating_add(micros(self.interval)),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }
}
