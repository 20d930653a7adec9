//! The breaker's state machine, step by step, with exact counts and events (paused time).

#![allow(clippy::unwrap_used)]

use std::{convert::Infallible, time::Duration};

use hive_breaker::{
    BreakerHandle, CircuitBreakerConfig, CircuitBreakerConfigBuilder, CircuitBreakerLayer,
};
use hive_core::{
    BoxError, CircuitState, ClassifyFn, ClientErrorClass, EventReceiver, EventSink, FailureClass,
    Outcome, RejectReason, Rejected, ResilienceEvent, classify_fn,
};
use tokio::time::{advance, sleep};
use tower::{Service, ServiceExt, util::BoxCloneService};

/// What the fake model does with a call.
#[derive(Clone, Copy, Debug)]
enum Call {
    Ok,
    Fail,
    /// Fails as rate-limited with a Retry-After hint of this many seconds.
    Limited(u64),
    /// Takes this many milliseconds, then succeeds.
    Slow(u64),
    /// Takes this many milliseconds, then fails.
    SlowFail(u64),
    /// The classifier ignores the result.
    Ignore,
    ClientError,
}

type Classifier = ClassifyFn<fn(&Result<Call, Infallible>) -> Outcome>;

fn classify(result: &Result<Call, Infallible>) -> Outcome {
    match result {
        Ok(Call::Ok | Call::Slow(_)) => Outcome::Success,
        Ok(Call::Fail | Call::SlowFail(_)) => Outcome::failure(FailureClass::Unavailable),
        Ok(Call::Limited(secs)) => Outcome::Failure {
            class: FailureClass::RateLimited,
            retry_after: Some(Duration::from_secs(*secs)),
        },
        Ok(Call::Ignore) => Outcome::Ignored,
        Ok(Call::ClientError) => Outcome::ClientError(ClientErrorClass::BadRequest),
        Err(never) => match *never {},
    }
}

struct Fixture {
    svc: BoxCloneService<Call, Call, BoxError>,
    handle: BreakerHandle,
    events: EventReceiver,
}

fn fixture(
    configure: impl FnOnce(CircuitBreakerConfigBuilder) -> CircuitBreakerConfigBuilder,
) -> Fixture {
    let (sink, events) = EventSink::channel(1024);
    let config = configure(CircuitBreakerConfig::builder().model("m").events(sink))
        .build()
        .unwrap();
    let (layer, handle) = CircuitBreakerLayer::shared(config);
    let layer = layer.with_classifier(classify_fn(
        classify as fn(&Result<Call, Infallible>) -> Outcome,
    ) as Classifier);
    let svc = tower::ServiceBuilder::new()
        .layer(layer)
        .service_fn(|call: Call| async move {
            if let Call::Slow(ms) | Call::SlowFail(ms) = call {
                sleep(Duration::from_millis(ms)).await;
            }
            Ok::<_, Infallible>(call)
        });
    Fixture {
        svc: BoxCloneService::new(svc),
        handle,
        events,
    }
}

impl Fixture {
    async fn call(&mut self, call: Call) -> Result<Call, BoxError> {
        self.svc.ready().await?.call(call).await
    }

    async fn run(&mut self, calls: &[Call]) {
        for c in calls {
            let _ = self.call(*c).await;
        }
    }

    async fn rejected(&mut self) -> RejectReason {
        let err = self.call(Call::Ok).await.expect_err("expected a rejection");
        let rejected = err.downcast_ref::<Rejected>().expect("a Rejected error");
        assert_eq!(rejected.model.as_str(), "m");
        rejected.reason
    }

    /// The transitions emitted since the last look, as (from, to).
    fn transitions(&mut self) -> Vec<(CircuitState, CircuitState)> {
        self.events
            .drain()
            .into_iter()
            .filter_map(|e| match e {
                ResilienceEvent::CircuitTransition { from, to, .. } => Some((from, to)),
                _ => None,
            })
            .collect()
    }
}

use CircuitState::*;

