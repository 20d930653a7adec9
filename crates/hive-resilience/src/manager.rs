//! [`ModelManager`]: every model's stack, the router in front, health checks and recovery.

use std::{
    fmt,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use hive_breaker::{
    CircuitBreaker, CircuitBreakerConfig, CircuitBreakerConfigBuilder, CircuitBreakerLayer,
};
use hive_core::{
    BoxError, CircuitState, ConfigError, ErrorClassifier, EventSink, HealthStatus, ModelId,
    ResilienceEvent, SharedRandom,
};
use hive_fallback::{FallbackPolicy, FallbackRouter, Route, Strategy};
use hive_health::{
    CheckerConfig, HealthChecker, HealthGate, HealthGateLayer, HealthRegistry, ProbeRequest,
    RunningChecker,
};
use hive_retry::{Retry, RetryConfig, RetryConfigBuilder, RetryLayer};
use tokio::task::JoinSet;
use tower::{
    Layer, Service, ServiceExt,
    timeout::{Timeout, TimeoutLayer},
    util::BoxService,
};

use crate::{
    control::{ModelControl, SlowStart},
    window::RequestWindow,
};

/// One model's stack, outermost first: health gate, retry, breaker, attempt timeout.
pub type ModelStack<S, C> = HealthGate<Retry<CircuitBreaker<Timeout<S>, C>, C>>;

type Probe = BoxService<ProbeRequest, (), BoxError>;

/// How one model is reached and protected.
pub struct ModelSpec<S> {
    model: ModelId,
    service: S,
    retry: RetryConfigBuilder,
    breaker: CircuitBreakerConfigBuilder,
    attempt_timeout: Duration,
    context_window: Option<u64>,
    min_attempt_time: Duration,
    slow_start: Duration,
    passive_health: bool,
    probe: Option<Probe>,
}

impl<S> ModelSpec<S> {
    /// A model reached through `service`, with the default retry and breaker settings, a
    /// 60 s attempt timeout and a 10 s slow start after recovery.
    pub fn new(model: impl Into<ModelId>, service: S) -> Self {
        Self {
            model: model.into(),
            service,
            retry: RetryConfig::builder(),
            breaker: CircuitBreakerConfig::builder(),
            attempt_timeout: Duration::from_secs(60),
            context_window: None,
            min_attempt_time: Duration::ZERO,
            slow_start: Duration::from_secs(10),
            passive_health: true,
            probe: None,
        }
    }

    /// Adjusts the retry settings (the model and events are set by the manager).
    #[must_use]
    pub fn retry(
        mut self,
        configure: impl FnOnce(RetryConfigBuilder) -> RetryConfigBuilder,
    ) -> Self {
        self.retry = configure(self.retry);
        self
    }

    /// Adjusts the breaker settings (the model and events are set by the manager).
    #[must_use]
    pub fn breaker(
        mut self,
        configure: impl FnOnce(CircuitBreakerConfigBuilder) -> CircuitBreakerConfigBuilder,
    ) -> Self {
        self.breaker = configure(self.breaker);
        self
    }

    /// The longest one attempt may take.
    #[must_use]
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The model's context window, for context-length fallbacks.
    #[must_use]
    pub fn context_window(mut self, tokens: u64) -> Self {
        self.context_window = Some(tokens);
        self
    }

    /// Do not start an attempt on it with less than this left of the request's deadline.
    #[must_use]
    pub fn min_attempt_time(mut self, time: Duration) -> Self {
        self.min_attempt_time = time;
        self
    }

    /// How long traffic takes to ramp back after recovery (zero: all at once).
    #[must_use]
    pub fn slow_start(mut self, ramp: Duration) -> Self {
        self.slow_start = ramp;
        self
    }

    /// Whether the outcome and latency of every live call feed the model's health (error
    /// rate and latency EWMAs, `degraded_latency`). Default on; a few atomic operations
    /// and two clock reads per attempt.
    #[must_use]
    pub fn passive_health(mut self, on: bool) -> Self {
        self.passive_health = on;
        self
    }

    /// Checks the model actively with `probe` (e.g. `GET /v1/models`, which costs no tokens).
    #[must_use]
    pub fn probe<P>(mut self, probe: P) -> Self
    where
        P: Service<ProbeRequest> + Send + 'static,
        P::Future: Send + 'static,
        P::Error: Into<BoxError>,
    {
        self.probe = Some(BoxService::new(
            probe.map_response(|_| ()).map_err(Into::into),
        ));
        self
    }
}

impl<S> fmt::Debug for ModelSpec<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelSpec")
            .field("model", &self.model)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("context_window", &self.context_window)
            .field("slow_start", &self.slow_start)
            .field("probe", &self.probe.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`ModelManager`].
#[must_use]
pub struct ModelManagerBuilder<S, C = ErrorClassifier> {
    specs: Vec<ModelSpec<S>>,
    strategy: Strategy,
    timeout: Option<Duration>,
    policy: FallbackPolicy,
    events: EventSink,
    registry: Option<HealthRegistry>,
    checks: CheckerConfig,
    classifier: C,
    seed: Option<u64>,
    window: Duration,
}

impl<S> ModelManager<S> {
    /// A builder; add models in priority order.
    pub fn builder() -> ModelManagerBuilder<S> {
        ModelManagerBuilder {
            specs: Vec::new(),
            strategy: Strategy::Sequential,
            timeout: None,
            policy: FallbackPolicy::default(),
            events: EventSink::none(),
            registry: None,
            checks: CheckerConfig::default(),
            classifier: ErrorClassifier,
            seed: None,
            window: Duration::from_secs(60),
        }
    }
}

impl<S, C> ModelManagerBuilder<S, C> {
    /// Adds the next model, in priority order.
    pub fn model(mut self, spec: ModelSpec<S>) -> Self {
        self.specs.push(spec);
        self
    }

    /// How requests are spread over the models. Default sequential.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// One deadline per request, over every attempt and fallback.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Which outcomes fall back.
    pub fn policy(mut self, policy: FallbackPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Where every layer reports (breakers also feed the health registry).
    pub fn events(mut self, events: EventSink) -> Self {
        self.events = events;
        self
    }

    /// Uses this health registry (default: a new one with default settings, reporting to
    /// [`events`](Self::events)).
    pub fn registry(mut self, registry: HealthRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// When and how long to check the models that have a probe.
    pub fn checks(mut self, checks: CheckerConfig) -> Self {
        self.checks = checks;
        self
    }

    /// The span over which request availability is counted (whole seconds, at least 1).
    /// Default 60 s.
    pub fn availability_window(mut self, span: Duration) -> Self {
        self.window = span;
        self
    }

    /// Seeds the randomness of jitter and slow start (tests, simulations).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Uses `classifier` for retry, breaker and router: it sees each answer, or the
    /// `BoxError` of the attempt timeout and the model.
    pub fn classifier<C2>(self, classifier: C2) -> ModelManagerBuilder<S, C2> {
        ModelManagerBuilder {
            specs: self.specs,
            strategy: self.strategy,
            timeout: self.timeout,
            policy: self.policy,
            events: self.events,
            registry: self.registry,
            checks: self.checks,
            classifier,
            seed: self.seed,
            window: self.window,
        }
    }

    /// Builds every model's stack and the router; says which setting of which model is
    /// wrong.
    pub fn build<Req, Res>(self) -> Result<ModelManager<S, Res, C>, ConfigError>
    where
        S: Service<Req, Response = Res> + Clone,
        S::Error: Into<BoxError>,
        C: Clone,
    {
        // A registry of our own reports its health changes where every layer reports.
        let registry = match self.registry {
            Some(registry) => registry,
            None => HealthRegistry::builder()
                .events(self.events.clone())
                .build()?,
        };
        let random = SharedRandom::new(self.seed);
        let registry_sink = registry.event_sink();
        let user_sink = self.events.clone();
        let events = EventSink::from_fn(move |event: &ResilienceEvent| {
            registry_sink.emit(|| event.clone());
            user_sink.emit(|| event.clone());
        });
        let window = Arc::new(RequestWindow::new(self.window));
        let counter = Arc::clone(&window);
        let mut router = FallbackRouter::builder()
            .on_result(move |answered| counter.record(answered))
            .strategy(self.strategy)
            .policy(self.policy)
            .events(events.clone())
            .classifier(self.classifier.clone());
        if let Some(timeout) = self.timeout {
            router = router.timeout(timeout);
        }
        let mut controls = Vec::new();
        let mut probes = Vec::new();
        for spec in self.specs {
            let model = spec.model;
            let named = |e: ConfigError| {
                ConfigError::new(e.field, format!("model `{model}`: {}", e.problem))
            };
            let mut retry = spec.retry.model(model).events(events.clone());
            if let Some(seed) = self.seed {
                retry = retry.seed(seed ^ random.next_u64());
            }
            let retry = RetryLayer::new(retry.build().map_err(named)?)
                .with_classifier(self.classifier.clone());
            let breaker = CircuitBreakerLayer::new(
                spec.breaker
                    .model(model)
                    .events(events.clone())
                    .build()
                    .map_err(named)?,
            )
            .with_classifier(self.classifier.clone());
            if spec.attempt_timeout.is_zero() {
                return Err(named(ConfigError::new(
                    "attempt_timeout",
                    "must be above zero",
                )));
            }
            let health = registry.register(model);
            let control = ModelControl {
                model,
                breaker: breaker.handle(),
                health: health.clone(),
                drained: Arc::new(AtomicBool::new(false)),
                slow_start: Arc::new(SlowStart::new(spec.slow_start, random.clone())),
                events: events.clone(),
            };
            let stack =
                HealthGateLayer::new(health).layer(retry.layer(
                    breaker.layer(TimeoutLayer::new(spec.attempt_timeout).layer(spec.service)),
                ));
            let mut route = Route::new(model, stack)
                .available_when(control.route_gate())
                .min_attempt_time(spec.min_attempt_time);
            if let Some(window) = spec.context_window {
                route = route.context_window(window);
            }
            if spec.passive_health {
                let health = control.health.clone();
                route = route.observe(move |outcome, latency| {
                    health.record_outcome(outcome, latency);
                });
            }
            router = router.route(route);
            if let Some(probe) = spec.probe {
                probes.push((model, probe));
            }
            controls.push(control);
        }
        let router = router.build()?;
        HealthChecker::new(registry.clone(), self.checks.clone())?;
        Ok(ModelManager {
            router,
            window,
            controls,
            registry,
            checks: self.checks,
            probes,
        })
    }
}

impl<S, C> fmt::Debug for ModelManagerBuilder<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelManagerBuilder")
            .field("models", &self.specs)
            .field("strategy", &self.strategy)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Every model's stack (health gate → retry → breaker → attempt timeout → model) behind one
/// [`FallbackRouter`], with the controls to recover them by hand and a health checker that
/// recovers them automatically.
///
/// [`service`](Self::service) is a plain tower `Service` to drop into axum, hyper or tonic.
/// [`start`](Self::start) runs the health checks and automatic recovery: when the checker
/// sees a model come back, its open breaker goes half-open at once and traffic ramps back
/// over its slow-start time.
pub struct ModelManager<S, Res = (), C = ErrorClassifier> {
    router: FallbackRouter<ModelStack<S, C>, Res, C>,
    window: Arc<RequestWindow>,
    controls: Vec<ModelControl>,
    registry: HealthRegistry,
    checks: CheckerConfig,
    probes: Vec<(ModelId, Probe)>,
}

/// Which models can take calls now, and how many requests were answered lately.
#[derive(Clone, Debug, PartialEq)]
pub struct Availability {
    /// Per model, in priority order.
    pub models: Vec<ModelAvailability>,
    /// The span the request counts cover.
    pub window: Duration,
    /// Requests in the window.
    pub requests: u64,
    /// Requests a model answered (degraded answers and errors not counted).
    pub answered: u64,
}

/// One model's availability.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelAvailability {
    /// The model.
    pub model: ModelId,
    /// Its health.
    pub health: HealthStatus,
    /// Its breaker.
    pub breaker: CircuitState,
    /// Whether it is drained.
    pub drained: bool,
    /// The share of traffic it may take (below 1 during slow start).
    pub traffic_share: f64,
    /// Whether a request now could use it.
    pub up: bool,
}

impl Availability {
    /// Models that could take a call now.
    pub fn up(&self) -> usize {
        self.models.iter().filter(|m| m.up).count()
    }

    /// The share of requests answered over the window, if there were any.
    pub fn ratio(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.answered as f64 / self.requests as f64)
    }
}

impl<S, Res, C: Clone> ModelManager<S, Res, C> {
    /// The service to call: the router over every model's stack. Cheap to clone.
    pub fn service(&self) -> FallbackRouter<ModelStack<S, C>, Res, C> {
        self.router.clone()
    }

    /// The controls of `model`.
    pub fn control(&self, model: impl Into<ModelId>) -> Option<&ModelControl> {
        let model = model.into();
        self.controls.iter().find(|c| c.model == model)
    }

    /// Every model's controls, in priority order.
    pub fn controls(&self) -> &[ModelControl] {
        &self.controls
    }

    /// The health registry.
    pub fn registry(&self) -> &HealthRegistry {
        &self.registry
    }

    /// Which models can take calls now, and the requests answered over the window.
    pub fn availability(&self) -> Availability {
        let (answered, requests) = self.window.counts();
        Availability {
            window: self.window.span(),
            requests,
            answered,
            models: self
                .controls
                .iter()
                .map(|c| ModelAvailability {
                    model: c.model,
                    health: c.health.status(),
                    breaker: c.breaker.state(),
                    drained: c.is_drained(),
                    traffic_share: c.traffic_share(),
                    up: c.is_up(),
                })
                .collect(),
        }
    }

    /// Starts the health checks of the models that have a probe, and automatic recovery.
    /// Needs a tokio runtime; [`Running::stop`] ends both.
    pub fn start(&mut self) -> Result<Running, ConfigError> {
        let mut checker = HealthChecker::new(self.registry.clone(), self.checks.clone())?;
        for (model, probe) in self.probes.drain(..) {
            checker = checker.probe(model, probe);
        }
        let checks = checker.start();
        let mut recovery = JoinSet::new();
        let mut changes = self.registry.subscribe();
        let controls = self.controls.clone();
        recovery.spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match changes.recv().await {
                    Ok(change) => {
                        // The checks say the model is back (its breaker, still open, may keep
                        // it degraded until recovery half-opens it).
                        if change.checks_recovered() {
                            if let Some(control) = controls.iter().find(|c| c.model == change.model)
                            {
                                control.recovered();
                            }
                        }
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "recovery fell behind health changes");
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Running { checks, recovery })
    }
}

impl<S, Res, C> fmt::Debug for ModelManager<S, Res, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelManager")
            .field("controls", &self.controls)
            .field("checks", &self.checks)
            .finish_non_exhaustive()
    }
}

/// The running health checks and recovery of a [`ModelManager`].
#[derive(Debug)]
pub struct Running {
    checks: RunningChecker,
    recovery: JoinSet<()>,
}

impl Running {
    /// Ends the checks and recovery, and waits until every task is gone.
    pub async fn stop(mut self) {
        self.recovery.abort_all();
        while self.recovery.join_next().await.is_some() {}
        self.checks.stop().await;
    }
}
