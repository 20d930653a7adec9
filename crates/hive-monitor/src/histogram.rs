//! A latency histogram of atomic counters in log-linear buckets (HdrHistogram's layout):
//! lock-free to record, mergeable by adding, and good for percentiles within 6.25%.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// Sub-buckets per power of two: 8, so a bucket spans at most 1/8 of its lower bound.
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Values (in µs) from 0 to 2^32 µs (71 minutes); longer ones count in the last bucket.
const MAX_OCTAVE: u32 = 31;
/// The number of buckets (240: a bucket's index fits a byte).
pub const BUCKETS: usize = ((MAX_OCTAVE - SUB_BITS + 2) as usize) * SUB as usize;

/// The bucket of a value in µs.
pub fn bucket_of(micros: u64) -> usize {
    if micros < SUB {
        return micros as usize;
    }
    let octave = (63 - micros.leading_zeros()).min(MAX_OCTAVE);
    if octave == MAX_OCTAVE && micros >> MAX_OCTAVE > 1 {
        return BUCKETS - 1;
    }
    let mantissa = micros >> (octave - SUB_BITS);
    ((octave - SUB_BITS + 1) as u64 * SUB + (mantissa - SUB)) as usize
}

/// The values (in µs) a bucket holds: from its lower bound to below its upper bound.
pub fn bucket_range(bucket: usize) -> (u64, u64) {
    let bucket = bucket as u64;
    if bucket < SUB {
        return (bucket, bucket + 1);
    }
    let octave = bucket / SUB - 1 + u64::from(SUB_BITS);
    let mantissa = bucket % SUB + SUB;
    let shift = octave - u64::from(SUB_BITS);
    (mantissa << shift, (mantissa + 1) << shift)
}

/// Counts per bucket, added to atomically.
#[derive(Debug)]
pub(crate) struct AtomicHistogram {
    counts: Box<[AtomicU64]>,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl AtomicHistogram {
    pub(crate) fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn clear(&self) {
        for count in self.counts.iter() {
            count.store(0, Ordering::Relaxed);
        }
    }

    /// Adds these counts into `into`.
    pub(crate) fn add_to(&self, into: &mut Histogram) {
        for (sum, count) in into.counts.iter_mut().zip(self.counts.iter()) {
            *sum += count.load(Ordering::Relaxed);
        }
    }
}

/// A histogram read out of atomic ones, merged, ready for percentiles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
        }
    }
}

impl Histogram {
    /// Samples counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds `other`'s samples to these.
    pub fn merge(&mut self, other: &Histogram) {
        for (sum, count) in self.counts.iter_mut().zip(&other.counts) {
            *sum += count;
        }
    }

    /// The latency under which `quantile` (0 to 1) of the samples fell, within 6.25%:
    /// the middle of the bucket where that rank falls. `None` without samples.
    pub fn quantile(&self, quantile: f64) -> Option<Duration> {
        let counts = self.counts.iter().enumerate().map(|(b, n)| (b, *n));
        quantile_nanos(counts, quantile).map(Duration::from_nanos)
    }
}

/// The latency in nanoseconds under which `quantile` (0 to 1) of the samples fell, within 6.25%: the
/// middle of the bucket where that rank falls, from `(bucket, count)` pairs in bucket
/// order. `None` without samples.
pub fn quantile_nanos(
    counts: impl Iterator<Item = (usize, u64)> + Clone,
    quantile: f64,
) -> Option<u64> {
    let total: u64 = counts.clone().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = ((quantile.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    let bucket = counts
        .into_iter()
        .find(|(_, n)| {
            seen += n;
            seen >= rank
        })
        .map_or(BUCKETS - 1, |(bucket, _)| bucket);
    let (low, high) = bucket_range(bucket);
    Some((low + high) * 500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range_and_hold_their_values() {
        let mut expected_low = 0;
        for bucket in 0..BUCKETS {
            let (low, high) = bucket_range(bucket);
            assert_eq!(
                low, expected_low,
                "bucket {bucket} starts where the last ended"
            );
            assert!(high > low);
            if bucket >= SUB as usize {
                assert!(
                    (high - low) * SUB <= low,
                    "bucket {bucket} is at most 1/8 wide"
                );
            }
            assert_eq!(bucket_of(low), bucket);
            assert_eq!(bucket_of(high - 1), bucket);
            expected_low = high;
        }
        assert_eq!(expected_low, 1 << (MAX_OCTAVE + 1));
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_a_sixteenth() {
        let live = AtomicHistogram::default();
        for ms in 1..=1000 {
            live.record(Duration::from_millis(ms));
        }
        let mut h = Histogram::default();
        live.add_to(&mut h);
        assert_eq!(h.count(), 1000);
        for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = h.quantile(q).unwrap().as_secs_f64() * 1000.0;
            assert!((got - exact).abs() / exact <= 0.0625, "p{q}: {got} ms");
        }
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn merging_adds_the_samples() {
        let (a, b) = (AtomicHistogram::default(), AtomicHistogram::default());
        a.record(Duration::from_millis(10));
        b.record(Duration::from_millis(10));
        b.record(Duration::from_secs(10));
        let mut merged = Histogram::default();
        a.add_to(&mut merged);
        b.add_to(&mut merged);
        assert_eq!(merged.count(), 3);
        let p99 = merged.quantile(0.99).unwrap();
        assert!(p99 > Duration::from_secs(9) && p99 < Duration::from_secs(11));
        a.clear();
        let mut after = Histogram::default();
        a.add_to(&mut after);
        assert_eq!(after.count(), 0);
    }
}
