//! [`ModelManager`]: every model's stack once, the routes over them, health checks and
//! recovery.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, RwLock},
    time::Duration,
};

use hive_core::{
    CircuitState, ConfigError, ErrorClassifier, EventSink, HealthStatus, ModelId, ResilienceEvent,
    SharedRandom,
};
use hive_fallback::{
    DEFAULT_LAST_RESORT_INTERVAL, FallbackPolicy, FallbackRouter, FallbackRouterBuilder,
    LastResort, RequestEnd, RouterMetrics, Strategy,
};
use hive_health::{CheckerConfig, HealthChecker, HealthRegistry, RunningChecker};
use hive_monitor::{Monitor, RequestResult};
use tokio::task::JoinSet;

use crate::{
    control::ModelControl,
    entry::{ModelEntry, ModelProbe, ModelStack, Shared},
    recovery::recover_on_checks,
    spec::{ModelSpec, RouteSpec, check_weight},
    window::RequestWindow,
};

/// The deadline of a whole request by default: every attempt and fallback of it. Two
/// minutes leaves room for a first model to time out (60 s attempts) and for the next to
/// answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The name of the default route (every model in priority order), in metrics and snapshots.
pub const DEFAULT_ROUTE: &str = "default";
/// The name routers over a request's own list of models go by, in metrics and snapshots.
pub const REQUEST_ROUTE: &str = "request";

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A router over the manager's stacks: what [`ModelManager::service`], [`ModelManager::route`]
/// and [`ModelManager::router`] return.
pub type ManagedRouter<S, Res, C> = FallbackRouter<ModelStack<S, C>, Res, C>;

/// What a manager refused to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// [`ModelManager::start`] was called on a manager whose checks already run.
    #[error("the manager's health checks and recovery are already running")]
    AlreadyStarted,
    /// A route or request named a model the manager does not have.
    #[error("no model `{0}` in this manager")]
    UnknownModel(String),
    /// A route's settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl ManagerError {
    /// An unknown model, its name cut short (it may come from a request).
    fn unknown(name: &str) -> Self {
        let mut end = name.len().min(64);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        Self::UnknownModel(name[..end].chars().filter(|c| !c.is_control()).collect())
    }
}

/// How a route spreads requests, when its [`RouteSpec`] does not say.
#[derive(Clone, Debug)]
struct RouteDefaults {
    strategy: Strategy,
    policy: FallbackPolicy,
    timeout: Option<Duration>,
    last_resort: Option<Duration>,
}

/// Builds a [`ModelManager`].
#[must_use]
pub struct ModelManagerBuilder<S, C = ErrorClassifier> {
    specs: Vec<ModelSpec<S>>,
    /// Stacks of an older manager to keep, by model (see `reusing`).
    reused: Vec<ModelEntry<S, C>>,
    routes: Vec<RouteSpec>,
    defaults: RouteDefaults,
    metrics: bool,
    monitor: Option<Monitor>,
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
            reused: Vec::new(),
            routes: Vec::new(),
            defaults: RouteDefaults {
                strategy: Strategy::Sequential,
                policy: FallbackPolicy::default(),
                timeout: Some(DEFAULT_REQUEST_TIMEOUT),
                last_resort: Some(DEFAULT_LAST_RESORT_INTERVAL),
            },
            metrics: false,
            monitor: None,
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
    /// Adds the next model, in priority order. Its stack is built once and shared by every
    /// route that names it.
    pub fn model(mut self, spec: ModelSpec<S>) -> Self {
        self.specs.push(spec);
        self
    }

    /// Builds the new manager over the state of `old` (a reload): every model `keep`
    /// accepts keeps its stack — its breaker, health, budget, statistics — when the new
    /// manager has a spec for it (the spec's service and settings are then ignored, but for
    /// its weight and its probe), and the
    /// health registry is shared. Models not kept get new stacks. Stop the old manager's
    /// checks before starting the new one's.
    pub fn reusing<Res>(
        mut self,
        old: &ModelManager<S, Res, C>,
        keep: impl Fn(ModelId) -> bool,
    ) -> Self
    where
        S: Clone,
        C: Clone,
    {
        self.reused = read(&old.entries)
            .iter()
            .filter(|entry| keep(entry.model()))
            .cloned()
            .collect();
        self.registry = Some(old.registry.clone());
        self
    }

