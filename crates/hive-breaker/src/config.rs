//! Validated breaker settings and their builder.

use std::time::Duration;

use hive_core::{ConfigError, EventSink, ModelId, check_duration};

/// How the breaker remembers recent calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `size` calls.
    Count {
        /// Number of calls remembered.
        size: u32,
    },
    /// The calls of the last `duration`, kept in `buckets` equal slices; a slice leaves the
    /// window as a whole, exactly `duration` after the start of the slice.
    Time {
        /// Length of the window.
        duration: Duration,
        /// Number of slices (at least 1; `duration` must split into whole microseconds).
        buckets: u32,
    },
}

/// How long the breaker stays open before it lets probes through.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OpenDuration {
    /// Always the same.
    Fixed(Duration),
    /// `base` after the first opening, multiplied by `multiplier` for each reopening from
    /// half-open, never above `max`; back to `base` once the breaker closes.
    Growing {
        /// First open duration.
        base: Duration,
        /// Growth per consecutive reopening (at least 1).
        multiplier: f64,
        /// Upper bound.
        max: Duration,
    },
}

impl OpenDuration {
    /// The open duration of the `n`th consecutive opening (the first is 1).
    pub(crate) fn nth(&self, n: u32) -> Duration {
        match *self {
            Self::Fixed(d) => d,
            Self::Growing {
                base,
                multiplier,
                max,
            } => {
                let factor = multiplier.powi(n.saturating_sub(1).min(1024) as i32);
                let secs = base.as_secs_f64() * factor;
                if secs.is_finite() && secs < max.as_secs_f64() {
                    Duration::from_secs_f64(secs)
                } else {
                    max
                }
            }
        }
    }
}

/// The largest number of half-open permits (they share a word with the state).
pub const MAX_HALF_OPEN_PERMITS: u32 = 1000;
/// The largest count window, and the most calls a time window counts per slice.
pub const MAX_WINDOW_SIZE: u32 = 1_000_000;

/// Settings of one circuit breaker, validated by [`CircuitBreakerConfigBuilder::build`].
#[derive(Clone, Debug)]
pub struct CircuitBreakerConfig {
    pub(crate) model: ModelId,
    pub(crate) failure_rate_threshold: f64,
    pub(crate) slow_call_rate_threshold: f64,
    pub(crate) slow_call_duration: Option<Duration>,
    pub(crate) window: SlidingWindow,
    pub(crate) minimum_calls: u32,
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) open_duration: OpenDuration,
    pub(crate) max_retry_after_open: Duration,
    pub(crate) half_open_permits: u32,
    pub(crate) max_wait_in_half_open: Duration,
    pub(crate) events: EventSink,
    pub(crate) metrics: bool,
}

/// The defaults, each argued in [`CircuitBreakerConfig::builder`].
const DEFAULT_OPEN: OpenDuration = OpenDuration::Growing {
    base: Duration::from_secs(5),
    multiplier: 2.0,
    max: Duration::from_secs(30),
};

impl CircuitBreakerConfig {
    /// A builder with the defaults, chosen for model providers:
    ///
    /// * **Trip on 5 consecutive failures** (Envoy's `consecutive_5xx`), beside the rate
    ///   window: a dead model is cut off after a handful of failures instead of after the
    ///   window's minimum number of calls.
    /// * **A count window of 20 calls, at least 10, tripping at a 50% failure rate**
    ///   (Resilience4j's rate rule) for models that fail often without failing always. No
    ///   slow-call detection.
    /// * **A growing open duration: 5 s, doubling on each reopening, at most 30 s, back to
    ///   5 s once closed.** A blip costs seconds; a long outage is probed twice a minute.
    /// * **At least the provider's `Retry-After`**, when the failures that tripped the
    ///   breaker (those still in its window) carried one, **up to 5 minutes**.
    /// * **One half-open probe** (as Polly and Hystrix): a dead model gets one call per
    ///   break, and its verdict closes or reopens the breaker at once.
    /// * **At most 60 s in half-open**: a probe that never answers (a hung call, a stream
    ///   nobody reads) cannot hold the breaker half-open; the unanswered probe counts as
    ///   failed.
    pub fn builder() -> CircuitBreakerConfigBuilder {
        CircuitBreakerConfigBuilder {
            config: Self {
                model: ModelId::default(),
                failure_rate_threshold: 0.5,
                slow_call_rate_threshold: 1.0,
                slow_call_duration: None,
                window: SlidingWindow::Count { size: 20 },
                minimum_calls: 10,
                consecutive_failures: Some(5),
                open_duration: DEFAULT_OPEN,
                max_retry_after_open: Duration::from_secs(5 * 60),
                half_open_permits: 1,
                max_wait_in_half_open: Duration::from_secs(60),
                events: EventSink::none(),
                metrics: false,
            },
        }
    }

