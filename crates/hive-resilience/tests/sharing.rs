//! Sharing a fleet's breakers with other replicas (paused time): what it tells, what it
//! applies, and that a change it applied is not told back.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use hive_core::{
    ApplyShared, BoxError, CircuitState, EventReceiver, EventSink, FailureClass, ModelId, Outcome,
    ShareState, SharedChange,
};
use hive_resilience::{ModelManager, ModelSpec, Sharing, TRIAL_GRACE};
use tower::{ServiceExt, util::BoxCloneService};

type Model = BoxCloneService<&'static str, &'static str, BoxError>;

fn down() -> Model {
    BoxCloneService::new(tower::service_fn(|_: &'static str| async {
        Err::<&'static str, BoxError>("503".into())
    }))
}

fn up() -> Model {
    BoxCloneService::new(tower::service_fn(|_: &'static str| async { Ok("backup") }))
}

/// What this replica told the others.
#[derive(Default)]
struct Told(RwLock<Vec<SharedChange>>);

impl ShareState for Told {
    fn publish(&self, change: SharedChange) {
        self.0.write().unwrap().push(change);
    }
}

impl Told {
    fn take(&self) -> Vec<SharedChange> {
        std::mem::take(&mut *self.0.write().unwrap())
    }
}

fn fleet() -> (ModelManager<Model, &'static str>, EventReceiver) {
    let (events, receiver) = EventSink::channel(256);
    let manager = ModelManager::builder()
        .events(events)
        .model(
            ModelSpec::new("primary", down())
                .retry(|r| r.max_attempts(1))
                .breaker(|b| {
                    b.consecutive_failures(Some(2))
                        .open_duration(Duration::from_secs(10))
                }),
        )
        .model(ModelSpec::new("backup", up()))
        .build()
        .unwrap();
    (manager, receiver)
}

fn feed(sharing: &Sharing, events: &mut EventReceiver) {
    for event in events.drain() {
        sharing.on_event(&event);
    }
}

#[tokio::test(start_paused = true)]
async fn an_opening_here_is_told_with_its_break_and_an_applied_one_is_not_told_back() {
    let (manager, mut events) = fleet();
    let told = Arc::new(Told::default());
    let sharing = Sharing::new(Arc::clone(&told) as Arc<dyn ShareState>);
    sharing.serve(manager.controls());
    let primary = ModelId::new("primary");
    assert_eq!(sharing.model("primary"), Some(primary));
    assert_eq!(sharing.model("unknown"), None);

    for _ in 0..2 {
        manager.service().oneshot("q").await.unwrap();
    }
    feed(&sharing, &mut events);
    assert_eq!(
        told.take(),
        [SharedChange::BreakerOpened {
            model: primary,
            open_for: Duration::from_secs(10)
        }]
    );
    assert_eq!(
        sharing.holding(),
        [SharedChange::BreakerOpened {
            model: primary,
            open_for: Duration::from_secs(10)
        }]
    );

    // Another replica's trial succeeded: closed here, and not told back.
    assert!(
        sharing
            .apply(SharedChange::BreakerClosed { model: primary })
            .is_some()
    );
    let control = manager.control("primary").unwrap();
    assert_eq!(control.breaker().state(), CircuitState::Closed);
    feed(&sharing, &mut events);
    assert_eq!(told.take(), []);

    // Another replica opened it: held the break told plus the trial grace, not told back.
    sharing.apply(SharedChange::BreakerOpened {
        model: primary,
        open_for: Duration::from_secs(5),
    });
    assert_eq!(
        control.breaker().metrics().open_remaining,
        Some(Duration::from_secs(5) + TRIAL_GRACE)
    );
    feed(&sharing, &mut events);
    assert_eq!(told.take(), []);
    // A change about a model this fleet does not serve changes nothing.
    let stranger = ModelId::new("stranger");
    assert_eq!(
        sharing.apply(SharedChange::BreakerClosed { model: stranger }),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_holds_the_model_off_here_at_once_and_is_told() {
    let (manager, mut events) = fleet();
    let told = Arc::new(Told::default());
    let sharing = Sharing::new(Arc::clone(&told) as Arc<dyn ShareState>);
    sharing.serve(manager.controls());
    let primary = ModelId::new("primary");
    let limited = Outcome::Failure {
        class: FailureClass::RateLimited,
        retry_after: Some(Duration::from_secs(30)),
    };
    sharing.on_attempt(primary, &Outcome::failure(FailureClass::RateLimited));
    sharing.on_attempt(primary, &Outcome::Success);
    assert_eq!(told.take(), [], "no wait asked: nothing to share");
    sharing.on_attempt(primary, &limited);
    let metrics = manager.control("primary").unwrap().breaker().metrics();
    assert_eq!(metrics.state, CircuitState::Open);
    assert_eq!(metrics.retry_after_remaining, Some(Duration::from_secs(30)));
    feed(&sharing, &mut events);
    assert_eq!(
        told.take(),
        [SharedChange::CoolDown {
            model: primary,
            wait: Duration::from_secs(30)
        }],
        "the wait is told once, its opening is not told again"
    );
    let routed = manager.service().oneshot("q").await.unwrap();
    assert_eq!(routed.response, "backup");
}

/// The checking replica's failed checks keep an open breaker here open until its next
/// check (and the trial grace): in a long outage, the trial stays that replica's.
#[tokio::test(start_paused = true)]
async fn a_failed_check_heard_keeps_an_open_breaker_open_until_the_next_check() {
    let (manager, _events) = fleet();
    let sharing = Sharing::new(Arc::new(Told::default()) as Arc<dyn ShareState>);
    sharing.serve(manager.controls());
    let primary = ModelId::new("primary");
    let control = manager.control("primary").unwrap();
    let checked = |ok| SharedChange::Checked {
        model: primary,
        ok,
        latency: Duration::from_millis(5),
        next: Duration::from_secs(30),
    };
    sharing.apply(checked(false));
    assert_eq!(
        control.breaker().state(),
        CircuitState::Closed,
        "a closed breaker stays so"
    );
    control.breaker().hold_open(Duration::from_secs(10), false);
    sharing.apply(checked(false));
    assert_eq!(
        control.breaker().metrics().open_remaining,
        Some(Duration::from_secs(30) + TRIAL_GRACE)
    );
    tokio::time::advance(Duration::from_secs(20)).await;
    sharing.apply(checked(true));
    assert_eq!(
        control.breaker().metrics().open_remaining,
        Some(Duration::from_secs(10) + TRIAL_GRACE),
        "a passing check holds nothing longer"
    );
}