    /// Adds a named route over some of the models (see [`ModelManager::route`]).
    pub fn route(mut self, route: RouteSpec) -> Self {
        self.routes.push(route);
        self
    }

    /// How requests are spread over the models, for routes that do not say. Default
    /// sequential.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.defaults.strategy = strategy;
        self
    }

    /// One deadline per request, over every attempt and fallback, for routes that do not
    /// say. Default [`DEFAULT_REQUEST_TIMEOUT`] (2 minutes).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.defaults.timeout = Some(timeout);
        self
    }

    /// No deadline per request, for routes that do not say (each attempt keeps its own
    /// timeout).
    pub fn without_timeout(mut self) -> Self {
        self.defaults.timeout = None;
        self
    }

    /// Which outcomes fall back, for routes that do not say.
    pub fn policy(mut self, policy: FallbackPolicy) -> Self {
        self.defaults.policy = policy;
        self
    }

    /// What routes do when every model is unavailable, for routes that do not say: see
    /// [`FallbackRouterBuilder::last_resort`]. Default one probe per second.
    pub fn last_resort(mut self, interval: Option<Duration>) -> Self {
        self.defaults.last_resort = interval;
        self
    }

    /// Records metrics through the `metrics` facade in every layer and router: calls by
    /// outcome, breaker states and transitions, retries and give-ups, health, requests and
    /// their durations by route, attempt durations, failovers, hedges, last-resort probes
    /// (see `hive_core::metric` for the names). Install the recorder before building
    /// (`hive_monitor::install_prometheus` does). Default off.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Feeds `monitor` (a `hive_monitor::Monitor`): every attempt of every model, every
    /// request of every route, and every event, so that its snapshots and alerts see the
    /// whole fleet.
    pub fn monitor(mut self, monitor: &Monitor) -> Self {
        self.monitor = Some(monitor.clone());
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

    /// Uses `classifier` for retry, breaker and routers: it sees each answer, or the
    /// `BoxError` of the attempt timeout and the model.
    pub fn classifier<C2>(self, classifier: C2) -> ModelManagerBuilder<S, C2> {
        ModelManagerBuilder {
            specs: self.specs,
            reused: Vec::new(),
            routes: self.routes,
            defaults: self.defaults,
            metrics: self.metrics,
            monitor: self.monitor,
            events: self.events,
            registry: self.registry,
            checks: self.checks,
            classifier,
            seed: self.seed,
            window: self.window,
        }
    }

    /// Builds every model's stack once, the default route over all of them and the named
    /// routes over their views; says which setting of which model or route is wrong.
    pub fn build<Res>(mut self) -> Result<ModelManager<S, Res, C>, ConfigError>
    where
        S: Clone,
        C: Clone,
    {
        let user_events = match &self.monitor {
            Some(monitor) => both(self.events, monitor.event_sink()),
            None => self.events,
        };
        let registry = match self.registry {
            Some(registry) => registry,
            // A registry of our own reports its health changes where every layer reports.
            None => HealthRegistry::builder()
                .events(user_events.clone())
                .metrics(self.metrics)
                .build()?,
        };
        // Validated now, so that starting cannot fail on settings.
        let _ = HealthChecker::new(registry.clone(), self.checks.clone())?;
        let events = both(registry.event_sink(), user_events);
        let random = SharedRandom::new(self.seed);
        let shared = Shared {
            registry: &registry,
            events: &events,
            classifier: &self.classifier,
            random: &random,
            seed: self.seed,
            metrics: self.metrics,
            monitor: self.monitor.as_ref(),
        };
        let mut entries: Vec<ModelEntry<S, C>> = Vec::new();
        let mut probes = Vec::new();
        for spec in self.specs {
            if entries.iter().any(|e| e.model() == spec.model) {
                return Err(ConfigError::new(
                    "model",
                    format!("model `{}` is given twice", spec.model),
                ));
            }
            let model = spec.model;
            check_weight(model, spec.weight)?;
            // Validated now (kept models too), so that starting cannot fail.
            if let Some(Err(e)) = spec.checks.as_ref().map(CheckerConfig::validate) {
                return Err(ConfigError::new(
                    e.field,
                    format!("model `{model}`: {}", e.problem),
                ));
            }
            let (entry, probe) = match self.reused.iter().position(|e| e.model() == model) {
                Some(kept) => (
                    {
                        // Its state is kept; its routing weight is the new spec's.
                        let mut entry = self.reused.swap_remove(kept);
                        entry.weight = spec.weight;
                        entry
                    },
                    spec.probe.map(|probe| ModelProbe {
                        probe,
                        checks: spec.checks,
                    }),
                ),
                None => ModelEntry::build(spec, &shared)?,
            };
            entries.push(entry);
            if let Some(probe) = probe {
                probes.push((model, probe));
            }
        }
        let mut manager = ModelManager {
            default: None,
            routes: BTreeMap::new(),
            entries: RwLock::new(entries),
            random,
            seed: self.seed,
            last_resort: self
                .defaults
                .last_resort
                .map(|i| Arc::new(LastResort::new(i))),
            defaults: self.defaults,
            metrics: self.metrics,
            router_metrics: RwLock::default(),
            monitor: self.monitor,
            events,
            classifier: self.classifier,
            window: Arc::new(RequestWindow::new(self.window)),
            registry,
            checks: self.checks,
            probes,
            started: false,
        };
        let every: Vec<String> = read(&manager.entries)
            .iter()
            .map(|e| e.model().as_str().to_owned())
            .collect();
        manager.default = Some(
            manager
                .router(&RouteSpec::new(DEFAULT_ROUTE, every))
                .map_err(config)?,
        );
        for spec in self.routes {
            if spec.name.is_empty() || manager.routes.contains_key(&spec.name) {
                return Err(ConfigError::new(
                    "route",
                    format!("route name `{}` is empty or given twice", spec.name),
                ));
            }
            let router = manager.router(&spec).map_err(|e| {
                ConfigError::new("route", format!("route `{}`: {}", spec.name, config(e)))
            })?;
            manager.routes.insert(spec.name, router);
        }
        Ok(manager)
    }
}

