//! Routes over shared stacks: one breaker, health and budget per model whichever route or
//! request uses it; per-request lists; the last resort when every model is unavailable; the
//! manager's defaults (paused time).

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use hive_core::{
    BoxError, CircuitState, EventSink, FailureClass, HealthStatus, ModelId, Outcome,
    ResilienceEvent,
};
use hive_fallback::{FallbackError, Strategy};
use hive_resilience::{ManagerError, ModelManager, ModelSpec, RouteSpec};
use tokio::time::{Instant, sleep};
use tower::{ServiceExt, util::BoxCloneService};

type Model = BoxCloneService<&'static str, &'static str, BoxError>;

/// A model that answers with its name while `up`, else refuses the connection; counts calls.
fn switchable(name: &'static str, up: Arc<AtomicBool>, calls: Arc<AtomicU32>) -> Model {
    BoxCloneService::new(tower::service_fn(move |_: &'static str| {
        calls.fetch_add(1, Ordering::SeqCst);
        let up = up.load(Ordering::SeqCst);
        async move {
            sleep(Duration::from_millis(10)).await;
            if up {
                Ok(name)
            } else {
                Err::<_, BoxError>(
                    std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
                )
            }
        }
    }))
}

fn hanging() -> Model {
    BoxCloneService::new(tower::service_fn(|_: &'static str| async {
        std::future::pending::<Result<&'static str, BoxError>>().await
    }))
}

struct Fleet {
    up: Vec<Arc<AtomicBool>>,
    calls: Vec<Arc<AtomicU32>>,
}

impl Fleet {
    fn new(n: usize) -> Self {
        Self {
            up: (0..n).map(|_| Arc::new(AtomicBool::new(true))).collect(),
            calls: (0..n).map(|_| Arc::new(AtomicU32::new(0))).collect(),
        }
    }

    fn spec(&self, i: usize, name: &'static str) -> ModelSpec<Model> {
        ModelSpec::new(
            name,
            switchable(name, self.up[i].clone(), self.calls[i].clone()),
        )
        .retry(|r| r.max_attempts(1))
    }

