//! [`HealthRegistry`]: what is known of each model's health, from active probes, live
//! traffic and the breaker, and who wants to hear when it changes.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use hive_core::{
    AtomicEwma, CircuitState, ConfigError, EventSink, HealthStatus, ModelId, Outcome,
    ResilienceEvent, check_duration, micros,
};
use tokio::{sync::broadcast, time::Instant};

use crate::telemetry::Instruments;

/// How probe results and live traffic turn into a status.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    pub(crate) healthy_threshold: u32,
    pub(crate) unhealthy_threshold: u32,
    pub(crate) degraded_latency: Option<Duration>,
    pub(crate) degraded_error_rate: Option<f64>,
    pub(crate) ewma_weight: f64,
    pub(crate) events: EventSink,
    pub(crate) metrics: bool,
}

impl Default for RegistryConfig {
    /// A degraded or unhealthy model needs 2 good checks in a row to be healthy again; a
    /// model is unhealthy after 3 failed checks in a row; no latency limit; degraded while
    /// its failure EWMA is above 0.5 (see
    /// [`degraded_error_rate`](Self::degraded_error_rate)); EWMA weight 0.2.
    fn default() -> Self {
        Self {
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            degraded_latency: None,
            degraded_error_rate: Some(0.5),
            ewma_weight: 0.2,
            events: EventSink::none(),
            metrics: false,
        }
    }
}

impl RegistryConfig {
    /// Consecutive good checks that bring a degraded or unhealthy model back to healthy (at
    /// least 1). A model never seen healthy or unhealthy needs one.
    #[must_use]
    pub fn healthy_threshold(mut self, checks: u32) -> Self {
        self.healthy_threshold = checks;
        self
    }

    /// Consecutive failed checks that make a model unhealthy (at least 1). Fewer make a
    /// healthy model degraded.
    #[must_use]
    pub fn unhealthy_threshold(mut self, checks: u32) -> Self {
        self.unhealthy_threshold = checks;
        self
    }

    /// A model whose latency EWMA is above this (above zero, at most
    /// [`MAX_DURATION`](hive_core::MAX_DURATION)) is degraded.
    #[must_use]
    pub fn degraded_latency(mut self, latency: Duration) -> Self {
        self.degraded_latency = Some(latency);
        self
    }

    /// A model whose failure EWMA (of checks and live calls, see
    /// [`HealthHandle::record_outcome`]) is above `rate`, in (0, 1), is degraded; `None`
    /// turns the limit off. Default 0.5.
    ///
    /// Like slowness, this is informative: the gate lets degraded models through, and the
    /// breaker is what stops calls. It is on by default because it sees what the other
    /// signals miss: a model whose cheap probe (`GET /v1/models`) passes while its
    /// completions fail, and failures its breaker does not act on (a breaker disabled or
    /// metrics-only, or below its minimum calls). 0.5 matches the breaker's default
    /// failure-rate threshold. The average starts at 0, so with the default weight of 0.2 a
    /// model is degraded after 4 failures in a row from a clean record (1 − 0.8⁴ ≈ 0.59) or
    /// a sustained failure share above half, and back under after one success (0.59 →
    /// 0.47). Like the latency limit, it follows the average, without hysteresis.
    #[must_use]
    pub fn degraded_error_rate(mut self, rate: impl Into<Option<f64>>) -> Self {
        self.degraded_error_rate = rate.into();
        self
    }

    /// Weight of the newest observation in the latency and error-rate EWMAs, in (0, 1].
    #[must_use]
    pub fn ewma_weight(mut self, weight: f64) -> Self {
        self.ewma_weight = weight;
        self
    }

    /// Where status changes are reported (besides [`HealthRegistry::subscribe`]).
    #[must_use]
    pub fn events(mut self, events: EventSink) -> Self {
        self.events = events;
        self
    }

