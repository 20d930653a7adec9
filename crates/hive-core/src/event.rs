//! [`ResilienceEvent`]s and the [`EventSink`] that carries them.
//!
//! Layers emit events on state changes and failures, never on plain successes. An
//! [`EventSink`] with no listener is a `None`: emitting is one branch and the event is never
//! built. A listener never blocks the request path: use [`EventSink::channel`] for a bounded
//! queue that drops (and counts) events when full.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::mpsc;

use crate::{FailureClass, ModelId, RejectReason};

/// The state of a circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls flow; outcomes are recorded and may trip the breaker.
    Closed,
    /// Calls are rejected until the open duration ends.
    Open,
    /// A bounded number of probe calls decide between closing and reopening.
    HalfOpen,
    /// An operator forced the breaker open; only the handle can change it.
    ForcedOpen,
    /// The breaker lets every call through and records nothing.
    Disabled,
    /// The breaker lets every call through, records outcomes, and never changes state.
    MetricsOnly,
}

impl CircuitState {
    /// Every state, in declaration order.
    pub const ALL: [CircuitState; 6] = [
        Self::Closed,
        Self::Open,
        Self::HalfOpen,
        Self::ForcedOpen,
        Self::Disabled,
        Self::MetricsOnly,
    ];

    /// The state's place in [`ALL`](Self::ALL).
    pub const fn index(self) -> usize {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
            Self::ForcedOpen => 3,
            Self::Disabled => 4,
            Self::MetricsOnly => 5,
        }
    }

    /// A short stable name, for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
            Self::MetricsOnly => "metrics_only",
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the health registry thinks of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum HealthStatus {
    /// Not checked yet; calls go through.
    #[default]
    Unknown = 0,
    /// Answering well.
    Healthy = 1,
    /// Answering, but failing checks below the unhealthy threshold, slow, failing often in
    /// live traffic (its failure average above the registry's `degraded_error_rate`), or
    /// with its breaker open; calls go through.
    Degraded = 2,
    /// Failed enough checks in a row (or an operator said so); the health gate rejects
    /// calls.
    Unhealthy = 3,
}

impl HealthStatus {
    /// A short stable name, for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }

    /// The status stored as `value` by `status as u8`; unknown values read as `Unknown`.
    pub const fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Healthy,
            2 => Self::Degraded,
            3 => Self::Unhealthy,
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A control action on one model, by an operator or by automatic recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlAction {
    /// The breaker was forced open: no calls until reset.
    ForceOpen,
    /// The breaker was closed with an empty window.
    ForceClose,
    /// The breaker was moved to half-open so probes go now.
    HalfOpen,
    /// The model was marked healthy, whatever the checks say.
    MarkHealthy,
    /// The model was marked unhealthy, whatever the checks say.
    MarkUnhealthy,
    /// Checks and signals decide the model's health again.
    ClearHealth,
    /// No new requests go to the model; those in flight finish.
    Drain,
    /// The model takes new requests again.
    Undrain,
    /// Traffic to a recovered model ramps up gradually.
    SlowStart,
}

impl ControlAction {
    /// Every action an operator takes (not the automatic ones), in a stable order.
    pub const BY_OPERATORS: [Self; 8] = [
        Self::ForceOpen,
        Self::ForceClose,
        Self::HalfOpen,
        Self::MarkHealthy,
        Self::MarkUnhealthy,
        Self::ClearHealth,
        Self::Drain,
        Self::Undrain,
    ];

    /// The operator's action named `name` ([`as_str`](Self::as_str)).
    pub fn by_operator_named(name: &str) -> Option<Self> {
        Self::BY_OPERATORS.into_iter().find(|a| a.as_str() == name)
    }

    /// A short stable name, for logs and audit records.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ForceOpen => "force_open",
            Self::ForceClose => "force_close",
            Self::HalfOpen => "half_open",
            Self::MarkHealthy => "mark_healthy",
            Self::MarkUnhealthy => "mark_unhealthy",
            Self::ClearHealth => "clear_health",
            Self::Drain => "drain",
            Self::Undrain => "undrain",
            Self::SlowStart => "slow_start",
        }
    }
}

/// Who took a control action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A person, through a handle, the admin API or the dashboard.
    Operator,
    /// Automatic recovery, when the health checker saw the model come back.
    Recovery,
    /// Another replica of the cluster, applying here what an operator did there (audited
    /// there, once).
    Cluster,
}

