//! From a [`Config`] to what serves it: one client and resilience stack per model, one
//! router per route, and the names requests may ask for.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    sync::{
        Arc, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use hive_chaos::{ChaosHandle, ChaosLayer, ChaosRules, ChaosService, OpenAiFaults};
use hive_config::{
    BackoffSettings, BreakerSettings, BudgetSettings, CommitPolicy, Config, ConfigDiff,
    HealthSettings, HedgeDelay as HedgeSettings, Jitter as JitterSettings, ModelConfig, ModelName,
    OpenDurationSettings, Probe, RetrySettings, RouteConfig, Strategy as Configured,
    WindowSettings,
};
use hive_core::{BoxError, Budget, ConfigError, ModelId, SharedRandom};
use hive_monitor::Monitor;
use hive_openai::{
    ApiKey, ChatCompletion, ChatRequest, ChatResponse, Choice, Commit, CommitLayer, CommitService,
    Extra, Message, OpenAiClassifier, OpenAiClient,
};
use hive_resilience::{
    HedgeDelay, ManagedRouter, ManagerError, ModelManager, ModelSpec, RouteSpec, Strategy,
    breaker::CircuitBreakerConfigBuilder,
    health::{CheckerConfig, HealthRegistry, ProbeRequest},
    retry::{Jitter, RetryConfigBuilder},
};
use tower::{Layer, ServiceExt};

/// What a model's stack calls: the provider's client, committing streams as each request
/// asks.
pub type Upstream = CommitService<ChaosService<OpenAiClient, OpenAiFaults>>;

/// The chaos every model's stack carries, innermost (off until the admin API or a drill
/// switches it on): one layer, shared by every fleet a reload builds from this one.
pub type Chaos = ChaosLayer<OpenAiFaults>;
/// The manager of every model's stack.
pub type Manager = ModelManager<Upstream, ChatResponse, OpenAiClassifier>;
/// A router over some models' stacks.
pub type Router = ManagedRouter<Upstream, ChatResponse, OpenAiClassifier>;

/// The most models patterns may add while serving (each concrete name a request asks for
/// gets a stack of its own, and its name is kept for the life of the process): a client
/// asking for endless made-up names must not grow the gateway's memory without bound.
pub const MAX_PATTERN_MODELS: usize = 256;
/// The longest model name a pattern accepts from a request, in bytes.
pub const MAX_MODEL_NAME: usize = 256;

/// Why a config could not be turned into stacks and routers (after it loaded: these are
/// the libraries' own checks, which the config's mostly repeat).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A model's client or stack refused a setting.
    #[error("model `{model}`: {source}")]
    Model {
        /// The model.
        model: String,
        /// The setting and what is wrong with it.
        #[source]
        source: ConfigError,
    },
    /// A route could not be built.
    #[error("route `{route}`: {source}")]
    Route {
        /// The route.
        route: String,
        /// What is wrong.
        #[source]
        source: ManagerError,
    },
    /// The manager refused a setting shared by every model.
    #[error(transparent)]
    Manager(#[from] ConfigError),
}

/// One route of the config, ready to serve.
#[derive(Debug)]
pub struct RouteEntry {
    /// Its router.
    pub router: Router,
    /// When its streams are committed to the caller.
    pub commit: Commit,
    /// Its models, in order.
    pub models: Vec<String>,
}

/// What a request's `model` names.
#[derive(Debug)]
pub enum Target<'f> {
    /// A route of the config.
    Route(&'f str, &'f RouteEntry),
    /// One model (an id, or a name a pattern matches), or a model and the fallbacks the
    /// request lists: a router of its own.
    Models(String, Router),
}

