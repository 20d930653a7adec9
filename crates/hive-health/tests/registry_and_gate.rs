//! Passive signals, operator overrides, latency, and the gate.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hive_core::{
    CircuitState, FailureClass, HealthStatus::*, Outcome, RejectReason, Rejected, ResilienceEvent,
};
use hive_health::{HealthGateLayer, HealthRegistry};
use tower::{Service, ServiceExt};

#[tokio::test(start_paused = true)]
async fn an_open_breaker_degrades_a_healthy_model_until_it_closes() {
    let registry = HealthRegistry::new();
    let m = registry.register("m");
    m.record_check(true, Duration::from_millis(20));
    assert_eq!(m.status(), Healthy);
    let sink = registry.event_sink();
    let transition = |to| ResilienceEvent::CircuitTransition {
        model: "m".into(),
        from: CircuitState::Closed,
        to,
        generation: 1,
        failure_rate: None,
        slow_call_rate: None,
    };
    sink.emit(|| transition(CircuitState::Open));
    assert_eq!(m.status(), Degraded);
    assert!(m.snapshot().circuit_open);
    sink.emit(|| transition(CircuitState::HalfOpen));
    assert_eq!(m.status(), Healthy);
    // An unhealthy model stays unhealthy whatever the breaker does.
    for _ in 0..3 {
        m.record_check(false, Duration::ZERO);
    }
    sink.emit(|| transition(CircuitState::Closed));
    assert_eq!(m.status(), Unhealthy);
}

#[tokio::test(start_paused = true)]
async fn a_forced_status_wins_until_cleared() {
    let registry = HealthRegistry::new();
    let m = registry.register("m");
    m.record_check(true, Duration::ZERO);
    let change = m.force(Unhealthy).unwrap();
    assert_eq!(
        (change.from, change.to, change.cause),
        (Healthy, Unhealthy, hive_health::ChangeCause::Operator)
    );
    m.record_check(true, Duration::ZERO);
    assert_eq!(m.status(), Unhealthy);
    assert_eq!(m.snapshot().probe_status, Healthy);
    m.clear_forced();
    assert_eq!(m.status(), Healthy);
}

#[tokio::test(start_paused = true)]
async fn latency_and_error_rate_are_averaged_and_slowness_degrades() {
    let registry = HealthRegistry::builder()
        .degraded_latency(Duration::from_millis(500))
        .ewma_weight(0.5)
        .build()
        .unwrap();
    let m = registry.register("m");
    m.record_check(true, Duration::from_millis(100));
    assert_eq!(m.snapshot().latency_ewma, Some(Duration::from_millis(100)));
    m.record_outcome(&Outcome::Success, Duration::from_millis(1_100));
    assert_eq!(m.snapshot().latency_ewma, Some(Duration::from_millis(600)));
    assert_eq!(m.status(), Degraded);
    m.record_outcome(
        &Outcome::failure(FailureClass::Timeout),
        Duration::from_secs(30),
    );
    assert_eq!(m.snapshot().error_rate, 0.5);
    assert_eq!(
        m.snapshot().latency_ewma,
        Some(Duration::from_millis(600)),
        "failures carry no latency"
    );
    m.record_outcome(&Outcome::Success, Duration::from_millis(200));
    assert_eq!(m.status(), Healthy);
    assert_eq!(m.snapshot().error_rate, 0.25);
}

#[tokio::test(start_paused = true)]
async fn the_gate_rejects_only_unhealthy_models() {
    let registry = HealthRegistry::new();
    let handle = registry.register("m");
    let mut svc = tower::ServiceBuilder::new()
        .layer(HealthGateLayer::new(handle.clone()))
        .service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) });
    for status in [Unknown, Healthy, Degraded] {
        handle.force(status);
        assert_eq!(
            svc.ready().await.unwrap().call(7).await.unwrap(),
            7,
            "{status}"
        );
    }
    handle.force(Unhealthy);
    let err = svc.ready().await.unwrap().call(7).await.unwrap_err();
    let rejected = err.downcast_ref::<Rejected>().unwrap();
    assert_eq!(
        (rejected.model.as_str(), rejected.reason),
        ("m", RejectReason::Unhealthy)
    );
    assert_eq!(
        hive_core::classify_error(&*err),
        Outcome::Rejected(RejectReason::Unhealthy)
    );
}

#[tokio::test]
async fn the_gate_calls_the_inner_service_only_when_ready() {
    let registry = HealthRegistry::new();
    let (mut svc, mut handle) =
        tower_test::mock::spawn_layer::<(), (), _>(HealthGateLayer::new(registry.register("m")));
    handle.allow(0);
    assert!(svc.poll_ready().is_pending());
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let response = svc.call(());
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(());
    response.await.unwrap();
}
