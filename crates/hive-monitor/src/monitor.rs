//! [`Monitor`]: records attempts and requests without a lock, follows the layers' events on
//! a task of its own, and answers [`ResilienceMetrics`] snapshots.

use std::{
    collections::{BTreeMap, VecDeque},
    fmt,
    sync::{
        Arc, RwLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hive_core::{
    CircuitState, EventReceiver, EventSink, HealthStatus, ModelId, Outcome, ResilienceEvent,
    SlidingCounters, metric,
};
use tokio::{sync::broadcast, task::JoinHandle, time::Instant};

use crate::{
    ring::Ring,
    snapshot::{
        ClusterLinkStatus, ConfigStatus, FailoverRecord, Incident, ModelMetrics, Overall,
        RequestCounts, RequestWindows, ResilienceMetrics, WindowStats, Windows,
    },
};

/// Settings of a [`Monitor`].
#[derive(Clone, Debug)]
pub struct MonitorConfig {
    /// Events queued between the layers and the monitor's task; beyond, events are dropped
    /// and counted. Default 4096.
    pub event_queue: usize,
    /// Failovers kept for snapshots. Default 100.
    pub failovers: usize,
    /// Ended incidents kept for snapshots (open ones are always kept). Default 100.
    pub incidents: usize,
    /// Whether the monitor sets its gauges through the `metrics` facade every second:
    /// models up (`hive_models_up`), models (`hive_models`), the share of requests answered
    /// per window (`hive_availability_ratio`) and events dropped
    /// (`hive_events_dropped_total`). Default off.
    pub metrics: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            event_queue: 4096,
            failovers: 100,
            incidents: 100,
            metrics: false,
        }
    }
}

/// One model's live figures: rings of atomic counters, fed by every attempt.
#[derive(Debug)]
struct ModelStats {
    model: ModelId,
    /// Twelve slots of 5 s: the last minute.
    minute: Ring,
    /// Sixty slots of 1 minute: the last five minutes and the last hour.
    hour: Ring,
    consecutive_failures: AtomicU64,
}

impl ModelStats {
    fn new(model: ModelId, epoch: Instant) -> Self {
        Self {
            model,
            minute: Ring::new(epoch, Duration::from_secs(5), 12),
            hour: Ring::new(epoch, Duration::from_secs(60), 60),
            consecutive_failures: AtomicU64::new(0),
        }
    }

    fn windows(&self, now: Instant) -> Windows {
        let window = |ring: &Ring, slots: usize| {
            let (counts, histogram) = ring.read(now, slots);
            WindowStats::new(ring.slot() * slots as u32, counts, histogram)
        };
        Windows {
            last_minute: window(&self.minute, 12),
            last_5_minutes: window(&self.hour, 5),
            last_hour: window(&self.hour, 60),
        }
    }
}

/// Told of every attempt a [`Monitor`] records, besides its own windows: a history that
/// keeps them per minute, an exporter of its own. Called on the request path: it must not
/// block (hand the attempt to a queue with `try_send`).
pub trait AttemptTap: Send + Sync + 'static {
    /// One attempt of `model`: its outcome and latency.
    fn attempt(&self, model: ModelId, outcome: &Outcome, latency: Duration);
}

/// Two taps told of every attempt, in the order they were given.
struct BothTaps(Arc<dyn AttemptTap>, Arc<dyn AttemptTap>);

impl AttemptTap for BothTaps {
    fn attempt(&self, model: ModelId, outcome: &Outcome, latency: Duration) {
        self.0.attempt(model, outcome, latency);
        self.1.attempt(model, outcome, latency);
    }
}

/// Records the attempts of one model (give it to a route as its observer). A few atomic
/// additions per attempt, no lock, no allocation. Cheap to clone.
#[derive(Clone)]
pub struct ModelRecorder {
    stats: Arc<ModelStats>,
    tap: Option<Arc<dyn AttemptTap>>,
}

impl std::fmt::Debug for ModelRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRecorder")
            .field("model", &self.stats.model)
            .field("tapped", &self.tap.is_some())
            .finish()
    }
}

