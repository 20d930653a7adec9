//! What a user gives the manager: how each model is reached and protected ([`ModelSpec`]),
//! and how requests are spread over them ([`RouteSpec`]).

use std::{fmt, time::Duration};

use hive_breaker::{CircuitBreakerConfig, CircuitBreakerConfigBuilder};
use hive_core::{BoxError, ConfigError, ModelId};
use hive_fallback::{FallbackPolicy, Strategy};
use hive_health::{CheckerConfig, ProbeRequest};
use hive_retry::{RetryConfig, RetryConfigBuilder};
use tower::{Service, ServiceExt, util::BoxService};

pub(crate) type Probe = BoxService<ProbeRequest, (), BoxError>;

/// How one model is reached and protected.
pub struct ModelSpec<S> {
    pub(crate) model: ModelId,
    pub(crate) service: S,
    pub(crate) retry: RetryConfigBuilder,
    pub(crate) breaker: CircuitBreakerConfigBuilder,
    pub(crate) attempt_timeout: Duration,
    pub(crate) context_window: Option<u64>,
    pub(crate) weight: f64,
    pub(crate) min_attempt_time: Duration,
    pub(crate) slow_start: Duration,
    pub(crate) passive_health: bool,
    pub(crate) probe: Option<Probe>,
    pub(crate) checks: Option<CheckerConfig>,
}

impl<S> ModelSpec<S> {
    /// A model reached through `service`, with the default retry and breaker settings (see
    /// [`RetryConfig::builder`] and [`CircuitBreakerConfig::builder`]), a 60 s attempt
    /// timeout and a 10 s slow start after recovery.
    pub fn new(model: impl Into<ModelId>, service: S) -> Self {
        Self {
            model: model.into(),
            service,
            retry: RetryConfig::builder(),
            breaker: CircuitBreakerConfig::builder(),
            attempt_timeout: Duration::from_secs(60),
            context_window: None,
            weight: 1.0,
            min_attempt_time: Duration::ZERO,
            slow_start: Duration::from_secs(10),
            passive_health: true,
            probe: None,
            checks: None,
        }
    }

    /// Adjusts the retry settings (the model and events are set by the manager, and the
    /// retries stop as soon as the model's breaker would refuse the next attempt).
    #[must_use]
    pub fn retry(
        mut self,
        configure: impl FnOnce(RetryConfigBuilder) -> RetryConfigBuilder,
    ) -> Self {
        self.retry = configure(self.retry);
        self
    }

    /// Adjusts the breaker settings (the model and events are set by the manager; its
    /// maximum wait in half-open is at least the attempt timeout, so a probe is never cut
    /// short before the attempt's own limit).
    #[must_use]
    pub fn breaker(
        mut self,
        configure: impl FnOnce(CircuitBreakerConfigBuilder) -> CircuitBreakerConfigBuilder,
    ) -> Self {
        self.breaker = configure(self.breaker);
        self
    }

    /// The longest one attempt may take (until the answer, or the start of a stream).
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

    /// Its share in weighted routing relative to the other models' (default 1; see
    /// [`Route::weight`](hive_fallback::Route::weight)).
    #[must_use]
    pub fn weight(mut self, weight: f64) -> Self {
        self.weight = weight;
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

    /// Checks the model actively with `probe` (e.g. `GET /v1/models`, which costs no tokens,
    /// or a `max_tokens: 1` completion, which sees what callers see). When a check sees the
    /// model back, its open breaker goes half-open at once.
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

    /// Checks this model on a timing of its own instead of the manager's
    /// ([`ModelManagerBuilder::checks`](crate::ModelManagerBuilder::checks)); only with a
    /// [`probe`](Self::probe).
    #[must_use]
    pub fn checks(mut self, checks: CheckerConfig) -> Self {
        self.checks = Some(checks);
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
            .field("weight", &self.weight)
            .field("slow_start", &self.slow_start)
            .field("probe", &self.probe.is_some())
            .field("checks", &self.checks)
            .finish_non_exhaustive()
    }
}

/// A route: the models a request may go to, in order, and how it is spread over them. The
/// models are views of the manager's stacks: a model in two routes has one breaker, one
/// health and one budget. Settings left unset are the manager's (its strategy, policy,
/// deadline and last resort).
#[derive(Clone, Debug)]
#[must_use]
pub struct RouteSpec {
    pub(crate) name: String,
    pub(crate) models: Vec<String>,
    pub(crate) strategy: Option<Strategy>,
    pub(crate) policy: Option<FallbackPolicy>,
    pub(crate) timeout: Option<Option<Duration>>,
    pub(crate) last_resort: Option<Option<Duration>>,
}

impl RouteSpec {
    /// A route named `name` (what clients ask for) over `models`, in priority order.
    pub fn new<M: Into<String>>(
        name: impl Into<String>,
        models: impl IntoIterator<Item = M>,
    ) -> Self {
        Self {
            name: name.into(),
            models: models.into_iter().map(Into::into).collect(),
            strategy: None,
            policy: None,
            timeout: None,
            last_resort: None,
        }
    }

    /// How requests of this route are spread over its models.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// Which outcomes fall back on this route.
    pub fn policy(mut self, policy: FallbackPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The deadline of each request of this route (`None`: no deadline).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// What this route does when every model is unavailable (see
    /// [`FallbackRouterBuilder::last_resort`](hive_fallback::FallbackRouterBuilder::last_resort)).
    pub fn last_resort(mut self, interval: Option<Duration>) -> Self {
        self.last_resort = Some(interval);
        self
    }

    /// The route's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The route's models, in priority order.
    pub fn models(&self) -> &[String] {
        &self.models
    }
}

/// A model's weight must be above zero and finite.
pub(crate) fn check_weight(model: ModelId, weight: f64) -> Result<(), ConfigError> {
    if weight.is_finite() && weight > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            "weight",
            format!("model `{model}`: must be above zero and finite"),
        ))
    }
}