/// Why a request's `model` (or one of its `fallbacks`) names nothing the gateway serves.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Unresolved {
    /// No route, id or pattern has this name.
    #[error("no route or model `{0}`")]
    Unknown(String),
    /// A pattern matches it, but patterns have added as many models as they may.
    #[error("no room for another model ({MAX_PATTERN_MODELS} added already)")]
    Full(String),
    /// A fallback names a route (a request's fallbacks are models).
    #[error("`{0}` is a route; fallbacks name models")]
    RouteAsFallback(String),
    /// A pattern matches the name, but it is no model name: longer than
    /// [`MAX_MODEL_NAME`] bytes, with a control character, or nothing left once the
    /// pattern's prefix is stripped.
    #[error("not a model name: at most {MAX_MODEL_NAME} bytes, no control characters")]
    InvalidName,
}

/// Every model's stack and every route of one config: what a request is served by. A
/// reload builds a new fleet [reusing](Fleet::build) the old one's unchanged stacks.
pub struct Fleet {
    config: Arc<Config>,
    manager: Manager,
    routes: BTreeMap<String, RouteEntry>,
    /// Routers of one model, built at its first request.
    singles: RwLock<HashMap<String, Router>>,
    /// Models the patterns added while serving (shared with the fleets reloaded from this
    /// one, which keep them).
    added: Arc<AtomicUsize>,
    /// Held while a pattern adds a model.
    adding: RwLock<()>,
    /// The fault injection in front of every model (see [`Chaos`]).
    chaos: Chaos,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("config", &self.config.hash())
            .field("models", &self.manager.controls())
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Builds the stacks and routers `config` asks for, feeding `monitor`. On a reload,
    /// `old` is the fleet serving now and `diff` what changed: models whose stacks the diff
    /// keeps carry their breaker, health and statistics over (stop the old fleet's checks
    /// before starting the new one's), and so do the models patterns added.
    pub fn build(
        config: Arc<Config>,
        monitor: Option<&Monitor>,
        old: Option<(&Fleet, &ConfigDiff)>,
        seed: Option<u64>,
    ) -> Result<Self, BuildError> {
        let defaults = &config.defaults.settings;
        let mut builder = ModelManager::builder()
            .classifier(OpenAiClassifier)
            .metrics(config.metrics)
            .checks(checker(&defaults.health, seed)?)
            .strategy(strategy(&config.fallback.strategy, seed)?)
            .last_resort(config.fallback.last_resort);
        builder = match config.defaults.request_timeout {
            Some(timeout) => builder.timeout(timeout),
            None => builder.without_timeout(),
        };
        if let Some(monitor) = monitor {
            builder = builder.monitor(monitor);
        }
        if let Some(seed) = seed {
            builder = builder.seed(seed);
        }
        let same_thresholds = old.is_some_and(|(old, _)| {
            let (was, now) = (&old.config.defaults.settings.health, &defaults.health);
            was.healthy_threshold == now.healthy_threshold
                && was.unhealthy_threshold == now.unhealthy_threshold
        });
        match old {
            Some((old, diff)) if same_thresholds => {
                let keep = |model: ModelId| {
                    config
                        .resolve_model(model.as_str())
                        .is_some_and(|m| diff.keeps_stack(m.key()))
                };
                builder = builder.reusing(&old.manager, keep);
            }
            _ => {
                // The thresholds are the registry's: a new one, and new stacks on it.
                builder = builder.registry(registry(&config, monitor)?);
            }
        }
        // The models requests made patterns add are carried over, and still count.
        let added = old.map_or_else(Arc::default, |(old, _)| Arc::clone(&old.added));
        // One chaos for the fleet's lineage: its rules and switch outlive a reload.
        let chaos = match old {
            Some((old, _)) => old.chaos.clone(),
            None => off_chaos(),
        };
        for (name, model, origin) in concrete_models(&config, old.map(|(old, _)| old)) {
            builder = builder.model(spec(&name, model, seed, origin, &chaos)?);
        }
        let manager = builder.build::<ChatResponse>()?;
        let mut routes = BTreeMap::new();
        for route in &config.routes {
            let built = manager
                .router_builder(&route_spec(route, seed)?)
                .map_err(|source| BuildError::Route {
                    route: route.name.clone(),
                    source,
                })?;
            let built = match &route.degraded {
                Some(text) => {
                    let answer = degraded_answer(&route.name, text);
                    built.degraded_with(move || Some(ChatResponse::Complete(answer.clone())))
                }
                None => built,
            };
            let router = built.build().map_err(|source| BuildError::Route {
                route: route.name.clone(),
                source: source.into(),
            })?;
            routes.insert(
                route.name.clone(),
                RouteEntry {
                    router,
                    commit: commit(route.commit),
                    models: route.models.clone(),
                },
            );
        }
        Ok(Self {
            config,
            manager,
            routes,
            singles: RwLock::default(),
            added,
            adding: RwLock::default(),
            chaos,
        })
    }

