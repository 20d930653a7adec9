//! The monitor: windows, percentiles, incidents and time to recover, failovers, events out
//! of order, and the JSON a dashboard reads (paused time).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hive_core::{
    CircuitState, FailureClass, HealthStatus, ModelId, Outcome, RejectReason, ResilienceEvent,
};
use hive_monitor::{Monitor, MonitorConfig, RequestResult};
use tokio::time::advance;

fn transition(
    model: &str,
    from: CircuitState,
    to: CircuitState,
    generation: u64,
) -> ResilienceEvent {
    ResilienceEvent::CircuitTransition {
        model: ModelId::new(model),
        from,
        to,
        generation,
        failure_rate: None,
        slow_call_rate: None,
    }
}

/// Lets the monitor's task take the queued events.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn windows_count_outcomes_and_latencies_per_model_and_overall() {
    let monitor = Monitor::start(MonitorConfig::default());
    let a = monitor.model(ModelId::new("a"));
    let b = monitor.model(ModelId::new("b"));
    for ms in 1..=100 {
        a.record(&Outcome::Success, Duration::from_millis(ms * 10));
    }
    a.record(
        &Outcome::failure(FailureClass::Timeout),
        Duration::from_secs(30),
    );
    b.record(
        &Outcome::Rejected(RejectReason::Unavailable),
        Duration::ZERO,
    );
    b.record(&Outcome::Success, Duration::from_millis(50));
    let snapshot = monitor.snapshot();
    let a_minute = &snapshot.model("a").unwrap().windows.last_minute;
    assert_eq!(a_minute.counts.successes, 100);
    assert_eq!(a_minute.counts.failures[&FailureClass::Timeout], 1);
    assert_eq!(a_minute.counts.failure_rate(), Some(1.0 / 101.0));
    let p50 = a_minute.latency.unwrap().p50.as_millis();
    assert!((470..=530).contains(&p50), "p50 {p50} ms");
    let p99 = a_minute.latency.unwrap().p99.as_millis();
    assert!((930..=1060).contains(&p99), "p99 {p99} ms");
    assert_eq!(snapshot.model("a").unwrap().consecutive_failures, 1);
    let overall = &snapshot.overall.attempts.last_minute.counts;
    assert_eq!(
        (overall.successes, overall.rejected, overall.total()),
        (101, 1, 103)
    );
    // Six minutes later: out of the minute and the five minutes, still in the hour.
    advance(Duration::from_secs(360)).await;
    let snapshot = monitor.snapshot();
    let windows = &snapshot.model("a").unwrap().windows;
    assert_eq!(windows.last_minute.counts.total(), 0);
    assert_eq!(windows.last_5_minutes.counts.total(), 0);
    assert_eq!(windows.last_hour.counts.total(), 101);
    assert_eq!(windows.last_minute.latency, None);
}

#[tokio::test(start_paused = true)]
async fn an_incident_runs_from_the_breaker_opening_to_its_closing() {
    let monitor = Monitor::start(MonitorConfig::default());
    monitor.model(ModelId::new("gpt-4o"));
    let sink = monitor.event_sink();
    use CircuitState::*;
    sink.emit(|| transition("gpt-4o", Closed, Open, 1));
    settle().await;
    let snapshot = monitor.snapshot();
    let model = snapshot.model("gpt-4o").unwrap();
    assert_eq!((model.breaker, model.incidents), (Open, 1));
    assert_eq!(snapshot.overall.models_up, 0);
    assert_eq!(snapshot.incidents.len(), 1);
    assert_eq!(snapshot.incidents[0].time_to_recover, None);
    advance(Duration::from_secs(42)).await;
    // Out of order: the close (generation 3) before the half-open (generation 2).
    sink.emit(|| transition("gpt-4o", HalfOpen, Closed, 3));
    sink.emit(|| transition("gpt-4o", Open, HalfOpen, 2));
    settle().await;
    let snapshot = monitor.snapshot();
    let model = snapshot.model("gpt-4o").unwrap();
    assert_eq!(model.breaker, Closed, "the late half-open is ignored");
    assert_eq!(snapshot.overall.models_up, 1);
    assert_eq!(
        snapshot.incidents[0].time_to_recover,
        Some(Duration::from_secs(42))
    );
    assert_eq!(snapshot.overall.mttr, Some(Duration::from_secs(42)));
}

