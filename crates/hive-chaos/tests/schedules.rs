//! Schedules switch on and off at exact times (paused tokio time), fail-N counts exactly,
//! the handle switches and replaces rules at runtime, rules round-trip through serde and
//! are validated, and the layer keeps tower's readiness contract.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod support;

use std::time::Duration;

use hive_chaos::{
    ChaosError, ChaosLayer, ChaosRules, Fault, InjectedError, Latency, Rule, RuleStats, Schedule,
    StreamFault,
};
use hive_core::{BoxError, ClientErrorClass, FailureClass, ModelId, Outcome, classify_error};
use support::{InstantModel, injected};
use tokio::time::{Instant, advance};
use tower::{Layer, Service, ServiceExt};
use tower_test::{assert_request_eq, mock};

const MS: Duration = Duration::from_millis(1);
const NS: Duration = Duration::from_nanos(1);

fn service(rules: ChaosRules) -> impl Service<u64, Response = u64, Error = BoxError> {
    ChaosLayer::new(rules)
        .unwrap()
        .model("m")
        .layer(InstantModel)
}

/// Whether a call at each offset (from the rules' start, in order) is injected.
async fn at(rules: ChaosRules, offsets: &[Duration]) -> Vec<bool> {
    let start = Instant::now();
    let mut svc = service(rules);
    let mut seen = Vec::new();
    for offset in offsets {
        advance(start + *offset - Instant::now()).await;
        seen.push(injected(&mut svc));
    }
    seen
}

fn rule(schedule: Schedule) -> ChaosRules {
    ChaosRules::new()
        .seed(1)
        .rule(Rule::new(Fault::status(503)).schedule(schedule))
}

#[tokio::test(start_paused = true)]
async fn an_outage_window_is_on_from_its_start_included_to_its_end_excluded() {
    let s = Duration::from_secs;
    let seen = at(
        rule(Schedule::window(s(10), s(40))),
        &[s(0), s(10) - NS, s(10), s(25), s(40) - NS, s(40), s(100)],
    )
    .await;
    assert_eq!(seen, [false, false, true, true, true, false, false]);
}

#[tokio::test(start_paused = true)]
async fn flapping_is_on_for_its_duty_at_the_start_of_every_period() {
    let s = Duration::from_secs;
    // Period 10 s, duty 0.3: on in [0, 3 s), off in [3 s, 10 s), on again in [10 s, 13 s) …
    let seen = at(
        rule(Schedule::flapping(s(10), 0.3)),
        &[
            s(0),
            s(3) - NS,
            s(3),
            s(10) - NS,
            s(10),
            s(13) - NS,
            s(13),
            s(1000),
            s(1003),
        ],
    )
    .await;
    assert_eq!(
        seen,
        [true, true, false, false, true, true, false, true, false]
    );
    // Duty 0 is never on, duty 1 always.
    assert_eq!(
        at(rule(Schedule::flapping(s(10), 0.0)), &[s(0), s(5), s(10)]).await,
        [false; 3]
    );
    assert_eq!(
        at(
            rule(Schedule::flapping(s(10), 1.0)),
            &[s(0), s(9), s(10) - NS]
        )
        .await,
        [true; 3]
    );
}

#[tokio::test(start_paused = true)]
async fn fail_n_then_recover_injects_exactly_n_times() {
    let layer = ChaosLayer::new(rule(Schedule::fail_first(3))).unwrap();
    let handle = layer.handle();
    // Two services (two clones of the model's stack) share the count.
    let (mut a, mut b) = (layer.layer(InstantModel), layer.layer(InstantModel));
    let seen: Vec<bool> = (0..8)
        .map(|i| {
            if i % 2 == 0 {
                injected(&mut a)
            } else {
                injected(&mut b)
            }
        })
        .collect();
    assert_eq!(seen, [true, true, true, false, false, false, false, false]);
    assert_eq!(
        handle.stats(),
        [RuleStats {
            matched: 8,
            injected: 3
        }]
    );
    // At a rate below 1, the first 3 injections, then never again.
    let layer = ChaosLayer::new(
        ChaosRules::new().seed(9).rule(
            Rule::new(Fault::status(500))
                .rate(0.5)
                .schedule(Schedule::fail_first(3)),
        ),
    )
    .unwrap();
    let mut svc = layer.layer(InstantModel);
    let count = (0..1000).filter(|_| injected(&mut svc)).count();
    assert_eq!(count, 3);
    assert_eq!(layer.handle().stats()[0].injected, 3);
}

