//! The shared state machine of one breaker: atomics only on the call path, a spin lock held
//! for nanoseconds on transitions.
//!
//! The state word packs the state tag (3 bits), the free half-open permits (10 bits) and the
//! generation (51 bits). The generation grows by one on every transition; each call is
//! admitted in a generation and its result counts only if the breaker is still in that
//! generation when the result arrives. Results that arrive later are dropped and counted as
//! late. Permits are taken and returned with a compare-and-swap on the same word, so a permit
//! of an old generation can never leak into a new one.
//!
//! Transitions happen under the spin lock; their events are emitted after it is released, so
//! a listener may see two of them out of order. Each event carries the generation it starts,
//! which orders them.

use std::{
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::Duration,
};

use hive_core::{CircuitState, Outcome, RejectReason, ResilienceEvent, micros};
use tokio::time::Instant;

use crate::{
    config::{CircuitBreakerConfig, SlidingWindow},
    snapshot::BreakerMetrics,
    spin::SpinLock,
    telemetry::Instruments,
    trial::{self, Judge},
    window::{CALL, CountWindow, FAILURE, SLOW, TimeWindow, Window, WindowCounts},
};

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const FORCED_OPEN: u64 = 3;
const DISABLED: u64 = 4;
const METRICS_ONLY: u64 = 5;

const TAG_MASK: u64 = 0b111;
const PERMIT_SHIFT: u32 = 3;
const PERMIT_ONE: u64 = 1 << PERMIT_SHIFT;
const PERMIT_MASK: u64 = 0x3FF;
const GEN_SHIFT: u32 = 13;

const fn pack(tag: u64, permits: u64, generation: u64) -> u64 {
    tag | (permits & PERMIT_MASK) << PERMIT_SHIFT | generation << GEN_SHIFT
}
const fn tag(word: u64) -> u64 {
    word & TAG_MASK
}
const fn permits(word: u64) -> u64 {
    (word >> PERMIT_SHIFT) & PERMIT_MASK
}
const fn generation(word: u64) -> u64 {
    word >> GEN_SHIFT
}

fn state_of(tag: u64) -> CircuitState {
    match tag {
        CLOSED => CircuitState::Closed,
        OPEN => CircuitState::Open,
        HALF_OPEN => CircuitState::HalfOpen,
        FORCED_OPEN => CircuitState::ForcedOpen,
        DISABLED => CircuitState::Disabled,
        _ => CircuitState::MetricsOnly,
    }
}

fn tag_of(state: CircuitState) -> u64 {
    match state {
        CircuitState::Closed => CLOSED,
        CircuitState::Open => OPEN,
        CircuitState::HalfOpen => HALF_OPEN,
        CircuitState::ForcedOpen => FORCED_OPEN,
        CircuitState::Disabled => DISABLED,
        CircuitState::MetricsOnly => METRICS_ONLY,
    }
}

/// What a call's result must be recorded against: its generation, whether it holds a
/// half-open permit, and (with slow-call detection) when it started. Two words, so that
/// futures stay small.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    /// `generation << 1 | half_open`; [`Ticket::SPENT`] once recorded.
    word: u64,
    /// Start time in µs since the breaker's epoch, when slow calls are detected.
    start_us: u64,
}

impl Ticket {
    /// The word of a ticket whose result has been recorded.
    const SPENT: u64 = u64::MAX;

    const fn generation(self) -> u64 {
        self.word >> 1
    }

    const fn half_open(self) -> bool {
        self.word & 1 == 1
    }

    pub(crate) const fn is_spent(self) -> bool {
        self.word == Self::SPENT
    }

    /// Takes the ticket, leaving a spent one.
    pub(crate) fn take(&mut self) -> Option<Ticket> {
        let ticket = *self;
        self.word = Self::SPENT;
        (!ticket.is_spent()).then_some(ticket)
    }
}

/// The decision for one call.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Call, and record the result against the ticket.
    Tracked(Ticket),
    /// Call, and record nothing (the breaker is disabled).
    Untracked,
    /// Do not call.
    Rejected(RejectReason),
}

