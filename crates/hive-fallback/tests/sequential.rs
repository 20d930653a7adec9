//! The sequential router: exact attempts, events, deadlines and degradation (paused time).

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use common::*;
use hive_core::{
    Available, BoxError, ClientErrorClass, Deadline, EventSink, FailureClass, Outcome,
    RejectReason, ResilienceEvent, classify_fn,
};
use hive_fallback::{FallbackError, FallbackRouter, Route, Routed};
use tokio::time::Instant;
use tower::{ServiceExt, util::BoxCloneService};

#[tokio::test(start_paused = true)]
async fn the_first_answer_wins_without_events() {
    let (router, mut f) = build_router(&[("a", ok(5), None), ("b", ok(5), None)], |b| b);
    let routed = router.oneshot("q").await.unwrap();
    assert_eq!(
        (
            routed.model.unwrap().as_str(),
            routed.attempts,
            routed.degraded
        ),
        ("a", 1, false)
    );
    assert_eq!(f.calls(), [1, 0]);
    assert_eq!(f.failovers(), []);
}

#[tokio::test(start_paused = true)]
async fn availability_failures_fall_back_in_order_with_one_event_per_hop() {
    let (router, mut f) = build_router(
        &[
            ("a", fail(FailureClass::Unavailable), None),
            ("b", fail(FailureClass::RateLimited), None),
            ("c", ok(5), None),
        ],
        |b| b,
    );
    let start = Instant::now();
    let routed = router.oneshot("q").await.unwrap();
    assert_eq!((routed.model.unwrap().as_str(), routed.attempts), ("c", 3));
    assert_eq!(start.elapsed(), Duration::from_millis(25));
    assert_eq!(f.calls(), [1, 1, 1]);
    assert_eq!(
        f.failovers(),
        [
            (
                "a".into(),
                "b".into(),
                Outcome::failure(FailureClass::Unavailable),
                10
            ),
            (
                "b".into(),
                "c".into(),
                Outcome::failure(FailureClass::RateLimited),
                10
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_bad_request_or_content_refusal_is_returned_not_retried_elsewhere() {
    for class in [
        ClientErrorClass::BadRequest,
        ClientErrorClass::ContentPolicy,
    ] {
        let (router, mut f) =
            build_router(&[("a", refuse(class), None), ("b", ok(5), None)], |b| b);
        let routed = router.oneshot("q").await.unwrap();
        assert_eq!(routed.response.outcome, Outcome::ClientError(class));
        assert_eq!(routed.model.unwrap().as_str(), "a");
        assert_eq!(f.calls(), [1, 0]);
        assert_eq!(f.failovers(), []);
    }
}

#[tokio::test(start_paused = true)]
async fn context_length_exceeded_goes_to_a_larger_window_only() {
    let too_long = refuse(ClientErrorClass::ContextLengthExceeded);
    let (router, mut f) = build_router(
        &[
            ("small", too_long, Some(8_000)),
            ("same", ok(5), Some(8_000)),
            ("large", ok(5), Some(128_000)),
        ],
        |b| b,
    );
    let routed = router.oneshot("q").await.unwrap();
    assert_eq!(routed.model.unwrap().as_str(), "large");
    assert_eq!(f.calls(), [1, 0, 1]);
    assert_eq!(f.failovers().len(), 1);

    // Without a larger model, the refusal is the answer.
    let (router, f) = router_pair_without_larger();
    let routed = router.oneshot("q").await.unwrap();
    assert_eq!(
        routed.response.outcome,
        Outcome::ClientError(ClientErrorClass::ContextLengthExceeded)
    );
    assert_eq!(f.calls(), [1, 0]);
}

fn router_pair_without_larger() -> (FallbackRouter<Model, Answer, Classifier>, Fixture) {
    build_router(
        &[
            (
                "small",
                refuse(ClientErrorClass::ContextLengthExceeded),
                Some(8_000),
            ),
            ("other", ok(5), Some(8_000)),
        ],
        |b| b,
    )
}

struct Switch(Arc<AtomicBool>);

impl Available for Switch {
    fn available(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test(start_paused = true)]
async fn an_unavailable_model_is_skipped_without_a_call() {
    let up = Arc::new(AtomicBool::new(false));
    let (sink, mut events) = EventSink::channel(10);
    let calls = [Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0))];
    let router = FallbackRouter::builder()
        .classifier(classify_fn(
            classify as fn(&Result<Answer, BoxError>) -> Outcome,
        ))
        .events(sink)
        .route(
            Route::new("a", model("a", ok(5), calls[0].clone())).available_when(Switch(up.clone())),
        )
        .route(Route::new("b", model("b", ok(5), calls[1].clone())))
        .build()
        .unwrap();
    let routed = router.clone().oneshot("q").await.unwrap();
    assert_eq!((routed.model.unwrap().as_str(), routed.attempts), ("b", 1));
    assert_eq!(calls[0].load(Ordering::SeqCst), 0);
    assert!(matches!(
        events.drain()[..],
        [ResilienceEvent::Failover {
            reason: Outcome::Rejected(RejectReason::Unavailable),
            ..
        }]
    ));
    up.store(true, Ordering::SeqCst);
    let routed = router.oneshot("q").await.unwrap();
    assert_eq!(routed.model.unwrap().as_str(), "a");
}

#[tokio::test(start_paused = true)]
async fn one_deadline_covers_every_attempt_and_is_passed_down() {
    let (router, f) = build_router(
        &[
            ("a", fail(FailureClass::Timeout), None),
            ("slow", ok(5_000), None),
        ],
        |b| b.timeout(Duration::from_secs(2)),
    );
    let start = Instant::now();
    let err = router.oneshot("q").await.unwrap_err();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "cut at the deadline, not at 5 s"
    );
    let err = err.downcast_ref::<FallbackError>().unwrap();
    let FallbackError::DeadlineExceeded { attempts } = err else {
        panic!("{err}")
    };
    let seen: Vec<_> = attempts
        .iter()
        .map(|a| (a.model.as_str(), a.outcome))
        .collect();
    assert_eq!(
        seen,
        [
            ("a", Outcome::failure(FailureClass::Timeout)),
            ("slow", Outcome::failure(FailureClass::Timeout))
        ]
    );
    assert_eq!(f.calls(), [1, 1]);

    // Each model sees the time left of the one deadline.
    let (router, _) = build_router(
        &[
            ("a", fail(FailureClass::Unavailable), None),
            ("b", ok(5), None),
        ],
        |b| b.timeout(Duration::from_secs(2)),
    );
    let routed = router.oneshot("q").await.unwrap();
    assert_eq!(
        routed.response.deadline_left,
        Some(Duration::from_millis(1_990))
    );
}

#[tokio::test(start_paused = true)]
async fn an_outer_deadline_that_is_sooner_wins_and_no_attempt_starts_that_cannot_fit() {
    let (router, f) = build_router(
        &[
            ("a", fail(FailureClass::Unavailable), None),
            ("b", ok(5), None),
        ],
        |b| b.timeout(Duration::from_secs(10)),
    );
    let routed = Deadline::after(Duration::from_secs(1))
        .scope(router.oneshot("q"))
        .await
        .unwrap();
    assert_eq!(
        routed.response.deadline_left,
        Some(Duration::from_millis(990))
    );
    assert_eq!(f.calls(), [1, 1]);

    let calls = [Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0))];
    let router = FallbackRouter::builder()
        .classifier(classify_fn(
            classify as fn(&Result<Answer, BoxError>) -> Outcome,
        ))
        .route(Route::new(
            "a",
            model(
                "a",
                Behaviour {
                    outcome: Outcome::failure(FailureClass::Unavailable),
                    after_ms: 700,
                },
                calls[0].clone(),
            ),
        ))
        .route(
            Route::new("b", model("b", ok(5), calls[1].clone()))
                .min_attempt_time(Duration::from_millis(500)),
        )
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = router.oneshot("q").await.unwrap_err();
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(700),
        "300 ms left < 500 ms needed: stop at once"
    );
    assert!(matches!(
        err.downcast_ref::<FallbackError>(),
        Some(FallbackError::DeadlineExceeded { .. })
    ));
    assert_eq!(calls[1].load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn when_every_model_fails_the_error_lists_each_attempt_primary_first() {
    let (router, _) = build_router(
        &[
            ("a", fail(FailureClass::Overloaded), None),
            ("b", fail(FailureClass::Connect), None),
        ],
        |b| b,
    );
    let err = router.oneshot("q").await.unwrap_err();
    let (err, seen) = attempts_of(&err);
    assert_eq!(
        seen,
        [
            ("a", Outcome::failure(FailureClass::Overloaded)),
            ("b", Outcome::failure(FailureClass::Connect))
        ]
    );
    assert!(
        err.to_string().starts_with("no model answered: a: "),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn degraded_answers_are_marked_static_or_last_good() {
    let fixed = Answer {
        model: "static",
        outcome: Outcome::Success,
        deadline_left: None,
    };
    let (router, _) = build_router(&[("a", fail(FailureClass::Unavailable), None)], |b| {
        b.degraded_static(fixed.clone())
    });
    let routed = router.oneshot("q").await.unwrap();
    assert_eq!(
        routed,
        Routed {
            response: fixed,
            model: None,
            attempts: 1,
            degraded: true
        }
    );

    // Last good: nothing before the first answer, then the last answer.
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let flaky: Model = BoxCloneService::new(tower::service_fn(move |_: &'static str| {
        let outcome = if flag.load(Ordering::SeqCst) {
            Outcome::Success
        } else {
            Outcome::failure(FailureClass::Unavailable)
        };
        async move {
            Ok(Answer {
                model: "flaky",
                outcome,
                deadline_left: None,
            })
        }
    }));
    let router = FallbackRouter::builder()
        .classifier(classify_fn(
            classify as fn(&Result<Answer, BoxError>) -> Outcome,
        ))
        .route(Route::new("flaky", flaky))
        .degraded_last_good()
        .build()
        .unwrap();
    assert!(
        router.clone().oneshot("q").await.is_err(),
        "no good answer yet"
    );
    healthy.store(true, Ordering::SeqCst);
    assert!(!router.clone().oneshot("q").await.unwrap().degraded);
    healthy.store(false, Ordering::SeqCst);
    let routed = router.oneshot("q").await.unwrap();
    assert!(routed.degraded);
    assert_eq!(routed.response.model, "flaky");
    assert_eq!(routed.response.outcome, Outcome::Success);
}

#[tokio::test]
async fn each_model_is_polled_ready_before_it_is_called() {
    let (mock, mut handle) = tower_test::mock::pair::<&'static str, &'static str>();
    let router = FallbackRouter::builder()
        .route(Route::new("mock", mock))
        .build()
        .unwrap();
    handle.allow(0);
    let response = tokio::spawn(router.oneshot("q"));
    tokio::task::yield_now().await;
    assert!(handle.poll_request().is_pending());
    handle.allow(1);
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request, "q");
    send.send_response("a");
    assert_eq!(response.await.unwrap().unwrap().response, "a");
}

#[test]
fn bad_settings_name_their_field() {
    let empty = FallbackRouter::<Model, Answer>::builder()
        .build()
        .unwrap_err();
    assert_eq!(empty.field, "route");
    let calls = Arc::new(AtomicU32::new(0));
    let twice = FallbackRouter::<Model, Answer>::builder()
        .route(Route::new("a", model("a", ok(1), calls.clone())))
        .route(Route::new("a", model("a", ok(1), calls)))
        .build()
        .unwrap_err();
    assert_eq!(twice.field, "route");
}

/// A breaker as the router sees it: open for `ready_in_ms` more (`u64::MAX`: not by
/// itself), letting an early probe through when it has a time.
#[derive(Clone, Default)]
struct FakeBreaker {
    open: Arc<AtomicBool>,
    ready_in_ms: Arc<std::sync::atomic::AtomicU64>,
    early_probes: Arc<AtomicU32>,
}

impl FakeBreaker {
    fn open_for(ms: u64) -> Self {
        let b = Self::default();
        b.open.store(true, Ordering::SeqCst);
        b.ready_in_ms.store(ms, Ordering::SeqCst);
        b
    }
}

impl Available for FakeBreaker {
    fn available(&self) -> bool {
        !self.open.load(Ordering::SeqCst)
    }

    fn ready_in(&self) -> Option<Duration> {
        if self.available() {
            return Some(Duration::ZERO);
        }
        match self.ready_in_ms.load(Ordering::SeqCst) {
            u64::MAX => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    fn probe_early(&self, _: Duration) -> bool {
        if self.ready_in().is_none() {
            return false;
        }
        self.early_probes.fetch_add(1, Ordering::SeqCst);
        self.open.store(false, Ordering::SeqCst);
        true
    }
}

fn last_resort_router(
    breakers: &[FakeBreaker],
    last_resort: Option<Duration>,
) -> (
    FallbackRouter<Model, Answer, Classifier>,
    Vec<Arc<AtomicU32>>,
    hive_core::EventReceiver,
) {
    let (sink, events) = EventSink::channel(100);
    let mut builder = FallbackRouter::builder()
        .classifier(classify_fn(
            classify as fn(&Result<Answer, BoxError>) -> Outcome,
        ))
        .events(sink)
        .last_resort(last_resort);
    let mut calls = Vec::new();
    for (name, breaker) in ["a", "b", "c"].into_iter().zip(breakers) {
        let counter = Arc::new(AtomicU32::new(0));
        calls.push(counter.clone());
        builder = builder
            .route(Route::new(name, model(name, ok(5), counter)).available_when(breaker.clone()));
    }
    (builder.build().unwrap(), calls, events)
}

#[tokio::test(start_paused = true)]
async fn when_every_model_is_unavailable_one_probe_goes_to_the_soonest_back() {
    let breakers = [
        FakeBreaker::open_for(20_000),
        FakeBreaker::open_for(5_000),
        FakeBreaker::open_for(u64::MAX), // inside a Retry-After, or forced open
    ];
    let (router, calls, mut events) = last_resort_router(&breakers, Some(Duration::from_secs(1)));
    let routed = router.oneshot("q").await.unwrap();
    assert_eq!((routed.model.unwrap().as_str(), routed.attempts), ("b", 1));
    let counts: Vec<u32> = calls.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, [0, 1, 0]);
    let probes: Vec<u32> = breakers
        .iter()
        .map(|b| b.early_probes.load(Ordering::SeqCst))
        .collect();
    assert_eq!(probes, [0, 1, 0]);
    let last_resorts: Vec<_> = events
        .drain()
        .into_iter()
        .filter(|e| matches!(e, ResilienceEvent::LastResort { .. }))
        .collect();
    assert_eq!(
        last_resorts,
        [ResilienceEvent::LastResort {
            model: hive_core::ModelId::new("b"),
            break_left: Duration::from_secs(5),
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn no_last_resort_when_no_break_ends_by_itself_or_when_turned_off() {
    let never = [
        FakeBreaker::open_for(u64::MAX),
        FakeBreaker::open_for(u64::MAX),
        FakeBreaker::open_for(u64::MAX),
    ];
    let (router, calls, _) = last_resort_router(&never, Some(Duration::from_secs(1)));
    let err = router.oneshot("q").await.unwrap_err();
    let (_, seen) = attempts_of(&err);
    assert_eq!(
        seen,
        [
            ("a", Outcome::Rejected(RejectReason::Unavailable)),
            ("b", Outcome::Rejected(RejectReason::Unavailable)),
            ("c", Outcome::Rejected(RejectReason::Unavailable)),
        ]
    );
    assert!(calls.iter().all(|c| c.load(Ordering::SeqCst) == 0));

    let soon = [
        FakeBreaker::open_for(1_000),
        FakeBreaker::open_for(2_000),
        FakeBreaker::open_for(3_000),
    ];
    let (router, calls, _) = last_resort_router(&soon, None);
    assert!(router.oneshot("q").await.is_err());
    assert!(calls.iter().all(|c| c.load(Ordering::SeqCst) == 0));
    assert!(
        soon.iter()
            .all(|b| b.early_probes.load(Ordering::SeqCst) == 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_model_refusal_returned_to_the_caller_counts_as_answered() {
    let answered = Arc::new(std::sync::RwLock::new(Vec::new()));
    let record = answered.clone();
    let (router, _) = build_router(
        &[
            ("a", refuse(ClientErrorClass::BadRequest), None),
            ("b", ok(5), None),
        ],
        move |b| {
            b.on_result(move |end| {
                record
                    .write()
                    .unwrap()
                    .push(end == hive_fallback::RequestEnd::Answered)
            })
        },
    );
    router.clone().oneshot("q").await.unwrap();
    let (router2, _) = build_router(
        &[
            ("a", fail(FailureClass::Unavailable), None),
            ("b", fail(FailureClass::Unavailable), None),
        ],
        |b| b,
    );
    assert!(router2.oneshot("q").await.is_err());
    assert_eq!(*answered.read().unwrap(), [true]);
}

/// Routes skipped before and after a failure: every one is in the error, in priority
/// order, and every move has its failover event, whether the skip was recorded before
/// anything failed (allocation-free) or after.
#[tokio::test(start_paused = true)]
async fn skipped_routes_before_and_after_a_failure_are_all_reported() {
    let (sink, mut events) = EventSink::channel(10);
    let down = || Switch(Arc::new(AtomicBool::new(false)));
    let calls = [
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU32::new(0)),
    ];
    let router = FallbackRouter::builder()
        .classifier(classify_fn(
            classify as fn(&Result<Answer, BoxError>) -> Outcome,
        ))
        .events(sink)
        .route(Route::new("a", model("a", ok(5), calls[0].clone())).available_when(down()))
        .route(Route::new(
            "b",
            model("b", fail(FailureClass::Unavailable), calls[1].clone()),
        ))
        .route(Route::new("c", model("c", ok(5), calls[2].clone())).available_when(down()))
        .build()
        .unwrap();
    let err = router.oneshot("q").await.unwrap_err();
    let (_, seen) = attempts_of(&err);
    assert_eq!(
        seen,
        [
            ("a", Outcome::Rejected(RejectReason::Unavailable)),
            ("b", Outcome::failure(FailureClass::Unavailable)),
            ("c", Outcome::Rejected(RejectReason::Unavailable)),
        ]
    );
    let moves: Vec<_> = events
        .drain()
        .into_iter()
        .filter_map(|e| match e {
            ResilienceEvent::Failover {
                from, to, reason, ..
            } => Some((from.to_string(), to.to_string(), reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        moves,
        [
            (
                "a".to_owned(),
                "b".to_owned(),
                Outcome::Rejected(RejectReason::Unavailable)
            ),
            (
                "b".to_owned(),
                "c".to_owned(),
                Outcome::failure(FailureClass::Unavailable)
            ),
        ]
    );
    assert_eq!(
        calls
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect::<Vec<_>>(),
        [0, 1, 0]
    );
}