#[tokio::test(start_paused = true)]
async fn a_ramp_is_off_before_its_start_then_rises_linearly_to_the_rules_rate() {
    let s = Duration::from_secs;
    let layer = ChaosLayer::new(
        ChaosRules::new()
            .seed(3)
            .rule(Rule::new(Fault::status(503)).schedule(Schedule::ramp(s(10), s(10)))),
    )
    .unwrap();
    let mut svc = layer.layer(InstantModel);
    let start = Instant::now();
    // Before the start and at it: rate 0 (no draw is even made).
    for offset in [s(0), s(10) - NS, s(10)] {
        advance(start + offset - Instant::now()).await;
        assert_eq!(
            (0..1000).filter(|_| injected(&mut svc)).count(),
            0,
            "{offset:?}"
        );
    }
    // A quarter, half, three quarters of the way: that share of calls, within 99.99%.
    for (offset, p) in [
        (s(12) + MS * 500, 0.25),
        (s(15), 0.5),
        (s(17) + MS * 500, 0.75),
    ] {
        advance(start + offset - Instant::now()).await;
        let n = 20_000;
        let x = (0..n).filter(|_| injected(&mut svc)).count();
        assert_within(x, n, p);
    }
    // At the end and after: the rule's full rate (1: every call).
    for offset in [s(20), s(1000)] {
        advance(start + offset - Instant::now()).await;
        assert_eq!((0..1000).filter(|_| injected(&mut svc)).count(), 1000);
    }
}

/// `x` of `n` calls is inside the 99.99% interval of a binomial with rate `p`.
fn assert_within(x: usize, n: usize, p: f64) {
    let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
    let z = 3.8906;
    assert!(
        (x as f64 - mean).abs() <= z * sd,
        "{x} of {n} outside {mean} ± {}",
        z * sd
    );
}

