//! [`Route`]: one model the router may call.

use std::{fmt, sync::Arc, time::Duration};

use hive_core::{Available, ModelId, Outcome};

use crate::{AttemptMetrics, RouteStats};

/// One model behind the router: its name, its service (usually its whole resilience stack),
/// its context window, and what says whether it can take a call now.
pub struct Route<S> {
    pub(crate) model: ModelId,
    pub(crate) service: S,
    pub(crate) context_window: Option<u64>,
    pub(crate) weight: f64,
    pub(crate) availability: Vec<Arc<dyn Available>>,
    pub(crate) min_attempt_time: Duration,
    pub(crate) stats: Arc<RouteStats>,
    pub(crate) observer: Option<Observer>,
    pub(crate) metrics: Option<AttemptMetrics>,
}

/// Told of every attempt's outcome and latency.
pub(crate) type Observer = Arc<dyn Fn(&Outcome, Duration) + Send + Sync>;

impl<S> Route<S> {
    /// A route to `model` through `service`.
    pub fn new(model: impl Into<ModelId>, service: S) -> Self {
        Self {
            model: model.into(),
            service,
            context_window: None,
            weight: 1.0,
            availability: Vec::new(),
            min_attempt_time: Duration::ZERO,
            stats: Arc::default(),
            observer: None,
            metrics: None,
        }
    }

    /// The model's context window in tokens: a request that exceeded a smaller model's goes
    /// here.
    #[must_use]
    pub fn context_window(mut self, tokens: u64) -> Self {
        self.context_window = Some(tokens);
        self
    }

    /// The model's share in weighted routing, relative to the other routes' (default 1):
    /// its live score is multiplied by it, so a model of weight 2 draws twice the first
    /// picks of an equal one. Above zero and finite.
    #[must_use]
    pub fn weight(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }

    /// Skip this model while `signal` says it cannot take a call (its breaker handle, its
    /// health handle); every signal must agree.
    #[must_use]
    pub fn available_when(mut self, signal: impl Available + 'static) -> Self {
        self.availability.push(Arc::new(signal));
        self
    }

    /// Do not start an attempt on this model with less than this left of the request's
    /// deadline. Default zero.
    #[must_use]
    pub fn min_attempt_time(mut self, time: Duration) -> Self {
        self.min_attempt_time = time;
        self
    }

    /// Calls `observe` with the outcome and latency of every attempt on this model (a
    /// passive health signal, e.g. `HealthHandle::record_outcome`). Attempts are then timed.
    #[must_use]
    pub fn observe(mut self, observe: impl Fn(&Outcome, Duration) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observe));
        self
    }

    /// Keeps the live statistics (success rate, latency) in `stats`, shared with every
    /// other route to the same model: routers that share a model's stack should share its
    /// statistics too, so weighted routing and hedging see all of its traffic.
    #[must_use]
    pub fn stats(mut self, stats: Arc<RouteStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Records every attempt's duration in `metrics` (registered once per model and shared
    /// by its routes). A router built with metrics on registers one itself for routes that
    /// have none.
    #[must_use]
    pub fn metrics(mut self, metrics: AttemptMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The model.
    pub fn model(&self) -> ModelId {
        self.model
    }

    /// The live statistics of the model on this route.
    pub fn live_stats(&self) -> &Arc<RouteStats> {
        &self.stats
    }

    pub(crate) fn is_available(&self) -> bool {
        self.availability.iter().all(|a| a.available())
    }

    /// When every signal would admit a call by itself (the longest wait of them), or `None`
    /// when one will not.
    pub(crate) fn ready_in(&self) -> Option<Duration> {
        self.availability
            .iter()
            .try_fold(Duration::ZERO, |longest, a| {
                Some(longest.max(a.ready_in()?))
            })
    }

    /// Asks every signal that would refuse a call now for an early probe.
    pub(crate) fn probe_early(&self, min_interval: Duration) -> bool {
        self.availability
            .iter()
            .all(|a| a.available() || a.probe_early(min_interval))
    }
}

impl<S> fmt::Debug for Route<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("model", &self.model)
            .field("context_window", &self.context_window)
            .field("weight", &self.weight)
            .field("available", &self.is_available())
            .field("min_attempt_time", &self.min_attempt_time)
            .field("success_rate", &self.stats.success_rate())
            .field("latency", &self.stats.latency())
            .finish_non_exhaustive()
    }
}