    /// Records metrics through the `metrics` facade, per model: the status
    /// (`hive_health_status`: 0 unknown, 1 healthy, 2 degraded, 3 unhealthy), active checks
    /// by result (`hive_health_checks_total`) and their duration
    /// (`hive_health_check_duration_seconds`). Handles are registered when a model is first
    /// registered. Default off.
    #[must_use]
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Validates the settings into a registry.
    pub fn build(self) -> Result<HealthRegistry, ConfigError> {
        if self.healthy_threshold == 0 {
            return Err(ConfigError::new("healthy_threshold", "must be at least 1"));
        }
        if self.unhealthy_threshold == 0 {
            return Err(ConfigError::new(
                "unhealthy_threshold",
                "must be at least 1",
            ));
        }
        if let Some(latency) = self.degraded_latency {
            check_duration("degraded_latency", latency, false)?;
        }
        if let Some(rate) = self.degraded_error_rate
            && !(rate > 0.0 && rate < 1.0)
        {
            return Err(ConfigError::new(
                "degraded_error_rate",
                format!("{rate} is outside (0, 1); `None` turns the limit off"),
            ));
        }
        if !(self.ewma_weight > 0.0 && self.ewma_weight <= 1.0) {
            return Err(ConfigError::new(
                "ewma_weight",
                format!("{} is outside (0, 1]", self.ewma_weight),
            ));
        }
        let (changes, _) = broadcast::channel(256);
        Ok(HealthRegistry {
            inner: Arc::new(RegistryInner {
                epoch: Instant::now(),
                config: self,
                models: RwLock::default(),
                changes,
            }),
        })
    }
}

/// What changed a model's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeCause {
    /// An active check passed.
    CheckPassed,
    /// An active check failed.
    CheckFailed,
    /// The breaker opened or closed (or was forgotten: [`HealthHandle::reset_circuit`]).
    Circuit,
    /// The latency EWMA crossed the degraded limit.
    Latency,
    /// The failure EWMA crossed the degraded limit.
    ErrorRate,
    /// An operator forced a status or cleared it.
    Operator,
}

impl ChangeCause {
    /// A few words for logs and events.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CheckPassed => "check passed",
            Self::CheckFailed => "check failed",
            Self::Circuit => "circuit breaker",
            Self::Latency => "latency",
            Self::ErrorRate => "error rate",
            Self::Operator => "operator",
        }
    }
}

/// A change of one model's status, or of what its checks alone say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthChange {
    /// The model.
    pub model: ModelId,
    /// Status before (what the gate acts on).
    pub from: HealthStatus,
    /// Status after. Equal to `from` when only the checks' view changed (for example a
    /// model whose breaker is open, so degraded, that passes a check again).
    pub to: HealthStatus,
    /// The checks' view before.
    pub checks_from: HealthStatus,
    /// The checks' view after.
    pub checks_to: HealthStatus,
    /// What caused it.
    pub cause: ChangeCause,
}

impl HealthChange {
    /// Whether the checks saw the model come back: a passed check after failed ones.
    pub fn checks_recovered(&self) -> bool {
        self.cause == ChangeCause::CheckPassed
            && self.checks_to == HealthStatus::Healthy
            && matches!(
                self.checks_from,
                HealthStatus::Degraded | HealthStatus::Unhealthy
            )
    }
}

/// Every model's health. Cheap to clone; clones share the models.
#[derive(Clone)]
pub struct HealthRegistry {
    inner: Arc<RegistryInner>,
}

struct RegistryInner {
    epoch: Instant,
    config: RegistryConfig,
    models: RwLock<BTreeMap<ModelId, HealthHandle>>,
    changes: broadcast::Sender<HealthChange>,
}

impl Default for HealthRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthRegistry {
    /// A registry with the [default settings](RegistryConfig::default).
    pub fn new() -> Self {
        Self::builder()
            .build()
            .unwrap_or_else(|_| unreachable!("the default settings are valid"))
    }

    /// Settings to build a registry with.
    pub fn builder() -> RegistryConfig {
        RegistryConfig::default()
    }

    /// The handle of `model`, registering it (as [`HealthStatus::Unknown`]) on first use.
    pub fn register(&self, model: impl Into<ModelId>) -> HealthHandle {
        let model = model.into();
        if let Some(handle) = self.get(model) {
            return handle;
        }
        let mut models = self
            .inner
            .models
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        models
            .entry(model)
            .or_insert_with(|| HealthHandle {
                health: Arc::new(ModelHealth::new(model, Arc::clone(&self.inner))),
            })
            .clone()
    }

