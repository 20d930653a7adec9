//! Validated retry settings and their builder.

use std::time::Duration;

use std::sync::Arc;

use hive_core::{
    Available, ConfigError, EventSink, FailureClass, FailureClassSet, ModelId, SharedRandom,
    check_duration,
};

use crate::{Backoff, Jitter, RetryBudget, telemetry::Instruments};

/// The failure classes retried by default: every availability failure except
///
/// * an identity mismatch: the same endpoint would likely answer as the wrong model again;
/// * a timeout: an attempt that got no answer in time. A silent provider only multiplies
///   the wait when asked again; the router fails over to the next model instead.
pub const DEFAULT_RETRYABLE: FailureClassSet = FailureClassSet::ALL
    .without(FailureClass::IdentityMismatch)
    .without(FailureClass::Timeout);

/// Settings of a retry layer, validated by [`RetryConfigBuilder::build`].
#[derive(Clone, Debug)]
pub struct RetryConfig {
    pub(crate) model: ModelId,
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) honour_retry_after: bool,
    pub(crate) max_retry_after: Duration,
    pub(crate) retryable: FailureClassSet,
    pub(crate) min_attempt_time: Duration,
    pub(crate) budget: Option<RetryBudget>,
    /// When set, no retry starts while it says the model cannot take a call.
    pub(crate) availability: Option<Arc<dyn Available>>,
    pub(crate) events: EventSink,
    pub(crate) metrics: bool,
    /// The metric handles, when metrics are on (made by `build`).
    pub(crate) instruments: Option<Arc<Instruments>>,
    pub(crate) seed: Option<u64>,
    /// The jitter generator's state, shared by every clone of the layer; drawn from only
    /// when a retry is scheduled.
    pub(crate) random: SharedRandom,
}

impl RetryConfig {
    /// A builder with the defaults: 3 attempts (the first call and two retries), exponential
    /// backoff from 200 ms doubling to at most 10 s with full jitter, `Retry-After` honoured
    /// up to 30 s, [`DEFAULT_RETRYABLE`] classes (timeouts are not retried), no budget.
    pub fn builder() -> RetryConfigBuilder {
        RetryConfigBuilder {
            config: Self {
                model: ModelId::default(),
                max_attempts: 3,
                backoff: Backoff {
                    base: Duration::from_millis(200),
                    multiplier: 2.0,
                    max: Duration::from_secs(10),
                    jitter: Jitter::Full,
                },
                honour_retry_after: true,
                max_retry_after: Duration::from_secs(30),
                retryable: DEFAULT_RETRYABLE,
                min_attempt_time: Duration::ZERO,
                budget: None,
                availability: None,
                events: EventSink::none(),
                metrics: false,
                instruments: None,
                seed: None,
                random: SharedRandom::new(Some(0)),
            },
        }
    }

    /// Attempts in all, the first call included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }
}

/// Builds a [`RetryConfig`]; [`build`](Self::build) names the first invalid field.
#[derive(Clone, Debug)]
#[must_use]
pub struct RetryConfigBuilder {
    config: RetryConfig,
}

impl RetryConfigBuilder {
    /// The model retried (named in events).
    pub fn model(mut self, model: impl Into<ModelId>) -> Self {
        self.config.model = model.into();
        self
    }