#[tokio::test(start_paused = true)]
async fn rules_pick_their_model_and_failures_stop_the_call() {
    let a = ModelId::new("model-a");
    let rules = ChaosRules::new()
        .seed(5)
        .rule(Rule::new(Fault::status(503)).model("model-a"))
        .rule(Rule::new(Fault::ConnectionReset).model("never-built-model"));
    let layer = ChaosLayer::new(rules).unwrap();
    let mut on_a = layer.clone().model(a).layer(InstantModel);
    let mut on_b = layer.clone().model("model-b").layer(InstantModel);
    assert!(injected(&mut on_a));
    assert!(!injected(&mut on_b));
    assert_eq!(
        layer.handle().stats(),
        [
            RuleStats {
                matched: 1,
                injected: 1
            },
            RuleStats::default()
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_handle_switches_and_replaces_rules_at_runtime() {
    let layer = ChaosLayer::new(rule(Schedule::Always)).unwrap().model("m");
    let handle = layer.handle();
    let mut svc = layer.layer(InstantModel);
    assert!(handle.is_enabled());
    assert!(injected(&mut svc));
    handle.disable();
    assert!(!injected(&mut svc));
    assert!(!handle.rules().enabled);
    handle.enable();
    assert!(injected(&mut svc));

    // New rules: a window starting 5 s from now (the clock restarts with them).
    advance(Duration::from_secs(100)).await;
    let window = rule(Schedule::window(
        Duration::from_secs(5),
        Duration::from_secs(6),
    ));
    handle.set_rules(window.clone()).unwrap();
    assert_eq!(handle.rules(), window);
    assert!(!injected(&mut svc));
    advance(Duration::from_secs(5)).await;
    assert!(injected(&mut svc));
    assert_eq!(
        handle.stats()[0],
        RuleStats {
            matched: 2,
            injected: 1
        }
    );

    // Restart: the window is 5 s ahead again, counters at zero.
    handle.restart();
    assert_eq!(handle.stats()[0], RuleStats::default());
    assert!(!injected(&mut svc));

    // Invalid rules change nothing.
    let bad = ChaosRules::new().rule(Rule::new(Fault::status(503)).rate(1.5));
    assert_eq!(
        handle.set_rules(bad),
        Err(ChaosError {
            rule: 0,
            field: "rate",
            problem: "1.5 is not within 0..=1".into()
        })
    );
    assert_eq!(handle.rules(), window);

    // Rules that switch off.
    handle
        .set_rules(rule(Schedule::Always).enabled(false))
        .unwrap();
    assert!(!handle.is_enabled());
    assert!(!injected(&mut svc));
}

#[test]
fn invalid_rules_are_named_by_index_and_field() {
    let s = Duration::from_secs;
    let cases = [
        (Rule::new(Fault::status(200)), "status"),
        (Rule::new(Fault::status(503)).rate(f64::NAN), "rate"),
        (Rule::new(Fault::status(503)).rate(-0.1), "rate"),
        (
            Rule::new(Fault::status(503)).schedule(Schedule::window(s(5), s(5))),
            "to",
        ),
        (
            Rule::new(Fault::status(503)).schedule(Schedule::flapping(s(0), 0.5)),
            "period",
        ),
        (
            Rule::new(Fault::status(503)).schedule(Schedule::flapping(s(1), 1.5)),
            "duty",
        ),
        (
            Rule::new(Fault::status(503)).schedule(Schedule::ramp(s(1), s(0))),
            "over",
        ),
        (
            Rule::new(Fault::Latency(Latency::Uniform {
                min: s(2),
                max: s(1),
            })),
            "min",
        ),
        (
            Rule::new(Fault::Latency(Latency::LogNormal {
                median: s(1),
                sigma: -1.0,
            })),
            "sigma",
        ),
        (
            Rule::new(Fault::Latency(Latency::Pareto {
                scale: s(1),
                shape: 0.0,
            })),
            "shape",
        ),
        (
            Rule::new(Fault::Timeout {
                after: s(400 * 24 * 3600),
            }),
            "after",
        ),
    ];
    for (bad, field) in cases {
        let rules = ChaosRules::new().rule(Rule::new(Fault::Hang)).rule(bad);
        let error = ChaosLayer::new(rules).unwrap_err();
        assert_eq!((error.rule, error.field), (1, field), "{error}");
    }
}

#[test]
fn rules_round_trip_through_json_as_the_admin_api_shows_them() {
    let s = Duration::from_secs;
    let rules = ChaosRules::new()
        .seed(42)
        .rule(
            Rule::new(Fault::rate_limited(Some(s(3))))
                .model("gpt-4o")
                .rate(0.02),
        )
        .rule(Rule::new(Fault::Timeout { after: MS * 1500 }).schedule(Schedule::fail_first(2)))
        .rule(
            Rule::new(Fault::Stream(StreamFault::Cut { after: 3 }))
                .schedule(Schedule::flapping(s(60), 0.25)),
        )
        .rule(
            Rule::new(Fault::Latency(Latency::LogNormal {
                median: MS * 80,
                sigma: 0.5,
            }))
            .schedule(Schedule::ramp(s(10), s(50))),
        )
        .rule(Rule::new(Fault::WrongModel {
            answered: "gpt-3.5".into(),
        }));
    let json = serde_json::to_value(&rules).unwrap();
    assert_eq!(
        json["rules"][0],
        serde_json::json!({"model": "gpt-4o", "fault": {"kind": "status", "status": 429, "retry_after_ms": 3000.0}, "rate": 0.02, "schedule": {"type": "always"}})
    );
    assert_eq!(
        json["rules"][2]["fault"],
        serde_json::json!({"kind": "stream", "stream": "cut", "after": 3})
    );
    assert_eq!(
        json["rules"][3]["fault"],
        serde_json::json!({"kind": "latency", "distribution": "log_normal", "median_ms": 80.0, "sigma": 0.5})
    );
    assert_eq!(serde_json::from_value::<ChaosRules>(json).unwrap(), rules);
    // What an operator writes: rate and schedule default to 1 and always.
    let typed: ChaosRules =
        serde_json::from_str(r#"{"rules": [{"fault": {"kind": "timeout", "after_ms": 0.5}}]}"#)
            .unwrap();
    assert_eq!(
        typed,
        ChaosRules::new().rule(Rule::new(Fault::Timeout {
            after: Duration::from_micros(500)
        }))
    );
    assert!(serde_json::from_str::<ChaosRules>(r#"{"rules": [], "sede": 1}"#).is_err());
}

#[tokio::test(start_paused = true)]
async fn injected_errors_classify_as_the_failure_they_stand_for() {
    let s = Duration::from_secs;
    let cases = [
        (
            Fault::rate_limited(Some(s(3))),
            Outcome::Failure {
                class: FailureClass::RateLimited,
                retry_after: Some(s(3)),
            },
        ),
        (
            Fault::status(502),
            Outcome::failure(FailureClass::Unavailable),
        ),
        (
            Fault::status(529),
            Outcome::failure(FailureClass::Overloaded),
        ),
        (
            Fault::ConnectionReset,
            Outcome::failure(FailureClass::Connect),
        ),
        (
            Fault::WrongModel {
                answered: "x".into(),
            },
            Outcome::failure(FailureClass::IdentityMismatch),
        ),
        (
            Fault::ContextLengthExceeded,
            Outcome::ClientError(ClientErrorClass::ContextLengthExceeded),
        ),
        (
            Fault::ContentPolicy,
            Outcome::ClientError(ClientErrorClass::ContentPolicy),
        ),
    ];
    for (fault, outcome) in cases {
        let mut svc = service(ChaosRules::new().rule(Rule::new(fault.clone())));
        let error = svc.ready().await.unwrap().call(1).await.unwrap_err();
        let injected = error.downcast_ref::<InjectedError>().unwrap();
        assert_eq!(injected.outcome(), outcome, "{fault:?}");
        assert_eq!(injected.model(), "m");
    }
    // By hive-core's default classifier too, where a standard cause says the class.
    let mut reset = service(ChaosRules::new().rule(Rule::new(Fault::ConnectionReset)));
    let error = reset.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(
        classify_error(&*error),
        Outcome::failure(FailureClass::Connect)
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_waits_its_time_and_a_hang_waits_for_the_timeout_outside() {
    let s = Duration::from_secs;
    let start = Instant::now();
    let mut svc = service(ChaosRules::new().rule(Rule::new(Fault::Timeout { after: s(7) })));
    let error = svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(start.elapsed(), s(7));
    assert_eq!(
        classify_error(&*error),
        Outcome::failure(FailureClass::Timeout)
    );

    let start = Instant::now();
    let hang = tower::timeout::TimeoutLayer::new(s(30))
        .layer(service(ChaosRules::new().rule(Rule::new(Fault::Hang))));
    let error = hang.oneshot(1).await.unwrap_err();
    assert_eq!(start.elapsed(), s(30));
    assert!(error.is::<tower::timeout::error::Elapsed>());
}

#[tokio::test(start_paused = true)]
async fn latencies_delay_the_call_and_add_up() {
    let s = Duration::from_secs;
    let mut svc = service(
        ChaosRules::new()
            .seed(11)
            .rule(Rule::new(Fault::Latency(Latency::Fixed { delay: s(2) })))
            .rule(Rule::new(Fault::Latency(Latency::Uniform {
                min: s(1),
                max: s(1),
            })))
            .rule(Rule::new(Fault::Timeout { after: s(4) }).schedule(Schedule::fail_first(1))),
    );
    // Latency first, then the timeout's own wait.
    let start = Instant::now();
    assert!(svc.ready().await.unwrap().call(1).await.is_err());
    assert_eq!(start.elapsed(), s(7));
    let start = Instant::now();
    assert_eq!(svc.ready().await.unwrap().call(1).await.unwrap(), 1);
    assert_eq!(start.elapsed(), s(3));
}

#[tokio::test(start_paused = true)]
async fn latency_distributions_are_seeded_and_have_their_shape() {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let draws = |latency: Latency, seed: u64| async move {
        let mut svc = service(
            ChaosRules::new()
                .seed(seed)
                .rule(Rule::new(Fault::Latency(latency))),
        );
        let mut out = Vec::new();
        for _ in 0..4001 {
            let start = Instant::now();
            svc.ready().await.unwrap().call(1).await.unwrap();
            out.push(start.elapsed());
        }
        out.sort();
        out
    };
    let median = |v: &[Duration]| v[v.len() / 2];
    let uniform = Latency::Uniform {
        min: MS * 100,
        max: MS * 200,
    };
    let u = draws(uniform, 1).await;
    assert_eq!(u, draws(uniform, 1).await, "seeded: the same draws");
    assert_ne!(u, draws(uniform, 2).await);
    assert!(u[0] >= MS * 100 && u[4000] <= MS * 200);
    assert!((ms(median(&u)) - 150.0).abs() < 5.0, "{:?}", median(&u));

    let log_normal = draws(
        Latency::LogNormal {
            median: MS * 80,
            sigma: 0.5,
        },
        3,
    )
    .await;
    assert!((ms(median(&log_normal)) / 80.0 - 1.0).abs() < 0.05);
    // The 84th percentile of a log-normal is median · e^sigma.
    let p84 = ms(log_normal[(4000.0 * 0.8413) as usize]);
    assert!((p84 / (80.0 * 0.5f64.exp()) - 1.0).abs() < 0.06, "{p84}");

    let pareto = draws(
        Latency::Pareto {
            scale: MS * 50,
            shape: 1.5,
        },
        4,
    )
    .await;
    assert!(pareto[0] >= MS * 50);
    // Median of a Pareto: scale · 2^(1/shape); its tail: P(X > 10·scale) = 10^-1.5.
    assert!((ms(median(&pareto)) / (50.0 * 2f64.powf(1.0 / 1.5)) - 1.0).abs() < 0.06);
    let beyond = pareto.iter().filter(|d| **d > MS * 500).count() as f64 / 4001.0;
    assert!((beyond / 10f64.powf(-1.5) - 1.0).abs() < 0.3, "{beyond}");
}

#[tokio::test(start_paused = true)]
async fn the_ready_service_is_the_one_called() {
    // tower-test's mock panics when called without readiness: a clone called in place of
    // the ready service shows at once.
    let layer = ChaosLayer::new(
        ChaosRules::new()
            .seed(2)
            .rule(Rule::new(Fault::status(503)).schedule(Schedule::fail_first(1)))
            .rule(Rule::new(Fault::Latency(Latency::Fixed { delay: MS * 10 }))),
    )
    .unwrap()
    .model("m");
    let (mut svc, mut handle) = mock::spawn_layer::<&'static str, &'static str, _>(layer);
    handle.allow(1);
    // The failure: the model is not called, its readiness is kept for the next call.
    tokio_test_ready(&mut svc).await;
    let error = svc.call("q").await.unwrap_err();
    assert!(error.is::<InjectedError>());
    // The delayed call reaches the model with the same readiness.
    tokio_test_ready(&mut svc).await;
    let call = tokio::spawn(svc.call("q"));
    assert_request_eq!(handle, "q").send_response("a");
    assert_eq!(call.await.unwrap().unwrap(), "a");
    // A clone is not ready until polled.
    handle.allow(1);
    let mut clone = svc.clone();
    tokio_test_ready(&mut clone).await;
    let call = tokio::spawn(clone.call("r"));
    assert_request_eq!(handle, "r").send_response("b");
    assert_eq!(call.await.unwrap().unwrap(), "b");
}

async fn tokio_test_ready<S: Service<&'static str>>(svc: &mut tower_test::mock::Spawn<S>)
where
    S::Error: std::fmt::Debug,
{
    assert!(matches!(svc.poll_ready(), std::task::Poll::Ready(Ok(()))));
}

#[tokio::test(start_paused = true)]
async fn switched_off_the_future_is_the_inner_one_wrapped() {
    let layer = ChaosLayer::new(rule(Schedule::Always).enabled(false)).unwrap();
    let svc = layer.layer(InstantModel);
    let fut = { svc.clone() }.call(1);
    // The pass-through state holds the inner future and nothing boxed beside it.
    assert!(
        std::mem::size_of_val(&fut) <= 64,
        "{}",
        std::mem::size_of_val(&fut)
    );
    assert_eq!(fut.await.unwrap(), 1);
}
