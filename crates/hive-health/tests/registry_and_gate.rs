//! Passive signals, operator overrides, latency, and the gate.

#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use hive_core::{
    CircuitState, EventSink, FailureClass, HealthStatus::*, Outcome, RejectReason, Rejected,
    ResilienceEvent, splitmix64,
};
use hive_health::{ChangeCause, HealthGateLayer, HealthRegistry};
use tokio::sync::Barrier;
use tower::{Service, ServiceExt};

/// The event a breaker of model "m" emits for its transition into `to` in `generation`.
fn transition(from: CircuitState, to: CircuitState, generation: u64) -> ResilienceEvent {
    ResilienceEvent::CircuitTransition {
        model: "m".into(),
        from,
        to,
        generation,
        failure_rate: None,
        slow_call_rate: None,
    }
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_degrades_a_healthy_model_until_it_closes() {
    use CircuitState::*;
    let registry = HealthRegistry::new();
    let m = registry.register("m");
    m.record_check(true, Duration::from_millis(20));
    assert_eq!(m.status(), Healthy);
    let sink = registry.event_sink();
    sink.emit(|| transition(Closed, Open, 1));
    assert_eq!(m.status(), Degraded);
    assert!(m.snapshot().circuit_open);
    sink.emit(|| transition(Open, HalfOpen, 2));
    assert_eq!(m.status(), Healthy);
    // An unhealthy model stays unhealthy whatever the breaker does.
    for _ in 0..3 {
        m.record_check(false, Duration::ZERO);
    }
    sink.emit(|| transition(HalfOpen, Closed, 3));
    assert_eq!(m.status(), Unhealthy);
    assert_eq!(m.snapshot().circuit_generation, 3);
}

#[tokio::test(start_paused = true)]
async fn a_late_breaker_transition_never_undoes_a_newer_one() {
    use CircuitState::*;
    let registry = HealthRegistry::new();
    let m = registry.register("m");
    m.record_check(true, Duration::ZERO);
    let mut changes = registry.subscribe();
    let sink = registry.event_sink();

    // Open (1), then HalfOpen → Closed (3) before the late Open → HalfOpen (2).
    sink.emit(|| transition(Closed, Open, 1));
    sink.emit(|| transition(HalfOpen, Closed, 3));
    sink.emit(|| transition(Open, HalfOpen, 2));
    let snapshot = m.snapshot();
    assert_eq!(
        (
            snapshot.status,
            snapshot.circuit_open,
            snapshot.circuit_generation
        ),
        (Healthy, false, 3)
    );

    // Reopened after a failed probe (6) before the late Open → HalfOpen (5): still open.
    sink.emit(|| transition(Closed, Open, 4));
    sink.emit(|| transition(HalfOpen, Open, 6));
    assert_eq!(m.set_circuit(HalfOpen, 5), None, "late: ignored");
    let snapshot = m.snapshot();
    assert_eq!(
        (
            snapshot.status,
            snapshot.circuit_open,
            snapshot.circuit_generation
        ),
        (Degraded, true, 6)
    );

    // Closed (8) before the late Open → HalfOpen (7) and a replayed Closed → Open (4).
    sink.emit(|| transition(HalfOpen, Closed, 8));
    assert_eq!(m.set_circuit(HalfOpen, 7), None);
    assert_eq!(m.set_circuit(Open, 4), None);
    assert_eq!(m.set_circuit(Open, 8), None, "the same generation again");
    assert_eq!(m.set_circuit(Open, 0), None, "0 is before any transition");
    assert_eq!((m.status(), m.snapshot().circuit_generation), (Healthy, 8));

    let seen: Vec<_> = std::iter::from_fn(|| changes.try_recv().ok())
        .map(|c| (c.from, c.to, c.cause))
        .collect();
    let circuit = ChangeCause::Circuit;
    assert_eq!(
        seen,
        [
            (Healthy, Degraded, circuit),
            (Degraded, Healthy, circuit),
            (Healthy, Degraded, circuit),
            (Degraded, Healthy, circuit),
        ]
    );
}

/// Many tasks deliver one breaker's transitions at once, each generation to a task picked at
/// random (a seeded shuffle), so they arrive in no particular order; every task sees the
/// registry at least as new as what it delivered, and the model ends at the newest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transitions_delivered_by_many_threads_in_any_order_end_at_the_newest() {
    use CircuitState::*;
    const TRANSITIONS: u64 = 4_001; // odd: the newest is an Open
    const TASKS: usize = 8;
    let state = |generation: u64| if generation % 2 == 1 { Open } else { Closed };
    for round in 0..200u64 {
        let registry = HealthRegistry::new();
        let m = registry.register("m");
        let mut generations: Vec<u64> = (1..=TRANSITIONS).collect();
        let mut seed = round;
        for i in (1..generations.len()).rev() {
            let j = (splitmix64(&mut seed) % (i as u64 + 1)) as usize;
            generations.swap(i, j);
        }
        let barrier = Arc::new(Barrier::new(TASKS));
        let tasks: Vec<_> = generations
            .chunks(generations.len().div_ceil(TASKS))
            .map(|chunk| {
                // Each task delivers its share oldest first, so the tasks race on
                // neighbouring generations the whole time.
                let mut chunk = chunk.to_vec();
                chunk.sort_unstable();
                let (m, barrier) = (m.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    for generation in chunk {
                        m.set_circuit(state(generation), generation);
                        // Applied or too old: either way the registry is at least this new.
                        let applied = m.snapshot().circuit_generation;
                        assert!(applied >= generation, "{applied} after {generation}");
                    }
                })
            })
            .collect();
        assert_eq!(tasks.len(), TASKS);
        for task in tasks {
            task.await.unwrap();
        }
        let snapshot = m.snapshot();
        assert_eq!(
            (
                snapshot.circuit_generation,
                snapshot.circuit_open,
                snapshot.status
            ),
            (TRANSITIONS, true, Degraded),
            "round {round}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_replaced_breaker_starts_its_generations_again_after_a_reset() {
    use CircuitState::*;
    let registry = HealthRegistry::new();
    let m = registry.register("m");
    m.set_circuit(Open, 5);
    assert_eq!(m.status(), Degraded);
    assert_eq!(
        m.set_circuit(Open, 1),
        None,
        "the new breaker's first: too old"
    );
    let change = m.reset_circuit().unwrap();
    assert_eq!((change.from, change.to), (Degraded, Unknown));
    let snapshot = m.snapshot();
    assert_eq!(
        (snapshot.circuit_open, snapshot.circuit_generation),
        (false, 0)
    );
    assert!(m.set_circuit(Open, 1).is_some());
    assert_eq!((m.status(), m.snapshot().circuit_generation), (Degraded, 1));
}

#[tokio::test(start_paused = true)]
async fn a_degraded_model_needs_healthy_threshold_passes_in_a_row() {
    let registry = HealthRegistry::builder()
        .healthy_threshold(3)
        .unhealthy_threshold(5)
        .build()
        .unwrap();
    let m = registry.register("m");
    let check = |ok| {
        m.record_check(ok, Duration::ZERO);
        m.status()
    };
    assert_eq!(check(true), Healthy, "a new model needs one");
    assert_eq!(check(false), Degraded);
    assert_eq!(check(true), Degraded);
    assert_eq!(check(true), Degraded);
    assert_eq!(check(false), Degraded, "the streak starts again");
    assert_eq!(check(true), Degraded);
    assert_eq!(check(true), Degraded);
    let change = m.record_check(true, Duration::ZERO).unwrap();
    assert_eq!(
        (change.from, change.to, change.cause),
        (Degraded, Healthy, ChangeCause::CheckPassed)
    );
    assert!(change.checks_recovered());
    assert_eq!(m.snapshot().consecutive_successes, 3);
    // From unhealthy, the same.
    for _ in 0..5 {
        m.record_check(false, Duration::ZERO);
    }
    assert_eq!(m.status(), Unhealthy);
    assert_eq!(
        [check(true), check(true), check(true)],
        [Unhealthy, Unhealthy, Healthy]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_rate_above_the_limit_degrades_a_model_and_the_gate_lets_it_through() {
    let (sink, mut events) = EventSink::channel(100);
    let registry = HealthRegistry::builder().events(sink).build().unwrap(); // limit 0.5, weight 0.2
    let m = registry.register("m");
    m.record_check(true, Duration::from_millis(10));
    let failure = Outcome::failure(FailureClass::Unavailable);
    // 0.2, 0.36, 0.488: not above 0.5.
    for _ in 0..3 {
        assert_eq!(m.record_outcome(&failure, Duration::ZERO), None);
    }
    assert_eq!(m.status(), Healthy);
    // 0.5904: degraded.
    let change = m.record_outcome(&failure, Duration::ZERO).unwrap();
    assert_eq!(
        (change.from, change.to, change.cause),
        (Healthy, Degraded, ChangeCause::ErrorRate)
    );
    let snapshot = m.snapshot();
    assert!(snapshot.error_rate_high && !snapshot.slow && !snapshot.circuit_open);
    assert!((snapshot.error_rate - (1.0 - 0.8f64.powi(4))).abs() < 1e-12);
    assert!(
        hive_core::Available::available(&m),
        "degraded passes the gate"
    );
    // One answer: 0.47232, back to healthy.
    let change = m
        .record_outcome(&Outcome::Success, Duration::from_millis(10))
        .unwrap();
    assert_eq!(
        (change.from, change.to, change.cause),
        (Degraded, Healthy, ChangeCause::ErrorRate)
    );
    let reasons: Vec<_> = events
        .drain()
        .into_iter()
        .filter_map(|e| match e {
            ResilienceEvent::HealthChanged { to, reason, .. } => Some((to, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (Healthy, "check passed"),
            (Degraded, "error rate"),
            (Healthy, "error rate")
        ]
    );

    // Failed checks feed it too; the limit can be lower, or off.
    let registry = HealthRegistry::builder()
        .degraded_error_rate(0.3)
        .unhealthy_threshold(10)
        .build()
        .unwrap();
    let m = registry.register("m");
    m.record_check(true, Duration::ZERO);
    m.record_check(false, Duration::ZERO); // 0.2
    assert!(!m.snapshot().error_rate_high);
    let change = m.record_check(false, Duration::ZERO); // 0.36
    assert_eq!(change, None, "degraded already, by the failed checks");
    assert!(m.snapshot().error_rate_high);
    m.record_check(true, Duration::ZERO); // 0.288
    let snapshot = m.snapshot();
    assert_eq!(
        (
            snapshot.status,
            snapshot.probe_status,
            snapshot.error_rate_high
        ),
        (Degraded, Degraded, false)
    );
    m.record_check(true, Duration::ZERO); // 0.2304
    assert_eq!(m.status(), Healthy);
    let off = HealthRegistry::builder()
        .degraded_error_rate(None)
        .build()
        .unwrap()
        .register("m");
    for _ in 0..20 {
        off.record_outcome(&failure, Duration::ZERO);
    }
    assert_eq!(off.status(), Unknown);
    assert!(off.snapshot().error_rate > 0.98 && !off.snapshot().error_rate_high);
}

#[tokio::test(start_paused = true)]
async fn a_forced_status_wins_until_cleared() {
    let registry = HealthRegistry::new();
    let m = registry.register("m");
    m.record_check(true, Duration::ZERO);
    let change = m.force(Unhealthy).unwrap();
    assert_eq!(
        (change.from, change.to, change.cause),
        (Healthy, Unhealthy, ChangeCause::Operator)
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
