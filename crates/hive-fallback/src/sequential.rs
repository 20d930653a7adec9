//! The sequential strategy's future: one model at a time.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use hive_core::{BoxError, Classify};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_service::Service;

use crate::{
    cursor::{AttemptFuture, Cursor, Ending, Order, Pick, Timer, outcome_of},
    policy::Step,
    shared::{Routed, Shared},
};

pin_project! {
    /// One model at a time, in priority order (or a weighted first pick, then priority).
    /// Allocates nothing unless an attempt fails.
    pub(crate) struct Sequential<S, Req, Res, C>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, S::Future>,
        #[pin]
        timer: Timer,
        shared: Arc<Shared<S, Res>>,
        classifier: C,
        request: Req,
        cursor: Cursor,
        current: usize,
        started: Option<Instant>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, F> {
        Pick,
        Readying { service: S },
        Calling { #[pin] future: AttemptFuture<F> },
        Done,
    }
}

impl<S, Req, Res, C> Sequential<S, Req, Res, C>
where
    S: Service<Req>,
{
    pub(crate) fn new(
        shared: Arc<Shared<S, Res>>,
        classifier: C,
        request: Req,
        order: Order,
    ) -> Self {
        let cursor = Cursor::new(&shared, order);
        Self {
            state: State::Pick,
            timer: cursor.timer(),
            shared,
            classifier,
            request,
            cursor,
            current: 0,
            started: None,
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
        let span = this.cursor.trace.handle();
        let _entered = span.as_ref().map(tracing::Span::enter);
        let shared: &Shared<S, Res> = this.shared;
        let cursor = this.cursor;
        if this.timer.as_mut().expired(cx) {
            if let StateProj::Calling { .. } = this.state.as_mut().project() {
                cursor.timed_out(shared, *this.current);
            }
            this.state.set(State::Done);
            return Poll::Ready(cursor.finish(shared, Ending::Deadline));
        }
        loop {
            match this.state.as_mut().project() {
                StateProj::Pick => match cursor.pick(shared) {
                    Pick::Route(index) => {
                        *this.current = index;
                        this.state.set(State::Readying {
                            service: shared.routes[index].service.clone(),
                        });
                    }
                    Pick::NoneLeft => {
                        this.state.set(State::Done);
                        return Poll::Ready(cursor.finish(shared, Ending::Exhausted));
                    }
                    Pick::NoTime => {
                        this.state.set(State::Done);
                        return Poll::Ready(cursor.finish(shared, Ending::Deadline));
                    }
                },
                StateProj::Readying { service } => match service.poll_ready(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(error)) => {
                        cursor.not_ready(shared, *this.current, error.into());
                        this.state.set(State::Pick);
                    }
                    Poll::Ready(Ok(())) => {
                        *this.started = Cursor::clock(shared);
                        let future =
                            cursor.call(shared, *this.current, service, this.request.clone());
                        this.state.set(State::Calling { future });
                    }
                },
                StateProj::Calling { mut future } => {
                    let result = ready!(future.as_mut().poll(cx));
                    let outcome = outcome_of(this.classifier, &result);
                    let index = *this.current;
                    let latency = this.started.map_or(Duration::ZERO, |s| s.elapsed());
                    match cursor.outcome(shared, (index, future.trace()), outcome, latency) {
                        step @ (Step::Answer | Step::Return) => {
                            this.state.set(State::Done);
                            return Poll::Ready(cursor.respond(
                                shared,
                                index,
                                (step, outcome),
                                result,
                            ));
                        }
                        Step::Fallback | Step::LargerContext => {
                            let attempt = (outcome, latency);
                            cursor.failed_attempt(shared, index, attempt, this.classifier, result);
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

impl<S, Req, Res, C> fmt::Debug for Sequential<S, Req, Res, C>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sequential")
            .field("attempts", &self.cursor.attempts)
            .field("deadline", &self.cursor.deadline)
            .field("failed", &self.cursor.failed())
            .finish_non_exhaustive()
    }
}
