//! The description of what to inject: [`ChaosRules`] of [`Rule`]s, each a [`Fault`], a rate
//! and a [`Schedule`]. Plain data, serde-serialisable (durations in milliseconds, fields
//! ending in `_ms`), validated by [`ChaosRules::validate`].

use std::time::Duration;

use hive_core::{MAX_DURATION, SharedRandom, StreamFault};
use serde::{Deserialize, Serialize};

use crate::{ChaosError, millis};

/// Every rule of a chaos layer (and of its clones), with its switch and its seed.
///
/// ```
/// use std::time::Duration;
/// use hive_chaos::{ChaosRules, Fault, Latency, Rule, Schedule};
///
/// let rules = ChaosRules::new()
///     .seed(7)
///     // 2% of gpt-4o's calls answer 429 with `Retry-After: 3`.
///     .rule(Rule::new(Fault::rate_limited(Some(Duration::from_secs(3)))).model("gpt-4o").rate(0.02))
///     // Every model: 503 between 10 s and 40 s after the rules were set.
///     .rule(Rule::new(Fault::status(503)).schedule(Schedule::window(
///         Duration::from_secs(10),
///         Duration::from_secs(40),
///     )))
///     // And a long tail of latency on every call.
///     .rule(Rule::new(Fault::Latency(Latency::Pareto { scale: Duration::from_millis(50), shape: 1.5 })));
/// rules.validate().unwrap();
/// let json = serde_json::to_string(&rules).unwrap();
/// assert_eq!(serde_json::from_str::<ChaosRules>(&json).unwrap(), rules);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosRules {
    /// Whether faults are injected at all. Default on.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The seed of the random draws (rates, latencies): the same seed, rules and order of
    /// calls give the same faults. `None`: a random seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The rules, tried in order (see [`Rule`]).
    #[serde(default)]
    pub rules: Vec<Rule>,
}

fn yes() -> bool {
    true
}

impl Default for ChaosRules {
    fn default() -> Self {
        Self::new()
    }
}

impl ChaosRules {
    /// No rule, enabled, a random seed.
    pub fn new() -> Self {
        Self {
            enabled: true,
            seed: None,
            rules: Vec::new(),
        }
    }

    /// Adds a rule after those already given.
    #[must_use]
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Seeds the random draws, for reproducible runs.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Starts switched on (`true`, the default) or off.
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Checks every rule; the error names the first invalid one (by its index) and field.
    pub fn validate(&self) -> Result<(), ChaosError> {
        for (index, rule) in self.rules.iter().enumerate() {
            rule.validate().map_err(|(field, problem)| ChaosError {
                rule: index,
                field,
                problem,
            })?;
        }
        Ok(())
    }
}

/// One fault to inject: which model (or all), how often, and when.
///
/// Rules are tried in order on every call: the first failure that fires decides the call
/// (the model is not called); otherwise the first stream fault that fires is played on the
/// answer; latencies that fire add up, before either.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The model whose calls it applies to (as the layer was told with
    /// [`ChaosLayer::model`](crate::ChaosLayer::model)); `None`: every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// What is injected.
    pub fault: Fault,
    /// The share of calls it is injected into while its schedule is on, in `0..=1`.
    /// Default 1.
    #[serde(default = "one")]
    pub rate: f64,
    /// When it is on. Default [`Schedule::Always`].
    #[serde(default)]
    pub schedule: Schedule,
}

fn one() -> f64 {
    1.0
}

impl Rule {
    /// `fault` on every call of every model, always.
    pub fn new(fault: Fault) -> Self {
        Self {
            model: None,
            fault,
            rate: 1.0,
            schedule: Schedule::Always,
        }
    }

    /// Only on `model`'s calls.
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// On this share of calls (`0..=1`) while the schedule is on.
    #[must_use]
    pub fn rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }

    /// On this schedule.
    #[must_use]
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(0.0..=1.0).contains(&self.rate) {
            return Err(("rate", format!("{} is not within 0..=1", self.rate)));
        }
        self.fault.validate()?;
        self.schedule.validate()
    }
}

fn check(
    field: &'static str,
    value: Duration,
    zero_allowed: bool,
) -> Result<(), (&'static str, String)> {
    hive_core::check_duration(field, value, zero_allowed)
        .map(drop)
        .map_err(|e| (field, e.problem))
}

