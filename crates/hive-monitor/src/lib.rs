//! Observability for hive-resilience: live snapshots of every model's health and latency,
//! incidents with their time to recover, and the events the layers report.
//!
//! A [`Monitor`] is fed three ways, none of them on a request's path: each model's attempts
//! ([`ModelRecorder`], a few atomic additions: give it to a route as its observer), each
//! route's requests ([`RouteRecorder`]), and the layers' events ([`Monitor::event_sink`], a
//! bounded queue to the monitor's own task). [`Monitor::snapshot`] answers a
//! [`ResilienceMetrics`]: per model and overall, outcomes and latency percentiles over the
//! last minute, five minutes and hour (from mergeable log-linear histograms), breaker state
//! and health, recent failovers, incidents and the mean time to recover.
//!
//! ```
//! use std::time::Duration;
//! use hive_core::{FailureClass, ModelId, Outcome};
//! use hive_monitor::{Monitor, MonitorConfig, RequestResult};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let monitor = Monitor::start(MonitorConfig::default());
//! let gpt = monitor.model(ModelId::new("gpt-4o"));
//! gpt.record(&Outcome::Success, Duration::from_millis(420));
//! gpt.record(&Outcome::failure(FailureClass::RateLimited), Duration::from_millis(30));
//! monitor.route("chat").record(RequestResult::Answered);
//!
//! let snapshot = monitor.snapshot();
//! let minute = &snapshot.model("gpt-4o").unwrap().windows.last_minute;
//! assert_eq!((minute.counts.successes, minute.counts.failed()), (1, 1));
//! assert_eq!(snapshot.overall.requests.last_minute.answered, 1);
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod histogram;
mod monitor;
mod ring;
mod snapshot;

pub use histogram::Histogram;
pub use monitor::{
    ModelRecorder, Monitor, MonitorConfig, RequestResult, RouteRecorder, TimedEvent,
};
pub use snapshot::{
    Counts, FailoverRecord, Incident, ModelMetrics, Overall, Percentiles, RequestCounts,
    RequestWindows, ResilienceMetrics, WindowStats, Windows,
};