impl Actor {
    /// A short stable name, for logs and audit records.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Recovery => "recovery",
            Self::Cluster => "cluster",
        }
    }
}

/// Why a retry layer stopped retrying and returned the last failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryStop {
    /// Every allowed attempt was made.
    Exhausted,
    /// The retry budget had no token left.
    BudgetDenied,
    /// The next attempt could not start (backoff included) before the request's deadline.
    DeadlineTooClose,
    /// The provider asked for a wait longer than the retry-after cap.
    RetryAfterTooLong,
    /// The model cannot take another call now (its breaker opened on this failure, or the
    /// failed attempt was a half-open probe): the request moves on to the next model at
    /// once instead of waiting out a backoff to be rejected.
    Unavailable,
}

impl RetryStop {
    /// A short stable name, for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Exhausted => "exhausted",
            Self::BudgetDenied => "budget_denied",
            Self::DeadlineTooClose => "deadline_too_close",
            Self::RetryAfterTooLong => "retry_after_too_long",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Something a layer did that an operator may want to see.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ResilienceEvent {
    /// A circuit breaker changed state (emitted exactly once per transition).
    ///
    /// Events are emitted after the breaker's state has changed, outside its lock, so under
    /// concurrency a listener may receive two transitions out of order (`HalfOpen → Closed`
    /// before `Open → HalfOpen`). `generation` orders them: apply a transition only if its
    /// generation is newer than the last one applied, as the health registry does.
    CircuitTransition {
        /// The model the breaker guards.
        model: ModelId,
        /// State before.
        from: CircuitState,
        /// State after.
        to: CircuitState,
        /// The breaker's generation after the transition (it grows by one per transition).
        generation: u64,
        /// The failure rate (0..=1) that caused the change, when a rate caused it.
        failure_rate: Option<f64>,
        /// The slow-call rate (0..=1) that caused the change, when a rate caused it.
        slow_call_rate: Option<f64>,
    },
    /// A model's breaker was replaced by a new one (its stack rebuilt, on a reload that
    /// changed its settings): the new breaker is closed and its generations start again at
    /// 0, so a listener that orders transitions by generation must forget the old ones
    /// (the health registry, the monitor and the gateway's history do).
    BreakerReplaced {
        /// The model.
        model: ModelId,
    },
    /// A call was refused without reaching the model.
    CallRejected {
        /// The model not called.
        model: ModelId,
        /// Why.
        reason: RejectReason,
    },
    /// An attempt failed and another will start after `delay`.
    Retry {
        /// The model retried.
        model: ModelId,
        /// The attempt that failed (the first call is attempt 1).
        attempt: u32,
        /// The backoff before the next attempt.
        delay: Duration,
        /// Why the attempt failed.
        class: FailureClass,
    },
    /// A router moved a request from one model to the next.
    Failover {
        /// The model that did not answer well (or was skipped).
        from: ModelId,
        /// The model tried next.
        to: ModelId,
        /// Why `from` was left: its outcome (`Rejected` when it was skipped as unavailable).
        reason: crate::Outcome,
        /// Time spent on `from`.
        latency: Duration,
    },
    /// A provider refused the credentials (HTTP 401/403): not retried, and an operator must
    /// act — alerting raises it.
    CredentialsRejected {
        /// The model whose provider refused.
        model: ModelId,
    },
    /// A hedging router started another model while the first was still working.
    Hedge {
        /// The model still working (the one started first).
        from: ModelId,
        /// The model started beside it.
        to: ModelId,
        /// How long after the first the hedge started.
        after: Duration,
    },
    /// Every model of a request was unavailable (breakers open): the router sent one probe
    /// to the model whose break ends first instead of failing the request at once (in the
    /// spirit of Envoy's panic threshold).
    LastResort {
        /// The model probed.
        model: ModelId,
        /// What was left of its break.
        break_left: Duration,
    },
    /// A control action on a model (the audit trail of manual and automatic recovery).
    Control {
        /// The model.
        model: ModelId,
        /// What was done.
        action: ControlAction,
        /// Who did it.
        by: Actor,
    },
    /// The health registry changed its view of a model.
    HealthChanged {
        /// The model.
        model: ModelId,
        /// Status before.
        from: HealthStatus,
        /// Status after.
        to: HealthStatus,
        /// What caused it, in a few words ("3 failed checks", "circuit open", "operator").
        reason: &'static str,
    },
    /// A retry layer returned a failure without another attempt.
    RetryStopped {
        /// The model.
        model: ModelId,
        /// Attempts made, the first call included.
        attempts: u32,
        /// The class of the last failure.
        class: FailureClass,
        /// Why no further attempt was made.
        reason: RetryStop,
    },
    /// A gateway tried to reload its configuration while serving (emitted after every
    /// attempt, whatever triggered it: a file change, a signal, the admin API). About no
    /// model: [`model`](Self::model) is `None`.
    ///
    /// * Accepted: the new configuration was valid and now serves; `problems` is 0 and
    ///   `config_hash` is the new configuration's.
    /// * Refused: the new configuration had `problems` problems (at least 1) and was not
    ///   applied; the old one keeps serving, and `config_hash` is the old one's. Alerting
    ///   raises it until a later reload is accepted.
    ConfigReload {
        /// Whether the new configuration was applied.
        accepted: bool,
        /// How many problems refused it (0 when accepted).
        problems: u32,
        /// The hash of the configuration serving after the attempt, as the gateway shows it
        /// (hive-config's `ConfigHash`: `sha256:` and 64 hex digits).
        config_hash: String,
    },
    /// This replica's link to the other replicas of its cluster (cluster mode, through
    /// Redis) went down — it serves on its own state and shares nothing — or came back.
    ClusterLink {
        /// Whether the link is up now.
        up: bool,
    },
}

impl ResilienceEvent {
    /// The model the event is about (the one left, for a failover or a hedge); `None` for
    /// an event about no model ([`ConfigReload`](Self::ConfigReload)).
    pub fn model(&self) -> Option<&ModelId> {
        match self {
            Self::CircuitTransition { model, .. }
            | Self::CallRejected { model, .. }
            | Self::Retry { model, .. }
            | Self::RetryStopped { model, .. }
            | Self::HealthChanged { model, .. }
            | Self::Control { model, .. }
            | Self::LastResort { model, .. }
            | Self::CredentialsRejected { model }
            | Self::BreakerReplaced { model } => Some(model),
            Self::Failover { from, .. } | Self::Hedge { from, .. } => Some(from),
            Self::ConfigReload { .. } | Self::ClusterLink { .. } => None,
        }
    }

