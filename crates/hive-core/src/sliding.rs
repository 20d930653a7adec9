//! [`SlidingCounters`]: counters over the last span of time, in a ring of slots, lock-free.

use std::{
    fmt,
    sync::atomic::{AtomicI64, AtomicU64, Ordering},
    time::Duration,
};

use tokio::time::Instant;

struct Slot<const N: usize> {
    /// The period this slot counts, plus one (0: never used).
    period: AtomicU64,
    counters: [AtomicI64; N],
}

/// `N` counters summed over the last `span`, kept in a ring of equal slots. Adding goes to
/// the slot of now; a slot is emptied when time comes round to it again (one compare-and-swap
/// on its period), and sums cover only the slots of the span. A race at a slot's turn may
/// lose an addition, never corrupt a sum.
pub struct SlidingCounters<const N: usize> {
    epoch: Instant,
    /// A slot's length in nanoseconds.
    slot_ns: u64,
    slots: Box<[Slot<N>]>,
}

impl<const N: usize> SlidingCounters<N> {
    /// Counters over `span`, in `slots` slots (at least 1; a slot is at least 1 µs).
    pub fn new(span: Duration, slots: usize) -> Self {
        let slots = slots.max(1);
        Self {
            epoch: Instant::now(),
            slot_ns: ((span / slots as u32).as_nanos() as u64).max(1_000),
            slots: (0..slots)
                .map(|_| Slot {
                    period: AtomicU64::new(0),
                    counters: std::array::from_fn(|_| AtomicI64::new(0)),
                })
                .collect(),
        }
    }

    /// The span the sums cover.
    pub fn span(&self) -> Duration {
        Duration::from_nanos(self.slot_ns) * self.slots.len() as u32
    }

    fn period(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.epoch)
            .as_nanos() as u64
            / self.slot_ns
    }

    /// Adds `delta` to counter `counter` (below `N`) for now.
    pub fn add(&self, counter: usize, delta: i64) {
        let period = self.period();
        let slot = &self.slots[(period % self.slots.len() as u64) as usize];
        let seen = slot.period.load(Ordering::Acquire);
        if seen != period + 1
            && slot
                .period
                .compare_exchange(seen, period + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            for c in &slot.counters {
                c.store(0, Ordering::Release);
            }
        }
        slot.counters[counter].fetch_add(delta, Ordering::AcqRel);
    }

    /// Each counter summed over the span.
    pub fn sums(&self) -> [i64; N] {
        let now = self.period() + 1;
        let span = self.slots.len() as u64;
        let mut sums = [0; N];
        for slot in self.slots.iter() {
            let period = slot.period.load(Ordering::Acquire);
            if period > 0 && now - period.min(now) < span {
                for (sum, c) in sums.iter_mut().zip(&slot.counters) {
                    *sum += c.load(Ordering::Acquire);
                }
            }
        }
        sums
    }
}

impl<const N: usize> fmt::Debug for SlidingCounters<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlidingCounters")
            .field("span", &self.span())
            .field("sums", &self.sums())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_leave_the_span_slot_by_slot() {
        let counters = SlidingCounters::<2>::new(Duration::from_secs(3), 3);
        counters.add(0, 1);
        counters.add(1, 1);
        counters.add(1, 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        counters.add(0, 1);
        counters.add(1, 1);
        assert_eq!(counters.sums(), [2, 3]);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(counters.sums(), [1, 1], "the first second left the span");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(counters.sums(), [0, 0]);
        counters.add(0, -5);
        assert_eq!(counters.sums(), [-5, 0]);
    }
}
