//! Property test: the breaker, driven by random sequences of calls and clock advances,
//! behaves exactly like a naive reference model of the Resilience4j state machine (every
//! call kept in a `VecDeque` and the window recounted on every call), for count and time
//! windows, with the consecutive-failure trip, the half-open verdict as soon as it is
//! certain, and the maximum wait in half-open.

#![allow(clippy::unwrap_used)]

use std::{collections::VecDeque, convert::Infallible, time::Duration};

use hive_breaker::{CircuitBreakerConfig, CircuitBreakerLayer};
use hive_core::{CircuitState, FailureClass, Outcome, Rejected, classify_fn};
use proptest::prelude::*;
use tower::{Service, ServiceExt};

#[derive(Clone, Copy, Debug)]
enum Op {
    Call { fails: bool },
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<bool>().prop_map(|fails| Op::Call { fails }),
        1 => (0u64..3_000).prop_map(|ms| Op::Advance { ms }),
    ]
}

#[derive(Clone, Copy, Debug)]
struct Settings {
    /// `Some((slice_ms, slices))` for a time window; a count window of `window` otherwise.
    time: Option<(u64, u32)>,
    window: usize,
    minimum: usize,
    threshold: f64,
    open_ms: u64,
    permits: usize,
    /// Failures in a row that trip the breaker, if that rule is on.
    consecutive: Option<usize>,
    max_wait_ms: u64,
}

fn settings() -> impl Strategy<Value = Settings> {
    let time = prop_oneof![Just(None), (1u64..1_000, 1u32..6).prop_map(Some)];
    (
        time,
        1usize..8,
        1usize..8,
        1u32..=10,
        100u64..2_000,
        1usize..4,
        prop_oneof![Just(None), (1usize..6).prop_map(Some)],
        100u64..5_000,
    )
        .prop_map(
            |(time, window, minimum, tenths, open_ms, permits, consecutive, max_wait_ms)| {
                Settings {
                    time,
                    window,
                    minimum: if time.is_some() {
                        minimum
                    } else {
                        minimum.min(window)
                    },
                    threshold: f64::from(tenths) / 10.0,
                    open_ms,
                    permits,
                    consecutive,
                    max_wait_ms,
                }
            },
        )
}

/// The reference: obviously right, recounts everything.
#[derive(Debug)]
enum Reference {
    /// (time in ms, failed) of the calls since the breaker closed.
    Closed(VecDeque<(u64, bool)>),
    Open {
        until_ms: u64,
    },
    /// The probes' results, and when the trial began.
    HalfOpen {
        results: Vec<bool>,
        since_ms: u64,
    },
}

impl Reference {
    fn rate(results: &[bool]) -> f64 {
        results.iter().filter(|f| **f).count() as f64 / results.len() as f64
    }

    /// The trial's verdict once certain: `Some(true)` to open, `Some(false)` to close.
    fn verdict(s: &Settings, results: &[bool]) -> Option<bool> {
        let failed = results.iter().filter(|f| **f).count();
        let out = s.permits - results.len();
        let share = |n: usize| n as f64 / s.permits as f64;
        if share(failed) >= s.threshold {
            Some(true)
        } else if share(failed + out) < s.threshold {
            Some(false)
        } else {
            None
        }
    }

    fn open(s: &Settings, now_ms: u64) -> Self {
        Reference::Open {
            until_ms: now_ms + s.open_ms,
        }
    }