/// The counts that caused a transition, for its event.
#[derive(Clone, Copy)]
struct Rates(Option<WindowCounts>);

/// Times, in µs of the breaker's clock (since `epoch`).
#[derive(Debug, Default)]
struct Clocks {
    /// When an open break ends.
    open_until: AtomicU64,
    /// When the part of the break a provider's `Retry-After` asked for ends.
    hint_until: AtomicU64,
    /// When a half-open trial runs out of time.
    half_open_until: AtomicU64,
    /// When the next early probe may go.
    early_probe_after: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    pub(crate) config: CircuitBreakerConfig,
    judge: Judge,
    epoch: Instant,
    state: AtomicU64,
    clocks: Clocks,
    consecutive_opens: AtomicU32,
    /// Failures in a row while closed.
    streak: AtomicU32,
    trial: AtomicU64,
    /// The latest end of the `Retry-After` hints of the current trial's failed probes.
    trial_hint_until: AtomicU64,
    window: Window,
    transitions: SpinLock,
    rejected: AtomicU64,
    late: AtomicU64,
    /// Metric handles, when metrics are on (boxed: the call path only tests the pointer).
    instruments: Option<Box<Instruments>>,
}

impl Breaker {
    pub(crate) fn new(config: CircuitBreakerConfig) -> Self {
        let window = match config.window {
            SlidingWindow::Count { size } => Window::Count(CountWindow::new(size)),
            SlidingWindow::Time { duration, buckets } => Window::Time(TimeWindow::new(
                micros(duration) / u64::from(buckets),
                buckets,
            )),
        };
        Self {
            instruments: config
                .metrics
                .then(|| Box::new(Instruments::register(config.model))),
            judge: Judge {
                permits: u64::from(config.half_open_permits),
                failure_rate_threshold: config.failure_rate_threshold,
                slow_call_rate_threshold: config
                    .slow_call_duration
                    .map(|_| config.slow_call_rate_threshold),
            },
            config,
            epoch: Instant::now(),
            state: AtomicU64::new(pack(CLOSED, 0, 0)),
            clocks: Clocks::default(),
            consecutive_opens: AtomicU32::new(0),
            streak: AtomicU32::new(0),
            trial: AtomicU64::new(0),
            trial_hint_until: AtomicU64::new(0),
            window,
            transitions: SpinLock::default(),
            rejected: AtomicU64::new(0),
            late: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        micros(Instant::now().saturating_duration_since(self.epoch)).min(u64::MAX / 2)
    }

    /// Decides whether a call may go to the model. One atomic load when closed.
    #[inline]
    pub(crate) fn admit(&self) -> Admission {
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            match tag(word) {
                CLOSED | METRICS_ONLY => {
                    return Admission::Tracked(self.ticket(generation(word), false));
                }
                DISABLED => return Admission::Untracked,
                FORCED_OPEN => return self.reject(RejectReason::ForcedOpen),
                OPEN => {
                    let now = self.now_us();
                    let until = self.clocks.open_until.load(Ordering::Acquire);
                    if now < until {
                        return self.reject(RejectReason::CircuitOpen {
                            retry_in: Duration::from_micros(until - now),
                        });
                    }
                    self.transition(Some(word), CircuitState::HalfOpen, Rates(None));
                    word = self.state.load(Ordering::Acquire);
                }
                _ => {
                    if self.trial_expired() {
                        self.expire_trial(word);
                        word = self.state.load(Ordering::Acquire);
                        continue;
                    }
                    if permits(word) == 0 {
                        return self.reject(RejectReason::HalfOpenBusy);
                    }
                    match self.state.compare_exchange_weak(
                        word,
                        word - PERMIT_ONE,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Admission::Tracked(self.ticket(generation(word), true)),
                        Err(actual) => word = actual,
                    }
                }
            }
        }
    }