    /// A short stable name of the event's kind, for logs and metric labels
    /// (`circuit_transition`, `config_reload`, …).
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::CircuitTransition { .. } => "circuit_transition",
            Self::BreakerReplaced { .. } => "breaker_replaced",
            Self::CallRejected { .. } => "call_rejected",
            Self::Retry { .. } => "retry",
            Self::Failover { .. } => "failover",
            Self::CredentialsRejected { .. } => "credentials_rejected",
            Self::Hedge { .. } => "hedge",
            Self::LastResort { .. } => "last_resort",
            Self::Control { .. } => "control",
            Self::HealthChanged { .. } => "health_changed",
            Self::RetryStopped { .. } => "retry_stopped",
            Self::ConfigReload { .. } => "config_reload",
            Self::ClusterLink { .. } => "cluster_link",
        }
    }
}

type Listener = dyn Fn(&ResilienceEvent) + Send + Sync;

/// A listener and the count of its panics.
struct Shared {
    listener: Box<Listener>,
    panics: AtomicU64,
}

/// Where layers send their events. Cheap to clone; the default has no listener and costs one
/// branch per emit.
///
/// A listener runs on the thread that emits, inside the layer that emits, so it is isolated:
/// a listener that panics loses that event (the panic is caught, counted in
/// [`panics`](Self::panics) and logged), and the request that triggered the event carries on
/// with its own result.
#[derive(Clone, Default)]
pub struct EventSink {
    listener: Option<Arc<Shared>>,
}

impl EventSink {
    /// A sink with no listener: events are never built.
    pub const fn none() -> Self {
        Self { listener: None }
    }

    /// A sink that calls `listener` for every event, on the thread that emits it. The
    /// listener must not block.
    pub fn from_fn(listener: impl Fn(&ResilienceEvent) + Send + Sync + 'static) -> Self {
        Self {
            listener: Some(Arc::new(Shared {
                listener: Box::new(listener),
                panics: AtomicU64::new(0),
            })),
        }
    }

