//! Parallel, hedged and weighted routing: exact timings, cancellation, budgets, events.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use common::*;
use hive_core::{
    BoxError, Budget, EventSink, FailureClass, Outcome, ResilienceEvent, SharedRandom, classify_fn,
};
use hive_fallback::{FallbackError, FallbackRouter, HedgeDelay, Route, Strategy};
use tokio::time::{Instant, sleep};
use tower::{ServiceExt, util::BoxCloneService};

fn hedges(f: &mut Fixture) -> Vec<(String, String, u128)> {
    f.events
        .drain()
        .into_iter()
        .filter_map(|e| match e {
            ResilienceEvent::Hedge { from, to, after } => {
                Some((from.to_string(), to.to_string(), after.as_millis()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_parallel_race_takes_the_first_answer_and_cancels_the_rest() {
    let (router, f) = build_router(
        &[
            ("a", ok(100), None),
            ("b", ok(20), None),
            ("c", ok(30), None),
        ],
        |b| b.strategy(Strategy::Parallel { first: None }),
    );
    let start = Instant::now();
    let routed = router.oneshot("q").await.unwrap();
    assert_eq!((routed.model.unwrap().as_str(), routed.attempts), ("b", 3));
    assert_eq!(start.elapsed(), Duration::from_millis(20));
    assert_eq!(f.calls(), [1, 1, 1]);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        f.finished(),
        [0, 1, 0],
        "the losers were cancelled, not left running"
    );
}

#[tokio::test(start_paused = true)]
async fn racing_the_first_n_starts_the_next_when_one_fails() {
    let (router, f) = build_router(
        &[
            ("a", fail(FailureClass::Unavailable), None),
            ("b", ok(100), None),
            ("c", ok(20), None),
        ],
        |b| b.strategy(Strategy::Parallel { first: Some(2) }),
    );
    let start = Instant::now();
    let routed = router.oneshot("q").await.unwrap();
    // a fails at 10 ms, so c starts then and answers at 30 ms, before b.
    assert_eq!((routed.model.unwrap().as_str(), routed.attempts), ("c", 3));
    assert_eq!(start.elapsed(), Duration::from_millis(30));
    assert_eq!(f.calls(), [1, 1, 1]);
}

#[tokio::test(start_paused = true)]
async fn when_a_race_fails_everywhere_the_primary_error_comes_first() {
    let slow_fail = Behaviour {
        outcome: Outcome::failure(FailureClass::Timeout),
        after_ms: 50,
    };
    let (router, _) = build_router(
        &[
            ("a", slow_fail, None),
            ("b", fail(FailureClass::Connect), None),
        ],
        |b| b.strategy(Strategy::Parallel { first: None }),
    );
    let err = router.oneshot("q").await.unwrap_err();
    let (_, seen) = attempts_of(&err);
    assert_eq!(
        seen,
        [
            ("a", Outcome::failure(FailureClass::Timeout)),
            ("b", Outcome::failure(FailureClass::Connect))
        ]
    );
}

fn hedged(delay: Duration, budget: Option<Budget>) -> Strategy {
    Strategy::Hedged {
        delay: HedgeDelay::Fixed(delay),
        max_hedges: 1,
        budget,
    }
}

#[tokio::test(start_paused = true)]
async fn a_hedge_starts_after_the_delay_and_the_faster_answer_wins() {
    let (router, mut f) = build_router(&[("a", ok(200), None), ("b", ok(30), None)], |b| {
        b.strategy(hedged(Duration::from_millis(50), None))
    });
    let start = Instant::now();
    let routed = router.oneshot("q").await.unwrap();
    assert_eq!((routed.model.unwrap().as_str(), routed.attempts), ("b", 2));
    assert_eq!(start.elapsed(), Duration::from_millis(80));
    assert_eq!(hedges(&mut f), [("a".into(), "b".into(), 50)]);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(f.finished(), [0, 1]);
}

#[tokio::test(start_paused = true)]
async fn no_hedge_when_the_first_answers_in_time_and_a_failure_falls_back_at_once() {
    let (router, mut f) = build_router(&[("a", ok(40), None), ("b", ok(30), None)], |b| {
        b.strategy(hedged(Duration::from_millis(50), None))
    });
    assert_eq!(
        router.oneshot("q").await.unwrap().model.unwrap().as_str(),
        "a"
    );
    assert_eq!(f.calls(), [1, 0]);
    assert_eq!(hedges(&mut f), []);

    let (router, mut f) = build_router(
        &[
            ("a", fail(FailureClass::Unavailable), None),
            ("b", ok(30), None),
        ],
        |b| b.strategy(hedged(Duration::from_millis(50), None)),
    );
    let start = Instant::now();
    let routed = router.oneshot("q").await.unwrap();
    assert_eq!(
        (routed.model.unwrap().as_str(), start.elapsed()),
        ("b", Duration::from_millis(40))
    );
    assert_eq!(f.failovers().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_hedge_budget_caps_hedges_to_a_share_of_requests() {
    let budget = Budget::new(Duration::from_secs(10), 0, 0.5).unwrap();
    let (router, f) = build_router(&[("a", ok(200), None), ("b", ok(30), None)], |b| {
        b.strategy(hedged(Duration::from_millis(50), Some(budget)))
    });
    let mut answered_by = Vec::new();
    for _ in 0..4 {
        answered_by.push(
            router
                .clone()
                .oneshot("q")
                .await
                .unwrap()
                .model
                .unwrap()
                .as_str(),
        );
    }
    assert_eq!(
        answered_by,
        ["a", "b", "a", "b"],
        "a hedge every other request at a 50% budget"
    );
    assert_eq!(f.calls(), [4, 2]);
}

#[tokio::test(start_paused = true)]
async fn a_percentile_delay_follows_the_first_models_observed_latency() {
    // "a" answers in 100 ms ten times, then takes 1 s.
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let a: Model = BoxCloneService::new(tower::service_fn(move |_: &'static str| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            sleep(Duration::from_millis(if n < 10 { 100 } else { 1_000 })).await;
            Ok(Answer {
                model: "a",
                outcome: Outcome::Success,
                deadline_left: None,
            })
        }
    }));
    let (sink, mut events) = EventSink::channel(100);
    let router = FallbackRouter::builder()
        .classifier(classify_fn(
            classify as fn(&Result<Answer, BoxError>) -> Outcome,
        ))
        .events(sink)
        .route(Route::new("a", a))
        .route(Route::new("b", model("b", ok(20), Arc::default())))
        .strategy(Strategy::Hedged {
            delay: HedgeDelay::Percentile {
                percentile: 0.5,
                min_samples: 5,
                otherwise: Duration::from_secs(1),
            },
            max_hedges: 1,
            budget: None,
        })
        .build()
        .unwrap();
    for _ in 0..10 {
        assert_eq!(
            router
                .clone()
                .oneshot("q")
                .await
                .unwrap()
                .model
                .unwrap()
                .as_str(),
            "a"
        );
    }
    assert_eq!(
        events.drain(),
        [],
        "no hedge while a answers within its usual time"
    );
    let start = Instant::now();
    let routed = router.oneshot("q").await.unwrap();
    assert_eq!(routed.model.unwrap().as_str(), "b");
    let after = match events.drain()[..] {
        [ResilienceEvent::Hedge { after, .. }] => after,
        ref other => panic!("{other:?}"),
    };
    // The median bucket of 100 ms answers ends at 114.688 ms (quarter-octave buckets), and
    // tokio's timers fire on whole milliseconds.
    assert_eq!(after, Duration::from_millis(115));
    assert_eq!(start.elapsed(), after + Duration::from_millis(20));
}

#[tokio::test(start_paused = true)]
async fn weighted_routing_prefers_fast_reliable_models_and_repeats_with_a_seed() {
    let run = || async {
        let (router, f) = build_router(
            &[
                ("slow", ok(400), None),
                ("fast", ok(100), None),
                ("broken", fail(FailureClass::Unavailable), None),
            ],
            |b| {
                b.strategy(Strategy::Weighted {
                    random: SharedRandom::new(Some(11)),
                })
            },
        );
        for _ in 0..200 {
            let routed = router.clone().oneshot("q").await.unwrap();
            assert!(!routed.degraded);
        }
        f.calls()
    };
    let calls = run().await;
    assert_eq!(calls, run().await, "seeded: the same choices every run");
    let [slow, fast, broken] = calls[..] else {
        panic!()
    };
    assert!(fast > 2 * slow, "fast {fast} vs slow {slow}");
    assert!(
        broken < 20,
        "the broken model is soon avoided: {broken} calls"
    );
}

#[tokio::test(start_paused = true)]
async fn a_race_ends_at_the_deadline_with_every_model_in_flight_timed_out() {
    let (router, f) = build_router(&[("a", ok(500), None), ("b", ok(400), None)], |b| {
        b.strategy(Strategy::Parallel { first: None })
            .timeout(Duration::from_millis(50))
    });
    let start = Instant::now();
    let err = router.oneshot("q").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    let (err, seen) = attempts_of(&err);
    assert!(matches!(err, FallbackError::DeadlineExceeded { .. }));
    assert_eq!(
        seen,
        [
            ("a", Outcome::failure(FailureClass::Timeout)),
            ("b", Outcome::failure(FailureClass::Timeout))
        ]
    );
    sleep(Duration::from_secs(1)).await;
    assert_eq!(f.finished(), [0, 0]);
}

#[tokio::test(start_paused = true)]
async fn weights_scale_the_first_picks_of_equal_models() {
    let (mut builder, mut calls) = (
        FallbackRouter::builder()
            .classifier(classify_fn(
                classify as fn(&Result<Answer, BoxError>) -> Outcome,
            ))
            .strategy(Strategy::Weighted {
                random: SharedRandom::new(Some(3)),
            }),
        Vec::new(),
    );
    for (name, weight) in [("light", 1.0), ("heavy", 3.0)] {
        let (counter, done) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        calls.push(Arc::clone(&counter));
        let model = counted_model(name, ok(100), counter, done);
        builder = builder.route(Route::new(name, model).weight(weight));
    }
    let router = builder.build().unwrap();
    for _ in 0..400 {
        router.clone().oneshot("q").await.unwrap();
    }
    let [light, heavy] = [0, 1].map(|i| calls[i].load(Ordering::Relaxed));
    assert_eq!(light + heavy, 400);
    let share = f64::from(heavy) / 400.0;
    assert!((0.70..=0.80).contains(&share), "heavy took {heavy} of 400");
}

#[test]
fn a_weight_must_be_above_zero() {
    for weight in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let error = FallbackRouter::<Model, Answer>::builder()
            .route(
                Route::new(
                    "a",
                    counted_model("a", ok(1), Arc::default(), Arc::default()),
                )
                .weight(weight),
            )
            .build()
            .unwrap_err();
        assert_eq!(error.field, "weight", "{weight}");
    }
}