    /// The model this breaker guards.
    pub fn model(&self) -> &ModelId {
        &self.model
    }

    /// The sliding window.
    pub fn window(&self) -> SlidingWindow {
        self.window
    }

    /// The number of half-open permits, which is also the number of probe calls that decide.
    pub fn half_open_permits(&self) -> u32 {
        self.half_open_permits
    }

    /// How long the breaker stays open.
    pub fn open_duration(&self) -> OpenDuration {
        self.open_duration
    }

    /// The longest the breaker waits in half-open for its probes.
    pub fn max_wait_in_half_open(&self) -> Duration {
        self.max_wait_in_half_open
    }
}

/// Builds a [`CircuitBreakerConfig`]; every setter takes any value and
/// [`build`](Self::build) says which one is wrong.
#[derive(Clone, Debug)]
#[must_use]
pub struct CircuitBreakerConfigBuilder {
    config: CircuitBreakerConfig,
}

impl CircuitBreakerConfigBuilder {
    /// The model the breaker guards (named in events and errors).
    pub fn model(mut self, model: impl Into<ModelId>) -> Self {
        self.config.model = model.into();
        self
    }

    /// Failure rate in (0, 1] at or above which the breaker opens. Default 0.5.
    pub fn failure_rate_threshold(mut self, rate: f64) -> Self {
        self.config.failure_rate_threshold = rate;
        self
    }

    /// Slow-call rate in (0, 1] at or above which the breaker opens. Default 1.0.
    pub fn slow_call_rate_threshold(mut self, rate: f64) -> Self {
        self.config.slow_call_rate_threshold = rate;
        self
    }

    /// A call that takes longer than this (strictly) is slow. Off by default; when on, each
    /// call reads the clock when it starts and when it ends.
    pub fn slow_call_duration(mut self, duration: Duration) -> Self {
        self.config.slow_call_duration = Some(duration);
        self
    }

    /// Remember the last `size` calls.
    pub fn count_window(mut self, size: u32) -> Self {
        self.config.window = SlidingWindow::Count { size };
        self
    }

    /// Remember the calls of the last `duration`, in `buckets` slices.
    pub fn time_window(mut self, duration: Duration, buckets: u32) -> Self {
        self.config.window = SlidingWindow::Time { duration, buckets };
        self
    }

    /// Calls the window must hold before a rate is computed. Default 10.
    pub fn minimum_calls(mut self, calls: u32) -> Self {
        self.config.minimum_calls = calls;
        self
    }

    /// Opens the breaker after this many failures in a row while closed, whatever the
    /// window says (`None`: only the rate rules trip it). Default 5.
    pub fn consecutive_failures(mut self, failures: Option<u32>) -> Self {
        self.config.consecutive_failures = failures;
        self
    }

    /// A fixed open duration (the default grows: see [`builder`](CircuitBreakerConfig::builder)).
    pub fn open_duration(mut self, duration: Duration) -> Self {
        self.config.open_duration = OpenDuration::Fixed(duration);
        self
    }

    /// An open duration that grows on each reopening, reset when the breaker closes.
    pub fn growing_open_duration(mut self, base: Duration, multiplier: f64, max: Duration) -> Self {
        self.config.open_duration = OpenDuration::Growing {
            base,
            multiplier,
            max,
        };
        self
    }

    /// The longest a provider's `Retry-After` can keep the breaker open (beyond the open
    /// duration). Default 5 minutes.
    pub fn max_retry_after_open(mut self, cap: Duration) -> Self {
        self.config.max_retry_after_open = cap;
        self
    }

    /// Probe calls let through while half-open. Their verdict comes as soon as it is certain:
    /// the breaker reopens once enough probes failed that the rest cannot bring the rate
    /// under the threshold, and closes once enough succeeded that the rest cannot bring it
    /// up to it. Default 1.
    pub fn half_open_permits(mut self, permits: u32) -> Self {
        self.config.half_open_permits = permits;
        self
    }

    /// The longest the breaker stays half-open waiting for its probes (Resilience4j's
    /// `maxWaitDurationInHalfOpenState`). When it passes, the probes that have not answered
    /// count as failed, the breaker decides, and their permits are void. Default 60 s.
    pub fn max_wait_in_half_open(mut self, wait: Duration) -> Self {
        self.config.max_wait_in_half_open = wait;
        self
    }

