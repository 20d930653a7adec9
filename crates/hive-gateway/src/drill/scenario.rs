//! A drill's scenario, as `scenarios/*.yml` write it: the workload, the faults and when they
//! come, the simulated provider, and the targets the run is held to.

use std::{path::Path, time::Duration};

use hive_chaos::{ChaosRules, Fault, Rule, Schedule};
use hive_config::{Diagnostics, YamlJson, notation};
use serde::{Deserialize, Serialize};

/// The models of a drill, in the route's order: three models of one simulated provider.
pub const MODELS: [&str; 3] = ["gpt-4o", "claude-4-sonnet", "deepseek-v3.1"];
/// `name` as one of [`MODELS`] (a drill's records hold no string of their own per request,
/// so that they weigh little in its memory figure); `"other"` for a name that is none.
pub(super) fn model_name(name: &str) -> &'static str {
    MODELS
        .iter()
        .copied()
        .find(|m| *m == name)
        .unwrap_or("other")
}

/// The longest run.
const MAX_RUN: Duration = Duration::from_secs(24 * 3600);
/// The most requests an open-loop run may send (the drill keeps a record of each).
const MAX_REQUESTS: f64 = 20_000_000.0;
/// The most windows the faults may make (each is a chaos rule, tried on every call).
const MAX_WINDOWS: usize = 1_000;

/// The route the workload asks for.
pub const ROUTE: &str = "council";

/// One drill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name (the report's title and file names).
    pub name: String,
    /// What it plays, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// How long the workload runs.
    #[serde(with = "notation::duration")]
    pub duration: Duration,
    /// Seeds the faults, the provider's latency and the workload. Default 7.
    #[serde(default = "seven")]
    pub seed: u64,
    /// The simulated provider.
    #[serde(default)]
    pub provider: Provider,
    /// The gateway's settings that differ from a drill's defaults.
    #[serde(default)]
    pub gateway: GatewaySettings,
    /// What the clients send.
    pub workload: Workload,
    /// The faults, each on one model or every model, in a window of the run.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// What the run must show.
    #[serde(default)]
    pub targets: Targets,
}

fn seven() -> u64 {
    7
}

/// The simulated provider of every model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Its time to answer, the same for every model (so that fallback latency compares
    /// like with like). Default 50ms.
    #[serde(with = "notation::duration", default = "fifty_ms")]
    pub latency: Duration,
    /// Spread of that time: each answer takes `latency ± jitter`, uniformly. Default 0s.
    #[serde(with = "notation::duration", default)]
    pub jitter: Duration,
}

fn fifty_ms() -> Duration {
    Duration::from_millis(50)
}

impl Default for Provider {
    fn default() -> Self {
        Self {
            latency: fifty_ms(),
            jitter: Duration::ZERO,
        }
    }
}

/// The few gateway settings a scenario may change (the rest are the drill's; see
/// [`gateway_yaml`](crate::drill::gateway_yaml)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Between two health checks of a model. Default 1s.
    #[serde(with = "notation::duration", default = "one_s")]
    pub health_interval: Duration,
    /// One attempt's limit (answer, or a stream's start), and a health check's. Default
    /// 1s (the simulated provider answers in about 50 ms).
    #[serde(with = "notation::duration", default = "one_s")]
    pub attempt_timeout: Duration,
    /// A stream's wait between two chunks. Default 1s.
    #[serde(with = "notation::duration", default = "one_s")]
    pub idle_timeout: Duration,
    /// A whole request's limit, every fallback included. Default 10s.
    #[serde(with = "notation::duration", default = "ten_s")]
    pub request_timeout: Duration,
}

fn one_s() -> Duration {
    Duration::from_secs(1)
}
fn ten_s() -> Duration {
    Duration::from_secs(10)
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            health_interval: one_s(),
            attempt_timeout: one_s(),
            idle_timeout: one_s(),
            request_timeout: ten_s(),
        }
    }
}

/// What the clients send: at a fixed rate (open loop: each request leaves at its time,
/// whatever the others are doing, and its latency counts from that time, so a slow gateway
/// cannot hide its slowness by delaying requests) or from a fixed number of clients, each
/// sending its next request when the last one ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Requests per second (open loop). Give this or `concurrency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Clients, each with one request at a time (closed loop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// The share of requests that ask for a stream. Default 25%.
    #[serde(with = "notation::rate", default = "quarter")]
    pub streams: f64,
    /// A request still unanswered after this is hung (and counted so). Default 30s.
    #[serde(with = "notation::duration", default = "thirty_s")]
    pub hung_after: Duration,
}

fn quarter() -> f64 {
    0.25
}
fn thirty_s() -> Duration {
    Duration::from_secs(30)
}