impl ModelRecorder {
    /// Records one attempt's outcome and latency.
    pub fn record(&self, outcome: &Outcome, latency: Duration) {
        let now = Instant::now();
        let stats = &self.stats;
        stats.minute.record(now, outcome, latency);
        stats.hour.record(now, outcome, latency);
        match outcome {
            Outcome::Failure { .. } => {
                stats.consecutive_failures.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Success | Outcome::ClientError(_) => {
                if stats.consecutive_failures.load(Ordering::Relaxed) != 0 {
                    stats.consecutive_failures.store(0, Ordering::Relaxed);
                }
            }
            Outcome::Rejected(_) | Outcome::Ignored => {}
        }
        if let Some(tap) = &self.tap {
            tap.attempt(stats.model, outcome, latency);
        }
    }

    /// The model.
    pub fn model(&self) -> ModelId {
        self.stats.model
    }
}

/// How a request ended, for [`RouteRecorder::record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestResult {
    /// A model answered (an answer, or its refusal of the request).
    Answered,
    /// No model could; the degraded answer went back.
    Degraded,
    /// The request got an error.
    Failed,
}

const ANSWERED: usize = 0;
const DEGRADED: usize = 1;
const FAILED: usize = 2;

/// One route's requests over the three windows.
#[derive(Debug)]
struct RouteStats {
    minute: SlidingCounters<3>,
    five_minutes: SlidingCounters<3>,
    hour: SlidingCounters<3>,
}

impl RouteStats {
    fn new() -> Self {
        Self {
            minute: SlidingCounters::new(Duration::from_secs(60), 12),
            five_minutes: SlidingCounters::new(Duration::from_secs(300), 10),
            hour: SlidingCounters::new(Duration::from_secs(3600), 60),
        }
    }

    fn windows(&self) -> RequestWindows {
        let counts = |c: &SlidingCounters<3>| {
            let [answered, degraded, failed] = c.sums().map(|n| n.max(0) as u64);
            RequestCounts {
                answered,
                degraded,
                failed,
            }
        };
        RequestWindows {
            last_minute: counts(&self.minute),
            last_5_minutes: counts(&self.five_minutes),
            last_hour: counts(&self.hour),
        }
    }
}

/// Records the requests of one route. Three atomic additions per request. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RouteRecorder {
    stats: Arc<RouteStats>,
    degraded: Arc<AtomicU64>,
}

impl RouteRecorder {
    /// Records how one request ended.
    pub fn record(&self, result: RequestResult) {
        let counter = match result {
            RequestResult::Answered => ANSWERED,
            RequestResult::Degraded => {
                self.degraded.fetch_add(1, Ordering::Relaxed);
                DEGRADED
            }
            RequestResult::Failed => FAILED,
        };
        for window in [
            &self.stats.minute,
            &self.stats.five_minutes,
            &self.stats.hour,
        ] {
            window.add(counter, 1);
        }
    }
}

/// A model's breaker and health as the events told, and its counts.
#[derive(Debug)]
struct ModelState {
    breaker: CircuitState,
    breaker_generation: u64,
    breaker_since: Instant,
    health: HealthStatus,
    failovers_from: u64,
    credentials_rejected: u64,
    incidents: u64,
}

/// What the monitor's task keeps from the events.
#[derive(Debug, Default)]
struct EventState {
    models: BTreeMap<ModelId, ModelState>,
    failovers: VecDeque<FailoverRecord>,
    /// Open incidents, with their start in tokio time.
    open: BTreeMap<ModelId, (Incident, Instant)>,
    ended: VecDeque<Incident>,
    recovered: u64,
    recovery_time: Duration,
    /// The gateway's configuration as the last reload left it.
    config: Option<ConfigStatus>,
    cluster: Option<ClusterLinkStatus>,
}

impl EventState {
    /// Ends `model`'s open incident, if any, at `now` (`at_unix_ms` on the wall clock),
    /// keeping the `keep` most recent ended ones.
    fn end_incident(&mut self, model: ModelId, now: Instant, at_unix_ms: u64, keep: usize) {
        if let Some((mut incident, started)) = self.open.remove(&model) {
            let took = now.saturating_duration_since(started);
            incident.ended_unix_ms = Some(at_unix_ms);
            incident.time_to_recover = Some(took);
            self.recovered += 1;
            self.recovery_time += took;
            self.ended.push_front(incident);
            self.ended.truncate(keep);
        }
    }
}

/// An event as the monitor received it: with its wall-clock time.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedEvent {
    /// When the monitor received it, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// The event.
    pub event: ResilienceEvent,
}