    /// Where transitions and rejections are reported.
    pub fn events(mut self, events: EventSink) -> Self {
        self.config.events = events;
        self
    }

    /// Records metrics through the `metrics` facade: calls by outcome
    /// (`hive_calls_total`), the state (`hive_breaker_state`) and transitions
    /// (`hive_breaker_transitions_total`), labelled with the model. Handles are registered
    /// once, when the breaker is built, with the recorder installed then (install it
    /// first); a call then bumps one counter. Default off.
    pub fn metrics(mut self, on: bool) -> Self {
        self.config.metrics = on;
        self
    }

    /// Validates the settings.
    pub fn build(self) -> Result<CircuitBreakerConfig, ConfigError> {
        let c = &self.config;
        rate("failure_rate_threshold", c.failure_rate_threshold)?;
        rate("slow_call_rate_threshold", c.slow_call_rate_threshold)?;
        if let Some(slow) = c.slow_call_duration {
            check_duration("slow_call_duration", slow, false)?;
        }
        if c.consecutive_failures == Some(0) {
            return Err(ConfigError::new(
                "consecutive_failures",
                "must be at least 1 (or None to trip on rates only)",
            ));
        }
        check_duration("max_retry_after_open", c.max_retry_after_open, true)?;
        check_duration("max_wait_in_half_open", c.max_wait_in_half_open, false)?;
        match c.window {
            SlidingWindow::Count { size } => {
                if size == 0 || size > MAX_WINDOW_SIZE {
                    return Err(ConfigError::new(
                        "count_window",
                        format!("size {size} is outside 1..={MAX_WINDOW_SIZE}"),
                    ));
                }
                if c.minimum_calls > size {
                    return Err(ConfigError::new(
                        "minimum_calls",
                        format!(
                            "{} can never be reached by a count window of {size}",
                            c.minimum_calls
                        ),
                    ));
                }
            }
            SlidingWindow::Time { duration, buckets } => {
                check_duration("time_window", duration, false)?;
                if buckets == 0 || buckets > 10_000 {
                    return Err(ConfigError::new(
                        "time_window",
                        format!("{buckets} buckets is outside 1..=10000"),
                    ));
                }
                let micros = duration.as_micros();
                if micros % u128::from(buckets) != 0 {
                    return Err(ConfigError::new(
                        "time_window",
                        format!(
                            "{duration:?} does not split into {buckets} whole-microsecond buckets"
                        ),
                    ));
                }
            }
        }
        if c.minimum_calls == 0 {
            return Err(ConfigError::new("minimum_calls", "must be at least 1"));
        }
        if c.half_open_permits == 0 || c.half_open_permits > MAX_HALF_OPEN_PERMITS {
            return Err(ConfigError::new(
                "half_open_permits",
                format!(
                    "{} is outside 1..={MAX_HALF_OPEN_PERMITS}",
                    c.half_open_permits
                ),
            ));
        }
        match c.open_duration {
            OpenDuration::Fixed(d) => {
                check_duration("open_duration", d, false)?;
            }
            OpenDuration::Growing {
                base,
                multiplier,
                max,
            } => {
                check_duration("growing_open_duration", base, false)?;
                check_duration("growing_open_duration", max, false)?;
                if !(multiplier.is_finite() && multiplier >= 1.0) {
                    return Err(ConfigError::new(
                        "growing_open_duration",
                        format!("multiplier {multiplier} must be a finite number >= 1"),
                    ));
                }
                if max < base {
                    return Err(ConfigError::new(
                        "growing_open_duration",
                        format!("max {max:?} is below base {base:?}"),
                    ));
                }
            }
        }
        Ok(self.config)
    }
}

