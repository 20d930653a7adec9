//! Backoff delays: exponential with a cap, and the jitter that spreads retries apart.

use std::time::Duration;

/// How a computed delay is randomised so that many clients do not retry in step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Jitter {
    /// The exact exponential delay.
    None,
    /// Uniform in `[0, delay]` ("full jitter", AWS architecture blog).
    Full,
    /// Uniform in `[delay·(1−f), delay·(1+f)]`, capped; `f` in `[0, 1]`.
    Proportional(f64),
    /// Uniform in `[base, 3·previous]`, capped ("decorrelated jitter"); ignores the
    /// multiplier. The first previous delay is `base`.
    Decorrelated,
}

/// Exponential backoff: `base · multiplier^(n−1)` before retry `n`, never above `max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub(crate) base: Duration,
    pub(crate) multiplier: f64,
    pub(crate) max: Duration,
    pub(crate) jitter: Jitter,
}

impl Backoff {
    /// The delay before retry number `retry` (the first retry is 1), given the previous delay
    /// (for decorrelated jitter) and a uniform random number in `[0, 1)`.
    pub(crate) fn delay(&self, retry: u32, previous: Duration, unit: f64) -> Duration {
        let base = self.base.as_secs_f64();
        let max = self.max.as_secs_f64();
        let nominal = || {
            let exp = base
                * self
                    .multiplier
                    .powi(retry.saturating_sub(1).min(1024) as i32);
            if exp.is_finite() { exp.min(max) } else { max }
        };
        let secs = match self.jitter {
            Jitter::None => nominal(),
            Jitter::Full => nominal() * unit,
            Jitter::Proportional(f) => (nominal() * (1.0 - f + 2.0 * f * unit)).min(max),
            Jitter::Decorrelated => {
                let high = (previous.as_secs_f64() * 3.0).max(base);
                (base + (high - base) * unit).min(max)
            }
        };
        Duration::from_secs_f64(secs.clamp(0.0, max))
    }
}

#[cfg(test)]
mod tests {
    use hive_core::unit_from as unit;
    use proptest::prelude::*;

    use super::*;

    fn backoff(jitter: Jitter) -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_secs(2),
            jitter,
        }
    }

    #[test]
    fn exponential_without_jitter_doubles_then_caps() {
        let b = backoff(Jitter::None);
        let got: Vec<u128> = (1..=7)
            .map(|n| b.delay(n, Duration::ZERO, 0.5).as_millis())
            .collect();
        assert_eq!(got, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(
            b.delay(u32::MAX, Duration::ZERO, 0.5),
            Duration::from_secs(2)
        );
    }

    /// A delay in whole milliseconds (the float arithmetic may land a nanosecond off).
    fn ms(d: Duration) -> u128 {
        (d.as_secs_f64() * 1000.0).round() as u128
    }

    #[test]
    fn full_jitter_scales_the_exponential_delay_by_the_random_unit() {
        let b = backoff(Jitter::Full);
        assert_eq!(ms(b.delay(3, Duration::ZERO, 0.0)), 0);
        assert_eq!(
            ms(b.delay(3, Duration::ZERO, 0.25)),
            100,
            "a quarter of 400 ms"
        );
        assert_eq!(
            ms(b.delay(9, Duration::ZERO, 0.5)),
            1000,
            "half of the 2 s cap"
        );
    }

    #[test]
    fn proportional_jitter_spreads_the_delay_evenly_around_the_exponential_one() {
        // Retry 2: 200 ms nominal; with f = 0.5 the factor runs from 0.5 to 1.5.
        let b = backoff(Jitter::Proportional(0.5));
        assert_eq!(ms(b.delay(2, Duration::ZERO, 0.0)), 100);
        assert_eq!(ms(b.delay(2, Duration::ZERO, 0.5)), 200);
        assert_eq!(ms(b.delay(2, Duration::ZERO, 0.75)), 250);
        assert_eq!(
            ms(b.delay(6, Duration::ZERO, 0.75)),
            2000,
            "2 s nominal (capped) × 1.25, capped again"
        );
        let none = backoff(Jitter::Proportional(0.0));
        assert_eq!(ms(none.delay(2, Duration::ZERO, 0.9)), 200, "f = 0: exact");
    }

    #[test]
    fn decorrelated_jitter_draws_between_base_and_three_times_the_previous_delay() {
        let b = backoff(Jitter::Decorrelated);
        let previous = Duration::from_millis(400);
        assert_eq!(ms(b.delay(5, previous, 0.0)), 100, "the base");
        assert_eq!(ms(b.delay(5, previous, 0.5)), 650, "midway to 1200 ms");
        assert_eq!(
            ms(b.delay(5, Duration::from_millis(10), 0.5)),
            100,
            "never under the base"
        );
        assert_eq!(
            ms(b.delay(1, Duration::from_secs(1), 0.9)),
            2000,
            "capped: 100 + 0.9 × 2900 ms is over 2 s"
        );
    }

    proptest! {
        #[test]
        fn jitter_stays_in_its_bounds(seed: u64, retry in 1u32..20, f in 0.0f64..=1.0) {
            let mut rng = seed;
            let nominal = backoff(Jitter::None).delay(retry, Duration::ZERO, 0.0);
            let full = backoff(Jitter::Full).delay(retry, Duration::ZERO, unit(&mut rng));
            prop_assert!(full <= nominal);
            let p = backoff(Jitter::Proportional(f)).delay(retry, Duration::ZERO, unit(&mut rng));
            let low = nominal.as_secs_f64() * (1.0 - f) - 1e-9;
            prop_assert!(p.as_secs_f64() >= low.min(2.0) && p <= Duration::from_secs(2));
            let mut previous = Duration::from_millis(100);
            for _ in 0..10 {
                let d = backoff(Jitter::Decorrelated).delay(retry, previous, unit(&mut rng));
                prop_assert!(d >= Duration::from_millis(100) - Duration::from_nanos(1));
                prop_assert!(d <= (previous * 3).max(Duration::from_millis(100)).min(Duration::from_secs(2)));
                previous = d;
            }
        }
    }
}