/// What a rule injects.
///
/// Serialised with a `kind`: `{"kind": "status", "status": 503}`,
/// `{"kind": "latency", "distribution": "fixed", "delay_ms": 250.0}`,
/// `{"kind": "stream", "stream": "cut", "after": 3}`.
///
/// What a failure becomes (an error, or an error response) is up to the layer's
/// [`Faults`](crate::Faults): with `OpenAiFaults` (feature `openai`)
/// each is the `OpenAiError` the real provider's failure gives, classified the same.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fault {
    /// The provider answers with an error status: 429 (rate limited), 500, 502, 503, 529
    /// (overloaded) …, with a wait hint (`Retry-After`) when given; as with a real
    /// provider, the hint counts only on 429, 503 and 529.
    Status {
        /// The status, 400..=599.
        status: u16,
        /// The wait the provider asks for.
        #[serde(
            default,
            rename = "retry_after_ms",
            with = "millis::option",
            skip_serializing_if = "Option::is_none"
        )]
        retry_after: Option<Duration>,
    },
    /// The provider sends nothing: the call waits `after`, then fails as the client's own
    /// timeout does (a `Timeout` failure).
    Timeout {
        /// How long the call waits before it fails.
        #[serde(rename = "after_ms", with = "millis")]
        after: Duration,
    },
    /// The call never ends: only a timeout outside (the attempt timeout, the request's
    /// deadline) or the caller ends it.
    Hang,
    /// The connection is reset before the answer's headers (a `Connect` failure).
    ConnectionReset,
    /// The answer comes from another model (an `IdentityMismatch` failure).
    WrongModel {
        /// The model that answered (empty: the answer named none).
        answered: String,
    },
    /// HTTP 400 `context_length_exceeded`: a client error (the prompt does not fit).
    ContextLengthExceeded,
    /// HTTP 400 `content_policy_violation`: a client error (the provider refused).
    ContentPolicy,
    /// The call is delayed (then goes on to the model, or to a failure that also fires).
    Latency(Latency),
    /// A streamed answer fails part-way (non-streamed answers pass untouched).
    Stream(StreamFault),
}

