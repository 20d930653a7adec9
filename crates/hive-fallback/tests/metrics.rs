//! The router's metrics, read back from a Prometheus recorder local to the test: requests by
//! result, hedges fired and won, failovers by reason, attempt durations (paused time).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use hive_core::FailureClass;
use hive_fallback::{HedgeDelay, Strategy};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use tower::ServiceExt;

/// The value of the line that starts with `series` (labels as rendered, sorted by name).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
        .parse()
        .unwrap()
}

fn recorder() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets(&[0.01, 0.025, 0.1, 1.0])
        .unwrap()
        .build_recorder()
}

#[tokio::test(start_paused = true)]
async fn a_hedge_that_wins_is_counted_fired_and_won() {
    let recorder = recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (router, _) = build_router(&[("slow", ok(100), None), ("fast", ok(10), None)], |b| {
        b.name("vote").metrics(true).strategy(Strategy::Hedged {
            delay: HedgeDelay::Fixed(Duration::from_millis(20)),
            max_hedges: 1,
            budget: None,
        })
    });
    let routed = router.oneshot("q").await.unwrap();
    assert_eq!(routed.model.unwrap().as_str(), "fast");
    let text = recorder.handle().render();
    assert_eq!(
        value(&text, r#"hive_hedges_total{route="vote",result="fired"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"hive_hedges_total{route="vote",result="won"}"#),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"hive_requests_total{route="vote",result="answered"}"#
        ),
        1.0
    );
    // The request took 30 ms: the hedge started at 20 ms and answered 10 ms later.
    assert_eq!(
        value(&text, r#"hive_request_duration_seconds_sum{route="vote"}"#),
        0.03
    );
    // The slow model's attempt was cancelled, so only the hedge's attempt was timed.
    assert_eq!(
        value(
            &text,
            r#"hive_attempt_duration_seconds_count{model="fast"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"hive_attempt_duration_seconds_count{model="slow"}"#
        ),
        0.0
    );
}

#[tokio::test(start_paused = true)]
async fn failovers_and_degraded_answers_are_counted_by_reason() {
    let recorder = recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (router, _) = build_router(
        &[
            ("a", fail(FailureClass::RateLimited), None),
            ("b", fail(FailureClass::Timeout), None),
        ],
        |b| {
            b.name("review").metrics(true).degraded_static(Answer {
                model: "static",
                outcome: hive_core::Outcome::Success,
                deadline_left: None,
            })
        },
    );
    let routed = router.oneshot("q").await.unwrap();
    assert!(routed.degraded);
    let text = recorder.handle().render();
    assert_eq!(
        value(
            &text,
            r#"hive_failovers_total{from="a",to="b",reason="rate_limited"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"hive_requests_total{route="review",result="degraded"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"hive_requests_total{route="review",result="failed"}"#
        ),
        0.0
    );
    assert_eq!(
        value(&text, r#"hive_attempt_duration_seconds_count{model="b"}"#),
        1.0
    );
}
