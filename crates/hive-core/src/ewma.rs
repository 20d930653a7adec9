//! [`AtomicEwma`]: a moving average that many threads update without a lock.

use std::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
};

/// An exponentially weighted moving average in one atomic word: each sample moves it by
/// `weight` of the difference. Empty until the first sample, which it takes as is.
pub struct AtomicEwma {
    bits: AtomicU64,
    weight: f64,
}

impl AtomicEwma {
    /// An empty average; `weight` in (0, 1] is the share of each new sample.
    pub fn new(weight: f64) -> Self {
        Self::starting_at(weight, f64::NAN)
    }

    /// An average that starts at `value`, as if that had been observed.
    pub fn starting_at(weight: f64, value: f64) -> Self {
        Self {
            bits: AtomicU64::new(value.to_bits()),
            weight,
        }
    }

    /// Adds a sample; returns the new average.
    pub fn record(&self, sample: f64) -> f64 {
        let mut bits = self.bits.load(Ordering::Acquire);
        loop {
            let old = f64::from_bits(bits);
            let new = if old.is_nan() {
                sample
            } else {
                old + self.weight * (sample - old)
            };
            match self.bits.compare_exchange_weak(
                bits,
                new.to_bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return new,
                Err(actual) => bits = actual,
            }
        }
    }

    /// The average, if any sample was recorded (or it started at a value).
    pub fn get(&self) -> Option<f64> {
        let value = f64::from_bits(self.bits.load(Ordering::Acquire));
        (!value.is_nan()).then_some(value)
    }
}

impl fmt::Debug for AtomicEwma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtomicEwma")
            .field("value", &self.get())
            .field("weight", &self.weight)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sample_is_taken_as_is_then_weighted() {
        let ewma = AtomicEwma::new(0.5);
        assert_eq!(ewma.get(), None);
        assert_eq!(ewma.record(10.0), 10.0);
        assert_eq!(ewma.record(20.0), 15.0);
        assert_eq!(AtomicEwma::starting_at(0.25, 1.0).record(0.0), 0.75);
    }
}