impl Fault {
    /// HTTP `status`, without a wait hint.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            retry_after: None,
        }
    }

    /// HTTP 429, with `Retry-After` when given.
    pub fn rate_limited(retry_after: Option<Duration>) -> Self {
        Self::Status {
            status: 429,
            retry_after,
        }
    }

    /// What kind of fault it is: a failure instead of the call, a delay, or a stream fault.
    pub(crate) fn role(&self) -> Role {
        match self {
            Self::Latency(_) => Role::Delay,
            Self::Stream(_) => Role::Stream,
            _ => Role::Failure,
        }
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        match self {
            Self::Status {
                status,
                retry_after,
            } => {
                if !(400..=599).contains(status) {
                    return Err((
                        "status",
                        format!("{status} is not an error status (400..=599)"),
                    ));
                }
                if let Some(wait) = retry_after {
                    check("retry_after", *wait, true)?;
                }
                Ok(())
            }
            Self::Timeout { after } => check("after", *after, true),
            Self::Latency(latency) => latency.validate(),
            Self::Hang
            | Self::ConnectionReset
            | Self::WrongModel { .. }
            | Self::ContextLengthExceeded
            | Self::ContentPolicy
            | Self::Stream(_) => Ok(()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Failure,
    Stream,
    Delay,
}

/// How long an injected delay is; long-tailed draws are capped at a year
/// ([`MAX_DURATION`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "snake_case")]
pub enum Latency {
    /// Always `delay`.
    Fixed {
        /// The delay.
        #[serde(rename = "delay_ms", with = "millis")]
        delay: Duration,
    },
    /// Uniform in `min..=max`.
    Uniform {
        /// The shortest.
        #[serde(rename = "min_ms", with = "millis")]
        min: Duration,
        /// The longest.
        #[serde(rename = "max_ms", with = "millis")]
        max: Duration,
    },
    /// Log-normal: `median · e^(sigma·Z)`, Z standard normal (a slow tail of ordinary calls).
    LogNormal {
        /// The median delay.
        #[serde(rename = "median_ms", with = "millis")]
        median: Duration,
        /// The spread (the standard deviation of the delay's logarithm), at least 0.
        sigma: f64,
    },
    /// Pareto: `scale / U^(1/shape)`, at least `scale`; a heavy tail (shape ≤ 2 has no
    /// finite variance, ≤ 1 no finite mean).
    Pareto {
        /// The shortest delay.
        #[serde(rename = "scale_ms", with = "millis")]
        scale: Duration,
        /// The tail index, above 0 (smaller: heavier tail).
        shape: f64,
    },
}

impl Latency {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        match *self {
            Self::Fixed { delay } => check("delay", delay, true),
            Self::Uniform { min, max } => {
                check("min", min, true)?;
                check("max", max, true)?;
                if min > max {
                    return Err(("min", format!("{min:?} is above max {max:?}")));
                }
                Ok(())
            }
            Self::LogNormal { median, sigma } => {
                check("median", median, false)?;
                if !(sigma.is_finite() && sigma >= 0.0) {
                    return Err(("sigma", format!("{sigma} is not a finite number ≥ 0")));
                }
                Ok(())
            }
            Self::Pareto { scale, shape } => {
                check("scale", scale, false)?;
                if !(shape.is_finite() && shape > 0.0) {
                    return Err(("shape", format!("{shape} is not a finite number > 0")));
                }
                Ok(())
            }
        }
    }

    /// One delay, drawn from `random` (no draw for a fixed delay).
    pub(crate) fn sample(&self, random: &SharedRandom) -> Duration {
        let seconds = match *self {
            Self::Fixed { delay } => return delay,
            Self::Uniform { min, max } => {
                return min + (max - min).mul_f64(random.unit());
            }
            Self::LogNormal { median, sigma } => {
                median.as_secs_f64() * (sigma * standard_normal(random)).exp()
            }
            Self::Pareto { scale, shape } => {
                // 1 - U is in (0, 1]: never a division by zero.
                scale.as_secs_f64() / (1.0 - random.unit()).powf(1.0 / shape)
            }
        };
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(MAX_DURATION)
            .min(MAX_DURATION)
    }
}

/// A standard normal draw (Box–Muller, two uniform draws).
fn standard_normal(random: &SharedRandom) -> f64 {
    let u1 = 1.0 - random.unit(); // (0, 1]: ln is finite
    let u2 = random.unit();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// When a rule is on. Times are measured from the moment the rules were set (the layer
/// built, [`ChaosHandle::set_rules`](crate::ChaosHandle::set_rules) or
/// [`restart`](crate::ChaosHandle::restart)), on tokio's clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Schedule {
    /// Always on.
    #[default]
    Always,
    /// On until the rule has injected its fault into `calls` calls, then off for good:
    /// fail N, then recover.
    FailFirst {
        /// Injections before the rule recovers.
        calls: u64,
    },
    /// On from `from` (included) to `to` (excluded): an outage window.
    Window {
        /// When it starts.
        #[serde(rename = "from_ms", with = "millis")]
        from: Duration,
        /// When it ends.
        #[serde(rename = "to_ms", with = "millis")]
        to: Duration,
    },
    /// On for the first `duty` share of every `period`, off for the rest: flapping.
    Flapping {
        /// The length of one on-off cycle.
        #[serde(rename = "period_ms", with = "millis")]
        period: Duration,
        /// The share of each period the rule is on, in `0..=1`.
        duty: f64,
    },
    /// Off until `from`, then its rate rising linearly from 0 to the rule's rate over
    /// `over`, then at the rule's rate.
    Ramp {
        /// When the ramp starts.
        #[serde(rename = "from_ms", with = "millis")]
        from: Duration,
        /// How long it takes to reach the full rate.
        #[serde(rename = "over_ms", with = "millis")]
        over: Duration,
    },
}

impl Schedule {
    /// On for the first `calls` injections, then off.
    pub fn fail_first(calls: u64) -> Self {
        Self::FailFirst { calls }
    }

    /// On from `from` to `to`.
    pub fn window(from: Duration, to: Duration) -> Self {
        Self::Window { from, to }
    }

    /// On for `duty` of every `period`.
    pub fn flapping(period: Duration, duty: f64) -> Self {
        Self::Flapping { period, duty }
    }

    /// Rising from 0 at `from` to the full rate at `from + over`.
    pub fn ramp(from: Duration, over: Duration) -> Self {
        Self::Ramp { from, over }
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        match *self {
            Self::Always | Self::FailFirst { .. } => Ok(()),
            Self::Window { from, to } => {
                check("from", from, true)?;
                check("to", to, true)?;
                if from >= to {
                    return Err(("to", format!("{to:?} is not after from {from:?}")));
                }
                Ok(())
            }
            Self::Flapping { period, duty } => {
                check("period", period, false)?;
                if !(0.0..=1.0).contains(&duty) {
                    return Err(("duty", format!("{duty} is not within 0..=1")));
                }
                Ok(())
            }
            Self::Ramp { from, over } => {
                check("from", from, true)?;
                check("over", over, false)
            }
        }
    }
}
