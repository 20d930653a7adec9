//! Sliding windows with O(1) aggregates, updated with atomics only.
//!
//! Every recorded call is a 3-bit code (call, failure, slow). The count window keeps one code
//! per slot in a ring and swaps the new code in, so the aggregate changes by the difference
//! of two codes, and a success in a window of successes writes nothing at all. The time
//! window adds to the current slice and to the aggregate, and subtracts a slice's counts
//! when time moves past it.
//!
//! Beside the counts, each window remembers the `Retry-After` hints of the failures it holds
//! (as the instant the hint ends, in µs of the breaker's clock; 0 for none), so that when the
//! breaker trips, only the hints of the failures still in the window stretch the break. They
//! are written only when a failure enters or leaves a place, and read only when the breaker
//! trips.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::spin::SpinLock;

/// The code of a recorded call.
pub(crate) const CALL: u8 = 1;
/// Added to [`CALL`] for a failed call.
pub(crate) const FAILURE: u8 = 2;
/// Added to [`CALL`] for a slow call.
pub(crate) const SLOW: u8 = 4;

/// What a window holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Calls recorded.
    pub calls: u64,
    /// Failed calls among them.
    pub failures: u64,
    /// Slow calls among them (a call may be slow and failed).
    pub slow: u64,
}

impl WindowCounts {
    /// Failures per call (0 without calls).
    pub fn failure_rate(&self) -> f64 {
        ratio(self.failures, self.calls)
    }

    /// Slow calls per call (0 without calls).
    pub fn slow_call_rate(&self) -> f64 {
        ratio(self.slow, self.calls)
    }