    /// The fault injection in front of every model: switch it and change its rules here
    /// (the admin API's `/admin/chaos`).
    pub fn chaos(&self) -> ChaosHandle {
        self.chaos.handle()
    }

    /// The config it serves.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Its models' stacks.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// Starts its health checks and recovery.
    pub fn start(&mut self) -> Result<hive_resilience::Running, ManagerError> {
        self.manager.start()
    }

    /// [`start`](Self::start), the health checks shared with the other replicas of a
    /// cluster through `duty` (none: this replica checks every model).
    pub fn start_sharing_checks(
        &mut self,
        duty: Option<Arc<dyn hive_core::ProbeDuty>>,
    ) -> Result<hive_resilience::Running, ManagerError> {
        self.manager.start_sharing_checks(duty)
    }

    /// Its routes, by name.
    pub fn routes(&self) -> &BTreeMap<String, RouteEntry> {
        &self.routes
    }

    /// The deadline of a request of `route` (a route's own, or the default for a request
    /// that names models).
    pub fn timeout_of(&self, route: &str) -> Option<std::time::Duration> {
        self.config
            .route(route)
            .map_or(self.config.defaults.request_timeout, |r| r.timeout)
    }

    /// Whether a model is configured to continue a cut stream from a prefill.
    pub fn accepts_prefill(&self, model: &str) -> bool {
        self.config
            .resolve_model(model)
            .is_some_and(|m| m.accepts_prefill)
    }

    /// What `name` (a request's `model`) and `fallbacks` (its fallback models, if any) are
    /// served by: a route (which takes no fallbacks of the request's), or a router over the
    /// model and its fallbacks in order. Names a pattern matches get their stacks here.
    pub fn resolve<'f>(
        &'f self,
        name: &str,
        fallbacks: &[String],
    ) -> Result<Target<'f>, Unresolved> {
        if let Some((route, entry)) = self.routes.get_key_value(name) {
            return Ok(Target::Route(route, entry));
        }
        if fallbacks.is_empty()
            && let Some(router) = read(&self.singles).get(name)
        {
            return Ok(Target::Models(name.to_owned(), router.clone()));
        }
        let mut names = Vec::with_capacity(1 + fallbacks.len());
        for model in std::iter::once(name).chain(fallbacks.iter().map(String::as_str)) {
            if model != name && self.routes.contains_key(model) {
                return Err(Unresolved::RouteAsFallback(model.to_owned()));
            }
            self.ensure_model(model)?;
            if !names.iter().any(|n| n == model) {
                names.push(model.to_owned());
            }
        }
        let router = self
            .manager
            .router_for(&names)
            .map_err(|_| Unresolved::Unknown(name.to_owned()))?;
        if fallbacks.is_empty() {
            write(&self.singles)
                .entry(name.to_owned())
                .or_insert_with(|| router.clone());
        }
        Ok(Target::Models(name.to_owned(), router))
    }

    /// Makes sure `name` has a stack: it has one, or a pattern matches it and one is added
    /// (its name checked before it is kept for the life of the process, and counted once).
    fn ensure_model(&self, name: &str) -> Result<(), Unresolved> {
        if self.manager.control(name).is_some() {
            return Ok(());
        }
        let unknown = || Unresolved::Unknown(name.to_owned());
        let model = self.config.resolve_model(name).ok_or_else(unknown)?;
        let upstream = model.upstream_name(name);
        if name.len() > MAX_MODEL_NAME
            || name.chars().any(char::is_control)
            || upstream.trim().is_empty()
        {
            return Err(Unresolved::InvalidName);
        }
        // One addition at a time: the count is exact, and a name is added once.
        let _adding = write(&self.adding);
        if self.manager.control(name).is_some() {
            return Ok(());
        }
        if self.added.load(Ordering::Relaxed) >= MAX_PATTERN_MODELS {
            return Err(Unresolved::Full(name.to_owned()));
        }
        let spec = spec(name, model, None, Origin::Request, &self.chaos).map_err(|_| unknown())?;
        self.manager.add_model(spec).map_err(|_| unknown())?;
        self.added.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            model = name,
            pattern = model.key(),
            "model added by its pattern"
        );
        Ok(())
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where a concrete model's name comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// The config names it (an id, or a route's member): checked actively, as configured.
    Config,
    /// A request named it and a pattern matched: no active checks (a client could make the
    /// gateway pay for probes of names it invents); its live traffic feeds its health.
    Request,
}