    /// Returns whether the call was admitted.
    fn call(&mut self, s: &Settings, fails: bool, now_ms: u64) -> bool {
        if let Reference::Open { until_ms } = *self {
            if now_ms < until_ms {
                return false;
            }
            *self = Reference::HalfOpen {
                results: Vec::new(),
                since_ms: now_ms,
            };
        }
        if let Reference::HalfOpen { results, since_ms } = self
            && now_ms >= *since_ms + s.max_wait_ms
        {
            // Out of time: the probes still out count as failed.
            let mut all = results.clone();
            all.resize(s.permits, true);
            if Self::rate(&all) >= s.threshold {
                *self = Self::open(s, now_ms);
                return false;
            }
            *self = Reference::Closed(VecDeque::new());
        }
        match self {
            Reference::Closed(window) => {
                window.push_back((now_ms, fails));
                let streak = window.iter().rev().take_while(|(_, f)| *f).count();
                let all = Self::live(s, window, now_ms);
                let by_rate = all.len() >= s.minimum && Self::rate(&all) >= s.threshold;
                let by_streak = s.consecutive.is_some_and(|n| streak >= n);
                if by_rate || by_streak {
                    *self = Self::open(s, now_ms);
                }
            }
            Reference::HalfOpen { results, .. } => {
                results.push(fails);
                match Self::verdict(s, results) {
                    Some(true) => *self = Self::open(s, now_ms),
                    Some(false) => *self = Reference::Closed(VecDeque::new()),
                    None => {}
                }
            }
            Reference::Open { .. } => unreachable!(),
        }
        true
    }

    /// The outcomes the window holds at `now_ms`.
    fn live(s: &Settings, window: &VecDeque<(u64, bool)>, now_ms: u64) -> Vec<bool> {
        match s.time {
            None => window
                .iter()
                .rev()
                .take(s.window)
                .rev()
                .map(|(_, f)| *f)
                .collect(),
            Some((slice_ms, slices)) => window
                .iter()
                .filter(|(t, _)| t / slice_ms + u64::from(slices) > now_ms / slice_ms)
                .map(|(_, f)| *f)
                .collect(),
        }
    }

    fn state(&self) -> CircuitState {
        match self {
            Reference::Closed(_) => CircuitState::Closed,
            Reference::Open { .. } => CircuitState::Open,
            Reference::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    fn window_calls(&self, s: &Settings, now_ms: u64) -> u64 {
        match self {
            Reference::Closed(w) => Self::live(s, w, now_ms).len() as u64,
            _ => 0,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_breaker_matches_the_reference_model(
        s in settings(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let builder = match s.time {
                None => CircuitBreakerConfig::builder().count_window(s.window as u32),
                Some((slice_ms, slices)) => CircuitBreakerConfig::builder()
                    .time_window(Duration::from_millis(slice_ms * u64::from(slices)), slices),
            };
            let (layer, handle) = CircuitBreakerLayer::shared(
                builder
                    .minimum_calls(s.minimum as u32)
                    .failure_rate_threshold(s.threshold)
                    .consecutive_failures(s.consecutive.map(|n| n as u32))
                    .open_duration(Duration::from_millis(s.open_ms))
                    .half_open_permits(s.permits as u32)
                    .max_wait_in_half_open(Duration::from_millis(s.max_wait_ms))
                    .build()
                    .unwrap(),
            );
            let layer = layer.with_classifier(classify_fn(|r: &Result<bool, Infallible>| match r {
                Ok(true) => Outcome::failure(FailureClass::Unavailable),
                _ => Outcome::Success,
            }));
            let mut svc = tower::ServiceBuilder::new()
                .layer(layer)
                .service_fn(|fails: bool| async move { Ok::<_, Infallible>(fails) });
            let mut reference = Reference::Closed(VecDeque::new());
            let mut now_ms = 0;
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Advance { ms } => {
                        tokio::time::advance(Duration::from_millis(ms)).await;
                        now_ms += ms;
                    }
                    Op::Call { fails } => {
                        let expected = reference.call(&s, fails, now_ms);
                        let result = svc.ready().await.unwrap().call(fails).await;
                        let admitted = match result {
                            Ok(_) => true,
                            Err(e) => {
                                prop_assert!(e.is::<Rejected>());
                                false
                            }
                        };
                        prop_assert_eq!(admitted, expected, "step {}: {:?}", step, op);
                    }
                }
                let m = handle.metrics();
                if !matches!(op, Op::Advance { .. }) {
                    // An open breaker past its time reads open until the next call.
                    prop_assert_eq!(m.state, reference.state(), "step {}", step);
                }
                if m.state == CircuitState::Closed {
                    prop_assert_eq!(m.calls, reference.window_calls(&s, now_ms), "step {}", step);
                }
            }
            Ok(())
        })?;
    }
}