struct Inner {
    config: MonitorConfig,
    epoch: Instant,
    models: RwLock<Vec<Arc<ModelStats>>>,
    routes: RwLock<BTreeMap<String, Arc<RouteStats>>>,
    degraded: Arc<AtomicU64>,
    state: RwLock<EventState>,
    sink: EventSink,
    dropped: Arc<AtomicU64>,
    events: broadcast::Sender<TimedEvent>,
    tasks: RwLock<Vec<JoinHandle<()>>>,
    tap: RwLock<Option<Arc<dyn AttemptTap>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

/// Watches a fleet of models: give it every model's attempts ([`model`](Self::model), as a
/// route's observer), every route's requests ([`route`](Self::route)) and the layers'
/// events ([`event_sink`](Self::event_sink)); take [`snapshot`](Self::snapshot)s.
///
/// Nothing it does sits on a request's path: attempts and requests are a few atomic
/// additions, events go through a bounded queue to the monitor's own task (which ends with
/// the last clone of the monitor). Cheap to clone.
#[derive(Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Monitor {
    /// A monitor with these settings; its task starts on the current tokio runtime.
    pub fn start(config: MonitorConfig) -> Self {
        let (sink, receiver) = EventSink::channel(config.event_queue);
        let (events, _) = broadcast::channel(1024);
        let monitor = Self {
            inner: Arc::new(Inner {
                epoch: Instant::now(),
                models: RwLock::default(),
                routes: RwLock::default(),
                degraded: Arc::default(),
                state: RwLock::default(),
                dropped: Arc::new(AtomicU64::new(0)),
                sink,
                events,
                tasks: RwLock::default(),
                tap: RwLock::default(),
                config,
            }),
        };
        let weak = Arc::downgrade(&monitor.inner);
        let mut tasks = vec![
            tokio::spawn(follow(weak.clone(), receiver)),
            tokio::spawn(tick(weak, Duration::from_secs(1))),
        ];
        write(&monitor.inner.tasks).append(&mut tasks);
        monitor
    }

    /// The recorder of `model`'s attempts, registering the model on first use.
    pub fn model(&self, model: ModelId) -> ModelRecorder {
        let tap = read(&self.inner.tap).clone();
        if let Some(stats) = read(&self.inner.models).iter().find(|s| s.model == model) {
            return ModelRecorder {
                stats: Arc::clone(stats),
                tap,
            };
        }
        let mut models = write(&self.inner.models);
        let stats = match models.iter().find(|s| s.model == model) {
            Some(stats) => Arc::clone(stats),
            None => {
                let stats = Arc::new(ModelStats::new(model, self.inner.epoch));
                models.push(Arc::clone(&stats));
                stats
            }
        };
        ModelRecorder { stats, tap }
    }

    /// Tells `tap` of every attempt recorded from now on by the recorders
    /// [`model`](Self::model) hands out after this call (set it before building the
    /// fleet's stacks), besides the taps given before.
    pub fn tap_attempts(&self, tap: Arc<dyn AttemptTap>) {
        let mut slot = write(&self.inner.tap);
        *slot = Some(match slot.take() {
            None => tap,
            Some(before) => Arc::new(BothTaps(before, tap)),
        });
    }

    /// The recorder of `route`'s requests, registering the route on first use.
    pub fn route(&self, route: &str) -> RouteRecorder {
        let known = read(&self.inner.routes).get(route).cloned();
        let stats = known.unwrap_or_else(|| {
            Arc::clone(
                write(&self.inner.routes)
                    .entry(route.to_owned())
                    .or_insert_with(|| Arc::new(RouteStats::new())),
            )
        });
        RouteRecorder {
            stats,
            degraded: Arc::clone(&self.inner.degraded),
        }
    }

    /// Where the layers send their events (a bounded queue: when full, events are dropped
    /// and counted in [`events_dropped`](Self::events_dropped)).
    pub fn event_sink(&self) -> EventSink {
        self.inner.sink.clone()
    }

    /// Events dropped because the queue was full.
    pub fn events_dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Every event the monitor receives from now on, with its time (alerting follows it).
    pub fn subscribe(&self) -> broadcast::Receiver<TimedEvent> {
        self.inner.events.subscribe()
    }

    /// Empties the slots the rings turn to next.
    fn prepare_rings(&self) {
        let now = Instant::now();
        for stats in read(&self.inner.models).iter() {
            stats.minute.prepare(now);
            stats.hour.prepare(now);
        }
    }