    /// The handle of `model`, if registered.
    pub fn get(&self, model: impl Into<ModelId>) -> Option<HealthHandle> {
        let model = model.into();
        self.inner
            .models
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&model)
            .cloned()
    }

    /// The status of `model` (`Unknown` if not registered).
    pub fn status(&self, model: impl Into<ModelId>) -> HealthStatus {
        self.get(model)
            .map_or(HealthStatus::Unknown, |h| h.status())
    }

    /// A snapshot of every registered model, by name.
    pub fn snapshot(&self) -> Vec<HealthSnapshot> {
        self.inner
            .models
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .map(HealthHandle::snapshot)
            .collect()
    }

    /// Status changes from now on. A receiver that falls more than 256 changes behind
    /// skips the oldest (and is told how many).
    pub fn subscribe(&self) -> broadcast::Receiver<HealthChange> {
        self.inner.changes.subscribe()
    }

    /// An event sink that feeds circuit breaker transitions into this registry: give it to
    /// each breaker's config (`.events(registry.event_sink())`). A model whose breaker is
    /// open is at least degraded. Transitions may arrive out of order; each is applied only
    /// if it is newer than the last applied (see [`HealthHandle::set_circuit`]).
    pub fn event_sink(&self) -> EventSink {
        let registry = self.clone();
        EventSink::from_fn(move |event| match event {
            ResilienceEvent::CircuitTransition {
                model,
                to,
                generation,
                ..
            } => {
                registry.register(*model).set_circuit(*to, *generation);
            }
            ResilienceEvent::BreakerReplaced { model } => {
                if let Some(handle) = registry.get(*model) {
                    handle.reset_circuit();
                }
            }
            _ => {}
        })
    }
}

impl fmt::Debug for HealthRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthRegistry")
            .field("config", &self.inner.config)
            .field("models", &self.snapshot())
            .finish()
    }
}

// The state word: everything the status depends on, so one compare-and-swap keeps it
// consistent whoever updates it (the checker, live traffic, the breaker, an operator), and
// the gate reads the status with one load.
//
//   bits 0-1    the status the gate acts on (resolved from the rest)
//   bits 2-3    the status from active checks alone
//   bit  4      the breaker is open (or forced open)
//   bit  5      the latency EWMA is above `degraded_latency`
//   bit  6      the failure EWMA is above `degraded_error_rate`
//   bits 7-9    a forced status: 0 = none, else status + 1
//   bits 16-63  the generation of the last breaker transition applied (0 = none yet)
//
// The generation shares the word with the open bit so that "apply only if newer" is one
// compare-and-swap: two transitions delivered at once cannot both apply out of order.
const EFFECTIVE_MASK: u64 = 0b11;
const PROBE_SHIFT: u32 = 2;
const CIRCUIT_OPEN: u64 = 1 << 4;
const SLOW: u64 = 1 << 5;
const ERRORS: u64 = 1 << 6;
const FORCED_SHIFT: u32 = 7;
const FORCED_MASK: u64 = 0b111 << FORCED_SHIFT;
const GENERATION_SHIFT: u32 = 16;
/// The largest breaker generation the word holds; later ones count as this one.
const MAX_GENERATION: u64 = u64::MAX >> GENERATION_SHIFT;

fn effective(word: u64) -> HealthStatus {
    HealthStatus::from_u8((word & EFFECTIVE_MASK) as u8)
}

fn probe_status(word: u64) -> HealthStatus {
    HealthStatus::from_u8(((word >> PROBE_SHIFT) & 0b11) as u8)
}

fn forced(word: u64) -> Option<HealthStatus> {
    match (word & FORCED_MASK) >> FORCED_SHIFT {
        0 => None,
        n => Some(HealthStatus::from_u8((n - 1) as u8)),
    }
}

fn circuit_generation(word: u64) -> u64 {
    word >> GENERATION_SHIFT
}

fn set_probe(word: u64, status: HealthStatus) -> u64 {
    (word & !(0b11 << PROBE_SHIFT)) | ((status as u64) << PROBE_SHIFT)
}

fn set_flag(word: u64, flag: u64, on: bool) -> u64 {
    if on { word | flag } else { word & !flag }
}

