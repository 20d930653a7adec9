//! Parallel and hedged routing: several models in flight at once, the first answer wins.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hive_core::{
    BoxError, Classified, Classify, Deadline, FailureClass, ModelId, Outcome, ResilienceEvent,
    Scoped,
};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::{
    FailedAttempt, HedgeDelay, Routed, Strategy,
    future::{
        Ending, Order, attempt_scope, deadline_timer, decide, failover, finish, pick,
        request_deadline,
    },
    policy::Decision,
    router::Shared,
};

/// One model in flight.
struct Attempt<S, F> {
    index: usize,
    started: Instant,
    state: AttemptState<S, F>,
}

enum AttemptState<S, F> {
    Readying(S),
    Calling(Pin<Box<Scoped<F>>>),
}

/// What polling one attempt gave.
enum Step<T, E> {
    Pending,
    Called,
    NotReady(BoxError),
    Done(Result<T, E>),
}

pin_project! {
    /// Several models at once (parallel or hedged); the first answer wins and the others are
    /// dropped, which cancels them, before the answer is returned.
    pub(crate) struct Race<S, Req, Res, C>
    where
        S: Service<Req>,
    {
        #[pin]
        timer: Sleep,
        #[pin]
        hedge_timer: Sleep,
        hedge_armed: bool,
        shared: Arc<Shared<S, Res>>,
        classifier: C,
        request: Req,
        deadline: Option<Deadline>,
        next: usize,
        min_context: Option<u64>,
        leaving: Option<(ModelId, Outcome, Duration)>,
        in_flight: Vec<Attempt<S, S::Future>>,
        attempts: u32,
        hedges: u32,
        started: Instant,
        failed: Vec<FailedAttempt>,
        done: bool,
    }
}

impl<S, Req, Res, C> Race<S, Req, Res, C>
where
    S: Service<Req>,
{
    pub(crate) fn new(shared: Arc<Shared<S, Res>>, classifier: C, request: Req) -> Self {
        let deadline = request_deadline(&shared);
        if let Strategy::Hedged {
            budget: Some(budget),
            ..
        } = &shared.strategy
        {
            budget.deposit();
        }
        let now = Instant::now();
        Self {
            timer: deadline_timer(deadline),
            hedge_timer: tokio::time::sleep_until(now),
            hedge_armed: false,
            shared,
            classifier,
            request,
            deadline,
            next: 0,
            min_context: None,
            leaving: None,
            in_flight: Vec::new(),
            attempts: 0,
            hedges: 0,
            started: now,
            failed: Vec::new(),
            done: false,
        }
    }
}

/// Starts the next available model in priority order; `false` when none is left or the
/// deadline leaves it too little time.
fn launch<S, Res, F>(
    shared: &Shared<S, Res>,
    deadline: Option<Deadline>,
    next: &mut usize,
    min_context: Option<u64>,
    leaving: &mut Option<(ModelId, Outcome, Duration)>,
    failed: &mut Vec<FailedAttempt>,
    in_flight: &mut Vec<Attempt<S, F>>,
) -> bool
where
    S: Clone,
{
    let Some(index) = pick(
        shared,
        Order { first: None },
        next,
        min_context,
        leaving,
        failed,
    ) else {
        return false;
    };
    let route = &shared.routes[index];
    if deadline.is_some_and(|d| d.remaining() <= route.min_attempt_time) {
        *next = shared.routes.len();
        return false;
    }
    if let Some((from, reason, latency)) = leaving.take() {
        failover(shared, from, route.model, reason, latency);
    }
    in_flight.push(Attempt {
        index,
        started: Instant::now(),
        state: AttemptState::Readying(route.service.clone()),
    });
    true
}

fn hedge_delay<S, Res>(shared: &Shared<S, Res>, first: Option<usize>) -> Duration {
    match &shared.strategy {
        Strategy::Hedged {
            delay: HedgeDelay::Fixed(delay),
            ..
        } => *delay,
        Strategy::Hedged {
            delay:
                HedgeDelay::Percentile {
                    percentile,
                    min_samples,
                    otherwise,
                },
            ..
        } => first
            .and_then(|i| shared.routes[i].stats.percentile(*percentile, *min_samples))
            .unwrap_or(*otherwise),
        _ => Duration::MAX,
    }
}

