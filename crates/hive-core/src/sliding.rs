//! [`SlidingCounters`]: counters over the last span of time, in a ring of slots, lock-free
//! and exact.

use std::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tokio::time::Instant;

/// The shortest slot: with 32 bits of period in each word, a slot of at least 1 ms takes
/// 49 days to wrap around.
const MIN_SLOT: Duration = Duration::from_millis(1);

/// Tags a period takes, in turn: 1 to 2^32 − 1 (0 means never used).
const TAGS: u64 = u32::MAX as u64;

/// The tag of `period`: never 0, so that every period reads as used.
const fn tag(period: u64) -> u64 {
    period % TAGS + 1
}

/// One counter of one slot, in one word: the tag of the period it counts (0: never used) in
/// the high half, its value (an `i32`) in the low half. Because the period travels with the
/// value, emptying a slot for a new period and adding to it are one compare-and-swap: no
/// addition can fall between the two.
#[derive(Clone, Copy)]
struct Word(u64);

impl Word {
    const fn new(period: u64, value: i32) -> Self {
        Self(tag(period) << 32 | value as u32 as u64)
    }

    /// Whether the word counts `period`.
    const fn counts(self, period: u64) -> bool {
        self.0 >> 32 == tag(period)
    }

    /// How many periods before `now` the word's period was (modulo the number of tags).
    const fn age(self, now: u64) -> u64 {
        (tag(now) + TAGS - (self.0 >> 32)) % TAGS
    }

    const fn value(self) -> i32 {
        self.0 as u32 as i32
    }
}

/// `N` counters summed over the last `span`, kept in a ring of equal slots. Adding goes to
/// the slot of now, and a slot is emptied when time comes round to it again, in the same
/// compare-and-swap as the addition, so no addition is ever lost. Each slot counts up to
/// ±2^31 per counter (a value that would pass that saturates).
pub struct SlidingCounters<const N: usize> {
    epoch: Instant,
    /// A slot's length in nanoseconds.
    slot_ns: u64,
    slots: Box<[[AtomicU64; N]]>,
}

impl<const N: usize> SlidingCounters<N> {
    /// Counters over `span`, in `slots` slots (at least 1; a slot is at least 1 ms).
    pub fn new(span: Duration, slots: usize) -> Self {
        let slots = slots.clamp(1, u32::MAX as usize);
        let slot = (span / slots as u32).max(MIN_SLOT);
        Self {
            epoch: Instant::now(),
            slot_ns: u64::try_from(slot.as_nanos()).unwrap_or(u64::MAX),
            slots: (0..slots)
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
        }
    }

    /// The span the sums cover.
    pub fn span(&self) -> Duration {
        Duration::from_nanos(self.slot_ns).saturating_mul(self.slots.len() as u32)
    }

    fn period(&self) -> u64 {
        let since = Instant::now()
            .saturating_duration_since(self.epoch)
            .as_nanos();
        u64::try_from(since / u128::from(self.slot_ns)).unwrap_or(u64::MAX)
    }

    fn slot_of(&self, period: u64) -> &[AtomicU64; N] {
        &self.slots[(period % self.slots.len() as u64) as usize]
    }

    /// The value `word` holds for `period`: its value if it counts that period, else zero
    /// (a word of an older period is emptied by the next addition).
    fn current(word: Word, period: u64) -> i64 {
        if word.counts(period) {
            i64::from(word.value())
        } else {
            0
        }
    }

    /// Adds `delta` to counter `counter` (below `N`) for now.
    pub fn add(&self, counter: usize, delta: i64) {
        self.try_add(counter, delta, i64::MIN);
    }

    /// Adds `delta` to counter `counter` only if its sum over the span stays at or above
    /// `floor` afterwards; returns whether it did. The check and the addition are one
    /// compare-and-swap on the slot of now, so concurrent callers can never take the same
    /// room twice.
    pub fn try_add(&self, counter: usize, delta: i64, floor: i64) -> bool {
        let period = self.period();
        let cell = &self.slot_of(period)[counter];
        let mut seen = Word(cell.load(Ordering::Acquire));
        loop {
            let here = Self::current(seen, period);
            if floor != i64::MIN {
                let others = self.sum_except(counter, period);
                if others.saturating_add(here).saturating_add(delta) < floor {
                    return false;
                }
            }
            let value = here
                .saturating_add(delta)
                .clamp(i64::from(i32::MIN), i64::from(i32::MAX));
            let next = Word::new(period, value as i32);
            match cell.compare_exchange_weak(seen.0, next.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(actual) => seen = Word(actual),
            }
        }
    }

    /// Whether `word` counts one of the periods of the span ending at `now`.
    fn is_live(&self, word: Word, now: u64) -> bool {
        // A word never used (tag 0) may read as live, with its value of 0.
        word.age(now) < self.slots.len() as u64
    }

