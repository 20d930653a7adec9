//! Retry semantics with exact counts, events and timings (paused time, seeded jitter).

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use hive_core::{
    BoxError, ClientErrorClass, Deadline, EventReceiver, EventSink, FailureClass, Outcome,
    RejectReason, ResilienceEvent, RetryStop, classify_fn,
};
use hive_retry::{Jitter, RetryBudget, RetryConfig, RetryConfigBuilder, RetryLayer};
use tokio::time::{Instant, advance};
use tower::{Service, ServiceBuilder, ServiceExt, util::BoxCloneService};

/// The response of the fake model: the outcome the classifier will report. Counts live
/// responses so a test can check a failed one is dropped before the next attempt.
#[derive(Debug)]
struct Answer {
    outcome: Outcome,
    live: Arc<AtomicUsize>,
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

#[allow(clippy::disallowed_types)] // a test-only record of call times
struct Fixture {
    svc: BoxCloneService<(), Answer, BoxError>,
    /// When each attempt reached the model, since the fixture was built.
    calls: Arc<std::sync::Mutex<Vec<Duration>>>,
    events: EventReceiver,
}

#[allow(clippy::disallowed_types)]
fn fixture(
    script: Vec<Outcome>,
    configure: impl FnOnce(RetryConfigBuilder) -> RetryConfigBuilder,
) -> Fixture {
    let (sink, events) = EventSink::channel(10_000);
    let config = configure(RetryConfig::builder().model("m").events(sink).seed(7))
        .build()
        .unwrap();
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let live = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let script = Arc::new(script);
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(config).with_classifier(classify_fn(
            |r: &Result<Answer, BoxError>| match r {
                Ok(a) => a.outcome,
                Err(_) => Outcome::failure(FailureClass::Unavailable),
            },
        )))
        .service_fn({
            let calls = calls.clone();
            move |()| {
                let mut calls = calls.lock().unwrap();
                assert_eq!(
                    live.load(Ordering::SeqCst),
                    0,
                    "the failed answer is still alive"
                );
                let outcome = script[calls.len().min(script.len() - 1)];
                calls.push(start.elapsed());
                live.fetch_add(1, Ordering::SeqCst);
                let live = live.clone();
                async move { Ok::<_, BoxError>(Answer { outcome, live }) }
            }
        });
    Fixture {
        svc: BoxCloneService::new(svc),
        calls,
        events,
    }
}

impl Fixture {
    async fn run(&mut self) -> Outcome {
        self.svc
            .ready()
            .await
            .unwrap()
            .call(())
            .await
            .unwrap()
            .outcome
    }

    fn calls(&self) -> Vec<u128> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.as_millis())
            .collect()
    }
}

const FAIL: Outcome = Outcome::failure(FailureClass::Unavailable);
const OK: Outcome = Outcome::Success;

fn no_jitter(b: RetryConfigBuilder) -> RetryConfigBuilder {
    b.backoff(Duration::from_millis(100), Duration::from_secs(1))
        .jitter(Jitter::None)
}

