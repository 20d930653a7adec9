//! What a store of history keeps per model and minute, and of incidents: [`MinuteRollup`]
//! with its mergeable [`LatencySketch`], and [`IncidentRecord`]. The gateway's SQLite
//! history writes them; [`Report`](crate::report::Report) reads them.

use std::collections::BTreeMap;

use serde::Serialize;

mod sketch;

pub use sketch::LatencySketch;

/// One model's attempts over one wall-clock minute.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MinuteRollup {
    /// The minute's start, in milliseconds since the Unix epoch (a multiple of 60 000).
    pub minute_unix_ms: u64,
    /// The model.
    pub model: String,
    /// Attempts counted: successes, failures, client errors and rejections (an ignored
    /// attempt, one the caller dropped, is not counted).
    pub requests: u64,
    /// Attempts the model answered well.
    pub successes: u64,
    /// Failed attempts by failure class (`rate_limited`, `timeout`, …).
    pub failures: BTreeMap<String, u64>,
    /// Attempts the model answered with a refusal of the request.
    pub client_errors: u64,
    /// Attempts refused before the model (open breaker, unhealthy model).
    pub rejected: u64,
    /// Median latency of the answers (successes and client errors), in milliseconds.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency of the answers, in milliseconds.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency of the answers, in milliseconds.
    pub p99_ms: Option<f64>,
    /// Requests that moved away from this model to another.
    pub failovers_from: u64,
    /// Requests that moved to this model from another.
    pub failovers_to: u64,
    /// The answers' latencies, to merge minutes (the percentiles above are read from it).
    #[serde(skip)]
    pub latency: LatencySketch,
}

impl MinuteRollup {
    /// An empty minute of `model` (`minute_unix_ms` is rounded down to its minute).
    pub fn new(minute_unix_ms: u64, model: impl Into<String>) -> Self {
        Self {
            minute_unix_ms: minute_unix_ms - minute_unix_ms % 60_000,
            model: model.into(),
            requests: 0,
            successes: 0,
            failures: BTreeMap::new(),
            client_errors: 0,
            rejected: 0,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
            failovers_from: 0,
            failovers_to: 0,
            latency: LatencySketch::default(),
        }
    }

    /// Failed attempts, every class together.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Adds `other`'s figures to these (of another minute or model, to sum a span).
    pub fn merge(&mut self, other: &MinuteRollup) {
        self.requests += other.requests;
        self.successes += other.successes;
        for (class, n) in &other.failures {
            *self.failures.entry(class.clone()).or_default() += n;
        }
        self.client_errors += other.client_errors;
        self.rejected += other.rejected;
        self.failovers_from += other.failovers_from;
        self.failovers_to += other.failovers_to;
        self.latency.merge(&other.latency);
        self.update_percentiles();
    }

    /// Reads the percentiles from the latency sketch again.
    pub fn update_percentiles(&mut self) {
        self.p50_ms = self.latency.quantile_ms(0.50);
        self.p95_ms = self.latency.quantile_ms(0.95);
        self.p99_ms = self.latency.quantile_ms(0.99);
    }
}

/// A period in which a model was out: from its breaker opening (or being forced open) to its
/// closing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IncidentRecord {
    /// The model.
    pub model: String,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// When it ended, if it has.
    pub ended_unix_ms: Option<u64>,
    /// The first alert rule a notification about it named, if any was sent.
    pub rule: Option<String>,
    /// Notifications channels accepted about it (one per channel), if any.
    pub notifications: Option<u64>,
}