fn config(error: ManagerError) -> ConfigError {
    match error {
        ManagerError::Config(error) => error,
        other => ConfigError::new("route", other.to_string()),
    }
}

/// A sink that passes each event to `first`, then to `second` (the sink every layer and
/// router reports to: the health registry, which applies breaker transitions by generation,
/// then the user's sink and the monitor).
fn both(first: EventSink, second: EventSink) -> EventSink {
    if !first.is_enabled() {
        return second;
    }
    if !second.is_enabled() {
        return first;
    }
    EventSink::from_fn(move |event: &ResilienceEvent| {
        first.emit(|| event.clone());
        second.emit(|| event.clone());
    })
}

impl<S, C> fmt::Debug for ModelManagerBuilder<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelManagerBuilder")
            .field("models", &self.specs)
            .field("routes", &self.routes)
            .field("defaults", &self.defaults)
            .finish_non_exhaustive()
    }
}

/// Every model's stack (health gate → retry → breaker → attempt timeout → model), built
/// **once**, with routes over them, the controls to recover models by hand, and a health
/// checker that recovers them automatically.
///
/// A model's breaker, health and budgets are one, whichever route or request uses it:
/// [`service`](Self::service) routes over every model in priority order, a named
/// [`route`](Self::route) over the models its [`RouteSpec`] lists, and
/// [`router_for`](Self::router_for) over a list a request names (its own fallbacks). Each is
/// a plain tower `Service` to drop into axum, hyper or tonic.
///
/// [`start`](Self::start) runs the health checks and automatic recovery: when the checker
/// sees a model come back, its open breaker goes half-open at once and traffic ramps back
/// over its slow-start time.
pub struct ModelManager<S, Res = (), C = ErrorClassifier> {
    /// Always set once built.
    default: Option<ManagedRouter<S, Res, C>>,
    routes: BTreeMap<String, ManagedRouter<S, Res, C>>,
    /// Every model's stack; models may be added while serving ([`ModelManager::add_model`]).
    entries: RwLock<Vec<ModelEntry<S, C>>>,
    random: SharedRandom,
    seed: Option<u64>,
    defaults: RouteDefaults,
    /// The pace of last-resort probes shared by every router without one of its own.
    last_resort: Option<Arc<LastResort>>,
    metrics: bool,
    /// Each route's metric handles, registered once.
    router_metrics: RwLock<BTreeMap<String, RouterMetrics>>,
    monitor: Option<Monitor>,
    events: EventSink,
    classifier: C,
    window: Arc<RequestWindow>,
    registry: HealthRegistry,
    checks: CheckerConfig,
    probes: Vec<(ModelId, ModelProbe)>,
    started: bool,
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

impl<S: Clone, Res, C: Clone> ModelManager<S, Res, C> {
    /// The default route: every model, in priority order, with the manager's settings.
    /// Cheap to clone.
    pub fn service(&self) -> ManagedRouter<S, Res, C> {
        match &self.default {
            Some(router) => router.clone(),
            None => unreachable!("the default route is built with the manager"),
        }
    }