    /// The counter summed over every slot of the span but the one of `now`.
    fn sum_except(&self, counter: usize, now: u64) -> i64 {
        let skip = (now % self.slots.len() as u64) as usize;
        self.slots
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, slot)| Word(slot[counter].load(Ordering::Acquire)))
            .filter(|word| self.is_live(*word, now))
            .map(|word| i64::from(word.value()))
            .sum()
    }

    /// Each counter summed over the span.
    pub fn sums(&self) -> [i64; N] {
        let now = self.period();
        let mut sums = [0; N];
        for slot in self.slots.iter() {
            for (sum, cell) in sums.iter_mut().zip(slot) {
                let word = Word(cell.load(Ordering::Acquire));
                if self.is_live(word, now) {
                    *sum += i64::from(word.value());
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
    use std::sync::Arc;

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

    #[tokio::test(start_paused = true)]
    async fn a_slot_reused_after_a_whole_lap_starts_from_zero() {
        let counters = SlidingCounters::<1>::new(Duration::from_secs(2), 2);
        counters.add(0, 7);
        // Exactly one lap later the same slot counts a new period.
        tokio::time::advance(Duration::from_secs(2)).await;
        counters.add(0, 1);
        assert_eq!(counters.sums(), [1]);
    }

    #[test]
    fn every_period_has_a_tag_and_ages_across_the_wrap() {
        for period in [0, 1, TAGS - 1, TAGS, TAGS + 1, 2 * TAGS - 1, u64::MAX / 2] {
            let word = Word::new(period, 5);
            assert!(word.counts(period));
            assert!(!word.counts(period + 1));
            assert_eq!(word.age(period), 0);
            assert_eq!(word.age(period + 3), 3, "period {period}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn try_add_keeps_the_sum_above_the_floor() {
        let counters = SlidingCounters::<1>::new(Duration::from_secs(2), 2);
        counters.add(0, 3);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(counters.try_add(0, -2, 0));
        assert!(!counters.try_add(0, -2, 0), "would leave -1");
        assert!(counters.try_add(0, -1, 0));
        assert_eq!(counters.sums(), [0]);
        assert!(counters.try_add(0, -4, -4), "the floor may be negative");
    }

    #[test]
    fn values_saturate_instead_of_wrapping() {
        let counters = SlidingCounters::<1>::new(Duration::from_secs(1), 1);
        counters.add(0, i64::from(i32::MAX));
        counters.add(0, 10);
        assert_eq!(counters.sums(), [i64::from(i32::MAX)]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_span_is_the_slots_together_and_a_slot_is_at_least_a_millisecond() {
        assert_eq!(
            SlidingCounters::<1>::new(Duration::from_secs(3), 3).span(),
            Duration::from_secs(3)
        );
        assert_eq!(
            SlidingCounters::<1>::new(Duration::from_millis(1), 10).span(),
            Duration::from_millis(10),
            "ten slots of the shortest length"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn debug_shows_the_span_and_the_sums() {
        let counters = SlidingCounters::<2>::new(Duration::from_secs(3), 3);
        counters.add(0, 2);
        counters.add(1, -3);
        assert_eq!(
            format!("{counters:?}"),
            "SlidingCounters { span: 3s, sums: [2, -3] }"
        );
    }

    /// Threads add at the very moment a slot turns over: the counters lose nothing.
    #[test]
    fn no_addition_is_lost_at_a_slot_rollover() {
        const THREADS: usize = 4;
        const ROUNDS: usize = 500;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let _guard = runtime.enter();
        // The clock is paused: every thread reads the instant the main thread sets. Each
        // round moves it to a new slot, then every thread adds at once.
        let counters = Arc::new(SlidingCounters::<1>::new(
            Duration::from_secs(ROUNDS as u64 * 2),
            ROUNDS * 2,
        ));
        let barrier = Arc::new(std::sync::Barrier::new(THREADS + 1));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (counters, barrier) = (counters.clone(), barrier.clone());
                let handle = runtime.handle().clone();
                std::thread::spawn(move || {
                    let _guard = handle.enter();
                    for _ in 0..ROUNDS {
                        barrier.wait();
                        for _ in 0..8 {
                            counters.add(0, 1);
                        }
                        barrier.wait();
                    }
                })
            })
            .collect();
        for round in 1..=ROUNDS {
            runtime.block_on(tokio::time::advance(Duration::from_secs(1)));
            barrier.wait();
            barrier.wait();
            assert_eq!(
                counters.sums()[0],
                (round * THREADS * 8) as i64,
                "round {round}"
            );
        }
        for thread in threads {
            thread.join().unwrap();
        }
    }
}