    /// What the monitor knows now.
    pub fn snapshot(&self) -> ResilienceMetrics {
        let now = Instant::now();
        let models: Vec<Arc<ModelStats>> = read(&self.inner.models).clone();
        let state = read(&self.inner.state);
        let mut attempts = Windows::empty();
        let mut per_model = Vec::with_capacity(models.len());
        for stats in &models {
            stats.minute.prepare(now);
            stats.hour.prepare(now);
            let windows = stats.windows(now);
            attempts.merge(&windows);
            let known = state.models.get(&stats.model);
            per_model.push(ModelMetrics {
                model: stats.model,
                breaker: known.map_or(CircuitState::Closed, |m| m.breaker),
                breaker_for: now
                    .saturating_duration_since(known.map_or(self.inner.epoch, |m| m.breaker_since)),
                health: known.map_or(HealthStatus::Unknown, |m| m.health),
                consecutive_failures: stats.consecutive_failures.load(Ordering::Relaxed),
                windows,
                failovers_from: known.map_or(0, |m| m.failovers_from),
                credentials_rejected: known.map_or(0, |m| m.credentials_rejected),
                incidents: known.map_or(0, |m| m.incidents),
                open_incident_for: state
                    .open
                    .get(&stats.model)
                    .map(|(_, started)| now.saturating_duration_since(*started)),
            });
        }
        let routes: BTreeMap<String, RequestWindows> = read(&self.inner.routes)
            .iter()
            .map(|(name, stats)| (name.clone(), stats.windows()))
            .collect();
        let mut requests = RequestWindows::default();
        for route in routes.values() {
            for (sum, part) in [
                (&mut requests.last_minute, &route.last_minute),
                (&mut requests.last_5_minutes, &route.last_5_minutes),
                (&mut requests.last_hour, &route.last_hour),
            ] {
                sum.add(part);
            }
        }
        let models_up = per_model
            .iter()
            .filter(|m| {
                !matches!(m.breaker, CircuitState::Open | CircuitState::ForcedOpen)
                    && m.health != HealthStatus::Unhealthy
            })
            .count();
        let mut incidents: Vec<Incident> = state
            .open
            .values()
            .map(|(incident, _)| incident.clone())
            .collect();
        incidents.extend(state.ended.iter().cloned());
        ResilienceMetrics {
            taken_unix_ms: unix_ms(),
            overall: Overall {
                attempts,
                models_up,
                models: per_model.len(),
                degraded_answers: self.inner.degraded.load(Ordering::Relaxed),
                reliability: requests.last_hour.availability(),
                requests,
                mttr: (state.recovered > 0).then(|| {
                    state.recovery_time / u32::try_from(state.recovered).unwrap_or(u32::MAX)
                }),
            },
            models: per_model,
            routes,
            failovers: state.failovers.iter().cloned().collect(),
            incidents,
            config: state.config.clone(),
            cluster: state.cluster.clone(),
        }
    }
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("config", &self.inner.config)
            .field(
                "models",
                &read(&self.inner.models)
                    .iter()
                    .map(|s| s.model)
                    .collect::<Vec<_>>(),
            )
            .field(
                "routes",
                &read(&self.inner.routes).keys().collect::<Vec<_>>(),
            )
            .field("events_dropped", &self.events_dropped())
            .finish()
    }
}

/// The monitor's clock: every `every`, empties the slots the rings turn to next (so that
/// recorders find them ready) and, with metrics on, sets the gauges. Ends with the monitor.
async fn tick(inner: Weak<Inner>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    let gauges = inner
        .upgrade()
        .is_some_and(|inner| inner.config.metrics)
        .then(Gauges::register);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let monitor = Monitor { inner };
        match &gauges {
            // A snapshot prepares the rings on its way.
            Some(gauges) => gauges.set(&monitor.snapshot(), monitor.events_dropped()),
            None => monitor.prepare_rings(),
        }
    }
}

/// The monitor's gauges on the installed `metrics` recorder.
struct Gauges {
    models_up: metrics::Gauge,
    models: metrics::Gauge,
    availability: [metrics::Gauge; 3],
    dropped: metrics::Counter,
}

impl Gauges {
    fn register() -> Self {
        Self {
            models_up: metrics::gauge!(metric::MODELS_UP),
            models: metrics::gauge!(metric::MODELS),
            availability: ["1m", "5m", "1h"]
                .map(|window| metrics::gauge!(metric::AVAILABILITY_RATIO, "window" => window)),
            dropped: metrics::counter!(metric::EVENTS_DROPPED_TOTAL),
        }
    }

