//! Health metrics, registered once per model when the registry first sees it.

use std::time::Duration;

use hive_core::{HealthStatus, ModelId, metric};
use metrics::{Counter, Gauge, Histogram};

/// One model's handles on the installed `metrics` recorder.
#[derive(Debug)]
pub(crate) struct Instruments {
    status: Gauge,
    passed: Counter,
    failed: Counter,
    duration: Histogram,
}

impl Instruments {
    pub(crate) fn register(model: ModelId) -> Self {
        let name = model.as_str();
        let checks = |result: &'static str| metrics::counter!(metric::HEALTH_CHECKS_TOTAL, "model" => name, "result" => result);
        let status = metrics::gauge!(metric::HEALTH_STATUS, "model" => name);
        status.set(f64::from(HealthStatus::Unknown as u8));
        Self {
            status,
            passed: checks("passed"),
            failed: checks("failed"),
            duration: metrics::histogram!(metric::HEALTH_CHECK_DURATION_SECONDS, "model" => name),
        }
    }

    /// Sets the status gauge (0 unknown, 1 healthy, 2 degraded, 3 unhealthy).
    pub(crate) fn status(&self, status: HealthStatus) {
        self.status.set(f64::from(status as u8));
    }

    /// Counts one active check and its duration.
    pub(crate) fn check(&self, passed: bool, took: Duration) {
        if passed { &self.passed } else { &self.failed }.increment(1);
        self.duration.record(took.as_secs_f64());
    }
}