#[tokio::test(start_paused = true)]
async fn failovers_health_and_requests_show_in_the_snapshot_and_its_json() {
    let monitor = Monitor::start(MonitorConfig {
        failovers: 2,
        ..MonitorConfig::default()
    });
    monitor.model(ModelId::new("a"));
    let sink = monitor.event_sink();
    for i in 0..3u64 {
        sink.emit(|| ResilienceEvent::Failover {
            from: ModelId::new("a"),
            to: ModelId::new("b"),
            reason: Outcome::failure(FailureClass::RateLimited),
            latency: Duration::from_millis(i),
        });
    }
    sink.emit(|| ResilienceEvent::HealthChanged {
        model: ModelId::new("a"),
        from: HealthStatus::Healthy,
        to: HealthStatus::Unhealthy,
        reason: "3 failed checks",
    });
    let route = monitor.route("chat");
    route.record(RequestResult::Answered);
    route.record(RequestResult::Degraded);
    route.record(RequestResult::Failed);
    settle().await;
    let snapshot = monitor.snapshot();
    assert_eq!(snapshot.failovers.len(), 2, "bounded, newest first");
    assert_eq!(snapshot.failovers[0].latency, Duration::from_millis(2));
    assert_eq!(snapshot.failovers[0].reason, "rate_limited");
    let a = snapshot.model("a").unwrap();
    assert_eq!((a.health, a.failovers_from), (HealthStatus::Unhealthy, 3));
    let chat = &snapshot.routes["chat"].last_minute;
    assert_eq!((chat.answered, chat.degraded, chat.failed), (1, 1, 1));
    assert_eq!(snapshot.overall.degraded_answers, 1);
    assert_eq!(snapshot.overall.reliability, Some(1.0 / 3.0));
    let json = serde_json::to_value(&snapshot).unwrap();
    assert_eq!(json["models"][0]["model"], "a");
    assert_eq!(json["models"][0]["health"], "unhealthy");
    assert_eq!(json["models"][0]["breaker"], "closed");
    assert_eq!(json["failovers"][0]["from"], "a");
    assert_eq!(json["routes"]["chat"]["last_minute"]["degraded"], 1);
    assert!(json["overall"]["attempts"]["last_minute"]["span_seconds"].as_f64() == Some(60.0));
}

#[tokio::test(start_paused = true)]
async fn the_last_config_reload_shows_in_the_snapshot_and_its_json() {
    let monitor = Monitor::start(MonitorConfig::default());
    assert_eq!(monitor.snapshot().config, None, "no reload yet");
    let hash = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let sink = monitor.event_sink();
    for (accepted, problems) in [(true, 0), (false, 4), (false, 2)] {
        sink.emit(|| ResilienceEvent::ConfigReload {
            accepted,
            problems,
            config_hash: hash.clone(),
        });
    }
    settle().await;
    let snapshot = monitor.snapshot();
    let config = snapshot.config.clone().unwrap();
    assert_eq!(
        (config.accepted, config.problems, config.refused_in_a_row),
        (false, 2, 2)
    );
    assert_eq!(config.config_hash, hash);
    assert_eq!(config.short_hash(), "0123456789ab");
    assert!(config.at_unix_ms > 0 && config.at_unix_ms <= snapshot.taken_unix_ms);
    assert!(snapshot.models.is_empty(), "a reload is about no model");
    let json = serde_json::to_value(&snapshot).unwrap();
    assert_eq!(
        json["config"],
        serde_json::json!({
            "accepted": false,
            "problems": 2,
            "config_hash": hash,
            "at_unix_ms": config.at_unix_ms,
            "refused_in_a_row": 2,
        })
    );
    // Accepted: the count of refusals starts again.
    sink.emit(|| ResilienceEvent::ConfigReload {
        accepted: true,
        problems: 0,
        config_hash: hash.clone(),
    });
    settle().await;
    let config = monitor.snapshot().config.unwrap();
    assert_eq!(
        (config.accepted, config.problems, config.refused_in_a_row),
        (true, 0, 0)
    );
}
