//! Exact latency percentiles: every sample is kept, sorted once, and read by nearest rank.

use std::{fmt::Write as _, time::Duration};

use serde_json::{Value, json};

/// A set of durations, in nanoseconds, sorted once it is summarised.
#[derive(Debug, Default)]
pub(crate) struct Samples(Vec<u64>);

impl Samples {
    /// Adds one duration (saturating at `u64::MAX` ns, about 584 years).
    pub(crate) fn push(&mut self, d: Duration) {
        self.0.push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds every sample of `other`.
    pub(crate) fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    /// Sorts the samples and reads the percentiles; `None` without samples.
    pub(crate) fn summary(mut self) -> Option<Summary> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let sorted = &self.0;
        let sum: u128 = sorted.iter().map(|&n| u128::from(n)).sum();
        let mean = u64::try_from(sum / sorted.len() as u128).unwrap_or(u64::MAX);
        Some(Summary {
            count: sorted.len(),
            min: sorted[0],
            p50: rank(sorted, 0.50),
            p90: rank(sorted, 0.90),
            p99: rank(sorted, 0.99),
            p999: rank(sorted, 0.999),
            max: sorted[sorted.len() - 1],
            mean,
        })
    }
}

/// The nearest-rank percentile `p` (0 < p ≤ 1) of a sorted, non-empty slice: the smallest
/// sample with at least `p` of the samples at or below it.
fn rank(sorted: &[u64], p: f64) -> u64 {
    let n = sorted.len();
    // ceil(p·n) is between 1 and n for 0 < p ≤ 1 and n ≥ 1.
    let at = ((p * n as f64).ceil() as usize).clamp(1, n);
    sorted[at - 1]
}

/// Percentiles of a [`Samples`], in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Summary {
    /// How many samples.
    pub(crate) count: usize,
    /// The smallest.
    pub(crate) min: u64,
    /// The median.
    pub(crate) p50: u64,
    /// The 90th percentile.
    pub(crate) p90: u64,
    /// The 99th percentile.
    pub(crate) p99: u64,
    /// The 99.9th percentile.
    pub(crate) p999: u64,
    /// The largest.
    pub(crate) max: u64,
    /// The mean, rounded down.
    pub(crate) mean: u64,
}

impl Summary {
    /// The summary in microseconds, as JSON.
    pub(crate) fn to_json(self) -> Value {
        let us = |ns: u64| (ns as f64 / 1_000.0 * 10.0).round() / 10.0;
        json!({
            "count": self.count,
            "min_us": us(self.min),
            "mean_us": us(self.mean),
            "p50_us": us(self.p50),
            "p90_us": us(self.p90),
            "p99_us": us(self.p99),
            "p999_us": us(self.p999),
            "max_us": us(self.max),
        })
    }

    /// One line of the table: `name  p50 … max`.
    pub(crate) fn line(self, out: &mut String, name: &str) {
        let _ = writeln!(
            out,
            "  {name:<10} p50 {:>9}  p90 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}  mean {:>9}",
            human(self.p50),
            human(self.p90),
            human(self.p99),
            human(self.p999),
            human(self.max),
            human(self.mean),
        );
    }
}

/// A duration in nanoseconds, written with a unit that keeps three or four figures.
pub(crate) fn human(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1_000.0 {
        format!("{ns:.0}ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1}µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2}ms", ns / 1e6)
    } else {
        format!("{:.2}s", ns / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut samples = Samples::default();
        for n in 1..=1000u64 {
            samples.push(Duration::from_nanos(1001 - n));
        }
        let s = samples.summary().unwrap();
        assert_eq!(
            (s.min, s.p50, s.p99, s.p999, s.max),
            (1, 500, 990, 999, 1000)
        );
        assert_eq!(s.mean, 500);
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let mut samples = Samples::default();
        samples.push(Duration::from_micros(7));
        let s = samples.summary().unwrap();
        assert_eq!((s.p50, s.p999, s.max), (7_000, 7_000, 7_000));
        assert!(Samples::default().summary().is_none());
    }
}
