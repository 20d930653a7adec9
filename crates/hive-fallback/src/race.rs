//! Parallel and hedged routing: several models in flight at once, the first answer wins.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hive_core::{BoxError, ResilienceEvent};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::{
    HedgeDelay, Routed, Strategy,
    cursor::{AttemptFuture, Cursor, Ending, Order, Pick, Timer},
    future::outcome_of,
    policy::Decision,
    router::Shared,
};

/// One model in flight. Its call is boxed: a race holds a varying number of them.
struct Attempt<S, F> {
    index: usize,
    started: Instant,
    state: AttemptState<S, F>,
}

enum AttemptState<S, F> {
    Readying(S),
    Calling(Pin<Box<AttemptFuture<F>>>),
}

pin_project! {
    /// Several models at once (parallel or hedged); the first answer wins and the others are
    /// dropped, which cancels them, before the answer is returned.
    pub(crate) struct Race<S, Req, Res, C>
    where
        S: Service<Req>,
    {
        #[pin]
        timer: Timer,
        #[pin]
        hedge_timer: Sleep,
        hedge_armed: bool,
        shared: Arc<Shared<S, Res>>,
        classifier: C,
        request: Req,
        cursor: Cursor,
        in_flight: Vec<Attempt<S, S::Future>>,
        hedges: u32,
        started: bool,
        done: bool,
    }
}

impl<S, Req, Res, C> Race<S, Req, Res, C>
where
    S: Service<Req>,
{
    pub(crate) fn new(shared: Arc<Shared<S, Res>>, classifier: C, request: Req) -> Self {
        if let Strategy::Hedged {
            budget: Some(budget),
            ..
        } = &shared.strategy
        {
            budget.deposit();
        }
        let cursor = Cursor::new(&shared, Order { first: None });
        Self {
            timer: cursor.timer(),
            hedge_timer: tokio::time::sleep_until(shared.far),
            hedge_armed: false,
            shared,
            classifier,
            request,
            cursor,
            in_flight: Vec::new(),
            hedges: 0,
            started: false,
            done: false,
        }
    }
}

/// Starts the next available model; `false` when none is left or there is no time for it.
fn launch<S: Clone, Res, F>(
    shared: &Shared<S, Res>,
    cursor: &mut Cursor,
    in_flight: &mut Vec<Attempt<S, F>>,
) -> bool {
    match cursor.pick(shared) {
        Pick::Route(index) => {
            in_flight.push(Attempt {
                index,
                started: Instant::now(),
                state: AttemptState::Readying(shared.routes[index].service.clone()),
            });
            true
        }
        Pick::NoneLeft | Pick::NoTime => false,
    }
}

/// Starts a hedge beside the first model when the strategy, the count and the budget allow,
/// and reports it; `true` if one started.
fn hedge<S: Clone, Res, F>(
    shared: &Shared<S, Res>,
    cursor: &mut Cursor,
    in_flight: &mut Vec<Attempt<S, F>>,
    hedges: &mut u32,
) -> bool {
    let Strategy::Hedged {
        max_hedges, budget, ..
    } = &shared.strategy
    else {
        return false;
    };
    let Some((first, started)) = in_flight.first().map(|a| (a.index, a.started)) else {
        return false;
    };
    let allowed = *hedges < *max_hedges
        && cursor.has_more(shared)
        && budget.as_ref().is_none_or(|b| b.withdraw());
    if !(allowed && launch(shared, cursor, in_flight)) {
        return false;
    }
    *hedges += 1;
    if let Some(hedge) = in_flight.last() {
        let from = shared.routes[first].model;
        let to = shared.routes[hedge.index].model;
        let after = started.elapsed();
        tracing::debug!(%from, %to, ?after, "hedge");
        shared
            .events
            .emit(|| ResilienceEvent::Hedge { from, to, after });
    }
    true
}

