//! The router's response future: a state machine over the routes, under one deadline.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use hive_core::{
    BoxError, Classified, Classify, Deadline, FailureClass, ModelId, Outcome, RejectReason,
    ResilienceEvent, Scoped,
};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::{
    FailedAttempt, FallbackError, Routed, Strategy, policy::Decision, race::Race, router::Shared,
};

/// Stands in for "no deadline" in the scope given to attempts.
const FAR: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

pin_project! {
    /// The response future of [`FallbackRouter`](crate::FallbackRouter).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, Req, Res, C>
    where
        S: Service<Req>,
    {
        #[pin]
        inner: Inner<S, Req, Res, C>,
    }
}

pin_project! {
    #[project = InnerProj]
    enum Inner<S, Req, Res, C>
    where
        S: Service<Req>,
    {
        Sequential { #[pin] future: Sequential<S, Req, Res, C> },
        Race { #[pin] future: Race<S, Req, Res, C> },
    }
}

impl<S, Req, Res, C> ResponseFuture<S, Req, Res, C>
where
    S: Service<Req>,
{
    pub(crate) fn new(shared: Arc<Shared<S, Res>>, classifier: C, request: Req) -> Self {
        let inner = match &shared.strategy {
            Strategy::Sequential => Inner::Sequential {
                future: Sequential::new(shared, classifier, request, None),
            },
            Strategy::Weighted { random } => {
                let first = shared.weighted_first(random);
                Inner::Sequential {
                    future: Sequential::new(shared, classifier, request, first),
                }
            }
            Strategy::Parallel { .. } | Strategy::Hedged { .. } => Inner::Race {
                future: Race::new(shared, classifier, request),
            },
        };
        Self { inner }
    }
}

impl<S, Req, Res, C> Future for ResponseFuture<S, Req, Res, C>
where
    S: Service<Req, Response = Res> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Res, S::Error>,
    Req: Clone,
{
    type Output = Result<Routed<Res>, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.project() {
            InnerProj::Sequential { future } => future.poll(cx),
            InnerProj::Race { future } => future.poll(cx),
        }
    }
}

impl<S, Req, Res, C> fmt::Debug for ResponseFuture<S, Req, Res, C>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Sequential { future } => future.fmt(f),
            Inner::Race { future } => future.fmt(f),
        }
    }
}

