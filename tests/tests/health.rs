//! The health gate with retry and breaker: its rejection is never retried nor counted, and
//! the breaker's transitions feed the registry.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use hive_breaker::{CircuitBreakerConfig, CircuitBreakerLayer};
use hive_core::{HealthStatus, RejectReason, Rejected};
use hive_health::{HealthGateLayer, HealthRegistry};
use hive_retry::{Jitter, RetryConfig, RetryLayer};
use tower::{ServiceBuilder, ServiceExt};

#[tokio::test(start_paused = true)]
async fn a_gate_rejection_is_neither_retried_nor_counted_whatever_the_order() {
    let registry = HealthRegistry::new();
    let health = registry.register("m");
    health.force(HealthStatus::Unhealthy);
    let (breaker, handle) = CircuitBreakerLayer::shared(
        CircuitBreakerConfig::builder()
            .model("m")
            .count_window(2)
            .minimum_calls(1)
            .build()
            .unwrap(),
    );
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    // The gate innermost, the unusual order, so retry and breaker both see its rejection.
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(
            RetryConfig::builder()
                .max_attempts(5)
                .jitter(Jitter::None)
                .build()
                .unwrap(),
        ))
        .layer(breaker)
        .layer(HealthGateLayer::new(health.clone()))
        .service_fn(move |()| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, std::io::Error>(()) }
        });
    let start = tokio::time::Instant::now();
    let err = svc.oneshot(()).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<Rejected>().unwrap().reason,
        RejectReason::Unhealthy
    );
    assert_eq!(start.elapsed(), Duration::ZERO, "no retry, no backoff");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let m = handle.metrics();
    assert_eq!(
        (m.calls, m.state),
        (0, hive_core::CircuitState::Closed),
        "not counted"
    );
}

#[tokio::test(start_paused = true)]
async fn breaker_transitions_degrade_the_model_in_the_registry() {
    let registry = HealthRegistry::new();
    let health = registry.register("m");
    health.record_check(true, Duration::from_millis(10));
    let breaker = CircuitBreakerLayer::new(
        CircuitBreakerConfig::builder()
            .model("m")
            .count_window(2)
            .minimum_calls(2)
            .events(registry.event_sink())
            .build()
            .unwrap(),
    );
    let svc = ServiceBuilder::new()
        .layer(HealthGateLayer::new(health.clone()))
        .layer(breaker)
        .service_fn(|()| async { Err::<(), _>(std::io::Error::other("503")) });
    for _ in 0..2 {
        let _ = svc.clone().oneshot(()).await;
    }
    assert_eq!(registry.status("m"), HealthStatus::Degraded);
    assert!(registry.get("m").unwrap().snapshot().circuit_open);
}