/// The wait before the next hedge, from the first model's live latencies when asked.
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
    C: hive_core::Classify<Res, S::Error>,
    Req: Clone,
{
    type Output = Result<Routed<Res>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let shared: &Shared<S, Res> = this.shared;
        let cursor = this.cursor;
        if *this.done {
            return Poll::Ready(Err("fallback router future polled after completion".into()));
        }
        if this.timer.as_mut().expired(cx) {
            for attempt in this.in_flight.drain(..) {
                cursor.timed_out(shared, attempt.index);
            }
            *this.done = true;
            return Poll::Ready(cursor.finish(shared, Ending::Deadline));
        }
        if !*this.started {
            *this.started = true;
            let at_once = match &shared.strategy {
                Strategy::Parallel { first } => first.unwrap_or(shared.routes.len()),
                _ => 1,
            };
            while this.in_flight.len() < at_once && launch(shared, cursor, this.in_flight) {}
            if let Strategy::Hedged { .. } = shared.strategy {
                let first = this.in_flight.first().map(|a| a.index);
                let at = Instant::now() + hedge_delay(shared, first);
                this.hedge_timer.as_mut().reset(at);
                *this.hedge_armed = !this.in_flight.is_empty();
            }
        }
        loop {
            let mut progressed = false;
            if *this.hedge_armed && this.hedge_timer.as_mut().poll(cx).is_ready() {
                *this.hedge_armed = false;
                if hedge(shared, cursor, this.in_flight, this.hedges) {
                    progressed = true;
                    let first = this.in_flight.first().map(|a| a.index);
                    let at = Instant::now() + hedge_delay(shared, first);
                    this.hedge_timer.as_mut().reset(at);
                    *this.hedge_armed = true;
                }
            }
            let mut i = 0;
            while i < this.in_flight.len() {
                let attempt = &mut this.in_flight[i];
                let index = attempt.index;
                match &mut attempt.state {
                    AttemptState::Readying(service) => match service.poll_ready(cx) {
                        Poll::Pending => i += 1,
                        Poll::Ready(Err(error)) => {
                            this.in_flight.swap_remove(i);
                            cursor.not_ready(shared, index, error.into());
                            launch(shared, cursor, this.in_flight);
                            progressed = true;
                        }
                        Poll::Ready(Ok(())) => {
                            let future = cursor.call(service, this.request.clone());
                            attempt.started = Instant::now();
                            attempt.state = AttemptState::Calling(Box::pin(future));
                            progressed = true;
                        }
                    },
                    AttemptState::Calling(future) => {
                        let Poll::Ready(result) = future.as_mut().poll(cx) else {
                            i += 1;
                            continue;
                        };
                        let latency = attempt.started.elapsed();
                        let outcome = outcome_of(this.classifier, &result);
                        match cursor.outcome(shared, index, outcome, latency) {
                            decision @ (Decision::Answer | Decision::Return) => {
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
                                return Poll::Ready(
                                    result.map(|r| cursor.routed(shared, index, r)),
                                );
                            }
                            Decision::Fallback | Decision::LargerContext => {
                                this.in_flight.swap_remove(i);
                                let error = result.err().map(Into::into);
                                cursor.failed_attempt(shared, index, outcome, latency, error);
                                launch(shared, cursor, this.in_flight);
                                progressed = true;
                            }
                        }
                    }
                }
            }
            if this.in_flight.is_empty() {
                *this.done = true;
                let ending = if cursor.out_of_time {
                    Ending::Deadline
                } else {
                    Ending::Exhausted
                };
                return Poll::Ready(cursor.finish(shared, ending));
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    }
}

impl<S, Req, Res, C> fmt::Debug for Race<S, Req, Res, C>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Race")
            .field("in_flight", &self.in_flight.len())
            .field("attempts", &self.cursor.attempts)
            .field("hedges", &self.hedges)
            .field("failed", &self.cursor.failed())
            .finish_non_exhaustive()
    }
}