#[tokio::test(start_paused = true)]
async fn max_attempts_counts_the_first_call() {
    for (max, expected_calls) in [(1, 1), (2, 2), (3, 3), (5, 5)] {
        let mut f = fixture(vec![FAIL], |b| no_jitter(b).max_attempts(max));
        assert_eq!(f.run().await, FAIL);
        assert_eq!(f.calls().len(), expected_calls, "max_attempts({max})");
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_and_events_tell_each_retry_and_the_end() {
    let mut f = fixture(vec![FAIL], |b| no_jitter(b).max_attempts(4));
    f.run().await;
    assert_eq!(f.calls(), [0, 100, 300, 700]);
    let retry = |attempt, ms| ResilienceEvent::Retry {
        model: "m".into(),
        attempt,
        delay: Duration::from_millis(ms),
        class: FailureClass::Unavailable,
    };
    assert_eq!(
        f.events.drain(),
        [
            retry(1, 100),
            retry(2, 200),
            retry(3, 400),
            ResilienceEvent::RetryStopped {
                model: "m".into(),
                attempts: 4,
                class: FailureClass::Unavailable,
                reason: RetryStop::Exhausted,
            }
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn success_after_failures_returns_the_success_without_a_stop_event() {
    let mut f = fixture(vec![FAIL, FAIL, Outcome::Success], no_jitter);
    assert_eq!(f.run().await, Outcome::Success);
    assert_eq!(f.calls(), [0, 100, 300]);
    assert_eq!(f.events.drain().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn seeded_full_jitter_repeats_exactly_and_stays_under_the_exponential_delay() {
    let delays = || async {
        let mut f = fixture(vec![FAIL], |b| {
            b.max_attempts(6)
                .backoff(Duration::from_millis(100), Duration::from_secs(1))
                .jitter(Jitter::Full)
        });
        f.run().await;
        f.calls()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect::<Vec<_>>()
    };
    let first = delays().await;
    assert_eq!(first, delays().await);
    for (i, d) in first.iter().enumerate() {
        let nominal = (100u128 << i).min(1000);
        assert!(
            *d <= nominal,
            "retry {} waited {d} ms > {nominal} ms",
            i + 1
        );
    }
    assert!(first.iter().collect::<std::collections::HashSet<_>>().len() > 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_exactly_and_a_hint_over_the_cap_stops_at_once() {
    let limited = |secs| Outcome::Failure {
        class: FailureClass::RateLimited,
        retry_after: Some(Duration::from_secs(secs)),
    };
    let mut f = fixture(vec![limited(7), limited(3), Outcome::Success], |b| {
        no_jitter(b).retry_after(true, Duration::from_secs(10))
    });
    assert_eq!(f.run().await, Outcome::Success);
    assert_eq!(f.calls(), [0, 7_000, 10_000]);

    let mut f = fixture(vec![limited(11)], |b| {
        no_jitter(b).retry_after(true, Duration::from_secs(10))
    });
    f.run().await;
    assert_eq!(f.calls(), [0]);
    assert!(matches!(
        f.events.drain()[..],
        [ResilienceEvent::RetryStopped {
            reason: RetryStop::RetryAfterTooLong,
            attempts: 1,
            ..
        }]
    ));

    let mut f = fixture(vec![limited(11), Outcome::Success], |b| {
        no_jitter(b).retry_after(false, Duration::from_secs(10))
    });
    f.run().await;
    assert_eq!(f.calls(), [0, 100], "ignored hint: plain backoff");
}

#[tokio::test(start_paused = true)]
async fn non_retryable_outcomes_return_after_one_call() {
    let cases = [
        Outcome::ClientError(ClientErrorClass::BadRequest),
        Outcome::ClientError(ClientErrorClass::ContextLengthExceeded),
        Outcome::ClientError(ClientErrorClass::ContentPolicy),
        Outcome::ClientError(ClientErrorClass::Unauthorized),
        Outcome::Rejected(RejectReason::Unhealthy),
        Outcome::Rejected(RejectReason::CircuitOpen {
            retry_in: Duration::from_secs(1),
        }),
        Outcome::Ignored,
        Outcome::failure(FailureClass::IdentityMismatch),
    ];
    for outcome in cases {
        let mut f = fixture(vec![outcome], no_jitter);
        assert_eq!(f.run().await, outcome);
        assert_eq!(f.calls(), [0], "{outcome:?} must not be retried");
        assert_eq!(f.events.drain(), [], "{outcome:?}");
    }
    let only_timeouts = hive_core::FailureClassSet::EMPTY.with(FailureClass::Timeout);
    let mut f = fixture(vec![FAIL], |b| no_jitter(b).retry_on(only_timeouts));
    f.run().await;
    assert_eq!(f.calls(), [0]);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_during_backoff_cancels_the_retry() {
    let mut f = fixture(vec![FAIL], no_jitter);
    let mut future = Box::pin(f.svc.ready().await.unwrap().call(()));
    assert!(futures_poll_once(&mut future).await.is_none());
    assert_eq!(f.calls(), [0]);
    advance(Duration::from_millis(50)).await;
    drop(future);
    advance(Duration::from_secs(60)).await;
    assert_eq!(f.calls(), [0]);
}

/// Polls a future once; `None` when it is pending.
async fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut *f).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn no_attempt_starts_that_cannot_fit_the_deadline() {
    let mut f = fixture(vec![FAIL], |b| no_jitter(b).max_attempts(5));
    Deadline::after(Duration::from_millis(250))
        .scope(f.run())
        .await;
    assert_eq!(
        f.calls(),
        [0, 100],
        "the third attempt would start at 300 ms > 250 ms"
    );
    let stops: Vec<_> = f
        .events
        .drain()
        .into_iter()
        .filter_map(|e| match e {
            ResilienceEvent::RetryStopped {
                reason, attempts, ..
            } => Some((reason, attempts)),
            _ => None,
        })
        .collect();
    assert_eq!(stops, [(RetryStop::DeadlineTooClose, 2)]);

    let mut f = fixture(vec![FAIL], |b| {
        no_jitter(b)
            .max_attempts(5)
            .min_attempt_time(Duration::from_millis(60))
    });
    Deadline::after(Duration::from_millis(150))
        .scope(f.run())
        .await;
    assert_eq!(
        f.calls(),
        [0],
        "100 ms backoff + 60 ms for the attempt > 150 ms"
    );
}

#[tokio::test(start_paused = true)]
async fn the_budget_holds_amplification_to_one_plus_ratio_at_total_failure() {
    const REQUESTS: usize = 1000;
    const RATIO: f64 = 0.2;
    let budget = RetryBudget::new(Duration::from_secs(10), 0, RATIO).unwrap();
    let mut f = fixture(vec![FAIL], |b| {
        b.max_attempts(3)
            .backoff(Duration::from_millis(1), Duration::from_millis(1))
            .jitter(Jitter::None)
            .budget(budget)
    });
    for _ in 0..REQUESTS {
        f.run().await;
    }
    let amplification = f.calls().len() as f64 / REQUESTS as f64;
    println!(
        "{} upstream calls for {REQUESTS} requests: amplification {amplification}",
        f.calls().len()
    );
    assert!(
        amplification <= 1.0 + RATIO,
        "amplification {amplification} above {}",
        1.0 + RATIO
    );
    assert!(
        amplification >= 1.0 + RATIO - 0.01,
        "the budget allowed too few: {amplification}"
    );
    let denied = f
        .events
        .drain()
        .iter()
        .filter(|e| {
            matches!(
                e,
                ResilienceEvent::RetryStopped {
                    reason: RetryStop::BudgetDenied,
                    ..
                }
            )
        })
        .count();
    assert!(
        denied >= REQUESTS - (REQUESTS as f64 * RATIO) as usize - 1,
        "denied {denied}"
    );
    // Without a budget the same load triples.
    let mut g = fixture(vec![FAIL], |b| {
        b.max_attempts(3)
            .backoff(Duration::from_millis(1), Duration::from_millis(1))
            .jitter(Jitter::None)
    });
    for _ in 0..REQUESTS {
        g.run().await;
    }
    assert_eq!(g.calls().len(), 3 * REQUESTS);
}

#[tokio::test]
async fn every_attempt_waits_for_readiness() {
    let config = RetryConfig::builder()
        .backoff(Duration::ZERO, Duration::ZERO)
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let (mut svc, mut handle) =
        tower_test::mock::spawn_layer::<&'static str, (), _>(RetryLayer::new(config));
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let response = tokio::spawn(svc.call("prompt"));
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request, "prompt");
    send.send_error(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    // The retry is pending until the mock is ready again (the mock panics otherwise).
    tokio::task::yield_now().await;
    assert!(handle.poll_request().is_pending());
    handle.allow(1);
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request, "prompt");
    send.send_response(());
    response.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_timed_out_is_not_retried_by_default() {
    let timeout = Outcome::failure(FailureClass::Timeout);
    let mut f = fixture(vec![timeout, OK], no_jitter);
    assert_eq!(f.run().await, timeout);
    assert_eq!(f.calls(), [0], "a silent model is not asked again");
    let mut f = fixture(vec![timeout, OK], |b| {
        no_jitter(b).retry_on(hive_retry::DEFAULT_RETRYABLE.with(FailureClass::Timeout))
    });
    assert_eq!(f.run().await, OK, "unless asked for");
}

/// A signal the test flips: the model's breaker opened, or a probe failed.
#[derive(Clone, Default)]
struct Switch(Arc<std::sync::atomic::AtomicBool>);

impl hive_core::Available for Switch {
    fn available(&self) -> bool {
        !self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test(start_paused = true)]
async fn no_retry_waits_for_a_model_that_cannot_take_a_call() {
    let down = Switch::default();
    let mut f = fixture(vec![FAIL, FAIL, OK], {
        let down = down.clone();
        move |b| no_jitter(b).max_attempts(3).retry_only_while(down)
    });
    assert_eq!(f.run().await, OK, "retries while the model is available");
    assert_eq!(f.calls(), [0, 100, 300]);
    f.events.drain();
    down.0.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let mut g = fixture(vec![FAIL, OK], {
        let down = down.clone();
        move |b| no_jitter(b).retry_only_while(down)
    });
    assert_eq!(g.run().await, FAIL);
    assert_eq!(g.calls(), [0]);
    assert_eq!(started.elapsed(), Duration::ZERO, "no backoff waited out");
    assert_eq!(
        g.events.drain(),
        [ResilienceEvent::RetryStopped {
            model: hive_core::ModelId::new("m"),
            attempts: 1,
            class: FailureClass::Unavailable,
            reason: RetryStop::Unavailable,
        }]
    );
}
