//! [`LatencySketch`]: a latency histogram in log-linear buckets (hive-monitor's layout: 8
//! sub-buckets per power of two of microseconds), mergeable by adding, stored as a few
//! bytes per bucket in use.

use std::{collections::BTreeMap, time::Duration};

use crate::histogram::{BUCKETS, bucket_of, quantile_nanos};

/// Latencies of one model's answers over one or more minutes: counts per log-linear bucket
/// (within 6.25% of the value), only the buckets in use. Merge sketches by adding them;
/// read percentiles with [`quantile_ms`](Self::quantile_ms).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencySketch {
    counts: BTreeMap<u8, u64>,
}

impl LatencySketch {
    /// Counts one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = u8::try_from(bucket_of(micros)).unwrap_or(u8::MAX);
        *self.counts.entry(bucket).or_default() += 1;
    }

    /// Latencies counted.
    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Adds `other`'s latencies to these.
    pub fn merge(&mut self, other: &LatencySketch) {
        for (bucket, n) in &other.counts {
            *self.counts.entry(*bucket).or_default() += n;
        }
    }

    /// The latency in milliseconds under which `quantile` (0 to 1) of the latencies fell,
    /// within 6.25%: the middle of the bucket where that rank falls. `None` when empty.
    pub fn quantile_ms(&self, quantile: f64) -> Option<f64> {
        let counts = self.counts.iter().map(|(b, n)| (usize::from(*b), *n));
        quantile_nanos(counts, quantile).map(|nanos| nanos as f64 / 1e6)
    }

    /// The stored form: for every bucket in use, its index (one byte) and its count
    /// (LEB128), in bucket order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.counts.len() * 3);
        for (bucket, n) in &self.counts {
            bytes.push(*bucket);
            let mut n = *n;
            loop {
                let low = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    bytes.push(low);
                    break;
                }
                bytes.push(low | 0x80);
            }
        }
        bytes
    }

    /// Reads the stored form back; `None` if it is malformed.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut counts = BTreeMap::new();
        let mut bytes = bytes.iter();
        while let Some(&bucket) = bytes.next() {
            if usize::from(bucket) >= BUCKETS {
                return None;
            }
            let mut n: u64 = 0;
            let mut shift = 0;
            loop {
                let byte = *bytes.next()?;
                if shift > 63 {
                    return None;
                }
                n |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            *counts.entry(bucket).or_default() += n;
        }
        Some(Self { counts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_sixteenth_and_survive_storage() {
        let mut sketch = LatencySketch::default();
        for ms in 1..=1000 {
            sketch.record(Duration::from_millis(ms));
        }
        let stored = LatencySketch::from_bytes(&sketch.to_bytes()).unwrap();
        assert_eq!(stored, sketch);
        for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = stored.quantile_ms(q).unwrap();
            assert!((got - exact).abs() / exact <= 0.0625, "p{q}: {got} ms");
        }
        assert_eq!(LatencySketch::default().quantile_ms(0.5), None);
        assert_eq!(LatencySketch::from_bytes(&[250, 1]), None);
        assert_eq!(LatencySketch::from_bytes(&[3, 0x80]), None);
    }

    #[test]
    fn merging_adds() {
        let (mut a, mut b) = (LatencySketch::default(), LatencySketch::default());
        a.record(Duration::from_millis(10));
        b.record(Duration::from_millis(10));
        b.record(Duration::from_secs(10));
        a.merge(&b);
        assert_eq!(a.count(), 3);
        let p99 = a.quantile_ms(0.99).unwrap();
        assert!(p99 > 9000.0 && p99 < 11000.0);
    }
}