    #[inline]
    fn ticket(&self, generation: u64, half_open: bool) -> Ticket {
        Ticket {
            word: generation << 1 | u64::from(half_open),
            start_us: if self.config.slow_call_duration.is_some() {
                self.now_us()
            } else {
                0
            },
        }
    }

    #[cold]
    fn reject(&self, reason: RejectReason) -> Admission {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        if let Some(instruments) = &self.instruments {
            instruments.call(&Outcome::Rejected(reason));
        }
        self.config.events.emit(|| ResilienceEvent::CallRejected {
            model: self.config.model,
            reason,
        });
        Admission::Rejected(reason)
    }

    /// Whether the half-open trial has run out of time.
    fn trial_expired(&self) -> bool {
        self.now_us() >= self.clocks.half_open_until.load(Ordering::Acquire)
    }

    /// Ends a half-open trial that ran out of time: the probes still out count as failed.
    #[cold]
    fn expire_trial(&self, word: u64) {
        let counts = trial::counts_of(self.trial.load(Ordering::Acquire));
        let (to, counts) = self.judge.verdict_at_expiry(counts);
        self.transition(Some(word), to, Rates(Some(counts)));
    }

    /// Records the outcome of a call admitted with `ticket`.
    #[inline(always)]
    pub(crate) fn record(&self, ticket: Ticket, outcome: Outcome) {
        if !ticket.half_open()
            && matches!(outcome, Outcome::Success | Outcome::ClientError(_))
            && self.config.slow_call_duration.is_none()
            && self.window.is_full_of_successes()
        {
            // Recording it would change nothing, in whatever generation: a window full of
            // successes has no failure streak either.
            if let Some(instruments) = &self.instruments {
                instruments.call(&outcome);
            }
            return;
        }
        self.record_change(ticket, outcome);
    }