pin_project! {
    /// One model at a time, in priority order (or a weighted first pick, then priority).
    pub(crate) struct Sequential<S, Req, Res, C>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, S::Future>,
        #[pin]
        timer: Sleep,
        shared: Arc<Shared<S, Res>>,
        classifier: C,
        request: Req,
        deadline: Option<Deadline>,
        // The weighted first pick; then the others in priority order.
        first: Option<usize>,
        next: usize,
        current: usize,
        attempts: u32,
        started: Instant,
        min_context: Option<u64>,
        // The model left last, for the failover event to the next one.
        leaving: Option<(ModelId, Outcome, Duration)>,
        failed: Vec<FailedAttempt>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, F> {
        Pick,
        Readying { service: S },
        Calling { #[pin] future: Scoped<F> },
        Done,
    }
}

/// The request's deadline: the router's timeout or an outer deadline, the sooner.
pub(crate) fn request_deadline<S, Res>(shared: &Shared<S, Res>) -> Option<Deadline> {
    let own = shared.timeout.map(Deadline::after);
    match (own, Deadline::current()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A timer for the deadline (never polled without one).
pub(crate) fn deadline_timer(deadline: Option<Deadline>) -> Sleep {
    tokio::time::sleep_until(deadline.map_or_else(|| Instant::now() + FAR, |d| d.instant()))
}

/// The scope an attempt runs under: the deadline, or none in practice.
pub(crate) fn attempt_scope(deadline: Option<Deadline>) -> Deadline {
    deadline.unwrap_or_else(|| Deadline::at(Instant::now() + FAR))
}

impl<S, Req, Res, C> Sequential<S, Req, Res, C>
where
    S: Service<Req>,
{
    fn new(shared: Arc<Shared<S, Res>>, classifier: C, request: Req, first: Option<usize>) -> Self {
        let deadline = request_deadline(&shared);
        let now = Instant::now();
        let timer = deadline_timer(deadline);
        Self {
            state: State::Pick,
            timer,
            shared,
            classifier,
            request,
            deadline,
            first,
            next: 0,
            current: 0,
            attempts: 0,
            started: now,
            min_context: None,
            leaving: None,
            failed: Vec::new(),
        }
    }
}

impl<S, Req, Res, C> Future for Sequential<S, Req, Res, C>
where
    S: Service<Req, Response = Res> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Res, S::Error>,
    Req: Clone,
{
    type Output = Result<Routed<Res>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let shared = Arc::clone(this.shared);
        if this.deadline.is_some() && this.timer.as_mut().poll(cx).is_ready() {
            if let StateProj::Calling { .. } = this.state.as_mut().project() {
                this.failed.push(FailedAttempt {
                    model: shared.routes[*this.current].model,
                    outcome: Outcome::failure(FailureClass::Timeout),
                    error: None,
                });
            }
            this.state.set(State::Done);
            return Poll::Ready(finish(
                &shared,
                *this.attempts,
                this.failed,
                Ending::Deadline,
            ));
        }
        loop {
            match this.state.as_mut().project() {
                StateProj::Pick => {
                    let order = Order { first: *this.first };
                    let Some(index) = pick(
                        &shared,
                        order,
                        this.next,
                        *this.min_context,
                        this.leaving,
                        this.failed,
                    ) else {
                        this.state.set(State::Done);
                        return Poll::Ready(finish(
                            &shared,
                            *this.attempts,
                            this.failed,
                            Ending::Exhausted,
                        ));
                    };
                    let route = &shared.routes[index];
                    if let Some(deadline) = this.deadline {
                        if deadline.remaining() <= route.min_attempt_time {
                            this.state.set(State::Done);
                            return Poll::Ready(finish(
                                &shared,
                                *this.attempts,
                                this.failed,
                                Ending::Deadline,
                            ));
                        }
                    }
                    if let Some((from, reason, latency)) = this.leaving.take() {
                        failover(&shared, from, route.model, reason, latency);
                    }
                    *this.current = index;
                    this.state.set(State::Readying {
                        service: route.service.clone(),
                    });
                }
                StateProj::Readying { service } => match service.poll_ready(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(error)) => {
                        let model = shared.routes[*this.current].model;
                        let error: BoxError = error.into();
                        let outcome = hive_core::classify_error(&*error);
                        *this.leaving = Some((model, outcome, Duration::ZERO));
                        this.failed.push(FailedAttempt {
                            model,
                            outcome,
                            error: Some(error),
                        });
                        this.state.set(State::Pick);
                    }
                    Poll::Ready(Ok(())) => {
                        *this.attempts += 1;
                        *this.started = Instant::now();
                        let scope = attempt_scope(*this.deadline);
                        let request = this.request.clone();
                        let future = scope.sync_scope(|| service.call(request));
                        this.state.set(State::Calling {
                            future: scope.scoped(future),
                        });
                    }
                },
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    let latency = this.started.elapsed();
                    let route = &shared.routes[*this.current];
                    let outcome = match this.classifier.classify(&result) {
                        Classified::Now(outcome) => outcome,
                        // A streamed answer has begun: it is the answer.
                        Classified::AtEndOfStream => Outcome::Success,
                    };
                    if shared.track_stats {
                        route.stats.record(outcome == Outcome::Success, latency);
                    }
                    let order = Order { first: *this.first };
                    let decision = decide(
                        &shared,
                        &outcome,
                        *this.current,
                        order.remaining(&shared, *this.next),
                        this.min_context,
                    );
                    let routed = |response| Routed {
                        response,
                        model: Some(route.model),
                        attempts: *this.attempts,
                        degraded: false,
                    };
                    match decision {
                        Decision::Answer => {
                            this.state.set(State::Done);
                            let response = result.map_err(Into::into)?;
                            if let Some(keep) = &shared.on_answer {
                                keep(&response);
                            }
                            return Poll::Ready(Ok(routed(response)));
                        }
                        Decision::Return => {
                            this.state.set(State::Done);
                            return Poll::Ready(result.map(routed).map_err(Into::into));
                        }
                        Decision::Fallback | Decision::LargerContext => {
                            *this.leaving = Some((route.model, outcome, latency));
                            this.failed.push(FailedAttempt {
                                model: route.model,
                                outcome,
                                error: result.err().map(Into::into),
                            });
                            this.state.set(State::Pick);
                        }
                    }
                }
                StateProj::Done => {
                    return Poll::Ready(Err(
                        "fallback router future polled after completion".into()
                    ));
                }
            }
        }
    }
}

