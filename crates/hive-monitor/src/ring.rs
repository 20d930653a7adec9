//! Outcomes and latencies over the last minute, five minutes and hour: rings of time slots
//! of atomic counters, recorded without a lock and read by adding slots up.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use hive_core::{FailureClass, Outcome};
use tokio::time::Instant;

use crate::{
    histogram::{AtomicHistogram, Histogram},
    snapshot::Counts,
};

/// The counts of one slot of time.
#[derive(Debug, Default)]
struct Slot {
    /// The period this slot counts, plus one (0: never used).
    period: AtomicU64,
    successes: AtomicU64,
    client_errors: AtomicU64,
    rejected: AtomicU64,
    failures: [AtomicU64; FailureClass::ALL.len()],
    /// Latencies of the answers (successes and client errors: the model answered).
    latency: AtomicHistogram,
}

impl Slot {
    fn clear(&self) {
        for counter in [&self.successes, &self.client_errors, &self.rejected]
            .into_iter()
            .chain(self.failures.iter())
        {
            counter.store(0, Ordering::Relaxed);
        }
        self.latency.clear();
    }

    fn record(&self, outcome: &Outcome, latency: Duration) {
        let counter = match outcome {
            Outcome::Success => {
                self.latency.record(latency);
                &self.successes
            }
            Outcome::ClientError(_) => {
                self.latency.record(latency);
                &self.client_errors
            }
            Outcome::Failure { class, .. } => &self.failures[*class as usize],
            Outcome::Rejected(_) => &self.rejected,
            Outcome::Ignored => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn add_to(&self, counts: &mut Counts, latency: &mut Histogram) {
        counts.successes += self.successes.load(Ordering::Relaxed);
        counts.client_errors += self.client_errors.load(Ordering::Relaxed);
        counts.rejected += self.rejected.load(Ordering::Relaxed);
        for (class, failures) in FailureClass::ALL.iter().zip(&self.failures) {
            let n = failures.load(Ordering::Relaxed);
            if n > 0 {
                *counts.failures.entry(*class).or_default() += n;
            }
        }
        self.latency.add_to(latency);
    }
}

/// A ring of `slots` slots of `slot` each: the last `slot × slots` of outcomes.
///
/// A slot is emptied when time comes round to it again. The monitor's tick empties the next
/// slot ahead of time ([`Ring::prepare`]), so recorders normally find their slot ready; one
/// that does not empties it itself, and a sample recorded in that same instant by another
/// thread may be lost (the figures are estimates for operators, never decisions).
#[derive(Debug)]
pub(crate) struct Ring {
    epoch: Instant,
    slot: Duration,
    slots: Box<[Slot]>,
}

impl Ring {
    pub(crate) fn new(epoch: Instant, slot: Duration, slots: usize) -> Self {
        Self {
            epoch,
            slot,
            slots: (0..slots.max(1)).map(|_| Slot::default()).collect(),
        }
    }

    fn period(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(since / self.slot.as_nanos().max(1)).unwrap_or(u64::MAX - 1)
    }

    fn slot_of(&self, period: u64) -> &Slot {
        &self.slots[(period % self.slots.len() as u64) as usize]
    }

    /// The slot of `period`, emptied first if it still holds an older period.
    fn ready(&self, period: u64) -> &Slot {
        let slot = self.slot_of(period);
        let seen = slot.period.load(Ordering::Acquire);
        if seen != period + 1
            && slot
                .period
                .compare_exchange(seen, period + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            slot.clear();
        }
        slot
    }

    pub(crate) fn record(&self, now: Instant, outcome: &Outcome, latency: Duration) {
        self.ready(self.period(now)).record(outcome, latency);
    }

    /// Empties the slot after `now`'s ahead of time.
    pub(crate) fn prepare(&self, now: Instant) {
        self.ready(self.period(now) + 1);
    }

    /// The counts and latencies of the last `span` slots (the current one included).
    pub(crate) fn read(&self, now: Instant, span: usize) -> (Counts, Histogram) {
        let now = self.period(now);
        let span = span.clamp(1, self.slots.len()) as u64;
        let mut counts = Counts::default();
        let mut latency = Histogram::default();
        for period in now.saturating_sub(span - 1)..=now {
            let slot = self.slot_of(period);
            if slot.period.load(Ordering::Acquire) == period + 1 {
                slot.add_to(&mut counts, &mut latency);
            }
        }
        (counts, latency)
    }

    /// The slot length.
    pub(crate) fn slot(&self) -> Duration {
        self.slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn outcomes_leave_the_window_slot_by_slot() {
        let ring = Ring::new(Instant::now(), Duration::from_secs(5), 12);
        let now = Instant::now();
        ring.record(now, &Outcome::Success, Duration::from_millis(100));
        ring.record(
            now,
            &Outcome::failure(FailureClass::RateLimited),
            Duration::ZERO,
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        let later = Instant::now();
        ring.prepare(later);
        ring.record(later, &Outcome::Success, Duration::from_millis(300));
        let (counts, latency) = ring.read(later, 12);
        assert_eq!(counts.successes, 2);
        assert_eq!(counts.failures[&FailureClass::RateLimited], 1);
        assert_eq!(latency.count(), 2);
        let (last_5s, _) = ring.read(later, 1);
        assert_eq!((last_5s.successes, last_5s.total()), (1, 1));
        tokio::time::advance(Duration::from_secs(30)).await;
        let (counts, _) = ring.read(Instant::now(), 12);
        assert_eq!(counts.total(), 1, "the first slot has left the minute");
        tokio::time::advance(Duration::from_secs(60)).await;
        ring.record(Instant::now(), &Outcome::Success, Duration::from_millis(1));
        let (counts, latency) = ring.read(Instant::now(), 12);
        assert_eq!(
            (counts.total(), latency.count()),
            (1, 1),
            "a slot reused after a lap starts empty"
        );
    }
}
