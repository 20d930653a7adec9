//! The router over whole per-model stacks (gate → retry → breaker): an open breaker or an
//! unhealthy model is skipped without a call, and the router's deadline bounds the retries.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use hive_breaker::{BreakerHandle, CircuitBreakerConfig, CircuitBreakerLayer};
use hive_core::{BoxError, HealthStatus};
use hive_fallback::{FallbackRouter, Route};
use hive_health::{HealthGateLayer, HealthHandle, HealthRegistry};
use hive_retry::{Jitter, RetryConfig, RetryLayer};
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt, util::BoxCloneService};

type Stack = BoxCloneService<(), &'static str, BoxError>;

/// A model stack whose model fails while `failing` says so.
fn stack(
    name: &'static str,
    registry: &HealthRegistry,
    failing: bool,
) -> (Stack, BreakerHandle, HealthHandle, Arc<AtomicU32>) {
    let health = registry.register(name);
    let (breaker, handle) = CircuitBreakerLayer::shared(
        CircuitBreakerConfig::builder()
            .model(name)
            .count_window(2)
            .minimum_calls(2)
            .open_duration(Duration::from_secs(60))
            .build()
            .unwrap(),
    );
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let svc = ServiceBuilder::new()
        .layer(HealthGateLayer::new(health.clone()))
        .layer(RetryLayer::new(
            RetryConfig::builder()
                .model(name)
                .max_attempts(5)
                .backoff(Duration::from_millis(400), Duration::from_secs(2))
                .jitter(Jitter::None)
                .build()
                .unwrap(),
        ))
        .layer(breaker)
        .service_fn(move |()| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if failing {
                    Err(std::io::Error::other("503"))
                } else {
                    Ok(name)
                }
            }
        });
    (BoxCloneService::new(svc), handle, health, calls)
}

#[tokio::test(start_paused = true)]
async fn open_breakers_and_unhealthy_models_are_skipped_and_the_deadline_bounds_retries() {
    let registry = HealthRegistry::new();
    let (primary, primary_breaker, _, primary_calls) = stack("primary", &registry, true);
    let (second, _, second_health, second_calls) = stack("second", &registry, false);
    let (third, _, _, third_calls) = stack("third", &registry, false);
    let router = FallbackRouter::builder()
        .route(Route::new("primary", primary).available_when(primary_breaker.clone()))
        .route(Route::new("second", second).available_when(second_health.clone()))
        .route(Route::new("third", third))
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();

    // The primary fails; its retries (400 ms, then 800 ms) would overrun the 1 s deadline, so
    // retry stops after 2 attempts, which also open its breaker.
    let start = Instant::now();
    let routed = router.clone().oneshot(()).await.unwrap();
    assert_eq!((routed.response, routed.attempts), ("second", 2));
    assert_eq!(primary_calls.load(Ordering::SeqCst), 2);
    assert_eq!(start.elapsed(), Duration::from_millis(400));
    assert_eq!(primary_breaker.state(), hive_core::CircuitState::Open);

    // Now the primary is skipped without a call.
    let routed = router.clone().oneshot(()).await.unwrap();
    assert_eq!((routed.response, routed.attempts), ("second", 1));
    assert_eq!(primary_calls.load(Ordering::SeqCst), 2);

    // And an unhealthy second is skipped too.
    second_health.force(HealthStatus::Unhealthy);
    let routed = router.oneshot(()).await.unwrap();
    assert_eq!((routed.response, routed.attempts), ("third", 1));
    assert_eq!(second_calls.load(Ordering::SeqCst), 2);
    assert_eq!(third_calls.load(Ordering::SeqCst), 1);
}