#[tokio::test(start_paused = true)]
async fn fffss_at_50_percent_reads_60_and_opens_on_the_fifth_call_not_before() {
    let mut f = fixture(|b| {
        b.count_window(5)
            .minimum_calls(5)
            .failure_rate_threshold(0.5)
    });
    f.run(&[Call::Fail, Call::Fail, Call::Fail, Call::Ok]).await;
    assert_eq!(f.handle.state(), Closed);
    assert_eq!(f.handle.metrics().calls, 4);
    assert_eq!(f.transitions(), []);
    f.run(&[Call::Ok]).await;
    assert_eq!(f.handle.state(), Open);
    let events = f.events.drain();
    assert_eq!(events.len(), 1);
    match &events[0] {
        ResilienceEvent::CircuitTransition {
            from: Closed,
            to: Open,
            generation: 1,
            failure_rate: Some(rate),
            ..
        } => assert_eq!(*rate, 0.6),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn nine_of_nine_failures_with_minimum_ten_stays_closed() {
    let mut f = fixture(|b| {
        b.count_window(10)
            .minimum_calls(10)
            .consecutive_failures(None)
    });
    f.run(&[Call::Fail; 9]).await;
    let m = f.handle.metrics();
    assert_eq!((m.state, m.calls, m.failed_calls), (Closed, 9, 9));
    f.run(&[Call::Fail]).await;
    assert_eq!(f.handle.state(), Open);
    assert_eq!(f.transitions(), [(Closed, Open)]);
}

#[tokio::test(start_paused = true)]
async fn a_rate_equal_to_the_threshold_trips() {
    let mut f = fixture(|b| {
        b.count_window(10)
            .minimum_calls(10)
            .failure_rate_threshold(0.3)
    });
    f.run(&[Call::Ok; 7]).await;
    f.run(&[Call::Fail; 2]).await;
    assert_eq!(f.handle.state(), Closed);
    f.run(&[Call::Fail]).await;
    assert_eq!(
        f.handle.state(),
        Open,
        "3/10 = 0.3 must trip a 0.3 threshold"
    );
}

#[tokio::test(start_paused = true)]
async fn client_errors_count_as_successes_and_ignored_outcomes_not_at_all() {
    let mut f = fixture(|b| b.count_window(4).minimum_calls(4));
    f.run(&[Call::Fail, Call::Ignore, Call::ClientError, Call::Ignore])
        .await;
    let m = f.handle.metrics();
    assert_eq!((m.calls, m.failed_calls), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_duration_equal_to_the_slow_threshold_is_not_slow() {
    let mut f = fixture(|b| {
        b.count_window(2)
            .minimum_calls(2)
            .slow_call_duration(Duration::from_millis(100))
            .slow_call_rate_threshold(0.5)
    });
    f.run(&[Call::Slow(100), Call::Slow(100)]).await;
    let m = f.handle.metrics();
    assert_eq!((m.state, m.slow_calls), (Closed, 0));
    f.run(&[Call::Slow(101)]).await;
    assert_eq!(f.handle.state(), Open, "1 slow of 2 is 50%");
    let events = f.events.drain();
    assert!(matches!(
        events[..],
        [ResilienceEvent::CircuitTransition { slow_call_rate: Some(r), to: Open, .. }] if r == 0.5
    ));
}

#[tokio::test(start_paused = true)]
async fn time_window_slices_expire_exactly_at_the_window_edge() {
    let mut f = fixture(|b| b.time_window(Duration::from_secs(10), 10).minimum_calls(2));
    f.run(&[Call::Fail]).await; // t = 0, slice 0, leaves at t = 10 s
    advance(Duration::from_millis(9_999)).await;
    assert_eq!(f.handle.metrics().calls, 1);
    advance(Duration::from_millis(1)).await;
    assert_eq!(f.handle.metrics().calls, 0);
    f.run(&[Call::Fail]).await; // t = 10 s: alone in the window
    assert_eq!(f.handle.state(), Closed);
    advance(Duration::from_millis(500)).await;
    f.run(&[Call::Fail]).await;
    assert_eq!(f.handle.state(), Open);
}

#[tokio::test(start_paused = true)]
async fn open_rejects_with_the_time_until_the_probe_then_half_open_closes_on_good_probes() {
    let mut f = fixture(|b| {
        b.count_window(2)
            .minimum_calls(2)
            .open_duration(Duration::from_secs(30))
            .half_open_permits(2)
    });
    f.run(&[Call::Fail, Call::Fail]).await;
    assert_eq!(
        f.rejected().await,
        RejectReason::CircuitOpen {
            retry_in: Duration::from_secs(30)
        }
    );
    advance(Duration::from_secs(12)).await;
    assert_eq!(
        f.rejected().await,
        RejectReason::CircuitOpen {
            retry_in: Duration::from_secs(18)
        }
    );
    assert_eq!(
        f.handle.metrics().open_remaining,
        Some(Duration::from_secs(18))
    );
    advance(Duration::from_secs(18)).await;
    f.run(&[Call::Ok]).await; // moves to half-open and is the first probe
    assert_eq!(f.handle.state(), HalfOpen);
    f.run(&[Call::Ok]).await;
    assert_eq!(f.handle.state(), Closed);
    let m = f.handle.metrics();
    assert_eq!(
        (m.calls, m.rejected_calls, m.generation),
        (0, 2, 3),
        "closing empties the window"
    );
    assert_eq!(
        f.transitions(),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_reopens_for_a_growing_duration_that_resets_on_close() {
    let mut f = fixture(|b| {
        b.count_window(1)
            .minimum_calls(1)
            .half_open_permits(1)
            .growing_open_duration(Duration::from_secs(10), 2.0, Duration::from_secs(25))
    });
    f.run(&[Call::Fail]).await;
    let mut opens = Vec::new();
    for _ in 0..3 {
        let RejectReason::CircuitOpen { retry_in } = f.rejected().await else {
            panic!()
        };
        opens.push(retry_in.as_secs());
        advance(retry_in).await;
        f.run(&[Call::Fail]).await; // the probe fails: open again
    }
    assert_eq!(opens, [10, 20, 25]);
    advance(Duration::from_secs(25)).await;
    f.run(&[Call::Ok]).await;
    assert_eq!(f.handle.state(), Closed);
    f.run(&[Call::Fail]).await;
    assert_eq!(
        f.rejected().await,
        RejectReason::CircuitOpen {
            retry_in: Duration::from_secs(10)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn the_open_duration_is_at_least_the_retry_after_hint() {
    let mut f = fixture(|b| {
        b.count_window(2)
            .minimum_calls(2)
            .open_duration(Duration::from_secs(5))
    });
    f.run(&[Call::Limited(42), Call::Fail]).await;
    assert_eq!(
        f.rejected().await,
        RejectReason::CircuitOpen {
            retry_in: Duration::from_secs(42)
        }
    );
    // A short hint does not shorten the break.
    let mut g = fixture(|b| {
        b.count_window(1)
            .minimum_calls(1)
            .open_duration(Duration::from_secs(5))
    });
    g.run(&[Call::Limited(1)]).await;
    assert_eq!(
        g.rejected().await,
        RejectReason::CircuitOpen {
            retry_in: Duration::from_secs(5)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_arriving_while_open_neither_extends_the_break_nor_reemits_opened() {
    let mut f = fixture(|b| {
        b.count_window(2)
            .minimum_calls(2)
            .open_duration(Duration::from_secs(30))
    });
    // Started while closed, finishes (failed) after the breaker opened.
    let slow = tokio::spawn(f.svc.clone().oneshot(Call::SlowFail(5_000)));
    tokio::task::yield_now().await;
    f.run(&[Call::Fail, Call::Fail]).await;
    assert_eq!(f.transitions(), [(Closed, Open)]);
    advance(Duration::from_secs(5)).await;
    assert!(slow.await.unwrap().is_ok());
    let m = f.handle.metrics();
    assert_eq!(m.state, Open);
    assert_eq!(m.open_remaining, Some(Duration::from_secs(25)));
    assert_eq!(m.late_results, 1);
    assert_eq!(f.transitions(), []);
}

#[tokio::test(start_paused = true)]
async fn a_result_from_before_a_transition_does_not_decide_the_trial() {
    // Generation rule: a call counts only in the generation it started in.
    let mut f = fixture(|b| {
        b.count_window(2)
            .minimum_calls(2)
            .open_duration(Duration::from_secs(1))
            .half_open_permits(1)
    });
    let old = tokio::spawn(f.svc.clone().oneshot(Call::Slow(3_000)));
    tokio::task::yield_now().await;
    f.run(&[Call::Fail, Call::Fail]).await;
    advance(Duration::from_secs(1)).await;
    let probe = tokio::spawn(f.svc.clone().oneshot(Call::SlowFail(5_000)));
    tokio::task::yield_now().await;
    assert_eq!(f.handle.state(), HalfOpen);
    advance(Duration::from_secs(2)).await; // the old success lands while half-open
    old.await.unwrap().unwrap();
    assert_eq!(
        f.handle.state(),
        HalfOpen,
        "an old success must not close the breaker"
    );
    assert_eq!(f.handle.metrics().late_results, 1);
    advance(Duration::from_secs(3)).await;
    probe.await.unwrap().unwrap();
    assert_eq!(f.handle.state(), Open);
    assert_eq!(
        f.transitions(),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Open)]
    );
}

#[tokio::test(start_paused = true)]
async fn ignored_outcomes_and_dropped_futures_give_half_open_permits_back() {
    let mut f = fixture(|b| {
        b.count_window(1)
            .minimum_calls(1)
            .open_duration(Duration::from_secs(1))
            .half_open_permits(1)
    });
    f.run(&[Call::Fail]).await;
    advance(Duration::from_secs(1)).await;
    f.run(&[Call::Ignore]).await; // takes the permit, gives it back
    assert_eq!(f.handle.metrics().half_open_permits_free, 1);
    let mut pending = f.svc.clone();
    let held = pending.ready().await.unwrap().call(Call::Slow(1_000));
    assert_eq!(f.handle.metrics().half_open_permits_free, 0);
    assert_eq!(f.rejected().await, RejectReason::HalfOpenBusy);
    drop(held);
    assert_eq!(f.handle.metrics().half_open_permits_free, 1);
    f.run(&[Call::Ok]).await;
    assert_eq!(f.handle.state(), Closed);
}

#[tokio::test(start_paused = true)]
async fn operator_states_each_emit_one_event() {
    let mut f = fixture(|b| b.count_window(1).minimum_calls(1));
    f.handle.force_open();
    assert_eq!(f.rejected().await, RejectReason::ForcedOpen);
    advance(Duration::from_secs(3600)).await;
    assert_eq!(f.rejected().await, RejectReason::ForcedOpen);
    f.handle.disable();
    f.run(&[Call::Fail, Call::Fail]).await;
    assert_eq!((f.handle.state(), f.handle.metrics().calls), (Disabled, 0));
    f.handle.metrics_only();
    f.run(&[Call::Fail, Call::Fail]).await;
    let m = f.handle.metrics();
    assert_eq!((m.state, m.calls, m.failed_calls), (MetricsOnly, 1, 1));
    f.handle.reset();
    assert_eq!(f.handle.metrics().calls, 0);
    f.handle.half_open();
    assert_eq!(
        f.transitions(),
        [
            (Closed, ForcedOpen),
            (ForcedOpen, Disabled),
            (Disabled, MetricsOnly),
            (MetricsOnly, Closed),
            (Closed, HalfOpen)
        ]
    );
}

#[tokio::test]
async fn the_inner_service_is_called_only_after_it_is_ready() {
    let config = CircuitBreakerConfig::builder().build().unwrap();
    let (mut svc, mut handle) =
        tower_test::mock::spawn_layer::<(), (), _>(CircuitBreakerLayer::new(config));
    handle.allow(0);
    assert!(svc.poll_ready().is_pending());
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let response = svc.call(());
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(());
    response.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn available_tells_whether_a_call_would_be_admitted() {
    use hive_core::Available;
    let mut f = fixture(|b| {
        b.count_window(1)
            .minimum_calls(1)
            .open_duration(Duration::from_secs(5))
            .half_open_permits(1)
    });
    assert!(f.handle.available());
    f.run(&[Call::Fail]).await;
    assert!(!f.handle.available());
    advance(Duration::from_secs(5)).await;
    assert!(f.handle.available(), "a probe would go");
    assert_eq!(f.handle.state(), Open, "asking changes nothing");
    let mut probe = f.svc.clone();
    let held = probe.ready().await.unwrap().call(Call::Slow(1_000));
    assert!(!f.handle.available(), "the only permit is taken");
    drop(held);
    assert!(f.handle.available());
    f.handle.force_open();
    assert!(!f.handle.available());
    f.handle.disable();
    assert!(f.handle.available());
}

#[tokio::test(start_paused = true)]
async fn five_failures_in_a_row_trip_before_the_minimum_of_calls() {
    // The defaults: a window of 20 calls, at least 10, and 5 failures in a row.
    let mut f = fixture(|b| b);
    f.run(&[Call::Fail; 4]).await;
    f.run(&[Call::Ok]).await;
    f.run(&[Call::Fail; 4]).await;
    let m = f.handle.metrics();
    assert_eq!((m.state, m.consecutive_failures), (Closed, 4));
    f.run(&[Call::Fail]).await;
    let m = f.handle.metrics();
    assert_eq!((m.state, m.calls, m.failed_calls), (Open, 10, 9));
    assert_eq!(f.transitions(), [(Closed, Open)]);
    // A blip costs the first, short break of the growing default: 5 s.
    assert_eq!(
        f.rejected().await,
        RejectReason::CircuitOpen {
            retry_in: Duration::from_secs(5)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_half_open_verdict_comes_as_soon_as_it_is_certain() {
    let mut f = fixture(|b| {
        b.count_window(1)
            .minimum_calls(1)
            .open_duration(Duration::from_secs(1))
            .half_open_permits(3)
            .failure_rate_threshold(0.5)
    });
    f.run(&[Call::Fail]).await;
    advance(Duration::from_secs(1)).await;
    f.run(&[Call::Fail]).await;
    assert_eq!(f.handle.state(), HalfOpen, "1 of 3 failed: not certain yet");
    f.run(&[Call::Fail]).await;
    assert_eq!(
        f.handle.state(),
        Open,
        "2 of 3 failed reach 50% whatever the third does: reopen at once"
    );
    advance(Duration::from_secs(1)).await;
    f.run(&[Call::Ok, Call::Ok]).await;
    assert_eq!(
        f.handle.state(),
        Closed,
        "2 of 3 succeeded: the third cannot reach 50%"
    );
    assert_eq!(
        f.transitions(),
        [
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_hung_probe_cannot_hold_the_breaker_half_open() {
    let mut f = fixture(|b| {
        b.count_window(1)
            .minimum_calls(1)
            .open_duration(Duration::from_secs(2))
            .max_wait_in_half_open(Duration::from_secs(10))
    });
    f.run(&[Call::Fail]).await;
    advance(Duration::from_secs(2)).await;
    // The only probe never answers (a hung call, a stream nobody reads).
    let hung = tokio::spawn(f.svc.clone().oneshot(Call::Slow(3_600_000)));
    tokio::task::yield_now().await;
    assert_eq!(f.handle.state(), HalfOpen);
    advance(Duration::from_millis(9_999)).await;
    assert_eq!(f.rejected().await, RejectReason::HalfOpenBusy);
    advance(Duration::from_millis(1)).await;
    // Out of time: the unanswered probe counts as failed, the breaker reopens, and its
    // permit is void.
    assert_eq!(
        f.rejected().await,
        RejectReason::CircuitOpen {
            retry_in: Duration::from_secs(2)
        }
    );
    assert_eq!(
        f.transitions(),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Open)]
    );
    advance(Duration::from_secs(2)).await;
    f.run(&[Call::Ok]).await;
    assert_eq!(f.handle.state(), Closed, "a new probe decides");
    advance(Duration::from_secs(3_600)).await;
    hung.await.unwrap().unwrap();
    assert_eq!(
        f.handle.metrics().late_results,
        1,
        "its late answer is dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_the_inner_call_gives_the_half_open_permit_back() {
    let config = CircuitBreakerConfig::builder()
        .count_window(1)
        .minimum_calls(1)
        .open_duration(Duration::from_secs(1))
        .build()
        .unwrap();
    let (layer, handle) = CircuitBreakerLayer::shared(config);
    let mut svc = tower::ServiceBuilder::new()
        .layer(layer)
        .service_fn(|panics: bool| {
            assert!(!panics, "the model client panicked in call");
            async { Err::<(), _>(std::io::Error::other("503")) }
        });
    let _ = svc.ready().await.unwrap().call(false).await;
    advance(Duration::from_secs(1)).await;
    let _ = svc.ready().await.unwrap().call(false).await;
    advance(Duration::from_secs(1)).await;
    let ready = svc.ready().await.unwrap();
    let panicked =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(ready.call(true))));
    assert!(panicked.is_err());
    let m = handle.metrics();
    assert_eq!(
        (m.state, m.half_open_permits_free),
        (HalfOpen, 1),
        "the permit taken before the panic is back"
    );
}

#[tokio::test(start_paused = true)]
async fn forcing_the_state_the_breaker_is_in_changes_nothing() {
    let mut f = fixture(|b| b.count_window(4).minimum_calls(4));
    assert!(f.handle.force_open());
    let generation = f.handle.metrics().generation;
    assert!(!f.handle.force_open());
    assert_eq!(f.handle.metrics().generation, generation);
    assert!(f.handle.reset());
    // A call in flight when the operator forces the state it is already in still counts.
    let in_flight = tokio::spawn(f.svc.clone().oneshot(Call::SlowFail(1_000)));
    tokio::task::yield_now().await;
    f.run(&[Call::Fail]).await;
    assert!(!f.handle.reset(), "closed already");
    assert_eq!(
        f.handle.metrics().calls,
        0,
        "resetting a closed breaker empties its window"
    );
    advance(Duration::from_secs(1)).await;
    in_flight.await.unwrap().unwrap();
    let m = f.handle.metrics();
    assert_eq!((m.calls, m.late_results), (1, 0));
    assert_eq!(
        f.transitions(),
        [(Closed, ForcedOpen), (ForcedOpen, Closed)]
    );
}

#[tokio::test(start_paused = true)]
async fn recovery_half_opens_only_a_breaker_that_is_still_open() {
    let mut f = fixture(|b| {
        b.count_window(1)
            .minimum_calls(1)
            .open_duration(Duration::from_secs(30))
    });
    assert!(!f.handle.half_open_if_open(), "closed: left alone");
    f.run(&[Call::Fail]).await;
    assert!(f.handle.half_open_if_open());
    assert!(!f.handle.half_open_if_open(), "half-open already");
    f.handle.force_open();
    assert!(
        !f.handle.half_open_if_open(),
        "an operator's forced open wins"
    );
    assert_eq!(
        f.transitions(),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, ForcedOpen)]
    );
}

#[tokio::test(start_paused = true)]
async fn only_hints_of_failures_still_in_the_window_stretch_the_break() {
    let mut f = fixture(|b| {
        b.count_window(4)
            .minimum_calls(4)
            .consecutive_failures(None)
            .open_duration(Duration::from_secs(5))
    });
    // A 429 asking for 1000 s, then the model recovers for a while.
    f.run(&[Call::Limited(1_000)]).await;
    f.run(&[Call::Ok; 4]).await;
    advance(Duration::from_secs(60)).await;
    // A later, unrelated outage trips the breaker: the old hint has left the window.
    f.run(&[Call::Fail; 4]).await;
    assert_eq!(
        f.rejected().await,
        RejectReason::CircuitOpen {
            retry_in: Duration::from_secs(5)
        }
    );
    // A hint still in the window counts, up to its own cap (5 minutes by default).
    let mut g = fixture(|b| {
        b.count_window(2)
            .minimum_calls(2)
            .open_duration(Duration::from_secs(5))
    });
    g.run(&[Call::Limited(100_000), Call::Fail]).await;
    assert_eq!(
        g.rejected().await,
        RejectReason::CircuitOpen {
            retry_in: Duration::from_secs(300)
        }
    );
    assert_eq!(
        g.handle.metrics().retry_after_remaining,
        Some(Duration::from_secs(300))
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_probes_hint_stretches_the_reopening() {
    let mut f = fixture(|b| {
        b.count_window(1)
            .minimum_calls(1)
            .open_duration(Duration::from_secs(5))
    });
    f.run(&[Call::Fail]).await;
    advance(Duration::from_secs(5)).await;
    f.run(&[Call::Limited(40)]).await;
    assert_eq!(
        f.rejected().await,
        RejectReason::CircuitOpen {
            retry_in: Duration::from_secs(40)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn an_early_probe_ends_a_break_once_per_interval_and_never_inside_a_retry_after() {
    use hive_core::Available;
    let mut f = fixture(|b| {
        b.count_window(1)
            .minimum_calls(1)
            .open_duration(Duration::from_secs(30))
    });
    f.run(&[Call::Fail]).await;
    assert_eq!(f.handle.ready_in(), Some(Duration::from_secs(30)));
    assert!(f.handle.probe_early(Duration::from_secs(1)));
    assert_eq!(f.handle.state(), HalfOpen);
    f.run(&[Call::Fail]).await; // the probe fails: open again
    assert!(
        !f.handle.probe_early(Duration::from_secs(1)),
        "at most one per interval"
    );
    advance(Duration::from_secs(1)).await;
    assert!(f.handle.probe_early(Duration::from_secs(1)));
    f.run(&[Call::Limited(20)]).await; // reopens, for at least the hint
    assert_eq!(
        f.handle.ready_in(),
        None,
        "inside the provider's Retry-After"
    );
    advance(Duration::from_secs(5)).await;
    assert!(!f.handle.probe_early(Duration::from_secs(1)));
    advance(Duration::from_secs(15)).await;
    assert_eq!(
        f.handle.ready_in(),
        Some(Duration::from_secs(10)),
        "the hint has run out; 10 s of the 30 s break are left"
    );
    assert!(f.handle.probe_early(Duration::from_secs(1)));
    f.handle.force_open();
    assert_eq!(f.handle.ready_in(), None);
    assert!(
        !f.handle.probe_early(Duration::ZERO),
        "an operator's forced open wins"
    );
}

#[tokio::test(start_paused = true)]
async fn a_layer_reused_for_two_services_gives_each_its_own_breaker() {
    let config = CircuitBreakerConfig::builder()
        .count_window(1)
        .minimum_calls(1)
        .build()
        .unwrap();
    let failing =
        || tower::service_fn(|_: ()| async { Err::<(), _>(std::io::Error::other("503")) });
    let layer = CircuitBreakerLayer::new(config.clone());
    let a = tower::Layer::layer(&layer, failing());
    let b = tower::Layer::layer(&layer, failing());
    let _ = a.clone().oneshot(()).await;
    assert_eq!((a.handle().state(), b.handle().state()), (Open, Closed));

    let (shared, handle) = CircuitBreakerLayer::shared(config);
    let a = tower::Layer::layer(&shared, failing());
    let b = tower::Layer::layer(&shared, failing());
    let _ = a.oneshot(()).await;
    assert_eq!((b.handle().state(), handle.state()), (Open, Open));
}

#[tokio::test(start_paused = true)]
async fn a_late_success_into_a_window_of_successes_is_not_counted_as_late() {
    let mut f = fixture(|b| b.count_window(2).minimum_calls(2));
    f.run(&[Call::Ok, Call::Ok]).await;
    // Both started while closed; the operator forces the breaker open meanwhile.
    let success = tokio::spawn(f.svc.clone().oneshot(Call::Slow(1_000)));
    let failure = tokio::spawn(f.svc.clone().oneshot(Call::SlowFail(1_000)));
    tokio::task::yield_now().await;
    f.handle.force_open();
    advance(Duration::from_secs(1)).await;
    success.await.unwrap().unwrap();
    failure.await.unwrap().unwrap();
    assert_eq!(
        f.handle.metrics().late_results,
        1,
        "the late failure is dropped and counted; the success could change nothing"
    );
}

/// What a replica of a cluster applies when another opened the model's breaker: the break
/// it was told, one transition with its own generation, and nothing for a breaker already
/// open (but a longer break) or one an operator forced.
#[tokio::test(start_paused = true)]
async fn hold_open_opens_for_the_break_it_is_told_and_lengthens_never_shortens() {
    let mut f = fixture(|b| b.open_duration(Duration::from_secs(5)));
    assert_eq!(f.handle.hold_open(Duration::from_secs(30), false), Some(1));
    assert_eq!(f.transitions(), [(Closed, Open)]);
    assert!(matches!(
        f.rejected().await,
        RejectReason::CircuitOpen { .. }
    ));
    // Already open: a shorter hold changes nothing, a longer one lengthens the break.
    assert_eq!(f.handle.hold_open(Duration::from_secs(10), false), None);
    assert_eq!(
        f.handle.metrics().open_remaining,
        Some(Duration::from_secs(30))
    );
    assert_eq!(f.handle.hold_open(Duration::from_secs(40), false), None);
    assert_eq!(
        f.handle.metrics().open_remaining,
        Some(Duration::from_secs(40))
    );
    assert_eq!(f.transitions(), []);
    advance(Duration::from_secs(39)).await;
    assert!(matches!(
        f.rejected().await,
        RejectReason::CircuitOpen { .. }
    ));
    advance(Duration::from_secs(1)).await;
    f.run(&[Call::Ok]).await;
    assert_eq!(
        f.handle.state(),
        Closed,
        "the trial after the break closes it"
    );
    assert_eq!(f.transitions(), [(Open, HalfOpen), (HalfOpen, Closed)]);
    // An operator's state is left alone.
    f.handle.force_open();
    assert_eq!(f.handle.hold_open(Duration::from_secs(1), false), None);
    assert_eq!(f.handle.state(), ForcedOpen);
}

/// A provider's wait told by another replica: no early probe cuts it short.
#[tokio::test(start_paused = true)]
async fn a_held_retry_after_is_not_cut_short_by_an_early_probe() {
    let f = fixture(|b| b.open_duration(Duration::from_secs(5)));
    f.handle.hold_open(Duration::from_secs(20), true);
    assert_eq!(
        f.handle.metrics().retry_after_remaining,
        Some(Duration::from_secs(20))
    );
    use hive_core::Available;
    assert!(
        !f.handle.probe_early(Duration::ZERO),
        "inside the provider's wait"
    );
    advance(Duration::from_secs(20)).await;
    assert!(f.handle.probe_early(Duration::ZERO), "the wait is over");
}

/// Another replica's trial succeeded: an open or half-open breaker closes; a closed or
/// forced one is left alone.
#[tokio::test(start_paused = true)]
async fn close_if_tripped_closes_only_a_tripped_breaker() {
    let mut f = fixture(|b| b.open_duration(Duration::from_secs(5)));
    assert_eq!(f.handle.close_if_tripped(), None);
    f.handle.hold_open(Duration::from_secs(30), false);
    assert_eq!(f.handle.close_if_tripped(), Some(2));
    assert_eq!(f.transitions(), [(Closed, Open), (Open, Closed)]);
    f.run(&[Call::Ok]).await;
    f.handle.force_open();
    assert_eq!(f.handle.close_if_tripped(), None);
    assert_eq!(f.handle.state(), ForcedOpen);
}
