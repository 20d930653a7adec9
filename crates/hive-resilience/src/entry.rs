//! One model's stack, built once: health gate → retry → breaker → attempt timeout → model,
//! with its controls and live statistics, and the route views every router makes of it.

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use hive_breaker::{CircuitBreaker, CircuitBreakerLayer};
use hive_core::{ConfigError, EventSink, ModelId, SharedRandom, check_duration};
use hive_fallback::{AttemptMetrics, Route, RouteStats};
use hive_health::{CheckerConfig, HealthGate, HealthGateLayer, HealthRegistry};
use hive_monitor::{ModelRecorder, Monitor};
use hive_retry::{Retry, RetryLayer};
use tower::{
    Layer,
    timeout::{Timeout, TimeoutLayer},
};

use crate::{
    control::{ModelControl, SlowStart},
    spec::{ModelSpec, Probe, check_weight},
};

/// One model's stack, outermost first: health gate, retry, breaker, attempt timeout.
pub type ModelStack<S, C> = HealthGate<Retry<CircuitBreaker<Timeout<S>, C>, C>>;

/// What the manager keeps of one model: its stack and everything routes share about it.
/// Clones share the stack's state (breaker, health, budget, statistics).
pub(crate) struct ModelEntry<S, C> {
    pub(crate) stack: ModelStack<S, C>,
    pub(crate) control: ModelControl,
    pub(crate) stats: Arc<RouteStats>,
    pub(crate) context_window: Option<u64>,
    pub(crate) weight: f64,
    pub(crate) min_attempt_time: Duration,
    pub(crate) passive_health: bool,
    pub(crate) attempt_metrics: Option<AttemptMetrics>,
    pub(crate) recorder: Option<ModelRecorder>,
}

impl<S: Clone, C: Clone> Clone for ModelEntry<S, C> {
    fn clone(&self) -> Self {
        Self {
            stack: self.stack.clone(),
            control: self.control.clone(),
            stats: Arc::clone(&self.stats),
            context_window: self.context_window,
            weight: self.weight,
            min_attempt_time: self.min_attempt_time,
            passive_health: self.passive_health,
            attempt_metrics: self.attempt_metrics.clone(),
            recorder: self.recorder.clone(),
        }
    }
}

/// What building a model needs from the manager.
pub(crate) struct Shared<'a, C> {
    pub(crate) registry: &'a HealthRegistry,
    pub(crate) events: &'a EventSink,
    pub(crate) classifier: &'a C,
    pub(crate) random: &'a SharedRandom,
    pub(crate) seed: Option<u64>,
    pub(crate) metrics: bool,
    pub(crate) monitor: Option<&'a Monitor>,
}

/// A model's active check: its probe, and its own timing if it has one.
pub(crate) struct ModelProbe {
    pub(crate) probe: Probe,
    pub(crate) checks: Option<CheckerConfig>,
}

impl<S, C: Clone> ModelEntry<S, C> {
    /// Builds the stack of `spec`; names the model in any config error. Returns the entry
    /// and the model's probe, if it has one.
    pub(crate) fn build(
        spec: ModelSpec<S>,
        shared: &Shared<'_, C>,
    ) -> Result<(Self, Option<ModelProbe>), ConfigError> {
        let model = spec.model;
        let named =
            |e: ConfigError| ConfigError::new(e.field, format!("model `{model}`: {}", e.problem));
        check_duration("attempt_timeout", spec.attempt_timeout, false).map_err(named)?;
        check_duration("slow_start", spec.slow_start, true).map_err(named)?;
        check_duration("min_attempt_time", spec.min_attempt_time, true).map_err(named)?;
        check_weight(model, spec.weight)?;
        let breaker = spec
            .breaker
            .model(model)
            .events(shared.events.clone())
            .metrics(shared.metrics);
        // A probe is never cut short before the attempt's own limit.
        let max_wait = breaker
            .clone()
            .build()
            .map_err(named)?
            .max_wait_in_half_open();
        let breaker = breaker
            .max_wait_in_half_open(max_wait.max(spec.attempt_timeout))
            .build()
            .map_err(named)?;
        let (breaker, breaker_handle) = CircuitBreakerLayer::shared(breaker);
        let mut retry = spec
            .retry
            .model(model)
            .events(shared.events.clone())
            .metrics(shared.metrics)
            .retry_only_while(breaker_handle.clone());
        if let Some(seed) = shared.seed {
            retry = retry.seed(seed ^ shared.random.next_u64());
        }
        let retry = RetryLayer::new(retry.build().map_err(named)?)
            .with_classifier(shared.classifier.clone());
        let breaker = breaker.with_classifier(shared.classifier.clone());
        // A model the registry knows had a breaker before this one (a rebuilt stack).
        let replaces = shared.registry.get(model).is_some();
        let health = shared.registry.register(model);
        let control = ModelControl {
            model,
            breaker: breaker_handle,
            health: health.clone(),
            drained: Arc::new(AtomicBool::new(false)),
            slow_start: Arc::new(SlowStart::new(spec.slow_start, shared.random.clone())),
            events: shared.events.clone(),
        };
        let stack = HealthGateLayer::new(health).layer(
            retry.layer(breaker.layer(TimeoutLayer::new(spec.attempt_timeout).layer(spec.service))),
        );
        if replaces {
            shared
                .events
                .emit(|| hive_core::ResilienceEvent::BreakerReplaced { model });
        }
        Ok((
            Self {
                stack,
                control,
                stats: Arc::default(),
                context_window: spec.context_window,
                weight: spec.weight,
                min_attempt_time: spec.min_attempt_time,
                passive_health: spec.passive_health,
                attempt_metrics: shared.metrics.then(|| AttemptMetrics::register(model)),
                recorder: shared.monitor.map(|monitor| monitor.model(model)),
            },
            spec.probe.map(|probe| ModelProbe {
                probe,
                checks: spec.checks,
            }),
        ))
    }
}

impl<S, C> ModelEntry<S, C> {
    pub(crate) fn model(&self) -> ModelId {
        self.control.model
    }
}

impl<S: Clone, C: Clone> ModelEntry<S, C> {
    /// A router's view of this model: the same stack (clones share its breaker, health and
    /// budget), gate, statistics and passive health.
    pub(crate) fn route(&self) -> Route<ModelStack<S, C>> {
        let mut route = Route::new(self.model(), self.stack.clone())
            .available_when(self.control.route_gate())
            .min_attempt_time(self.min_attempt_time)
            .weight(self.weight)
            .stats(Arc::clone(&self.stats));
        if let Some(window) = self.context_window {
            route = route.context_window(window);
        }
        if let Some(metrics) = &self.attempt_metrics {
            route = route.metrics(metrics.clone());
        }
        let health = self.passive_health.then(|| self.control.health.clone());
        let recorder = self.recorder.clone();
        if health.is_some() || recorder.is_some() {
            route = route.observe(move |outcome, latency| {
                if let Some(health) = &health {
                    health.record_outcome(outcome, latency);
                }
                if let Some(recorder) = &recorder {
                    recorder.record(outcome, latency);
                }
            });
        }
        route
    }
}