    /// The named route `name`, if the builder was given it.
    pub fn route(&self, name: &str) -> Option<ManagedRouter<S, Res, C>> {
        self.routes.get(name).cloned()
    }

    /// The names of the named routes.
    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    /// A router over the models a request names (its own fallback list), in that order,
    /// with the manager's settings. Unknown names are an error (the name is not interned:
    /// requests cannot grow the process's memory).
    pub fn router_for<M: AsRef<str>>(
        &self,
        models: impl IntoIterator<Item = M>,
    ) -> Result<ManagedRouter<S, Res, C>, ManagerError> {
        let models: Vec<String> = models.into_iter().map(|m| m.as_ref().to_owned()).collect();
        self.router(&RouteSpec::new(REQUEST_ROUTE, models))
    }

    /// A router for `spec` over the manager's stacks.
    pub fn router(&self, spec: &RouteSpec) -> Result<ManagedRouter<S, Res, C>, ManagerError> {
        Ok(self.router_builder(spec)?.build()?)
    }

    /// The builder of a router for `spec`, its routes and settings filled in, for settings a
    /// [`RouteSpec`] does not carry (a degraded answer …). Every router built this way
    /// shares the models' stacks and counts in [`availability`](Self::availability).
    pub fn router_builder(
        &self,
        spec: &RouteSpec,
    ) -> Result<FallbackRouterBuilder<ModelStack<S, C>, Res, C>, ManagerError> {
        let window = Arc::clone(&self.window);
        let requests = self
            .monitor
            .as_ref()
            .map(|monitor| monitor.route(&spec.name));
        let defaults = &self.defaults;
        let mut builder = FallbackRouter::builder()
            .on_result(move |end| {
                window.record(end == RequestEnd::Answered);
                if let Some(requests) = &requests {
                    requests.record(match end {
                        RequestEnd::Answered => RequestResult::Answered,
                        RequestEnd::Degraded => RequestResult::Degraded,
                        RequestEnd::Failed => RequestResult::Failed,
                    });
                }
            })
            .strategy(
                spec.strategy
                    .clone()
                    .unwrap_or_else(|| defaults.strategy.clone()),
            )
            .policy(spec.policy.unwrap_or(defaults.policy))
            .name(spec.name.clone())
            .events(self.events.clone())
            .classifier(self.classifier.clone());
        if let Some(timeout) = spec.timeout.unwrap_or(defaults.timeout) {
            builder = builder.timeout(timeout);
        }
        // Routes without a pace of their own share the manager's: at most one last-resort
        // probe per interval, whichever router a request goes through.
        builder = match (spec.last_resort, &self.last_resort) {
            (Some(interval), _) => builder.last_resort(interval),
            (None, Some(gate)) => builder.last_resort_gate(Arc::clone(gate)),
            (None, None) => builder.last_resort(None),
        };
        if self.metrics {
            builder = builder.metrics_handles(self.router_metrics(&spec.name));
        }
        let entries = read(&self.entries);
        for name in &spec.models {
            let entry = ModelId::lookup(name)
                .and_then(|id| entries.iter().find(|e| e.model() == id))
                .ok_or_else(|| ManagerError::unknown(name))?;
            builder = builder.route(entry.route());
        }
        Ok(builder)
    }

