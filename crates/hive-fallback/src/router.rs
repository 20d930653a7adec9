//! [`FallbackRouter`]: a `Service` over per-model services.

use std::{
    fmt,
    marker::PhantomData,
    sync::{Arc, RwLock},
    task::{Context, Poll},
    time::Duration,
};

use hive_core::{BoxError, Classify, ConfigError, ErrorClassifier, EventSink, ModelId};
use tower_service::Service;

use crate::{FallbackPolicy, HedgeDelay, Route, Strategy, future::ResponseFuture};

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

type Fallback<Res> = Arc<dyn Fn() -> Option<Res> + Send + Sync>;
type OnAnswer<Res> = Arc<dyn Fn(&Res) + Send + Sync>;
type OnResult = Arc<dyn Fn(bool) + Send + Sync>;

pub(crate) struct Shared<S, Res> {
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
    pub(crate) degraded: Option<Fallback<Res>>,
    pub(crate) on_answer: Option<OnAnswer<Res>>,
    pub(crate) on_result: Option<OnResult>,
    pub(crate) events: EventSink,
}

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
            degraded: None,
            on_answer: None,
            on_result: None,
            events: EventSink::none(),
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

impl<S, Res> Shared<S, Res> {
    /// For weighted routing: a first route drawn in proportion to the live scores of the
    /// available routes.
    pub(crate) fn weighted_first(&self, random: &hive_core::SharedRandom) -> Option<usize> {
        let score = |r: &Route<S>| {
            if r.is_available() {
                r.stats.score()
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
    degraded: Option<Fallback<Res>>,
    on_answer: Option<OnAnswer<Res>>,
    on_result: Option<OnResult>,
    events: EventSink,
    classifier: C,
    _response: PhantomData<fn() -> Res>,
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

    /// When no model answers, answer `response` (marked degraded) instead of an error.
    pub fn degraded_static(mut self, response: Res) -> Self
    where
        Res: Clone + Send + Sync + 'static,
    {
        self.degraded = Some(Arc::new(move || Some(response.clone())));
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

    /// Called once per request with whether a model answered it (an answer, or a model's
    /// refusal such as a bad request); a degraded answer or an error is `false`. Keep it
    /// cheap: it runs on every request.
    pub fn on_result(mut self, record: impl Fn(bool) + Send + Sync + 'static) -> Self {
        self.on_result = Some(Arc::new(record));
        self
    }

    /// Where failovers are reported.
    pub fn events(mut self, events: EventSink) -> Self {
        self.events = events;
        self
    }

    /// Uses `classifier` to decide whether an answer is good.
    pub fn classifier<C2>(self, classifier: C2) -> FallbackRouterBuilder<S, Res, C2> {
        FallbackRouterBuilder {
            routes: self.routes,
            strategy: self.strategy,
            timeout: self.timeout,
            policy: self.policy,
            degraded: self.degraded,
            on_answer: self.on_answer,
            on_result: self.on_result,
            events: self.events,
            classifier,
            _response: PhantomData,
        }
    }

    /// Validates: at least one route, distinct models, a timeout above zero.
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
        if self.timeout == Some(Duration::ZERO) {
            return Err(ConfigError::new("timeout", "must be above zero"));
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
        let track_stats = self.strategy.tracks_stats();
        let timed = track_stats
            || self.events.is_enabled()
            || self.routes.iter().any(|r| r.observer.is_some());
        Ok(FallbackRouter {
            shared: Arc::new(Shared {
                routes: self.routes,
                strategy: self.strategy,
                track_stats,
                timed,
                far: tokio::time::Instant::now() + Duration::from_secs(10 * 365 * 24 * 3600),
                timeout: self.timeout,
                policy: self.policy,
                degraded: self.degraded,
                on_answer: self.on_answer,
                on_result: self.on_result,
                events: self.events,
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