/// One fault: what, on which model, how often, when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// The model (one of the drill's); every model when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// What is injected, as hive-chaos's rules and the admin API's `PUT /admin/chaos` write
    /// it: `{ kind: status, status: 503 }`, `{ kind: hang }`,
    /// `{ kind: stream, stream: cut, after: 5 }`, `{ kind: latency, distribution: pareto,
    /// scale_ms: 50, shape: 1.5 }` …
    pub fault: Fault,
    /// The share of the model's calls it hits while on. Default 100%.
    #[serde(with = "notation::rate", default = "all")]
    pub rate: f64,
    /// When it starts, from the start of the run. Default 0s.
    #[serde(with = "notation::duration", default)]
    pub from: Duration,
    /// When it ends (healed); the end of the run when not given.
    #[serde(
        with = "optional_duration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub to: Option<Duration>,
    /// On and off within its window: on for `duty` of every `period`, from its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapping: Option<Flapping>,
}

fn all() -> f64 {
    1.0
}

/// On for `duty` of every `period`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flapping {
    /// One cycle.
    #[serde(with = "notation::duration")]
    pub period: Duration,
    /// The share of the cycle it is on, from the cycle's start.
    #[serde(with = "notation::rate")]
    pub duty: f64,
}

mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        hive_config::parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }

    #[allow(clippy::ref_option)] // serde's `with` hands a reference to the field
    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => s.serialize_str(&hive_config::format_duration(*value)),
            None => s.serialize_none(),
        }
    }
}

/// What a run must show; a target not given is not checked (and shown as such).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// The least share of requests answered (by a model, not a degraded answer).
    #[serde(
        with = "optional_rate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub availability: Option<f64>,
    /// The least share of requests answered or given the route's degraded answer.
    #[serde(
        with = "optional_rate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub served: Option<f64>,
    /// The longest time from a fault's end until its model serves its normal share again.
    #[serde(
        with = "optional_duration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub recovery: Option<Duration>,
    /// The largest share of requests affected by the faults: failed, degraded, or made to
    /// wait on a failed attempt first.
    #[serde(
        with = "optional_rate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub affected: Option<f64>,
    /// The most the median latency while a fault is on may exceed the healthy baseline's,
    /// as a share of it.
    #[serde(
        with = "optional_rate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub fallback_p50: Option<f64>,
    /// The same for the 99th percentile.
    #[serde(
        with = "optional_rate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub fallback_p99: Option<f64>,
    /// The least share of the baseline's answers per second kept while a fault is on.
    #[serde(
        with = "optional_rate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub degraded_throughput: Option<f64>,
    /// The most CPU time the resilience stack may add to a call, as a share of the call's
    /// own.
    #[serde(
        with = "optional_rate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_overhead: Option<f64>,
    /// Whether a model whose breaker is open may see more than one attempt per open period
    /// (`true`: it may not).
    #[serde(default)]
    pub probe_discipline: bool,
    /// The most the process's memory (less the drill's own records) may grow from the
    /// second quarter of the run (the first warms up) to the last, as a share.
    #[serde(
        with = "optional_rate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_growth: Option<f64>,
}

mod optional_rate {
    use serde::{Deserializer, Serializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        hive_config::notation::rate::deserialize(d).map(Some)
    }

    #[allow(clippy::ref_option)] // serde's `with` hands a reference to the field
    pub(super) fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => hive_config::notation::rate::serialize(value, s),
            None => s.serialize_none(),
        }
    }
}