fn rate(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("{value} is outside (0, 1]"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(b: CircuitBreakerConfigBuilder) -> &'static str {
        b.build().unwrap_err().field
    }

    #[test]
    fn bad_values_name_their_field() {
        let b = CircuitBreakerConfig::builder;
        assert_eq!(
            field_of(b().failure_rate_threshold(0.0)),
            "failure_rate_threshold"
        );
        assert_eq!(
            field_of(b().failure_rate_threshold(1.01)),
            "failure_rate_threshold"
        );
        assert_eq!(
            field_of(b().failure_rate_threshold(f64::NAN)),
            "failure_rate_threshold"
        );
        assert_eq!(
            field_of(b().slow_call_rate_threshold(-0.1)),
            "slow_call_rate_threshold"
        );
        assert_eq!(field_of(b().count_window(0)), "count_window");
        assert_eq!(
            field_of(b().count_window(5).minimum_calls(6)),
            "minimum_calls"
        );
        assert_eq!(field_of(b().minimum_calls(0)), "minimum_calls");
        assert_eq!(field_of(b().time_window(Duration::ZERO, 1)), "time_window");
        assert_eq!(
            field_of(b().time_window(Duration::from_secs(1), 0)),
            "time_window"
        );
        assert_eq!(
            field_of(b().time_window(Duration::from_micros(10), 3)),
            "time_window"
        );
        assert_eq!(field_of(b().half_open_permits(0)), "half_open_permits");
        assert_eq!(field_of(b().open_duration(Duration::ZERO)), "open_duration");
        let s = Duration::from_secs(1);
        assert_eq!(
            field_of(b().growing_open_duration(s, f64::NAN, s)),
            "growing_open_duration"
        );
        assert_eq!(
            field_of(b().growing_open_duration(s, 0.5, s)),
            "growing_open_duration"
        );
        assert_eq!(
            field_of(b().growing_open_duration(s * 2, 2.0, s)),
            "growing_open_duration"
        );
        assert_eq!(
            field_of(b().slow_call_duration(Duration::ZERO)),
            "slow_call_duration"
        );
        assert_eq!(
            field_of(b().consecutive_failures(Some(0))),
            "consecutive_failures"
        );
        assert_eq!(
            field_of(b().max_wait_in_half_open(Duration::ZERO)),
            "max_wait_in_half_open"
        );
        // A duration so long that it would wrap in microseconds, or overflow an instant.
        let forever = Duration::from_secs(u64::MAX / 4);
        assert_eq!(field_of(b().open_duration(forever)), "open_duration");
        assert_eq!(
            field_of(b().growing_open_duration(s, 2.0, forever)),
            "growing_open_duration"
        );
        assert_eq!(
            field_of(b().max_retry_after_open(forever)),
            "max_retry_after_open"
        );
        assert_eq!(field_of(b().time_window(forever, 1)), "time_window");
        assert!(b().build().is_ok());
    }

    #[test]
    fn the_largest_settings_are_accepted_and_one_more_is_not() {
        let b = CircuitBreakerConfig::builder;
        assert!(b().count_window(MAX_WINDOW_SIZE).build().is_ok());
        assert_eq!(
            field_of(b().count_window(MAX_WINDOW_SIZE + 1)),
            "count_window"
        );
        assert!(
            b().time_window(Duration::from_secs(10), 10_000)
                .build()
                .is_ok()
        );
        assert_eq!(
            field_of(b().time_window(Duration::from_micros(10_001), 10_001)),
            "time_window"
        );
        assert!(b().half_open_permits(MAX_HALF_OPEN_PERMITS).build().is_ok());
        assert_eq!(
            field_of(b().half_open_permits(MAX_HALF_OPEN_PERMITS + 1)),
            "half_open_permits"
        );
        let s = Duration::from_secs(1);
        assert!(
            b().growing_open_duration(s, 2.0, s).build().is_ok(),
            "max equal to base: a fixed duration"
        );
    }

    #[test]
    fn the_accessors_read_back_what_was_built() {
        let config = CircuitBreakerConfig::builder()
            .model("m")
            .half_open_permits(3)
            .max_wait_in_half_open(Duration::from_secs(7))
            .build()
            .unwrap();
        assert_eq!(config.model().as_str(), "m");
        assert_eq!(config.half_open_permits(), 3);
        assert_eq!(config.max_wait_in_half_open(), Duration::from_secs(7));
        let defaults = CircuitBreakerConfig::builder().build().unwrap();
        assert_eq!(defaults.half_open_permits(), 1);
        assert_eq!(defaults.max_wait_in_half_open(), Duration::from_secs(60));
    }

    #[test]
    fn a_growing_open_duration_never_passes_its_cap_by_float_rounding() {
        // 300 days and 999 999 999 ns: as f64 seconds it rounds up to a whole second.
        let cap = Duration::new(300 * 86_400, 999_999_999);
        let d = OpenDuration::Growing {
            base: cap,
            multiplier: 2.0,
            max: cap,
        };
        assert_eq!(d.nth(1), cap);
        assert_eq!(d.nth(2), cap);
    }

    #[test]
    fn growing_open_duration_multiplies_and_caps() {
        let d = OpenDuration::Growing {
            base: Duration::from_secs(1),
            multiplier: 2.0,
            max: Duration::from_secs(5),
        };
        let got: Vec<_> = (1..=5).map(|n| d.nth(n).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 5, 5]);
        assert_eq!(d.nth(u32::MAX), Duration::from_secs(5));
    }
}
