//! The shared state machine of one breaker: atomics only on the call path, a spin lock held
//! for nanoseconds on transitions.
//!
//! The state word packs the state tag (3 bits), the free half-open permits (10 bits) and the
//! generation (51 bits). The generation grows by one on every transition; each call is
//! admitted in a generation and its result counts only if the breaker is still in that
//! generation when the result arrives. Results that arrive later are dropped and counted as
//! late. Permits are taken and returned with a compare-and-swap on the same word, so a permit
//! of an old generation can never leak into a new one.

use std::{
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::Duration,
};

use hive_core::{CircuitState, Outcome, RejectReason, ResilienceEvent};
use tokio::time::Instant;

use crate::{
    config::{CircuitBreakerConfig, SlidingWindow},
    spin::SpinLock,
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

/// Half-open trial counters: calls, failures and slow calls (10 bits each) and the low 32
/// bits of the generation they belong to.
const fn pack_trial(generation: u64, calls: u64, failures: u64, slow: u64) -> u64 {
    (generation & 0xFFFF_FFFF) << 32 | slow << 20 | failures << 10 | calls
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

/// What changed a state, for the event.
#[derive(Clone, Copy)]
struct Rates(Option<WindowCounts>);

#[derive(Debug)]
pub(crate) struct Breaker {
    pub(crate) config: CircuitBreakerConfig,
    epoch: Instant,
    state: AtomicU64,
    open_until_us: AtomicU64,
    retry_after_until_us: AtomicU64,
    consecutive_opens: AtomicU32,
    trial: AtomicU64,
    window: Window,
    transitions: SpinLock,
    rejected: AtomicU64,
    late: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(config: CircuitBreakerConfig) -> Self {
        let window = match config.window {
            SlidingWindow::Count { size } => Window::Count(CountWindow::new(size)),
            SlidingWindow::Time { duration, buckets } => Window::Time(TimeWindow::new(
                (duration.as_micros() / u128::from(buckets)) as u64,
                buckets,
            )),
        };
        Self {
            config,
            epoch: Instant::now(),
            state: AtomicU64::new(pack(CLOSED, 0, 0)),
            open_until_us: AtomicU64::new(0),
            retry_after_until_us: AtomicU64::new(0),
            consecutive_opens: AtomicU32::new(0),
            trial: AtomicU64::new(0),
            window,
            transitions: SpinLock::default(),
            rejected: AtomicU64::new(0),
            late: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.epoch)
            .as_micros()
            .min(u128::from(u64::MAX / 2)) as u64
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
                    let until = self.open_until_us.load(Ordering::Acquire);
                    if now < until {
                        return self.reject(RejectReason::CircuitOpen {
                            retry_in: Duration::from_micros(until - now),
                        });
                    }
                    self.transition(Some(word), CircuitState::HalfOpen, Rates(None));
                    word = self.state.load(Ordering::Acquire);
                }
                _ => {
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
        self.config.events.emit(|| ResilienceEvent::CallRejected {
            model: self.config.model,
            reason,
        });
        Admission::Rejected(reason)
    }

    /// Records the outcome of a call admitted with `ticket`.
    #[inline(always)]
    pub(crate) fn record(&self, ticket: Ticket, outcome: Outcome) {
        if !ticket.half_open()
            && matches!(outcome, Outcome::Success | Outcome::ClientError(_))
            && self.config.slow_call_duration.is_none()
            && self.window.is_full_of_successes()
        {
            // Recording it would change nothing, in whatever generation.
            return;
        }
        self.record_change(ticket, outcome);
    }

    #[inline(never)]
    fn record_change(&self, ticket: Ticket, outcome: Outcome) {
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
            if now_us.saturating_sub(ticket.start_us) > slow.as_micros() as u64 {
                code |= SLOW;
            }
        }
        let word = self.state.load(Ordering::Acquire);
        if generation(word) != ticket.generation() {
            self.late.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(hint) = outcome.retry_after() {
            let until = now_us.saturating_add(hint.as_micros() as u64);
            self.retry_after_until_us.fetch_max(until, Ordering::AcqRel);
        }
        match tag(word) {
            CLOSED | METRICS_ONLY => {
                if let Some(counts) = self.window.record(code, now_us) {
                    if tag(word) == CLOSED && self.trips(&counts) {
                        self.transition(Some(word), CircuitState::Open, Rates(Some(counts)));
                    }
                }
            }
            HALF_OPEN => self.record_trial(word, code),
            _ => {}
        }
    }

    fn trips(&self, counts: &WindowCounts) -> bool {
        counts.calls >= u64::from(self.config.minimum_calls)
            && (counts.failure_rate() >= self.config.failure_rate_threshold
                || (self.config.slow_call_duration.is_some()
                    && counts.slow_call_rate() >= self.config.slow_call_rate_threshold))
    }

    #[cold]
    fn record_trial(&self, word: u64, code: u8) {
        let generation32 = generation(word) & 0xFFFF_FFFF;
        let mut trial = self.trial.load(Ordering::Acquire);
        loop {
            if trial >> 32 != generation32 {
                self.late.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let calls = (trial & 0x3FF) + 1;
            let failures = ((trial >> 10) & 0x3FF) + u64::from(code & FAILURE != 0);
            let slow = ((trial >> 20) & 0x3FF) + u64::from(code & SLOW != 0);
            let next = pack_trial(generation(word), calls, failures, slow);
            match self
                .trial
                .compare_exchange_weak(trial, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if calls == u64::from(self.config.half_open_permits) {
                        let counts = WindowCounts {
                            calls,
                            failures,
                            slow,
                        };
                        let to = if counts.failure_rate() >= self.config.failure_rate_threshold
                            || (self.config.slow_call_duration.is_some()
                                && counts.slow_call_rate() >= self.config.slow_call_rate_threshold)
                        {
                            CircuitState::Open
                        } else {
                            CircuitState::Closed
                        };
                        self.transition(Some(word), to, Rates(Some(counts)));
                    }
                    return;
                }
                Err(actual) => trial = actual,
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

    /// Moves to `to`, if the state is still `expected` (any state when `None`). Returns
    /// whether this call made the transition; only the one that does emits the event.
    fn transition(&self, expected: Option<u64>, to: CircuitState, rates: Rates) -> bool {
        let guard = self.transitions.lock();
        let current = self.state.load(Ordering::Acquire);
        if let Some(expected) = expected {
            if tag(current) != tag(expected) || generation(current) != generation(expected) {
                return false;
            }
        }
        let from = state_of(tag(current));
        let next_generation = generation(current) + 1;
        let now = self.now_us();
        let mut permits = 0;
        match to {
            CircuitState::Open => {
                let n = self.consecutive_opens.fetch_add(1, Ordering::AcqRel) + 1;
                let open_for = self.config.open_duration.nth(n).as_micros() as u64;
                let hinted = self.retry_after_until_us.load(Ordering::Acquire);
                self.open_until_us
                    .store(now.saturating_add(open_for).max(hinted), Ordering::Release);
            }
            CircuitState::HalfOpen => {
                permits = u64::from(self.config.half_open_permits);
                self.trial
                    .store(pack_trial(next_generation, 0, 0, 0), Ordering::Release);
            }
            CircuitState::Closed | CircuitState::MetricsOnly | CircuitState::Disabled => {
                if to == CircuitState::Closed {
                    self.consecutive_opens.store(0, Ordering::Release);
                }
                self.window.reset(now);
            }
            CircuitState::ForcedOpen => {}
        }
        self.retry_after_until_us.store(0, Ordering::Release);
        self.state.store(
            pack(tag_of(to), permits, next_generation),
            Ordering::Release,
        );
        drop(guard);

        let Rates(counts) = rates;
        tracing::info!(
            model = %self.config.model,
            %from,
            %to,
            generation = next_generation,
            failure_rate = counts.map(|c| c.failure_rate()),
            "circuit breaker state change"
        );
        self.config
            .events
            .emit(|| ResilienceEvent::CircuitTransition {
                model: self.config.model,
                from,
                to,
                generation: next_generation,
                failure_rate: counts.map(|c| c.failure_rate()),
                slow_call_rate: counts.map(|c| c.slow_call_rate()),
            });
        true
    }

    /// Moves to `to` whatever the state (operator action).
    pub(crate) fn force(&self, to: CircuitState) {
        self.transition(None, to, Rates(None));
    }

    /// Whether a call now would be admitted, without taking a permit or changing state.
    pub(crate) fn would_admit(&self) -> bool {
        let word = self.state.load(Ordering::Acquire);
        match tag(word) {
            CLOSED | METRICS_ONLY | DISABLED => true,
            OPEN => self.now_us() >= self.open_until_us.load(Ordering::Acquire),
            HALF_OPEN => permits(word) > 0,
            _ => false,
        }
    }

    pub(crate) fn state(&self) -> CircuitState {
        state_of(tag(self.state.load(Ordering::Acquire)))
    }

    pub(crate) fn snapshot(&self) -> crate::BreakerMetrics {
        let word = self.state.load(Ordering::Acquire);
        let now = self.now_us();
        let counts = self.window.counts(now);
        let open_remaining = (tag(word) == OPEN).then(|| {
            Duration::from_micros(
                self.open_until_us
                    .load(Ordering::Acquire)
                    .saturating_sub(now),
            )
        });
        crate::BreakerMetrics {
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
            open_remaining,
            rejected_calls: self.rejected.load(Ordering::Relaxed),
            late_results: self.late.load(Ordering::Relaxed),
        }
    }
}