/// Why a scenario file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// It could not be read.
    #[error("could not read {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not a valid scenario: where and why.
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl Scenario {
    /// Reads and checks the scenario in `path`.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Reads and checks a scenario from its text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ScenarioError> {
        let read = YamlJson::parse(path, text).map_err(ScenarioError::Invalid)?;
        let scenario: Self = read.deserialize().map_err(ScenarioError::Invalid)?;
        scenario
            .check()
            .map_err(|(at, problem)| ScenarioError::Invalid(read.problem(&at, problem)))?;
        Ok(scenario)
    }

    /// The scenario if it holds together (after [`scaled`](Self::scaled), say); else the
    /// key path of the first problem and what it is.
    pub fn checked(self) -> Result<Self, String> {
        match self.check() {
            Ok(()) => Ok(self),
            Err((at, problem)) => Err(format!("{at}: {problem}")),
        }
    }

    /// The first problem a well-formed scenario may still have: its key path and what.
    fn check(&self) -> Result<(), (String, String)> {
        let at = |path: &str| path.to_owned();
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err((
                at("name"),
                "a name of letters, digits, `-` and `_`".to_owned(),
            ));
        }
        if self.duration < Duration::from_secs(1) || self.duration > MAX_RUN {
            return Err((at("duration"), "from 1s to 24h".to_owned()));
        }
        if self.workload.hung_after < Duration::from_millis(100)
            || self.workload.hung_after > Duration::from_secs(600)
        {
            return Err((at("workload.hung_after"), "from 100ms to 10m".to_owned()));
        }
        if let Some(rate) = self.workload.rate
            && rate * self.duration.as_secs_f64() > MAX_REQUESTS
        {
            return Err((
                at("workload.rate"),
                format!("at most {MAX_REQUESTS} requests in a run (rate × duration)"),
            ));
        }
        match (self.workload.rate, self.workload.concurrency) {
            (Some(rate), None) if rate.is_finite() && (0.1..=100_000.0).contains(&rate) => {}
            (Some(_), None) => {
                return Err((
                    at("workload.rate"),
                    "from 0.1 to 100000 per second".to_owned(),
                ));
            }
            (None, Some(clients)) if (1..=10_000).contains(&clients) => {}
            (None, Some(_)) => {
                return Err((at("workload.concurrency"), "from 1 to 10000".to_owned()));
            }
            _ => {
                return Err((
                    at("workload"),
                    "give one of `rate` (requests per second, open loop) or `concurrency` (clients)"
                        .to_owned(),
                ));
            }
        }
        if self.provider.jitter > self.provider.latency {
            return Err((
                at("provider.jitter"),
                "at most the latency (an answer never takes less than 0s)".to_owned(),
            ));
        }
        for (i, fault) in self.faults.iter().enumerate() {
            let here = |key: &str| format!("faults[{i}].{key}");
            if let Some(model) = &fault.model
                && !MODELS.contains(&model.as_str())
            {
                return Err((
                    here("model"),
                    format!("no model `{model}`; one of: {}", MODELS.join(", ")),
                ));
            }
            if let Some(to) = fault.to
                && to <= fault.from
            {
                return Err((here("to"), "after `from`".to_owned()));
            }
            if fault.from >= self.duration {
                return Err((here("from"), "within the run's duration".to_owned()));
            }
            if let Some(flapping) = fault.flapping
                && flapping.period < Duration::from_millis(100)
            {
                return Err((here("flapping.period"), "at least 100ms".to_owned()));
            }
        }
        let windows: usize = self
            .faults
            .iter()
            .map(|f| f.windows(self.duration).len())
            .sum();
        if windows > MAX_WINDOWS {
            return Err((
                at("faults"),
                format!("{windows} fault windows (flapping included); at most {MAX_WINDOWS}"),
            ));
        }
        for (i, fault) in self.faults.iter().enumerate() {
            ChaosRules::new()
                .rule(Rule::new(fault.fault.clone()).rate(fault.rate))
                .validate()
                .map_err(|e| {
                    let key = if e.field == "rate" { "rate" } else { "fault" };
                    (
                        format!("faults[{i}].{key}"),
                        format!("invalid `{}`: {}", e.field, e.problem),
                    )
                })?;
        }
        self.chaos()
            .validate()
            .map_err(|e| ("faults".to_owned(), e.to_string()))
    }

    /// The faults as the gateway's chaos rules, timed from the start of the run: a window
    /// per fault, or one per "on" part of a flapping one.
    pub fn chaos(&self) -> ChaosRules {
        let mut rules = ChaosRules::new().seed(self.seed);
        for fault in &self.faults {
            for (from, to) in fault.windows(self.duration) {
                let mut rule = Rule::new(fault.fault.clone())
                    .rate(fault.rate)
                    .schedule(Schedule::window(from, to));
                if let Some(model) = &fault.model {
                    rule = rule.model(model.clone());
                }
                rules = rules.rule(rule);
            }
        }
        rules
    }

    /// The same scenario with every time of its timeline (its duration, the faults'
    /// windows and flapping periods) multiplied by `factor`: a shortened drill for tests.
    /// Latencies, timeouts and targets stay. A factor that is not a finite number above 0
    /// leaves it as it is; check the result with [`Scenario::checked`].
    #[must_use]
    pub fn scaled(mut self, factor: f64) -> Self {
        if !(factor.is_finite() && factor > 0.0) {
            return self;
        }
        let scale = |d: Duration| d.mul_f64(factor);
        self.duration = scale(self.duration);
        for fault in &mut self.faults {
            fault.from = scale(fault.from);
            fault.to = fault.to.map(scale);
            if let Some(flapping) = &mut fault.flapping {
                flapping.period = scale(flapping.period);
            }
        }
        self
    }

    /// When any fault is on: the union of their windows, in order.
    pub fn fault_windows(&self) -> Vec<(Duration, Duration)> {
        let mut windows: Vec<(Duration, Duration)> = self
            .faults
            .iter()
            .flat_map(|f| f.windows(self.duration))
            .collect();
        windows.sort();
        let mut merged: Vec<(Duration, Duration)> = Vec::new();
        for (from, to) in windows {
            match merged.last_mut() {
                Some(last) if from <= last.1 => last.1 = last.1.max(to),
                _ => merged.push((from, to)),
            }
        }
        merged
    }
}

impl FaultSpec {
    /// When it is on, within a run of `duration`.
    pub fn windows(&self, duration: Duration) -> Vec<(Duration, Duration)> {
        let end = self.to.unwrap_or(duration).min(duration);
        match self.flapping {
            None if self.from < end => vec![(self.from, end)],
            None => Vec::new(),
            Some(Flapping { period, duty }) => {
                let mut windows = Vec::new();
                let mut start = self.from;
                while start < end {
                    let on_until = (start + period.mul_f64(duty)).min(end);
                    if on_until > start {
                        windows.push((start, on_until));
                    }
                    start += period;
                }
                windows
            }
        }
    }

    /// When it ends for good (its last window's end).
    pub fn healed_at(&self, duration: Duration) -> Option<Duration> {
        self.windows(duration).last().map(|w| w.1)
    }
}