/// Every concrete model of `config`, in priority order: each id, each name a route gives
/// that a pattern matches, and the names the patterns of `old` had added that still match.
fn concrete_models<'c>(
    config: &'c Config,
    old: Option<&Fleet>,
) -> Vec<(String, &'c ModelConfig, Origin)> {
    let mut names: Vec<(String, Origin)> = Vec::new();
    let mut add = |name: &str, origin| {
        if !names.iter().any(|(n, _)| n == name) {
            names.push((name.to_owned(), origin));
        }
    };
    for model in &config.models {
        if let ModelName::Id(id) = &model.name {
            add(id, Origin::Config);
        }
    }
    for route in &config.routes {
        route.models.iter().for_each(|m| add(m, Origin::Config));
    }
    if let Some(old) = old {
        for control in old.manager.controls() {
            add(control.model().as_str(), Origin::Request);
        }
    }
    let mut resolved: Vec<(String, &ModelConfig, Origin)> = names
        .into_iter()
        .filter_map(|(name, origin)| config.resolve_model(&name).map(|m| (name, m, origin)))
        .collect();
    let rank: HashMap<&str, usize> = config
        .models_by_priority()
        .into_iter()
        .enumerate()
        .map(|(i, m)| (m.key(), i))
        .collect();
    // Stable: names of one pattern keep the order they came in.
    resolved.sort_by_key(|(_, m, _)| rank.get(m.key()).copied().unwrap_or(usize::MAX));
    resolved
}

/// A chaos layer that is off and has no rule.
fn off_chaos() -> Chaos {
    match ChaosLayer::new(ChaosRules::new().enabled(false)) {
        Ok(layer) => layer.with_faults(OpenAiFaults),
        // No rule to refuse: proven by `an_empty_chaos_is_valid` below.
        Err(_) => unreachable!("an empty set of chaos rules is valid"),
    }
}

