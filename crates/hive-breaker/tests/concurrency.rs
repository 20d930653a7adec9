//! Many callers on a multi-thread runtime: exact permit counts and exactly one event per
//! transition.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use hive_breaker::{CircuitBreakerConfig, CircuitBreakerLayer};
use hive_core::{CircuitState, EventSink, RejectReason, Rejected, ResilienceEvent};
use tokio::sync::{Barrier, Semaphore};
use tower::{ServiceBuilder, ServiceExt};

const CALLERS: usize = 64;
const PERMITS: u32 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_n_half_open_permits_among_many_callers_and_one_event_per_transition() {
    let (sink, mut events) = EventSink::channel(4096);
    let config = CircuitBreakerConfig::builder()
        .model("m")
        .count_window(2)
        .minimum_calls(2)
        .open_duration(Duration::from_millis(1))
        .half_open_permits(PERMITS)
        .events(sink)
        .build()
        .unwrap();
    let (layer, handle) = CircuitBreakerLayer::shared(config);
    let gate = Arc::new(Semaphore::new(0));
    let reached = Arc::new(AtomicUsize::new(0));
    let svc = ServiceBuilder::new().layer(layer).service_fn({
        let (gate, reached) = (gate.clone(), reached.clone());
        move |fail: bool| {
            let (gate, reached) = (gate.clone(), reached.clone());
            async move {
                if fail {
                    return Err(std::io::Error::other("down"));
                }
                reached.fetch_add(1, Ordering::SeqCst);
                gate.acquire()
                    .await
                    .map_err(std::io::Error::other)?
                    .forget();
                Ok(())
            }
        }
    });
    for _ in 0..2 {
        let _ = svc.clone().oneshot(true).await;
    }
    assert_eq!(handle.state(), CircuitState::Open);
    // Wait out the 1 ms open duration without sleeping.
    while handle.metrics().open_remaining != Some(Duration::ZERO) {
        tokio::task::yield_now().await;
    }

    let barrier = Arc::new(Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (svc, barrier) = (svc.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                svc.oneshot(false).await
            })
        })
        .collect();
    // Every caller has either reached the model or been rejected; then let the probes finish.
    while (reached.load(Ordering::SeqCst) + handle.metrics().rejected_calls as usize) < CALLERS {
        tokio::task::yield_now().await;
    }
    assert_eq!(reached.load(Ordering::SeqCst), PERMITS as usize);
    gate.add_permits(CALLERS);
    let mut admitted = 0;
    let mut busy = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => admitted += 1,
            Err(e) => {
                assert_eq!(
                    e.downcast_ref::<Rejected>().unwrap().reason,
                    RejectReason::HalfOpenBusy
                );
                busy += 1;
            }
        }
    }
    assert_eq!(
        (admitted, busy),
        (PERMITS as usize, CALLERS - PERMITS as usize)
    );
    assert_eq!(handle.state(), CircuitState::Closed);
    let transitions: Vec<_> = events
        .drain()
        .into_iter()
        .filter_map(|e| match e {
            ResilienceEvent::CircuitTransition { from, to, .. } => Some((from, to)),
            _ => None,
        })
        .collect();
    use CircuitState::*;
    assert_eq!(
        transitions,
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failures_open_the_breaker_exactly_once() {
    let (sink, mut events) = EventSink::channel(100_000);
    let config = CircuitBreakerConfig::builder()
        .count_window(50)
        .minimum_calls(10)
        .consecutive_failures(None)
        .events(sink)
        .build()
        .unwrap();
    let (layer, handle) = CircuitBreakerLayer::shared(config);
    let reached = Arc::new(AtomicUsize::new(0));
    let svc = ServiceBuilder::new().layer(layer).service_fn({
        let reached = reached.clone();
        move |_: ()| {
            reached.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(std::io::Error::other("down")) }
        }
    });
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                for _ in 0..500 {
                    let _ = svc.clone().oneshot(()).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(handle.state(), CircuitState::Open);
    let opened = events
        .drain()
        .into_iter()
        .filter(|e| matches!(e, ResilienceEvent::CircuitTransition { .. }))
        .count();
    assert_eq!(opened, 1);
    let m = handle.metrics();
    let reached = reached.load(Ordering::SeqCst) as u64;
    assert_eq!(reached + m.rejected_calls, 4000);
    assert!(
        reached >= 10,
        "the breaker opened before its minimum of calls"
    );
}
