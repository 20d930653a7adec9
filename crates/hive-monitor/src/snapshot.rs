//! [`ResilienceMetrics`]: what the monitor knows at one moment, per model and overall. Cheap
//! to take, serialisable (it is what a dashboard streams and what alert rules read).

use std::{collections::BTreeMap, time::Duration};

use hive_core::{CircuitState, FailureClass, HealthStatus, ModelId};
use serde::Serialize;

use crate::histogram::Histogram;

/// Outcomes counted over a window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Attempts the model answered well.
    pub successes: u64,
    /// Attempts the model answered with a refusal of the request (bad request, context
    /// length, content policy, credentials): the model answered.
    pub client_errors: u64,
    /// Attempts refused before the model (open breaker, unhealthy model).
    pub rejected: u64,
    /// Failed attempts, by class.
    pub failures: BTreeMap<FailureClass, u64>,
}

impl Counts {
    /// Failed attempts, every class together.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Attempts that reached the model: answered or failed (rejections aside).
    pub fn calls(&self) -> u64 {
        self.successes + self.client_errors + self.failed()
    }

    /// Every attempt counted, rejections included.
    pub fn total(&self) -> u64 {
        self.calls() + self.rejected
    }

    /// Failures of calls that reached the model, per call (0 to 1); `None` without calls.
    pub fn failure_rate(&self) -> Option<f64> {
        let calls = self.calls();
        (calls > 0).then(|| self.failed() as f64 / calls as f64)
    }

    /// The share of calls the model answered (1 − failure rate); `None` without calls.
    pub fn success_rate(&self) -> Option<f64> {
        self.failure_rate().map(|rate| 1.0 - rate)
    }

    pub(crate) fn add(&mut self, other: &Counts) {
        self.successes += other.successes;
        self.client_errors += other.client_errors;
        self.rejected += other.rejected;
        for (class, n) in &other.failures {
            *self.failures.entry(*class).or_default() += n;
        }
    }
}

/// Latency percentiles of the answers in a window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    #[serde(with = "millis")]
    pub p50: Duration,
    /// 95th percentile.
    #[serde(with = "millis")]
    pub p95: Duration,
    /// 99th percentile.
    #[serde(with = "millis")]
    pub p99: Duration,
}

impl Percentiles {
    pub(crate) fn of(histogram: &Histogram) -> Option<Self> {
        Some(Self {
            p50: histogram.quantile(0.50)?,
            p95: histogram.quantile(0.95)?,
            p99: histogram.quantile(0.99)?,
        })
    }
}

/// What happened over one window of time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowStats {
    /// The window's length.
    #[serde(rename = "span_seconds", with = "seconds")]
    pub span: Duration,
    /// Outcomes of the attempts in it.
    pub counts: Counts,
    /// Latency percentiles of the answers in it, if there were any.
    pub latency: Option<Percentiles>,
    /// The merged histogram, for merging windows of several models.
    #[serde(skip)]
    pub histogram: Histogram,
}

impl WindowStats {
    pub(crate) fn new(span: Duration, counts: Counts, histogram: Histogram) -> Self {
        Self {
            span,
            counts,
            latency: Percentiles::of(&histogram),
            histogram,
        }
    }

    pub(crate) fn merge(&mut self, other: &WindowStats) {
        self.counts.add(&other.counts);
        self.histogram.merge(&other.histogram);
        self.latency = Percentiles::of(&self.histogram);
    }
}

/// The three windows every figure is kept over.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Windows {
    /// The last minute.
    pub last_minute: WindowStats,
    /// The last five minutes.
    pub last_5_minutes: WindowStats,
    /// The last hour.
    pub last_hour: WindowStats,
}

impl Windows {
    pub(crate) fn empty() -> Self {
        let window = |secs| {
            WindowStats::new(
                Duration::from_secs(secs),
                Counts::default(),
                Histogram::default(),
            )
        };
        Self {
            last_minute: window(60),
            last_5_minutes: window(300),
            last_hour: window(3600),
        }
    }

