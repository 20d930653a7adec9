//! Per-model control: what the router asks before each attempt (breaker, health, drain, slow
//! start), and the actions operators and recovery take, each one an audit event.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use hive_breaker::BreakerHandle;
use hive_core::{
    Actor, Available, ControlAction, EventSink, HealthStatus, ModelId, ResilienceEvent,
    SharedRandom, micros,
};
use hive_health::HealthHandle;
use tokio::time::Instant;

/// Ramps traffic back to a recovered model: for `ramp` after it starts, a share of requests
/// growing linearly from 0 to 1 may use the model; the others go to the fallbacks.
#[derive(Debug)]
pub(crate) struct SlowStart {
    ramp: Duration,
    epoch: Instant,
    /// µs since `epoch` plus one when the ramp started; 0 when not ramping.
    started: AtomicU64,
    random: SharedRandom,
}

impl SlowStart {
    pub(crate) fn new(ramp: Duration, random: SharedRandom) -> Self {
        Self {
            ramp,
            epoch: Instant::now(),
            started: AtomicU64::new(0),
            random,
        }
    }

    fn now_us(&self) -> u64 {
        micros(Instant::now().saturating_duration_since(self.epoch))
    }

    pub(crate) fn begin(&self) {
        if !self.ramp.is_zero() {
            self.started.store(self.now_us() + 1, Ordering::Release);
        }
    }

    /// The share of traffic allowed now (1 when not ramping).
    pub(crate) fn share(&self) -> f64 {
        let started = self.started.load(Ordering::Acquire);
        if started == 0 {
            return 1.0;
        }
        let elapsed = self.now_us().saturating_sub(started - 1);
        let ramp = micros(self.ramp);
        if elapsed >= ramp {
            self.started.store(0, Ordering::Release);
            return 1.0;
        }
        elapsed as f64 / ramp as f64
    }

    fn admits(&self) -> bool {
        let share = self.share();
        share >= 1.0 || self.random.unit() < share
    }
}

/// What the router asks before each attempt on a model: is it up, and does slow start let
/// this request through.
pub(crate) struct RouteGate(ModelControl);

impl Available for RouteGate {
    fn available(&self) -> bool {
        self.0.is_up() && self.0.slow_start.admits()
    }

    /// A drained or unhealthy model is never back by itself; otherwise its breaker says.
    fn ready_in(&self) -> Option<Duration> {
        let control = &self.0;
        if control.is_drained() || !control.health.available() {
            return None;
        }
        control.breaker.ready_in()
    }

    /// Only the breaker may end a break early; a drain or an unhealthy status stands.
    fn probe_early(&self, min_interval: Duration) -> bool {
        let control = &self.0;
        !control.is_drained()
            && control.health.available()
            && control.breaker.probe_early(min_interval)
    }
}

/// Controls one model from outside the request path: read its state, force its breaker,
/// override its health, drain it. Every action is emitted as a
/// [`ResilienceEvent::Control`] audit event. Cheap to clone.
#[derive(Clone)]
pub struct ModelControl {
    pub(crate) model: ModelId,
    pub(crate) breaker: BreakerHandle,
    pub(crate) health: HealthHandle,
    pub(crate) drained: Arc<AtomicBool>,
    pub(crate) slow_start: Arc<SlowStart>,
    pub(crate) events: EventSink,
}

impl ModelControl {
    pub(crate) fn route_gate(&self) -> RouteGate {
        RouteGate(self.clone())
    }

    /// Whether it could take a call now: not drained, its breaker would admit one, its health
    /// allows it (slow start aside).
    pub fn is_up(&self) -> bool {
        !self.is_drained() && self.breaker.available() && self.health.available()
    }

    fn audit(&self, action: ControlAction, by: Actor) {
        tracing::info!(model = %self.model, action = action.as_str(), ?by, "model control");
        self.events.emit(|| ResilienceEvent::Control {
            model: self.model,
            action,
            by,
        });
    }

