//! Edges of the health rules that mutation testing (cargo-mutants, see TESTING.md) found
//! untested: limits met exactly, what counts as recovered, what a breaker reset keeps, and
//! what the registry shows. Paused time, exact statuses.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hive_core::{
    Available, CircuitState, FailureClass, HealthStatus, HealthStatus::*, ModelId, Outcome,
};
use hive_health::{ChangeCause, HealthChange, HealthRegistry};

fn change(cause: ChangeCause, checks_from: HealthStatus, checks_to: HealthStatus) -> HealthChange {
    HealthChange {
        model: ModelId::from("m"),
        from: checks_from,
        to: checks_to,
        checks_from,
        checks_to,
        cause,
    }
}

#[test]
fn recovered_means_a_passed_check_that_brings_failed_checks_back_to_healthy() {
    use ChangeCause::*;
    let cases = [
        (CheckPassed, Degraded, Healthy, true),
        (CheckPassed, Unhealthy, Healthy, true),
        (CheckPassed, Unknown, Healthy, false),
        (CheckPassed, Unhealthy, Degraded, false),
        (CheckPassed, Degraded, Degraded, false),
        (CheckFailed, Degraded, Unhealthy, false),
        (Circuit, Degraded, Healthy, false),
        (Operator, Unhealthy, Healthy, false),
    ];
    for (cause, from, to, recovered) in cases {
        assert_eq!(
            change(cause, from, to).checks_recovered(),
            recovered,
            "{cause:?}: {from:?} → {to:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_failure_rate_equal_to_the_limit_does_not_degrade() {
    let registry = HealthRegistry::builder()
        .ewma_weight(0.5)
        .degraded_error_rate(0.5)
        .build()
        .unwrap();
    let m = registry.register("m");
    let failure = Outcome::failure(FailureClass::Unavailable);
    assert_eq!(m.record_outcome(&failure, Duration::ZERO), None);
    let snapshot = m.snapshot();
    assert_eq!(snapshot.error_rate, 0.5);
    assert!(!snapshot.error_rate_high);
    assert_eq!(m.status(), Unknown);
    let change = m.record_outcome(&failure, Duration::ZERO).unwrap();
    assert_eq!(
        (change.from, change.to, change.cause),
        (Unknown, Degraded, ChangeCause::ErrorRate),
        "0.75 is above"
    );
}

#[tokio::test(start_paused = true)]
async fn a_latency_equal_to_the_limit_is_not_slow() {
    let registry = HealthRegistry::builder()
        .degraded_latency(Duration::from_millis(100))
        .build()
        .unwrap();
    let m = registry.register("m");
    assert_eq!(
        m.record_check(true, Duration::from_millis(100)),
        Some(change(ChangeCause::CheckPassed, Unknown, Healthy)),
        "a latency equal to the limit: healthy, not degraded"
    );
    assert_eq!(m.snapshot().latency_ewma, Some(Duration::from_millis(100)));
    assert!(!m.snapshot().slow);
    assert_eq!(m.status(), Healthy);
    // 100 ms + 0.2 × (300 − 100) ms = 140 ms: above.
    let change = m
        .record_outcome(&Outcome::Success, Duration::from_millis(300))
        .unwrap();
    assert_eq!(
        (change.from, change.to, change.cause),
        (Healthy, Degraded, ChangeCause::Latency)
    );
}

#[tokio::test(start_paused = true)]
async fn forgetting_the_breaker_keeps_the_checks_view_and_a_forced_status() {
    let registry = HealthRegistry::new();
    let m = registry.register("m");
    m.record_check(true, Duration::ZERO);
    m.set_circuit(CircuitState::Open, 5);
    assert_eq!(m.status(), Degraded);
    let change = m.reset_circuit().unwrap();
    assert_eq!(
        (change.from, change.to, change.checks_to),
        (Degraded, Healthy, Healthy)
    );
    let snapshot = m.snapshot();
    assert_eq!(
        (
            snapshot.probe_status,
            snapshot.circuit_open,
            snapshot.circuit_generation
        ),
        (Healthy, false, 0)
    );

    m.force(Unhealthy);
    m.set_circuit(CircuitState::Open, 1);
    m.reset_circuit();
    let snapshot = m.snapshot();
    assert_eq!(
        (snapshot.status, snapshot.forced, snapshot.probe_status),
        (Unhealthy, Some(Unhealthy), Healthy)
    );
}

#[tokio::test(start_paused = true)]
async fn only_an_unhealthy_model_is_unavailable() {
    let registry = HealthRegistry::builder()
        .unhealthy_threshold(2)
        .build()
        .unwrap();
    let m = registry.register("m");
    assert!(m.available(), "unknown");
    m.record_check(true, Duration::ZERO);
    assert!(m.available(), "healthy");
    m.record_check(false, Duration::ZERO);
    assert_eq!(m.status(), Degraded);
    assert!(m.available(), "degraded");
    m.record_check(false, Duration::ZERO);
    assert_eq!(m.status(), Unhealthy);
    assert!(!m.available(), "unhealthy");
}

#[tokio::test(start_paused = true)]
async fn the_registry_snapshot_lists_every_model_by_name() {
    let registry = HealthRegistry::new();
    registry.register("b").record_check(true, Duration::ZERO);
    registry.register("a");
    let models: Vec<_> = registry
        .snapshot()
        .into_iter()
        .map(|s| (s.model.as_str(), s.status, s.checks))
        .collect();
    assert_eq!(models, [("a", Unknown, 0), ("b", Healthy, 1)]);
}

#[tokio::test(start_paused = true)]
async fn debug_shows_the_settings_and_each_model() {
    let registry = HealthRegistry::new();
    let debug = format!("{registry:?}");
    assert!(
        debug.starts_with(
            "HealthRegistry { config: RegistryConfig { healthy_threshold: 2, \
             unhealthy_threshold: 3, degraded_latency: None, degraded_error_rate: Some(0.5), \
             ewma_weight: 0.2, "
        ),
        "{debug}"
    );
    assert!(debug.ends_with(" }, models: [] }"), "{debug}");
    let m = registry.register("m");
    m.record_check(true, Duration::ZERO);
    assert_eq!(
        format!("{m:?}"),
        r#"HealthHandle { model: "m", status: Healthy }"#
    );
    assert!(
        format!("{registry:?}")
            .contains(r#"models: [HealthSnapshot { model: "m", status: Healthy"#)
    );
}