    pub(crate) fn merge(&mut self, other: &Windows) {
        self.last_minute.merge(&other.last_minute);
        self.last_5_minutes.merge(&other.last_5_minutes);
        self.last_hour.merge(&other.last_hour);
    }

    /// The window of `span`, if it is one of the three.
    pub fn get(&self, span: Duration) -> Option<&WindowStats> {
        [&self.last_minute, &self.last_5_minutes, &self.last_hour]
            .into_iter()
            .find(|w| w.span == span)
    }
}

/// One model at one moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelMetrics {
    /// The model.
    pub model: ModelId,
    /// Its breaker's state, as its last transition said (`closed` until one arrives).
    pub breaker: CircuitState,
    /// How long the breaker has been in that state (since the monitor started, if it has
    /// not moved).
    #[serde(rename = "breaker_since_seconds", with = "seconds")]
    pub breaker_for: Duration,
    /// Its health, as the registry's last change said (`unknown` until one arrives).
    pub health: HealthStatus,
    /// Failed attempts in a row (reset by an answer).
    pub consecutive_failures: u64,
    /// Outcomes and latencies over each window.
    pub windows: Windows,
    /// Failovers away from it over the monitor's life.
    pub failovers_from: u64,
    /// Times its provider refused the credentials.
    pub credentials_rejected: u64,
    /// Incidents (its breaker opened) over the monitor's life.
    pub incidents: u64,
    /// How long its open incident has lasted (from its breaker opening, through every
    /// half-open probe and reopening, until it closes), if one is open.
    #[serde(rename = "open_incident_seconds", with = "seconds_option")]
    pub open_incident_for: Option<Duration>,
}

/// Requests through one route (a router) at one moment. Reads back from its JSON (a
/// cluster's replicas report theirs), missing fields as 0.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RequestCounts {
    /// Requests a model answered.
    pub answered: u64,
    /// Requests answered with the degraded answer because no model could.
    pub degraded: u64,
    /// Requests that got an error.
    pub failed: u64,
}

impl RequestCounts {
    /// Every request.
    pub fn total(&self) -> u64 {
        self.answered
            .saturating_add(self.degraded)
            .saturating_add(self.failed)
    }

    /// Adds `other`'s requests to these (saturating).
    pub fn add(&mut self, other: &RequestCounts) {
        self.answered = self.answered.saturating_add(other.answered);
        self.degraded = self.degraded.saturating_add(other.degraded);
        self.failed = self.failed.saturating_add(other.failed);
    }

    /// The share of requests a model answered; `None` without requests.
    pub fn availability(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.answered as f64 / total as f64)
    }
}

/// Requests over the three windows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestWindows {
    /// The last minute.
    pub last_minute: RequestCounts,
    /// The last five minutes.
    pub last_5_minutes: RequestCounts,
    /// The last hour.
    pub last_hour: RequestCounts,
}

/// Everything at once, over every model and route.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overall {
    /// Attempts of every model, merged.
    pub attempts: Windows,
    /// Requests of every route.
    pub requests: RequestWindows,
    /// Models whose breaker is not open and whose health is not unhealthy.
    pub models_up: usize,
    /// Models known.
    pub models: usize,
    /// Degraded answers over the monitor's life.
    pub degraded_answers: u64,
    /// The share of requests answered over the last hour (`None` without requests).
    pub reliability: Option<f64>,
    /// Mean time to recover of the incidents that ended, if any did.
    #[serde(rename = "mttr_seconds", with = "seconds_option")]
    pub mttr: Option<Duration>,
}

/// One move of a request from a model to the next.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailoverRecord {
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// The model left.
    pub from: ModelId,
    /// The model tried next.
    pub to: ModelId,
    /// Why `from` was left: a failure or client-error class, or why it was skipped.
    pub reason: String,
    /// Time spent on `from`.
    #[serde(rename = "latency_ms", with = "millis")]
    pub latency: Duration,
}

