//! Observability for hive-resilience: live snapshots of every model's health and latency,
//! incidents with their time to recover, and the events the layers report.
//!
//! A [`Monitor`] is fed three ways, none of them on a request's path: each model's attempts
//! ([`ModelRecorder`], a few atomic additions: give it to a route as its observer), each
//! route's requests ([`RouteRecorder`]), and the layers' events ([`Monitor::event_sink`], a
//! bounded queue to the monitor's own task). [`Monitor::snapshot`] answers a
//! [`ResilienceMetrics`]: per model and overall, outcomes and latency percentiles over the
//! last minute, five minutes and hour (from mergeable log-linear histograms), breaker state
//! and health, recent failovers, incidents and the mean time to recover, and the gateway's
//! last config reload ([`ConfigStatus`]).
//!
//! # Metrics
//!
//! Every layer records through the [`metrics`](https://docs.rs/metrics) facade when asked
//! (`.metrics(true)` on its config, or on a `ModelManager` for all of them), with handles
//! registered once per model and label set: a call bumps a counter it already holds — no
//! name lookup, no label formatting, no allocation. [`install_prometheus`] installs the
//! Prometheus recorder (install it before building the layers) and serves the text format
//! as an axum route ([`PrometheusExporter::router`]) or on a port of its own
//! ([`PrometheusExporter::serve`]). The names (also in `hive_core::metric`):
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `hive_calls_total` | counter | `model`, `outcome` | calls through a breaker by outcome: `success`, a client-error class, a failure class, `rejected` (not permitted), `ignored` |
//! | `hive_breaker_state` | gauge | `model`, `state` | 1 for the current state, 0 for the others |
//! | `hive_breaker_transitions_total` | counter | `model`, `from`, `to` | breaker transitions |
//! | `hive_retries_total` | counter | `model`, `class` | retries, by the class of the failure retried |
//! | `hive_retry_stops_total` | counter | `model`, `reason` | failures returned without a retry: `exhausted`, `budget_denied`, `deadline_too_close`, `retry_after_too_long`, `unavailable` |
//! | `hive_health_status` | gauge | `model` | 0 unknown, 1 healthy, 2 degraded, 3 unhealthy |
//! | `hive_health_checks_total` | counter | `model`, `result` | active checks, `passed` or `failed` |
//! | `hive_health_check_duration_seconds` | histogram | `model` | how long active checks took |
//! | `hive_requests_total` | counter | `route`, `result` | requests, `answered`, `degraded` or `failed` |
//! | `hive_request_duration_seconds` | histogram | `route` | whole requests, every attempt and fallback |
//! | `hive_attempt_duration_seconds` | histogram | `model` | attempts on each model |
//! | `hive_failovers_total` | counter | `from`, `to`, `reason` | moves of a request to the next model |
//! | `hive_hedges_total` | counter | `route`, `result` | hedges `fired`, and hedges that `won` |
//! | `hive_last_resort_probes_total` | counter | `model` | probes sent while every model of a request was unavailable |
//! | `hive_stream_first_token_seconds` | histogram | `model` | time to a stream's first chunk |
//! | `hive_stream_cuts_total` | counter | `model` | streams cut short by the provider |
//! | `hive_stream_stalls_total` | counter | `model` | streams that stopped sending chunks |
//! | `hive_models_up` | gauge | | models with a closed breaker and not unhealthy |
//! | `hive_models` | gauge | | models known to the monitor |
//! | `hive_availability_ratio` | gauge | `window` | the share of requests answered over `1m`, `5m`, `1h` |
//! | `hive_alerts_sent_total` | counter | `channel`, `rule` | alert notifications delivered |
//! | `hive_alerts_failed_total` | counter | `channel`, `rule` | alert notifications that could not be delivered |
//! | `hive_alerts_dropped_total` | counter | `channel` | alert notifications dropped (queue full, rate limit, retries spent) |
//! | `hive_events_dropped_total` | counter | | events dropped because the monitor's queue was full |
//!
//! Every `*_seconds` histogram has the buckets [`SECONDS_BUCKETS`] (5 ms to 5 minutes).
//! The set covers what resilience4j-micrometer (`calls{kind}`, `state`, `not_permitted`,
//! retry calls) and LiteLLM's Prometheus integration (requests, failures by class,
//! fallbacks, deployment state, latency and time to first token) report.
//!
//! # Tracing
//!
//! Routers open a span per request (`hive.request`: route, strategy, answering model as
//! `gen_ai.response.model`, attempts, result, latency) and one per attempt inside it
//! (`hive.attempt`: `gen_ai.request.model`, attempt number, outcome, `error.type`,
//! latency; `otel.name` is `chat {model}`), with OpenTelemetry's GenAI semantic-convention
//! names where one exists. Retries inside an attempt are `debug` events with their delay.
//! No prompt text and no secret is ever recorded. Any `tracing` subscriber shows them:
//!
//! ```
//! use tracing_subscriber::fmt::format::FmtSpan;
//!
//! tracing_subscriber::fmt()
//!     .with_span_events(FmtSpan::CLOSE) // one line per request and attempt, with timings
//!     .with_target(false)
//!     .try_init()
//!     .ok();
//! ```
//!
//! # Alerts
//!
//! An [`AlertManager`] evaluates rules over the monitor's snapshots and
//! events and notifies Slack, email, signed webhooks or the log, with Prometheus
//! Alertmanager's incident semantics (deduplication, grouping, repeat, resolve, inhibition,
//! escalation, rate limits, silences) and its timing by default (group wait 30 s, group
//! interval 5 min, repeat interval 4 h): see the [`alert`] module.
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

pub mod alert;
mod histogram;
mod monitor;
mod prometheus;
pub mod report;
mod ring;
pub mod rollup;
mod snapshot;

pub use alert::AlertManager;
pub use histogram::Histogram;
/// The log-linear bucket layout of the monitor's latency histograms (8 sub-buckets per power
/// of two of microseconds, within 6.25%), for stores that keep latencies in the same
/// buckets, such as the gateway's history.
pub mod buckets {
    pub use crate::histogram::{BUCKETS, bucket_of, bucket_range, quantile_nanos};
}
pub use monitor::{
    AttemptTap, ModelRecorder, Monitor, MonitorConfig, RequestResult, RouteRecorder, TimedEvent,
};
pub use prometheus::{ExporterError, PrometheusExporter, SECONDS_BUCKETS, install_prometheus};
pub use snapshot::{
    ClusterLinkStatus, ConfigStatus, Counts, FailoverRecord, Incident, ModelMetrics, Overall,
    Percentiles, RequestCounts, RequestWindows, ResilienceMetrics, WindowStats, Windows,
};