/// The order routes are tried in: priority order, or a weighted first pick and then the
/// others in priority order. Positions run from 0 to the number of routes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Order {
    pub(crate) first: Option<usize>,
}

impl Order {
    /// The route at `position`.
    fn route_at(self, position: usize) -> usize {
        match self.first {
            Some(first) if position == 0 => first,
            Some(first) if position <= first => position - 1,
            _ => position,
        }
    }

    /// The routes from `position` on.
    pub(crate) fn remaining<S, Res>(
        self,
        shared: &Shared<S, Res>,
        position: usize,
    ) -> impl Iterator<Item = usize> {
        (position..shared.routes.len()).map(move |p| self.route_at(p))
    }
}

/// What to do with an attempt's outcome; for a context-length failure, whether a larger model
/// remains among `remaining` (then `min_context` is set, else the refusal is returned).
pub(crate) fn decide<S, Res>(
    shared: &Shared<S, Res>,
    outcome: &Outcome,
    current: usize,
    mut remaining: impl Iterator<Item = usize>,
    min_context: &mut Option<u64>,
) -> Decision {
    let decision = shared.policy.decide(outcome);
    if decision != Decision::LargerContext {
        return decision;
    }
    let here = shared.routes[current].context_window.unwrap_or(0);
    if remaining.any(|i| shared.routes[i].context_window.is_some_and(|w| w > here)) {
        *min_context = Some(here);
        Decision::LargerContext
    } else {
        Decision::Return
    }
}

/// The next route to try from position `next` on, skipping (and recording) unavailable ones
/// and, after a context-length failure, those not larger than `min_context`.
pub(crate) fn pick<S, Res>(
    shared: &Shared<S, Res>,
    order: Order,
    next: &mut usize,
    min_context: Option<u64>,
    leaving: &mut Option<(ModelId, Outcome, Duration)>,
    failed: &mut Vec<FailedAttempt>,
) -> Option<usize> {
    while *next < shared.routes.len() {
        let index = order.route_at(*next);
        let route = &shared.routes[index];
        *next += 1;
        if let Some(min) = min_context {
            if route.context_window.is_none_or(|w| w <= min) {
                continue;
            }
        }
        if route.is_available() {
            return Some(index);
        }
        let skipped = Outcome::Rejected(RejectReason::Unavailable);
        if let Some((from, reason, latency)) = leaving.take() {
            failover(shared, from, route.model, reason, latency);
        }
        *leaving = Some((route.model, skipped, Duration::ZERO));
        failed.push(FailedAttempt {
            model: route.model,
            outcome: skipped,
            error: None,
        });
    }
    None
}

pub(crate) fn failover<S, Res>(
    shared: &Shared<S, Res>,
    from: ModelId,
    to: ModelId,
    reason: Outcome,
    latency: Duration,
) {
    tracing::debug!(%from, %to, ?reason, ?latency, "failover");
    shared.events.emit(|| ResilienceEvent::Failover {
        from,
        to,
        reason,
        latency,
    });
}

pub(crate) enum Ending {
    Exhausted,
    Deadline,
}

/// No model answered: the degraded answer if there is one, else the typed error.
pub(crate) fn finish<S, Res>(
    shared: &Shared<S, Res>,
    attempts: u32,
    failed: &mut Vec<FailedAttempt>,
    ending: Ending,
) -> Result<Routed<Res>, BoxError> {
    if let Some(response) = shared.degraded.as_ref().and_then(|answer| answer()) {
        return Ok(Routed {
            response,
            model: None,
            attempts,
            degraded: true,
        });
    }
    let attempts = std::mem::take(failed);
    Err(Box::new(match ending {
        Ending::Exhausted => FallbackError::Exhausted { attempts },
        Ending::Deadline => FallbackError::DeadlineExceeded { attempts },
    }))
}

impl<S, Req, Res, C> fmt::Debug for Sequential<S, Req, Res, C>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sequential")
            .field("attempts", &self.attempts)
            .field("deadline", &self.deadline)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
