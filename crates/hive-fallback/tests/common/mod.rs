//! Fake models and a router fixture shared by the router tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use hive_core::{
    BoxError, ClientErrorClass, Deadline, EventReceiver, EventSink, FailureClass, Outcome,
    ResilienceEvent, classify_fn,
};
use hive_fallback::{FallbackRouter, FallbackRouterBuilder, Route};
use tokio::time::sleep;
use tower::util::BoxCloneService;

/// What a fake model answers: its outcome, after a delay.
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    pub outcome: Outcome,
    pub after_ms: u64,
}

pub fn ok(after_ms: u64) -> Behaviour {
    Behaviour {
        outcome: Outcome::Success,
        after_ms,
    }
}

pub fn fail(class: FailureClass) -> Behaviour {
    Behaviour {
        outcome: Outcome::failure(class),
        after_ms: 10,
    }
}

pub fn refuse(class: ClientErrorClass) -> Behaviour {
    Behaviour {
        outcome: Outcome::ClientError(class),
        after_ms: 10,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub model: &'static str,
    pub outcome: Outcome,
    /// The deadline the model saw, as time left when it was called.
    pub deadline_left: Option<Duration>,
}

pub type Model = BoxCloneService<&'static str, Answer, BoxError>;

pub fn model(name: &'static str, behaviour: Behaviour, calls: Arc<AtomicU32>) -> Model {
    counted_model(name, behaviour, calls, Arc::default())
}

/// A model that also counts the calls that ran to their end.
pub fn counted_model(
    name: &'static str,
    behaviour: Behaviour,
    calls: Arc<AtomicU32>,
    finished: Arc<AtomicU32>,
) -> Model {
    BoxCloneService::new(tower::service_fn(move |_: &'static str| {
        calls.fetch_add(1, Ordering::SeqCst);
        let deadline_left = Deadline::current().map(|d| d.remaining());
        let finished = finished.clone();
        async move {
            sleep(Duration::from_millis(behaviour.after_ms)).await;
            finished.fetch_add(1, Ordering::SeqCst);
            Ok(Answer {
                model: name,
                outcome: behaviour.outcome,
                deadline_left,
            })
        }
    }))
}

pub type Classifier = hive_core::ClassifyFn<fn(&Result<Answer, BoxError>) -> Outcome>;

pub fn classify(result: &Result<Answer, BoxError>) -> Outcome {
    match result {
        Ok(answer) => answer.outcome,
        Err(e) => hive_core::classify_error(&**e),
    }
}

pub struct Fixture {
    pub calls: Vec<Arc<AtomicU32>>,
    pub events: EventReceiver,
    /// Per model: whether a call ran to its end (a cancelled one did not).
    pub finished: Vec<Arc<AtomicU32>>,
}

impl Fixture {
    pub fn calls(&self) -> Vec<u32> {
        self.calls
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect()
    }

    pub fn finished(&self) -> Vec<u32> {
        self.finished
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect()
    }

    pub fn failovers(&mut self) -> Vec<(String, String, Outcome, u128)> {
        self.events
            .drain()
            .into_iter()
            .filter_map(|e| match e {
                ResilienceEvent::Failover {
                    from,
                    to,
                    reason,
                    latency,
                } => Some((
                    from.to_string(),
                    to.to_string(),
                    reason,
                    latency.as_millis(),
                )),
                _ => None,
            })
            .collect()
    }
}

pub fn build_router(
    models: &[(&'static str, Behaviour, Option<u64>)],
    configure: impl FnOnce(
        FallbackRouterBuilder<Model, Answer, Classifier>,
    ) -> FallbackRouterBuilder<Model, Answer, Classifier>,
) -> (FallbackRouter<Model, Answer, Classifier>, Fixture) {
    let (sink, events) = EventSink::channel(100);
    let mut builder = FallbackRouter::builder()
        .classifier(classify_fn(
            classify as fn(&Result<Answer, BoxError>) -> Outcome,
        ))
        .events(sink);
    let (mut calls, mut finished) = (Vec::new(), Vec::new());
    for (name, behaviour, window) in models {
        let (counter, done) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        calls.push(counter.clone());
        finished.push(done.clone());
        let mut route = Route::new(*name, counted_model(name, *behaviour, counter, done));
        if let Some(w) = window {
            route = route.context_window(*w);
        }
        builder = builder.route(route);
    }
    (
        configure(builder).build().unwrap(),
        Fixture {
            calls,
            events,
            finished,
        },
    )
}

/// The router's error, and its attempts as (model, outcome) in the order it lists them.
pub fn attempts_of(
    err: &BoxError,
) -> (&hive_fallback::FallbackError, Vec<(&'static str, Outcome)>) {
    let err = err.downcast_ref::<hive_fallback::FallbackError>().unwrap();
    let seen = err
        .attempts()
        .iter()
        .map(|a| (a.model.as_str(), a.outcome))
        .collect();
    (err, seen)
}