    /// Adds a model while serving (a name that matches a configured pattern, say): its
    /// stack is built as the builder's are, with the manager's registry, events, metrics
    /// and monitor, and every router built from now on can use it. It gets no active
    /// health checks (its live traffic feeds its health). Adding a model already there
    /// returns its controls.
    pub fn add_model(&self, spec: ModelSpec<S>) -> Result<ModelControl, ManagerError> {
        if let Some(known) = self.control(spec.model.as_str()) {
            return Ok(known);
        }
        let shared = Shared {
            registry: &self.registry,
            events: &self.events,
            classifier: &self.classifier,
            random: &self.random,
            seed: self.seed,
            metrics: self.metrics,
            monitor: self.monitor.as_ref(),
        };
        let (entry, _probe) = ModelEntry::build(spec, &shared)?;
        let mut entries = write(&self.entries);
        if let Some(raced) = entries.iter().find(|e| e.model() == entry.model()) {
            return Ok(raced.control.clone());
        }
        let control = entry.control.clone();
        entries.push(entry);
        Ok(control)
    }
}

impl<S, Res, C> ModelManager<S, Res, C> {
    /// The metric handles of route `name`, registered at its first router.
    fn router_metrics(&self, name: &str) -> RouterMetrics {
        if let Some(metrics) = self
            .router_metrics
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
        {
            return metrics.clone();
        }
        self.router_metrics
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(name.to_owned())
            .or_insert_with(|| RouterMetrics::register(name))
            .clone()
    }

    /// The monitor the manager feeds, if it was given one.
    pub fn monitor(&self) -> Option<&Monitor> {
        self.monitor.as_ref()
    }

    /// The controls of `model` (cheap to clone: they share the model's state).
    pub fn control(&self, model: &str) -> Option<ModelControl> {
        let model = ModelId::lookup(model)?;
        read(&self.entries)
            .iter()
            .find(|e| e.control.model == model)
            .map(|e| e.control.clone())
    }

    /// Every model's controls, in priority order (models added while serving last).
    pub fn controls(&self) -> Vec<ModelControl> {
        read(&self.entries)
            .iter()
            .map(|e| e.control.clone())
            .collect()
    }

    /// The health registry.
    pub fn registry(&self) -> &HealthRegistry {
        &self.registry
    }

    /// Which models can take calls now, and the requests answered over the window (by every
    /// route).
    pub fn availability(&self) -> Availability {
        let (answered, requests) = self.window.counts();
        Availability {
            window: self.window.span(),
            requests,
            answered,
            models: self
                .controls()
                .into_iter()
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
    /// Needs a tokio runtime; [`Running::stop`] ends both. Starting twice is an error.
    pub fn start(&mut self) -> Result<Running, ManagerError> {
        self.start_sharing_checks(None)
    }

    /// [`start`](Self::start), the health checks shared with the other replicas of a
    /// cluster through `duty` ([`CheckerConfig::duty`]): a model is checked here only while
    /// it is this replica's duty.
    pub fn start_sharing_checks(
        &mut self,
        duty: Option<Arc<dyn hive_core::ProbeDuty>>,
    ) -> Result<Running, ManagerError> {
        if self.started {
            return Err(ManagerError::AlreadyStarted);
        }
        let shared = |checks: CheckerConfig| match &duty {
            Some(duty) => checks.duty(Arc::clone(duty)),
            None => checks,
        };
        let mut checker = HealthChecker::new(self.registry.clone(), shared(self.checks.clone()))?;
        for (model, ModelProbe { probe, checks }) in self.probes.drain(..) {
            checker = match checks {
                Some(checks) => checker.probe_with(model, probe, shared(checks))?,
                None => checker.probe(model, probe),
            };
        }
        self.started = true;
        let checks = checker.start();
        let mut recovery = JoinSet::new();
        let controls: Vec<ModelControl> = self.controls();
        recovery.spawn(recover_on_checks(self.registry.subscribe(), controls, duty));
        Ok(Running { checks, recovery })
    }
}

impl<S, Res, C> fmt::Debug for ModelManager<S, Res, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelManager")
            .field("controls", &self.controls())
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .field("defaults", &self.defaults)
            .field("checks", &self.checks)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

/// The running health checks and recovery of a [`ModelManager`]. Dropping it stops them.
#[derive(Debug)]
#[must_use = "dropping it stops the health checks and recovery"]
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
