//! Live statistics of one route: success-rate and latency EWMAs (for weighted routing) and a
//! latency histogram (for hedging at a percentile). Atomics only.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use hive_core::AtomicEwma;

/// Weight of the newest result in the EWMAs.
const WEIGHT: f64 = 0.2;
/// Histogram buckets: four per power of two of microseconds, up to 2^24 µs (16.8 s).
const SUB: u32 = 4;
const OCTAVES: u32 = 24;
const BUCKETS: usize = (SUB * OCTAVES) as usize + 1;
/// Past this many samples the histogram halves itself, so it follows recent traffic.
const DECAY_AT: u64 = 8_192;

/// The live statistics of one model as routers see it: success-rate and latency EWMAs (for
/// weighted routing) and a latency histogram (for hedging at a percentile). Atomics only;
/// share one between the routes of a model with [`Route::stats`](crate::Route::stats).
#[derive(Debug)]
pub struct RouteStats {
    success: AtomicEwma,
    latency_secs: AtomicEwma,
    buckets: [AtomicU64; BUCKETS],
    samples: AtomicU64,
}

impl Default for RouteStats {
    fn default() -> Self {
        Self {
            success: AtomicEwma::starting_at(WEIGHT, 1.0),
            latency_secs: AtomicEwma::new(WEIGHT),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            samples: AtomicU64::new(0),
        }
    }
}

fn bucket_of(latency: Duration) -> usize {
    let micros = latency.as_micros().clamp(1, 1 << OCTAVES) as u64;
    let octave = 63 - micros.leading_zeros();
    // Which quarter of the octave [2^o, 2^(o+1)) the value falls in.
    let within = ((micros - (1 << octave)) * u64::from(SUB)) >> octave;
    ((octave * SUB) as usize + within as usize).min(BUCKETS - 1)
}

/// The upper bound of a bucket.
fn bucket_limit(bucket: usize) -> Duration {
    let octave = bucket as u32 / SUB;
    let within = (bucket as u32 % SUB) as f64;
    let base = f64::from(1u32 << octave.min(31));
    Duration::from_secs_f64(base * (1.0 + (within + 1.0) / f64::from(SUB)) / 1e6)
}

impl RouteStats {
    /// Records one attempt's result.
    pub(crate) fn record(&self, answered: bool, latency: Duration) {
        self.success.record(if answered { 1.0 } else { 0.0 });
        if answered {
            self.latency_secs.record(latency.as_secs_f64());
            self.buckets[bucket_of(latency)].fetch_add(1, Ordering::Relaxed);
            if self.samples.fetch_add(1, Ordering::Relaxed) + 1 >= DECAY_AT {
                self.samples.store(0, Ordering::Relaxed);
                for bucket in &self.buckets {
                    let _ =
                        bucket.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n / 2));
                }
            }
        }
    }

    /// Success rate EWMA (starts at 1).
    pub fn success_rate(&self) -> f64 {
        self.success.get().unwrap_or(1.0)
    }

    /// Latency EWMA of answers, if any.
    pub fn latency(&self) -> Option<Duration> {
        self.latency_secs
            .get()
            .map(|secs| Duration::from_secs_f64(secs.max(0.0)))
    }

    /// The routing score: success rate per second of latency (an unmeasured route counts as
    /// answering in 100 ms, so it gets tried).
    pub(crate) fn score(&self) -> f64 {
        let latency = self.latency().map_or(0.1, |l| l.as_secs_f64()).max(0.001);
        self.success_rate().max(0.001) / latency
    }

    /// The latency under which `percentile` (0..1) of the recorded answers fell, once at
    /// least `min_samples` are recorded.
    pub fn percentile(&self, percentile: f64, min_samples: u64) -> Option<Duration> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 || total < min_samples {
            return None;
        }
        let target = ((percentile * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (bucket, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= target {
                return Some(bucket_limit(bucket));
            }
        }
        Some(bucket_limit(BUCKETS - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_samples_within_a_quarter_octave() {
        for micros in [1u64, 2, 3, 7, 100, 1_000, 12_345, 999_999, 5_000_000] {
            let latency = Duration::from_micros(micros);
            let limit = bucket_limit(bucket_of(latency));
            assert!(limit > latency, "{micros} µs -> {limit:?}");
            assert!(
                limit.as_secs_f64() <= latency.as_secs_f64() * 1.5 + 1e-6,
                "{micros} µs -> {limit:?}"
            );
        }
    }

    #[test]
    fn percentiles_follow_the_samples() {
        let stats = RouteStats::default();
        assert_eq!(stats.percentile(0.9, 1), None);
        for ms in 1..=100 {
            stats.record(true, Duration::from_millis(ms));
        }
        let p50 = stats.percentile(0.5, 10).unwrap();
        let p90 = stats.percentile(0.9, 10).unwrap();
        assert!(
            (Duration::from_millis(50)..=Duration::from_millis(64)).contains(&p50),
            "{p50:?}"
        );
        assert!(
            (Duration::from_millis(90)..=Duration::from_millis(112)).contains(&p90),
            "{p90:?}"
        );
        assert_eq!(stats.percentile(0.9, 101), None, "too few samples");
    }

    #[test]
    fn scores_prefer_fast_reliable_routes() {
        let (fast, slow, failing) = (
            RouteStats::default(),
            RouteStats::default(),
            RouteStats::default(),
        );
        for _ in 0..20 {
            fast.record(true, Duration::from_millis(100));
            slow.record(true, Duration::from_millis(400));
            failing.record(false, Duration::from_millis(100));
        }
        failing.record(true, Duration::from_millis(100));
        assert!(fast.score() > slow.score());
        assert!(slow.score() > failing.score());
        assert!((fast.score() / slow.score() - 4.0).abs() < 0.01);
    }
}