    #[cfg(test)]
    pub(crate) fn add(&mut self, code: u8) {
        if code & CALL != 0 {
            self.calls += 1;
            self.failures += u64::from(code & FAILURE != 0);
            self.slow += u64::from(code & SLOW != 0);
        }
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    /// Records `code` at `now_us` (ignored by count windows), with the end of its
    /// `Retry-After` hint (`hint_until_us`, 0 for none). Returns the counts after the change,
    /// or `None` when nothing changed (or a concurrent update is half done), so the caller
    /// need not evaluate the thresholds.
    #[inline]
    pub(crate) fn record(&self, code: u8, now_us: u64, hint_until_us: u64) -> Option<WindowCounts> {
        match self {
            Self::Count(w) => w.record(code, hint_until_us),
            Self::Time(w) => w.record(code, now_us, hint_until_us),
        }
    }

    /// The latest end of the `Retry-After` hints of the failures in the window (0: none).
    pub(crate) fn hint_until(&self, now_us: u64) -> u64 {
        match self {
            Self::Count(w) => w.hint_until(),
            Self::Time(w) => w.hint_until(now_us),
        }
    }

    pub(crate) fn counts(&self, now_us: u64) -> WindowCounts {
        match self {
            Self::Count(w) => w.counts(),
            Self::Time(w) => w.counts(now_us),
        }
    }

    pub(crate) fn reset(&self, now_us: u64) {
        match self {
            Self::Count(w) => w.reset(),
            Self::Time(w) => w.reset(now_us),
        }
    }

    /// Whether one more success would leave the window as it is (a full count window of
    /// plain successes).
    #[inline]
    pub(crate) fn is_full_of_successes(&self) -> bool {
        match self {
            Self::Count(w) => w.is_full_of_successes(),
            Self::Time(_) => false,
        }
    }

    pub(crate) fn needs_clock(&self) -> bool {
        matches!(self, Self::Time(_))
    }
}

const FIELD_BITS: u32 = 21;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;

/// The aggregate word of a count window: calls, failures and slow calls, 21 bits each.
const fn encode(code: u8) -> u64 {
    let c = code as u64;
    (c & 1) | ((c >> 1) & 1) << FIELD_BITS | ((c >> 2) & 1) << (2 * FIELD_BITS)
}

/// The last `size` calls.
#[derive(Debug)]
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    /// The end of the `Retry-After` hint of the failure in the same place of `slots`.
    hints: Box<[AtomicU64]>,
    next: AtomicU64,
    aggregate: AtomicU64,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        Self {
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            hints: (0..size).map(|_| AtomicU64::new(0)).collect(),
            next: AtomicU64::new(0),
            aggregate: AtomicU64::new(0),
        }
    }

    #[inline]
    fn record(&self, code: u8, hint_until_us: u64) -> Option<WindowCounts> {
        // A window full of plain successes stays so after another success, wherever the ring
        // stands: in a ring, a later failure stays exactly `size` calls wherever it lands. So
        // the steady-state success is one load and no write.
        if code == CALL && self.is_full_of_successes() {
            return None;
        }
        let index = (self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len() as u64) as usize;
        let evicted = self.slots[index].swap(code, Ordering::AcqRel);
        if (code | evicted) & FAILURE != 0 {
            // A failure enters or leaves this place: its hint goes with it.
            self.hints[index].store(hint_until_us, Ordering::Release);
        }
        if evicted == code {
            return None;
        }
        let delta = encode(code).wrapping_sub(encode(evicted));
        let word = self
            .aggregate
            .fetch_add(delta, Ordering::AcqRel)
            .wrapping_add(delta);
        self.decode(word)
    }

    #[inline]
    fn is_full_of_successes(&self) -> bool {
        self.aggregate.load(Ordering::Relaxed) == self.slots.len() as u64
    }

    /// `None` while a concurrent update that wrapped around the ring is half applied (a field
    /// then reads above the window size).
    fn decode(&self, word: u64) -> Option<WindowCounts> {
        let size = self.slots.len() as u64;
        let counts = WindowCounts {
            calls: word & FIELD_MASK,
            failures: (word >> FIELD_BITS) & FIELD_MASK,
            slow: (word >> (2 * FIELD_BITS)) & FIELD_MASK,
        };
        (counts.calls <= size && counts.failures <= counts.calls && counts.slow <= counts.calls)
            .then_some(counts)
    }

    fn counts(&self) -> WindowCounts {
        self.decode(self.aggregate.load(Ordering::Acquire))
            .unwrap_or_default()
    }

    fn hint_until(&self) -> u64 {
        self.hints
            .iter()
            .map(|h| h.load(Ordering::Acquire))
            .max()
            .unwrap_or(0)
    }

    fn reset(&self) {
        for (slot, hint) in self.slots.iter().zip(self.hints.iter()) {
            slot.store(0, Ordering::Relaxed);
            hint.store(0, Ordering::Relaxed);
        }
        self.next.store(0, Ordering::Relaxed);
        self.aggregate.store(0, Ordering::Release);
    }
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
    /// The latest end of the `Retry-After` hints of these failures (0: none).
    hint_until: AtomicU64,
}

impl Counters {
    #[inline]
    fn add(&self, code: u8, hint_until_us: u64) {
        self.calls.fetch_add(1, Ordering::AcqRel);
        if code & FAILURE != 0 {
            self.failures.fetch_add(1, Ordering::AcqRel);
            if hint_until_us != 0 {
                self.hint_until.fetch_max(hint_until_us, Ordering::AcqRel);
            }
        }
        if code & SLOW != 0 {
            self.slow.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn take(&self) -> [u64; 3] {
        self.hint_until.store(0, Ordering::Release);
        [
            self.calls.swap(0, Ordering::AcqRel),
            self.failures.swap(0, Ordering::AcqRel),
            self.slow.swap(0, Ordering::AcqRel),
        ]
    }

    fn subtract(&self, [calls, failures, slow]: [u64; 3]) {
        self.calls.fetch_sub(calls, Ordering::AcqRel);
        self.failures.fetch_sub(failures, Ordering::AcqRel);
        self.slow.fetch_sub(slow, Ordering::AcqRel);
    }

    /// Reads the counters; a field caught mid-update (wrapped below zero) reads as zero.
    fn read(&self) -> WindowCounts {
        let clamp = |v: u64| if (v as i64) < 0 { 0 } else { v };
        let calls = clamp(self.calls.load(Ordering::Acquire));
        WindowCounts {
            calls,
            failures: clamp(self.failures.load(Ordering::Acquire)).min(calls),
            slow: clamp(self.slow.load(Ordering::Acquire)).min(calls),
        }
    }
}

/// The calls of the last `buckets × bucket_us` microseconds. Slice `k` covers
/// `[k·bucket_us, (k+1)·bucket_us)` and leaves the window at `(k+buckets)·bucket_us`.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    bucket_us: u64,
    buckets: Box<[Counters]>,
    /// The newest slice index that has been opened.
    head: AtomicU64,
    total: Counters,
    rollover: SpinLock,
}

impl TimeWindow {
    pub(crate) fn new(bucket_us: u64, buckets: u32) -> Self {
        Self {
            bucket_us: bucket_us.max(1),
            buckets: (0..buckets).map(|_| Counters::default()).collect(),
            head: AtomicU64::new(0),
            total: Counters::default(),
            rollover: SpinLock::default(),
        }
    }

