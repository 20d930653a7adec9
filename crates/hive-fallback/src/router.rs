//! [`FallbackRouter`]: a `Service` over per-model services.

use std::{
    fmt,
    marker::PhantomData,
    sync::{Arc, RwLock},
    task::{Context, Poll},
    time::Duration,
};

use hive_core::{
    BoxError, Classify, ConfigError, ErrorClassifier, EventSink, ModelId, check_duration,
};
use tower_service::Service;

use crate::{
    AttemptMetrics, FallbackPolicy, HedgeDelay, Route, RouterMetrics, Strategy,
    future::ResponseFuture,
    shared::{Fallback, LastResort, OnAnswer, OnResult, RequestEnd, Routed, Shared},
};

/// How a builder was told to pace last-resort probes.
#[derive(Clone, Debug)]
enum LastResortSetting {
    Interval(Option<Duration>),
    Shared(Arc<LastResort>),
}

/// The default interval of last-resort probes: see
/// [`FallbackRouterBuilder::last_resort`].
pub const DEFAULT_LAST_RESORT_INTERVAL: Duration = Duration::from_secs(1);

/// Routes each request to its models by a [`Strategy`] (sequential by default: priority
/// order, the next model only after a failure); the first answer wins; a failure the
/// [`FallbackPolicy`] names moves on to the next model; an unavailable model is skipped
/// without a call. One deadline covers every attempt; it is passed down as the
/// [`Deadline`](hive_core::Deadline) of each attempt, and an attempt that cannot fit is not
/// started. When no model answers, an optional degraded answer (static, or the last good
/// one) is returned, marked [`Routed::degraded`].
///
/// `poll_ready` is always ready: each model's service is polled ready inside the response
/// future, just before it is called, so one busy model never blocks the others.
///
/// To call it from spawned tasks, wrap it in `tower::util::BoxCloneSyncService`: with
/// `BoxError` errors inside, rustc cannot always prove the unboxed future `Send`
/// ("implementation of `From` is not general enough"), a known limit of its inference.
pub struct FallbackRouter<S, Res, C = ErrorClassifier> {
    shared: Arc<Shared<S, Res>>,
    classifier: C,
}

impl<S, Res, C: Clone> Clone for FallbackRouter<S, Res, C> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            classifier: self.classifier.clone(),
        }
    }
}

impl<S, Res> FallbackRouter<S, Res> {
    /// A builder; add routes in priority order.
    pub fn builder() -> FallbackRouterBuilder<S, Res> {
        FallbackRouterBuilder {
            routes: Vec::new(),
            strategy: Strategy::Sequential,
            timeout: None,
            policy: FallbackPolicy::default(),
            last_resort: LastResortSetting::Interval(Some(DEFAULT_LAST_RESORT_INTERVAL)),
            degraded: None,
            on_answer: None,
            on_result: None,
            events: EventSink::none(),
            metrics: MetricsSetting::Off,
            name: None,
            classifier: ErrorClassifier,
            _response: PhantomData,
        }
    }
}

impl<S, Res, C> FallbackRouter<S, Res, C> {
    /// The models, in priority order.
    pub fn models(&self) -> Vec<ModelId> {
        self.shared.routes.iter().map(|r| r.model).collect()
    }
}

impl<S, Res, C, Req> Service<Req> for FallbackRouter<S, Res, C>
where
    S: Service<Req, Response = Res> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Res, S::Error> + Clone,
    Req: Clone,
{
    type Response = Routed<Res>;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, Res, C>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        ResponseFuture::new(Arc::clone(&self.shared), self.classifier.clone(), request)
    }
}

impl<S, Res, C> fmt::Debug for FallbackRouter<S, Res, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackRouter")
            .field("routes", &self.shared.routes)
            .field("strategy", &self.shared.strategy)
            .field("timeout", &self.shared.timeout)
            .field("policy", &self.shared.policy)
            .field("degraded", &self.shared.degraded.is_some())
            .finish()
    }
}

/// Builds a [`FallbackRouter`].
#[must_use]
pub struct FallbackRouterBuilder<S, Res, C = ErrorClassifier> {
    routes: Vec<Route<S>>,
    strategy: Strategy,
    timeout: Option<Duration>,
    policy: FallbackPolicy,
    last_resort: LastResortSetting,
    degraded: Option<Fallback<Res>>,
    on_answer: Option<OnAnswer<Res>>,
    on_result: Option<OnResult>,
    events: EventSink,
    metrics: MetricsSetting,
    name: Option<String>,
    classifier: C,
    _response: PhantomData<fn() -> Res>,
}

