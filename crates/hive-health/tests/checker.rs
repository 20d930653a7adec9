//! The active checker: exact check times, thresholds, timeouts, no overlap, stop.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use hive_core::{EventSink, HealthStatus, ResilienceEvent};
use hive_health::{CheckerConfig, HealthChecker, HealthRegistry, ProbeRequest};
use tokio::time::{Instant, sleep};

#[derive(Clone, Copy, Debug)]
enum Check {
    Pass,
    Fail,
    Hang,
}

/// What a scripted probe recorded: when each check started (whole seconds since the
/// probe was made) and how many ran at once.
struct Scripted {
    started: Arc<std::sync::RwLock<Vec<u64>>>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
}

struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn scripted(
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
        assert_eq!(request.model, "m");
        let mut started = started.write().unwrap();
        let step = script[started.len().min(script.len() - 1)];
        started.push(start.elapsed().as_secs());
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
    let (probe, record) = scripted(&[Pass, Pass, Fail, Fail, Fail, Hang, Pass, Pass, Pass]);
    let checker = HealthChecker::new(registry.clone(), config())
        .unwrap()
        .probe("m", probe)
        .start();
    assert_eq!(checker.running(), 1);
    sleep(Duration::from_secs(47)).await;
    tokio::task::yield_now().await;
    assert_eq!(
        *record.started.read().unwrap(),
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
    let (a, record_a) = scripted(&[Pass]);
    let (b, record_b) = scripted(&[Hang]);
    let checker = HealthChecker::new(registry.clone(), config())
        .unwrap()
        .probe("m", a)
        .probe("m", b)
        .start();
    assert_eq!(checker.running(), 2);
    sleep(Duration::from_secs(1)).await;
    checker.stop().await;
    let (a_checks, b_checks) = (
        record_a.started.read().unwrap().len(),
        record_b.started.read().unwrap().len(),
    );
    assert_eq!(
        record_b.in_flight.load(Ordering::SeqCst),
        0,
        "the hung check was cancelled"
    );
    sleep(Duration::from_secs(100)).await;
    assert_eq!(record_a.started.read().unwrap().len(), a_checks);
    assert_eq!(record_b.started.read().unwrap().len(), b_checks);

    let (c, record_c) = scripted(&[Pass]);
    let checker = HealthChecker::new(registry, config())
        .unwrap()
        .probe("m", c)
        .start();
    sleep(Duration::from_secs(1)).await;
    drop(checker);
    let checks = record_c.started.read().unwrap().len();
    sleep(Duration::from_secs(100)).await;
    assert_eq!(record_c.started.read().unwrap().len(), checks);
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_waits_within_its_bounds_and_repeats_with_a_seed() {
    let times = || async {
        let (probe, record) = scripted(&[Check::Pass]);
        let checker = HealthChecker::new(HealthRegistry::new(), config().jitter(0.5).seed(3))
            .unwrap()
            .probe("m", probe)
            .start();
        sleep(Duration::from_secs(120)).await;
        checker.stop().await;
        record.started.read().unwrap().clone()
    };
    let first = times().await;
    assert_eq!(first, times().await);
    for gap in first.windows(2).skip(2).map(|w| w[1] - w[0]) {
        assert!((5..=15).contains(&gap), "gap {gap} s outside 10 s ± 50%");
    }
}

#[test]
fn bad_settings_name_their_field() {
    let field = |c: CheckerConfig| {
        HealthChecker::new(HealthRegistry::new(), c)
            .unwrap_err()
            .field
    };
    assert_eq!(field(config().interval(Duration::ZERO)), "interval");
    assert_eq!(
        field(config().fast_interval(Duration::from_secs(11))),
        "fast_interval"
    );
    assert_eq!(field(config().jitter(f64::NAN)), "jitter");
    assert_eq!(field(config().timeout(Duration::ZERO)), "timeout");
    let err = HealthRegistry::builder()
        .unhealthy_threshold(0)
        .build()
        .unwrap_err();
    assert_eq!(err.field, "unhealthy_threshold");
    let err = HealthRegistry::builder()
        .ewma_weight(0.0)
        .build()
        .unwrap_err();
    assert_eq!(err.field, "ewma_weight");
    let _ = ResilienceEvent::HealthChanged {
        model: "m".into(),
        from: HealthStatus::Unknown,
        to: HealthStatus::Healthy,
        reason: "",
    };
}