/// The stack of model `name` as `model` configures it.
fn spec(
    name: &str,
    model: &ModelConfig,
    seed: Option<u64>,
    origin: Origin,
    chaos: &Chaos,
) -> Result<ModelSpec<Upstream>, BuildError> {
    let named = |source| BuildError::Model {
        model: name.to_owned(),
        source,
    };
    let id = ModelId::new(name);
    let settings = &model.settings;
    let mut client = OpenAiClient::builder(id, model.base_url.clone())
        .upstream_name(model.upstream_name(name))
        .first_token_timeout(settings.timeouts.first_token)
        .idle_timeout(settings.timeouts.idle)
        .total_timeout(settings.timeouts.total);
    if let Some(key) = &model.api_key {
        client = client.api_key(ApiKey::new(key.expose()));
    }
    for alias in &model.aliases {
        client = client.alias(alias.clone());
    }
    for (header, value) in &model.headers {
        client = client.header(header.clone(), value.clone());
    }
    for (header, value) in &model.secret_headers {
        client = client.secret_header(header.clone(), value.expose());
    }
    let client = client.build().map_err(named)?;
    // Chaos innermost, in front of the client: the commit layer and every resilience layer
    // meet its faults as they meet the provider's own.
    let upstream =
        CommitLayer::new(Commit::FirstChunk).layer(chaos.clone().model(id).layer(client.clone()));
    let retry = settings.retry.clone();
    let breaker = settings.breaker;
    let budget = retry.budget.map(budget).transpose().map_err(named)?;
    let mut spec = ModelSpec::new(id, upstream)
        .retry(|r| retry_settings(r, &retry, budget))
        .breaker(|b| breaker_settings(b, &breaker))
        .attempt_timeout(settings.timeouts.attempt)
        .min_attempt_time(settings.retry.min_attempt_time)
        .slow_start(settings.slow_start)
        .weight(model.weight);
    if let Some(window) = model.context_window {
        spec = spec.context_window(window);
    }
    let probe = match origin {
        Origin::Config => settings.health.probe,
        Origin::Request => Probe::None,
    };
    match probe {
        Probe::None => {}
        Probe::Models => {
            spec = spec.probe(tower::service_fn(move |_: ProbeRequest| {
                let client = client.clone();
                async move { client.list_models().await.map(drop) }
            }));
        }
        Probe::Completion => {
            // A completion probe meets the chaos requests meet (a `/v1/models` probe does
            // not: chaos plays on completions).
            let client = chaos.clone().model(id).layer(client);
            spec = spec.probe(tower::service_fn(move |_: ProbeRequest| {
                let client = client.clone();
                async move {
                    let mut ping = ChatRequest::new("", "ping");
                    ping.max_tokens = Some(1);
                    match client.oneshot(ping).await? {
                        ChatResponse::Complete(_) => Ok::<(), BoxError>(()),
                        // Not asked for; a stream would have to end well to pass.
                        ChatResponse::Stream(stream) => {
                            Ok(stream.collect_text().await.map(drop)?)
                        }
                    }
                }
            }));
        }
    }
    if probe != Probe::None {
        spec = spec.checks(checker(&settings.health, seed).map_err(|e| match e {
            BuildError::Manager(source) => named(source),
            other => other,
        })?);
    }
    Ok(spec)
}

fn retry_settings(
    builder: RetryConfigBuilder,
    retry: &RetrySettings,
    budget: Option<Budget>,
) -> RetryConfigBuilder {
    let BackoffSettings {
        base,
        max,
        multiplier,
        jitter,
    } = retry.backoff;
    let builder = builder
        .max_attempts(retry.max_attempts)
        .backoff(base, max)
        .multiplier(multiplier)
        .jitter(match jitter {
            JitterSettings::None => Jitter::None,
            JitterSettings::Full => Jitter::Full,
            JitterSettings::Proportional(f) => Jitter::Proportional(f),
            JitterSettings::Decorrelated => Jitter::Decorrelated,
        })
        .retry_after(retry.retry_after.honour, retry.retry_after.max)
        .retry_on(retry.retry_on)
        .min_attempt_time(retry.min_attempt_time);
    match budget {
        Some(budget) => builder.budget(budget),
        None => builder,
    }
}

fn breaker_settings(
    builder: CircuitBreakerConfigBuilder,
    breaker: &BreakerSettings,
) -> CircuitBreakerConfigBuilder {
    let mut builder = match breaker.window {
        WindowSettings::Count { size } => builder.count_window(size),
        WindowSettings::Time { duration, buckets } => builder.time_window(duration, buckets),
    }
    .minimum_calls(breaker.minimum_calls)
    .failure_rate_threshold(breaker.failure_rate)
    .slow_call_rate_threshold(breaker.slow_call_rate)
    .consecutive_failures(breaker.consecutive_failures)
    .half_open_permits(breaker.half_open_permits)
    .max_wait_in_half_open(breaker.max_wait_in_half_open)
    .max_retry_after_open(breaker.max_retry_after_open);
    if let Some(slow) = breaker.slow_call_duration {
        builder = builder.slow_call_duration(slow);
    }
    match breaker.open_duration {
        OpenDurationSettings::Fixed(duration) => builder.open_duration(duration),
        OpenDurationSettings::Growing {
            base,
            multiplier,
            max,
        } => builder.growing_open_duration(base, multiplier, max),
    }
}