/// How a builder was told to record metrics.
#[derive(Clone, Debug)]
enum MetricsSetting {
    Off,
    /// Register handles at build, labelled with the router's name.
    Register,
    Shared(RouterMetrics),
}

impl<S, Res, C> FallbackRouterBuilder<S, Res, C> {
    /// Adds the next model, in priority order.
    pub fn route(mut self, route: Route<S>) -> Self {
        self.routes.push(route);
        self
    }

    /// How each request is spread over the models. Default [`Strategy::Sequential`].
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// One deadline for the whole request: every attempt and every fallback. An outer
    /// [`Deadline`](hive_core::Deadline) that is sooner wins.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Which outcomes fall back.
    pub fn policy(mut self, policy: FallbackPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// What the router does when every model is unavailable (every breaker open, say
    /// after a blip): with `Some(interval)` (the default, 1 s), one probe goes to the model
    /// whose break ends first — never inside a provider's `Retry-After`, at most one per
    /// `interval` for this router (and per model), once per request, within the request's
    /// deadline — and the request fails only if that probe does; with `None` the request
    /// fails at once. In the spirit of Envoy's panic threshold: without it, a blip that
    /// opened every breaker fails all traffic for a whole break. Each probe is a
    /// [`LastResort`](hive_core::ResilienceEvent::LastResort) event.
    pub fn last_resort(mut self, interval: Option<Duration>) -> Self {
        self.last_resort = LastResortSetting::Interval(interval);
        self
    }

    /// [`last_resort`](Self::last_resort) paced by a gate shared with other routers: at
    /// most one last-resort probe per its interval among all of them (a `ModelManager`
    /// shares one between its routes and per-request routers).
    pub fn last_resort_gate(mut self, gate: Arc<LastResort>) -> Self {
        self.last_resort = LastResortSetting::Shared(gate);
        self
    }

    /// When no model answers, answer `response` (marked degraded) instead of an error.
    pub fn degraded_static(self, response: Res) -> Self
    where
        Res: Clone + Send + Sync + 'static,
    {
        self.degraded_with(move || Some(response.clone()))
    }

    /// When no model answers, answer what `make` makes (marked degraded), if it makes one:
    /// for answers that cannot be cloned (a stream), or that depend on the moment.
    pub fn degraded_with(mut self, make: impl Fn() -> Option<Res> + Send + Sync + 'static) -> Self {
        self.degraded = Some(Arc::new(make));
        self
    }

    /// When no model answers, answer the last good answer (marked degraded), if there was
    /// one. Each answer is kept with a non-blocking write; a write that would wait is
    /// skipped.
    pub fn degraded_last_good(mut self) -> Self
    where
        Res: Clone + Send + Sync + 'static,
    {
        let last = Arc::new(RwLock::new(None::<Res>));
        let keep = Arc::clone(&last);
        self.on_answer = Some(Arc::new(move |response: &Res| {
            if let Ok(mut slot) = keep.try_write() {
                *slot = Some(response.clone());
            }
        }));
        self.degraded = Some(Arc::new(move || {
            last.read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone()
        }));
        self
    }

    /// Called once per request with how it ended: a model answered it (an answer, or a
    /// model's refusal such as a bad request), the degraded answer went back, or it failed.
    /// Keep it cheap: it runs on every request.
    pub fn on_result(mut self, record: impl Fn(RequestEnd) + Send + Sync + 'static) -> Self {
        self.on_result = Some(Arc::new(record));
        self
    }

    /// Where failovers are reported.
    pub fn events(mut self, events: EventSink) -> Self {
        self.events = events;
        self
    }

    /// The route's name: the `route` label of its metrics and the `hive.route` field of its
    /// request spans. Default `default`.
    pub fn name(mut self, route: impl Into<String>) -> Self {
        self.name = Some(route.into());
        self
    }

    /// Records metrics through the `metrics` facade, labelled with the router's
    /// [`name`](Self::name): requests by result and their duration, hedges, and for each
    /// route its attempts' duration; failovers and last-resort probes by model. Handles are
    /// registered at build (install the recorder first); a request then bumps handles it
    /// already holds. Default off.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = if on {
            MetricsSetting::Register
        } else {
            MetricsSetting::Off
        };
        self
    }

    /// [`metrics`](Self::metrics) with handles registered once and shared by several
    /// routers of one route (routes then bring their own [`AttemptMetrics`](crate::AttemptMetrics)).
    pub fn metrics_handles(mut self, metrics: RouterMetrics) -> Self {
        self.metrics = MetricsSetting::Shared(metrics);
        self
    }

    /// Uses `classifier` to decide whether an answer is good.
    pub fn classifier<C2>(self, classifier: C2) -> FallbackRouterBuilder<S, Res, C2> {
        FallbackRouterBuilder {
            routes: self.routes,
            strategy: self.strategy,
            timeout: self.timeout,
            policy: self.policy,
            last_resort: self.last_resort,
            degraded: self.degraded,
            on_answer: self.on_answer,
            on_result: self.on_result,
            events: self.events,
            metrics: self.metrics,
            name: self.name,
            classifier,
            _response: PhantomData,
        }
    }

    /// Validates: at least one route, distinct models, a timeout above zero, weights above
    /// zero.
    pub fn build(self) -> Result<FallbackRouter<S, Res, C>, ConfigError> {
        if self.routes.is_empty() {
            return Err(ConfigError::new(
                "route",
                "a router needs at least one route",
            ));
        }
        for (i, route) in self.routes.iter().enumerate() {
            if self.routes[..i].iter().any(|r| r.model == route.model) {
                return Err(ConfigError::new(
                    "route",
                    format!("model `{}` is routed twice", route.model),
                ));
            }
        }
        if let Some(timeout) = self.timeout {
            check_duration("timeout", timeout, false)?;
        }
        let last_resort = match self.last_resort {
            LastResortSetting::Interval(None) => None,
            LastResortSetting::Interval(Some(interval)) => Some(Arc::new(LastResort::new(
                check_duration("last_resort", interval, true)?,
            ))),
            LastResortSetting::Shared(gate) => {
                check_duration("last_resort", gate.interval(), true)?;
                Some(gate)
            }
        };
        for route in &self.routes {
            check_duration("min_attempt_time", route.min_attempt_time, true)?;
            if !(route.weight.is_finite() && route.weight > 0.0) {
                return Err(ConfigError::new(
                    "weight",
                    format!(
                        "model `{}`: must be above zero and finite, not {}",
                        route.model, route.weight
                    ),
                ));
            }
        }
        match &self.strategy {
            Strategy::Hedged {
                delay: HedgeDelay::Fixed(delay),
                ..
            } => {
                check_duration("strategy", *delay, true)?;
            }
            Strategy::Hedged {
                delay: HedgeDelay::Percentile { otherwise, .. },
                ..
            } => {
                check_duration("strategy", *otherwise, true)?;
            }
            _ => {}
        }
        match &self.strategy {
            Strategy::Parallel { first: Some(0) } => {
                return Err(ConfigError::new(
                    "strategy",
                    "a parallel race needs at least one model",
                ));
            }
            Strategy::Hedged { max_hedges: 0, .. } => {
                return Err(ConfigError::new(
                    "strategy",
                    "hedging needs max_hedges of at least 1",
                ));
            }
            Strategy::Hedged {
                delay: HedgeDelay::Percentile { percentile, .. },
                ..
            } if !(*percentile > 0.0 && *percentile < 1.0) => {
                return Err(ConfigError::new(
                    "strategy",
                    format!("hedge percentile {percentile} is outside (0, 1)"),
                ));
            }
            _ => {}
        }
        let mut routes = self.routes;
        let metrics = match self.metrics {
            MetricsSetting::Off => None,
            MetricsSetting::Shared(metrics) => Some(metrics),
            MetricsSetting::Register => {
                for r in routes.iter_mut().filter(|r| r.metrics.is_none()) {
                    r.metrics = Some(AttemptMetrics::register(r.model));
                }
                Some(RouterMetrics::register(
                    self.name.as_deref().unwrap_or("default"),
                ))
            }
        };
        let track_stats = self.strategy.tracks_stats();
        let timed = track_stats
            || metrics.is_some()
            || self.events.is_enabled()
            || routes
                .iter()
                .any(|r| r.observer.is_some() || r.metrics.is_some());
        Ok(FallbackRouter {
            shared: Arc::new(Shared {
                name: self.name,
                routes,
                strategy: self.strategy,
                track_stats,
                timed,
                far: tokio::time::Instant::now() + Duration::from_secs(10 * 365 * 24 * 3600),
                timeout: self.timeout,
                policy: self.policy,
                last_resort,
                degraded: self.degraded,
                on_answer: self.on_answer,
                on_result: self.on_result,
                events: self.events,
                metrics,
            }),
            classifier: self.classifier,
        })
    }
}

impl<S, Res, C> fmt::Debug for FallbackRouterBuilder<S, Res, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackRouterBuilder")
            .field("routes", &self.routes)
            .field("strategy", &self.strategy)
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}
