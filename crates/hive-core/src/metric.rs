//! The names of every metric the project records (through the `metrics` facade), in one
//! place so that layers, the monitor, dashboards and the docs agree. Prometheus
//! conventions: a `hive_` prefix, base units, `_total` for counters, `_seconds` for
//! durations. Label values are the stable names of the vocabulary (`ModelId`,
//! `FailureClass::as_str`, `CircuitState::as_str`, …).

/// Counter: calls that reached a model's breaker, by `model` and `outcome` (`success`, a
/// client-error class such as `bad_request`, a failure class such as `rate_limited`,
/// `rejected` for calls not permitted, `ignored`).
pub const CALLS_TOTAL: &str = "hive_calls_total";
/// Gauge: 1 for a breaker's current state, 0 for the others; labels `model`, `state`.
pub const BREAKER_STATE: &str = "hive_breaker_state";
/// Counter: breaker transitions, by `model`, `from` and `to`.
pub const BREAKER_TRANSITIONS_TOTAL: &str = "hive_breaker_transitions_total";
/// Counter: retries started, by `model` and the `class` of the failure retried.
pub const RETRIES_TOTAL: &str = "hive_retries_total";
/// Counter: failures returned without a further attempt, by `model` and `reason`
/// (`exhausted`, `budget_denied`, `deadline_too_close`, `retry_after_too_long`,
/// `unavailable`).
pub const RETRY_STOPS_TOTAL: &str = "hive_retry_stops_total";
/// Gauge: a model's health, by `model`: 0 unknown, 1 healthy, 2 degraded, 3 unhealthy.
pub const HEALTH_STATUS: &str = "hive_health_status";
/// Counter: active health checks, by `model` and `result` (`passed`, `failed`).
pub const HEALTH_CHECKS_TOTAL: &str = "hive_health_checks_total";
/// Histogram: how long active health checks took, by `model`.
pub const HEALTH_CHECK_DURATION_SECONDS: &str = "hive_health_check_duration_seconds";
/// Counter: requests through a router, by `route` and `result` (`answered`, `degraded`,
/// `failed`).
pub const REQUESTS_TOTAL: &str = "hive_requests_total";
/// Histogram: how long whole requests took (every attempt and fallback), by `route`.
pub const REQUEST_DURATION_SECONDS: &str = "hive_request_duration_seconds";
/// Histogram: how long attempts on a model took, by `model`.
pub const ATTEMPT_DURATION_SECONDS: &str = "hive_attempt_duration_seconds";
/// Counter: moves of a request from a model to the next, by `from`, `to` and `reason`.
pub const FAILOVERS_TOTAL: &str = "hive_failovers_total";
/// Counter: hedges, by `route` and `result` (`fired`: a hedge started; `won`: a hedge
/// answered first).
pub const HEDGES_TOTAL: &str = "hive_hedges_total";
/// Counter: last-resort probes sent while every model of a request was unavailable, by
/// `model`.
pub const LAST_RESORT_PROBES_TOTAL: &str = "hive_last_resort_probes_total";
/// Histogram: time to a stream's first chunk, by `model`.
pub const STREAM_FIRST_TOKEN_SECONDS: &str = "hive_stream_first_token_seconds";
/// Counter: streams the provider cut short, by `model`.
pub const STREAM_CUTS_TOTAL: &str = "hive_stream_cuts_total";
/// Counter: streams that stalled (no chunk within the idle limit), by `model`.
pub const STREAM_STALLS_TOTAL: &str = "hive_stream_stalls_total";
/// Gauge: models whose breaker is not open and that are not unhealthy.
pub const MODELS_UP: &str = "hive_models_up";
/// Gauge: models known to the monitor.
pub const MODELS: &str = "hive_models";
/// Gauge: the share of requests a model answered, by `window` (`1m`, `5m`, `1h`).
pub const AVAILABILITY_RATIO: &str = "hive_availability_ratio";
/// Counter: alert notifications delivered, by `channel` and `rule`.
pub const ALERTS_SENT_TOTAL: &str = "hive_alerts_sent_total";
/// Counter: alert notifications that failed to be delivered, by `channel` and `rule`.
pub const ALERTS_FAILED_TOTAL: &str = "hive_alerts_failed_total";
/// Counter: alert notifications dropped (queue full, or retries spent), by `channel`.
pub const ALERTS_DROPPED_TOTAL: &str = "hive_alerts_dropped_total";
/// Counter: events dropped because a bounded event queue was full.
pub const EVENTS_DROPPED_TOTAL: &str = "hive_events_dropped_total";
/// Counter: events lost because a listener panicked.
pub const EVENT_LISTENER_PANICS_TOTAL: &str = "hive_event_listener_panics_total";