/// The status the gate sees, from the parts of the word.
fn resolve(word: u64) -> u64 {
    let status = forced(word).unwrap_or_else(|| {
        let probed = probe_status(word);
        let passive = word & (CIRCUIT_OPEN | SLOW | ERRORS) != 0;
        match probed {
            HealthStatus::Healthy | HealthStatus::Unknown if passive => HealthStatus::Degraded,
            other => other,
        }
    });
    (word & !EFFECTIVE_MASK) | status as u64
}

/// The health of one model: atomics only, so live traffic can feed it and the gate can read
/// it without a lock.
struct ModelHealth {
    model: ModelId,
    registry: Arc<RegistryInner>,
    word: AtomicU64,
    consecutive_successes: AtomicU32,
    consecutive_failures: AtomicU32,
    /// µs since the registry's epoch, plus one (0 = never checked).
    last_check: AtomicU64,
    latency_ewma_secs: AtomicEwma,
    error_rate: AtomicEwma,
    checks: AtomicU64,
    failed_checks: AtomicU64,
    instruments: Option<Instruments>,
}

impl ModelHealth {
    fn new(model: ModelId, registry: Arc<RegistryInner>) -> Self {
        let weight = registry.config.ewma_weight;
        Self {
            model,
            word: AtomicU64::new(0),
            consecutive_successes: AtomicU32::new(0),
            consecutive_failures: AtomicU32::new(0),
            last_check: AtomicU64::new(0),
            latency_ewma_secs: AtomicEwma::new(weight),
            error_rate: AtomicEwma::starting_at(weight, 0.0),
            checks: AtomicU64::new(0),
            failed_checks: AtomicU64::new(0),
            instruments: registry
                .config
                .metrics
                .then(|| Instruments::register(model)),
            registry,
        }
    }

    /// Changes the word with `change` (then resolves the status); reports a change of
    /// status once, from the update that made it.
    fn update(&self, cause: ChangeCause, change: impl Fn(u64) -> u64) -> Option<HealthChange> {
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            let next = resolve(change(word));
            if next == word {
                return None;
            }
            match self
                .word
                .compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let change = HealthChange {
                        model: self.model,
                        from: effective(word),
                        to: effective(next),
                        checks_from: probe_status(word),
                        checks_to: probe_status(next),
                        cause,
                    };
                    if change.from == change.to && change.checks_from == change.checks_to {
                        return None;
                    }
                    return Some(self.announce(change));
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// Tells subscribers; a change of the gate's status is also logged and an event.
    #[cold]
    fn announce(&self, change: HealthChange) -> HealthChange {
        let _ = self.registry.changes.send(change.clone());
        if change.from != change.to {
            if let Some(instruments) = &self.instruments {
                // The status now, not the change's: a later change announced first must
                // not be overwritten by an earlier one.
                instruments.status(effective(self.word.load(Ordering::Acquire)));
            }
            let (from, to, reason) = (change.from, change.to, change.cause.as_str());
            tracing::info!(model = %self.model, %from, %to, reason, "model health changed");
            self.registry
                .config
                .events
                .emit(|| ResilienceEvent::HealthChanged {
                    model: self.model,
                    from,
                    to,
                    reason,
                });
        }
        change
    }

    /// Feeds the failure and latency EWMAs, and sets the passive bits from them. Each bit is
    /// computed from the average read inside the compare-and-swap, so two observations racing
    /// can leave it at most one observation behind, until the next.
    fn observe(&self, failed: bool, latency: Option<Duration>) -> Option<HealthChange> {
        let config = &self.registry.config;
        self.error_rate.record(if failed { 1.0 } else { 0.0 });
        let errors = config.degraded_error_rate.and_then(|limit| {
            self.update(ChangeCause::ErrorRate, |w| {
                let high = self.error_rate.get().is_some_and(|rate| rate > limit);
                set_flag(w, ERRORS, high)
            })
        });
        let slow = latency.and_then(|latency| {
            self.latency_ewma_secs.record(latency.as_secs_f64());
            let limit = config.degraded_latency?.as_secs_f64();
            self.update(ChangeCause::Latency, |w| {
                let slow = self.latency_ewma_secs.get().is_some_and(|l| l > limit);
                set_flag(w, SLOW, slow)
            })
        });
        errors.or(slow)
    }
}

/// One model's entry in the registry: read its status, feed it signals, force it. Cheap to
/// clone.
#[derive(Clone)]
pub struct HealthHandle {
    health: Arc<ModelHealth>,
}

/// One model's health at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthSnapshot {
    /// The model.
    pub model: ModelId,
    /// The status the gate acts on.
    pub status: HealthStatus,
    /// The status from active checks alone.
    pub probe_status: HealthStatus,
    /// Whether its circuit breaker is open (or forced open).
    pub circuit_open: bool,
    /// The generation of the last breaker transition applied (0: none yet).
    pub circuit_generation: u64,
    /// Whether its latency EWMA is above `degraded_latency`.
    pub slow: bool,
    /// Whether its failure EWMA is above `degraded_error_rate`.
    pub error_rate_high: bool,
    /// A status an operator forced, if any.
    pub forced: Option<HealthStatus>,
    /// Time since the last check, if any.
    pub since_last_check: Option<Duration>,
    /// Good checks in a row.
    pub consecutive_successes: u32,
    /// Failed checks in a row.
    pub consecutive_failures: u32,
    /// Latency EWMA of checks and live calls.
    pub latency_ewma: Option<Duration>,
    /// Failure EWMA (0..=1) of checks and live calls.
    pub error_rate: f64,
    /// Checks made.
    pub checks: u64,
    /// Checks failed.
    pub failed_checks: u64,
}