/// A period in which a model was out: from its breaker opening (or being forced open) to
/// its closing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Incident {
    /// The model.
    pub model: ModelId,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// When it ended, if it has.
    pub ended_unix_ms: Option<u64>,
    /// How long the model took to recover, once it has.
    #[serde(rename = "time_to_recover_seconds", with = "seconds_option")]
    pub time_to_recover: Option<Duration>,
}

/// The gateway's configuration as its last reload left it (from the last
/// [`ConfigReload`](hive_core::ResilienceEvent::ConfigReload) event).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigStatus {
    /// Whether the last reload was accepted (`false`: refused, the old config serves).
    pub accepted: bool,
    /// How many problems refused it (0 when accepted).
    pub problems: u32,
    /// The hash of the configuration serving (`sha256:` and 64 hex digits).
    pub config_hash: String,
    /// When the last reload was tried, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Reloads refused since the last accepted one (0 when the last was accepted).
    pub refused_in_a_row: u32,
}

impl ConfigStatus {
    /// The serving configuration's hash in short: its first 12 hex digits, without the
    /// `sha256:` prefix (as hive-config's `ConfigHash::short` shows it).
    pub fn short_hash(&self) -> &str {
        short_hash(&self.config_hash)
    }
}

/// The first 12 characters of `hash` after its `algorithm:` prefix, if it has one.
pub(crate) fn short_hash(hash: &str) -> &str {
    let digits = hash.split_once(':').map_or(hash, |(_, digits)| digits);
    match digits.char_indices().nth(12) {
        Some((end, _)) => &digits[..end],
        None => digits,
    }
}

/// What the monitor knows at one moment: the dashboard's stream, the alert rules' input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResilienceMetrics {
    /// When it was taken, in milliseconds since the Unix epoch.
    pub taken_unix_ms: u64,
    /// Every model and route together.
    pub overall: Overall,
    /// Per model, in the order they were registered.
    pub models: Vec<ModelMetrics>,
    /// Per route, by name.
    pub routes: BTreeMap<String, RequestWindows>,
    /// The most recent failovers, newest first (bounded).
    pub failovers: Vec<FailoverRecord>,
    /// Open incidents, then the most recently ended ones (bounded).
    pub incidents: Vec<Incident>,
    /// The gateway's configuration as its last reload left it; `None` until a
    /// [`ConfigReload`](hive_core::ResilienceEvent::ConfigReload) event arrives.
    pub config: Option<ConfigStatus>,
    /// This replica's link to its cluster (cluster mode); `None` until a
    /// [`ClusterLink`](hive_core::ResilienceEvent::ClusterLink) event arrives.
    pub cluster: Option<ClusterLinkStatus>,
}

/// This replica's link to the other replicas of its cluster, as its last
/// [`ClusterLink`](hive_core::ResilienceEvent::ClusterLink) event left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterLinkStatus {
    /// Whether the link is up.
    pub up: bool,
    /// Since when it is (in milliseconds since the Unix epoch).
    pub since_unix_ms: u64,
}

impl ResilienceMetrics {
    /// The figures of `model`, if the monitor knows it.
    pub fn model(&self, model: &str) -> Option<&ModelMetrics> {
        self.models.iter().find(|m| m.model == model)
    }
}

mod seconds {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

mod seconds_option {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

mod millis {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::short_hash;

    #[test]
    fn a_short_hash_is_the_first_twelve_digits() {
        let digits = "0123456789abcdef".repeat(4);
        assert_eq!(short_hash(&format!("sha256:{digits}")), "0123456789ab");
        assert_eq!(short_hash(&digits), "0123456789ab");
        assert_eq!(short_hash("sha256:abc"), "abc");
        assert_eq!(short_hash(""), "");
    }
}
