//! The router's response future: one state machine per strategy, over the routes, under one
//! deadline.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use hive_core::{BoxError, Classified, Classify, Outcome};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_service::Service;

use crate::{
    Routed, Strategy,
    cursor::{AttemptFuture, Cursor, Ending, Order, Pick, Timer},
    policy::Decision,
    race::Race,
    router::Shared,
};

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
                future: Sequential::new(shared, classifier, request, Order { first: None }),
            },
            Strategy::Weighted { random } => {
                let first = shared.weighted_first(random);
                Inner::Sequential {
                    future: Sequential::new(shared, classifier, request, Order { first }),
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

/// The classified outcome of an attempt; a streamed answer that has begun is the answer.
pub(crate) fn outcome_of<C: Classify<T, E>, T, E>(
    classifier: &C,
    result: &Result<T, E>,
) -> Outcome {
    match classifier.classify(result) {
        Classified::Now(outcome) => outcome,
        Classified::AtEndOfStream => Outcome::Success,
    }
}

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
    fn new(shared: Arc<Shared<S, Res>>, classifier: C, request: Req, order: Order) -> Self {
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
                        let future = cursor.call(service, this.request.clone());
                        this.state.set(State::Calling { future });
                    }
                },
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    let outcome = outcome_of(this.classifier, &result);
                    let index = *this.current;
                    let latency = this.started.map_or(Duration::ZERO, |s| s.elapsed());
                    let decision = cursor.outcome(shared, index, outcome, latency);
                    match decision {
                        Decision::Answer | Decision::Return => {
                            this.state.set(State::Done);
                            let result = result.map_err(Into::into);
                            if decision == Decision::Answer {
                                if let (Ok(response), Some(keep)) = (&result, &shared.on_answer) {
                                    keep(response);
                                }
                            }
                            return Poll::Ready(result.map(|r| cursor.routed(shared, index, r)));
                        }
                        Decision::Fallback | Decision::LargerContext => {
                            let error = result.err().map(Into::into);
                            cursor.failed_attempt(shared, index, outcome, latency, error);
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
