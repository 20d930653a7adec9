//! Edges of the breaker's state machine that mutation testing (cargo-mutants, see
//! TESTING.md) found untested: slow probes, a probe that outlives its trial, an operator's
//! half-open over a healthy window, and the instant a `Retry-After` ends. Paused time,
//! exact states, transitions and permits.

#![allow(clippy::unwrap_used)]

use std::{convert::Infallible, time::Duration};

use hive_breaker::{BreakerHandle, CircuitBreakerConfig, CircuitBreakerConfigBuilder};
use hive_core::{
    BoxError, CircuitState, CircuitState::*, EventReceiver, EventSink, FailureClass, Outcome,
    RejectReason, Rejected, ResilienceEvent, classify_fn,
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
}

fn classify(result: &Result<Call, Infallible>) -> Outcome {
    match result {
        Ok(Call::Ok | Call::Slow(_)) => Outcome::Success,
        Ok(Call::Fail) => Outcome::failure(FailureClass::Unavailable),
        Ok(Call::Limited(secs)) => Outcome::Failure {
            class: FailureClass::RateLimited,
            retry_after: Some(Duration::from_secs(*secs)),
        },
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
    let config = configure(
        CircuitBreakerConfig::builder()
            .model("m")
            .events(sink)
            .open_duration(Duration::from_secs(1)),
    )
    .build()
    .unwrap();
    let (layer, handle) = hive_breaker::CircuitBreakerLayer::shared(config);
    let layer = layer.with_classifier(classify_fn(
        classify as fn(&Result<Call, Infallible>) -> Outcome,
    ));
    let svc = tower::ServiceBuilder::new()
        .layer(layer)
        .service_fn(|call: Call| async move {
            if let Call::Slow(ms) = call {
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
        err.downcast_ref::<Rejected>()
            .expect("a Rejected error")
            .reason
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

#[tokio::test(start_paused = true)]
async fn slow_probes_decide_the_trial_and_fast_ones_do_not_count_as_slow() {
    let mut f = fixture(|b| {
        b.count_window(2)
            .minimum_calls(2)
            .consecutive_failures(None)
            .failure_rate_threshold(1.0)
            .slow_call_duration(Duration::from_millis(100))
            .slow_call_rate_threshold(0.5)
            .half_open_permits(2)
    });
    f.run(&[Call::Slow(150), Call::Slow(150)]).await;
    assert_eq!(f.transitions(), [(Closed, Open)], "2 of 2 slow");

    // Two fast probes: the first leaves the verdict open (the second could be slow), the
    // second closes.
    advance(Duration::from_secs(1)).await;
    f.run(&[Call::Ok]).await;
    assert_eq!(f.handle.state(), HalfOpen, "1 fast probe of 2: undecided");
    assert_eq!(f.handle.metrics().half_open_permits_free, 1);
    f.run(&[Call::Ok]).await;
    assert_eq!(f.transitions(), [(Open, HalfOpen), (HalfOpen, Closed)]);

    // One slow probe of two already reaches 50%: the breaker reopens at once.
    f.run(&[Call::Slow(150), Call::Slow(150)]).await;
    advance(Duration::from_secs(1)).await;
    f.run(&[Call::Slow(150)]).await;
    assert_eq!(
        f.transitions(),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Open)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_outlives_its_trial_gives_no_permit_to_the_next_trial() {
    let mut f = fixture(|b| {
        b.count_window(1)
            .minimum_calls(1)
            .half_open_permits(1)
            .max_wait_in_half_open(Duration::from_secs(1))
    });
    f.run(&[Call::Fail]).await;
    advance(Duration::from_secs(1)).await;
    // Trial 1: its one probe hangs past the maximum wait.
    let hung = f.svc.ready().await.unwrap().call(Call::Slow(60_000));
    assert_eq!(f.handle.metrics().half_open_permits_free, 0);
    advance(Duration::from_secs(1)).await;
    assert_eq!(
        f.rejected().await,
        RejectReason::CircuitOpen {
            retry_in: Duration::from_secs(1)
        },
        "the hung probe counted as failed: open again"
    );
    // Trial 2: its one probe is out.
    advance(Duration::from_secs(1)).await;
    let probe = f.svc.ready().await.unwrap().call(Call::Slow(60_000));
    assert_eq!(f.handle.state(), HalfOpen);
    assert_eq!(f.handle.metrics().half_open_permits_free, 0);
    // The caller of the first trial's probe gives up: its permit is void.
    drop(hung);
    assert_eq!(f.handle.metrics().half_open_permits_free, 0);
    assert_eq!(f.rejected().await, RejectReason::HalfOpenBusy);
    // The second trial's own probe gives its permit back.
    drop(probe);
    assert_eq!(f.handle.metrics().half_open_permits_free, 1);
    assert_eq!(
        f.transitions(),
        [
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_good_probe_closes_a_breaker_half_opened_over_a_window_of_successes() {
    let mut f = fixture(|b| b.count_window(2).minimum_calls(2));
    f.run(&[Call::Ok, Call::Ok]).await;
    assert!(f.handle.half_open(), "an operator half-opens it");
    f.run(&[Call::Ok]).await;
    assert_eq!(f.handle.state(), Closed);
    assert_eq!(f.transitions(), [(Closed, HalfOpen), (HalfOpen, Closed)]);
}

#[tokio::test(start_paused = true)]
async fn no_retry_after_remains_at_the_instant_it_ends() {
    let mut f = fixture(|b| b.count_window(1).minimum_calls(1));
    f.run(&[Call::Limited(10)]).await;
    advance(Duration::from_secs(9)).await;
    let metrics = f.handle.metrics();
    assert_eq!(metrics.retry_after_remaining, Some(Duration::from_secs(1)));
    assert_eq!(metrics.open_remaining, Some(Duration::from_secs(1)));
    advance(Duration::from_secs(1)).await;
    let metrics = f.handle.metrics();
    assert_eq!(metrics.state, Open, "until the next call");
    assert_eq!(metrics.retry_after_remaining, None);
    assert_eq!(metrics.open_remaining, Some(Duration::ZERO));
}