fn budget(settings: BudgetSettings) -> Result<Budget, ConfigError> {
    Budget::new(settings.ttl, settings.min_per_second, settings.ratio)
}

/// The checks' timing of `health`.
fn checker(health: &HealthSettings, seed: Option<u64>) -> Result<CheckerConfig, BuildError> {
    let mut checks = CheckerConfig::default()
        .interval(health.interval)
        .fast_interval(health.fast_interval)
        .timeout(health.timeout)
        .jitter(health.jitter);
    if let Some(seed) = seed {
        checks = checks.seed(seed);
    }
    checks.validate()?;
    Ok(checks)
}

/// The health registry of a config: its thresholds, reporting to the monitor.
fn registry(config: &Config, monitor: Option<&Monitor>) -> Result<HealthRegistry, BuildError> {
    let health = &config.defaults.settings.health;
    let mut registry = HealthRegistry::builder()
        .healthy_threshold(health.healthy_threshold)
        .unhealthy_threshold(health.unhealthy_threshold)
        .metrics(config.metrics);
    if let Some(monitor) = monitor {
        registry = registry.events(monitor.event_sink());
    }
    Ok(registry.build()?)
}

/// The library's strategy for a configured one.
fn strategy(configured: &Configured, seed: Option<u64>) -> Result<Strategy, BuildError> {
    Ok(match configured {
        Configured::Sequential => Strategy::Sequential,
        Configured::Parallel { first } => Strategy::Parallel {
            first: first.map(|n| n as usize),
        },
        Configured::Hedged {
            delay,
            max_hedges,
            budget: hedge_budget,
        } => Strategy::Hedged {
            delay: match *delay {
                HedgeSettings::Fixed(delay) => HedgeDelay::Fixed(delay),
                HedgeSettings::Percentile {
                    percentile,
                    min_samples,
                    otherwise,
                } => HedgeDelay::Percentile {
                    percentile,
                    min_samples,
                    otherwise,
                },
            },
            max_hedges: *max_hedges,
            budget: hedge_budget.map(budget).transpose()?,
        },
        Configured::Weighted => Strategy::Weighted {
            random: SharedRandom::new(seed),
        },
    })
}

fn route_spec(route: &RouteConfig, seed: Option<u64>) -> Result<RouteSpec, BuildError> {
    let strategy = strategy(&route.strategy, seed).map_err(|e| match e {
        BuildError::Manager(source) => BuildError::Route {
            route: route.name.clone(),
            source: source.into(),
        },
        other => other,
    })?;
    Ok(RouteSpec::new(route.name.clone(), route.models.clone())
        .strategy(strategy)
        .timeout(route.timeout))
}

fn commit(policy: CommitPolicy) -> Commit {
    match policy {
        CommitPolicy::FirstChunk => Commit::FirstChunk,
        CommitPolicy::PassThrough => Commit::PassThrough,
        CommitPolicy::Buffered => Commit::Buffered,
    }
}

/// A route's degraded answer: its text, as the gateway's own whole answer.
fn degraded_answer(route: &str, text: &str) -> ChatCompletion {
    ChatCompletion {
        id: "hive-degraded".to_owned(),
        model: route.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: Message::new("assistant", text),
            finish_reason: Some("stop".to_owned()),
            extra: Extra::new(),
        }],
        usage: None,
        extra: Extra::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_chaos_is_valid() {
        assert!(!off_chaos().handle().is_enabled());
    }
}
