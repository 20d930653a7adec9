//! The model manager: stacks behind the router, manual controls with an audit trail, and
//! automatic recovery with slow start (paused time, seeded randomness).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hive_core::{
    Actor, BoxError, CircuitState, ControlAction, EventReceiver, EventSink, HealthStatus,
    ResilienceEvent,
};
use hive_health::{CheckerConfig, ProbeRequest};
use hive_resilience::{ModelManager, ModelSpec};
use tokio::time::{Instant, sleep};
use tower::{ServiceExt, util::BoxCloneService};

type Model = BoxCloneService<&'static str, &'static str, BoxError>;

/// A model that fails until `heals_at` (from now), then answers with its name.
fn model_healing_at(name: &'static str, heals_at: Option<Duration>) -> Model {
    let start = Instant::now();
    BoxCloneService::new(tower::service_fn(move |_: &'static str| async move {
        sleep(Duration::from_millis(20)).await;
        match heals_at {
            Some(at) if start.elapsed() < at => Err::<_, BoxError>("503".into()),
            _ => Ok(name),
        }
    }))
}

fn probe_healing_at(
    heals_at: Duration,
) -> impl tower::Service<ProbeRequest, Response = (), Error = BoxError, Future: Send> + Send + 'static
{
    let start = Instant::now();
    tower::service_fn(move |_: ProbeRequest| async move {
        if start.elapsed() < heals_at {
            Err::<(), BoxError>("503".into())
        } else {
            Ok(())
        }
    })
}