    #[inline(never)]
    fn record_change(&self, ticket: Ticket, outcome: Outcome) {
        if let Some(instruments) = &self.instruments {
            instruments.call(&outcome);
        }
        let mut code = match outcome {
            Outcome::Success | Outcome::ClientError(_) => CALL,
            Outcome::Failure { .. } => CALL | FAILURE,
            Outcome::Ignored | Outcome::Rejected(_) => {
                if ticket.half_open() {
                    self.release_permit(ticket.generation());
                }
                return;
            }
        };
        let needs_clock = self.config.slow_call_duration.is_some()
            || self.window.needs_clock()
            || outcome.retry_after().is_some();
        let now_us = if needs_clock { self.now_us() } else { 0 };
        if let Some(slow) = self.config.slow_call_duration {
            // Equal to the threshold is not slow.
            if now_us.saturating_sub(ticket.start_us) > micros(slow) {
                code |= SLOW;
            }
        }
        let word = self.state.load(Ordering::Acquire);
        if generation(word) != ticket.generation() {
            self.late.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let hint_until = outcome
            .retry_after()
            .map_or(0, |hint| now_us.saturating_add(micros(hint)));
        match tag(word) {
            CLOSED | METRICS_ONLY => self.record_closed(word, code, now_us, hint_until),
            HALF_OPEN => self.record_trial(word, code, hint_until),
            _ => {}
        }
    }

    /// Records a result while closed (or metrics-only) and trips the breaker when a rule
    /// says so.
    fn record_closed(&self, word: u64, code: u8, now_us: u64, hint_until: u64) {
        let streak = if code & FAILURE != 0 {
            self.streak.fetch_add(1, Ordering::AcqRel).saturating_add(1)
        } else {
            if self.streak.load(Ordering::Relaxed) != 0 {
                self.streak.store(0, Ordering::Release);
            }
            0
        };
        let counts = self.window.record(code, now_us, hint_until);
        if tag(word) != CLOSED {
            return;
        }
        let by_streak = self
            .config
            .consecutive_failures
            .is_some_and(|limit| streak >= limit);
        match counts {
            Some(counts) if by_streak || self.trips(&counts) => {
                self.transition(Some(word), CircuitState::Open, Rates(Some(counts)));
            }
            None if by_streak => {
                let counts = self.window.counts(now_us);
                self.transition(Some(word), CircuitState::Open, Rates(Some(counts)));
            }
            _ => {}
        }
    }

    fn trips(&self, counts: &WindowCounts) -> bool {
        counts.calls >= u64::from(self.config.minimum_calls)
            && (counts.failure_rate() >= self.config.failure_rate_threshold
                || (self.config.slow_call_duration.is_some()
                    && counts.slow_call_rate() >= self.config.slow_call_rate_threshold))
    }

    /// Records a probe's result; decides as soon as the verdict is certain.
    #[cold]
    fn record_trial(&self, word: u64, code: u8, hint_until: u64) {
        let generation32 = generation(word) & 0xFFFF_FFFF;
        if hint_until != 0 {
            self.trial_hint_until
                .fetch_max(hint_until, Ordering::AcqRel);
        }
        let mut packed = self.trial.load(Ordering::Acquire);
        loop {
            if trial::generation_of(packed) != generation32 {
                self.late.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let mut counts = trial::counts_of(packed);
            counts.calls += 1;
            counts.failures += u64::from(code & FAILURE != 0);
            counts.slow += u64::from(code & SLOW != 0);
            let next = trial::pack(generation(word), counts);
            match self.trial.compare_exchange_weak(
                packed,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if let Some(to) = self.judge.verdict(counts) {
                        self.transition(Some(word), to, Rates(Some(counts)));
                    }
                    return;
                }
                Err(actual) => packed = actual,
            }
        }
    }

    /// Gives a half-open permit back, if the breaker is still in that half-open generation.
    pub(crate) fn release_permit(&self, ticket_generation: u64) {
        let mut word = self.state.load(Ordering::Acquire);
        while tag(word) == HALF_OPEN && generation(word) == ticket_generation {
            match self.state.compare_exchange_weak(
                word,
                word + PERMIT_ONE,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => word = actual,
            }
        }
    }

    /// Moves to `to`, if the state is still `expected` (any state but `to` itself when
    /// `None`). Returns whether this call made the transition; only the one that does emits
    /// the event, after the lock is released.
    fn transition(&self, expected: Option<u64>, to: CircuitState, rates: Rates) -> bool {
        let guard = self.transitions.lock();
        let current = self.state.load(Ordering::Acquire);
        let still = match expected {
            Some(expected) => {
                current >> GEN_SHIFT == expected >> GEN_SHIFT && tag(current) == tag(expected)
            }
            None => tag(current) != tag_of(to),
        };
        if !still {
            return false;
        }
        let from = state_of(tag(current));
        let next_generation = generation(current) + 1;
        let now = self.now_us();
        let permits = self.enter(from, to, now, next_generation);
        self.state.store(
            pack(tag_of(to), permits, next_generation),
            Ordering::Release,
        );
        if let Some(instruments) = &self.instruments {
            instruments.state_changed(from, to);
        }
        drop(guard);
        self.announce(from, to, next_generation, rates);
        true
    }

    /// Sets up what state `to` needs (under the transition lock); returns its free permits.
    fn enter(&self, from: CircuitState, to: CircuitState, now: u64, next_generation: u64) -> u64 {
        match to {
            CircuitState::Open => {
                let n = self.consecutive_opens.fetch_add(1, Ordering::AcqRel) + 1;
                let open_for = micros(self.config.open_duration.nth(n));
                // Only the hints of the failures that caused this break count: those still in
                // the window, or of the probes that failed.
                let hinted = match from {
                    CircuitState::Closed => self.window.hint_until(now),
                    CircuitState::HalfOpen => self.trial_hint_until.load(Ordering::Acquire),
                    _ => 0,
                }
                .min(now.saturating_add(micros(self.config.max_retry_after_open)));
                self.clocks.hint_until.store(hinted, Ordering::Release);
                self.clocks
                    .open_until
                    .store(now.saturating_add(open_for).max(hinted), Ordering::Release);
                0
            }
            CircuitState::HalfOpen => {
                self.trial.store(
                    trial::pack(next_generation, WindowCounts::default()),
                    Ordering::Release,
                );
                self.trial_hint_until.store(0, Ordering::Release);
                self.clocks.half_open_until.store(
                    now.saturating_add(micros(self.config.max_wait_in_half_open)),
                    Ordering::Release,
                );
                u64::from(self.config.half_open_permits)
            }
            CircuitState::Closed | CircuitState::MetricsOnly | CircuitState::Disabled => {
                if to == CircuitState::Closed {
                    self.consecutive_opens.store(0, Ordering::Release);
                }
                self.clear_window(now);
                0
            }
            CircuitState::ForcedOpen => 0,
        }
    }

    fn clear_window(&self, now: u64) {
        self.window.reset(now);
        self.streak.store(0, Ordering::Release);
    }

    /// Logs a transition and emits its event.
    fn announce(&self, from: CircuitState, to: CircuitState, generation: u64, rates: Rates) {
        if let Some(instruments) = &self.instruments {
            instruments.transition(from, to);
        }
        let Rates(counts) = rates;
        tracing::info!(
            model = %self.config.model,
            %from,
            %to,
            generation,
            failure_rate = counts.map(|c| c.failure_rate()),
            "circuit breaker state change"
        );
        self.config
            .events
            .emit(|| ResilienceEvent::CircuitTransition {
                model: self.config.model,
                from,
                to,
                generation,
                failure_rate: counts.map(|c| c.failure_rate()),
                slow_call_rate: counts.map(|c| c.slow_call_rate()),
            });
    }

    /// Moves to `to` whatever the state (operator action). Forcing the state the breaker is
    /// already in changes nothing (no event, no new generation), except that forcing
    /// `Closed` on a closed breaker empties its window. Returns whether the state changed.
    pub(crate) fn force(&self, to: CircuitState) -> bool {
        let moved = self.transition(None, to, Rates(None));
        if !moved && to == CircuitState::Closed {
            let _guard = self.transitions.lock();
            if tag(self.state.load(Ordering::Acquire)) == CLOSED {
                self.clear_window(self.now_us());
            }
        }
        moved
    }

    /// Opens the breaker until `open_for` from now, or lengthens an open break to end then
    /// at the earliest (`retry_after`: a provider's wait, which no early probe cuts short).
    /// A breaker an operator forced, disabled or set to metrics-only is left alone. Returns
    /// the new generation when this made a transition (its event is emitted as any other).
    pub(crate) fn hold_open(&self, open_for: Duration, retry_after: bool) -> Option<u64> {
        let guard = self.transitions.lock();
        let current = self.state.load(Ordering::Acquire);
        let until = self.now_us().saturating_add(micros(open_for));
        let from = state_of(tag(current));
        match from {
            CircuitState::Open => {
                self.clocks.open_until.fetch_max(until, Ordering::AcqRel);
                if retry_after {
                    self.clocks.hint_until.fetch_max(until, Ordering::AcqRel);
                }
                None
            }
            CircuitState::Closed | CircuitState::HalfOpen => {
                let next_generation = generation(current) + 1;
                self.consecutive_opens.fetch_add(1, Ordering::AcqRel);
                self.clocks
                    .hint_until
                    .store(if retry_after { until } else { 0 }, Ordering::Release);
                self.clocks.open_until.store(until, Ordering::Release);
                self.state
                    .store(pack(OPEN, 0, next_generation), Ordering::Release);
                if let Some(instruments) = &self.instruments {
                    instruments.state_changed(from, CircuitState::Open);
                }
                drop(guard);
                self.announce(from, CircuitState::Open, next_generation, Rates(None));
                Some(next_generation)
            }
            CircuitState::ForcedOpen | CircuitState::Disabled | CircuitState::MetricsOnly => None,
        }
    }

    /// Closes the breaker if it is open or half-open now (one conditional step; a forced
    /// state is left alone). Returns the new generation when it closed it.
    pub(crate) fn close_if_tripped(&self) -> Option<u64> {
        let word = self.state.load(Ordering::Acquire);
        (matches!(tag(word), OPEN | HALF_OPEN)
            && self.transition(Some(word), CircuitState::Closed, Rates(None)))
        .then(|| generation(word) + 1)
    }

    /// Moves from open to half-open, only if the breaker is open now (one conditional step).
    pub(crate) fn half_open_if_open(&self) -> bool {
        let word = self.state.load(Ordering::Acquire);
        tag(word) == OPEN && self.transition(Some(word), CircuitState::HalfOpen, Rates(None))
    }

    /// Time until the breaker admits a call by itself: zero when it would now, the rest of
    /// the break when open (`None` inside a provider's `Retry-After`), `None` when it will
    /// not by itself (forced open, half-open with every permit taken).
    pub(crate) fn ready_in(&self) -> Option<Duration> {
        let word = self.state.load(Ordering::Acquire);
        match tag(word) {
            CLOSED | METRICS_ONLY | DISABLED => Some(Duration::ZERO),
            OPEN => {
                let now = self.now_us();
                if now < self.clocks.hint_until.load(Ordering::Acquire) {
                    return None;
                }
                let until = self.clocks.open_until.load(Ordering::Acquire);
                Some(Duration::from_micros(until.saturating_sub(now)))
            }
            HALF_OPEN if permits(word) > 0 && !self.trial_expired() => Some(Duration::ZERO),
            _ => None,
        }
    }

    /// Ends an open break early for one probe (a router's last resort when every model is
    /// unavailable): only if open, outside the provider's `Retry-After`, and at most once
    /// per `min_interval`. Returns whether a call now would be admitted.
    pub(crate) fn probe_early(&self, min_interval: Duration) -> bool {
        let word = self.state.load(Ordering::Acquire);
        if tag(word) != OPEN {
            return self.would_admit();
        }
        let now = self.now_us();
        if now < self.clocks.hint_until.load(Ordering::Acquire) {
            return false;
        }
        let after = self.clocks.early_probe_after.load(Ordering::Acquire);
        if now < after
            || self
                .clocks
                .early_probe_after
                .compare_exchange(
                    after,
                    now.saturating_add(micros(min_interval)),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
        {
            return false;
        }
        self.transition(Some(word), CircuitState::HalfOpen, Rates(None)) || self.would_admit()
    }

    /// Whether a call now would be admitted, without taking a permit or changing state. One
    /// atomic load when closed.
    #[inline]
    pub(crate) fn would_admit(&self) -> bool {
        match tag(self.state.load(Ordering::Acquire)) {
            CLOSED | METRICS_ONLY | DISABLED => true,
            _ => self.ready_in() == Some(Duration::ZERO),
        }
    }

    pub(crate) fn state(&self) -> CircuitState {
        state_of(tag(self.state.load(Ordering::Acquire)))
    }

    pub(crate) fn snapshot(&self) -> BreakerMetrics {
        let word = self.state.load(Ordering::Acquire);
        let now = self.now_us();
        let counts = self.window.counts(now);
        let left = |until: &AtomicU64| {
            let until = until.load(Ordering::Acquire);
            (tag(word) == OPEN && until > now).then(|| Duration::from_micros(until - now))
        };
        BreakerMetrics {
            state: state_of(tag(word)),
            generation: generation(word),
            calls: counts.calls,
            failed_calls: counts.failures,
            slow_calls: counts.slow,
            failure_rate: counts.failure_rate(),
            slow_call_rate: counts.slow_call_rate(),
            half_open_permits_free: if tag(word) == HALF_OPEN {
                permits(word) as u32
            } else {
                0
            },
            open_remaining: (tag(word) == OPEN)
                .then(|| left(&self.clocks.open_until).unwrap_or(Duration::ZERO)),
            retry_after_remaining: left(&self.clocks.hint_until),
            consecutive_failures: self.streak.load(Ordering::Acquire),
            rejected_calls: self.rejected.load(Ordering::Relaxed),
            late_results: self.late.load(Ordering::Relaxed),
        }
    }
}