impl HealthHandle {
    /// The model.
    pub fn model(&self) -> ModelId {
        self.health.model
    }

    /// The status the gate acts on (one atomic load).
    #[inline]
    pub fn status(&self) -> HealthStatus {
        effective(self.health.word.load(Ordering::Acquire))
    }

    /// Records the result of one active check. Returns the status change it caused (that
    /// of the check itself first, else one its latency or failure caused).
    pub fn record_check(&self, ok: bool, latency: Duration) -> Option<HealthChange> {
        let h = &self.health;
        let now = micros(Instant::now().saturating_duration_since(h.registry.epoch));
        h.last_check.store(now.saturating_add(1), Ordering::Release);
        h.checks.fetch_add(1, Ordering::Relaxed);
        if let Some(instruments) = &h.instruments {
            instruments.check(ok, latency);
        }
        let config = &h.registry.config;
        let change = if ok {
            h.consecutive_failures.store(0, Ordering::Release);
            let streak = h.consecutive_successes.fetch_add(1, Ordering::AcqRel) + 1;
            h.update(ChangeCause::CheckPassed, |w| {
                let next = match probe_status(w) {
                    status @ (HealthStatus::Degraded | HealthStatus::Unhealthy)
                        if streak < config.healthy_threshold =>
                    {
                        status
                    }
                    _ => HealthStatus::Healthy,
                };
                set_probe(w, next)
            })
        } else {
            h.failed_checks.fetch_add(1, Ordering::Relaxed);
            h.consecutive_successes.store(0, Ordering::Release);
            let streak = h.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
            h.update(ChangeCause::CheckFailed, |w| {
                let next = match probe_status(w) {
                    _ if streak >= config.unhealthy_threshold => HealthStatus::Unhealthy,
                    HealthStatus::Healthy | HealthStatus::Degraded => HealthStatus::Degraded,
                    other => other,
                };
                set_probe(w, next)
            })
        };
        let passive = h.observe(!ok, ok.then_some(latency));
        change.or(passive)
    }

    /// Records the outcome of a live call (passive signal): feeds the error-rate and
    /// latency EWMAs (a failure carries no latency), which can make the model degraded (see
    /// [`RegistryConfig::degraded_error_rate`] and [`RegistryConfig::degraded_latency`]). A
    /// few atomic operations; call it from where outcomes are known. Client errors count as
    /// answers; rejections and ignored outcomes are not the model's doing and count as
    /// nothing.
    pub fn record_outcome(&self, outcome: &Outcome, latency: Duration) -> Option<HealthChange> {
        match outcome {
            Outcome::Success | Outcome::ClientError(_) => self.health.observe(false, Some(latency)),
            Outcome::Failure { .. } => self.health.observe(true, None),
            Outcome::Rejected(_) | Outcome::Ignored => None,
        }
    }