impl<S, Req, Res, C> Future for Race<S, Req, Res, C>
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
        if *this.done {
            return Poll::Ready(Err("fallback router future polled after completion".into()));
        }
        if this.deadline.is_some() && this.timer.as_mut().poll(cx).is_ready() {
            for attempt in this.in_flight.drain(..) {
                this.failed.push(FailedAttempt {
                    model: shared.routes[attempt.index].model,
                    outcome: Outcome::failure(FailureClass::Timeout),
                    error: None,
                });
            }
            *this.done = true;
            return Poll::Ready(end(&shared, *this.attempts, this.failed, Ending::Deadline));
        }
        if *this.attempts == 0 && this.in_flight.is_empty() {
            let at_once = match &shared.strategy {
                Strategy::Parallel { first } => first.unwrap_or(shared.routes.len()),
                _ => 1,
            };
            while this.in_flight.len() < at_once
                && launch(
                    &shared,
                    *this.deadline,
                    this.next,
                    *this.min_context,
                    this.leaving,
                    this.failed,
                    this.in_flight,
                )
            {
                *this.attempts += 1;
            }
            if let Strategy::Hedged { .. } = shared.strategy {
                let first = this.in_flight.first().map(|a| a.index);
                this.hedge_timer
                    .as_mut()
                    .reset(Instant::now() + hedge_delay(&shared, first));
                *this.hedge_armed = !this.in_flight.is_empty();
            }
        }
        loop {
            let mut progressed = false;
            if *this.hedge_armed && this.hedge_timer.as_mut().poll(cx).is_ready() {
                *this.hedge_armed = false;
                if let Strategy::Hedged {
                    max_hedges, budget, ..
                } = &shared.strategy
                {
                    let allowed = *this.hedges < *max_hedges
                        && *this.next < shared.routes.len()
                        && budget.as_ref().is_none_or(|b| b.withdraw());
                    let first = this.in_flight.first().map(|a| (a.index, a.started));
                    if allowed
                        && launch(
                            &shared,
                            *this.deadline,
                            this.next,
                            *this.min_context,
                            this.leaving,
                            this.failed,
                            this.in_flight,
                        )
                    {
                        *this.attempts += 1;
                        *this.hedges += 1;
                        progressed = true;
                        if let (Some((index, started)), Some(hedge)) =
                            (first, this.in_flight.last())
                        {
                            let (from, to) =
                                (shared.routes[index].model, shared.routes[hedge.index].model);
                            let after = started.elapsed();
                            tracing::debug!(%from, %to, ?after, "hedge");
                            shared
                                .events
                                .emit(|| ResilienceEvent::Hedge { from, to, after });
                        }
                        this.hedge_timer
                            .as_mut()
                            .reset(Instant::now() + hedge_delay(&shared, first.map(|f| f.0)));
                        *this.hedge_armed = true;
                    }
                }
            }
            let mut i = 0;
            while i < this.in_flight.len() {
                let attempt = &mut this.in_flight[i];
                let route = &shared.routes[attempt.index];
                let step = match &mut attempt.state {
                    AttemptState::Readying(service) => match service.poll_ready(cx) {
                        Poll::Pending => Step::Pending,
                        Poll::Ready(Err(e)) => Step::NotReady(e.into()),
                        Poll::Ready(Ok(())) => {
                            let scope = attempt_scope(*this.deadline);
                            let request = this.request.clone();
                            let future = scope.sync_scope(|| service.call(request));
                            attempt.started = Instant::now();
                            attempt.state = AttemptState::Calling(Box::pin(scope.scoped(future)));
                            Step::Called
                        }
                    },
                    AttemptState::Calling(future) => match future.as_mut().poll(cx) {
                        Poll::Pending => Step::Pending,
                        Poll::Ready(result) => Step::Done(result),
                    },
                };
                match step {
                    Step::Pending => i += 1,
                    Step::Called => progressed = true,
                    Step::NotReady(error) => {
                        let outcome = hive_core::classify_error(&*error);
                        *this.leaving = Some((route.model, outcome, Duration::ZERO));
                        this.failed.push(FailedAttempt {
                            model: route.model,
                            outcome,
                            error: Some(error),
                        });
                        this.in_flight.swap_remove(i);
                        if launch(
                            &shared,
                            *this.deadline,
                            this.next,
                            *this.min_context,
                            this.leaving,
                            this.failed,
                            this.in_flight,
                        ) {
                            *this.attempts += 1;
                        }
                        progressed = true;
                    }
                    Step::Done(result) => {
                        let latency = attempt.started.elapsed();
                        let index = attempt.index;
                        let outcome = match this.classifier.classify(&result) {
                            Classified::Now(outcome) => outcome,
                            Classified::AtEndOfStream => Outcome::Success,
                        };
                        if shared.track_stats {
                            route.stats.record(outcome == Outcome::Success, latency);
                        }
                        let remaining = Order { first: None }.remaining(&shared, *this.next);
                        let decision =
                            decide(&shared, &outcome, index, remaining, this.min_context);
                        let routed = |response| Routed {
                            response,
                            model: Some(route.model),
                            attempts: *this.attempts,
                            degraded: false,
                        };
                        match decision {
                            Decision::Answer | Decision::Return => {
                                // The others lose: dropping them cancels them.
                                this.in_flight.clear();
                                *this.done = true;
                                let result = result.map_err(Into::into);
                                if decision == Decision::Answer {
                                    if let (Ok(response), Some(keep)) = (&result, &shared.on_answer)
                                    {
                                        keep(response);
                                    }
                                }
                                return Poll::Ready(result.map(routed));
                            }
                            Decision::Fallback | Decision::LargerContext => {
                                *this.leaving = Some((route.model, outcome, latency));
                                this.failed.push(FailedAttempt {
                                    model: route.model,
                                    outcome,
                                    error: result.err().map(Into::into),
                                });
                                this.in_flight.swap_remove(i);
                                if launch(
                                    &shared,
                                    *this.deadline,
                                    this.next,
                                    *this.min_context,
                                    this.leaving,
                                    this.failed,
                                    this.in_flight,
                                ) {
                                    *this.attempts += 1;
                                }
                                progressed = true;
                            }
                        }
                    }
                }
            }
            if this.in_flight.is_empty() {
                *this.done = true;
                let ending = if this.deadline.is_some_and(|d| d.remaining().is_zero())
                    || *this.next < shared.routes.len()
                {
                    Ending::Deadline
                } else {
                    Ending::Exhausted
                };
                return Poll::Ready(end(&shared, *this.attempts, this.failed, ending));
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    }
}

/// Ends without an answer: the attempts in priority order (the primary's first).
fn end<S, Res>(
    shared: &Shared<S, Res>,
    attempts: u32,
    failed: &mut Vec<FailedAttempt>,
    ending: Ending,
) -> Result<Routed<Res>, BoxError> {
    failed.sort_by_key(|a| shared.routes.iter().position(|r| r.model == a.model));
    finish(shared, attempts, failed, ending)
}

impl<S, Req, Res, C> fmt::Debug for Race<S, Req, Res, C>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Race")
            .field("in_flight", &self.in_flight.len())
            .field("attempts", &self.attempts)
            .field("hedges", &self.hedges)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