    fn set(&self, snapshot: &ResilienceMetrics, dropped: u64) {
        let overall = &snapshot.overall;
        self.models_up.set(overall.models_up as f64);
        self.models.set(overall.models as f64);
        let requests = &overall.requests;
        for (gauge, window) in self.availability.iter().zip([
            &requests.last_minute,
            &requests.last_5_minutes,
            &requests.last_hour,
        ]) {
            if let Some(ratio) = window.availability() {
                gauge.set(ratio);
            }
        }
        self.dropped.absolute(dropped);
    }
}

/// The monitor's task: applies each event to the state and passes it on to subscribers,
/// until the monitor is gone.
async fn follow(inner: Weak<Inner>, mut receiver: EventReceiver) {
    while let Some(event) = receiver.recv().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.dropped.store(receiver.dropped(), Ordering::Relaxed);
        let at_unix_ms = unix_ms();
        apply(&inner, &event, at_unix_ms);
        let _ = inner.events.send(TimedEvent { at_unix_ms, event });
    }
}

fn apply(inner: &Inner, event: &ResilienceEvent, at_unix_ms: u64) {
    let now = Instant::now();
    let mut state = write(&inner.state);
    let state = &mut *state;
    if let ResilienceEvent::ConfigReload {
        accepted,
        problems,
        config_hash,
    } = event
    {
        let refused_before = state.config.as_ref().map_or(0, |c| c.refused_in_a_row);
        state.config = Some(ConfigStatus {
            accepted: *accepted,
            problems: *problems,
            config_hash: config_hash.clone(),
            at_unix_ms,
            refused_in_a_row: if *accepted {
                0
            } else {
                refused_before.saturating_add(1)
            },
        });
        return;
    }
    if let ResilienceEvent::ClusterLink { up } = *event {
        if state.cluster.as_ref().is_none_or(|c| c.up != up) {
            state.cluster = Some(ClusterLinkStatus {
                up,
                since_unix_ms: at_unix_ms,
            });
        }
        return;
    }
    // Every other event is about a model.
    let Some(&model) = event.model() else {
        return;
    };
    let entry = state.models.entry(model).or_insert_with(|| ModelState {
        breaker: CircuitState::Closed,
        breaker_generation: 0,
        breaker_since: inner.epoch,
        health: HealthStatus::Unknown,
        failovers_from: 0,
        credentials_rejected: 0,
        incidents: 0,
    });
    match event {
        ResilienceEvent::CircuitTransition { to, generation, .. } => {
            // Transitions may arrive out of order: only a newer one counts.
            if *generation <= entry.breaker_generation {
                return;
            }
            entry.breaker = *to;
            entry.breaker_generation = *generation;
            entry.breaker_since = now;
            match to {
                CircuitState::Open | CircuitState::ForcedOpen => {
                    if let std::collections::btree_map::Entry::Vacant(slot) =
                        state.open.entry(model)
                    {
                        entry.incidents += 1;
                        slot.insert((
                            Incident {
                                model,
                                started_unix_ms: at_unix_ms,
                                ended_unix_ms: None,
                                time_to_recover: None,
                            },
                            now,
                        ));
                    }
                }
                CircuitState::Closed | CircuitState::Disabled | CircuitState::MetricsOnly => {
                    state.end_incident(model, now, at_unix_ms, inner.config.incidents);
                }
                CircuitState::HalfOpen => {}
            }
        }
        ResilienceEvent::BreakerReplaced { .. } => {
            // A new breaker, closed, whose generations start again: an incident of the
            // old one ends here.
            entry.breaker = CircuitState::Closed;
            entry.breaker_generation = 0;
            entry.breaker_since = now;
            state.end_incident(model, now, at_unix_ms, inner.config.incidents);
        }
        ResilienceEvent::HealthChanged { to, .. } => entry.health = *to,
        ResilienceEvent::CredentialsRejected { .. } => entry.credentials_rejected += 1,
        ResilienceEvent::Failover {
            from,
            to,
            reason,
            latency,
        } => {
            entry.failovers_from += 1;
            state.failovers.push_front(FailoverRecord {
                at_unix_ms,
                from: *from,
                to: *to,
                reason: outcome_name(reason),
                latency: *latency,
            });
            state.failovers.truncate(inner.config.failovers);
        }
        _ => {}
    }
}

/// A short name for why a model was left.
fn outcome_name(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Failure { class, .. } => class.as_str().to_owned(),
        Outcome::ClientError(class) => class.as_str().to_owned(),
        Outcome::Rejected(_) => "unavailable".to_owned(),
        Outcome::Success => "success".to_owned(),
        Outcome::Ignored => "ignored".to_owned(),
    }
}
