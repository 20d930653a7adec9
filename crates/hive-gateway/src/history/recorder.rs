//! [`Recorder`]: rolls attempts and a monitor's events up per model and per wall-clock
//! minute, on a task of its own, and hands each minute to the history's writer when it ends.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use hive_core::{CircuitState, ModelId, Outcome, ResilienceEvent};
use hive_monitor::TimedEvent;
use tokio::{
    sync::{broadcast, mpsc, oneshot},
    task::JoinHandle,
};

use super::{History, MinuteRollup, unix_ms};

/// Inputs queued to the recorder's task. Beyond, inputs are dropped and counted.
const QUEUE: usize = 8192;
/// How often the task hands what it holds to the writer, the minute under way included
/// (writes of one minute add up): a crash loses at most this much.
pub const WRITE_EVERY: Duration = Duration::from_secs(5);

enum Input {
    Attempt {
        at_unix_ms: u64,
        model: ModelId,
        outcome: Outcome,
        latency: Duration,
    },
    Event(TimedEvent),
    Flush(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

struct Shared {
    sender: mpsc::Sender<Input>,
    dropped: Arc<AtomicU64>,
    /// The task ends by itself once the queue closes, after writing what it holds.
    _task: JoinHandle<()>,
}

/// Rolls a fleet's figures up per model and per wall-clock minute and writes each minute to
/// its [`History`] when the minute ends: attempts fed with [`attempt`](Self::attempt), and
/// failovers and incidents from the monitor's events (when started with
/// [`History::record`]).
///
/// Cheap to clone; every method but [`flush`](Self::flush) and [`stop`](Self::stop) queues
/// without waiting (when the queue is full the input is dropped and counted in
/// [`dropped`](Self::dropped)). The task ends with the last clone, after writing what it
/// holds.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    pub(super) fn start(history: History, events: Option<broadcast::Receiver<TimedEvent>>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(
            Rollups {
                history,
                minutes: BTreeMap::new(),
                breakers: BTreeMap::new(),
                dropped: Arc::clone(&dropped),
            }
            .run(receiver, events),
        );
        Self {
            shared: Arc::new(Shared {
                sender,
                dropped,
                _task: task,
            }),
        }
    }

    fn offer(&self, input: Input) {
        if self.shared.sender.try_send(input).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one attempt of `model`, now: its outcome, and for an answer (a success or a
    /// client error) its latency. One `try_send`: give it to the model stack's observer.
    pub fn attempt(&self, model: ModelId, outcome: &Outcome, latency: Duration) {
        self.attempt_at(unix_ms(), model, outcome, latency);
    }

    /// [`attempt`](Self::attempt) at a given time, in milliseconds since the Unix epoch
    /// (for replays and tests).
    pub fn attempt_at(
        &self,
        at_unix_ms: u64,
        model: ModelId,
        outcome: &Outcome,
        latency: Duration,
    ) {
        self.offer(Input::Attempt {
            at_unix_ms,
            model,
            outcome: *outcome,
            latency,
        });
    }

    /// Counts an event as if the monitor had sent it (failovers, breaker transitions; other
    /// events are not recorded).
    pub fn event(&self, event: TimedEvent) {
        self.offer(Input::Event(event));
    }

    /// Inputs dropped: the recorder's queue was full, or the monitor's events came faster
    /// than the task could follow (a lagging subscriber loses the oldest).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Writes every minute held, ended or not, and waits until the history has written it
    /// (with everything queued before). A minute written early is completed later: writes
    /// add up.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.shared.sender.send(Input::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }

    /// Flushes and ends the task (for every clone).
    pub async fn stop(self) {
        let (done, stopped) = oneshot::channel();
        if self.shared.sender.send(Input::Stop(done)).await.is_ok() {
            let _ = stopped.await;
        }
    }
}

/// A model's breaker as its transitions told: the generation applied, and whether an
/// incident is open.
#[derive(Clone, Copy, Default)]
struct Breaker {
    generation: u64,
    open: bool,
}

/// The recorder task's state.
struct Rollups {
    history: History,
    /// Minutes not yet written, by minute start and model.
    minutes: BTreeMap<(u64, ModelId), MinuteRollup>,
    breakers: BTreeMap<ModelId, Breaker>,
    dropped: Arc<AtomicU64>,
}

/// The next event of `events`, or never when there is none to follow.
async fn next_event(
    events: &mut Option<broadcast::Receiver<TimedEvent>>,
) -> Result<TimedEvent, broadcast::error::RecvError> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

impl Rollups {
    async fn run(
        mut self,
        mut inputs: mpsc::Receiver<Input>,
        mut events: Option<broadcast::Receiver<TimedEvent>>,
    ) {
        let mut tick = tokio::time::interval(WRITE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Events first: what the monitor sent before a flush is in that flush.
                biased;
                event = next_event(&mut events) => match event {
                    Ok(event) => self.apply_event(&event),
                    Err(broadcast::error::RecvError::Lagged(lost)) => {
                        self.dropped.fetch_add(lost, Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => events = None,
                },
                input = inputs.recv() => match input {
                    Some(Input::Attempt { at_unix_ms, model, outcome, latency }) => {
                        self.apply_attempt(at_unix_ms, model, &outcome, latency);
                    }
                    Some(Input::Event(event)) => self.apply_event(&event),
                    Some(Input::Flush(done)) => {
                        self.write_until(u64::MAX).await;
                        let _ = done.send(());
                    }
                    Some(Input::Stop(done)) => {
                        self.write_until(u64::MAX).await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.write_until(u64::MAX).await;
                        return;
                    }
                },
                _ = tick.tick() => self.write_held(),
            }
        }
    }

    fn minute(&mut self, at_unix_ms: u64, model: ModelId) -> &mut MinuteRollup {
        let start = at_unix_ms - at_unix_ms % 60_000;
        self.minutes
            .entry((start, model))
            .or_insert_with(|| MinuteRollup::new(start, model.as_str()))
    }

    fn apply_attempt(
        &mut self,
        at_unix_ms: u64,
        model: ModelId,
        outcome: &Outcome,
        latency: Duration,
    ) {
        let minute = self.minute(at_unix_ms, model);
        match outcome {
            Outcome::Success => {
                minute.successes += 1;
                minute.latency.record(latency);
            }
            Outcome::ClientError(_) => {
                minute.client_errors += 1;
                minute.latency.record(latency);
            }
            Outcome::Failure { class, .. } => {
                *minute
                    .failures
                    .entry(class.as_str().to_owned())
                    .or_default() += 1;
            }
            Outcome::Rejected(_) => minute.rejected += 1,
            Outcome::Ignored => return,
        }
        minute.requests += 1;
    }

    fn apply_event(&mut self, timed: &TimedEvent) {
        let at = timed.at_unix_ms;
        match &timed.event {
            ResilienceEvent::Failover { from, to, .. } => {
                self.minute(at, *from).failovers_from += 1;
                self.minute(at, *to).failovers_to += 1;
            }
            ResilienceEvent::CircuitTransition {
                model,
                to,
                generation,
                ..
            } => {
                let breaker = self.breakers.entry(*model).or_default();
                // Transitions may arrive out of order: only a newer one counts.
                if *generation <= breaker.generation {
                    return;
                }
                breaker.generation = *generation;
                match to {
                    CircuitState::Open | CircuitState::ForcedOpen if !breaker.open => {
                        breaker.open = true;
                        self.history.incident_started(model.as_str().to_owned(), at);
                    }
                    CircuitState::Closed | CircuitState::Disabled | CircuitState::MetricsOnly
                        if breaker.open =>
                    {
                        breaker.open = false;
                        self.history.incident_ended(model.as_str().to_owned(), at);
                    }
                    _ => {}
                }
            }
            ResilienceEvent::BreakerReplaced { model } => {
                // A new breaker, closed, whose generations start again.
                let breaker = self.breakers.entry(*model).or_default();
                breaker.generation = 0;
                if std::mem::take(&mut breaker.open) {
                    self.history.incident_ended(model.as_str().to_owned(), at);
                }
            }
            _ => {}
        }
    }

    /// Hands every minute it holds to the writer, the one under way included.
    fn write_held(&mut self) {
        let held = self.take_before(u64::MAX);
        self.history.write_minutes(held);
    }

    /// Hands the minutes that start before `until` to the writer and waits until written.
    async fn write_until(&mut self, until: u64) {
        let minutes = self.take_before(until);
        self.history.write_minutes(minutes);
        if let Err(error) = self.history.flush().await {
            tracing::warn!(%error, "history: a flush failed");
        }
    }

    /// Takes the minutes that start before `until`.
    fn take_before(&mut self, until: u64) -> Vec<MinuteRollup> {
        let first_kept = self
            .minutes
            .keys()
            .find(|(start, _)| *start >= until)
            .copied();
        let later = match first_kept {
            Some(key) => self.minutes.split_off(&key),
            None => BTreeMap::new(),
        };
        std::mem::replace(&mut self.minutes, later)
            .into_values()
            .collect()
    }
}

impl hive_monitor::AttemptTap for Recorder {
    fn attempt(&self, model: ModelId, outcome: &Outcome, latency: Duration) {
        Recorder::attempt(self, model, outcome, latency);
    }
}