    #[inline]
    fn record(&self, code: u8, now_us: u64, hint_until_us: u64) -> Option<WindowCounts> {
        let slice = now_us / self.bucket_us;
        self.advance(slice);
        let len = self.buckets.len() as u64;
        if slice + len <= self.head.load(Ordering::Acquire) {
            // Read its clock before another call moved the window past it.
            return None;
        }
        self.buckets[(slice % len) as usize].add(code, hint_until_us);
        self.total.add(code, 0);
        Some(self.total.read())
    }

    fn hint_until(&self, now_us: u64) -> u64 {
        self.advance(now_us / self.bucket_us);
        self.buckets
            .iter()
            .map(|b| b.hint_until.load(Ordering::Acquire))
            .max()
            .unwrap_or(0)
    }

    /// Expires the slices that time has moved past.
    #[inline]
    fn advance(&self, slice: u64) {
        if self.head.load(Ordering::Acquire) >= slice {
            return;
        }
        let _guard = self.rollover.lock();
        let head = self.head.load(Ordering::Acquire);
        if head >= slice {
            return;
        }
        let len = self.buckets.len() as u64;
        for k in head + 1..=head + (slice - head).min(len) {
            let expired = self.buckets[(k % len) as usize].take();
            self.total.subtract(expired);
        }
        self.head.store(slice, Ordering::Release);
    }

    fn counts(&self, now_us: u64) -> WindowCounts {
        self.advance(now_us / self.bucket_us);
        self.total.read()
    }