    /// A sink that queues events into a bounded channel of `capacity` (at least 1). When the
    /// queue is full the event is dropped and counted in [`EventReceiver::dropped`].
    pub fn channel(capacity: usize) -> (Self, EventReceiver) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&dropped);
        let sink = Self::from_fn(move |event| {
            if tx.try_send(event.clone()).is_err() {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        (sink, EventReceiver { rx, dropped })
    }

    /// Whether anybody listens.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.listener.is_some()
    }

    /// Emits the event built by `make`, which runs only when somebody listens.
    #[inline]
    pub fn emit(&self, make: impl FnOnce() -> ResilienceEvent) {
        if let Some(shared) = &self.listener {
            deliver(shared, &make());
        }
    }

    /// How many times the listener panicked (each time an event was lost).
    pub fn panics(&self) -> u64 {
        self.listener
            .as_ref()
            .map_or(0, |shared| shared.panics.load(Ordering::Relaxed))
    }
}

#[cold]
#[inline(never)]
fn deliver(shared: &Shared, event: &ResilienceEvent) {
    let delivered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (shared.listener)(event);
    }));
    if delivered.is_err() {
        shared.panics.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            event = event.kind(),
            model = event.model().map_or("-", |model| model.as_str()),
            "an event listener panicked; the event is lost"
        );
    }
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSink")
            .field("enabled", &self.is_enabled())
            .finish()
    }
}

/// The receiving end of [`EventSink::channel`].
#[derive(Debug)]
pub struct EventReceiver {
    rx: mpsc::Receiver<ResilienceEvent>,
    dropped: Arc<AtomicU64>,
}

impl EventReceiver {
    /// Waits for the next event; `None` once every sink is gone.
    pub async fn recv(&mut self) -> Option<ResilienceEvent> {
        self.rx.recv().await
    }

    /// The next queued event, without waiting.
    pub fn try_recv(&mut self) -> Option<ResilienceEvent> {
        self.rx.try_recv().ok()
    }

    /// Every event queued now.
    pub fn drain(&mut self) -> Vec<ResilienceEvent> {
        std::iter::from_fn(|| self.try_recv()).collect()
    }

    /// How many events were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected() -> ResilienceEvent {
        ResilienceEvent::CallRejected {
            model: ModelId::new("m"),
            reason: RejectReason::ForcedOpen,
        }
    }

    #[test]
    fn no_listener_never_builds_the_event() {
        EventSink::none().emit(|| unreachable!("built an event nobody listens to"));
    }

    #[test]
    fn a_panicking_listener_loses_the_event_not_the_caller() {
        let seen = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&seen);
        let sink = EventSink::from_fn(move |event| {
            if let ResilienceEvent::CallRejected {
                reason: RejectReason::ForcedOpen,
                ..
            } = event
            {
                panic!("listener bug");
            }
            counter.fetch_add(1, Ordering::Relaxed);
        });
        sink.emit(rejected);
        sink.clone().emit(rejected);
        sink.emit(|| ResilienceEvent::CredentialsRejected {
            model: ModelId::new("m"),
        });
        assert_eq!(sink.panics(), 2);
        assert_eq!(seen.load(Ordering::Relaxed), 1, "later events still arrive");
        assert_eq!(EventSink::none().panics(), 0);
    }

    #[test]
    fn a_config_reload_is_about_no_model() {
        let refused = ResilienceEvent::ConfigReload {
            accepted: false,
            problems: 2,
            config_hash: "sha256:00".into(),
        };
        assert_eq!(refused.model(), None);
        assert_eq!(refused.kind(), "config_reload");
        assert_eq!(rejected().model(), Some(&ModelId::new("m")));
        assert_eq!(rejected().kind(), "call_rejected");
        // A listener that panics on it is isolated like any other.
        let sink = EventSink::from_fn(|_| panic!("listener bug"));
        sink.emit(|| refused.clone());
        assert_eq!(sink.panics(), 1);
    }

    #[test]
    fn a_full_channel_drops_and_counts() {
        let (sink, mut rx) = EventSink::channel(2);
        for _ in 0..5 {
            sink.emit(rejected);
        }
        assert_eq!(rx.drain().len(), 2);
        assert_eq!(rx.dropped(), 3);
    }
}