    /// Attempts in all, **the first call included**: `max_attempts(3)` is one call and at
    /// most two retries; `max_attempts(1)` never retries. At least 1, at most 100.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = attempts;
        self
    }

    /// Exponential backoff from `base`, never above `max`.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.config.backoff.base = base;
        self.config.backoff.max = max;
        self
    }

    /// Growth of the backoff per retry (at least 1). Default 2.
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.config.backoff.multiplier = multiplier;
        self
    }

    /// How delays are randomised. Default [`Jitter::Full`].
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.config.backoff.jitter = jitter;
        self
    }

    /// Wait what the provider asks (`Retry-After`) instead of the backoff, when the hint is at
    /// most `max`; a longer hint stops retrying at once (better to fall back to another
    /// model than to hold the caller). Default on, 30 s.
    pub fn retry_after(mut self, honour: bool, max: Duration) -> Self {
        self.config.honour_retry_after = honour;
        self.config.max_retry_after = max;
        self
    }

    /// The failure classes worth another attempt on the same model. Client errors,
    /// rejections and ignored outcomes are never retried.
    pub fn retry_on(mut self, classes: FailureClassSet) -> Self {
        self.config.retryable = classes;
        self
    }

    /// Do not start an attempt unless at least this much of the request's
    /// [`Deadline`](hive_core::Deadline) is left after the backoff. Default zero.
    pub fn min_attempt_time(mut self, time: Duration) -> Self {
        self.config.min_attempt_time = time;
        self
    }

    /// Retries only while `signal` says the model can take a call: a failure that opened
    /// the model's breaker, or a failed half-open probe, ends the retries at once (no
    /// backoff waited out only to be rejected), so the router moves on to the next model.
    /// Give it the breaker's handle (the `ModelManager` does).
    pub fn retry_only_while(mut self, signal: impl Available + 'static) -> Self {
        self.config.availability = Some(Arc::new(signal));
        self
    }

    /// Caps retries with a budget shared by every clone of it.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.config.budget = Some(budget);
        self
    }

    /// Where retries and give-ups are reported.
    pub fn events(mut self, events: EventSink) -> Self {
        self.config.events = events;
        self
    }

    /// Records metrics through the `metrics` facade: retries by failure class
    /// (`hive_retries_total`) and give-ups by reason (`hive_retry_stops_total`), labelled
    /// with the model. Nothing is recorded on a call that succeeds. Default off.
    pub fn metrics(mut self, on: bool) -> Self {
        self.config.metrics = on;
        self
    }

    /// Seeds the jitter so delays repeat exactly (tests, simulations).
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
        self
    }

    /// Validates the settings.
    pub fn build(self) -> Result<RetryConfig, ConfigError> {
        let c = &self.config;
        if !(1..=100).contains(&c.max_attempts) {
            return Err(ConfigError::new(
                "max_attempts",
                format!("{} is outside 1..=100", c.max_attempts),
            ));
        }
        let b = &c.backoff;
        if b.max < b.base {
            return Err(ConfigError::new(
                "backoff",
                format!("max {:?} is below base {:?}", b.max, b.base),
            ));
        }
        check_duration("backoff", b.base, true)?;
        check_duration("backoff", b.max, true)?;
        check_duration("retry_after", c.max_retry_after, true)?;
        check_duration("min_attempt_time", c.min_attempt_time, true)?;
        if !(b.multiplier.is_finite() && b.multiplier >= 1.0) {
            return Err(ConfigError::new(
                "multiplier",
                format!("{} must be a finite number >= 1", b.multiplier),
            ));
        }
        if let Jitter::Proportional(f) = b.jitter
            && !(0.0..=1.0).contains(&f)
        {
            return Err(ConfigError::new(
                "jitter",
                format!("proportional jitter {f} is outside [0, 1]"),
            ));
        }
        let mut config = self.config;
        config.random = SharedRandom::new(config.seed);
        config.instruments = config
            .metrics
            .then(|| Arc::new(Instruments::new(config.model)));
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_attempts_reads_back_the_first_call_included() {
        assert_eq!(RetryConfig::builder().build().unwrap().max_attempts(), 3);
        assert_eq!(
            RetryConfig::builder()
                .max_attempts(7)
                .build()
                .unwrap()
                .max_attempts(),
            7
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let field = |b: RetryConfigBuilder| b.build().unwrap_err().field;
        let b = RetryConfig::builder;
        assert_eq!(field(b().max_attempts(0)), "max_attempts");
        assert_eq!(field(b().max_attempts(101)), "max_attempts");
        let s = Duration::from_secs(1);
        assert_eq!(field(b().backoff(s * 2, s)), "backoff");
        assert_eq!(field(b().multiplier(f64::NAN)), "multiplier");
        assert_eq!(field(b().multiplier(0.5)), "multiplier");
        assert_eq!(field(b().jitter(Jitter::Proportional(f64::NAN))), "jitter");
        assert_eq!(field(b().jitter(Jitter::Proportional(1.5))), "jitter");
        let forever = Duration::from_secs(u64::MAX / 4);
        assert_eq!(field(b().backoff(s, forever)), "backoff");
        assert_eq!(field(b().retry_after(true, forever)), "retry_after");
        assert_eq!(field(b().min_attempt_time(forever)), "min_attempt_time");
        assert!(b().build().is_ok());
    }
}