    fn reset(&self, now_us: u64) {
        let _guard = self.rollover.lock();
        for bucket in self.buckets.iter() {
            bucket.take();
        }
        self.total.take();
        self.head
            .fetch_max(now_us / self.bucket_us, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn code() -> impl Strategy<Value = u8> {
        prop_oneof![
            Just(CALL),
            Just(CALL | FAILURE),
            Just(CALL | SLOW),
            Just(CALL | FAILURE | SLOW)
        ]
    }

    fn recount(codes: &[u8]) -> WindowCounts {
        let mut counts = WindowCounts::default();
        codes.iter().for_each(|c| counts.add(*c));
        counts
    }

    proptest! {
        #[test]
        fn count_window_equals_a_recount_of_the_last_n(
            size in 1u32..40,
            codes in proptest::collection::vec(code(), 0..300),
        ) {
            let window = CountWindow::new(size);
            for (i, c) in codes.iter().enumerate() {
                let changed = window.record(*c, 0);
                let expected = recount(&codes[(i + 1).saturating_sub(size as usize)..=i]);
                prop_assert_eq!(window.counts(), expected);
                if let Some(reported) = changed {
                    prop_assert_eq!(reported, expected);
                }
            }
        }

        #[test]
        fn time_window_equals_a_recount_of_the_live_slices(
            bucket_us in 1u64..50,
            buckets in 1u32..12,
            steps in proptest::collection::vec((0u64..40, code()), 0..300),
        ) {
            let window = TimeWindow::new(bucket_us, buckets);
            let mut now = 0u64;
            let mut log: Vec<(u64, u8)> = Vec::new();
            for (dt, c) in steps {
                now += dt;
                window.record(c, now, 0);
                log.push((now, c));
                let slice = now / bucket_us;
                let live: Vec<u8> = log
                    .iter()
                    .filter(|(t, _)| t / bucket_us + u64::from(buckets) > slice)
                    .map(|(_, c)| *c)
                    .collect();
                prop_assert_eq!(window.counts(now), recount(&live));
            }
        }
    }

    #[test]
    fn a_success_replacing_a_success_writes_nothing() {
        let window = CountWindow::new(2);
        assert!(window.record(CALL, 0).is_some());
        assert!(window.record(CALL, 0).is_some());
        assert_eq!(window.record(CALL, 0), None);
        assert_eq!(
            window.record(CALL | FAILURE, 0),
            Some(WindowCounts {
                calls: 2,
                failures: 1,
                slow: 0
            })
        );
    }

    #[test]
    fn a_hint_lives_as_long_as_its_failure_stays_in_the_window() {
        let window = CountWindow::new(3);
        window.record(CALL | FAILURE, 9_000);
        window.record(CALL | FAILURE, 4_000);
        assert_eq!(window.hint_until(), 9_000);
        window.record(CALL, 0);
        assert_eq!(
            window.hint_until(),
            9_000,
            "both failures are still among the last 3"
        );
        window.record(CALL, 0);
        assert_eq!(
            window.hint_until(),
            4_000,
            "the first failure left, its hint with it"
        );
        window.record(CALL, 0);
        assert_eq!(window.hint_until(), 0);
        // A failure without a hint that replaces one with a hint clears it.
        window.record(CALL | FAILURE, 7_000);
        window.record(CALL, 0);
        window.record(CALL, 0);
        window.record(CALL | FAILURE, 0);
        assert_eq!(window.hint_until(), 0);

        let window = TimeWindow::new(100, 10);
        window.record(CALL | FAILURE, 0, 50_000);
        window.record(CALL | FAILURE, 500, 20_000);
        assert_eq!(window.hint_until(999), 50_000);
        assert_eq!(
            window.hint_until(1_000),
            20_000,
            "the first slice left the window"
        );
        assert_eq!(window.hint_until(1_500), 0);
    }

    #[test]
    fn a_half_applied_aggregate_reads_as_no_counts() {
        let window = CountWindow::new(4);
        let word = |calls: u64, failures: u64, slow: u64| {
            calls | failures << FIELD_BITS | slow << (2 * FIELD_BITS)
        };
        assert_eq!(
            window.decode(word(4, 2, 1)),
            Some(WindowCounts {
                calls: 4,
                failures: 2,
                slow: 1
            })
        );
        assert_eq!(
            window.decode(word(5, 0, 0)),
            None,
            "more calls than the window holds"
        );
        assert_eq!(
            window.decode(word(2, 3, 0)),
            None,
            "more failures than calls"
        );
        assert_eq!(
            window.decode(word(2, 0, 3)),
            None,
            "more slow calls than calls"
        );
    }

    #[test]
    fn a_time_counter_caught_below_zero_reads_as_zero() {
        let counters = Counters::default();
        counters.add(CALL | FAILURE | SLOW, 0);
        counters.add(CALL | FAILURE | SLOW, 0);
        assert_eq!(
            counters.read(),
            WindowCounts {
                calls: 2,
                failures: 2,
                slow: 2
            }
        );
        // An expired slice subtracted before the addition it contains has landed.
        counters.subtract([3, 0, 0]);
        assert_eq!(
            counters.read(),
            WindowCounts::default(),
            "no calls, so no failures or slow calls either"
        );
    }

    #[test]
    fn a_slice_expires_exactly_at_the_window_edge() {
        // 10 slices of 100 µs: a call at t = 0 counts until t = 999 µs and not at 1000 µs.
        let window = TimeWindow::new(100, 10);
        window.record(CALL | FAILURE, 0, 0);
        window.record(CALL, 950, 0);
        assert_eq!(window.counts(999).failures, 1);
        assert_eq!(window.counts(999).calls, 2);
        assert_eq!(
            window.counts(1000),
            WindowCounts {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
        assert_eq!(window.counts(1899).calls, 1);
        assert_eq!(window.counts(1900).calls, 0);
    }
}