fn controls(events: &mut EventReceiver) -> Vec<(String, ControlAction, Actor)> {
    events
        .drain()
        .into_iter()
        .filter_map(|e| match e {
            ResilienceEvent::Control { model, action, by } => Some((model.to_string(), action, by)),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_down_primary_opens_its_breaker_and_the_backup_answers() {
    let manager = ModelManager::builder()
        .model(
            ModelSpec::new(
                "primary",
                model_healing_at("primary", Some(Duration::from_secs(3600))),
            )
            .retry(|r| r.max_attempts(1))
            .breaker(|b| b.count_window(4).minimum_calls(4)),
        )
        .model(ModelSpec::new("backup", model_healing_at("backup", None)))
        .build()
        .unwrap();
    for _ in 0..6 {
        let routed = manager.service().oneshot("q").await.unwrap();
        assert_eq!(routed.response, "backup");
    }
    let availability = manager.availability();
    let primary = &availability.models[0];
    assert_eq!((primary.breaker, primary.up), (CircuitState::Open, false));
    assert_eq!(
        primary.health,
        HealthStatus::Degraded,
        "an open breaker degrades the model"
    );
    assert_eq!(availability.up(), 1);
    assert_eq!((availability.requests, availability.answered), (6, 6));
    // Live calls fed the health registry: 4 failures on the primary (EWMA weight 0.2 from 0),
    // 20 ms answers from the backup.
    let primary = manager.control("primary").unwrap().health().snapshot();
    assert!(
        (primary.error_rate - (1.0 - 0.8f64.powi(4))).abs() < 1e-9,
        "{}",
        primary.error_rate
    );
    let backup = manager.control("backup").unwrap().health().snapshot();
    assert_eq!(backup.latency_ewma, Some(Duration::from_millis(20)));
    // Skipped without a call: one attempt only.
    assert_eq!(manager.service().oneshot("q").await.unwrap().attempts, 1);
    // With the backup marked unhealthy too, nobody answers, and it shows.
    manager.control("backup").unwrap().mark_unhealthy();
    assert!(manager.service().oneshot("q").await.is_err());
    let availability = manager.availability();
    assert_eq!(
        (
            availability.requests,
            availability.answered,
            availability.up()
        ),
        (8, 7, 0)
    );
    assert_eq!(availability.ratio(), Some(7.0 / 8.0));
}

#[tokio::test(start_paused = true)]
async fn manual_controls_take_effect_and_leave_an_audit_trail() {
    let (sink, mut events) = EventSink::channel(1000);
    let manager = ModelManager::builder()
        .events(sink)
        .model(ModelSpec::new("a", model_healing_at("a", None)))
        .model(ModelSpec::new("b", model_healing_at("b", None)))
        .build()
        .unwrap();
    let a = manager.control("a").unwrap();
    let answer = |m: &ModelManager<Model, &'static str>| {
        let svc = m.service();
        async move { svc.oneshot("q").await.unwrap().response }
    };
    assert_eq!(answer(&manager).await, "a");
    a.force_open();
    assert_eq!(answer(&manager).await, "b");
    a.force_close();
    assert_eq!(answer(&manager).await, "a");
    a.mark_unhealthy();
    assert_eq!(answer(&manager).await, "b");
    a.clear_health();
    a.drain();
    assert_eq!(answer(&manager).await, "b");
    a.undrain();
    assert_eq!(answer(&manager).await, "a");
    a.mark_healthy();
    use ControlAction::*;
    let trail: Vec<_> = controls(&mut events)
        .into_iter()
        .map(|(m, action, by)| {
            assert_eq!((m.as_str(), by), ("a", Actor::Operator));
            action
        })
        .collect();
    assert_eq!(
        trail,
        [
            ForceOpen,
            ForceClose,
            MarkUnhealthy,
            ClearHealth,
            Drain,
            Undrain,
            MarkHealthy
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn recovery_half_opens_early_and_ramps_traffic_back() {
    const HEALS_AT: Duration = Duration::from_secs(20);
    let (sink, mut events) = EventSink::channel(10_000);
    let mut manager = ModelManager::builder()
        .events(sink)
        .seed(5)
        .checks(
            CheckerConfig::default()
                .interval(Duration::from_secs(2))
                .fast_interval(Duration::from_millis(500))
                .jitter(0.0),
        )
        .model(
            ModelSpec::new("primary", model_healing_at("primary", Some(HEALS_AT)))
                .retry(|r| r.max_attempts(1))
                .breaker(|b| {
                    b.count_window(4)
                        .minimum_calls(4)
                        .open_duration(Duration::from_secs(120))
                })
                .slow_start(Duration::from_secs(4))
                .probe(probe_healing_at(HEALS_AT)),
        )
        .model(ModelSpec::new("backup", model_healing_at("backup", None)))
        .build()
        .unwrap();
    let running = manager.start().unwrap();
    let start = Instant::now();
    let mut answers = Vec::new();
    while start.elapsed() < Duration::from_secs(40) {
        let routed = manager.service().oneshot("q").await.unwrap();
        answers.push((start.elapsed(), routed.response));
        sleep(Duration::from_millis(250)).await;
    }
    running.stop().await;

    // Probes at 0, 2 and 4 s fail (unhealthy at the third, then a check 0.5 s later and
    // every 2 s: 4.5, 6.5 … 20.5 s). Those at 20.5 s and 22.5 s pass: healthy again at
    // 22.5 s, when the breaker goes half-open at once (not after its 120 s) and a 4 s slow
    // start begins.
    let recovery = controls(&mut events);
    assert_eq!(
        recovery,
        [
            (
                "primary".to_string(),
                ControlAction::HalfOpen,
                Actor::Recovery
            ),
            (
                "primary".to_string(),
                ControlAction::SlowStart,
                Actor::Recovery
            ),
        ]
    );
    let first_primary = answers
        .iter()
        .find(|(t, who)| *t >= HEALS_AT && *who == "primary")
        .unwrap()
        .0;
    assert!(
        first_primary <= HEALS_AT + Duration::from_secs(5),
        "back after {first_primary:?}"
    );
    let share = |from: u64, to: u64| {
        let window: Vec<_> = answers
            .iter()
            .filter(|(t, _)| (Duration::from_millis(from)..Duration::from_millis(to)).contains(t))
            .collect();
        window.iter().filter(|(_, who)| *who == "primary").count() as f64 / window.len() as f64
    };
    assert_eq!(share(5_000, 20_000), 0.0, "down: all to the backup");
    assert_eq!(
        share(20_000, 22_500),
        0.0,
        "healed, not yet seen healthy twice"
    );
    let ramp_early = share(22_500, 24_500);
    let ramp_late = share(24_500, 26_500);
    assert!(
        ramp_early < ramp_late,
        "traffic ramps up: {ramp_early} then {ramp_late}"
    );
    assert!(ramp_early < 0.8 && ramp_late > 0.2);
    assert_eq!(
        share(26_500, 40_000),
        1.0,
        "after the ramp: all to the primary"
    );
}

/// A probe that counts its checks.
fn counting_probe(
    checks: std::sync::Arc<std::sync::atomic::AtomicU32>,
) -> impl tower::Service<ProbeRequest, Response = (), Error = BoxError, Future: Send> + Send + 'static
{
    tower::service_fn(move |_: ProbeRequest| {
        checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async { Ok::<(), BoxError>(()) }
    })
}

#[tokio::test(start_paused = true)]
async fn a_model_with_its_own_check_timing_is_checked_on_it() {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };
    let (local, remote) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let every = |s| {
        CheckerConfig::default()
            .interval(Duration::from_secs(s))
            .fast_interval(Duration::from_secs(s))
            .jitter(0.0)
    };
    let mut manager = ModelManager::builder()
        .checks(every(30))
        .model(
            ModelSpec::new("local", model_healing_at("local", None))
                .probe(counting_probe(Arc::clone(&local)))
                .checks(every(2)),
        )
        .model(
            ModelSpec::new("remote", model_healing_at("remote", None))
                .probe(counting_probe(Arc::clone(&remote))),
        )
        .build::<&'static str>()
        .unwrap();
    let running = manager.start().unwrap();
    sleep(Duration::from_millis(59_500)).await;
    running.stop().await;
    // Checks at 0, 2, … 58 s for the local model; at 0 and 30 s for the remote one.
    assert_eq!(local.load(Ordering::Relaxed), 30);
    assert_eq!(remote.load(Ordering::Relaxed), 2);
}

#[test]
fn a_model_check_timing_out_of_bounds_is_refused_at_build() {
    let error = ModelManager::builder()
        .model(
            ModelSpec::new("local", model_healing_at("local", None))
                .checks(CheckerConfig::default().interval(Duration::ZERO)),
        )
        .build::<&'static str>()
        .unwrap_err();
    assert!(error.to_string().contains("model `local`"), "{error}");
    assert!(error.to_string().contains("interval"), "{error}");
}

/// Cluster mode: when the shared checks see a model back, only the replica whose duty the
/// checks are tries it again (recovery half-opens its breaker); the others leave the trial
/// to it, their breakers open until its verdict arrives.
#[tokio::test(start_paused = true)]
async fn recovery_is_left_to_the_replica_whose_duty_the_checks_are() {
    struct Duty(bool);
    impl hive_core::ProbeDuty for Duty {
        fn mine(&self, _: hive_core::ModelId) -> bool {
            self.0
        }
        fn checked(&self, _: hive_core::ModelId, _: bool, _: Duration, _: Duration) {}
    }
    for mine in [false, true] {
        let (sink, mut events) = EventSink::channel(1_000);
        let mut manager = ModelManager::builder()
            .events(sink)
            .checks(
                CheckerConfig::default()
                    .interval(Duration::from_secs(3600))
                    .jitter(0.0),
            )
            .model(
                ModelSpec::new("primary", model_healing_at("primary", None))
                    .probe(probe_healing_at(Duration::ZERO)),
            )
            .model(ModelSpec::new("backup", model_healing_at("backup", None)))
            .build::<&'static str>()
            .unwrap();
        let running = manager
            .start_sharing_checks(Some(std::sync::Arc::new(Duty(mine))))
            .unwrap();
        let control = manager.control("primary").unwrap();
        control.breaker().hold_open(Duration::from_secs(60), false);
        // Checks as the cluster delivers them (or as run here): failing, then passing.
        for ok in [false, false, false, true, true, true] {
            control.health().record_check(ok, Duration::from_millis(5));
            sleep(Duration::from_millis(100)).await;
        }
        let actions = controls(&mut events);
        if mine {
            assert_eq!(control.breaker().state(), CircuitState::HalfOpen);
            assert_eq!(actions[0].1, ControlAction::HalfOpen);
        } else {
            assert_eq!(
                control.breaker().state(),
                CircuitState::Open,
                "the trial is the other's"
            );
            assert!(actions.is_empty(), "no recovery here: {actions:?}");
        }
        running.stop().await;
    }
}