    /// The model.
    pub fn model(&self) -> ModelId {
        self.model
    }

    /// Its breaker.
    pub fn breaker(&self) -> &BreakerHandle {
        &self.breaker
    }

    /// Its health.
    pub fn health(&self) -> &HealthHandle {
        &self.health
    }

    /// Whether it is drained.
    pub fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Acquire)
    }

    /// The share of traffic it may take now (below 1 while slow start ramps it up).
    pub fn traffic_share(&self) -> f64 {
        self.slow_start.share()
    }

    /// Forces its breaker open: no calls until [`force_close`](Self::force_close).
    pub fn force_open(&self) {
        self.act(ControlAction::ForceOpen, Actor::Operator);
    }

    /// Closes its breaker with an empty window.
    pub fn force_close(&self) {
        self.act(ControlAction::ForceClose, Actor::Operator);
    }

    /// Moves its breaker to half-open, so probes go now.
    pub fn half_open(&self) {
        self.act(ControlAction::HalfOpen, Actor::Operator);
    }

    /// Marks it healthy, whatever the checks say, until [`clear_health`](Self::clear_health).
    pub fn mark_healthy(&self) {
        self.act(ControlAction::MarkHealthy, Actor::Operator);
    }

    /// Marks it unhealthy: its gate rejects every call until
    /// [`clear_health`](Self::clear_health).
    pub fn mark_unhealthy(&self) {
        self.act(ControlAction::MarkUnhealthy, Actor::Operator);
    }

    /// Lets checks and signals decide its health again.
    pub fn clear_health(&self) {
        self.act(ControlAction::ClearHealth, Actor::Operator);
    }

    /// Sends no new requests to it; calls in flight finish.
    pub fn drain(&self) {
        self.act(ControlAction::Drain, Actor::Operator);
    }

    /// Takes it back into rotation after [`drain`](Self::drain).
    pub fn undrain(&self) {
        self.act(ControlAction::Undrain, Actor::Operator);
    }

    /// Takes `action` on behalf of `by` (an operator's action another replica of a cluster
    /// took, applied here with [`Actor::Cluster`]), and says so in the event stream.
    /// Slow start begins a ramp.
    pub fn act(&self, action: ControlAction, by: Actor) {
        match action {
            ControlAction::ForceOpen => {
                self.breaker.force_open();
            }
            ControlAction::ForceClose => {
                self.breaker.reset();
            }
            ControlAction::HalfOpen => {
                self.breaker.half_open();
            }
            ControlAction::MarkHealthy => {
                self.health.force(HealthStatus::Healthy);
            }
            ControlAction::MarkUnhealthy => {
                self.health.force(HealthStatus::Unhealthy);
            }
            ControlAction::ClearHealth => {
                self.health.clear_forced();
            }
            ControlAction::Drain => self.drained.store(true, Ordering::Release),
            ControlAction::Undrain => self.drained.store(false, Ordering::Release),
            ControlAction::SlowStart => self.slow_start.begin(),
        }
        self.audit(action, by);
    }

    /// Automatic recovery: the checker saw the model come back. An open breaker goes
    /// half-open at once (even inside a provider's `Retry-After`: the check says the model
    /// is back), and traffic ramps back over the slow-start time.
    pub(crate) fn recovered(&self) {
        // One conditional step: a breaker that closed, or that an operator forced open,
        // since the check began is left alone.
        if self.breaker.half_open_if_open() {
            self.audit(ControlAction::HalfOpen, Actor::Recovery);
        }
        if !self.slow_start.ramp.is_zero() {
            self.slow_start.begin();
            self.audit(ControlAction::SlowStart, Actor::Recovery);
        }
    }
}

impl fmt::Debug for ModelControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelControl")
            .field("model", &self.model)
            .field("breaker", &self.breaker.state())
            .field("health", &self.health.status())
            .field("drained", &self.is_drained())
            .field("traffic_share", &self.traffic_share())
            .finish()
    }
}
