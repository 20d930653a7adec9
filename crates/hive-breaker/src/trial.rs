//! The half-open trial: the probes' results in one word, and the verdict they give.
//!
//! The word packs the results counted so far (calls, failures, slow calls: 10 bits each, as
//! permits are at most 1000) and the low 32 bits of the generation they belong to, so a
//! result of an older trial can never count in a newer one.

use hive_core::CircuitState;

use crate::window::WindowCounts;

const FIELD: u64 = 0x3FF;

/// Packs the counts of a trial of `generation`.
pub(crate) const fn pack(generation: u64, counts: WindowCounts) -> u64 {
    (generation & 0xFFFF_FFFF) << 32 | counts.slow << 20 | counts.failures << 10 | counts.calls
}

/// The generation (low 32 bits) a trial word belongs to.
pub(crate) const fn generation_of(word: u64) -> u64 {
    word >> 32
}

/// The counts of a trial word.
pub(crate) const fn counts_of(word: u64) -> WindowCounts {
    WindowCounts {
        calls: word & FIELD,
        failures: (word >> 10) & FIELD,
        slow: (word >> 20) & FIELD,
    }
}

/// The rule a trial is judged by.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Judge {
    /// Probes in the trial.
    pub(crate) permits: u64,
    pub(crate) failure_rate_threshold: f64,
    /// The slow-call threshold, when slow calls are detected.
    pub(crate) slow_call_rate_threshold: Option<f64>,
}

impl Judge {
    /// The verdict of a trial whose results so far are `counts`, as soon as it is certain:
    /// `Open` once the failures (or slow calls) already reach the threshold over all the
    /// probes, whatever the others do; `Closed` once they cannot reach it even if every
    /// probe still out fails; `None` while it depends on the probes still out.
    pub(crate) fn verdict(&self, counts: WindowCounts) -> Option<CircuitState> {
        let permits = self.permits as f64;
        let out = self.permits.saturating_sub(counts.calls);
        let reaches = |part: u64, threshold: f64| part as f64 / permits >= threshold;
        let slow = |part: u64| {
            self.slow_call_rate_threshold
                .is_some_and(|threshold| reaches(part, threshold))
        };
        if reaches(counts.failures, self.failure_rate_threshold) || slow(counts.slow) {
            return Some(CircuitState::Open);
        }
        if !reaches(counts.failures + out, self.failure_rate_threshold) && !slow(counts.slow + out)
        {
            return Some(CircuitState::Closed);
        }
        None
    }

    /// The verdict once the trial's time is up: the probes still out count as failed (they
    /// did not show the model back in time).
    pub(crate) fn verdict_at_expiry(&self, counts: WindowCounts) -> (CircuitState, WindowCounts) {
        let out = self.permits.saturating_sub(counts.calls);
        let all = WindowCounts {
            calls: self.permits,
            failures: counts.failures + out,
            slow: counts.slow,
        };
        (self.verdict(all).unwrap_or(CircuitState::Open), all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(calls: u64, failures: u64, slow: u64) -> WindowCounts {
        WindowCounts {
            calls,
            failures,
            slow,
        }
    }

    fn judge(permits: u64, threshold: f64) -> Judge {
        Judge {
            permits,
            failure_rate_threshold: threshold,
            slow_call_rate_threshold: None,
        }
    }

    #[test]
    fn the_verdict_comes_as_soon_as_it_is_certain() {
        let j = judge(3, 0.5);
        assert_eq!(
            j.verdict(counts(1, 1, 0)),
            None,
            "1 of 3 failed: 33% so far"
        );
        assert_eq!(
            j.verdict(counts(2, 2, 0)),
            Some(CircuitState::Open),
            "2 of 3 failed: at least 67% whatever the third does"
        );
        assert_eq!(j.verdict(counts(1, 0, 0)), None, "the other two could fail");
        assert_eq!(
            j.verdict(counts(2, 0, 0)),
            Some(CircuitState::Closed),
            "at most 33% even if the third fails"
        );
        assert_eq!(j.verdict(counts(2, 1, 0)), None);
        assert_eq!(j.verdict(counts(3, 1, 0)), Some(CircuitState::Closed));
        // One probe decides alone.
        let one = judge(1, 0.5);
        assert_eq!(one.verdict(counts(1, 1, 0)), Some(CircuitState::Open));
        assert_eq!(one.verdict(counts(1, 0, 0)), Some(CircuitState::Closed));
        assert_eq!(one.verdict(counts(0, 0, 0)), None);
    }

    #[test]
    fn a_rate_equal_to_the_threshold_opens() {
        let j = judge(4, 0.5);
        assert_eq!(j.verdict(counts(2, 2, 0)), Some(CircuitState::Open));
        assert_eq!(j.verdict(counts(3, 1, 0)), None, "the fourth decides");
        assert_eq!(j.verdict(counts(4, 1, 0)), Some(CircuitState::Closed));
    }

    #[test]
    fn slow_probes_decide_too() {
        let j = Judge {
            permits: 2,
            failure_rate_threshold: 1.0,
            slow_call_rate_threshold: Some(0.5),
        };
        assert_eq!(j.verdict(counts(1, 0, 1)), Some(CircuitState::Open));
        assert_eq!(j.verdict(counts(1, 0, 0)), None);
        assert_eq!(j.verdict(counts(2, 0, 0)), Some(CircuitState::Closed));
    }

    #[test]
    fn probes_still_out_at_expiry_count_as_failed() {
        let j = judge(3, 0.5);
        assert_eq!(
            j.verdict_at_expiry(counts(0, 0, 0)),
            (CircuitState::Open, counts(3, 3, 0))
        );
        assert_eq!(
            j.verdict_at_expiry(counts(2, 0, 0)).0,
            CircuitState::Closed,
            "one hung probe of three cannot reach 50%"
        );
        assert_eq!(j.verdict_at_expiry(counts(1, 0, 0)).0, CircuitState::Open);
    }

    #[test]
    fn words_round_trip() {
        let c = counts(7, 3, 2);
        let word = pack(0x1_2345_6789, c);
        assert_eq!(counts_of(word), c);
        assert_eq!(generation_of(word), 0x2345_6789);
    }
}
