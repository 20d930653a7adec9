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

use crate::{FailedAttempt, FallbackError, Routed, policy::Decision, router::Shared};

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
        state: State<S, S::Future>,
        #[pin]
        timer: Sleep,
        shared: Arc<Shared<S, Res>>,
        classifier: C,
        request: Req,
        deadline: Option<Deadline>,
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

impl<S, Req, Res, C> ResponseFuture<S, Req, Res, C>
where
    S: Service<Req>,
{
    pub(crate) fn new(shared: Arc<Shared<S, Res>>, classifier: C, request: Req) -> Self {
        let own = shared.timeout.map(Deadline::after);
        let deadline = match (own, Deadline::current()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let now = Instant::now();
        let timer = tokio::time::sleep_until(deadline.map_or(now + FAR, |d| d.instant()));
        Self {
            state: State::Pick,
            timer,
            shared,
            classifier,
            request,
            deadline,
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

impl<S, Req, Res, C> Future for ResponseFuture<S, Req, Res, C>
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
                    let Some(index) = pick(
                        &shared,
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
                        let scope = this
                            .deadline
                            .unwrap_or_else(|| Deadline::at(*this.started + FAR));
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
                    let mut decision = shared.policy.decide(&outcome);
                    if decision == Decision::LargerContext {
                        let here = route.context_window.unwrap_or(0);
                        let larger = shared.routes[*this.next..]
                            .iter()
                            .any(|r| r.context_window.is_some_and(|w| w > here));
                        if larger {
                            *this.min_context = Some(here);
                        } else {
                            decision = Decision::Return;
                        }
                    }
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

/// The next route to try from `next` on, skipping (and recording) unavailable ones and, after
/// a context-length failure, those not larger than `min_context`.
fn pick<S, Res>(
    shared: &Shared<S, Res>,
    next: &mut usize,
    min_context: Option<u64>,
    leaving: &mut Option<(ModelId, Outcome, Duration)>,
    failed: &mut Vec<FailedAttempt>,
) -> Option<usize> {
    while let Some(route) = shared.routes.get(*next) {
        let index = *next;
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

fn failover<S, Res>(
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

enum Ending {
    Exhausted,
    Deadline,
}

/// No model answered: the degraded answer if there is one, else the typed error.
fn finish<S, Res>(
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

impl<S, Req, Res, C> fmt::Debug for ResponseFuture<S, Req, Res, C>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.attempts)
            .field("deadline", &self.deadline)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
