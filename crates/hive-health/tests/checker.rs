//! The active checker: exact check times, thresholds, timeouts, no overlap, stop.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use hive_core::{EventSink, HealthStatus, MAX_DURATION};
use hive_health::{CheckerConfig, HealthChecker, HealthRegistry, ProbeRequest};
use tokio::time::{Instant, sleep};

#[derive(Clone, Copy, Debug)]
enum Check {
    Pass,
    Fail,
    Hang,
}

/// What a scripted probe recorded: when each check started (since the probe was made) and
/// how many ran at once.
struct Scripted {
    started: Arc<std::sync::RwLock<Vec<Duration>>>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
}

struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Scripted {
    /// Start times in whole seconds.
    fn secs(&self) -> Vec<u64> {
        self.started
            .read()
            .unwrap()
            .iter()
            .map(Duration::as_secs)
            .collect()
    }

    fn checks(&self) -> usize {
        self.started.read().unwrap().len()
    }
}

/// A probe of `model` that passes, fails or hangs as `script` says (its last step repeats).
fn scripted(
    model: &'static str,
    script: &'static [Check],
) -> (
    impl tower::Service<ProbeRequest, Response = (), Error = std::io::Error, Future: Send>
    + Send
    + 'static,
    Scripted,
) {
    let record = Scripted {
        started: Arc::default(),
        in_flight: Arc::default(),
        most_in_flight: Arc::default(),
    };
    let (started, in_flight, most) = (
        record.started.clone(),
        record.in_flight.clone(),
        record.most_in_flight.clone(),
    );
    let start = Instant::now();
    let probe = tower::service_fn(move |request: ProbeRequest| {
        assert_eq!(request.model, model);
        let mut started = started.write().unwrap();
        let step = script[started.len().min(script.len() - 1)];
        started.push(start.elapsed());
        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(now, Ordering::SeqCst);
        let guard = InFlight(in_flight.clone());
        async move {
            let _guard = guard;
            match step {
                Check::Pass => Ok(()),
                Check::Fail => Err(std::io::Error::other("503")),
                Check::Hang => std::future::pending().await,
            }
        }
    });
    (probe, record)
}

fn config() -> CheckerConfig {
    CheckerConfig::default()
        .interval(Duration::from_secs(10))
        .fast_interval(Duration::from_secs(1))
        .jitter(0.0)
        .timeout(Duration::from_secs(2))
}