    /// Tells the registry the model's breaker moved to `state` in `generation` (the
    /// `generation` of its [`CircuitTransition`](ResilienceEvent::CircuitTransition)). An
    /// open (or forced open) breaker makes the model at least degraded.
    ///
    /// Applied only if `generation` is newer than the last one applied, else ignored
    /// (`None`): a breaker emits its events outside its lock, so a listener may receive
    /// `HalfOpen → Closed` before `Open → HalfOpen`, and the late one must not undo the
    /// newer. The comparison and the change are one compare-and-swap, so transitions
    /// delivered by many threads at once end at the newest, whatever order they run in.
    ///
    /// Generations are those of one breaker: they start at 1 and grow by one per
    /// transition (so 0 is never applied). When the model's breaker is replaced by a new
    /// one, whose generations start again, call [`reset_circuit`](Self::reset_circuit)
    /// first. Generations above 2⁴⁸ − 1 count as 2⁴⁸ − 1.
    pub fn set_circuit(&self, state: CircuitState, generation: u64) -> Option<HealthChange> {
        let open = matches!(state, CircuitState::Open | CircuitState::ForcedOpen);
        let generation = generation.min(MAX_GENERATION);
        self.health.update(ChangeCause::Circuit, |w| {
            if generation <= circuit_generation(w) {
                return w;
            }
            let w = (w & !(MAX_GENERATION << GENERATION_SHIFT)) | generation << GENERATION_SHIFT;
            set_flag(w, CIRCUIT_OPEN, open)
        })
    }

    /// Forgets the model's breaker: not open, and no generation applied yet, so the next
    /// transition of any generation applies. For when the model's breaker is replaced by a
    /// new one (a rebuilt stack) whose generations start again at 1.
    pub fn reset_circuit(&self) -> Option<HealthChange> {
        self.health.update(ChangeCause::Circuit, |w| {
            w & !(CIRCUIT_OPEN | MAX_GENERATION << GENERATION_SHIFT)
        })
    }

    /// Forces a status (operator action) until [`clear_forced`](Self::clear_forced).
    pub fn force(&self, status: HealthStatus) -> Option<HealthChange> {
        self.health.update(ChangeCause::Operator, |w| {
            (w & !FORCED_MASK) | ((status as u64 + 1) << FORCED_SHIFT)
        })
    }

    /// Lets checks and signals decide again.
    pub fn clear_forced(&self) -> Option<HealthChange> {
        self.health
            .update(ChangeCause::Operator, |w| w & !FORCED_MASK)
    }

    /// A snapshot of this model's health.
    pub fn snapshot(&self) -> HealthSnapshot {
        let h = &self.health;
        let word = h.word.load(Ordering::Acquire);
        let last = h.last_check.load(Ordering::Acquire);
        let latency = h.latency_ewma_secs.get();
        HealthSnapshot {
            model: h.model,
            status: effective(word),
            probe_status: probe_status(word),
            circuit_open: word & CIRCUIT_OPEN != 0,
            circuit_generation: circuit_generation(word),
            slow: word & SLOW != 0,
            error_rate_high: word & ERRORS != 0,
            forced: forced(word),
            since_last_check: (last > 0).then(|| {
                Instant::now()
                    .saturating_duration_since(h.registry.epoch)
                    .saturating_sub(Duration::from_micros(last - 1))
            }),
            consecutive_successes: h.consecutive_successes.load(Ordering::Acquire),
            consecutive_failures: h.consecutive_failures.load(Ordering::Acquire),
            latency_ewma: latency.map(|secs| Duration::from_secs_f64(secs.max(0.0))),
            error_rate: h.error_rate.get().unwrap_or(0.0),
            checks: h.checks.load(Ordering::Relaxed),
            failed_checks: h.failed_checks.load(Ordering::Relaxed),
        }
    }
}

impl hive_core::Available for HealthHandle {
    /// Whether the health gate would let a call through (anything but unhealthy).
    fn available(&self) -> bool {
        self.status() != HealthStatus::Unhealthy
    }
}

impl fmt::Debug for HealthHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthHandle")
            .field("model", &self.model())
            .field("status", &self.status())
            .finish()
    }
}