    fn calls(&self) -> Vec<u32> {
        self.calls
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn a_model_in_two_routes_and_a_request_list_has_one_breaker() {
    let fleet = Fleet::new(3);
    let manager = ModelManager::builder()
        .model(fleet.spec(0, "gpt-4o"))
        .model(fleet.spec(1, "claude-4-sonnet"))
        .model(fleet.spec(2, "deepseek-v3.1"))
        .route(RouteSpec::new("review", ["gpt-4o", "claude-4-sonnet"]))
        .route(
            RouteSpec::new("vote", ["gpt-4o", "deepseek-v3.1"])
                .strategy(Strategy::Parallel { first: Some(1) }),
        )
        .build()
        .unwrap();
    assert_eq!(
        manager.route_names().collect::<Vec<_>>(),
        ["review", "vote"]
    );
    fleet.up[0].store(false, Ordering::SeqCst);
    // Five failures in a row through the `review` route trip gpt-4o's one breaker …
    let review = manager.route("review").unwrap();
    for _ in 0..5 {
        let routed = review.clone().oneshot("q").await.unwrap();
        assert_eq!(routed.response, "claude-4-sonnet");
    }
    let gpt = manager.control("gpt-4o").unwrap();
    assert_eq!(gpt.breaker().state(), CircuitState::Open);
    // … which every other view of the model sees: the `vote` route, the default route and a
    // request's own list skip it without a call.
    let vote = manager.route("vote").unwrap().oneshot("q").await.unwrap();
    assert_eq!(vote.response, "deepseek-v3.1");
    let default = manager.service().oneshot("q").await.unwrap();
    assert_eq!(default.response, "claude-4-sonnet");
    let own = manager
        .router_for(["gpt-4o", "deepseek-v3.1"])
        .unwrap()
        .oneshot("q")
        .await
        .unwrap();
    assert_eq!((own.response, own.attempts), ("deepseek-v3.1", 1));
    assert_eq!(fleet.calls(), [5, 6, 2], "gpt-4o was called 5 times in all");
    assert_eq!(manager.availability().requests, 8, "every route counts");
}

#[tokio::test(start_paused = true)]
async fn a_request_naming_an_unknown_model_is_refused_without_interning_it() {
    let fleet = Fleet::new(1);
    let manager: ModelManager<Model, &'static str> = ModelManager::builder()
        .model(fleet.spec(0, "gpt-4o"))
        .build()
        .unwrap();
    let name = "made-up-model-from-a-request-9c1e";
    match manager.router_for(["gpt-4o", name]) {
        Err(ManagerError::UnknownModel(unknown)) => assert_eq!(unknown, name),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(ModelId::lookup(name), None, "the name was not interned");
    let long = "x".repeat(10_000);
    let Err(ManagerError::UnknownModel(unknown)) = manager.router_for([long.as_str()]) else {
        panic!("expected an unknown model");
    };
    assert_eq!(unknown.len(), 64, "a long name is cut short in the error");
    let err = ModelManager::builder()
        .model(fleet.spec(0, "gpt-4o"))
        .route(RouteSpec::new("r", ["gpt-5-nonexistent"]))
        .build::<&'static str>()
        .unwrap_err();
    assert!(err.to_string().contains("route `r`"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn starting_a_manager_twice_is_an_error() {
    let fleet = Fleet::new(1);
    let mut manager: ModelManager<Model, &'static str> = ModelManager::builder()
        .model(fleet.spec(0, "gpt-4o"))
        .build()
        .unwrap();
    let running = manager.start().unwrap();
    assert!(matches!(manager.start(), Err(ManagerError::AlreadyStarted)));
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn after_a_blip_that_opened_every_breaker_one_probe_goes_to_the_soonest_back() {
    let fleet = Fleet::new(2);
    let (sink, mut events) = EventSink::channel(1_000);
    let manager = ModelManager::builder()
        .events(sink)
        .model(
            fleet
                .spec(0, "gpt-4o")
                .breaker(|b| b.open_duration(Duration::from_secs(60))),
        )
        .model(
            fleet
                .spec(1, "claude-4-sonnet")
                .breaker(|b| b.open_duration(Duration::from_secs(20))),
        )
        .build()
        .unwrap();
    // A network blip: both models fail five times in a row and their breakers open.
    for up in &fleet.up {
        up.store(false, Ordering::SeqCst);
    }
    for _ in 0..5 {
        assert!(manager.service().oneshot("q").await.is_err());
    }
    let open = |m: &str| manager.control(m).unwrap().breaker().state() == CircuitState::Open;
    assert!(open("gpt-4o") && open("claude-4-sonnet"));
    for up in &fleet.up {
        up.store(true, Ordering::SeqCst);
    }
    events.drain();
    // The blip is over. Without a last resort every request would fail for 20 s; instead
    // one probe goes to the model whose break ends first, and it answers.
    let routed = manager.service().oneshot("q").await.unwrap();
    assert_eq!(routed.response, "claude-4-sonnet");
    let last_resorts: Vec<_> = events
        .drain()
        .into_iter()
        .filter_map(|e| match e {
            ResilienceEvent::LastResort { model, break_left } => Some((model, break_left)),
            _ => None,
        })
        .collect();
    assert_eq!(
        last_resorts,
        [(ModelId::new("claude-4-sonnet"), Duration::from_secs(20))]
    );
    assert_eq!(
        manager
            .control("claude-4-sonnet")
            .unwrap()
            .breaker()
            .state(),
        CircuitState::Closed
    );
    assert_eq!(fleet.calls(), [5, 6]);
}

#[tokio::test(start_paused = true)]
async fn while_every_model_is_down_the_last_resort_probes_once_per_interval() {
    let fleet = Fleet::new(2);
    let manager = ModelManager::builder()
        .model(fleet.spec(0, "a"))
        .model(fleet.spec(1, "b"))
        .build()
        .unwrap();
    for up in &fleet.up {
        up.store(false, Ordering::SeqCst);
    }
    for _ in 0..5 {
        let _ = manager.service().oneshot("q").await;
    }
    assert_eq!(fleet.calls(), [5, 5]);
    // Ten requests a second for three seconds, everything still down: one last-resort
    // attempt per second reaches a model (the one whose break ends first), not one per
    // request, whichever router the requests use.
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(3) {
        let router = if n % 2 == 0 {
            manager.service()
        } else {
            manager.router_for(["b", "a"]).unwrap()
        };
        let _ = router.oneshot("q").await;
        sleep(Duration::from_millis(100)).await;
        n += 1;
    }
    let probes: u32 = fleet.calls().iter().sum::<u32>() - 10;
    assert!(
        (3..=4).contains(&probes),
        "{probes} last-resort probes in 3 s"
    );
}

#[tokio::test(start_paused = true)]
async fn the_default_request_deadline_is_two_minutes() {
    let manager = ModelManager::builder()
        .model(ModelSpec::new("a", hanging()))
        .model(ModelSpec::new("b", hanging()))
        .model(ModelSpec::new("c", hanging()))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = manager.service().oneshot("q").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(120));
    let err = err.downcast_ref::<FallbackError>().unwrap();
    assert!(matches!(err, FallbackError::DeadlineExceeded { .. }));
    // Each attempt timed out after 60 s and was not retried on the same model (a silent
    // model is not asked again); no time was left for the third model.
    let seen: Vec<(&str, Outcome)> = err
        .attempts()
        .iter()
        .map(|a| (a.model.as_str(), a.outcome))
        .collect();
    let timeout = Outcome::failure(FailureClass::Timeout);
    assert_eq!(seen, [("a", timeout), ("b", timeout)]);
}

/// Rate-limited answers carry a 600 s `Retry-After`.
fn classify_limited(result: &Result<&'static str, BoxError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(e) if e.to_string() == "429" => Outcome::Failure {
            class: FailureClass::RateLimited,
            retry_after: Some(Duration::from_secs(600)),
        },
        Err(e) => hive_core::classify_error(&**e),
    }
}

#[tokio::test(start_paused = true)]
async fn a_passing_check_half_opens_a_break_a_retry_after_stretched() {
    let limited = Arc::new(AtomicBool::new(true));
    let model = {
        let limited = limited.clone();
        BoxCloneService::new(tower::service_fn(move |_: &'static str| {
            let limited = limited.load(Ordering::SeqCst);
            async move {
                if limited {
                    Err::<&'static str, BoxError>("429".into())
                } else {
                    Ok("primary")
                }
            }
        }))
    };
    let probe = {
        let limited = limited.clone();
        tower::service_fn(move |_: hive_health::ProbeRequest| {
            let limited = limited.load(Ordering::SeqCst);
            async move {
                if limited {
                    Err::<(), BoxError>("429".into())
                } else {
                    Ok(())
                }
            }
        })
    };
    let fleet = Fleet::new(1);
    let mut manager = ModelManager::builder()
        .classifier(hive_core::classify_fn(
            classify_limited as fn(&Result<&'static str, BoxError>) -> Outcome,
        ))
        .checks(
            hive_health::CheckerConfig::default()
                .interval(Duration::from_secs(2))
                .fast_interval(Duration::from_millis(500))
                .jitter(0.0),
        )
        .model(
            ModelSpec::new("primary", model)
                .retry(|r| r.max_attempts(1))
                .breaker(|b| b.count_window(1).minimum_calls(1))
                .slow_start(Duration::ZERO)
                .probe(probe),
        )
        .model(fleet.spec(0, "backup"))
        .build()
        .unwrap();
    let running = manager.start().unwrap();
    let first = manager.service().oneshot("q").await.unwrap();
    assert_eq!(first.response, "backup");
    let breaker = manager.control("primary").unwrap().breaker().metrics();
    assert_eq!(breaker.state, CircuitState::Open);
    assert_eq!(
        breaker.retry_after_remaining,
        Some(Duration::from_millis(299_990)),
        "the hint, up to its 5-minute cap (10 ms ago)"
    );
    sleep(Duration::from_secs(10)).await;
    limited.store(false, Ordering::SeqCst);
    // The checks see the model back within a few seconds; recovery half-opens the breaker
    // although the provider's Retry-After still runs, as for any other cause.
    sleep(Duration::from_secs(5)).await;
    let state = manager.control("primary").unwrap().breaker().state();
    assert_eq!(state, CircuitState::HalfOpen);
    let routed = manager.service().oneshot("q").await.unwrap();
    assert_eq!(routed.response, "primary");
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_reload_keeps_the_state_of_the_models_it_keeps() {
    let fleet = Fleet::new(2);
    let old = ModelManager::builder()
        .model(fleet.spec(0, "kept"))
        .model(fleet.spec(1, "replaced"))
        .build::<&'static str>()
        .unwrap();
    fleet.up[0].store(false, Ordering::SeqCst);
    for _ in 0..5 {
        let _ = old.service().oneshot("q").await;
    }
    assert_eq!(
        old.control("kept").unwrap().breaker().state(),
        CircuitState::Open
    );
    old.control("replaced").unwrap().drain();
    // The new manager keeps `kept` (its open breaker with it) and builds `replaced` anew.
    let new = ModelManager::builder()
        .model(fleet.spec(0, "kept"))
        .model(fleet.spec(1, "replaced"))
        .reusing(&old, |model| model == "kept")
        .build::<&'static str>()
        .unwrap();
    assert_eq!(
        new.control("kept").unwrap().breaker().state(),
        CircuitState::Open
    );
    assert!(
        !new.control("replaced").unwrap().is_drained(),
        "a new stack"
    );
    let routed = new.service().oneshot("q").await.unwrap();
    assert_eq!((routed.response, routed.attempts), ("replaced", 1));
    assert_eq!(
        fleet.calls(),
        [5, 6],
        "the kept model was skipped: still broken"
    );
}

#[tokio::test(start_paused = true)]
async fn a_model_added_while_serving_gets_a_stack_of_its_own() {
    let fleet = Fleet::new(2);
    let manager = ModelManager::builder()
        .model(fleet.spec(0, "configured"))
        .build::<&'static str>()
        .unwrap();
    assert!(manager.router_for(["openai/gpt-4o-mini"]).is_err());
    let control = manager
        .add_model(fleet.spec(1, "openai/gpt-4o-mini"))
        .unwrap();
    assert_eq!(control.model().as_str(), "openai/gpt-4o-mini");
    let routed = manager
        .router_for(["openai/gpt-4o-mini", "configured"])
        .unwrap()
        .oneshot("q")
        .await
        .unwrap();
    assert_eq!(routed.response, "openai/gpt-4o-mini");
    let again = manager
        .add_model(fleet.spec(1, "openai/gpt-4o-mini"))
        .unwrap();
    assert_eq!(again.model(), control.model());
    assert_eq!(manager.controls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_kept_model_takes_its_new_weight() {
    let fleet = Fleet::new(2);
    let weighted = || Strategy::Weighted {
        random: hive_core::SharedRandom::new(Some(9)),
    };
    let old = ModelManager::builder()
        .strategy(weighted())
        .model(fleet.spec(0, "light"))
        .model(fleet.spec(1, "heavy"))
        .build::<&'static str>()
        .unwrap();
    let new = ModelManager::builder()
        .strategy(weighted())
        .model(fleet.spec(0, "light").weight(0.001))
        .model(fleet.spec(1, "heavy"))
        .reusing(&old, |_| true)
        .build::<&'static str>()
        .unwrap();
    for _ in 0..200 {
        new.service().oneshot("q").await.unwrap();
    }
    let [light, heavy] = fleet.calls()[..] else {
        panic!()
    };
    assert!(light <= 2 && heavy >= 198, "light {light}, heavy {heavy}");
}

#[tokio::test]
async fn a_rebuilt_models_new_breaker_is_followed_from_its_first_transition() {
    let fleet = Fleet::new(1);
    let old = ModelManager::builder()
        .model(fleet.spec(0, "m"))
        .build::<&'static str>()
        .unwrap();
    let control = old.control("m").unwrap();
    // The old breaker goes through four generations.
    for _ in 0..2 {
        control.force_open();
        control.force_close();
    }
    assert_eq!(control.health().status(), HealthStatus::Unknown);
    // A reload rebuilds the model: a new breaker, whose first transition is generation 1.
    let new = ModelManager::builder()
        .model(fleet.spec(0, "m"))
        .reusing(&old, |_| false)
        .build::<&'static str>()
        .unwrap();
    let control = new.control("m").unwrap();
    control.force_open();
    assert_eq!(
        control.health().status(),
        HealthStatus::Degraded,
        "the registry applied the new breaker's opening"
    );
    control.force_close();
    assert_eq!(control.health().status(), HealthStatus::Unknown);
}