#[tokio::test(start_paused = true)]
async fn checks_follow_thresholds_fast_interval_and_timeout_exactly() {
    use Check::*;
    use HealthStatus::*;
    let (sink, mut events) = EventSink::channel(100);
    let registry = HealthRegistry::builder()
        .healthy_threshold(2)
        .unhealthy_threshold(3)
        .events(sink)
        .build()
        .unwrap();
    let mut changes = registry.subscribe();
    let (probe, record) = scripted("m", &[Pass, Pass, Fail, Fail, Fail, Hang, Pass, Pass, Pass]);
    let checker = HealthChecker::new(registry.clone(), config())
        .unwrap()
        .probe("m", probe)
        .start();
    assert_eq!(checker.running(), 1);
    sleep(Duration::from_secs(47)).await;
    tokio::task::yield_now().await;
    assert_eq!(
        record.secs(),
        [0, 1, 11, 12, 22, 23, 35, 45, 46],
        "fast interval after each change, the timeout counted as a failure at 25 s"
    );
    let seen: Vec<_> = std::iter::from_fn(|| changes.try_recv().ok())
        .map(|c| (c.from, c.to))
        .collect();
    assert_eq!(
        seen,
        [
            (Unknown, Healthy),
            (Healthy, Degraded),
            (Degraded, Unhealthy),
            (Unhealthy, Healthy)
        ]
    );
    assert_eq!(events.drain().len(), 4);
    let snapshot = registry.get("m").unwrap().snapshot();
    assert_eq!(snapshot.status, Healthy);
    assert_eq!((snapshot.checks, snapshot.failed_checks), (9, 4));
    assert_eq!(snapshot.consecutive_successes, 3);
    assert_eq!(snapshot.since_last_check, Some(Duration::from_secs(1)));
    assert_eq!(
        record.most_in_flight.load(Ordering::SeqCst),
        1,
        "checks never overlap"
    );
    checker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stop_and_drop_end_every_task() {
    use Check::*;
    let registry = HealthRegistry::new();
    let (a, record_a) = scripted("a", &[Pass]);
    let (b, record_b) = scripted("b", &[Hang]);
    let checker = HealthChecker::new(registry.clone(), config())
        .unwrap()
        .probe("a", a)
        .probe("b", b)
        .start();
    assert_eq!(checker.running(), 2);
    sleep(Duration::from_millis(1_500)).await;
    checker.stop().await;
    let (a_checks, b_checks) = (record_a.checks(), record_b.checks());
    assert_eq!((a_checks, b_checks), (2, 1));
    assert_eq!(
        record_b.in_flight.load(Ordering::SeqCst),
        0,
        "the hung check was cancelled"
    );
    sleep(Duration::from_secs(100)).await;
    assert_eq!(record_a.checks(), a_checks);
    assert_eq!(record_b.checks(), b_checks);

    let (c, record_c) = scripted("m", &[Pass]);
    let checker = HealthChecker::new(registry, config())
        .unwrap()
        .probe("m", c)
        .start();
    sleep(Duration::from_secs(1)).await;
    drop(checker);
    let checks = record_c.checks();
    sleep(Duration::from_secs(100)).await;
    assert_eq!(record_c.checks(), checks);
}

#[tokio::test(start_paused = true)]
async fn a_second_probe_for_a_model_replaces_the_first_so_checks_never_overlap() {
    use Check::*;
    let registry = HealthRegistry::new();
    let (first, record_first) = scripted("m", &[Hang]);
    let (second, record_second) = scripted("m", &[Pass]);
    let checker = HealthChecker::new(registry.clone(), config())
        .unwrap()
        .probe("m", first)
        .probe("m", second)
        .start();
    assert_eq!(checker.running(), 1, "one task per model");
    sleep(Duration::from_secs(12)).await;
    assert_eq!(record_first.checks(), 0);
    assert_eq!(record_second.secs(), [0, 1, 11]);
    assert_eq!(registry.get("m").unwrap().snapshot().checks, 3);
    checker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_timeout_longer_than_the_interval_delays_the_next_check_and_never_overlaps() {
    use HealthStatus::*;
    let registry = HealthRegistry::new(); // unhealthy after 3 failed checks
    let (probe, record) = scripted("m", &[Check::Hang]);
    let checker = HealthChecker::new(
        registry.clone(),
        config()
            .interval(Duration::from_secs(2))
            .fast_interval(Duration::from_secs(1))
            .timeout(Duration::from_secs(5)),
    )
    .unwrap()
    .probe("m", probe)
    .start();
    sleep(Duration::from_secs(30)).await;
    // Each check times out 5 s after it starts; the next starts 2 s later (1 s after the
    // change to unhealthy at 19 s).
    assert_eq!(record.secs(), [0, 7, 14, 20, 27]);
    assert_eq!(record.most_in_flight.load(Ordering::SeqCst), 1);
    let snapshot = registry.get("m").unwrap().snapshot();
    assert_eq!(snapshot.status, Unhealthy);
    assert_eq!((snapshot.checks, snapshot.failed_checks), (4, 4));
    assert_eq!(snapshot.since_last_check, Some(Duration::from_secs(5)));
    checker.stop().await;
}

/// When each model's checks started, in ms, checking `models` with probes that always pass
/// for `run`.
async fn check_times(
    models: &[&'static str],
    config: CheckerConfig,
    run: Duration,
) -> Vec<Vec<u128>> {
    let mut checker = HealthChecker::new(HealthRegistry::new(), config).unwrap();
    let mut records = Vec::new();
    for &model in models {
        let (probe, record) = scripted(model, &[Check::Pass]);
        checker = checker.probe(model, probe);
        records.push(record);
    }
    let checker = checker.start();
    sleep(run).await;
    checker.stop().await;
    records
        .iter()
        .map(|r| {
            r.started
                .read()
                .unwrap()
                .iter()
                .map(Duration::as_millis)
                .collect()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn first_checks_are_spread_over_jitter_times_interval_and_repeat_with_a_seed() {
    let models = ["a", "b", "c", "d"];
    let first_checks = |jitter: f64, seed: u64| async move {
        let run = Duration::from_millis(5_001);
        let times = check_times(&models, config().jitter(jitter).seed(seed), run).await;
        times.iter().map(|t| t[0]).collect::<Vec<_>>()
    };
    // Interval 10 s, jitter 0.5: each first check uniform in [0, 5 s].
    let seeded = first_checks(0.5, 7).await;
    assert_eq!(seeded, [3_047, 840, 2_110, 1_864]);
    assert_eq!(first_checks(0.5, 7).await, seeded);
    assert_ne!(first_checks(0.5, 8).await, seeded);
    assert_eq!(
        first_checks(0.0, 7).await,
        [0, 0, 0, 0],
        "no jitter: at once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_models_check_times_depend_on_the_seed_not_on_the_other_models() {
    let seeded = config().jitter(0.5).seed(11);
    let run = Duration::from_secs(60);
    let alone = check_times(&["a"], seeded.clone(), run).await;
    let beside = check_times(&["a", "b", "c"], seeded, run).await;
    // The first at 1.2 s (within 5 s), the next 1 s ± 50% after the change to healthy,
    // then 10 s ± 50% apart.
    let times = [1_238, 2_331, 7_664, 17_756, 24_236, 33_337, 48_075, 55_479];
    assert_eq!(alone[0], times);
    assert_eq!(beside[0], times);
}

#[test]
fn bad_settings_name_their_field() {
    let field = |c: CheckerConfig| {
        HealthChecker::new(HealthRegistry::new(), c)
            .unwrap_err()
            .field
    };
    let too_long = MAX_DURATION + Duration::from_secs(1);
    assert_eq!(field(config().interval(Duration::ZERO)), "interval");
    assert_eq!(field(config().interval(too_long)), "interval");
    assert_eq!(
        field(config().fast_interval(Duration::from_secs(11))),
        "fast_interval"
    );
    assert_eq!(
        field(config().fast_interval(Duration::ZERO)),
        "fast_interval"
    );
    assert_eq!(field(config().jitter(f64::NAN)), "jitter");
    assert_eq!(field(config().jitter(1.5)), "jitter");
    assert_eq!(field(config().timeout(Duration::ZERO)), "timeout");
    assert_eq!(field(config().timeout(too_long)), "timeout");
    let longest = config()
        .interval(MAX_DURATION)
        .fast_interval(MAX_DURATION)
        .timeout(MAX_DURATION);
    assert!(HealthChecker::new(HealthRegistry::new(), longest).is_ok());

    let field = |c: hive_health::RegistryConfig| c.build().unwrap_err().field;
    let b = HealthRegistry::builder;
    assert_eq!(field(b().healthy_threshold(0)), "healthy_threshold");
    assert_eq!(field(b().unhealthy_threshold(0)), "unhealthy_threshold");
    assert_eq!(field(b().ewma_weight(0.0)), "ewma_weight");
    assert_eq!(field(b().ewma_weight(f64::NAN)), "ewma_weight");
    assert_eq!(
        field(b().degraded_latency(Duration::ZERO)),
        "degraded_latency"
    );
    assert_eq!(field(b().degraded_latency(too_long)), "degraded_latency");
    for rate in [0.0, 1.0, -0.5, f64::NAN] {
        assert_eq!(field(b().degraded_error_rate(rate)), "degraded_error_rate");
    }
    assert!(b().degraded_error_rate(None).build().is_ok());
    assert!(b().degraded_latency(MAX_DURATION).build().is_ok());
}

/// Whose duty a model's checks are, as a cluster's lease says (switched by the test), and
/// the checks run here that it passed on.
#[derive(Default)]
struct Duty {
    mine: std::sync::atomic::AtomicBool,
    told: std::sync::RwLock<Vec<bool>>,
}

impl hive_core::ProbeDuty for Duty {
    fn mine(&self, _: hive_core::ModelId) -> bool {
        self.mine.load(Ordering::SeqCst)
    }

    fn checked(&self, _: hive_core::ModelId, ok: bool, _: Duration, _: Duration) {
        self.told.write().unwrap().push(ok);
    }
}

/// Shared checks: none run while the model is another replica's duty (the schedule goes
/// on), and each one run here is passed on for the others.
#[tokio::test(start_paused = true)]
async fn a_model_is_checked_only_while_it_is_this_replicas_duty() {
    use Check::*;
    let registry = HealthRegistry::new();
    let (probe, record) = scripted("m", &[Pass, Fail]);
    let duty = Arc::new(Duty::default());
    let every_second = config().interval(Duration::from_secs(1));
    let checker = HealthChecker::new(registry, every_second.duty(duty.clone()))
        .unwrap()
        .probe("m", probe)
        .start();
    sleep(Duration::from_millis(3_500)).await;
    assert_eq!(record.checks(), 0, "another replica's duty");
    duty.mine.store(true, Ordering::SeqCst);
    sleep(Duration::from_secs(2)).await;
    assert_eq!(
        record.secs(),
        [4, 5],
        "on the same schedule, from the next tick"
    );
    assert_eq!(*duty.told.read().unwrap(), [true, false]);
    checker.stop().await;
}
